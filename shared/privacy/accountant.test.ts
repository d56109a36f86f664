import { describe, expect, it } from "vitest";
import { Accountant, distributedDiscreteGaussianTau } from "./accountant.js";
import { epsilonForDelta } from "./gaussian.js";
import { DEFAULT_ORDERS, gaussianRdp, rdpToEpsilon, subsampledGaussianRdpCurve } from "./rdp.js";
import type { Mechanism } from "./mechanism.js";
import { FedsynthError } from "../errors.js";

const g = (l2Sensitivity: number, sigma: number, repetitions = 1): Mechanism => ({
  kind: "gaussian",
  l2Sensitivity,
  sigma,
  repetitions,
});

const sgm = (samplingRate: number, noiseMultiplier: number, steps: number, clipNorm = 1): Mechanism => ({
  kind: "subsampled-gaussian",
  samplingRate,
  noiseMultiplier,
  steps,
  clipNorm,
});

describe("Accountant", () => {
  it("an empty history costs nothing", () => {
    expect(new Accountant().epsilon(1e-5)).toBe(0);
    expect(Accountant.epsilonOf([], 1e-5)).toBe(0);
  });

  it("records an append-only history and returns copies", () => {
    const acc = new Accountant([g(1, 2)]);
    acc.record(g(2, 3, 4));
    const h = acc.history();
    expect(h).toEqual([g(1, 2), g(2, 3, 4)]);
    h.pop();
    (h[0] as { sigma: number }).sigma = 1e-9;
    expect(acc.history()).toEqual([g(1, 2), g(2, 3, 4)]);
  });

  it("does not alias the mechanisms it was given", () => {
    const m = g(1, 2);
    const acc = new Accountant();
    acc.record(m);
    (m as { sigma: number }).sigma = 0.001;
    expect(acc.history()[0]).toEqual(g(1, 2));
  });

  it("composes Gaussian mechanisms exactly in GDP", () => {
    const acc = new Accountant();
    acc.record(g(3, 1));
    acc.record(g(4, 1));
    expect(acc.epsilon(1e-5)).toBe(epsilonForDelta(5, 1e-5));
    expect(Accountant.epsilonOf([g(1, 2, 4)], 1e-6)).toBeCloseTo(Accountant.epsilonOf([g(1, 1)], 1e-6), 7);
  });

  it("spends more with every record (monotone)", () => {
    const acc = new Accountant();
    let prev = 0;
    for (let i = 0; i < 10; i++) {
      acc.record(g(Math.sqrt(7), 20));
      const e = acc.epsilon(1e-5);
      expect(e).toBeGreaterThan(prev);
      prev = e;
    }
    expect(Accountant.epsilonOf(acc.history(), 1e-5)).toBe(prev);
  });

  it("rejects unknown kinds and invalid parameters with FedsynthError('invalid-argument')", () => {
    const unknown = { kind: "laplace", l1Sensitivity: 1, scale: 1 } as unknown as Mechanism;
    let err: unknown;
    try {
      Accountant.epsilonOf([unknown], 1e-5);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FedsynthError);
    expect((err as FedsynthError).code).toBe("invalid-argument");
    expect((err as FedsynthError).message).toContain("laplace");
    expect(() => new Accountant([unknown])).toThrow(FedsynthError);
    expect(() => new Accountant().record(g(1, 0))).toThrow(FedsynthError);
    expect(() => new Accountant().record(null as unknown as Mechanism)).toThrow(FedsynthError);
    expect(() => Accountant.epsilonOf([g(1, 1)], 0)).toThrow(FedsynthError);
    expect(() => Accountant.epsilonOf([g(1, 1)], 1)).toThrow(FedsynthError);
  });
});

