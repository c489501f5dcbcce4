import { LokiShipperError } from "../errors.ts";

/** Loki's error bodies can echo whole requests; keep 1 KiB of them in messages and logs. */
export const MAX_ERROR_BODY_CHARS = 1024;

export function cutBody(body: string): string {
  return body.length > MAX_ERROR_BODY_CHARS ? `${body.slice(0, MAX_ERROR_BODY_CHARS)}…` : body;
}

/** Loki answered a push with an error status that retrying does not fix. */
export class LokiPushError extends LokiShipperError {
  readonly status: number;
  readonly body: string;
  constructor(status: number, body: string, url: string) {
    super(`Loki push failed with ${status}: POST ${url}: ${cutBody(body).trim()}`);
    this.status = status;
    this.body = body;
  }
}

/** Loki could not be reached (connection refused or reset, DNS, TLS, timeout). */
export class LokiUnreachableError extends LokiShipperError {
  readonly code: string | undefined;
  constructor(url: string, code: string | undefined, options?: { cause?: unknown }) {
    const reason = (options?.cause as Error | undefined)?.message ?? "unknown network error";
    super(`Loki is unreachable: POST ${url}: ${code ?? reason}`, options);
    this.code = code;
  }
}

/** Delivery could not keep undelivered events in S3 either: the invocation must fail. */
export class SpillError extends LokiShipperError {}
