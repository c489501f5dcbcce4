// snappyjs ships no type declarations; these cover the two functions used here.
declare module "snappyjs" {
  export function uncompress(compressed: Uint8Array, maxLength?: number): Buffer;
  export function compress(uncompressed: Uint8Array): Buffer;
}