describe("Accountant with subsampled Gaussian mechanisms (DP-SGD)", () => {
  it("accounts a DP-SGD run in RDP: q=0.01, σ=1.1, 10,000 steps, δ=1e-5 → ε ≈ 5.632", () => {
    const spent = Accountant.spentOf([sgm(0.01, 1.1, 10_000)], 1e-5);
    expect(spent.method).toBe("rdp");
    expect(spent.order).toBe(4.7);
    expect(spent.epsilon).toBeGreaterThanOrEqual(5.6319923686818018); // mpmath, same orders and conversion
    expect(spent.epsilon - 5.6319923686818018).toBeLessThan(1e-7);
    const curve = subsampledGaussianRdpCurve({ samplingRate: 0.01, noiseMultiplier: 1.1, steps: 10_000 });
    expect(spent.epsilon / rdpToEpsilon(DEFAULT_ORDERS, curve, 1e-5).epsilon - 1).toBeLessThan(1e-13);
  });

  it("the clip norm is recorded but does not change epsilon", () => {
    const a = Accountant.epsilonOf([sgm(0.02, 0.9, 300, 1)], 1e-6);
    expect(Accountant.epsilonOf([sgm(0.02, 0.9, 300, 17.5)], 1e-6)).toBe(a);
    const acc = new Accountant([sgm(0.02, 0.9, 300, 17.5)]);
    expect(acc.history()).toEqual([sgm(0.02, 0.9, 300, 17.5)]);
    (acc.history()[0] as { steps: number }).steps = 1;
    expect(acc.epsilon(1e-6)).toBe(a);
  });

  it("is monotone in the number of steps and in the noise multiplier", () => {
    let prev = 0;
    for (const steps of [1, 10, 100, 1000, 10_000, 100_000]) {
      const e = Accountant.epsilonOf([sgm(0.005, 1.2, steps)], 1e-5);
      expect(e).toBeGreaterThan(prev);
      prev = e;
    }
    prev = Infinity;
    for (const sigma of [0.6, 0.8, 1, 1.5, 2, 4, 8]) {
      const e = Accountant.epsilonOf([sgm(0.005, sigma, 5000)], 1e-5);
      expect(e).toBeLessThan(prev);
      prev = e;
    }
  });

  it("charges spread over many records compose to the same epsilon as one record of all the steps", () => {
    const acc = new Accountant();
    for (let i = 0; i < 20; i++) acc.record(sgm(0.01, 1.1, 500));
    const once = Accountant.epsilonOf([sgm(0.01, 1.1, 10_000)], 1e-5);
    expect(acc.epsilon(1e-5) / once - 1).toBeLessThan(1e-12);
    expect(acc.epsilon(1e-5)).toBeGreaterThanOrEqual(once * (1 - 1e-15));
  });

  it("sampling rate 1 is a plain Gaussian mechanism, accounted exactly in GDP (tighter than RDP)", () => {
    const spent = Accountant.spentOf([sgm(1, 2, 16)], 1e-5);
    expect(spent.method).toBe("gdp");
    expect(spent.epsilon).toBe(epsilonForDelta(2, 1e-5)); // μ = √16/2
    expect(spent.epsilon).toBe(Accountant.epsilonOf([g(1, 2, 16)], 1e-5));
    const viaRdp = rdpToEpsilon(DEFAULT_ORDERS, subsampledGaussianRdpCurve({ samplingRate: 1, noiseMultiplier: 2, steps: 16 }), 1e-5).epsilon;
    expect(spent.epsilon).toBeLessThan(viaRdp);
  });

  it("sampling rate 0 costs nothing", () => {
    expect(Accountant.spentOf([sgm(0, 1, 1000)], 1e-5)).toEqual({ epsilon: 0, method: "none" });
    expect(Accountant.epsilonOf([g(1, 3), sgm(0, 1, 1000)], 1e-5)).toBe(Accountant.epsilonOf([g(1, 3)], 1e-5));
  });

  it("mixed histories compose in RDP and cost at least each part alone", () => {
    const gaussians = [g(Math.sqrt(14), 30), g(1, 5, 3)];
    const training = [sgm(0.01, 1.1, 2000), sgm(0.05, 2, 300)];
    const mixed = Accountant.spentOf([...gaussians, ...training], 1e-5);
    expect(mixed.method).toBe("rdp");
    const gOnly = Accountant.epsilonOf(gaussians, 1e-5);
    const tOnly = Accountant.epsilonOf(training, 1e-5);
    expect(mixed.epsilon).toBeGreaterThanOrEqual(gOnly);
    expect(mixed.epsilon).toBeGreaterThanOrEqual(tOnly);
    for (const part of [...gaussians, ...training]) expect(mixed.epsilon).toBeGreaterThanOrEqual(Accountant.epsilonOf([part], 1e-5));
    // It is the RDP composition of all of them (the Gaussians at αΣ reps·(Δ/σ)²/2).
    const total = gaussianRdp(gaussians as never, DEFAULT_ORDERS);
    for (const m of training) {
      const curve = subsampledGaussianRdpCurve(m as never, DEFAULT_ORDERS);
      curve.forEach((r, k) => (total[k] += r));
    }
    const want = rdpToEpsilon(DEFAULT_ORDERS, total, 1e-5).epsilon;
    expect(mixed.epsilon).toBeGreaterThanOrEqual(want);
    expect(mixed.epsilon / want - 1).toBeLessThan(1e-12);
    // Order does not matter.
    expect(Accountant.epsilonOf([...training, ...gaussians].reverse(), 1e-5) / mixed.epsilon - 1).toBeLessThan(1e-12);
  });

  it("rejects invalid subsampled Gaussian parameters with an error naming the parameter", () => {
    const bad: [Mechanism, string][] = [
      [sgm(1.5, 1, 10), "samplingRate"],
      [sgm(-0.01, 1, 10), "samplingRate"],
      [sgm(NaN, 1, 10), "samplingRate"],
      [sgm(0.1, 0, 10), "noiseMultiplier"],
      [sgm(0.1, -1, 10), "noiseMultiplier"],
      [sgm(0.1, Infinity, 10), "noiseMultiplier"],
      [sgm(0.1, 1, 0), "steps"],
      [sgm(0.1, 1, 2.5), "steps"],
      [sgm(0.1, 1, -3), "steps"],
      [sgm(0.1, 1, 10, 0), "clipNorm"],
      [{ kind: "subsampled-gaussian", samplingRate: 0.1, noiseMultiplier: 1, steps: 10 } as unknown as Mechanism, "clipNorm"],
    ];
    for (const [m, field] of bad) {
      let err: unknown;
      try {
        new Accountant().record(m);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(m)).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).code).toBe("invalid-argument");
      expect((err as FedsynthError).message).toContain(field);
      expect((err as FedsynthError).hint).toBeTruthy();
      expect(() => Accountant.epsilonOf([g(1, 1), m], 1e-5)).toThrow(FedsynthError);
    }
  });
});

