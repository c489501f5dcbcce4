/**
 * The shipper's error hierarchy. Step Functions `Retry`/`Catch` match on `name`, so the names
 * are part of the workflow contract: rename one only together with the ASL files.
 */
export class LokiShipperError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Configuration values are missing or invalid. `problems` has one line per mistake, naming the
 * variable and the value; the message lists them all, so that one deployment fixes them all.
 */
export class ConfigError extends LokiShipperError {
  readonly problems: string[];
  constructor(problems: string | string[], options?: { cause?: unknown }) {
    super(
      typeof problems === "string" ? problems : `Invalid configuration:\n- ${problems.join("\n- ")}`,
      options,
    );
    this.problems = typeof problems === "string" ? [problems] : problems;
  }
}

/** Input from a user or an event that cannot be used as it is (bad range, unknown log group...). */
export class InputError extends LokiShipperError {}

/** A chunk object in S3 is not in the chunk format this version reads. */
export class ChunkFormatError extends LokiShipperError {}

/**
 * The tags that choose a log group's Loki tenant could not be read: with tenant routing on, the
 * events cannot go anywhere (the default tenant might be the wrong one), so the invocation fails
 * and Lambda's retries and its on-failure queue keep the batch.
 */
export class TenantLookupError extends LokiShipperError {}
