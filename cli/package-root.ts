/** The installed package's root (where examples/ lives), found from this file whether built or not. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, "utf8")).name === "fedsynth") return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the fedsynth package root");
    dir = parent;
  }
}
