import type { Logger } from "@aws-lambda-powertools/logger";
import { LOG_STREAM_LABEL } from "../labels/labels.ts";
import type { LokiPushClient, PushAttempt } from "../loki/loki-client.ts";
import { cutBody, LokiUnreachableError } from "../loki/loki-errors.ts";
import { entryKey, StoredLookupError } from "../loki/stored-entries.ts";
import type { TrackedEntry, TrackedStream } from "./batching.ts";

export interface RetryOptions {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { maxAttempts: 10, baseDelayMs: 250, maxDelayMs: 8_000 };

/** What became of one push request (one stream, see splitIntoRequests) after its retries. */
export type PushOutcome =
  | { kind: "stored" }
  | { kind: "refused"; body: string }
  | { kind: "too_large"; body: string }
  | { kind: "metadata_disallowed"; body: string }
  | { kind: "undeliverable"; reason: string };

export interface PushSessionDeps {
  loki: LokiPushClient;
  /** The tenant every push of this session goes to; undefined: the client's (LOKI_TENANT). */
  tenant?: string;
  /** Epoch ms: stop retrying before it. */
  deadline: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  retry: RetryOptions;
  logger?: Logger;
  onPushAttempt?: (attempt: { status: number | "network_error"; durationMs: number }) => void;
}

/** Counters a session adds to the delivery report. */
export interface PushCounters {
  requests: number;
  retries: number;
  bytes: number;
}

/** No push attempt is started with less time than this before the deadline. */
const MIN_ATTEMPT_MS = 250;
/** Consecutive 429s after which a push of several entries is split in two. */
const THROTTLED_SPLIT_AFTER = 3;
/** Loki's answer when the tenant does not allow structured metadata (limits_config.allow_structured_metadata). */
const STRUCTURED_METADATA_DISABLED = /structured metadata, but this feature is disallowed/;
/**
 * Loki's 429 for a new stream beyond `max_global_streams_per_user`. It clears only when streams
 * have been idle for `chunk_idle_period` (30 min by default), so retrying within an invocation
 * is useless: the entries go to spill/ with Loki's reason at once.
 */
export const STREAM_LIMIT_REFUSAL = /Maximum active stream limit exceeded/;
/** Loki's 429 for one stream over `per_stream_rate_limit`: worth retrying, but about that stream only. */
const PER_STREAM_RATE_LIMIT = /Per stream rate limit exceeded/;

/** A failure worth another attempt; `perStream` when it concerns this stream only, not the target. */
interface RetryableFailure {
  failure: string;
  perStream: boolean;
}

/**
 * Pushes requests of one tenant with retries bounded by the deadline, and remembers what holds for
 * every later push of the same delivery to that tenant: a target that refuses us as a whole
 * (circuit open: spill the rest without trying) and a tenant without structured metadata. Loki's
 * limits are per tenant, so a delivery keeps one session per tenant: one tenant's 429s or 401s
 * never hold back another's pushes.
 */
export class PushSession {
  /** Set once Loki is found unreachable or misconfigured: the rest is spilled without trying. */
  circuitOpen: string | undefined;
  /** Set once Loki says the tenant does not allow structured metadata: the rest goes without it. */
  withoutMetadata = false;
  readonly #deps: PushSessionDeps;
  readonly #counters: PushCounters;

  constructor(deps: PushSessionDeps, counters: PushCounters) {
    this.#deps = deps;
    this.#counters = counters;
  }

