/**
 * The deployment artifacts in deploy/ checked against the real product, since no Docker engine, Kubernetes
 * cluster or systemd manager runs here:
 *
 * - every `fedsynth ...` command line in the Dockerfiles, compose.yaml, the Helm chart, the systemd unit and
 *   deploy/README.md is extracted and checked against the built CLI's own --help: the command exists and
 *   every --flag it passes is one that command accepts;
 * - the Dockerfiles, compose.yaml, the chart and the unit have the structure they promise (non-root, health
 *   checks, only the coordinator listens, probes on the health port, the sandbox directives, ...);
 * - and, across real processes, the health commands and the plaintext health port those artifacts rely
 *   on: `coordinator init` + `coordinator start --health-listen` on a data directory laid out as the Helm
 *   chart mounts it, `fedsynth health coordinator` over TLS and on the plaintext port, a site enrolled and
 *   started as compose.yaml does it, `fedsynth health site`, and NOT_SERVING once the coordinator is told
 *   to stop.
 */
import { LIVENESS_SERVICE } from "../coordinator/grpc/server.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { parse as parseYaml } from "yaml";
import { CliProcess, EXAMPLES, ROOT, runCli, tempDir, until } from "./support/cli.js";

const DEPLOY = join(ROOT, "deploy");
const CHART = join(DEPLOY, "helm", "fedsynth-coordinator");
const read = (...p: string[]) => readFileSync(join(...p), "utf8");

// ---- the real CLI, as its --help describes it -----------------------------------------------------------------

interface HelpPage {
  options: Set<string>;
  commands: string[];
}

function parseHelp(text: string): HelpPage {
  const options = new Set<string>();
  const commands: string[] = [];
  let section = "";
  for (const line of text.split("\n")) {
    const heading = /^(\w[\w ]*):\s*$/.exec(line);
    if (heading) {
      section = heading[1];
      continue;
    }
    if (section === "Options") {
      // "  --data-dir <dir>  ..." or "  -h, --help  ..."; wrapped descriptions are indented further.
      const m = /^ {2}(?:-\w, )?(--[a-z0-9][\w-]*)/.exec(line);
      if (m) options.add(m[1]);
    } else if (section === "Commands") {
      const m = /^ {2}([a-z][\w-]*)/.exec(line);
      if (m && m[1] !== "help") commands.push(m[1]);
    }
  }
  return { options, commands };
}

const helpCache = new Map<string, Promise<HelpPage>>();
function help(path: string[]): Promise<HelpPage> {
  const key = path.join(" ");
  if (!helpCache.has(key)) {
    helpCache.set(key, runCli([...path, "--help"]).then((r) => {
      if (r.code !== 0) throw new Error(`fedsynth ${key} --help failed: ${r.stderr}`);
      return parseHelp(r.stdout);
    }));
  }
  return helpCache.get(key)!;
}

/** What is wrong with `fedsynth ARGS` (empty: nothing), and the command path it names. */
async function checkAgainstCli(args: string[]): Promise<{ path: string[]; problems: string[] }> {
  const root = await help([]);
  const [first, second] = args;
  if (!first || !root.commands.includes(first)) return { path: [], problems: [`no command 'fedsynth ${first ?? ""}' (the CLI has: ${root.commands.join(", ")})`] };
  const top = await help([first]);
  let path = [first];
  if (top.commands.length > 0 && second !== "--help") {
    if (!second || !top.commands.includes(second)) return { path, problems: [`no command 'fedsynth ${first} ${second ?? ""}' (it has: ${top.commands.join(", ")})`] };
    path = [first, second];
  }
  const page = path.length === 1 ? top : await help(path);
  const problems = args
    .filter((a) => a.startsWith("--"))
    .map((a) => a.split("=")[0])
    .filter((flag) => !page.options.has(flag))
    .map((flag) => `fedsynth ${path.join(" ")} has no option ${flag}`);
  return { path, problems };
}

interface FoundCommand {
  where: string;
  args: string[];
}

/** Checks every command, and returns the command paths found ("coordinator start", ...) with their args. */
async function checkAll(found: FoundCommand[]): Promise<Map<string, string[][]>> {
  const byPath = new Map<string, string[][]>();
  const problems: string[] = [];
  for (const c of found) {
    const r = await checkAgainstCli(c.args);
    problems.push(...r.problems.map((p) => `${c.where}: fedsynth ${c.args.join(" ")}\n    → ${p}`));
    const key = r.path.join(" ");
    byPath.set(key, [...(byPath.get(key) ?? []), c.args]);
  }
  expect(problems, problems.join("\n")).toEqual([]);
  return byPath;
}

// ---- extracting command lines -----------------------------------------------------------------------------------

function matchParen(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === "(") depth++;
    else if (s[i] === ")" && --depth === 0) return i;
  }
  throw new Error(`unbalanced $( in: ${s}`);
}

