/** Base error of the Loki test server. */
export class LokiTestServerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The runtime overrides file (or an override value) cannot be used; the message names the key. */
export class OverridesError extends LokiTestServerError {}

/**
 * An HTTP answer that ends a request early, with Loki's status and body. Push errors carry the
 * trailing newline Loki's HTTP error writer adds; query errors have none.
 */
export class HttpError extends LokiTestServerError {
  readonly status: number;
  readonly body: string;
  constructor(status: number, body: string) {
    super(`HTTP ${status}: ${body.trimEnd()}`);
    this.status = status;
    this.body = body;
  }
}
