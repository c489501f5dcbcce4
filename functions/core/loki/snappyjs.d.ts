declare module "snappyjs" {
  /** Snappy block format (not framed), as Loki expects for protobuf pushes. */
  export function compress<T extends Uint8Array | ArrayBuffer | Buffer>(input: T): T;
  export function uncompress<T extends Uint8Array | ArrayBuffer | Buffer>(input: T, maxLength?: number): T;
  const snappy: { compress: typeof compress; uncompress: typeof uncompress };
  export default snappy;
}