/** The simple commands of a POSIX shell script, as word lists (quotes removed, $(...) kept as one word). */
export function shellWords(script: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = "";
  let inWord = false;
  let dropNext = false;
  const endWord = () => {
    if (!inWord) return;
    if (dropNext) dropNext = false;
    else words.push(word);
    word = "";
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  for (let i = 0; i < script.length; i++) {
    const c = script[i];
    if (c === "\\" && script[i + 1] === "\n") { i++; continue; }
    if (c === "\\") { word += script[i + 1] ?? ""; inWord = true; i++; continue; }
    if (c === "'") {
      const j = script.indexOf("'", i + 1);
      if (j < 0) throw new Error(`unterminated ' in: ${script}`);
      word += script.slice(i + 1, j); inWord = true; i = j; continue;
    }
    if (c === '"') {
      let j = i + 1;
      for (; j < script.length && script[j] !== '"'; j++) {
        if (script[j] === "\\") { word += script[++j]; continue; }
        if (script[j] === "$" && script[j + 1] === "(") { const k = matchParen(script, j + 1); word += script.slice(j, k + 1); j = k; continue; }
        word += script[j];
      }
      if (j >= script.length) throw new Error(`unterminated " in: ${script}`);
      inWord = true; i = j; continue;
    }
    if (c === "$" && script[i + 1] === "(") { const k = matchParen(script, i + 1); word += script.slice(i, k + 1); inWord = true; i = k; continue; }
    if (c === "#" && !inWord) { const j = script.indexOf("\n", i); i = (j < 0 ? script.length : j) - 1; continue; }
    if (c === "\n" || c === ";" || c === "&" || c === "|") { endCommand(); continue; }
    if (c === ">" || c === "<") {
      if (/^\d$/.test(word)) { word = ""; inWord = false; }
      endWord();
      while (script[i + 1] === ">" || script[i + 1] === "&") i++;
      dropNext = true;
      continue;
    }
    if (/\s/.test(c)) { endWord(); continue; }
    word += c; inWord = true;
  }
  endCommand();
  return commands;
}

const IMAGE = /^(?:[\w.-]+(?::\d+)?\/)*fedsynth-(coordinator|site-agent)(:[\w.-]+)?$/;
/** docker run options that take no value. */
const DOCKER_RUN_SWITCHES = new Set(["--rm", "-d", "--detach", "-i", "-t", "-it", "-ti", "--interactive", "--tty", "--read-only", "--init"]);

/** The fedsynth arguments of one simple command, or undefined when it does not run fedsynth. */
export function fedsynthArgs(words: string[]): string[] | undefined {
  let w = [...words];
  for (;;) {
    const head = w[0];
    if (head === undefined) return undefined;
    if (["if", "then", "else", "elif", "do", "while", "until", "!", "exec", "time", "command", "npx", "env"].includes(head) || /^[A-Za-z_]\w*=/.test(head)) { w = w.slice(1); continue; }
    if (head === "sudo") {
      w = w.slice(1);
      while (w[0]?.startsWith("-")) w = w.slice(w[0] === "-u" || w[0] === "-g" ? 2 : 1);
      continue;
    }
    break;
  }
  if (w[0] === "fedsynth" || /\/bin\/fedsynth$/.test(w[0])) return w.slice(1);
  if (w[0] === "docker") {
    // docker run [OPTIONS] IMAGE ARGS (no ARGS: the image's default command, checked from its Dockerfile).
    if (w[1] === "run") {
      let k = 2;
      while (w[k]?.startsWith("-")) k += w[k].includes("=") || DOCKER_RUN_SWITCHES.has(w[k]) ? 1 : 2;
      if (w[k] && IMAGE.test(w[k])) return w.length > k + 1 ? w.slice(k + 1) : undefined;
      return undefined;
    }
    // docker compose ... run [--rm] operator ARGS: the compose file's operator service runs the CLI.
    const run = w.indexOf("run");
    if (w[1] === "compose" && run > 0) {
      let k = run + 1;
      while (w[k]?.startsWith("-")) k++;
      if (w[k] === "operator") return w.slice(k + 1);
    }
  }
  return undefined;
}

function commandsIn(where: string, script: string): FoundCommand[] {
  return shellWords(script).map((words) => fedsynthArgs(words)).filter((a): a is string[] => a !== undefined).map((args) => ({ where, args }));
}

/** Shell examples in `#` comments: lines indented by two spaces or more after the `#` (prose has one). */
function commentExamples(where: string, text: string): FoundCommand[] {
  const blocks: string[] = [];
  let current: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*#(\s{2,}\S.*)$/.exec(line);
    if (m) current.push(m[1]);
    else if (current.length) { blocks.push(current.join("\n")); current = []; }
  }
  if (current.length) blocks.push(current.join("\n"));
  return blocks.flatMap((b) => commandsIn(`${where} (comment)`, b));
}

// ---- Dockerfiles ------------------------------------------------------------------------------------------------

interface Instruction {
  cmd: string;
  args: string;
  stage: number;
}

function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = "";
  for (const raw of text.split("\n")) {
    if (/^\s*#/.test(raw) || (!pending && !raw.trim())) continue;
    pending += (pending ? " " : "") + raw.trim().replace(/\\$/, "").trim();
    if (raw.trimEnd().endsWith("\\")) continue;
    const m = /^(\w+)\s+(.*)$/s.exec(pending);
    pending = "";
    if (!m) continue;
    const cmd = m[1].toUpperCase();
    if (cmd === "FROM") stage++;
    out.push({ cmd, args: m[2].trim(), stage });
  }
  return out;
}

function jsonArray(args: string): string[] {
  const parsed = JSON.parse(args);
  expect(Array.isArray(parsed) && parsed.every((x) => typeof x === "string"), `not an exec-form JSON array: ${args}`).toBe(true);
  return parsed;
}

interface Dockerfile {
  name: string;
  text: string;
  all: Instruction[];
  runtime: Instruction[];
  build: Instruction[];
  entrypoint: string[];
  cmd: string[];
  healthcheck: string[];
}

function loadDockerfile(name: string): Dockerfile {
  const text = read(DEPLOY, "docker", name);
  const all = parseDockerfile(text);
  const last = Math.max(...all.map((i) => i.stage));
  const runtime = all.filter((i) => i.stage === last);
  const one = (cmd: string) => {
    const found = runtime.filter((i) => i.cmd === cmd);
    expect(found, `${name}: exactly one ${cmd} in the runtime stage`).toHaveLength(1);
    return found[0].args;
  };
  const hc = /^(?:--[\w-]+=\S+\s+)*CMD\s+(\[.*\])$/.exec(one("HEALTHCHECK"));
  expect(hc, `${name}: HEALTHCHECK [options] CMD [exec form]`).not.toBeNull();
  return {
    name, text, all, runtime, build: all.filter((i) => i.stage >= 0 && i.stage < last),
    entrypoint: jsonArray(one("ENTRYPOINT")), cmd: jsonArray(one("CMD")), healthcheck: jsonArray(hc![1]),
  };
}

function flagValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(flag + "="))?.slice(flag.length + 1);
}

