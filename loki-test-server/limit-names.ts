import type { TenantLimits } from "./limits.ts";

/** How Loki's config holds a limit: it decides how the overrides file spells it. */
export type LimitKind = "number" | "bytes" | "duration" | "boolean" | "names";

/**
 * Loki's runtime-override keys this server implements, with the TenantLimits field each sets, in
 * the order of Loki's `validation.Limits` struct (the overrides exporter of `GET /metrics` shows the scalar ones).
 */
export const LOKI_LIMITS: ReadonlyArray<{ name: string; field: keyof TenantLimits; kind: LimitKind }> = [
  { name: "ingestion_rate_mb", field: "ingestionRateMb", kind: "number" },
  { name: "ingestion_burst_size_mb", field: "ingestionBurstSizeMb", kind: "number" },
  { name: "max_label_name_length", field: "maxLabelNameLength", kind: "number" },
  { name: "max_label_value_length", field: "maxLabelValueLength", kind: "number" },
  { name: "max_label_names_per_series", field: "maxLabelNamesPerSeries", kind: "number" },
  { name: "reject_old_samples", field: "rejectOldSamples", kind: "boolean" },
  { name: "reject_old_samples_max_age", field: "rejectOldSamplesMaxAgeMs", kind: "duration" },
  { name: "creation_grace_period", field: "creationGracePeriodMs", kind: "duration" },
  { name: "max_line_size", field: "maxLineSize", kind: "bytes" },
  { name: "discover_service_name", field: "discoverServiceName", kind: "names" },
  { name: "discover_log_levels", field: "discoverLogLevels", kind: "boolean" },
  { name: "max_global_streams_per_user", field: "maxGlobalStreamsPerUser", kind: "number" },
  { name: "max_entries_limit_per_query", field: "maxEntriesLimitPerQuery", kind: "number" },
  { name: "max_query_length", field: "maxQueryLengthMs", kind: "duration" },
  { name: "per_stream_rate_limit", field: "perStreamRateLimit", kind: "bytes" },
  { name: "per_stream_rate_limit_burst", field: "perStreamRateLimitBurst", kind: "bytes" },
  { name: "max_structured_metadata_size", field: "maxStructuredMetadataSize", kind: "bytes" },
  {
    name: "max_structured_metadata_entries_count",
    field: "maxStructuredMetadataEntriesCount",
    kind: "number",
  },
];

/**
 * Loki's limits that sit in a block of their own in the overrides file (`shard_streams:
 * {enabled: false, desired_rate: 1KB}`); keys left out of a block keep their defaults, as in Loki.
 */
export const LOKI_LIMIT_BLOCKS: ReadonlyArray<{
  name: string;
  limits: ReadonlyArray<{ name: string; field: keyof TenantLimits; kind: LimitKind }>;
}> = [
  {
    name: "shard_streams",
    limits: [
      { name: "enabled", field: "shardStreamsEnabled", kind: "boolean" },
      { name: "desired_rate", field: "shardStreamsDesiredRate", kind: "bytes" },
    ],
  },
];
