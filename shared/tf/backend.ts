/**
 * Picks and starts the TensorFlow.js backend, once per process.
 *
 * Order: `@tensorflow/tfjs-node` (native libtensorflow; an optional dependency whose install downloads
 * libtensorflow, so it is usually absent), then `@tensorflow/tfjs-backend-wasm` (XNNPACK compiled to
 * WebAssembly; the .wasm files ship inside the npm package), then `@tensorflow/tfjs-backend-cpu` (plain JS).
 * `FEDSYNTH_TF_BACKEND=node|wasm|cpu` forces one and fails clearly when it cannot start.
 *
 * Threads in Node: tfjs-backend-wasm turns its multi-threaded build off in Node (its flag
 * WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false there), and forcing the flag on does not work either:
 * the pthread workers are Blob URLs, which Node's worker_threads refuses (ERR_WORKER_PATH). So wasm runs
 * on one thread with SIMD; `threads` only matters where the runtime supports wasm threads.
 */
import * as tf from "@tensorflow/tfjs-core";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, join, sep } from "node:path";
import { FedsynthError } from "../errors.js";
import { createLogger, type Logger } from "../telemetry/log.js";

export type BackendName = "node" | "wasm" | "cpu";
export const BACKEND_NAMES: readonly BackendName[] = ["node", "wasm", "cpu"];

/** The package that provides each backend (named in errors and by `fedsynth doctor`). */
export const BACKEND_PACKAGES: Record<BackendName, string> = {
  node: "@tensorflow/tfjs-node",
  wasm: "@tensorflow/tfjs-backend-wasm",
  cpu: "@tensorflow/tfjs-backend-cpu",
};

export const BACKEND_ENV = "FEDSYNTH_TF_BACKEND";

export interface BackendFallback {
  backend: BackendName;
  /** Why it was not used, on one line. */
  error: string;
}

export interface BackendInfo {
  /** fedsynth's name for the backend. */
  backend: BackendName;
  /** The name TensorFlow.js knows it by (`tf.getBackend()`): "tensorflow", "wasm" or "cpu". */
  tfBackend: string;
  /** The npm package that provides it. */
  package: string;
  /** The backend package's version. */
  version: string;
  /** @tensorflow/tfjs-core's version. */
  coreVersion: string;
  /** Threads the backend computes with (for tfjs-node: libtensorflow's own pool, sized to the cores). */
  threads: number;
  /** wasm only: whether the SIMD build was loaded. */
  simd?: boolean;
  /** Set when FEDSYNTH_TF_BACKEND chose the backend. */
  forced?: boolean;
  /** Backends tried before this one, in order, and why each was not used. */
  fallbacks: BackendFallback[];
}

export interface InitOptions {
  /** Try this backend first; the others follow in the usual order if it cannot start. */
  prefer?: BackendName;
  /** Threads for the wasm backend, where the runtime supports wasm threads (not Node: see above). */
  threads?: number;
  log?: Logger;
}

let pending: Promise<BackendInfo> | undefined;
let active: BackendInfo | undefined;

/**
 * Starts TensorFlow.js on the best backend that works here and says which. Idempotent: the first call
 * decides and later calls get the same answer (their options are ignored). A failed start is not
 * remembered, so a later call tries again.
 */
export function initTensorflow(opts: InitOptions = {}): Promise<BackendInfo> {
  if (!pending) {
    const p = start(opts);
    pending = p;
    p.then(
      (info) => { active = info; },
      () => { if (pending === p) pending = undefined; },
    );
  }
  return pending;
}

/** The backend initTensorflow chose, or undefined before it has finished. */
export function activeBackend(): BackendInfo | undefined {
  return active;
}

/** Tests only: forget the choice so the next initTensorflow decides again (backends stay registered). */
export function resetTensorflowForTests(): void {
  pending = undefined;
  active = undefined;
}

/** FEDSYNTH_TF_BACKEND, checked; undefined when unset, empty or "auto". */
export function forcedBackend(env: NodeJS.ProcessEnv = process.env): BackendName | undefined {
  const raw = env[BACKEND_ENV]?.trim().toLowerCase();
  if (!raw || raw === "auto") return undefined;
  if ((BACKEND_NAMES as readonly string[]).includes(raw)) return raw as BackendName;
  throw new FedsynthError("invalid-argument", `${BACKEND_ENV}=${JSON.stringify(env[BACKEND_ENV])} is not a TensorFlow.js backend fedsynth knows`, {
    hint: `set it to one of ${BACKEND_NAMES.join(", ")} (or unset it to pick automatically)`,
  });
}

