// `node bench/secagg.mjs [--quick]` (after `npx tsc -p tsconfig.json`): secure aggregation throughput as
// one JSON object, every figure measured in this run on this machine. Not a test: nothing passes or fails.
// bench/run.mjs puts it under "secure_aggregation". The full matrix takes about 6 minutes on 2 cores;
// --quick (or FEDSYNTH_BENCH_QUICK=1, as for bench/neural.mjs) runs the same code on 10 sites × 100k
// parameters only; --only SITESxPARAMETERS (say --only 100x1000000) runs that one size, without dropouts.
//
// Every site runs the real client and every message goes through the real wire encoding; the sites are
// simulated in worker threads (one per core, up to 4) so that a 100-site round fits in a few minutes.
// While the coordinator is timed those workers are idle; the coordinator itself may use two helper
// threads of its own (shared/crypto/secagg/parallel.ts: the main thread and the second helper hash each
// masked input together, its digest being a tree of SHA-256s whose 256 KiB leaves they share out, while
// the first helper adds the input before it, once checked, into the running sum; both helpers expand and
// remove the unmasking masks, AES-256-CTR, while the main thread waits; they add with WebAssembly SIMD,
// where the plaintext baseline below keeps its JavaScript loop; at times three threads work on two
// cores), so its time is given both as wall clock and as CPU time of the whole process
// (process.cpuUsage: every thread, user + system). Inputs are uniform 32-bit words (the cost of masking
// and summing does not depend on the values); the unmasked sum is checked against the plaintext sum of
// the same vectors, word for word.
//
//   client_mask_ms        one site's maskInput: open and check n shares, n X25519 + HKDF, n + 1 mask
//                         expansions added into the vector, digest + signature (mean and max over sites;
//                         a site hashes on its own thread)
//   coordinator_receive_ms  all masked inputs, as coordinator.ts takes them: the digest of each
//                         (maskedInputDigest; its signed charge is checked against it), then
//                         receiveMaskedInput (signature, add into the running sum), then closeMaskedInput
//                         (which waits until every input is in the sum); wall clock from the first input
//                         to the closed phase. The messages are decoded before this window (decoding, a
//                         4 MB copy each, is the transport's; coordinator_decode_ms) and the site workers
//                         are idle during it
//   coordinator_unmask_ms   all unmasking answers checked, seeds reconstructed, masks removed (wall);
//                         of which coordinator_unmask_answers_ms the answers' checks (receiveUnmask, the
//                         main thread alone) and coordinator_finish_ms the seeds and the masks (finish)
//   helper_threads        0 without a helper (short vectors, one core, FEDSYNTH_SECAGG_THREADS=1), 1 with
//                         FEDSYNTH_SECAGG_THREADS=2 (the main thread then unmasks beside it), else 2
//   plaintext_sum_ms      the same vectors summed in the clear with prg.ts's addInto, on one thread
//                         (median of 3; plaintext_sum_ms_all lists the 3). It is a plain JavaScript loop
//                         (~1.7 ns a word) and single-threaded: the coordinator's adds are SIMD and it
//                         has a second core that this baseline does not use, which is why the CPU ratio
//                         is reported beside the wall-clock one. A SIMD plaintext sum would be faster
//   coordinator_unmask_aggregate_ms  receive + unmask (wall)
//   masked_input_digest_ms  the wall time the main thread spent in the digests (its share of the leaves,
//                         then waiting for the helper's last ones); masked_input_digest_cpu_ms the CPU time
//                         of as many digests of vectors as long hashed on the main thread alone, after the
//                         timed windows (the digests' work, without what sharing it out costs)
//   ratio                 (receive + unmask) / plaintext, wall clock; ratio_cpu the same in CPU time
//                         (*_cpu_ms fields); ratio_without_digest_cpu leaves out masked_input_digest_cpu_ms.
//                         Without a helper thread wall and CPU agree; with helpers, wall < CPU
//   load_avg_1m           os.loadavg()[0] when the run started (the machine may be shared)
//   wire_ratio            every byte of every message both ways, broadcasts counted once per recipient,
//                         over the raw float32 updates (sites × parameters × 4 bytes)
import { availableParallelism, cpus, loadavg } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isMainThread, parentPort, Worker } from "node:worker_threads";
import { randomBytes } from "node:crypto";
import { join } from "node:path";

