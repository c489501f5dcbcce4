import got, { RequestError, TimeoutError } from "got";
import { LokiUnreachableError, type UnreachableKind } from "./loki-errors.ts";
import { encodePush, type PushFormat, type PushStream } from "./loki-push.ts";
import { createStoredEntriesReader, type StoredEntriesReader } from "./stored-entries.ts";

/** The per-entry limits of the Loki target, checked before pushing (Loki `limits_config`). */
export interface LokiLimits {
  rejectOldSamplesMaxAgeMs: number;
  creationGracePeriodMs: number;
  maxLineSize: number;
}

/** One push attempt's answer; the caller decides about retries (it knows the deadline). */
export interface PushAttempt {
  status: number;
  body: string;
  /** From a `Retry-After` header (Loki sends none, proxies may). */
  retryAfterMs?: number;
  /** Bytes sent on the wire. */
  bytes: number;
  durationMs: number;
}

export interface LokiPushClient {
  readonly pushUrl: string;
  readonly tenant?: string;
  readonly format: PushFormat;
  readonly limits: LokiLimits;
  readonly maxBatchBytes: number;
  readonly maxBatchEntries: number;
  /** Streams pushed at once by a delivery (each push carries one stream); default 4. */
  readonly pushConcurrency?: number;
  /** Sends one push request. Resolves with any HTTP status; rejects with LokiUnreachableError. */
  push(streams: PushStream[], options?: PushOptions): Promise<PushAttempt>;
  /**
   * Asks Loki which entries of a push it holds already, so that a re-push never stores an event
   * twice in two of the stream's shards (stored-entries.ts). Absent when the tenant's
   * `shard_streams` is off (LOKI_SHARD_STREAMS_ENABLED=false): Loki's own de-duplication suffices.
   */
  readonly storedEntries?: StoredEntriesReader;
}

export interface PushOptions {
  timeoutMs?: number;
  /** `X-Scope-OrgID` of this push (a log group's own tenant) instead of the client's `tenant`. */
  tenant?: string;
}

export interface GotLokiPushClientOptions {
  pushUrl: string;
  tenant?: string;
  /** Full `Authorization` header value; never logged. */
  authorization?: string;
  format: PushFormat;
  limits: LokiLimits;
  maxBatchBytes: number;
  maxBatchEntries: number;
  pushConcurrency: number;
  requestTimeoutMs: number;
  /** Ask Loki which entries it holds before each push (the tenant may shard streams). */
  lookUpStored: boolean;
}

/**
 * A push client over got. got's own retry stays off: the delivery loop retries instead, because it
 * must stop at the invocation's deadline and spill what is left, which got's retry cannot know.
 * TLS certificates are always verified (got's default; never turned off here).
 */
export function createGotLokiPushClient(options: GotLokiPushClientOptions): LokiPushClient {
  const baseHeaders: Record<string, string> = { "User-Agent": "loki-shipper/0.1" };
  if (options.tenant) baseHeaders["X-Scope-OrgID"] = options.tenant;
  if (options.authorization) baseHeaders.Authorization = options.authorization;
  return {
    pushUrl: options.pushUrl,
    ...(options.tenant ? { tenant: options.tenant } : {}),
    format: options.format,
    limits: options.limits,
    maxBatchBytes: options.maxBatchBytes,
    maxBatchEntries: options.maxBatchEntries,
    pushConcurrency: options.pushConcurrency,
    ...(options.lookUpStored
      ? {
          storedEntries: createStoredEntriesReader({
            pushUrl: options.pushUrl,
            headers: baseHeaders,
            requestTimeoutMs: options.requestTimeoutMs,
          }),
        }
      : {}),
    async push(streams, pushOptions = {}) {
      const encoded = encodePush(streams, options.format);
      const started = performance.now();
      try {
        const response = await got.post(options.pushUrl, {
          body: encoded.body,
          headers: {
            ...baseHeaders,
            ...encoded.headers,
            ...(pushOptions.tenant ? { "X-Scope-OrgID": pushOptions.tenant } : {}),
          },
          throwHttpErrors: false,
          retry: { limit: 0 },
          followRedirect: false,
          timeout: {
            request: Math.max(
              1,
              Math.min(pushOptions.timeoutMs ?? options.requestTimeoutMs, options.requestTimeoutMs),
            ),
          },
          responseType: "text",
        });
        const retryAfterMs = parseRetryAfter(response.headers["retry-after"]);
        return {
          status: response.statusCode,
          body: response.body,
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
          bytes: encoded.body.length,
          durationMs: performance.now() - started,
        };
      } catch (error) {
        // Only got's request errors mean "no answer"; anything else is a bug to surface as is.
        if (!(error instanceof RequestError)) throw error;
        throw new LokiUnreachableError(options.pushUrl, unreachableKind(error), error.code, { cause: error });
      }
    },
  };
}

/**
 * TLS failures carry OpenSSL's codes (ERR_TLS_*, ERR_SSL_*, CERT_*, *_CERT_*, SELF_SIGNED_*...);
 * EPROTO is a handshake that failed, e.g. https:// to a plain-HTTP port.
 */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|SELF_SIGNED_|DEPTH_ZERO_|UNABLE_TO_(GET|VERIFY)_|EPROTO$)|_CERT_/;

export function unreachableKind(error: RequestError): UnreachableKind {
  if (error instanceof TimeoutError || error.code === "ETIMEDOUT") return "timeout";
  if (TLS_CODE.test(error.code)) return "tls";
  return "network";
}

/** `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now: () => number = Date.now): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now());
}
