import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { lockDataDir } from "./dir-lock.js";

describe("lockDataDir", () => {
  it("refuses a directory held by a running process, naming it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fedsynth-lock-"));
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"]);
    writeFileSync(join(dir, "LOCK"), `${other.pid}\n`);
    try {
      expect(() => lockDataDir(dir, "coordinator")).toThrow(new RegExp(`in use by another coordinator \\(pid ${other.pid}\\)`));
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("takes over a lock whose owner is gone, and releases it", () => {
    const dir = mkdtempSync(join(tmpdir(), "fedsynth-lock-"));
    writeFileSync(join(dir, "LOCK"), "999999999\n");
    const lock = lockDataDir(dir, "coordinator");
    expect(existsSync(join(dir, "LOCK"))).toBe(true);
    lock.release();
    expect(existsSync(join(dir, "LOCK"))).toBe(false);
  });
});
