/**
 * A firewalled multi-host consortium (issue 7): deploy/netns/firewalled-study.sh puts the coordinator,
 * three hospitals, an outside host and (in proxy mode) a hospital CONNECT proxy in network namespaces of
 * their own, firewalls each hospital with nftables (every inbound connection dropped, outbound only to
 * the coordinator or only to the proxy), probes the firewall, then runs a full study through it with the
 * real CLI: coordinator init/start, site token, site enroll/start, study create/start/status, model
 * export, sample. Its JSON summary must show the study completed with zero inbound connections accepted
 * at every hospital.
 *
 * It needs root, working `ip netns` and nftables (`nft`); elsewhere the tests are skipped and say why.
 * FEDSYNTH_CLI, if set, names the CLI the script runs (default: this tree's dist/cli/main.js).
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, tempDir } from "./support/cli.js";

const SCRIPT = join(ROOT, "deploy", "netns", "firewalled-study.sh");
const HOSPITALS = ["hospital-1", "hospital-2", "hospital-3"];
const COORDINATOR = "10.77.0.2:7070";
const PROXY = "10.77.0.3:3128";
const OUTSIDE = "10.77.0.4:8080";

/** Why this machine cannot run the script (the script's own --check decides), or undefined. */
const unavailable = ((): string | undefined => {
  if (process.platform !== "linux") return `network namespaces need Linux, not ${process.platform}`;
  const check = spawnSync("bash", [SCRIPT, "--check"], { encoding: "utf8", timeout: 60_000 });
  if (check.status === 0) return undefined;
  return (check.stdout + check.stderr).trim() || `firewalled-study.sh --check exited ${check.status ?? check.signal}`;
})();
if (unavailable) console.warn(`test/firewalled.test.ts skipped: ${unavailable}`);

interface Run { code: number | null; stdout: string; stderr: string }

const running = new Set<ChildProcess>();

/** Runs the script to its end; no time limit here beyond the test's own (the script bounds the study). */
function runScript(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn("bash", [SCRIPT, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.once("close", (code) => {
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The one-line JSON summary: the last line of stdout. */
function summaryOf(run: Run): any {
  const last = run.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(`no JSON summary on stdout (exit ${run.code})\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

describe("a study through firewalled hospital hosts (network namespaces + nftables)", () => {
  // SIGTERM lets the script's trap remove its namespaces, should a run outlive its test.
  afterAll(() => running.forEach((c) => c.kill("SIGTERM")));

  for (const mode of ["direct", "proxy"] as const) {
    const allowed = mode === "direct" ? COORDINATOR : PROXY;
    const title = `--mode ${mode}: hospitals accept no inbound connection and reach only ${allowed}; the study completes`;
    it.skipIf(unavailable !== undefined)(unavailable ? `${title} (skipped: ${unavailable})` : title, async () => {
      const workdir = tempDir(`fedsynth-firewalled-${mode}-`);
      const run = await runScript(["--mode", mode, "--workdir", workdir]);
      const summary = summaryOf(run);
      expect(run.code, `the script failed at ${summary.failed_step}; logs in ${workdir}\n${run.stderr}`).toBe(0);

      expect(summary.ok).toBe(true);
      expect(summary.mode).toBe(mode);
      expect(summary.study_state).toBe("completed");
      expect(summary.sites).toHaveLength(3);
      expect(summary.allowed_egress).toBe(allowed);
      expect(summary.rows_sampled).toBeGreaterThan(0);

      // Zero inbound connections accepted at every hospital, by every measure the script took.
      expect(summary.inbound_accepted).toEqual(Object.fromEntries(HOSPITALS.map((h) => [h, 0])));
      for (const h of HOSPITALS) {
        const host = summary.hospitals[h];
        expect(host.inbound_accepted, h).toBe(0);
        expect(host.nft_inbound_new_past_filter_packets, h).toBe(0);
        expect(host.listener_remote_accepted, h).toBe(0);
        expect(host.nft_inbound_new_dropped_packets, `${h}: the inbound probes were dropped`).toBeGreaterThan(0);
        expect(host.nft_outbound_new_allowed, `${h}: the agent dialled out`).toBeGreaterThan(0);
        if (summary.conntrack) {
          expect(host.conntrack_inbound_connections, h).toBe(0);
          expect(host.conntrack_outbound_connections, h).toBeGreaterThan(0);
          expect(host.conntrack_other_connections, h).toBe(0);
        }
      }

      // The probes: every one as expected, and the ones that matter are there.
      const probes = summary.probes as { from: string; to: string; expect: string; result: string }[];
      for (const p of probes) expect(p.result.split(" ")[0], `${p.from} -> ${p.to}`).toBe(p.expect);
      const probe = (from: string, to: string) => probes.find((p) => p.from === from && p.to === to)?.result.split(" ")[0];
      for (const h of HOSPITALS) {
        const ip = summary.hospitals[h].ip as string;
        expect(probe(h, `${ip}:9000`), `${h}'s own listener answers locally`).toBe("open");
        expect(probe("coordinator", `${ip}:9000`), `coordinator -> ${h}`).toBe("blocked");
        expect(probe("outside", `${ip}:9000`), `outside -> ${h}`).toBe("blocked");
        expect(probe(h, OUTSIDE), `${h} -> outside`).toBe("blocked");
        expect(probe(h, allowed), `${h} -> ${allowed}`).toBe("open");
        if (mode === "proxy") expect(probe(h, COORDINATOR), `${h} -> the coordinator, not through the proxy`).toBe("blocked");
      }
      expect(probe("coordinator", OUTSIDE), "the outside host's listener answers").toBe("open");
      if (mode === "proxy") {
        expect(probe("proxy", COORDINATOR)).toBe("open");
        expect(summary.proxy_tunnels_to_coordinator).toBeGreaterThanOrEqual(HOSPITALS.length);
        expect(summary.proxy_refused).toBe(0);
      }
      rmSync(workdir, { recursive: true, force: true });
    }, 900_000);
  }
});
