/**
 * One process per data directory: two coordinators (or two agents) writing one store would corrupt each
 * other's rounds. The lock is a file holding the owner's pid; a lock left by a process that no longer runs
 * (a crash, a kill -9) is taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { FedsynthError } from "../errors.js";

export interface DirLock {
  release(): void;
}

export function lockDataDir(dir: string, what: string): DirLock {
  const path = join(dir, "LOCK");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
      process.once("exit", release);
      return { release };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number(readFileSync(path, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new FedsynthError("failed-precondition", `${dir} is in use by another ${what} (pid ${owner})`, {
          hint: `stop that process, or give this ${what} its own --data-dir`,
        });
      }
      rmSync(path, { force: true }); // stale: its owner is gone
    }
  }
  throw new FedsynthError("failed-precondition", `cannot lock ${dir}`, { hint: `remove ${path} if no ${what} is running` });
}

/** Whether a process with this pid exists (one we may not signal counts: it is someone's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
