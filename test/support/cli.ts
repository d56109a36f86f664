/** Runs the built `fedsynth` CLI as real processes, the way a user does. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI = join(ROOT, "dist", "cli", "main.js");
export const EXAMPLES = join(ROOT, "examples", "heart-disease");
export const HEART_SITES = ["cleveland", "hungary", "switzerland", "va"];

export function tempDir(prefix = "fedsynth-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `env`, when given, is the child's whole environment (not added to this process's). */
export function runCli(args: string[], opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"], ...(opts.env ? { env: opts.env } : {}) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fedsynth ${args.join(" ")} timed out\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** A long-running fedsynth process (coordinator or agent) whose output is collected as it runs. */
export class CliProcess {
  readonly child: ChildProcess;
  output = "";
  private waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    const onData = (chunk: Buffer) => {
      this.output += chunk.toString("utf8");
      this.waiters = this.waiters.filter((w) => {
        const m = this.output.match(w.pattern);
        if (m) w.resolve(m);
        return !m;
      });
    };
    this.child.stdout!.on("data", onData);
    this.child.stderr!.on("data", onData);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves when the output (so far or later) matches. */
  waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const m = this.output.match(pattern);
    if (m) return Promise.resolve(m);
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output so far:\n${this.output}`)), timeoutMs);
      this.waiters.push({ pattern, resolve: (mm) => { clearTimeout(timer); resolvePromise(mm); } });
    });
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (!this.running) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}

export async function startCoordinator(dataDir: string, port = 0): Promise<{ proc: CliProcess; address: string }> {
  const proc = new CliProcess(["coordinator", "start", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`, "--insecure"]);
  const m = await proc.waitFor(/listening on (\S+)/);
  return { proc, address: m[1] };
}

export function startAgent(opts: {
  address: string; name: string; data: string; dataDir: string; epsilonCap: number; deltaCap?: number; env?: Record<string, string>;
}): CliProcess {
  return new CliProcess([
    "site", "start", "--coordinator", opts.address, "--name", opts.name, "--data", opts.data, "--data-dir", opts.dataDir,
    "--epsilon-cap", String(opts.epsilonCap), "--delta-cap", String(opts.deltaCap ?? 1e-5), "--insecure", "--reconnect-max-seconds", "1",
  ], opts.env);
}

export function heartSiteArgs(): string[] {
  return HEART_SITES.flatMap((s) => ["--site", `${s}=${join(EXAMPLES, `${s}.csv`)}`]);
}

/** A coordinator serving mutual TLS: `dataDir` must hold the consortium PKI that `coordinator init` wrote. */
export async function startSecureCoordinator(dataDir: string, port = 0): Promise<{ proc: CliProcess; address: string }> {
  const proc = new CliProcess(["coordinator", "start", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`]);
  const m = await proc.waitFor(/listening on (\S+)/);
  return { proc, address: m[1] };
}

/** A site agent over mutual TLS: `dataDir` must hold the identity that `site enroll` wrote. */
export function startSecureAgent(opts: {
  address: string; name: string; data: string; dataDir: string; epsilonCap: number; deltaCap?: number; env?: Record<string, string>;
}): CliProcess {
  return new CliProcess([
    "site", "start", "--coordinator", opts.address, "--name", opts.name, "--data", opts.data, "--data-dir", opts.dataDir,
    "--epsilon-cap", String(opts.epsilonCap), "--delta-cap", String(opts.deltaCap ?? 1e-5), "--reconnect-max-seconds", "1",
  ], opts.env);
}

/** A study's status as the operator CLI prints it (JSON), from a development coordinator on loopback. */
export async function studyStatus(address: string, studyId: string): Promise<any> {
  const r = await runCli(["study", "status", studyId, "--coordinator", address, "--insecure", "--json"]);
  if (r.code !== 0) throw new Error(`study status failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Polls `fn` until it returns a value, or fails after `timeoutMs` naming what it waited for. */
export async function until<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
