/** Exponential backoff with full jitter (AWS architecture blog): spreads reconnecting agents apart. */
export class Backoff {
  private attempt = 0;

  constructor(private readonly baseMs: number, private readonly maxMs: number, private readonly random: () => number = Math.random) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(this.baseMs / 2 + this.random() * (ceiling - this.baseMs / 2));
  }

  reset(): void {
    this.attempt = 0;
  }
}
