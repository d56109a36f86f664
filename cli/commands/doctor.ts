/** `fedsynth doctor`: what this machine offers fedsynth — Node, CPUs, the TensorFlow.js backend and how fast it multiplies. */
import type { Command } from "commander";
import { arch, availableParallelism, cpus, platform, release } from "node:os";
import { VERSION } from "../version.js";
import { createLogger, type LogLevel } from "../../shared/telemetry/log.js";
import type { BackendInfo } from "../../shared/tf/backend.js";

/** The quick profile: one MLP-sized layer with batch 256. */
const PROFILE_SHAPES = [{ m: 256, k: 128, n: 128 }];

export interface DoctorReport {
  fedsynth: string;
  node: string;
  platform: string;
  arch: string;
  osRelease: string;
  cpus: number;
  cpuModel?: string;
  tensorflow: ({ ok: true } & BackendInfo) | { ok: false; error: string; hint?: string };
  matmul?: {
    backend: string;
    elapsedMs: number;
    timings: { shape: string; variant: string; gflops: number; bestMs: number; slowdown?: number; maxAbsDiff: number }[];
  };
}

export async function doctorReport(): Promise<DoctorReport> {
  // Loaded here, not at the top: TensorFlow.js takes most of a second to import and other commands do not need it.
  const { initTensorflow } = await import("../../shared/tf/backend.js");
  const { profileMatMul, formatShape, slowdowns } = await import("../../shared/tf/matmul-profile.js");
  const { FedsynthError } = await import("../../shared/errors.js");

  const report: DoctorReport = {
    fedsynth: VERSION,
    node: process.version,
    platform: platform(),
    arch: arch(),
    osRelease: release(),
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model?.trim() || undefined,
    tensorflow: { ok: false, error: "not started" },
  };
  // doctor prints the choice itself; the logger only speaks up for problems (or at FEDSYNTH_LOG_LEVEL=debug).
  const level: LogLevel = process.env.FEDSYNTH_LOG_LEVEL === "debug" ? "debug" : "warn";
  try {
    const info = await initTensorflow({ log: createLogger("tensorflow", { level }) });
    report.tensorflow = { ok: true, ...info };
  } catch (err) {
    const e = FedsynthError.from(err);
    report.tensorflow = { ok: false, error: e.message, hint: e.hint };
    return report;
  }
  const profile = await profileMatMul(PROFILE_SHAPES, { samples: 5, sampleMs: 20 });
  const slow = slowdowns(profile);
  report.matmul = {
    backend: profile.backend,
    elapsedMs: round(profile.elapsedMs, 0),
    timings: profile.timings.map((t) => ({
      shape: formatShape(t.shape),
      variant: t.variant,
      gflops: round(t.gflops, 2),
      bestMs: round(t.bestMs, 3),
      slowdown: t.variant === "plain" ? undefined : round(slow.find((s) => s.shape === t.shape && s.variant === t.variant)?.slowdown ?? NaN, 2),
      maxAbsDiff: t.maxAbsDiff,
    })),
  };
  return report;
}

export function formatDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  lines.push(`fedsynth ${r.fedsynth}`);
  lines.push(`node        ${r.node} on ${r.platform}/${r.arch} (${r.osRelease})`);
  lines.push(`cpus        ${r.cpus}${r.cpuModel ? ` × ${r.cpuModel}` : ""}`);
  const t = r.tensorflow;
  if (!t.ok) {
    lines.push(`tensorflow  NOT AVAILABLE: ${t.error}`);
    if (t.hint) lines.push(`            → ${t.hint}`);
    return lines.join("\n");
  }
  const simd = t.simd === undefined ? "" : `, SIMD ${t.simd ? "on" : "off"}`;
  lines.push(`tensorflow  backend ${t.backend} (tf.getBackend() = "${t.tfBackend}")${t.forced ? ", forced by FEDSYNTH_TF_BACKEND" : ""}`);
  lines.push(`            ${t.package} ${t.version}, @tensorflow/tfjs-core ${t.coreVersion}`);
  lines.push(`            ${t.threads} thread${t.threads === 1 ? "" : "s"}${simd}`);
  for (const f of t.fallbacks) lines.push(`            not ${f.backend}: ${f.error}`);
  if (r.matmul) {
    lines.push(`matMul      on ${r.matmul.backend}, best of 5 (${r.matmul.elapsedMs} ms in all)`);
    for (const m of r.matmul.timings) {
      const label = m.variant === "plain" ? "plain" : m.variant;
      const slower = m.slowdown !== undefined && Number.isFinite(m.slowdown) ? `  ${m.slowdown >= 1 ? `${m.slowdown.toFixed(1)}× slower` : `${(1 / m.slowdown).toFixed(1)}× faster`} than plain` : "";
      lines.push(`            ${m.shape} ${label.padEnd(10)} ${m.gflops.toFixed(2).padStart(7)} GFLOP/s${slower}`);
    }
    const worst = Math.max(...r.matmul.timings.map((m) => m.slowdown ?? 0).filter(Number.isFinite));
    if (worst >= 2) lines.push(`            note: transposed matMul is up to ${worst.toFixed(1)}× slower here; store operands pre-transposed or tf.transpose() them before a plain matMul`);
  }
  return lines.join("\n");
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function registerDoctorCommand(program: Command): void {
  program
    .command("doctor")
    .description("check this machine: Node, CPUs, the TensorFlow.js backend fedsynth uses (and why not the others) and a quick matMul speed test")
    .option("--json", "print the report as JSON")
    .action(async (opts: { json?: boolean }) => {
      const report = await doctorReport();
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + "\n" : formatDoctor(report) + "\n");
      if (!report.tensorflow.ok) process.exitCode = 1;
    });
}