describe("Accountant with distributed discrete Gaussian mechanisms (secure aggregation)", () => {
  const ddg = (l2Sensitivity: number, sigma: number, sites: number, dimension = 1000, repetitions = 1): Mechanism => ({
    kind: "distributed-discrete-gaussian",
    l2Sensitivity,
    dimension,
    sigma,
    sites,
    repetitions,
  });
  /** τ of Kairouz, Liu & Steinke 2021, Theorem 1, computed here independently: 10·Σ_{k=1}^{t−1} e^{−2π²σ²k/(k+1)}. */
  const tauOf = (sigma: number, t: number) => {
    let sum = 0;
    for (let k = 1; k < t; k++) sum += Math.exp(-2 * Math.PI ** 2 * sigma ** 2 * (k / (k + 1)));
    return 10 * sum;
  };
  /** (ε, δ) of a ρ-zCDP mechanism with the same orders and conversion (ρ-zCDP = (α, αρ)-RDP). */
  const zcdpEpsilon = (rho: number, delta: number) => rdpToEpsilon(DEFAULT_ORDERS, DEFAULT_ORDERS.map((a) => a * rho), delta).epsilon;

  it("for large σ the sum of t shares costs what one continuous Gaussian of variance tσ² costs in RDP", () => {
    for (const [delta, l2, sigma, t] of [[1e-5, 41.3, 200, 4], [1e-6, 1000.5, 9000, 10], [1e-5, 3, 7, 2]] as const) {
      const spent = Accountant.spentOf([ddg(l2, sigma, t)], delta);
      expect(spent.method).toBe("rdp");
      const continuous = rdpToEpsilon(DEFAULT_ORDERS, gaussianRdp([{ kind: "gaussian", l2Sensitivity: l2, sigma: sigma * Math.sqrt(t), repetitions: 1 }]), delta).epsilon;
      // Equal up to the two computations' (different) allowances for rounding.
      expect(spent.epsilon / continuous - 1).toBeGreaterThan(-1e-13);
      expect(spent.epsilon / continuous - 1).toBeLessThan(1e-12);
      // … and never below the exact (GDP) epsilon of that continuous Gaussian.
      expect(spent.epsilon).toBeGreaterThan(epsilonForDelta(l2 / (sigma * Math.sqrt(t)), delta));
    }
  });

  it("is the zCDP bound ½(Δ/(√t σ) + τ√d)²: weaker than variance tσ² by exactly the τ term (small σ)", () => {
    for (const [l2, sigma, t, d] of [[3, 0.6, 5, 100], [2, 0.5, 2, 10], [5, 1, 50, 10_000], [1, 0.8, 3, 1]] as const) {
      const tau = tauOf(sigma, t);
      expect(tau).toBeGreaterThan(1e-7); // the τ term is visible at these σ
      const gaussRho = (l2 / (Math.sqrt(t) * sigma)) ** 2 / 2;
      const rho = (l2 / (Math.sqrt(t) * sigma) + tau * Math.sqrt(d)) ** 2 / 2;
      // rho − gaussRho = (Δ/(√t σ))·τ√d + τ²d/2: the τ term and nothing more
      expect(rho - gaussRho).toBeCloseTo((l2 / (Math.sqrt(t) * sigma)) * tau * Math.sqrt(d) + (tau * tau * d) / 2, 12);
      const spent = Accountant.epsilonOf([ddg(l2, sigma, t, d)], 1e-5);
      const want = zcdpEpsilon(rho, 1e-5);
      expect(spent).toBeGreaterThanOrEqual(want);
      expect(spent / want - 1).toBeLessThan(1e-12);
      expect(spent).toBeGreaterThan(zcdpEpsilon(gaussRho, 1e-5));
    }
  });

  it("agrees with the authors' reference accounting (google-research/federated, distributed_dp/accounting_utils.py)", () => {
    // compute_rdp_dgaussian, q = 1:  eps(order) = min(term_1, term_2, term_3) with
    //   term_1 = (order/2)·l2_scale² + tau·dim
    //   term_2 = (order/2)·(l2_scale² + 2·l1_scale·tau + tau²·dim)
    //   term_3 = (order/2)·(l2_scale + sqrt(dim)·tau)²
    // l2_scale = l2_sens/(sqrt(num_clients)·local_stddev), tau = 10·Σ_{k=1}^{n−1} exp(−2(π·σ)²·k/(k+1)) (ddgauss_epsilon),
    // l1_sens = l2_sens·min(sqrt(dim), l2_sens) (rounded_l1_norm_bound). We charge term_3 only, at every order.
    const reference = (l2: number, sigma: number, n: number, dim: number, order: number) => {
      const tau = tauOf(sigma, n);
      const l2Scale = l2 / (Math.sqrt(n) * sigma);
      const l1Scale = (l2 * Math.min(Math.sqrt(dim), l2)) / (Math.sqrt(n) * sigma);
      const t1 = (order / 2) * l2Scale ** 2 + tau * dim;
      const t2 = (order / 2) * (l2Scale ** 2 + 2 * l1Scale * tau + tau ** 2 * dim);
      const t3 = (order / 2) * (l2Scale + Math.sqrt(dim) * tau) ** 2;
      return { min: Math.min(t1, t2, t3), t3 };
    };
    for (const [l2, sigma, n, dim] of [[40, 30, 100, 65536], [3, 0.7, 20, 50], [11, 2, 1000, 1e6]] as const) {
      const spent = Accountant.spentOf([ddg(l2, sigma, n, dim)], 1e-5);
      const orders = DEFAULT_ORDERS;
      const t3 = rdpToEpsilon(orders, orders.map((a) => reference(l2, sigma, n, dim, a).t3), 1e-5).epsilon;
      const refMin = rdpToEpsilon(orders, orders.map((a) => reference(l2, sigma, n, dim, a).min), 1e-5).epsilon;
      expect(spent.epsilon).toBeGreaterThanOrEqual(t3);
      expect(spent.epsilon / t3 - 1).toBeLessThan(1e-12);
      expect(spent.epsilon).toBeGreaterThanOrEqual(refMin); // never below the reference
    }
  });

  it("τ is an upper bound of the theorem's sum, 0 for one site, and handles many sites", () => {
    for (const [sigma, t] of [[0.5, 2], [0.5, 100], [1, 7], [2.5, 1000]] as const) {
      const tau = distributedDiscreteGaussianTau(sigma, t);
      expect(tau).toBeGreaterThanOrEqual(tauOf(sigma, t));
      expect(tau / tauOf(sigma, t) - 1).toBeLessThan(1e-12);
    }
    expect(distributedDiscreteGaussianTau(0.5, 1)).toBe(0);
    expect(distributedDiscreteGaussianTau(3, 1)).toBe(0);
    // Beyond 10,000 sites the remaining terms are bounded by the last exact one (they decrease).
    const many = distributedDiscreteGaussianTau(0.5, 200_000);
    expect(many).toBeGreaterThanOrEqual(tauOf(0.5, 200_000));
    expect(many / tauOf(0.5, 200_000) - 1).toBeLessThan(1e-3); // e^{2π²σ²/10001} − 1 ≈ 5e-4
    // σ = 10: τ underflows in double, but stays a (tiny, positive) upper bound.
    expect(distributedDiscreteGaussianTau(10, 5)).toBeGreaterThan(0);
    expect(distributedDiscreteGaussianTau(10, 5)).toBeLessThan(1e-300);
  });

  it("more sites (more noise shares) cost less; more repetitions cost more; records compose additively", () => {
    let prev = Infinity;
    for (const t of [1, 2, 4, 8, 16]) {
      const e = Accountant.epsilonOf([ddg(50, 40, t)], 1e-5);
      expect(e).toBeLessThan(prev);
      prev = e;
    }
    const once = Accountant.epsilonOf([ddg(50, 40, 4, 1000, 12)], 1e-5);
    const acc = new Accountant();
    for (let i = 0; i < 12; i++) acc.record(ddg(50, 40, 4));
    expect(acc.epsilon(1e-5)).toBeGreaterThanOrEqual(once * (1 - 1e-15));
    expect(acc.epsilon(1e-5) / once - 1).toBeLessThan(1e-12);
    expect(once).toBeGreaterThan(Accountant.epsilonOf([ddg(50, 40, 4, 1000, 11)], 1e-5));
  });

  it("a history with any distributed discrete Gaussian leaves the GDP fast path (never under-reports)", () => {
    const gauss = g(Math.sqrt(14), 30, 3);
    expect(Accountant.spentOf([gauss], 1e-5).method).toBe("gdp");
    const mixed = Accountant.spentOf([gauss, ddg(30, 25, 3)], 1e-5);
    expect(mixed.method).toBe("rdp");
    expect(mixed.epsilon).toBeGreaterThanOrEqual(Accountant.epsilonOf([gauss], 1e-5));
    expect(mixed.epsilon).toBeGreaterThanOrEqual(Accountant.epsilonOf([ddg(30, 25, 3)], 1e-5));
    // It is the RDP composition: Gaussians at αΣ reps(Δ/σ)²/2 plus the zCDP term α·ρ.
    const rho = (30 / (Math.sqrt(3) * 25)) ** 2 / 2;
    const total = gaussianRdp([gauss as never]).map((r, k) => r + DEFAULT_ORDERS[k] * rho);
    const want = rdpToEpsilon(DEFAULT_ORDERS, total, 1e-5).epsilon;
    expect(mixed.epsilon).toBeGreaterThanOrEqual(want);
    expect(mixed.epsilon / want - 1).toBeLessThan(1e-12);
    // With DP-SGD too.
    const all = Accountant.spentOf([gauss, sgm(0.01, 1.1, 1000), ddg(30, 25, 3)], 1e-5);
    expect(all.epsilon).toBeGreaterThan(Accountant.epsilonOf([gauss, sgm(0.01, 1.1, 1000)], 1e-5));
    // A distributed discrete Gaussian that cannot depend on the data costs nothing and changes nothing.
    expect(Accountant.spentOf([gauss, ddg(0, 25, 3)], 1e-5)).toEqual(Accountant.spentOf([gauss], 1e-5));
    expect(Accountant.spentOf([ddg(30, 25, 3, 10, 0)], 1e-5)).toEqual({ epsilon: 0, method: "none" });
  });

  it("the collusion (local) guarantee uses the site's own share only, and is never below the released one", () => {
    const histories: Mechanism[][] = [
      [ddg(30, 25, 3)],
      [ddg(30, 25, 1)],
      [g(2, 5), ddg(100, 80, 10, 5000, 4)],
      [sgm(0.01, 1.1, 500), ddg(12, 0.9, 6, 64, 2), g(1, 3)],
    ];
    for (const h of histories) {
      const local = Accountant.collusionSpentOf(h, 1e-5);
      const released = Accountant.spentOf(h, 1e-5);
      expect(local.epsilon).toBeGreaterThanOrEqual(released.epsilon);
      expect(new Accountant(h).collusionEpsilon(1e-5)).toBe(local.epsilon);
      expect(Accountant.collusionEpsilonOf(h, 1e-5)).toBe(local.epsilon);
    }
    // One site's share: ½(Δ/σ)²-zCDP (Canonne, Kamath & Steinke 2020), i.e. t = 1.
    const local = Accountant.collusionEpsilonOf([ddg(30, 25, 3)], 1e-5);
    expect(local).toBe(Accountant.epsilonOf([ddg(30, 25, 1)], 1e-5));
    expect(local / zcdpEpsilon((30 / 25) ** 2 / 2, 1e-5) - 1).toBeLessThan(1e-12);
    expect(local).toBeGreaterThan(1.5 * Accountant.epsilonOf([ddg(30, 25, 3)], 1e-5));
    // Kinds whose noise is all local: identical.
    for (const h of [[g(2, 5)], [sgm(0.01, 1.1, 500)], [g(2, 5), sgm(0.02, 1, 100)], []] as Mechanism[][]) {
      expect(Accountant.collusionSpentOf(h, 1e-5)).toEqual(Accountant.spentOf(h, 1e-5));
    }
    // Histories are not modified.
    const h = [ddg(30, 25, 3)];
    Accountant.collusionSpentOf(h, 1e-5);
    expect((h[0] as { sites: number }).sites).toBe(3);
  });

  it("records a defensive copy and round-trips through JSON", () => {
    const m = ddg(30, 25, 3, 100, 2);
    const acc = new Accountant([m]);
    (m as { sigma: number }).sigma = 1;
    expect(acc.history()).toEqual([ddg(30, 25, 3, 100, 2)]);
    const again = new Accountant(JSON.parse(JSON.stringify(acc.history())) as Mechanism[]);
    expect(again.epsilon(1e-5)).toBe(acc.epsilon(1e-5));
  });

  it("rejects invalid parameters with an error naming the field and what to do", () => {
    const bad: [Mechanism, string][] = [
      [ddg(-1, 5, 3), "l2Sensitivity"],
      [ddg(NaN, 5, 3), "l2Sensitivity"],
      [ddg(0.5, 5, 3), "l2Sensitivity"], // grid units: a sensitivity in (0, 1) is a unit mistake
      [ddg(10, 0, 3), "sigma"],
      [ddg(10, Infinity, 3), "sigma"],
      [ddg(10, 0.4, 2), "sigma"], // the sum theorem needs σ ≥ 1/2
      [ddg(10, 5, 0), "sites"],
      [ddg(10, 5, 2.5), "sites"],
      [ddg(10, 5, 3, 0), "dimension"],
      [ddg(10, 5, 3, 1.5), "dimension"],
      [ddg(10, 5, 3, 10, -1), "repetitions"],
      [ddg(10, 5, 3, 10, 0.5), "repetitions"],
      [{ kind: "distributed-discrete-gaussian", l2Sensitivity: 10, sigma: 5, sites: 3, repetitions: 1 } as unknown as Mechanism, "dimension"],
    ];
    for (const [m, field] of bad) {
      let err: unknown;
      try {
        new Accountant().record(m);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(m)).toBeInstanceOf(FedsynthError);
      expect((err as FedsynthError).code).toBe("invalid-argument");
      expect((err as FedsynthError).message).toContain(field);
      expect((err as FedsynthError).hint).toBeTruthy();
      expect(() => Accountant.epsilonOf([g(1, 1), m], 1e-5)).toThrow(FedsynthError);
      expect(() => Accountant.collusionEpsilonOf([m], 1e-5)).toThrow(FedsynthError);
    }
    // σ < 1/2 is fine for a single site (Canonne, Kamath & Steinke hold for every σ > 0).
    expect(Accountant.epsilonOf([ddg(1, 0.3, 1)], 1e-5)).toBeGreaterThan(0);
  });
});