function dockerignoreMatches(patterns: string[], path: string): boolean {
  const clean = path.replace(/\/$/, "");
  let ignored = false;
  for (const p of patterns) {
    const negate = p.startsWith("!");
    const glob = (negate ? p.slice(1) : p).replace(/\/$/, "");
    const re = new RegExp("^" + glob.split("**/").map((part) => part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")).join("(?:.*/)?") + "(?:/.*)?$");
    if (re.test(clean)) ignored = !negate;
  }
  return ignored;
}

// ---- the Helm chart: an approximate render of this chart's templates (not Helm; there is no helm here) ---------

function lookup(root: unknown, path: string): unknown {
  return path.split(".").filter(Boolean).reduce<any>((v, k) => (v == null ? undefined : v[k]), root);
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === "object") return Object.keys(v).length > 0;
  return Boolean(v);
}

/**
 * Renders the subset of Go templates these templates use: `.Values`/`.Chart`/`.Release` lookups, `include` of
 * the name/fullname/image helpers, `quote` and `int`, and whole-line `if`/`with`/`range`/`fail` blocks. A
 * whole line that is `{{ include ... | nindent }}` or `{{ toYaml ... }}` (labels, copied values) is left out.
 * Anything else throws, so a template this cannot follow fails the test rather than passing unread.
 */
function renderApprox(template: string, ctx: { Values: any; Chart: any; Release: any }): string {
  const value = (expr: string): unknown => {
    const e = expr.trim();
    if (e.startsWith(".Values.") || e.startsWith(".Chart.") || e.startsWith(".Release.")) {
      const [scope, ...rest] = e.slice(1).split(".");
      const key = scope === "Chart" ? rest.map((r, i) => (i === 0 ? r[0].toLowerCase() + r.slice(1) : r)).join(".") : rest.join(".");
      return lookup((ctx as any)[scope], key);
    }
    const inc = /^include "fedsynth-coordinator\.(\w+)" \.$/.exec(e);
    if (inc) {
      if (inc[1] === "fullname") return `${ctx.Release.Name}-${ctx.Chart.name}`;
      if (inc[1] === "name") return ctx.Chart.name;
      if (inc[1] === "image") return `${ctx.Values.image.repository}:${ctx.Values.image.tag || ctx.Chart.appVersion}`;
    }
    const int = /^\(int (\S+)\)$/.exec(e);
    if (int) return Number(value(int[1]));
    throw new Error(`renderApprox cannot evaluate {{ ${e} }}`);
  };
  const pipeline = (expr: string): unknown => {
    const [head, ...fns] = expr.split("|").map((s) => s.trim());
    let v = value(head);
    for (const fn of fns) {
      if (fn === "quote") v = JSON.stringify(String(v ?? ""));
      else if (fn === "int") v = Number(v);
      else throw new Error(`renderApprox cannot apply ${fn}`);
    }
    return v;
  };
  const condition = (expr: string): boolean => {
    const e = expr.trim();
    if (e.startsWith("not ")) return !condition(e.slice(4));
    const eq = /^eq (\(int \S+\)) (\(int \S+\))$/.exec(e);
    if (eq) return value(eq[1]) === value(eq[2]);
    return truthy(value(e));
  };
  const out: string[] = [];
  const stack: boolean[] = [];
  const emitting = () => stack.every(Boolean);
  for (const line of template.split("\n")) {
    const t = line.trim();
    const ctl = /^\{\{-?\s*(if|with|range|else|end|fail)\b(.*?)\s*-?\}\}$/.exec(t);
    if (ctl) {
      const [, kw, rest] = ctl;
      if (kw === "if" || kw === "with") stack.push(emitting() && condition(rest));
      else if (kw === "range") {
        if (emitting() && truthy(value(rest))) throw new Error(`renderApprox cannot range over the non-empty ${rest.trim()}`);
        stack.push(false);
      }
      else if (kw === "else") stack.push(!stack.pop());
      else if (kw === "end") stack.pop();
      else if (kw === "fail" && emitting()) throw new Error(`the template fails: ${rest}`);
      continue;
    }
    if (!emitting()) continue;
    if (/^\{\{-?\s*(toYaml|include)\b.*\}\}$/.test(t)) continue;
    out.push(line.replace(/\{\{-?\s*(.*?)\s*-?\}\}/g, (_, e: string) => String(pipeline(e))));
  }
  expect(stack, "balanced template blocks").toEqual([]);
  return out.join("\n");
}

// ---- systemd ------------------------------------------------------------------------------------------------------

function parseUnit(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = "";
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t || t.startsWith("#") || t.startsWith(";")) continue;
    const s = /^\[(\w+)\]$/.exec(t);
    if (s) { section = s[1]; continue; }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(t);
    expect(kv, `unit line: ${t}`).not.toBeNull();
    const key = `${section}.${kv![1]}`;
    keys.set(key, [...(keys.get(key) ?? []), kv![2]]);
  }
  return keys;
}

// =================================================================================================================

const coordinatorDockerfile = () => loadDockerfile("coordinator.Dockerfile");
const siteDockerfile = () => loadDockerfile("site-agent.Dockerfile");
const compose = () => parseYaml(read(DEPLOY, "compose.yaml"), { merge: true }) as any;
const chartValues = () => parseYaml(read(CHART, "values.yaml")) as any;
const chartMeta = () => parseYaml(read(CHART, "Chart.yaml")) as any;
const renderChart = (file: string) => {
  const meta = chartMeta();
  return renderApprox(read(CHART, "templates", file), { Values: chartValues(), Chart: meta, Release: { Name: "release", Namespace: "fedsynth", Service: "Helm" } });
};
const statefulSet = () => parseYaml(renderChart("statefulset.yaml")) as any;
const unit = () => read(DEPLOY, "systemd", "fedsynth-site-agent.service");

