import { LokiShipperError } from "../errors.ts";

/** Loki's error bodies can echo whole requests; keep 1 KiB of them in messages and logs. */
export const MAX_ERROR_BODY_CHARS = 1024;

export function cutBody(body: string): string {
  return body.length > MAX_ERROR_BODY_CHARS ? `${body.slice(0, MAX_ERROR_BODY_CHARS)}…` : body;
}

/** Why a push got no HTTP answer: the network, the TLS handshake, or the time allowed. */
export type UnreachableKind = "network" | "tls" | "timeout";

/**
 * Loki could not be reached: no HTTP answer at all (an HTTP error status is an answer, judged by
 * the delivery with Loki's body). The message says which kind of failure and its code.
 */
export class LokiUnreachableError extends LokiShipperError {
  readonly kind: UnreachableKind;
  readonly code: string | undefined;
  constructor(url: string, kind: UnreachableKind, code: string | undefined, options?: { cause?: unknown }) {
    const detail = (options?.cause as Error | undefined)?.message ?? "no detail";
    super(`Loki is unreachable: POST ${url}: ${kind} error${code ? ` ${code}` : ""}: ${detail}`, options);
    this.kind = kind;
    this.code = code;
  }
}

/** Delivery could not keep undelivered events in S3 either: the invocation must fail. */
export class SpillError extends LokiShipperError {}
