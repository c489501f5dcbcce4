/**
 * Snappy block-format compression (not the framed format), as Loki expects for protobuf pushes.
 * Format: https://github.com/google/snappy/blob/main/format_description.txt. The algorithm is
 * the reference one (64 KiB blocks, a hash table of 4-byte sequences, a lookup step that grows
 * while nothing matches, so incompressible data is copied as literals at little cost); written for
 * V8: 32-bit integer hashing (`Math.imul`), matches compared four bytes at a time, long literals
 * copied natively. It was a quarter of the shipper's CPU as the `snappyjs` package.
 */

const BLOCK_SIZE = 1 << 16;
const MAX_HASH_BITS = 14;
/** The last 15 bytes of a block are not searched for matches (4-byte loads stay in the block). */
const INPUT_MARGIN = 15;
/** Literals at least this long are copied with `Uint8Array.set` instead of a loop. */
const NATIVE_COPY_BYTES = 32;

/** One table for every block: compression is synchronous, so nothing else uses it meanwhile. */
const hashTable = new Uint16Array(1 << MAX_HASH_BITS);
/**
 * Compression writes here, and the result is copied out at its exact size: a fresh buffer of the
 * most snappy can produce would be touched page by page for the first time on every push (costly
 * in a microVM), and would be kept whole while the push is in flight.
 */
let scratch = Buffer.allocUnsafe(0);

/** The most bytes snappy can produce for `length` input bytes. */
export function maxCompressedLength(length: number): number {
  return 32 + length + Math.floor(length / 6);
}

export function snappyCompress(input: Uint8Array): Buffer {
  if (scratch.length < maxCompressedLength(input.length))
    scratch = Buffer.allocUnsafe(maxCompressedLength(input.length));
  const output = scratch;
  let op = writeVarint(input.length, output, 0);
  for (let start = 0; start < input.length; start += BLOCK_SIZE) {
    op = compressBlock(input, start, Math.min(input.length, start + BLOCK_SIZE), output, op);
  }
  return Buffer.from(output.subarray(0, op));
}

function compressBlock(
  input: Uint8Array,
  start: number,
  end: number,
  output: Uint8Array,
  op: number,
): number {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  let nextEmit = start;
  if (end - start >= INPUT_MARGIN) {
    let bits = 8;
    while (bits < MAX_HASH_BITS && 1 << bits < end - start) bits += 1;
    const shift = 32 - bits;
    hashTable.fill(0, 0, 1 << bits);
    const ipLimit = end - INPUT_MARGIN;
    let ip = start + 1;
    let nextWord = load32(view, ip);
    search: for (;;) {
      // Find a 4-byte match, looking further apart the longer none is found.
      let skip = 32;
      let nextIp = ip;
      let word: number;
      let candidate: number;
      do {
        ip = nextIp;
        word = nextWord;
        const hash = Math.imul(word, 0x1e35a7bd) >>> shift;
        nextIp = ip + (skip++ >> 5);
        if (nextIp > ipLimit) break search;
        nextWord = load32(view, nextIp);
        candidate = start + (hashTable[hash] as number);
        hashTable[hash] = ip - start;
      } while (word !== load32(view, candidate));
      op = emitLiteral(input, nextEmit, ip, output, op);
      // Emit copies while the bytes right after a match start another one.
      do {
        const matched = 4 + matchLength(view, input, candidate + 4, ip + 4, end);
        op = emitCopy(output, op, ip - candidate, matched);
        ip += matched;
        nextEmit = ip;
        if (ip >= ipLimit) break search;
        hashTable[Math.imul(load32(view, ip - 1), 0x1e35a7bd) >>> shift] = ip - 1 - start;
        word = load32(view, ip);
        const hash = Math.imul(word, 0x1e35a7bd) >>> shift;
        candidate = start + (hashTable[hash] as number);
        hashTable[hash] = ip - start;
      } while (word === load32(view, candidate));
      ip += 1;
      nextWord = load32(view, ip);
    }
  }
  return nextEmit < end ? emitLiteral(input, nextEmit, end, output, op) : op;
}

function load32(view: DataView, at: number): number {
  return view.getInt32(at, true);
}

/** How many bytes from `a` equal those from `b` (b > a), up to `end`. */
function matchLength(view: DataView, bytes: Uint8Array, a: number, b: number, end: number): number {
  let length = 0;
  while (b + length + 4 <= end) {
    const difference = load32(view, a + length) ^ load32(view, b + length);
    // Little-endian: the lowest set bit is in the first differing byte.
    if (difference !== 0) return length + ((31 - Math.clz32(difference & -difference)) >> 3);
    length += 4;
  }
  while (b + length < end && bytes[a + length] === bytes[b + length]) length += 1;
  return length;
}

function emitLiteral(input: Uint8Array, from: number, to: number, output: Uint8Array, op: number): number {
  const n = to - from - 1;
  if (n < 60) {
    output[op++] = n << 2;
  } else if (n < 256) {
    output[op++] = 60 << 2;
    output[op++] = n;
  } else {
    output[op++] = 61 << 2;
    output[op++] = n & 0xff;
    output[op++] = n >>> 8;
  }
  if (to - from >= NATIVE_COPY_BYTES) {
    output.set(input.subarray(from, to), op);
    return op + to - from;
  }
  for (let at = from; at < to; at++) output[op++] = input[at] as number;
  return op;
}

function emitCopy(output: Uint8Array, op: number, offset: number, length: number): number {
  let left = length;
  while (left >= 68) {
    op = emitCopyUpTo64(output, op, offset, 64);
    left -= 64;
  }
  if (left > 64) {
    op = emitCopyUpTo64(output, op, offset, 60);
    left -= 60;
  }
  return emitCopyUpTo64(output, op, offset, left);
}

function emitCopyUpTo64(output: Uint8Array, op: number, offset: number, length: number): number {
  if (length < 12 && offset < 2048) {
    // Copy with a 1-byte offset: length 4..11, offset < 2048.
    output[op] = 1 | ((length - 4) << 2) | ((offset >>> 8) << 5);
    output[op + 1] = offset & 0xff;
    return op + 2;
  }
  // Copy with a 2-byte offset: length 1..64, offset < 65536.
  output[op] = 2 | ((length - 1) << 2);
  output[op + 1] = offset & 0xff;
  output[op + 2] = offset >>> 8;
  return op + 3;
}

function writeVarint(value: number, output: Uint8Array, op: number): number {
  let rest = value;
  while (rest >= 0x80) {
    output[op++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  output[op++] = rest;
  return op;
}