/** Every fedsynth command a service of compose.yaml runs, with the image entrypoint its Dockerfile sets. */
function composeCommands(): FoundCommand[] {
  const file = compose();
  const found: FoundCommand[] = [];
  for (const [name, svc] of Object.entries<any>(file.services)) {
    const where = `compose.yaml services.${name}`;
    const dockerfile = loadDockerfile(svc.build.dockerfile.replace(/^deploy\/docker\//, ""));
    const entrypoint: string[] = svc.entrypoint ?? dockerfile.entrypoint;
    if (entrypoint.join(" ") === "/bin/sh -c") {
      expect(svc.command, `${where}: sh -c takes one script`).toHaveLength(1);
      found.push(...commandsIn(where, String(svc.command[0]).replace(/\$\$/g, "$")));
    } else {
      expect(entrypoint, `${where}: the image's own entrypoint`).toEqual(["fedsynth"]);
      if (svc.command) found.push({ where, args: svc.command });
    }
    const test = svc.healthcheck?.test;
    if (test) {
      expect(test[0], `${where}: healthcheck in exec form`).toBe("CMD");
      expect(test[1]).toBe("fedsynth");
      found.push({ where: `${where}.healthcheck`, args: test.slice(2) });
    }
  }
  return found;
}

describe("every fedsynth command line in deploy/ is one the real CLI accepts", () => {
  beforeAll(() => {
    expect(existsSync(join(ROOT, "dist", "cli", "main.js")), "build first: npx tsc -p tsconfig.json && node scripts/finish-build.mjs").toBe(true);
  });

  it("the checker itself rejects unknown commands and flags, and knows the new ones", async () => {
    expect((await checkAgainstCli(["site", "start", "--coordinator", "x", "--no-such-flag"])).problems).toEqual(["fedsynth site start has no option --no-such-flag"]);
    expect((await checkAgainstCli(["nosuch"])).problems[0]).toMatch(/no command 'fedsynth nosuch'/);
    expect((await checkAgainstCli(["site", "frobnicate"])).problems[0]).toMatch(/no command 'fedsynth site frobnicate'/);
    expect((await checkAgainstCli(["coordinator", "start", "--data-dir", "d", "--health-listen", "0.0.0.0:8081"])).problems).toEqual([]);
    expect((await checkAgainstCli(["health", "coordinator", "--address", "a", "--ca", "c", "--tls-server-name", "n"])).problems).toEqual([]);
    expect((await checkAgainstCli(["health", "site", "--data-dir", "d", "--max-age", "5", "--require-connected"])).problems).toEqual([]);
    // The extraction, on the shapes the artifacts use.
    expect(commandsIn("t", 'if [ ! -f x ]; then\n  t=$(node -p \'require("a")\')\n  fedsynth site enroll --token "$t" --x=1\nfi\nexec fedsynth site start --a b > /dev/null 2>&1'))
      .toEqual([{ where: "t", args: ["site", "enroll", "--token", "$t", "--x=1"] }, { where: "t", args: ["site", "start", "--a", "b"] }]);
    expect(commandsIn("t", "sudo -u svc /usr/local/bin/fedsynth site enroll \\\n  --name a\ndocker run --rm -v v:/d fedsynth-site-agent:0.1.0 site start --b\ndocker run -d --name fedsynth-coordinator -p 1:1 fedsynth-coordinator\ndocker compose -f f run --rm operator study list --c"))
      .toEqual([{ where: "t", args: ["site", "enroll", "--name", "a"] }, { where: "t", args: ["site", "start", "--b"] }, { where: "t", args: ["study", "list", "--c"] }]);
    expect(commandsIn("t", "echo fedsynth site; ls /var/lib/fedsynth --x")).toEqual([]);
  });

  it("the Dockerfiles: ENTRYPOINT + CMD, HEALTHCHECK and the examples in their comments", async () => {
    for (const [df, role] of [[coordinatorDockerfile(), "coordinator"], [siteDockerfile(), "site"]] as const) {
      expect(df.entrypoint, `${df.name}: the entrypoint is the fedsynth CLI itself`).toEqual(["fedsynth"]);
      expect(df.healthcheck[0]).toBe("fedsynth");
      const found = await checkAll([
        { where: `${df.name} CMD`, args: df.cmd },
        { where: `${df.name} HEALTHCHECK`, args: df.healthcheck.slice(1) },
        ...commentExamples(df.name, df.text),
      ]);
      expect(found.has(`health ${role}`), `${df.name}: its HEALTHCHECK is fedsynth health ${role}`).toBe(true);
      expect(df.healthcheck.slice(1, 3)).toEqual(["health", role]);
      const expected = role === "coordinator" ? ["coordinator init", "coordinator start"] : ["site enroll", "site start"];
      for (const path of expected) expect([...found.keys()], `${df.name} shows ${path}`).toContain(path);
    }
    expect(coordinatorDockerfile().cmd.slice(0, 2)).toEqual(["coordinator", "start"]);
  });

  it("compose.yaml: every service's command, script and healthcheck, and its usage comments", async () => {
    const found = await checkAll([...composeCommands(), ...commentExamples("compose.yaml", read(DEPLOY, "compose.yaml"))]);
    for (const path of ["coordinator init", "coordinator start", "site token", "site enroll", "site start", "health coordinator", "health site", "site list"]) {
      expect([...found.keys()], `compose.yaml runs fedsynth ${path}`).toContain(path);
    }
  });

  it("the Helm chart: the container's args, and the commands in NOTES.txt and values.yaml", async () => {
    const container = statefulSet().spec.template.spec.containers[0];
    const notes = renderChart("NOTES.txt");
    const found = await checkAll([
      { where: "statefulset.yaml args", args: container.args.map(String) },
      ...notes.split("\n").filter((l) => /^\s+fedsynth /.test(l)).flatMap((l) => commandsIn("NOTES.txt", l)),
      ...commentExamples("values.yaml", read(CHART, "values.yaml")),
    ]);
    expect(container.command, "the image's entrypoint (fedsynth) runs the args").toBeUndefined();
    expect(found.get("coordinator start")?.[0]).toContain("--health-listen");
    for (const path of ["health coordinator", "site token", "coordinator init"]) expect([...found.keys()]).toContain(path);
  });

  it("the systemd unit: ExecStart and the enrolment example in its comments", async () => {
    const keys = parseUnit(unit());
    const exec = keys.get("Service.ExecStart") ?? [];
    expect(exec).toHaveLength(1);
    const found = await checkAll([...commandsIn("ExecStart", exec[0].replace(/^[-@:+!]+/, "")), ...commentExamples("fedsynth-site-agent.service", unit())]);
    expect([...found.keys()].sort()).toEqual(["site enroll", "site start"]);
  });

  it("deploy/README.md: every fedsynth command in its code blocks", async () => {
    const readme = read(DEPLOY, "README.md");
    const blocks = [...readme.matchAll(/^```(?:sh|bash|shell|console)?\n([\s\S]*?)^```/gm)].map((m) => m[1]);
    expect(blocks.length).toBeGreaterThan(3);
    const found = await checkAll(blocks.flatMap((b) => commandsIn("deploy/README.md", b)));
    for (const path of ["coordinator init", "coordinator start", "site token", "site enroll", "site start", "health coordinator", "health site", "study create"]) {
      expect([...found.keys()], `deploy/README.md shows fedsynth ${path}`).toContain(path);
    }
  });
});

describe("the Dockerfiles", () => {
  it("are multi-stage: npm ci, build and prune in a build stage; a slim runtime with only the built CLI", () => {
    for (const df of [coordinatorDockerfile(), siteDockerfile()]) {
      const froms = df.all.filter((i) => i.cmd === "FROM");
      expect(froms.length, `${df.name}: a build stage and a runtime stage`).toBeGreaterThanOrEqual(2);
      for (const run of df.all.filter((i) => i.cmd === "RUN")) {
        const syntax = spawnSync("sh", ["-n", "-c", run.args], { encoding: "utf8" });
        expect(syntax.status, `${df.name}: RUN ${run.args}\n${syntax.stderr}`).toBe(0);
      }
      const buildRuns = df.build.filter((i) => i.cmd === "RUN").map((i) => i.args).join("\n");
      expect(buildRuns).toMatch(/\bapt-get install\b[^\n]*\bpython3\b[^\n]*\bmake\b[^\n]*\bg\+\+/);
      expect(buildRuns).toMatch(/\bnpm ci\b/);
      expect(buildRuns).toMatch(/\bnpm run build\b/);
      expect(buildRuns).toMatch(/\bnpm prune --omit=dev\b/);
      const nodeImage = /^ARG NODE_IMAGE=(\S+)$/m.exec(df.text)?.[1];
      expect(nodeImage).toMatch(/^node:20-bookworm-slim$/);
      expect(froms[froms.length - 1].args).toMatch(/^\$\{NODE_IMAGE\} AS runtime$/);
      // The runtime stage takes only the build's output, never the sources.
      const copies = df.runtime.filter((i) => i.cmd === "COPY").map((i) => i.args);
      expect(copies.every((c) => c.startsWith("--from=build "))).toBe(true);
      expect(copies.map((c) => c.split(/\s+/)[1]).sort()).toEqual(["/src/dist/", "/src/node_modules/", "/src/package.json"]);
    }
    // One build stage, so the two images share its cache.
    const stage = (df: Dockerfile) => df.build.map((i) => `${i.cmd} ${i.args}`);
    expect(stage(siteDockerfile())).toEqual(stage(coordinatorDockerfile()));
  });

  it("run as a fixed non-root UID, with a data volume and a health check; only the coordinator exposes a port", () => {
    for (const [df, dataDir] of [[coordinatorDockerfile(), "/var/lib/fedsynth"], [siteDockerfile(), "/var/lib/fedsynth-site"]] as const) {
      const user = df.runtime.filter((i) => i.cmd === "USER").map((i) => i.args);
      expect(user, `${df.name}: one USER`).toHaveLength(1);
      expect(user[0]).toMatch(/^\d+:\d+$/); // numeric, so that Kubernetes' runAsNonRoot can verify it
      expect(Number(user[0].split(":")[0])).toBeGreaterThanOrEqual(1000);
      expect(user[0]).toBe("10001:10001");
      expect(df.text).toMatch(/useradd --system --uid 10001 /);
      const volumes = df.runtime.filter((i) => i.cmd === "VOLUME").map((i) => jsonArray(i.args));
      expect(volumes).toEqual([[dataDir]]);
      expect(df.text).toContain(`install -d -o 10001 -g 10001 -m 0700 ${dataDir}`);
      // The health check and the default command use the volume as the data directory.
      const hcData = flagValue(df.healthcheck, "--data-dir") ?? flagValue(df.healthcheck, "--ca");
      expect(hcData?.startsWith(dataDir)).toBe(true);
    }
    const coordinator = coordinatorDockerfile();
    expect(coordinator.all.filter((i) => i.cmd === "EXPOSE").map((i) => i.args)).toEqual(["7070"]);
    expect(flagValue(coordinator.cmd, "--listen")).toBe("0.0.0.0:7070");
    expect(flagValue(coordinator.cmd, "--data-dir")).toBe("/var/lib/fedsynth");
    expect(flagValue(coordinator.healthcheck, "--address")).toBe("127.0.0.1:7070");
    expect(flagValue(coordinator.healthcheck, "--ca")).toBe("/var/lib/fedsynth/pki/ca.pem");
    const site = siteDockerfile();
    expect(site.all.filter((i) => i.cmd === "EXPOSE"), "the site agent never listens").toEqual([]);
  });

  it("the root .dockerignore keeps built and local state out, and lets in everything the build copies", () => {
    const patterns = read(ROOT, ".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    for (const p of [".git", "node_modules", "dist", "gen", "fedsynth-demo", "test", "cli/commands/health.test.ts", "x/y.pem", "d/coordinator.sqlite"]) {
      expect(dockerignoreMatches(patterns, p), `.dockerignore excludes ${p}`).toBe(true);
    }
    const sources = coordinatorDockerfile().build.filter((i) => i.cmd === "COPY").flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const s of sources) {
      expect(dockerignoreMatches(patterns, s), `.dockerignore must not exclude ${s}, which the build copies`).toBe(false);
      expect(existsSync(join(ROOT, s)), `${s} exists in the repository`).toBe(true);
    }
    // And those sources are everything tsc compiles.
    const include: string[] = JSON.parse(read(ROOT, "tsconfig.json")).include;
    for (const dir of include.filter((d) => d !== "gen")) expect(sources, `the build copies ${dir}/`).toContain(`${dir}/`);
  });
});

describe("compose.yaml", () => {
  it("is a coordinator, a one-shot init, a one-shot token issuer and three agents; only the coordinator publishes a port", () => {
    const file = compose();
    const services = file.services as Record<string, any>;
    const withPorts = Object.entries(services).filter(([, s]) => s.ports || s.expose).map(([n]) => n);
    expect(withPorts).toEqual(["coordinator"]);
    expect(services.coordinator.ports).toEqual(["127.0.0.1:7070:7070"]);
    expect(flagValue(services.coordinator.command, "--listen")).toBe("0.0.0.0:7070");
    for (const [name, s] of Object.entries(services)) {
      expect(s.read_only, `${name}: read-only root file system`).toBe(true);
      expect(s.cap_drop, `${name}: no capabilities`).toEqual(["ALL"]);
      expect(s.security_opt).toContain("no-new-privileges:true");
      expect(s.privileged).toBeUndefined();
      expect(s.network_mode).toBeUndefined();
      expect(s.user, `${name}: runs as the image's non-root user`).toBeUndefined();
    }
    // Every named volume is declared; every bind mount is read-only and exists.
    const declared = Object.keys(file.volumes);
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        if (typeof v === "string") {
          const source = v.split(":")[0];
          expect(declared, `${name}: ${source} is a declared named volume`).toContain(source);
        } else {
          expect(v.type).toBe("bind");
          expect(v.read_only, `${name}: bind mount ${v.source} is read-only`).toBe(true);
          expect(existsSync(resolve(DEPLOY, v.source)), `${name}: ${v.source} exists`).toBe(true);
        }
      }
    }
    // Only the coordinator (and the operator's tool, read-only) mount the coordinator's data: the CA key.
    const withCa = Object.entries(services).filter(([, s]) => (s.volumes ?? []).some((v: unknown) => typeof v === "string" && v.startsWith("coordinator-data:"))).map(([n]) => n).sort();
    expect(withCa).toEqual(["coordinator", "coordinator-init", "enrolment-tokens", "operator"]);
    for (const n of ["enrolment-tokens", "operator"]) {
      expect(services[n].volumes.find((v: unknown) => typeof v === "string" && v.startsWith("coordinator-data:"))).toMatch(/:ro$/);
    }
  });

  it("wires init → coordinator → tokens → agents, with matching names, ports and CSVs", () => {
    const services = compose().services as Record<string, any>;
    const scripts = Object.fromEntries(Object.entries(services).map(([n, s]) => [n, s.entrypoint ? String(s.command[0]).replace(/\$\$/g, "$") : ""]));
    expect(services.coordinator.depends_on).toEqual({ "coordinator-init": { condition: "service_completed_successfully" } });
    expect(services["enrolment-tokens"].depends_on).toEqual({ coordinator: { condition: "service_healthy" } });
    // The name the agents dial is in the coordinator's certificate.
    const init = commandsIn("init", scripts["coordinator-init"]).find((c) => c.args[1] === "init")!;
    expect(flagValue(init.args, "--hostname")).toBe("coordinator");
    expect(flagValue(init.args, "--data-dir")).toBe(flagValue(services.coordinator.command, "--data-dir"));

    const agents = Object.entries(services).filter(([n]) => scripts[n].includes("site start"));
    expect(agents.map(([n]) => n).sort()).toEqual(["site-cleveland", "site-hungary", "site-va"]);
    const sites: string[] = [];
    for (const [name, s] of agents) {
      const site = s.environment.FEDSYNTH_SITE as string;
      sites.push(site);
      expect(name).toBe(`site-${site}`);
      expect(s.depends_on).toEqual({ "enrolment-tokens": { condition: "service_completed_successfully" } });
      const cmds = commandsIn(name, scripts[name]);
      const enroll = cmds.find((c) => c.args[1] === "enroll")!.args;
      const start = cmds.find((c) => c.args[1] === "start")!.args;
      for (const args of [enroll, start]) {
        expect(flagValue(args, "--coordinator")).toBe("coordinator:7070");
        expect(flagValue(args, "--name")).toBe("$FEDSYNTH_SITE");
        expect(flagValue(args, "--data-dir")).toBe("/var/lib/fedsynth-site");
      }
      const csv = s.volumes.find((v: any) => typeof v === "object" && v.target === flagValue(start, "--data"));
      expect(csv, `${name} mounts the file it reads`).toBeDefined();
      expect(resolve(DEPLOY, csv.source)).toBe(join(EXAMPLES, `${site}.csv`));
      expect(s.volumes).toContain(`site-${site}:/var/lib/fedsynth-site`);
    }
    // The token issuer issues exactly these sites' tokens.
    const loop = /for site in ([^;]+);/.exec(scripts["enrolment-tokens"]);
    expect(loop?.[1].trim().split(/\s+/).sort()).toEqual(sites.sort());
    // Compose interpolates $VAR itself: every literal $ in a script must be written $$. And each script is
    // valid POSIX shell (sh -n parses without running).
    for (const [name, s] of Object.entries(services)) {
      if (!s.entrypoint) continue;
      expect(String(s.command[0]).replace(/\$\$/g, ""), `${name}: unescaped $`).not.toContain("$");
      const syntax = spawnSync("sh", ["-n", "-c", scripts[name]], { encoding: "utf8" });
      expect(syntax.status, `${name}: ${syntax.stderr}`).toBe(0);
    }
  });
});