const root = fileURLToPath(new URL("..", import.meta.url));
const load = (p) => import(pathToFileURL(join(root, "dist", p)).href);
const { SecAggClient } = await load("shared/crypto/secagg/client.js");
const { SecAggServer } = await load("shared/crypto/secagg/server.js");
const { decodeMessage, encodeMessage, maskedInputDigest } = await load("shared/crypto/secagg/messages.js");
const { newSessionNonce } = await load("shared/crypto/secagg/session.js");
const { defaultThreshold } = await load("shared/crypto/secagg/threshold.js");
const { generateSigningKeyPair } = await load("shared/crypto/identity.js");
const { expandMask, expandMaskInto, addInto } = await load("shared/crypto/prg.js");
// Absent from builds before the helper thread (so this bench also measures those).
const parallel = await load("shared/crypto/secagg/parallel.js").catch(() => undefined);

/** A site's input: reproducible from its seed, so the coordinator side can sum the same vectors in the clear. */
const inputOf = (seed, length) => expandMask(seed, "pairwise-mask", length);

/** Small messages share Node's buffer pool, which must not be transferred; large ones move without a copy. */
function transferable(bytes) {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? [bytes.buffer] : [];
}

if (!isMainThread) {
  // --- a worker: hosts some of the sites ----------------------------------------------------------------
  let clients = new Map();
  let inputs = new Map();
  parentPort.on("message", ({ id, op, args }) => {
    const out = [];
    const transfer = [];
    const reply = (site, message, ms) => {
      const bytes = encodeMessage(message);
      out.push({ site, bytes, ms });
      transfer.push(...transferable(bytes));
    };
    if (op === "init") {
      clients = new Map(args.sites.map((s) => [s, new SecAggClient({ params: args.params, siteId: s, identity: args.identities.get(s) })]));
      inputs = new Map(args.sites.map((s) => [s, args.inputSeeds.get(s)]));
    } else if (op === "advertise") {
      for (const [s, c] of clients) reply(s, c.advertiseKeys());
    } else if (op === "share") {
      const list = decodeMessage(args.keyList);
      for (const s of args.sites) if (clients.has(s)) reply(s, clients.get(s).shareKeys(list));
    } else if (op === "mask") {
      for (const [s, bytes] of args.routed) {
        if (!clients.has(s)) continue;
        const routed = decodeMessage(bytes);
        const x = inputOf(inputs.get(s), args.length);
        const t = performance.now();
        const m = clients.get(s).maskInput(routed, x);
        reply(s, m, performance.now() - t);
      }
    } else if (op === "consist") {
      const list = decodeMessage(args.list);
      for (const s of args.sites) if (clients.has(s)) reply(s, clients.get(s).signSurvivors(list));
    } else if (op === "unmask") {
      const proof = decodeMessage(args.proof);
      for (const s of args.sites) if (clients.has(s)) reply(s, clients.get(s).unmask(proof));
    }
    parentPort.postMessage({ id, out }, transfer);
  });
} else {
  // --- the coordinator ----------------------------------------------------------------------------------
  const workerCount = Math.max(1, Math.min(4, availableParallelism?.() ?? cpus().length));
  const workers = Array.from({ length: workerCount }, () => new Worker(new URL(import.meta.url)));
  let nextId = 0;
  const call = (worker, op, args = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const onMessage = (msg) => {
        if (msg.id !== id) return;
        worker.off("message", onMessage);
        worker.off("error", reject);
        resolve(msg.out);
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
      worker.postMessage({ id, op, args });
    });
  const everyone = async (op, args) => (await Promise.all(workers.map((w) => call(w, op, args)))).flat();

  const identitiesFor = new Map();
  function identities(n) {
    if (!identitiesFor.has(n)) {
      const sites = Array.from({ length: n }, (_, i) => `site-${String(i).padStart(3, "0")}`);
      identitiesFor.set(n, new Map(sites.map((s) => [s, generateSigningKeyPair()])));
    }
    return identitiesFor.get(n);
  }

  const round2 = (x) => Math.round(x * 100) / 100;

  async function run({ sites: n, parameters: length, drop = "none" }) {
    const loadAtStart = round2(loadavg()[0]);
    const threadsEnv = process.env.FEDSYNTH_SECAGG_THREADS;
    const helperThreads =
      parallel === undefined || length < parallel.PARALLEL_MIN_WORDS || workerCount < 2 || threadsEnv === "1" ? 0 : threadsEnv === "2" ? 1 : (parallel.MAX_HELPERS ?? 1);
    const ids = identities(n);
    const sites = [...ids.keys()];
    const threshold = defaultThreshold(n);
    const params = {
      context: { studyId: "bench", round: 1, sessionNonce: newSessionNonce() },
      threshold,
      vectorLength: length,
      siteKeys: new Map(sites.map((s) => [s, ids.get(s).publicKey])),
    };
    const inputSeeds = new Map(sites.map((s) => [s, new Uint8Array(randomBytes(32))]));
    await Promise.all(
      workers.map((w, i) => {
        const mine = sites.filter((_, k) => k % workerCount === i);
        return call(w, "init", { params, sites: mine, identities: new Map(mine.map((s) => [s, ids.get(s)])), inputSeeds: new Map(mine.map((s) => [s, inputSeeds.get(s)])) });
      }),
    );
    const dropCount = drop === "none" ? 0 : Math.floor(n / 3);
    const dropped = new Set(sites.slice(n - dropCount));
    const server = new SecAggServer(params);
    let wire = 0;
    let setupMs = 0;
    const timed = (f) => {
      const t = performance.now();
      const r = f();
      setupMs += performance.now() - t;
      return r;
    };
    const deliver = (out, receive) => {
      for (const { bytes } of out) {
        wire += bytes.length;
        const m = decodeMessage(bytes);
        timed(() => receive(m));
      }
    };
    const broadcast = (message, recipients) => {
      const bytes = encodeMessage(message);
      wire += bytes.length * recipients;
      return bytes;
    };

    const t0 = performance.now();
    deliver(await everyone("advertise"), (m) => server.receiveAdvertisement(m));
    const keyList = timed(() => server.closeAdvertisement());
    deliver(await everyone("share", { keyList: broadcast(keyList, n), sites }), (m) => server.receiveShareKeys(m));
    const routed = timed(() => server.closeShareKeys());
    const routedBytes = new Map([...routed].map(([s, m]) => [s, broadcast(m, 1)]));
    const senders = drop === "before-input" ? sites.filter((s) => !dropped.has(s)) : sites;
    const maskedOut = await Promise.all(
      workers.map((w) => call(w, "mask", { routed: [...routedBytes].filter(([s]) => senders.includes(s)), length })),
    ).then((r) => r.flat());
    const clientMs = maskedOut.map((o) => o.ms);

    const cpuMs = (u) => (u.user + u.system) / 1000;
    // Decoded first (each encoded message dropped once decoded), so that the timed window below holds
    // nothing but the coordinator's work.
    let t = performance.now();
    const maskedIn = maskedOut.map((o, i) => {
      wire += o.bytes.length;
      maskedOut[i] = undefined;
      return decodeMessage(o.bytes);
    });
    const decodeMs = performance.now() - t;
    let digestMs = 0;
    // One message at a time, as coordinator.ts takes them: the digest (which the site's signed charge is
    // checked against), then the server, each message dropped once received.
    const receiveCpu = process.cpuUsage();
    const receiveStart = performance.now();
    for (let i = 0; i < maskedIn.length; i++) {
      const m = maskedIn[i];
      maskedIn[i] = undefined;
      const d = performance.now();
      const digest = maskedInputDigest(m.masked);
      digestMs += performance.now() - d;
      server.receiveMaskedInput(m, digest);
    }
    const list = server.closeMaskedInput();
    const receiveMs = performance.now() - receiveStart;
    const receiveCpuMs = cpuMs(process.cpuUsage(receiveCpu));
    const signers = drop === "after-input" ? sites.filter((s) => !dropped.has(s)) : senders;
    deliver(await everyone("consist", { list: broadcast(list, list.survivors.length), sites: signers }), (m) => server.receiveConsistency(m));
    const proof = timed(() => server.closeConsistency());
    const answers = await everyone("unmask", { proof: broadcast(proof, proof.signatures.length), sites: signers });
    const decoded = answers.map(({ bytes }) => {
      wire += bytes.length;
      return decodeMessage(bytes);
    });
    const unmaskCpu = process.cpuUsage();
    t = performance.now();
    for (const m of decoded) server.receiveUnmask(m);
    const answersMs = performance.now() - t;
    const result = server.finish();
    const unmaskMs = performance.now() - t;
    const unmaskCpuMs = cpuMs(process.cpuUsage(unmaskCpu));
    const totalSeconds = (performance.now() - t0) / 1000;

    // The plaintext baseline: the contributors' vectors, summed with the same loop.
    const xs = result.contributors.map((s) => inputOf(inputSeeds.get(s), length));
    let plain;
    const plainTimes = [];
    const plainCpuTimes = [];
    for (let rep = 0; rep < 3; rep++) {
      plain = new Uint32Array(length);
      const c = process.cpuUsage();
      t = performance.now();
      for (const x of xs) addInto(plain, x);
      plainTimes.push(performance.now() - t);
      plainCpuTimes.push(cpuMs(process.cpuUsage(c)));
    }
    const plaintextMs = plainTimes.sort((a, b) => a - b)[1];
    const plaintextCpuMs = plainCpuTimes.sort((a, b) => a - b)[1];
    // The digests' work, measured apart: the same number of vectors of the same length hashed on this
    // thread alone (ordinary memory, so no helper takes leaves), after the timed windows.
    const digestCpu = process.cpuUsage();
    for (const x of xs) maskedInputDigest(x);
    const digestCpuMs = cpuMs(process.cpuUsage(digestCpu));
    let exact = plain.length === result.sum.length;
    for (let i = 0; exact && i < plain.length; i++) exact = plain[i] === result.sum[i];
    if (!exact) throw new Error(`the unmasked sum differs from the plaintext sum (${n} sites, ${length} parameters, drop ${drop})`);

    const raw = n * length * 4;
    return {
      sites: n,
      parameters: length,
      threshold,
      dropped: dropCount === 0 ? "none" : { when: drop === "before-input" ? "after ShareKeys, no masked input" : "after MaskedInput, no unmasking answer", sites: dropCount },
      client_mask_ms: { mean: round2(clientMs.reduce((a, b) => a + b, 0) / clientMs.length), max: round2(Math.max(...clientMs)) },
      load_avg_1m: loadAtStart,
      helper_threads: helperThreads,
      coordinator_unmask_aggregate_ms: round2(receiveMs + unmaskMs),
      coordinator_receive_ms: round2(receiveMs),
      coordinator_unmask_ms: round2(unmaskMs),
      coordinator_unmask_answers_ms: round2(answersMs),
      coordinator_finish_ms: round2(unmaskMs - answersMs),
      coordinator_unmask_aggregate_cpu_ms: round2(receiveCpuMs + unmaskCpuMs),
      coordinator_receive_cpu_ms: round2(receiveCpuMs),
      coordinator_unmask_cpu_ms: round2(unmaskCpuMs),
      coordinator_other_phases_ms: round2(setupMs),
      coordinator_decode_ms: round2(decodeMs),
      masked_input_digest_ms: round2(digestMs),
      masked_input_digest_cpu_ms: round2(digestCpuMs),
      plaintext_sum_ms: round2(plaintextMs),
      plaintext_sum_cpu_ms: round2(plaintextCpuMs),
      plaintext_sum_ms_all: plainTimes.map(round2),
      ratio: round2((receiveMs + unmaskMs) / plaintextMs),
      ratio_cpu: round2((receiveCpuMs + unmaskCpuMs) / plaintextCpuMs),
      ratio_without_digest_cpu: round2((receiveCpuMs - digestCpuMs + unmaskCpuMs) / plaintextCpuMs),
      wire_bytes: wire,
      raw_float32_bytes: raw,
      wire_ratio: +(wire / raw).toFixed(4),
      sum_exact: exact,
      session_seconds: round2(totalSeconds),
    };
  }

  const started = performance.now();
  // --quick: a smoke run of the same code on small sizes.
  const quick = process.argv.includes("--quick") || process.env.FEDSYNTH_BENCH_QUICK === "1";
  const onlyArg = process.argv.indexOf("--only");
  const only = onlyArg >= 0 ? /^(\d+)x(\d+)$/.exec(process.argv[onlyArg + 1] ?? "") : undefined;
  if (onlyArg >= 0 && !only) throw new Error("--only takes SITESxPARAMETERS, say --only 100x1000000");
  const results = {
    machine: { node: process.version, cpus: cpus().length, available_parallelism: availableParallelism?.() ?? cpus().length, load_avg_1m_5m_15m: loadavg().map(round2), site_workers: workerCount },
    quick,
    runs: [],
  };

  const [siteCounts, sizes, big] = only
    ? [[+only[1]], [+only[2]], undefined]
    : quick
      ? [[10], [100_000], { sites: 10, parameters: 100_000 }]
      : [[10, 50, 100], [100_000, 1_000_000], { sites: 100, parameters: 1_000_000 }];
  for (const sites of siteCounts) {
    for (const parameters of sizes) results.runs.push(await run({ sites, parameters }));
  }
  if (big) {
    results.dropout_third_before_masked_input = await run({ ...big, drop: "before-input" });
    results.dropout_third_after_masked_input = await run({ ...big, drop: "after-input" });
  }
  // Mask expansion alone, 1M-word masks into one reused buffer, with the site workers idle.
  {
    const out = new Uint32Array(1_000_000);
    const seed = new Uint8Array(randomBytes(32));
    for (let i = 0; i < 20; i++) expandMaskInto(seed, "self-mask", out);
    const reps = 50;
    const t = performance.now();
    for (let i = 0; i < reps; i++) expandMaskInto(seed, "self-mask", out);
    results.prg_keystream_gb_per_s = round2((reps * out.byteLength) / ((performance.now() - t) / 1000) / 1e9);
  }
  results.total_seconds = round2((performance.now() - started) / 1000);
  await Promise.all(workers.map((w) => w.terminate()));
  console.log(JSON.stringify(results, null, 2));
}
