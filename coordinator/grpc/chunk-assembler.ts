/**
 * Reassembles a message that an agent sends in pieces (a result, a masked input), per task, bounded by
 * the size the task allows: a piece out of order or beyond the bound discards what came so far.
 */
export type ChunkStep =
  | { kind: "more" }
  | { kind: "done"; bytes: Buffer }
  | { kind: "refused"; message: string };

export class ChunkAssembler {
  private partial = new Map<string, { parts: Buffer[]; received: number; limit: number }>();

  /** `limit(taskId)` is read at a task's first piece: the most bytes it may send, or why it may send none. */
  constructor(private readonly what: string, private readonly limit: (taskId: string) => number | string) {}

  add(taskId: string, offset: number, data: Uint8Array, last: boolean, totalBytes: number): ChunkStep {
    let acc = this.partial.get(taskId);
    if (!acc) {
      const limit = this.limit(taskId);
      if (typeof limit === "string") return { kind: "refused", message: limit };
      acc = { parts: [], received: 0, limit };
      this.partial.set(taskId, acc);
    }
    if (offset !== acc.received) {
      this.partial.delete(taskId);
      return { kind: "refused", message: `${this.what} chunk at offset ${offset} arrived where ${acc.received} was expected; send it again` };
    }
    acc.received += data.byteLength;
    if (acc.received > acc.limit) {
      this.partial.delete(taskId);
      return { kind: "refused", message: `the ${this.what} is larger than the ${acc.limit} bytes the task allows` };
    }
    acc.parts.push(Buffer.from(data));
    if (!last) return { kind: "more" };
    this.partial.delete(taskId);
    const bytes = Buffer.concat(acc.parts);
    if (bytes.byteLength !== totalBytes) return { kind: "refused", message: `the ${this.what} has ${bytes.byteLength} bytes; ${totalBytes} were announced` };
    return { kind: "done", bytes };
  }
}