describe("the Helm chart", () => {
  it("Chart.yaml and values.yaml: one chart, the app's version, a locked-down pod", () => {
    const meta = chartMeta();
    expect(meta.apiVersion).toBe("v2");
    expect(meta.name).toBe("fedsynth-coordinator");
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(meta.appVersion).toBe(JSON.parse(read(ROOT, "package.json")).version);
    const v = chartValues();
    expect(v.replicaCount, "the replica count is not a value: SQLite is single-writer").toBeUndefined();
    expect(read(CHART, "values.yaml")).toMatch(/single-writer/);
    expect(v.podSecurityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001 });
    expect(v.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(v.resources.requests).toBeDefined();
    expect(v.resources.limits).toBeDefined();
    expect(v.health.port).not.toBe(v.grpcPort);
    expect(v.pki.existingSecret).toBeTruthy();
    for (const f of ["_helpers.tpl", "NOTES.txt", "statefulset.yaml", "service.yaml"]) expect(existsSync(join(CHART, "templates", f)), f).toBe(true);
  });

  it("the StatefulSet: one replica, a claim for the data directory, the PKI Secret, native gRPC probes on the health port", () => {
    const v = chartValues();
    const sts = statefulSet();
    expect(sts.kind).toBe("StatefulSet");
    expect(sts.spec.replicas).toBe(1);
    const pod = sts.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    const c = pod.containers[0];
    expect(c.image).toBe(`fedsynth-coordinator:${chartMeta().appVersion}`);
    const dataDir = flagValue(c.args, "--data-dir");
    expect(flagValue(c.args, "--listen")).toBe(`0.0.0.0:${v.grpcPort}`);
    expect(flagValue(c.args, "--health-listen")).toBe(`0.0.0.0:${v.health.port}`);
    expect(c.ports).toEqual([
      { name: "grpc", containerPort: v.grpcPort, protocol: "TCP" },
      { name: "health", containerPort: v.health.port, protocol: "TCP" },
    ]);
    // Readiness asks for the coordinator itself (SERVING only on the replica that drives); startup and
    // liveness for fedsynth.v1.Liveness (SERVING whenever the process runs, a standby included).
    const expected: Record<string, object> = {
      startupProbe: { port: v.health.port, service: LIVENESS_SERVICE },
      readinessProbe: { port: v.health.port },
      livenessProbe: { port: v.health.port, service: LIVENESS_SERVICE },
    };
    for (const [probe, grpcProbe] of Object.entries(expected)) {
      expect(c[probe].grpc, `${probe} is a native grpc probe`).toEqual(grpcProbe);
      expect(c[probe].exec).toBeUndefined();
    }
    expect("securityContext" in c && "resources" in c).toBe(true);
    // The data directory is the claim; its pki/ is the Secret, read-only, with the files init writes.
    const claim = sts.spec.volumeClaimTemplates[0];
    expect(c.volumeMounts).toContainEqual({ name: claim.metadata.name, mountPath: dataDir });
    expect(c.volumeMounts).toContainEqual({ name: "pki", mountPath: `${dataDir}/pki`, readOnly: true });
    expect(c.volumeMounts).toContainEqual({ name: "tmp", mountPath: "/tmp" });
    const pki = pod.volumes.find((x: any) => x.name === "pki");
    expect(pki.secret.secretName).toBe(v.pki.existingSecret);
    expect(pki.secret.items.map((i: any) => i.key).sort()).toEqual(PKI_FILES);
    expect(claim.spec.accessModes).toBeNull(); // filled from values by toYaml (left out of this approximate render)
    expect(v.persistence.accessModes).toEqual(["ReadWriteOnce"]);
  });

  it("the Service publishes the TLS port only; the health port stays for the kubelet", () => {
    const v = chartValues();
    const svc = parseYaml(renderChart("service.yaml")) as any;
    expect(svc.kind).toBe("Service");
    expect(svc.spec.ports).toEqual([{ name: "grpc", port: v.service.port, targetPort: "grpc", protocol: "TCP", appProtocol: "grpc" }]);
    const headless = parseYaml(renderChart("service-headless.yaml")) as any;
    expect(headless.spec.clusterIP).toBe("None");
    expect(statefulSet().spec.serviceName).toBe(headless.metadata.name);
  });

  it("replicas on PostgreSQL: the store URL from a Secret (never in the args), --replica per pod, the lease, standbys that are never ready", async () => {
    const v = chartValues();
    expect(v.postgres).toMatchObject({ enabled: false, existingSecret: "", key: "url", leaseSeconds: 15 });
    const meta = chartMeta();
    const values = { ...v, postgres: { ...v.postgres, enabled: true, existingSecret: "fedsynth-coordinator-store" } };
    const sts = parseYaml(renderApprox(read(CHART, "templates", "statefulset.yaml"), { Values: values, Chart: meta, Release: { Name: "r" } })) as any;
    expect(sts.spec.replicas).toBe(v.postgres.replicas);
    expect(v.postgres.replicas).toBeGreaterThanOrEqual(2);
    expect(sts.spec.podManagementPolicy).toBe("Parallel");
    expect(sts.spec.updateStrategy.type).toBe("OnDelete");
    const c = sts.spec.template.spec.containers[0];
    const args = c.args.map(String);
    expect(flagValue(args, "--replica")).toBe("$(POD_NAME)");
    expect(flagValue(args, "--lease-seconds")).toBe(String(v.postgres.leaseSeconds));
    expect(args).not.toContain("--store");
    expect(c.env).toContainEqual({ name: "FEDSYNTH_STORE", valueFrom: { secretKeyRef: { name: "fedsynth-coordinator-store", key: "url" } } });
    expect(c.env).toContainEqual({ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } });
    // The same command line the real CLI accepts (it reads FEDSYNTH_STORE when --store is absent).
    const found = await checkAll([{ where: "statefulset.yaml args (postgres.enabled)", args }]);
    expect(found.get("coordinator start")?.[0]).toContain("--replica");
    expect((await runCli(["coordinator", "start", "--help"])).stdout).toContain("FEDSYNTH_STORE");
    // Without postgres the chart is as before: one replica, no store in the environment.
    const plain = statefulSet().spec.template.spec.containers[0];
    expect(plain.env.map((e: any) => e.name)).toEqual(["POD_NAME"]);
    expect(flagValue(plain.args.map(String), "--replica")).toBeUndefined();
    expect(() => renderApprox(read(CHART, "templates", "statefulset.yaml"), { Values: { ...v, postgres: { ...v.postgres, enabled: true } }, Chart: meta, Release: { Name: "r" } }))
      .toThrow(/postgres.existingSecret/);
  });

  it("the chart refuses to render without the PKI Secret or with one port for both servers", () => {
    const meta = chartMeta();
    const render = (values: any) => renderApprox(read(CHART, "templates", "statefulset.yaml"), { Values: values, Chart: meta, Release: { Name: "r" } });
    expect(() => render({ ...chartValues(), pki: { existingSecret: "" } })).toThrow(/pki.existingSecret/);
    expect(() => render({ ...chartValues(), health: { port: chartValues().grpcPort } })).toThrow(/must differ/);
  });
});

