/**
 * Coordinator replicas sharing one database: exactly one, the lease holder, drives the consortium (serves
 * the agents and operators, runs and aggregates rounds); the others wait as standbys. The lease lives in
 * the database with a time limit by the database's clock. The holder renews it well before it expires;
 * a holder that cannot renew in time stops itself, and its store refuses writes from the moment another
 * replica holds the lease (the fence), so two replicas never both write. A standby that takes over
 * resumes open rounds from the store, as a restarted coordinator does.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { FedsynthError } from "../shared/errors.js";
import type { Logger } from "../shared/telemetry/log.js";
import type { CoordinatorStore, Lease } from "./store/store.js";

export const DRIVER_LEASE = "driver";
export const DEFAULT_LEASE_SECONDS = 15;

export interface ReplicaOptions {
  store: CoordinatorStore;
  log: Logger;
  /** A name for people (a pod name, a host name); the lease holder is this name plus a per-process suffix. */
  replica?: string;
  leaseSeconds?: number;
}

export class ReplicaLease {
  readonly holder: string;
  private readonly ttlMs: number;
  private lease?: Lease;
  private renewTimer?: NodeJS.Timeout;
  private lastRenewedAt = 0;
  private stopped = false;

  constructor(private readonly opts: ReplicaOptions) {
    // Unique per process: a restarted replica with the same name must not mistake its predecessor's lease for its own.
    this.holder = `${opts.replica ?? hostname()}/${process.pid}/${randomBytes(3).toString("hex")}`;
    this.ttlMs = (opts.leaseSeconds ?? DEFAULT_LEASE_SECONDS) * 1000;
    if (!(this.ttlMs >= 1000)) throw new FedsynthError("invalid-argument", `a lease of ${opts.leaseSeconds} s is too short`, { hint: "use at least 1 second (the default is 15)" });
  }

  /** Waits until this replica holds the lease, logging who holds it meanwhile. */
  async acquire(): Promise<Lease> {
    let announced = "";
    for (;;) {
      if (this.stopped) throw new FedsynthError("unavailable", "the replica stopped before it took the lease");
      const got = this.tryTake();
      if (got) {
        this.lease = got;
        this.lastRenewedAt = performance.now();
        this.opts.log.info("this replica holds the lease and drives the rounds", { holder: this.holder, term: got.term });
        return got;
      }
      const current = this.opts.store.getLease(DRIVER_LEASE);
      if (current && current.holder !== announced) {
        announced = current.holder;
        this.opts.log.info("standby: another replica drives the rounds; waiting for its lease", { driver: current.holder, term: current.term });
      }
      await sleep(Math.min(this.ttlMs / 3, 2000));
    }
  }

  /**
   * Renews the lease every third of its life. `onLost` is called once when the lease is gone: another
   * replica holds it, or renewing failed for so long that another may take it before we could tell.
   */
  keepRenewing(onLost: (why: string) => void): void {
    const every = this.ttlMs / 3;
    const lost = (why: string) => {
      if (this.stopped) return;
      this.stopRenewing();
      onLost(why);
    };
    this.renewTimer = setInterval(() => {
      try {
        const renewed = this.tryTake();
        if (!renewed || renewed.term !== this.lease!.term) return lost(`another replica holds the lease now${renewed ? "" : ` (${this.opts.store.getLease(DRIVER_LEASE)?.holder ?? "?"})`}`);
        this.lease = renewed;
        this.lastRenewedAt = performance.now();
      } catch (err) {
        const silentFor = performance.now() - this.lastRenewedAt;
        this.opts.log.warn("could not renew the lease", { error: FedsynthError.from(err).message, since_last_renewal_ms: Math.round(silentFor) });
        // Stop while the lease is still ours by our own clock, leaving a margin for the two clocks' drift.
        if (silentFor > this.ttlMs * 0.8) lost(`the lease could not be renewed for ${Math.round(silentFor / 1000)} s`);
      }
    }, every);
    this.renewTimer.unref();
  }

  /** Gives the lease up at once (a clean shutdown), so a standby takes over without waiting it out. */
  release(): void {
    this.stopped = true;
    this.stopRenewing();
    if (!this.lease) return;
    try {
      this.opts.store.releaseLease(DRIVER_LEASE, this.holder);
      this.opts.log.info("released the lease", { holder: this.holder });
    } catch (err) {
      this.opts.log.warn("could not release the lease; a standby takes over when it expires", { error: FedsynthError.from(err).message });
    }
  }

  private tryTake(): Lease | undefined {
    return this.opts.store.acquireLease(DRIVER_LEASE, this.holder, this.ttlMs);
  }

  private stopRenewing(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
