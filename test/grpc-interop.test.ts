/**
 * The coordinator speaks standard gRPC: health and reflection answer a client in another language (Python's
 * grpcio, with no generated code), and the wire contract round-trips through protobuf.
 */
import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { EXAMPLES, ROOT, runCli, startCoordinator, tempDir, type CliProcess } from "./support/cli.js";
import { TaskSchema } from "../gen/fedsynth/v1/agent_pb.js";
import { taskFromProto, taskToProto } from "../shared/transport/convert.js";
import type { TaskAssignment } from "../shared/federation/task.js";

/** Debian's python3-grpcio, installed by .ci/run (apt-get install python3-grpcio). */
const PYTHON = "/usr/bin/python3";
const hasPythonGrpc = (() => {
  try {
    execFileSync(PYTHON, ["-c", "import grpc, google.protobuf"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("protocol round trips", () => {
  it("a task survives protobuf encoding and decoding unchanged", () => {
    const task: TaskAssignment = {
      taskId: "task-1",
      study: {
        studyId: "study-1", name: "heart", schemaJson: '{"columns":[]}', engine: "independent", epsilon: 1.25, delta: 1e-6, rounds: 3,
        engineConfig: { sigma: 13.95, nested: { a: [1, 2] } },
      },
      round: 2,
      mechanisms: [
        { kind: "gaussian", l2Sensitivity: Math.sqrt(14), sigma: 13.958746, repetitions: 1 },
        { kind: "subsampled-gaussian", samplingRate: 256 / 60000, noiseMultiplier: 1.1, steps: 14_062, clipNorm: 0.75 },
      ],
      modelId: "model-9", modelSha256: "ab".repeat(32), modelBytes: 12345, updateLength: 98765, roundConfig: { columns: [0, 3] },
    };
    const bytes = toBinary(TaskSchema, taskToProto(task));
    expect(taskFromProto(fromBinary(TaskSchema, bytes))).toEqual(task);
  });
});

describe.skipIf(!hasPythonGrpc && !process.env.CI)("gRPC from another language", () => {
  const procs: CliProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
  });

  it("python grpcio: health SERVING, reflection lists the services, and a reflected call works", async () => {
    expect(hasPythonGrpc, "python3-grpcio must be installed (apt-get install python3-grpcio)").toBe(true);
    const { proc, address } = await startCoordinator(join(tempDir(), "coordinator"));
    procs.push(proc);
    const created = await runCli(["study", "create", "--coordinator", address, "--insecure", "--name", "probe", "--schema", join(EXAMPLES, "schema.json"), "--site", "a"]);
    expect(created.code, created.stderr).toBe(0);
    const probe = join(ROOT, "test", "interop", "grpc_probe.py");
    expect(existsSync(probe)).toBe(true);
    const out = JSON.parse(execFileSync(PYTHON, [probe, address], { encoding: "utf8" }));
    expect(out["health:server"]).toBe("SERVING");
    expect(out["health:fedsynth.v1.AgentService"]).toBe("SERVING");
    expect(out["health:fedsynth.v1.OperatorService"]).toBe("SERVING");
    expect(out.services).toEqual(expect.arrayContaining([
      "fedsynth.v1.AgentService", "fedsynth.v1.OperatorService", "grpc.health.v1.Health",
    ]));
    expect(out.studies).toHaveLength(1);
    expect(out.studies[0].name).toBe("probe");
    expect(out.studies[0].state).toBe("STUDY_STATE_CREATED");
  }, 60_000);
});
