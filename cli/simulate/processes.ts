/**
 * The real processes a simulation starts: `fedsynth coordinator start` and one `fedsynth site start` per
 * site, each logging to its own file, all stopped together (also on Ctrl-C).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { fileURLToPath } from "node:url";
import { FedsynthError } from "../../shared/errors.js";

const CLI = fileURLToPath(new URL("../main.js", import.meta.url));

export interface ManagedProcess {
  name: string;
  logFile: string;
  child: ChildProcess;
  exited: Promise<number | null>;
}

export class ProcessGroup {
  private processes: ManagedProcess[] = [];
  private logs: WriteStream[] = [];

  start(name: string, args: string[], logFile: string, onStdoutLine?: (line: string) => void): ManagedProcess {
    const log = createWriteStream(logFile, { flags: "a" });
    this.logs.push(log);
    // Each process logs in the format FEDSYNTH_LOG_FORMAT asks for, and exports telemetry if OTEL_* ask.
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env: process.env });
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      log.write(chunk);
      if (!onStdoutLine) return;
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        onStdoutLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    child.stderr!.on("data", (chunk: Buffer) => log.write(chunk));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const managed = { name, logFile, child, exited };
    this.processes.push(managed);
    return managed;
  }

  /** Rejects as soon as any process exits while it should still be running. */
  watchForExit(): { failed: Promise<never>; disarm(): void } {
    let armed = true;
    const failed = new Promise<never>((_, reject) => {
      for (const p of this.processes) {
        void p.exited.then((code) => {
          if (armed) {
            reject(new FedsynthError("internal", `${p.name} exited unexpectedly (code ${code})`, { hint: `see its log: ${p.logFile}` }));
          }
        });
      }
    });
    failed.catch(() => undefined);
    return { failed, disarm: () => (armed = false) };
  }

  /** SIGTERM to everyone, SIGKILL to whoever is still up after the grace period. */
  async stopAll(graceMs = 5000): Promise<void> {
    const running = this.processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    for (const p of running) p.child.kill("SIGTERM");
    const timer = setTimeout(() => running.forEach((p) => p.child.kill("SIGKILL")), graceMs);
    await Promise.all(running.map((p) => p.exited));
    clearTimeout(timer);
    const logs = this.logs;
    this.logs = [];
    await Promise.all(logs.map((l) => new Promise<void>((r) => l.end(() => r()))));
  }

  /** Synchronous last resort when this process is about to exit. */
  killAll(): void {
    for (const p of this.processes) if (p.child.exitCode === null) p.child.kill("SIGKILL");
  }
}

/** Waits for the coordinator to print its address. */
export function waitForAddress(lines: { onLine(fn: (l: string) => void): void }, proc: ManagedProcess, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new FedsynthError("unavailable", "the coordinator did not start in time", { hint: `see ${proc.logFile}` })), timeoutMs);
    lines.onLine((line) => {
      const m = /listening on (\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void proc.exited.then((code) => {
      clearTimeout(timer);
      reject(new FedsynthError("unavailable", `the coordinator exited (code ${code}) before serving`, { hint: `see ${proc.logFile}` }));
    });
  });
}
