import { afterEach, describe, expect, it, vi } from "vitest";
import { Command } from "commander";
import { registerPrivacyCommands } from "./privacy.js";
import { Accountant } from "../../shared/privacy/accountant.js";
import { FedsynthError } from "../../shared/errors.js";

/** Runs `fedsynth privacy …` in-process; returns what it printed. */
async function run(args: string[]): Promise<string[]> {
  const program = new Command().name("fedsynth").exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerPrivacyCommands(program);
  let out = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(["node", "fedsynth", "privacy", ...args]);
  } finally {
    spy.mockRestore();
  }
  return out.trimEnd().split("\n");
}

async function failure(args: string[]): Promise<unknown> {
  try {
    await run(args);
  } catch (e) {
    return e;
  }
  return undefined;
}

afterEach(() => vi.restoreAllMocks());

describe("fedsynth privacy epsilon", () => {
  it("explains, then prints the epsilon alone on the last line", async () => {
    const lines = await run(["epsilon", "--sampling-rate", "0.01", "--noise-multiplier", "1.1", "--steps", "10000", "--delta", "1e-5"]);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines[0]).toMatch(/sampling rate 0\.01, noise multiplier 1\.1.*10000 steps.*delta 0\.00001/);
    expect(lines.join("\n")).toMatch(/Rényi DP.*best order 4\.7/);
    const last = lines[lines.length - 1];
    expect(last).toMatch(/^\d+\.\d+$/);
    expect(Number(last)).toBe(Accountant.epsilonOf([{ kind: "subsampled-gaussian", samplingRate: 0.01, noiseMultiplier: 1.1, steps: 10_000, clipNorm: 1 }], 1e-5));
    expect(Number(last)).toBeCloseTo(5.632, 3);
  });

  it("takes the sampling rate as a fraction too (batch size / records)", async () => {
    const asFraction = await run(["epsilon", "--sampling-rate", "256/60000", "--noise-multiplier", "1.1", "--steps", "14062", "--delta", "1e-5"]);
    const eps = Number(asFraction[asFraction.length - 1]);
    expect(eps).toBe(Accountant.epsilonOf([{ kind: "subsampled-gaussian", samplingRate: 256 / 60000, noiseMultiplier: 1.1, steps: 14_062, clipNorm: 1 }], 1e-5));
    expect(eps).toBeCloseTo(2.5966, 4);
    expect(await failure(["epsilon", "--sampling-rate", "5/0", "--noise-multiplier", "1.1", "--steps", "1", "--delta", "1e-5"])).toBeInstanceOf(FedsynthError);
    expect(await failure(["epsilon", "--sampling-rate", "3/2", "--noise-multiplier", "1.1", "--steps", "1", "--delta", "1e-5"])).toBeInstanceOf(FedsynthError);
  });

  it("says when sampling rate 1 is accounted exactly as a Gaussian mechanism", async () => {
    const lines = await run(["epsilon", "--sampling-rate", "1", "--noise-multiplier", "2", "--steps", "4", "--delta", "1e-5"]);
    expect(lines.join("\n")).toMatch(/Gaussian DP/);
    expect(Number(lines[lines.length - 1])).toBeGreaterThan(0);
  });

  it("rejects bad flags with a message naming the flag", async () => {
    const base = { "--sampling-rate": "0.01", "--noise-multiplier": "1.1", "--steps": "100", "--delta": "1e-5" };
    const cases: [string, string][] = [
      ["--sampling-rate", "0"], ["--sampling-rate", "1.5"], ["--sampling-rate", "abc"], ["--sampling-rate", ""], ["--sampling-rate", "1/"],
      ["--noise-multiplier", "0"], ["--noise-multiplier", "-1"], ["--noise-multiplier", "Infinity"],
      ["--steps", "0"], ["--steps", "1.5"], ["--delta", "1"], ["--delta", "0"],
    ];
    for (const [flag, value] of cases) {
      const args = ["epsilon", ...Object.entries({ ...base, [flag]: value }).flat()];
      const err = await failure(args);
      expect(err, `${flag} ${value}`).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).code).toBe("invalid-argument");
      expect((err as FedsynthError).message).toContain(flag);
    }
    expect(await failure(["epsilon", "--sampling-rate", "0.01"])).toBeTruthy(); // missing required flags
  });
});

describe("fedsynth privacy noise", () => {
  it("prints the calibrated noise multiplier alone on the last line, and it round-trips", async () => {
    const lines = await run(["noise", "--sampling-rate", "0.01", "--steps", "10000", "--epsilon", "5.632", "--delta", "1e-5"]);
    const sigma = Number(lines[lines.length - 1]);
    expect(lines[lines.length - 1]).toMatch(/^\d+\.\d+$/);
    expect(sigma).toBeGreaterThan(1.09);
    expect(sigma).toBeLessThanOrEqual(1.1);
    const back = await run(["epsilon", "--sampling-rate", "0.01", "--noise-multiplier", lines[lines.length - 1], "--steps", "10000", "--delta", "1e-5"]);
    expect(Number(back[back.length - 1])).toBeLessThanOrEqual(5.632);
  });

  it("explains a budget that cannot be met", async () => {
    const err = await failure(["noise", "--sampling-rate", "0.01", "--steps", "100", "--epsilon", "0.01", "--delta", "1e-5"]);
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).hint).toBeTruthy();
    const bad = await failure(["noise", "--sampling-rate", "0.01", "--steps", "100", "--epsilon", "-2", "--delta", "1e-5"]);
    expect((bad as FedsynthError).message).toContain("--epsilon");
  });
});
