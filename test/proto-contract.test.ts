/** The wire contract stays lint-clean (buf STANDARD) and keeps the generated code in step with proto/. */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./support/cli.js";

const BUF = join(ROOT, "node_modules", ".bin", "buf");

describe("proto/", () => {
  it("passes buf lint", () => {
    expect(() => execFileSync(BUF, ["lint", "proto"], { cwd: ROOT, stdio: "pipe" })).not.toThrow();
  });

  it("builds as a buf module with the services the README documents", () => {
    const out = execFileSync(BUF, ["build", "proto", "-o", "-#format=json"], { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20 });
    const image = JSON.parse(out);
    const services = image.file.flatMap((f: any) => (f.service ?? []).map((s: any) => `${f.package}.${s.name}`));
    expect(services.sort()).toEqual(["fedsynth.v1.AgentService", "fedsynth.v1.OperatorService"]);
  });
});
