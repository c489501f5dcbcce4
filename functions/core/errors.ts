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

/** A configuration value is missing or invalid; the message names the variable and the value. */
export class ConfigError extends LokiShipperError {}

/** Input from a user or an event that cannot be used as it is (bad range, unknown log group...). */
export class InputError extends LokiShipperError {}

/** A chunk object in S3 is not in the chunk format this version reads. */
export class ChunkFormatError extends LokiShipperError {}
