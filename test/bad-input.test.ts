/**
 * Bad input, as users meet it: every case gets a message naming the file, the line and the column, and a
 * site agent with bad data declines the study and stays up.
 */
import { afterAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startAgent, startCoordinator, tempDir, type CliProcess } from "./support/cli.js";

const SCHEMA = {
  columns: [
    { name: "age", type: "numeric", min: 0, max: 120, integer: true },
    { name: "sex", type: "categorical", values: ["0", "1"] },
    { name: "chol", type: "numeric", min: 100, max: 600 },
  ],
  missing: ["", "?", "NA"],
};

const GOOD = "age,sex,chol\n63,1,233\n41,0,204\n57,?,\n";

describe("bad input", () => {
  const dir = tempDir();
  const schemaPath = join(dir, "schema.json");
  writeFileSync(schemaPath, JSON.stringify(SCHEMA));
  const goodPath = join(dir, "good.csv");
  writeFileSync(goodPath, GOOD);

  const simulate = (file: string, schema = schemaPath) =>
    runCli(["simulate", "--schema", schema, "--site", `good=${goodPath}`, "--site", `bad=${file}`, "--out", join(dir, "out.csv")]);

  const cases: [string, string, RegExp[]][] = [
    ["a category not in the schema", "age,sex,chol\n63,1,233\n41,2,204\n", [/category\.csv:3/, /column 'sex'/, /"2" is not in the schema/]],
    ["text in a numeric column", "age,sex,chol\n63,1,233\nsixty,0,204\n", [/text\.csv:3/, /column 'age'/, /not a number/]],
    ["a missing column", "age,sex\n63,1\n", [/column\.csv/, /chol/]],
    ["a malformed CSV (unterminated quote)", "age,sex,chol\n63,1,233\n\"41,0,204\n", [/malformed\.csv:3/]],
    ["a malformed CSV (wrong field count)", "age,sex,chol\n63,1,233\n41,0\n", [/fields\.csv:3/]],
  ];
  const names = ["category", "text", "column", "malformed", "fields"];

  cases.forEach(([what, content, patterns], i) => {
    it(`simulate refuses ${what} with file, line and column`, async () => {
      const file = join(dir, `${names[i]}.csv`);
      writeFileSync(file, content);
      const r = await simulate(file);
      expect(r.code).not.toBe(0);
      for (const p of patterns) expect(r.stderr).toMatch(p);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // a message, not a stack trace
    });
  });

  it("simulate refuses a malformed schema naming the file and the column", async () => {
    const bad = join(dir, "bad-schema.json");
    writeFileSync(bad, JSON.stringify({ columns: [{ name: "age", type: "numeric", min: 10, max: 5 }] }));
    const r = await simulate(goodPath, bad);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/bad-schema\.json/);
    expect(r.stderr).toMatch(/age/);
  });

  it("simulate refuses a schema that is not JSON, naming the file", async () => {
    const bad = join(dir, "broken.json");
    writeFileSync(bad, '{"columns": [');
    const r = await simulate(goodPath, bad);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/broken\.json/);
  });

  describe("a running site agent with bad data", () => {
    const procs: CliProcess[] = [];
    afterAll(async () => {
      await Promise.all(procs.map((p) => p.stop("SIGKILL")));
    });

    it("declines the study with the column named on both sides and stays up", async () => {
      const { proc: coordinator, address } = await startCoordinator(join(dir, "coordinator"));
      procs.push(coordinator);
      const badFile = join(dir, "agent-bad.csv");
      writeFileSync(badFile, "age,sex,chol\n63,1,233\n41,7,204\n");
      const agent = startAgent({ address, name: "bad", data: badFile, dataDir: join(dir, "bad-site"), epsilonCap: 5 });
      procs.push(agent);
      await agent.waitFor(/connected to the coordinator/);
      const created = await runCli(["study", "create", "--coordinator", address, "--insecure", "--name", "t", "--schema", schemaPath, "--site", "bad", "--json"]);
      const studyId = JSON.parse(created.stdout).studyId;
      const watched = await runCli(["study", "start", studyId, "--coordinator", address, "--insecure", "--watch"]);
      // The site's own log has the whole story, value and line included.
      await agent.waitFor(/agent-bad\.csv:3, column 'sex'/);
      expect(agent.output).toMatch(/category "7" is not in the schema/);
      // The coordinator learns which column, never the value.
      expect(watched.stdout).toMatch(/failed/);
      expect(watched.stdout).toMatch(/column 'sex'/);
      expect(watched.stdout).not.toMatch(/"7"/);
      expect(agent.running).toBe(true);
    }, 60_000);
  });
});