async function start(opts: InitOptions): Promise<BackendInfo> {
  const log = opts.log ?? createLogger("tensorflow");
  const forced = forcedBackend();
  const order: BackendName[] = forced
    ? [forced]
    : opts.prefer
      ? [opts.prefer, ...BACKEND_NAMES.filter((b) => b !== opts.prefer)]
      : [...BACKEND_NAMES];
  const fallbacks: BackendFallback[] = [];
  for (const name of order) {
    try {
      const info = await LOADERS[name](opts, log);
      info.fallbacks = fallbacks;
      if (forced) info.forced = true;
      log.info("TensorFlow.js backend chosen", {
        backend: info.backend,
        version: info.version,
        threads: info.threads,
        simd: info.simd,
        forced: info.forced,
        fallbacks: fallbacks.length ? fallbacks.map((f) => `${f.backend}: ${f.error}`).join("; ") : undefined,
      });
      return info;
    } catch (err) {
      const error = oneLine(err);
      if (forced) {
        throw new FedsynthError("failed-precondition", `${BACKEND_ENV}=${forced}, but the ${forced} TensorFlow.js backend (${BACKEND_PACKAGES[forced]}) cannot start: ${error}`, {
          hint: forced === "node"
            ? `install ${BACKEND_PACKAGES.node} where its install script can download libtensorflow, or set ${BACKEND_ENV}=wasm (or unset it)`
            : `reinstall fedsynth's dependencies (npm install), or unset ${BACKEND_ENV} to pick automatically`,
          cause: err,
        });
      }
      fallbacks.push({ backend: name, error });
      log.debug("TensorFlow.js backend unavailable", { backend: name, error });
    }
  }
  throw new FedsynthError("failed-precondition", `no TensorFlow.js backend could start: ${fallbacks.map((f) => `${f.backend}: ${f.error}`).join("; ")}`, {
    hint: "reinstall fedsynth's dependencies (npm install); `fedsynth doctor` shows what is installed",
  });
}

type Loader = (opts: InitOptions, log: Logger) => Promise<BackendInfo>;

const LOADERS: Record<BackendName, Loader> = {
  async node(_opts, log) {
    const pkg = BACKEND_PACKAGES.node;
    let mod: { version?: unknown };
    try {
      // A variable specifier: the package is optional, so neither tsc nor a bundler may insist on it.
      const specifier: string = pkg;
      mod = (await import(specifier)) as { version?: unknown };
    } catch (err) {
      if (isNotFound(err, pkg)) throw new Error(`${pkg} is not installed (an optional dependency: its install downloads libtensorflow)`);
      throw new Error(`${pkg} is installed but does not load: ${oneLine(err)}`);
    }
    await activate("tensorflow", log);
    const v = mod.version;
    const version = typeof v === "string" ? v
      : v && typeof v === "object" && typeof (v as Record<string, unknown>)["tfjs-node"] === "string" ? (v as Record<string, string>)["tfjs-node"]
      : packageVersion(pkg);
    return base("node", "tensorflow", version, availableParallelism());
  },

  async wasm(opts, log) {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    wasm.setWasmPaths(wasmDirectory());
    const multithread = (await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")) === true;
    if (opts.threads !== undefined) {
      if (multithread) wasm.setThreadsCount(opts.threads);
      else if (opts.threads > 1) log.debug("wasm threads are not available in this runtime; using one thread", { requested: opts.threads });
    }
    await activate("wasm", log);
    const simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) === true;
    return { ...base("wasm", "wasm", wasm.version_wasm, wasm.getThreadsCount()), simd };
  },

  async cpu(_opts, log) {
    const cpu = await import("@tensorflow/tfjs-backend-cpu");
    await activate("cpu", log);
    return base("cpu", "cpu", cpu.version_cpu, 1);
  },
};

function base(backend: BackendName, tfBackend: string, version: string, threads: number): BackendInfo {
  return { backend, tfBackend, package: BACKEND_PACKAGES[backend], version, coreVersion: tf.version_core, threads, fallbacks: [] };
}

/**
 * tf.setBackend, then a 2×2 matMul checked against the known answer. TensorFlow.js reports a failed
 * start only through console.warn and a `false`; those lines are caught here (and logged at debug), so
 * the error can be reported on one line and the cpu backend's "install our node backend" banner stays off
 * the terminal.
 */
async function activate(tfName: string, log: Logger): Promise<void> {
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => { warnings.push(args.map(String).join(" ")); };
  let ok = false;
  let check: number[] = [];
  try {
    ok = await tf.setBackend(tfName);
    if (ok) {
      await tf.ready();
      check = tf.tidy(() => Array.from(tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).dataSync()));
    }
  } finally {
    console.warn = warn;
  }
  for (const w of warnings) log.debug("TensorFlow.js said", { backend: tfName, message: oneLine(w.trim()) });
  if (!ok) {
    const reason = warnings.find((w) => !/^Initialization of backend/.test(w.trim()));
    throw new Error(reason ? oneLine(reason.trim()) : `tf.setBackend("${tfName}") failed`);
  }
  if (check.join(",") !== "19,22,43,50") throw new Error(`a 2×2 matMul gave [${check.join(", ")}] instead of [19, 22, 43, 50]`);
}

/** The directory holding tfjs-backend-wasm's .wasm files (beside its Node entry point), with a trailing separator. */
export function wasmDirectory(): string {
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve(BACKEND_PACKAGES.wasm));
  for (const f of ["tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"]) {
    if (!existsSync(join(dir, f))) throw new Error(`${f} is missing from ${dir}`);
  }
  return dir + sep;
}

function packageVersion(pkg: string): string {
  try {
    const require = createRequire(import.meta.url);
    return (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

function isNotFound(err: unknown, pkg: string): boolean {
  const e = err as { code?: string; message?: string };
  return (e?.code === "ERR_MODULE_NOT_FOUND" || e?.code === "MODULE_NOT_FOUND") && String(e.message).includes(`'${pkg}'`);
}

/** An error as one short line: its first line, spaces collapsed, at most 240 characters. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : typeof err === "object" && err && "message" in err ? String((err as { message: unknown }).message) : String(err);
  const first = text.split("\n").map((l) => l.trim()).find((l) => l.length > 0) ?? "unknown error";
  const line = first.replace(/\s+/g, " ");
  return line.length > 240 ? line.slice(0, 237) + "..." : line;
}
