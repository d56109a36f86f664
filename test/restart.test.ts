/**
 * A coordinator crash in the middle of a round: the accepted submission survives, agents reconnect by
 * themselves, a site whose update was computed while the coordinator was down resends it without a new
 * charge, the study finishes, and no site is charged twice.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { EXAMPLES, runCli, startAgent, startCoordinator, studyStatus, tempDir, until, type CliProcess } from "./support/cli.js";
import { LocalStore } from "../site-agent/local-store.js";

describe("coordinator crash mid-round", () => {
  const dir = tempDir();
  const procs: CliProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
  });

  it("resumes the round, reconnects the agents and completes without double charges", async () => {
    const coordinatorDir = join(dir, "coordinator");
    const first = await startCoordinator(coordinatorDir);
    procs.push(first.proc);
    const address = first.address;
    const port = Number(address.split(":").pop());

    const cleveland = startAgent({ address, name: "cleveland", data: join(EXAMPLES, "cleveland.csv"), dataDir: join(dir, "cleveland"), epsilonCap: 1 });
    // Hungary is a slow site: it holds each task for 8 s before computing it (fault injection), long enough
    // that the coordinator is killed with hungary's round-1 update still to come even on a loaded machine.
    const hungary = startAgent({
      address, name: "hungary", data: join(EXAMPLES, "hungary.csv"), dataDir: join(dir, "hungary"), epsilonCap: 1,
      env: { FEDSYNTH_FAULT_TASK_DELAY_MS: "8000" },
    });
    procs.push(cleveland, hungary);
    await cleveland.waitFor(/connected to the coordinator/);
    await hungary.waitFor(/connected to the coordinator/);

    const created = await runCli([
      "study", "create", "--coordinator", address, "--insecure", "--name", "restart", "--schema", join(EXAMPLES, "schema.json"),
      "--site", "cleveland", "--site", "hungary", "--epsilon", "1", "--rounds", "2", "--json",
    ]);
    expect(created.code, created.stderr).toBe(0);
    const studyId = JSON.parse(created.stdout).studyId as string;
    expect((await runCli(["study", "start", studyId, "--coordinator", address, "--insecure"])).code).toBe(0);

    // Cleveland submits round 1 at once; Hungary is still holding its task.
    await until(async () => ((await studyStatus(address, studyId)).roundDetails[0]?.submitted.includes("cleveland") ? true : undefined), "cleveland's round-1 submission");
    await first.proc.stop("SIGKILL");
    await cleveland.waitFor(/retrying|reconnecting/);

    const second = await startCoordinator(coordinatorDir, port);
    procs.push(second.proc);
    expect(second.proc.output).toMatch(/resuming round/);
    const afterRestart = await studyStatus(address, studyId);
    expect(afterRestart.state).toBe("running");
    expect(afterRestart.roundDetails[0].submitted).toEqual(["cleveland"]);

    const done = await until(async () => {
      const s = await studyStatus(address, studyId);
      return s.state === "running" || s.state === "created" ? undefined : s;
    }, "the study to end", 90_000);
    expect(done.state, done.statusMessage).toBe("completed");
    expect(done.completedRounds).toBe(2);
    expect(cleveland.running && hungary.running).toBe(true);
    expect(cleveland.output.match(/connected to the coordinator/g)?.length).toBeGreaterThanOrEqual(2);
    // Hungary computed round 1 while the coordinator was down and sent the stored update again afterwards.
    expect(hungary.output).toMatch(/resending an update already released for this task \(no new charge\)/);

    await cleveland.stop();
    await hungary.stop();
    for (const site of ["cleveland", "hungary"]) {
      const store = new LocalStore(join(dir, site));
      const charges = store.charges({ studyId });
      store.close();
      expect(charges.map((c) => c.round)).toEqual([1, 2]);
      const coordinatorView = done.participants.find((p: any) => p.siteName === site);
      expect(coordinatorView.epsilonCharged).toBeCloseTo(charges[1].epsilonStudyTotal, 12);
      expect(charges[1].epsilonStudyTotal).toBeLessThanOrEqual(1);
    }
  }, 180_000);
});
