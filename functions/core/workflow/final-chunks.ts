import type { ChunkSource } from "./replay-engine.ts";
import { chunkSeq } from "./slice-export.ts";

/**
 * A slice's chunks as its export makes them final, for the replay that runs alongside the export
 * in the same invocation. A chunk is final once the export checkpoint that follows its write is
 * saved: until then a crash leaves it as a leftover that the next invocation deletes and writes
 * again, so replaying it earlier could push events the slice then gets under another key.
 * The keys come from the sequence numbers (no S3 listing): every chunk below the checkpoint's
 * `nextSeq` exists.
 */
export class FinalChunks implements ChunkSource {
  /** The export may go on in a later invocation: ReplaySlice marks the unit done. */
  readonly complete = false;
  readonly #chunkKey: (seq: number) => string;
  #finalSeq = 0;
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(chunkKey: (seq: number) => string) {
    this.#chunkKey = chunkKey;
  }

  /** Every chunk numbered below `nextSeq` is final. */
  advance(nextSeq: number): void {
    this.#finalSeq = Math.max(this.#finalSeq, nextSeq);
    this.#notify();
  }

  /** The export has returned: no further chunk comes in this invocation. */
  end(): void {
    this.#ended = true;
    this.#notify();
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
