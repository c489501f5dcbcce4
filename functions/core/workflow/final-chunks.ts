import type { Chunk } from "../storage/chunk-format.ts";
import type { ChunkSource } from "./replay-engine.ts";
import { chunkSeq } from "./slice-export.ts";

/**
 * Chunks kept in memory for the replay: beyond them it reads from S3, so a replay slower than the
 * export (a low pace, a full stream budget) never holds more than this many (each ≤ 4 MiB of lines).
 */
const MAX_HELD_CHUNKS = 4;

/**
 * A slice's chunks as its export makes them final, for the replay that runs alongside the export
 * in the same invocation. A chunk is final once the export checkpoint that follows its write is
 * saved: until then a crash leaves it as a leftover that the next invocation deletes and writes
 * again, so replaying it earlier could push events the slice then gets under another key.
 * The keys come from the sequence numbers (no S3 listing): every chunk below the checkpoint's
 * `nextSeq` exists. The last few chunks written are handed on in memory, which spares the replay
 * reading back what the export has just written.
 */
export class FinalChunks implements ChunkSource {
  readonly #chunkKey: (seq: number) => string;
  #finalSeq = 0;
  #ended = false;
  #complete = false;
  #wake: (() => void) | undefined;
  /** The latest chunks written and not yet taken by the replay, by key, oldest first. */
  readonly #held = new Map<string, Chunk>();

  constructor(chunkKey: (seq: number) => string) {
    this.#chunkKey = chunkKey;
  }

  /** Every chunk numbered below `nextSeq` is final; `written` are the last ones below it. */
  advance(nextSeq: number, written: Chunk[] = []): void {
    written.forEach((chunk, index) => {
      this.#held.set(this.#chunkKey(nextSeq - written.length + index), chunk);
    });
    for (const key of this.#held.keys()) {
      if (this.#held.size <= MAX_HELD_CHUNKS) break;
      this.#held.delete(key);
    }
    this.#finalSeq = Math.max(this.#finalSeq, nextSeq);
    this.#notify();
  }

  take(key: string): Chunk | undefined {
    const chunk = this.#held.get(key);
    this.#held.delete(key);
    return chunk;
  }

  /**
   * The export has returned: no further chunk comes in this invocation. With `sliceExported`, the
   * keys were all of the slice's chunks, and the replay that takes them all marks the unit done.
   */
  end(sliceExported: boolean): void {
    this.#ended = true;
    this.#complete = sliceExported;
    this.#notify();
  }

  get complete(): boolean {
    return this.#complete;
  }

  async *keys(after: string | undefined): AsyncGenerator<string> {
    let seq = after === undefined ? 0 : chunkSeq(after) + 1;
    for (;;) {
      while (seq < this.#finalSeq) {
        yield this.#chunkKey(seq);
        seq += 1;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
