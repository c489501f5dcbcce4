/**
 * A fault the server applies to push requests, for tests of the shipper's error handling:
 * - `status`: answer with this status (and body, default Loki-like text) instead of ingesting,
 *   for the next `times` pushes (all pushes when `times` is not given);
 * - `latency`: wait `ms` before handling each push;
 * - `reset`: destroy the connection without an answer (the client sees a socket error).
 * Queries are never affected, so a test can always check what was stored.
 */
export type Fault =
  | { kind: "status"; status: number; body?: string; times?: number }
  | { kind: "latency"; ms: number }
  | { kind: "reset" };

/** What to do with one push request. */
export type FaultAction = { kind: "none" } | Fault;

export class FaultInjector {
  #fault: Fault | undefined;
  #remaining = Number.POSITIVE_INFINITY;

  set(fault?: Fault): void {
    this.#fault = fault ? { ...fault } : undefined;
    this.#remaining =
      fault?.kind === "status" && fault.times !== undefined ? fault.times : Number.POSITIVE_INFINITY;
  }

  /** The action for the next push; a `status` fault with `times` clears itself when used up. */
  next(): FaultAction {
    const fault = this.#fault;
    if (!fault) return { kind: "none" };
    if (fault.kind === "status") {
      this.#remaining--;
      if (this.#remaining <= 0) this.#fault = undefined;
    }
    return fault;
  }
}

/** Default body of an injected status, shaped like Loki's plain-text errors. */
export function defaultFaultBody(status: number): string {
  return `injected fault: HTTP ${status}\n`;
}