/** The four files `coordinator init` writes to DATA_DIR/pki, and so the keys of the chart's Secret. */
const PKI_FILES = ["ca-key.pem", "ca.pem", "coordinator-key.pem", "coordinator.pem"];

describe("the systemd unit", () => {
  it("runs the agent as a dedicated user in a tight sandbox, with the data directory as its only writable path", () => {
    const keys = parseUnit(unit());
    const one = (k: string) => {
      const v = keys.get(`Service.${k}`);
      expect(v, `Service.${k}`).toBeDefined();
      return v![v!.length - 1];
    };
    const args = shellWords(one("ExecStart"))[0].slice(1);
    const dataDir = flagValue(args, "--data-dir")!;
    const csv = flagValue(args, "--data")!;
    expect(one("User")).toBe("fedsynth-site");
    expect(one("User")).not.toBe("root");
    expect(dataDir).toBe(`/var/lib/${one("StateDirectory")}`);
    expect(one("ReadWritePaths")).toBe(dataDir);
    expect(one("ReadOnlyPaths").replace(/^-/, "")).toBe(csv);
    for (const [k, value] of Object.entries({
      NoNewPrivileges: "yes", ProtectSystem: "strict", ProtectHome: "yes", PrivateTmp: "yes", PrivateDevices: "yes", LockPersonality: "yes",
      ProtectKernelTunables: "yes", ProtectKernelModules: "yes", ProtectKernelLogs: "yes", ProtectControlGroups: "yes", RestrictNamespaces: "yes",
      Restart: "on-failure", CapabilityBoundingSet: "",
    })) expect(one(k), k).toBe(value);
    expect(one("RestrictAddressFamilies").split(/\s+/).sort()).toEqual(["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]);
    expect(keys.get("Service.SystemCallFilter")).toContain("@system-service");
    expect(keys.has("Service.MemoryDenyWriteExecute"), "V8's JIT needs writable+executable memory").toBe(false);
    expect(unit()).toMatch(/Not MemoryDenyWriteExecute=yes: Node's V8 JIT/);
    // Every variable ExecStart uses is in the example environment file.
    const env = read(DEPLOY, "systemd", "site-agent.env.example");
    const vars = [...one("ExecStart").matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]);
    expect(vars.length).toBeGreaterThan(2);
    for (const name of vars) expect(env, `${name} in site-agent.env.example`).toMatch(new RegExp(`^${name}=\\S+`, "m"));
    expect(one("EnvironmentFile")).toBe("/etc/fedsynth/site-agent.env");
  });

  const systemdAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0;
  it.skipIf(!systemdAnalyze)("passes systemd-analyze verify (in a scratch root holding the unit, the fedsynth binary and the system units)", () => {
    const root = tempDir("fedsynth-systemd-");
    mkdirSync(join(root, "etc", "systemd", "system"), { recursive: true });
    mkdirSync(join(root, "usr", "local", "bin"), { recursive: true });
    mkdirSync(join(root, "usr", "lib", "systemd"), { recursive: true });
    copyFileSync(join(DEPLOY, "systemd", "fedsynth-site-agent.service"), join(root, "etc", "systemd", "system", "fedsynth-site-agent.service"));
    copyFileSync(join(ROOT, "dist", "cli", "main.js"), join(root, "usr", "local", "bin", "fedsynth"));
    chmodSync(join(root, "usr", "local", "bin", "fedsynth"), 0o755);
    // The system's own units (sysinit.target, network-online.target, ...), symlinks kept as they are.
    execFileSync("cp", ["-r", existsSync("/usr/lib/systemd/system") ? "/usr/lib/systemd/system" : "/lib/systemd/system", join(root, "usr", "lib", "systemd", "system")]);
    const r = spawnSync("systemd-analyze", ["verify", `--root=${root}`, "fedsynth-site-agent.service"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr + r.stdout, "no warnings (unknown keys, bad values)").toBe("");
    // The check is not blind: a misspelt directive is reported.
    writeFileSync(join(root, "etc", "systemd", "system", "bad.service"), unit().replace("LockPersonality=yes", "LockPersonalty=yes"));
    const bad = spawnSync("systemd-analyze", ["verify", `--root=${root}`, "bad.service"], { encoding: "utf8" });
    expect(bad.stderr).toMatch(/Unknown key 'LockPersonalty'/);
  });
});

// ---- across real processes ----------------------------------------------------------------------------------------

type HealthClient = grpc.Client & {
  Check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
};
const HealthClientCtor = grpc.makeClientConstructor(healthService as unknown as grpc.ServiceDefinition, "grpc.health.v1.Health");

function plainHealthClient(address: string): HealthClient {
  return new HealthClientCtor(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
}

function check(client: HealthClient, service = ""): Promise<{ err: grpc.ServiceError | null; status?: string }> {
  return new Promise((r) => client.Check({ service }, { deadline: Date.now() + 10_000 }, (err, res) => r({ err, status: res?.status })));
}

/** A unary call to some other service on the health port: it must not be there. */
function callOther(address: string, method: string): Promise<grpc.ServiceError | null> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((r) => {
    client.makeUnaryRequest(method, (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (err) => {
      client.close();
      r(err);
    });
  });
}

describe("health across real processes: the coordinator's TLS and plaintext health, a site enrolled and started as compose.yaml does", () => {
  const procs: CliProcess[] = [];
  const clients: grpc.Client[] = [];
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
  });

  it("serves SERVING over TLS and on --health-listen, then NOT_SERVING on SIGTERM; health site follows the agent", async () => {
    const dir = tempDir("fedsynth-deploy-");
    const consortium = join(dir, "consortium");
    const init = await runCli(["coordinator", "init", "--data-dir", consortium, "--hostname", "coordinator"]);
    expect(init.code, init.stderr).toBe(0);
    // init writes exactly the files the chart's Secret must hold.
    expect(readdirSync(join(consortium, "pki")).filter((f) => !f.endsWith(".tmp")).sort()).toEqual(PKI_FILES);

    // The coordinator's data directory as the Helm chart lays it out: an empty volume with the Secret's four
    // files, read-only, at pki/ (the operator's credentials stay with the operator).
    const dataDir = join(dir, "data");
    mkdirSync(join(dataDir, "pki"), { recursive: true });
    for (const f of PKI_FILES) {
      copyFileSync(join(consortium, "pki", f), join(dataDir, "pki", f));
      chmodSync(join(dataDir, "pki", f), 0o440);
    }
    const coordinator = new CliProcess(["coordinator", "start", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"]);
    procs.push(coordinator);
    const address = (await coordinator.waitFor(/listening on (\S+)/))[1];
    const healthAddress = (await coordinator.waitFor(/health \(plaintext, grpc\.health\.v1 only\) on (\S+)/))[1];
    expect(healthAddress).not.toBe(address);
    const ca = join(dataDir, "pki", "ca.pem");

    // fedsynth health coordinator: over TLS trusting the CA (no client certificate), and on the plaintext port.
    const tls = await runCli(["health", "coordinator", "--address", address, "--ca", ca]);
    expect(tls.code, tls.stderr).toBe(0);
    expect(tls.stdout).toBe(`coordinator at ${address}: SERVING\n`);
    const plain = await runCli(["health", "coordinator", "--address", healthAddress, "--insecure"]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/SERVING/);
    // Mixed up: plaintext to the TLS port, TLS to the plaintext port, neither.
    const wrongPlain = await runCli(["health", "coordinator", "--address", address, "--insecure"]);
    expect(wrongPlain.code).toBe(1);
    expect(wrongPlain.stderr).toMatch(/cannot reach the coordinator/);
    const wrongTls = await runCli(["health", "coordinator", "--address", healthAddress, "--ca", ca]);
    expect(wrongTls.code).toBe(1);
    expect(wrongTls.stderr).toMatch(/a --health-listen port takes --insecure/);
    const neither = await runCli(["health", "coordinator", "--address", address]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toMatch(/--ca CA\.pem .* or --insecure/);

    // The plaintext port, as the kubelet's grpc probe sees it: health answers, nothing else is there.
    const probe = plainHealthClient(healthAddress);
    clients.push(probe);
    expect(await check(probe)).toEqual({ err: null, status: "SERVING" });
    expect((await check(probe, "fedsynth.v1.AgentService")).status).toBe("SERVING");
    expect((await callOther(healthAddress, "/fedsynth.v1.OperatorService/ListStudies"))?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect((await callOther(healthAddress, "/fedsynth.v1.AgentService/Enroll"))?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect((await callOther(healthAddress, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"))?.code).toBe(grpc.status.UNIMPLEMENTED);

    // A site, as compose.yaml sets one up: a token from the operator, enrol, start; then health site.
    const token = await runCli(["site", "token", "--coordinator", address, "--credentials", join(consortium, "operator"), "--site", "cleveland", "--ttl-hours", "1", "--json"]);
    expect(token.code, token.stderr).toBe(0);
    const issued = JSON.parse(token.stdout);
    const siteDir = join(dir, "site-cleveland");
    const missing = await runCli(["health", "site", "--data-dir", siteDir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/data directory .*site-cleveland does not exist/);
    const enrolled = await runCli(["site", "enroll", "--coordinator", address, "--name", "cleveland", "--token", issued.token, "--ca-fingerprint", issued.caFingerprint, "--data-dir", siteDir]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const noStatus = await runCli(["health", "site", "--data-dir", siteDir]);
    expect(noStatus.code).toBe(1);
    expect(noStatus.stderr).toMatch(/no site agent status in .*site-cleveland: status\.json is missing/);

    const agent = new CliProcess(["site", "start", "--coordinator", address, "--name", "cleveland", "--data", join(EXAMPLES, "cleveland.csv"), "--data-dir", siteDir, "--epsilon-cap", "3", "--delta-cap", "1e-5"]);
    procs.push(agent);
    await agent.waitFor(/connected to the coordinator/);
    await until(async () => {
      try {
        return JSON.parse(readFileSync(join(siteDir, "status.json"), "utf8")).connected === true ? true : undefined;
      } catch {
        return undefined;
      }
    }, "status.json to say connected");
    const healthy = await runCli(["health", "site", "--data-dir", siteDir, "--require-connected"]);
    expect(healthy.code, healthy.stderr).toBe(0);
    expect(healthy.stdout).toMatch(new RegExp(`^site cleveland: running \\(pid ${agent.child.pid}\\), connected to ${address.replace(/[.]/g, "\\.")}, status updated \\d+ s ago\\n$`));
    await agent.stop("SIGTERM");
    const stopped = await runCli(["health", "site", "--data-dir", siteDir]);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toMatch(/site cleveland is not running: .*LOCK is missing/);

    // SIGTERM: the plaintext port reports NOT_SERVING (to a Watch opened before), then both ports go away.
    const watch = probe.Watch({ service: "" });
    const statuses: string[] = [];
    const sawNotServing = new Promise<void>((resolveSeen, reject) => {
      watch.on("data", (m: { status: string }) => {
        statuses.push(m.status);
        if (m.status === "NOT_SERVING") resolveSeen();
      });
      watch.on("error", (err) => (statuses.includes("NOT_SERVING") ? undefined : reject(err)));
    });
    watch.on("error", () => undefined);
    await until(async () => (statuses.length > 0 ? true : undefined), "the Watch's first status");
    expect(statuses).toEqual(["SERVING"]);
    const exited = new Promise((r) => coordinator.child.once("exit", r));
    coordinator.child.kill("SIGTERM");
    await sawNotServing;
    expect(statuses).toEqual(["SERVING", "NOT_SERVING"]);
    await exited;
    const after = await runCli(["health", "coordinator", "--address", address, "--ca", ca]);
    expect(after.code).toBe(1);
    expect(after.stderr).toMatch(/cannot reach the coordinator at .*ECONNREFUSED/);
    const afterPlain = await runCli(["health", "coordinator", "--address", healthAddress, "--insecure"]);
    expect(afterPlain.code).toBe(1);
  }, 120_000);

  it("health site: stale, crashed and disconnected agents, from status.json and the data directory's LOCK", async () => {
    const dir = tempDir("fedsynth-health-site-");
    const status = (over: object) => writeFileSync(join(dir, "status.json"), JSON.stringify({
      site: "hungary", coordinator: "coord.example.org:7070", connected: true, lastError: "", updatedAt: new Date().toISOString(), ...over,
    }));
    // A live process holds the LOCK: this test's own.
    writeFileSync(join(dir, "LOCK"), `${process.pid}\n`);
    status({ updatedAt: new Date(Date.now() - 3600_000).toISOString() });
    const stale = await runCli(["health", "site", "--data-dir", dir, "--max-age", "60"]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(new RegExp(`site hungary \\(pid ${process.pid}\\) has not updated .*status\\.json for 3[56]\\d\\d s, more than --max-age 60 s: it may be hung`));

    status({ connected: false, lastError: "connect ECONNREFUSED 203.0.113.7:7070" });
    const retrying = await runCli(["health", "site", "--data-dir", dir]);
    expect(retrying.code, retrying.stderr).toBe(0);
    expect(retrying.stdout).toMatch(/not connected to coord\.example\.org:7070, retrying; its last error: connect ECONNREFUSED/);
    const strict = await runCli(["health", "site", "--data-dir", dir, "--require-connected"]);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/is running but not connected to coord\.example\.org:7070; its last error: connect ECONNREFUSED/);

    // A LOCK whose process is gone: the agent crashed (or was killed) without cleaning up.
    const gone = spawnSync(process.execPath, ["-e", "0"]).pid;
    writeFileSync(join(dir, "LOCK"), `${gone}\n`);
    status({});
    const crashed = await runCli(["health", "site", "--data-dir", dir]);
    expect(crashed.code).toBe(1);
    expect(crashed.stderr).toMatch(new RegExp(`site hungary is not running: the process "${gone}" named in .*LOCK is gone`));
  }, 60_000);
});