  /**
   * The entries of `request` that Loki does not hold yet, in the stream or any of its shards
   * (stored-entries.ts); all of them, with the reason, when Loki cannot say. Asked once per request
   * before its first attempt: the request's own retries cannot have stored anything Loki denied.
   */
  async unstored(request: TrackedStream): Promise<{ entries: TrackedEntry[]; unchecked?: string }> {
    const reader = this.#deps.loki.storedEntries;
    if (!reader || this.circuitOpen) return { entries: request.entries };
    const tenant = this.#deps.tenant;
    const logStream = this.withoutMetadata ? undefined : sharedLogStream(request.entries);
    try {
      const stored = await reader.storedKeys(request, {
        timeoutMs: Math.max(1, this.#deps.deadline - this.#deps.now() - MIN_ATTEMPT_MS),
        ...(tenant ? { tenant } : {}),
        ...(logStream !== undefined ? { logStream } : {}),
      });
      if (stored.size === 0) return { entries: request.entries };
      return { entries: request.entries.filter((entry) => !stored.has(entryKey(entry.ns, entry.line))) };
    } catch (error) {
      if (!(error instanceof StoredLookupError)) throw error;
      return { entries: request.entries, unchecked: error.message };
    }
  }

  async push(request: TrackedStream): Promise<PushOutcome> {
    const deps = this.#deps;
    const body = this.withoutMetadata ? stripMetadata(request) : request;
    for (let attempt = 1; ; attempt++) {
      if (this.circuitOpen) return { kind: "undeliverable", reason: this.circuitOpen };
      const remaining = deps.deadline - deps.now();
      if (remaining < MIN_ATTEMPT_MS) {
        return {
          kind: "undeliverable",
          reason: "the invocation's deadline came before Loki accepted the push",
        };
      }
      const answer = await this.#attempt(body, remaining);
      const verdict = this.#judge(answer, attempt, request.entries.length);
      if ("outcome" in verdict) return verdict.outcome;
      const giveUp = await this.#backoff(verdict, attempt, answer.attempt?.retryAfterMs);
      if (giveUp) return { kind: "undeliverable", reason: giveUp };
    }
  }

  async #attempt(
    request: TrackedStream,
    remainingMs: number,
  ): Promise<{ attempt?: PushAttempt; failure?: string }> {
    this.#counters.requests += 1;
    try {
      const tenant = this.#deps.tenant;
      const attempt = await this.#deps.loki.push([request], {
        timeoutMs: remainingMs,
        ...(tenant ? { tenant } : {}),
      });
      this.#counters.bytes += attempt.bytes;
      this.#deps.onPushAttempt?.({ status: attempt.status, durationMs: attempt.durationMs });
      return { attempt };
    } catch (error) {
      if (!(error instanceof LokiUnreachableError)) throw error;
      this.#deps.onPushAttempt?.({ status: "network_error", durationMs: 0 });
      return { failure: error.message };
    }
  }

  /** An outcome, or the failure to retry. */
  #judge(
    answer: { attempt?: PushAttempt; failure?: string },
    attempt: number,
    entries: number,
  ): { outcome: PushOutcome } | RetryableFailure {
    if (!answer.attempt) return { failure: answer.failure ?? "unknown failure", perStream: false };
    const { status, body } = answer.attempt;
    if (status >= 200 && status < 300) return { outcome: { kind: "stored" } };
    if (status === 400 && STRUCTURED_METADATA_DISABLED.test(body)) {
      return { outcome: { kind: "metadata_disallowed", body } };
    }
    if (status === 400) return { outcome: { kind: "refused", body } };
    // Loki fails pushes over its 4 MiB gRPC message size with a 500 that no retry fixes;
    // proxies answer 413. Both mean: send less at once.
    if (status === 413 || (status === 500 && /larger than max/.test(body))) {
      return { outcome: { kind: "too_large", body } };
    }
    const failure = `Loki answered ${status}: ${cutBody(body).trim()}`;
    if (status === 429 && STREAM_LIMIT_REFUSAL.test(body)) {
      return { outcome: { kind: "undeliverable", reason: failure } };
    }
    // A push larger than the tenant's burst is refused with 429 however long one waits
    // (Loki's rate limiter, no Retry-After): after a few 429s, try smaller pushes.
    if (status === 429 && attempt >= THROTTLED_SPLIT_AFTER && entries > 1) {
      this.#counters.retries += 1;
      return { outcome: { kind: "too_large", body } };
    }
    if (status !== 429 && status < 500) {
      // 401, 403, 404...: a target or credentials problem; every further push would fail the same way.
      this.circuitOpen = failure;
      this.#deps.logger?.error("Loki refused the push as a whole; spilling the rest", {
        status,
        body: cutBody(body),
      });
      return { outcome: { kind: "undeliverable", reason: failure } };
    }
    return { failure, perStream: status === 429 && PER_STREAM_RATE_LIMIT.test(body) };
  }

  /**
   * Waits before the next attempt, or gives up with the reason when no attempt is left. Giving up
   * on a target-wide failure opens the circuit: the other streams would fail the same way.
   */
  async #backoff(
    { failure, perStream }: RetryableFailure,
    attempt: number,
    retryAfterMs: number | undefined,
  ): Promise<string | undefined> {
    const { retry, now, deadline } = this.#deps;
    const backoff = Math.random() * Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
    const delay = Math.max(backoff, retryAfterMs ?? 0);
    let giveUp: string | undefined;
    if (attempt >= retry.maxAttempts) giveUp = `${failure} (after ${attempt} attempts)`;
    else if (now() + delay + MIN_ATTEMPT_MS > deadline) {
      giveUp = `${failure} (no time left for another attempt before the deadline)`;
    }
    if (giveUp) {
      if (!perStream) this.circuitOpen = giveUp;
      return giveUp;
    }
    this.#counters.retries += 1;
    this.#deps.logger?.warn("Loki push failed, retrying", {
      attempt,
      delayMs: Math.round(delay),
      failure: cutBody(failure),
    });
    await this.#deps.sleep(delay);
    return undefined;
  }
}

/** The `log_stream` structured metadata every entry carries, when they all carry the same one. */
function sharedLogStream(entries: TrackedEntry[]): string | undefined {
  let shared: string | undefined;
  for (const entry of entries) {
    const value = entry.metadata?.find(([name]) => name === LOG_STREAM_LABEL)?.[1];
    if (value === undefined || (shared !== undefined && value !== shared)) return undefined;
    shared = value;
  }
  return shared;
}

/** The same push without structured metadata (entries keep their line and timestamp). */
function stripMetadata(request: TrackedStream): TrackedStream {
  return { ...request, entries: request.entries.map(({ metadata: _metadata, ...entry }) => entry) };
}
