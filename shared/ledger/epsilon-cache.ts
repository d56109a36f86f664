/**
 * Accountant.epsilonOf, remembered by its exact inputs. Verifying a ledger recomputes every charge and
 * every running study total, and a consortium's charges repeat the same few mechanism lists (every site
 * of a round gets the same one), so most of those are look-ups. The key is the canonical encoding of the
 * mechanisms and delta: equal keys are equal inputs, so the cache can never change an answer — which
 * is also why one cache can serve every audit in the process (sharedEpsilonCache).
 */
import { Accountant } from "../privacy/accountant.js";
import type { Mechanism } from "../privacy/mechanism.js";
import { canonicalize } from "./canonical-json.js";

/** Enough for every distinct history of a large audit; past it the cache starts over rather than grow. */
const DEFAULT_LIMIT = 100_000;

export class EpsilonCache {
  private readonly known = new Map<string, number>();

  constructor(private readonly limit = DEFAULT_LIMIT) {}

  /** The canonical key of one list of mechanisms (callers may join keys to describe longer histories). */
  static keyOf(mechanisms: Mechanism[]): string {
    return canonicalize(mechanisms);
  }

  /**
   * Accountant.epsilonOf(mechanisms, delta); `key` must be keyOf(mechanisms) or any other text that
   * only these mechanisms map to. Throws as epsilonOf does for invalid mechanisms or delta.
   */
  epsilonOf(mechanisms: Mechanism[], delta: number, key: string = EpsilonCache.keyOf(mechanisms)): number {
    const full = `${delta}|${key}`;
    const hit = this.known.get(full);
    if (hit !== undefined) return hit;
    const epsilon = Accountant.epsilonOf(mechanisms, delta);
    if (this.known.size >= this.limit) this.known.clear();
    this.known.set(full, epsilon);
    return epsilon;
  }

  get size(): number {
    return this.known.size;
  }
}

let shared: EpsilonCache | undefined;

/** The process-wide cache: later audits (a coordinator verifying its ledger again) reuse earlier results. */
export function sharedEpsilonCache(): EpsilonCache {
  return (shared ??= new EpsilonCache());
}
