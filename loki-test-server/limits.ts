/**
 * Per-tenant limits, named like Loki's `limits_config` / runtime overrides keys (camelCase).
 * Defaults are those of Loki 3.4 (pkg/validation/limits.go) unless noted.
 */
export interface TenantLimits {
  /** `ingestion_rate_mb`: tenant rate of the local rate strategy, MiB/s. */
  ingestionRateMb: number;
  /** `ingestion_burst_size_mb`: token bucket size, MiB. */
  ingestionBurstSizeMb: number;
  /** `per_stream_rate_limit`, bytes/s. */
  perStreamRateLimit: number;
  /** `per_stream_rate_limit_burst`, bytes. */
  perStreamRateLimitBurst: number;
  /** `max_line_size`, bytes (0 = no limit). */
  maxLineSize: number;
  /** `max_label_names_per_series` (service_name is not counted). */
  maxLabelNamesPerSeries: number;
  /** `max_label_name_length`. */
  maxLabelNameLength: number;
  /** `max_label_value_length`. */
  maxLabelValueLength: number;
  /** `reject_old_samples`. */
  rejectOldSamples: boolean;
  /** `reject_old_samples_max_age`, ms. */
  rejectOldSamplesMaxAgeMs: number;
  /** `creation_grace_period`, ms. */
  creationGracePeriodMs: number;
  /**
   * `max_global_streams_per_user`: active streams of a tenant (single ingester, replication 1).
   * A stream stays active until Loki flushes it, modelled as `chunk_idle_period` (server option
   * `chunkIdlePeriodMs`, 30m) without a push.
   */
  maxGlobalStreamsPerUser: number;
  /** `max_entries_limit_per_query`. */
  maxEntriesLimitPerQuery: number;
  /** `max_query_length`, ms. */
  maxQueryLengthMs: number;
  /** `max_structured_metadata_size`, bytes. */
  maxStructuredMetadataSize: number;
  /** `max_structured_metadata_entries_count`. */
  maxStructuredMetadataEntriesCount: number;
  /** `discover_service_name`: labels whose value becomes service_name, first match wins. */
  discoverServiceName: string[];
  /** `discover_log_levels`: add detected_level structured metadata. */
  discoverLogLevels: boolean;
  /** `shard_streams.enabled`: split streams pushed faster than the desired rate (stream-sharding.ts). */
  shardStreamsEnabled: boolean;
  /** `shard_streams.desired_rate`, bytes/s: the rate above which a stream is split into shards. */
  shardStreamsDesiredRate: number;
  /**
   * Ingester setting, not a Loki limit: the out-of-order window is `max_chunk_age / 2`
   * (default max_chunk_age 2h → 1h). Kept per tenant here so tests can narrow it.
   */
  outOfOrderWindowMs: number;
  /**
   * Server setting, not a Loki limit: `server.grpc_server_max_recv_msg_size` (4 MiB) bounds the
   * distributor → ingester push message; larger validated pushes fail with a 500.
   */
  grpcServerMaxRecvMsgSize: number;
}

const MiB = 1024 * 1024;
const HOUR_MS = 3_600_000;

export const DEFAULT_TENANT_LIMITS: Readonly<TenantLimits> = Object.freeze({
  ingestionRateMb: 4,
  ingestionBurstSizeMb: 6,
  perStreamRateLimit: 3 * MiB,
  perStreamRateLimitBurst: 15 * MiB,
  maxLineSize: 256 * 1024,
  maxLabelNamesPerSeries: 15,
  maxLabelNameLength: 1024,
  maxLabelValueLength: 2048,
  rejectOldSamples: true,
  rejectOldSamplesMaxAgeMs: 168 * HOUR_MS,
  creationGracePeriodMs: 10 * 60_000,
  maxGlobalStreamsPerUser: 5000,
  maxEntriesLimitPerQuery: 5000,
  maxQueryLengthMs: 721 * HOUR_MS,
  maxStructuredMetadataSize: 64 * 1024,
  maxStructuredMetadataEntriesCount: 128,
  discoverServiceName: [
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
  ],
  discoverLogLevels: true,
  shardStreamsEnabled: true,
  shardStreamsDesiredRate: 1536 * 1024,
  outOfOrderWindowMs: HOUR_MS,
  grpcServerMaxRecvMsgSize: 4 * MiB,
});

/**
 * Tenant limits = defaults, then the runtime-overrides file (replaced as a whole on every reload,
 * like Loki's), then the overrides given at start and the ones set at run time.
 */
export class LimitsRegistry {
  readonly #overrides = new Map<string, Partial<TenantLimits>>();
  #fileOverrides: Record<string, Partial<TenantLimits>> = {};
  readonly #resolved = new Map<string, TenantLimits>();
  /** Bumped on every change so that rate limiters can pick up new limits. */
  version = 0;

  constructor(overrides: Record<string, Partial<TenantLimits>> = {}) {
    for (const [tenant, limits] of Object.entries(overrides)) this.set(tenant, limits);
  }

  set(tenant: string, limits: Partial<TenantLimits>): void {
    this.#overrides.set(tenant, { ...this.#overrides.get(tenant), ...limits });
    this.#resolved.delete(tenant);
    this.version++;
  }

  /** Replaces the overrides of the runtime-overrides file; a tenant no longer in it gets defaults back. */
  setFileOverrides(overrides: Record<string, Partial<TenantLimits>>): void {
    this.#fileOverrides = overrides;
    this.#resolved.clear();
    this.version++;
  }

  /** Tenants with limits of their own, from the file or set at run time. */
  overriddenTenants(): string[] {
    return [...new Set([...Object.keys(this.#fileOverrides), ...this.#overrides.keys()])];
  }

  get(tenant: string): TenantLimits {
    let limits = this.#resolved.get(tenant);
    if (!limits) {
      limits = { ...DEFAULT_TENANT_LIMITS, ...this.#fileOverrides[tenant], ...this.#overrides.get(tenant) };
      this.#resolved.set(tenant, limits);
    }
    return limits;
  }
}
