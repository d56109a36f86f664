/**
 * A hospital agent that may reach the outside only through an HTTP CONNECT proxy: a real proxy on
 * loopback, one agent configured by the standard https_proxy variable and one by --proxy, and a study
 * that completes with every agent connection tunnelled through the proxy; and enrolment over TLS, whose
 * first handshake (fetching the coordinator's chain) must take the same tunnel.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { startConnectProxy, type ConnectProxy } from "../deploy/netns/connect-proxy.mjs";
import { CliProcess, EXAMPLES, runCli, startAgent, startCoordinator, startSecureCoordinator, studyStatus, tempDir, until } from "./support/cli.js";

describe("site agents behind an HTTP CONNECT proxy", () => {
  const procs: CliProcess[] = [];
  let proxy: ConnectProxy | undefined;
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
    await new Promise((r) => (proxy ? proxy.server.close(r) : r(undefined)));
  });

  it("completes a study with every agent connection tunnelled through the proxy", async () => {
    const dir = tempDir();
    proxy = await startConnectProxy();
    const { proc, address } = await startCoordinator(join(dir, "coordinator"));
    procs.push(proc);
    const proxyUrl = `http://127.0.0.1:${proxy.port}`;
    const noProxy = { no_proxy: "", no_grpc_proxy: "", NO_PROXY: "" };
    const viaEnv = startAgent({
      address, name: "cleveland", data: join(EXAMPLES, "cleveland.csv"), dataDir: join(dir, "cleveland"), epsilonCap: 1,
      env: { ...noProxy, https_proxy: proxyUrl },
    });
    const viaFlag = new CliProcess([
      "site", "start", "--coordinator", address, "--name", "hungary", "--data", join(EXAMPLES, "hungary.csv"), "--data-dir", join(dir, "hungary"),
      "--epsilon-cap", "1", "--insecure", "--reconnect-max-seconds", "1", "--proxy", proxyUrl,
    ], noProxy);
    procs.push(viaEnv, viaFlag);
    await viaEnv.waitFor(/connected to the coordinator/);
    await viaFlag.waitFor(/connected to the coordinator/);
    for (const agent of [viaEnv, viaFlag]) expect(agent.output).toMatch(new RegExp(`through an HTTP CONNECT proxy proxy=http://127\\.0\\.0\\.1:${proxy.port}`));

    const created = await runCli([
      "study", "create", "--coordinator", address, "--insecure", "--name", "proxied", "--schema", join(EXAMPLES, "schema.json"),
      "--site", "cleveland", "--site", "hungary", "--epsilon", "1", "--json",
    ]);
    expect(created.code, created.stderr).toBe(0);
    const studyId = JSON.parse(created.stdout).studyId as string;
    expect((await runCli(["study", "start", studyId, "--coordinator", address, "--insecure"])).code).toBe(0);
    const done = await until(async () => {
      const s = await studyStatus(address, studyId);
      return s.state === "running" || s.state === "created" ? undefined : s;
    }, "the study to end", 90_000);
    expect(done.state, done.statusMessage).toBe("completed");
    // Both agents' sessions (and the model downloads) went through tunnels to the coordinator only.
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(2);
    expect(new Set(proxy.tunnels)).toEqual(new Set([address]));
  }, 120_000);

  it("enrols a site over TLS through the proxy, the first handshake included", async () => {
    const dir = tempDir();
    proxy ??= await startConnectProxy();
    const coordinatorDir = join(dir, "coordinator");
    expect((await runCli(["coordinator", "init", "--data-dir", coordinatorDir])).code).toBe(0);
    const { proc, address } = await startSecureCoordinator(coordinatorDir);
    procs.push(proc);
    const token = await runCli(["site", "token", "--coordinator", address, "--credentials", join(coordinatorDir, "operator"), "--site", "va", "--json"]);
    expect(token.code, token.stderr).toBe(0);
    const { token: secret, caFingerprint } = JSON.parse(token.stdout);
    const before = proxy.tunnels.length;
    const env = { ...process.env, no_proxy: "", no_grpc_proxy: "", NO_PROXY: "", grpc_proxy: "", https_proxy: "", http_proxy: "" };
    const enrolled = await runCli(["site", "enroll", "--coordinator", address, "--name", "va", "--token", secret, "--ca-fingerprint", caFingerprint,
      "--data-dir", join(dir, "va"), "--proxy", `http://127.0.0.1:${proxy.port}`], { env });
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(enrolled.stdout).toContain(`site va enrolled with ${address}`);
    // The chain fetch and the enrolment call each went through a tunnel to the coordinator.
    const tunnels = proxy.tunnels.slice(before);
    expect(tunnels.length).toBeGreaterThanOrEqual(2);
    expect(new Set(tunnels)).toEqual(new Set([address]));
  }, 120_000);

  it("refuses a proxy address that is not http://", async () => {
    const r = await runCli(["site", "start", "--coordinator", "127.0.0.1:1", "--name", "va", "--data", join(EXAMPLES, "va.csv"), "--data-dir", tempDir(),
      "--epsilon-cap", "1", "--insecure", "--proxy", "socks5://127.0.0.1:1080"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--proxy socks5:\/\/127\.0\.0\.1:1080 is not an http:\/\/ proxy address/);
  });
});
