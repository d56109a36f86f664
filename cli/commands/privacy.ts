/**
 * `fedsynth privacy`: the DP-SGD accountant on the command line — the epsilon a training run spends, or
 * the noise it needs for a budget — computed by the same functions that charge the sites.
 */
import type { Command } from "commander";
import { Accountant } from "../../shared/privacy/accountant.js";
import { calibrateNoiseMultiplier } from "../../shared/privacy/calibrate.js";
import type { Mechanism } from "../../shared/privacy/mechanism.js";
import { parseCount, parsePositive, parseProbability, usage } from "../options.js";

/** A number in (0, 1], or a fraction such as 256/60000 (expected batch size / records). */
function parseSamplingRate(value: string): number {
  const fraction = /^\s*([^/\s]+)\s*\/\s*([^/\s]+)\s*$/.exec(value);
  const n = fraction ? Number(fraction[1]) / Number(fraction[2]) : value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 1) {
    throw usage(
      `--sampling-rate must be a number in (0, 1], got ${JSON.stringify(value)}`,
      "the Poisson sampling rate q is the expected batch size divided by the number of records, e.g. 256/60000 ≈ 0.0042667",
    );
  }
  return n;
}

function parseFinitePositive(flag: string) {
  const positive = parsePositive(flag);
  return (value: string): number => {
    if (value.trim() === "") throw usage(`${flag} must be a positive number, got ${JSON.stringify(value)}`);
    return positive(value);
  };
}

/** How the accountant obtained the number, in one line. */
function methodLine(method: string, order: number | undefined): string {
  if (method === "gdp") return "accounted exactly in Gaussian DP (sampling rate 1: every record in every step is a plain Gaussian mechanism)";
  if (method === "none") return "nothing is spent";
  return `accounted in Rényi DP (Mironov, Talwar & Zhang 2019) at Opacus's default orders, converted with Balle et al. 2020 (Theorem 21); best order ${order}`;
}

export interface EpsilonQuery {
  samplingRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
}

/** The lines `fedsynth privacy epsilon` prints; the last is the epsilon alone. */
export function epsilonReport(q: EpsilonQuery): string[] {
  const mechanism: Mechanism = { kind: "subsampled-gaussian", samplingRate: q.samplingRate, noiseMultiplier: q.noiseMultiplier, steps: q.steps, clipNorm: 1 };
  const spent = Accountant.spentOf([mechanism], q.delta);
  return [
    `DP-SGD with Poisson sampling rate ${q.samplingRate}, noise multiplier ${q.noiseMultiplier} (noise std / clip norm), ${q.steps} steps, at delta ${q.delta}:`,
    `${methodLine(spent.method, spent.order)}; the epsilon below is an upper bound.`,
    String(spent.epsilon),
  ];
}

export interface NoiseQuery {
  samplingRate: number;
  steps: number;
  epsilon: number;
  delta: number;
}

/** The lines `fedsynth privacy noise` prints; the last is the noise multiplier alone. */
export function noiseReport(q: NoiseQuery): string[] {
  const sigma = calibrateNoiseMultiplier(q);
  const spent = Accountant.spentOf([{ kind: "subsampled-gaussian", samplingRate: q.samplingRate, noiseMultiplier: sigma, steps: q.steps, clipNorm: 1 }], q.delta);
  return [
    `DP-SGD with Poisson sampling rate ${q.samplingRate} and ${q.steps} steps, within epsilon ${q.epsilon} at delta ${q.delta}:`,
    `the smallest noise multiplier (noise std / clip norm), rounded up, spends epsilon ${spent.epsilon}; ${methodLine(spent.method, spent.order)}.`,
    String(sigma),
  ];
}

export function registerPrivacyCommands(program: Command): void {
  const privacy = program
    .command("privacy")
    .description("the DP-SGD privacy accountant: epsilon of a training run, or the noise a budget needs");

  privacy
    .command("epsilon")
    .description("epsilon spent by DP-SGD (Poisson-subsampled Gaussian mechanism); prints the number alone on the last line")
    .requiredOption("--sampling-rate <q>", "Poisson sampling rate: expected batch size / number of records, in (0, 1]", parseSamplingRate)
    .requiredOption("--noise-multiplier <sigma>", "noise standard deviation divided by the clipping norm, > 0", parseFinitePositive("--noise-multiplier"))
    .requiredOption("--steps <n>", "number of noisy steps (epochs × records / batch size)", parseCount("--steps"))
    .requiredOption("--delta <d>", "the delta of (epsilon, delta)-DP, in (0, 1), e.g. 1e-5", parseProbability("--delta"))
    .action((opts: EpsilonQuery) => {
      process.stdout.write(epsilonReport(opts).join("\n") + "\n");
    });

  privacy
    .command("noise")
    .description("smallest DP-SGD noise multiplier that stays within (epsilon, delta); prints the number alone on the last line")
    .requiredOption("--sampling-rate <q>", "Poisson sampling rate: expected batch size / number of records, in (0, 1]", parseSamplingRate)
    .requiredOption("--steps <n>", "number of noisy steps (epochs × records / batch size)", parseCount("--steps"))
    .requiredOption("--epsilon <e>", "the privacy budget epsilon, > 0", parseFinitePositive("--epsilon"))
    .requiredOption("--delta <d>", "the delta of (epsilon, delta)-DP, in (0, 1), e.g. 1e-5", parseProbability("--delta"))
    .action((opts: NoiseQuery) => {
      process.stdout.write(noiseReport(opts).join("\n") + "\n");
    });
}
