// After tsc: make the CLI entry executable (npm links it as the `fedsynth` bin).
import { chmodSync, existsSync } from "node:fs";
const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  console.error("build: dist/cli/main.js is missing; did tsc fail?");
  process.exit(1);
}
chmodSync(entry, 0o755);
