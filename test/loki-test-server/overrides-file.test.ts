import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OverridesError } from "../../loki-test-server/errors.ts";
import { startLokiTestServer } from "../../loki-test-server/index.ts";
import { parseOverrides, readOverridesFile } from "../../loki-test-server/overrides-file.ts";
import { formatGoDuration, formatModelDuration } from "../../loki-test-server/units.ts";
import { waitForTenantOverrides, writeTenantOverrides } from "../helpers/loki-overrides.ts";

const MiB = 1024 * 1024;

const RAISED_YAML = `
overrides:
  raised:
    ingestion_rate_mb: 1024
    ingestion_burst_size_mb: 1024
    per_stream_rate_limit: 512MB
    per_stream_rate_limit_burst: 1024MB
  strict:
    max_line_size: 256KB
    reject_old_samples_max_age: 1d12h
    creation_grace_period: 5m
    max_query_length: 30d1h
    reject_old_samples: false
    discover_service_name: [app]
`;

describe("runtime overrides file", () => {
  it("maps Loki's keys to TenantLimits, sizes in 1024-based units and durations in ms", () => {
    expect(parseOverrides(RAISED_YAML)).toEqual({
      raised: {
        ingestionRateMb: 1024,
        ingestionBurstSizeMb: 1024,
        perStreamRateLimit: 512 * MiB,
        perStreamRateLimitBurst: 1024 * MiB,
      },
      strict: {
        maxLineSize: 262144,
        rejectOldSamplesMaxAgeMs: 36 * 3_600_000,
        creationGracePeriodMs: 5 * 60_000,
        maxQueryLengthMs: 721 * 3_600_000,
        rejectOldSamples: false,
        discoverServiceName: ["app"],
      },
    });
  });

  it("reads the shard_streams block; a key it leaves out keeps its default", () => {
    const yaml = `
overrides:
  off:
    shard_streams:
      enabled: false
      desired_rate: 1KB
  small:
    shard_streams: {desired_rate: 10KB}
`;
    expect(parseOverrides(yaml)).toEqual({
      off: { shardStreamsEnabled: false, shardStreamsDesiredRate: 1024 },
      small: { shardStreamsDesiredRate: 10240 },
    });
  });

  it("accepts an empty file and a tenant without limits", () => {
    expect(parseOverrides("")).toEqual({});
    expect(parseOverrides("overrides:\n  someone:\n")).toEqual({});
  });

  it.each([
    ["overrides:\n  t:\n    ingestion_rate: 4\n", "overrides: overrides.t.ingestion_rate: unsupported limit"],
    [
      "overrides:\n  t:\n    creation_grace_period: soon\n",
      'overrides: overrides.t.creation_grace_period: not a duration: "soon" (expected e.g. "168h")',
    ],
    [
      "overrides:\n  t:\n    max_line_size: 5 parsecs\n",
      'overrides: overrides.t.max_line_size: not a byte size: "5 parsecs" (expected e.g. "512MB")',
    ],
    [
      "overrides:\n  t:\n    ingestion_rate_mb: -1\n",
      "overrides: overrides.t.ingestion_rate_mb: expected a non-negative number, got -1",
    ],
    [
      "overrides:\n  t:\n    shard_streams:\n      time_sharding_enabled: true\n",
      "overrides: overrides.t.shard_streams.time_sharding_enabled: unsupported limit",
    ],
    [
      "overrides:\n  t:\n    shard_streams: 1KB\n",
      "overrides: overrides.t.shard_streams: expected a mapping",
    ],
    [
      "overrides:\n  t:\n    shard_streams:\n      enabled: maybe\n",
      'overrides: overrides.t.shard_streams.enabled: expected true or false, got "maybe"',
    ],
    ["limits:\n  t: {}\n", 'overrides: unsupported top-level key "limits"'],
    ["overrides: [1, 2]\n", 'overrides: "overrides" must map tenant ids to limits'],
  ])("refuses %j with a message naming the key", (yaml, message) => {
    expect(() => parseOverrides(yaml)).toThrow(new OverridesError(message));
  });

  it("reads a file and names it in errors", async () => {
    const dir = await mkdtemp(join(tmpdir(), "overrides-"));
    const path = join(dir, "overrides.yaml");
    await writeFile(path, RAISED_YAML);
    expect((await readOverridesFile(path)).raised?.ingestionRateMb).toBe(1024);
    await writeFile(path, "overrides:\n  t:\n    nope: 1\n");
    await expect(readOverridesFile(path)).rejects.toThrow(`${path}: overrides.t.nope: unsupported limit`);
    await expect(readOverridesFile(join(dir, "missing.yaml"))).rejects.toThrow(/^cannot read overrides file/);
  });

  it("formats durations like Go and Prometheus do in Loki's query errors", () => {
    expect(formatGoDuration((768 * 60 + 1) * 60_000)).toBe("768h1m0s");
    expect(formatGoDuration(1500)).toBe("1.5s");
    expect(formatModelDuration(721 * 3_600_000)).toBe("30d1h");
    expect(formatModelDuration(14 * 86_400_000)).toBe("2w");
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function overridesFile(yaml: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), "overrides-")), "overrides.yaml");
  await writeFile(path, yaml);
  return path;
}

async function pushLine(
  url: string,
  tenant: string,
  line: string,
  labels: Record<string, string> = { a: "b" },
) {
  const response = await fetch(`${url}/loki/api/v1/push`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Scope-OrgID": tenant },
    body: JSON.stringify({ streams: [{ stream: labels, values: [[`${Date.now()}000000`, line]] }] }),
  });
  return { status: response.status, body: await response.text() };
}

/** Pushes until the answer has `status` (a real Loki applies a new overrides file only on its next reload). */
async function waitForStatus(push: () => Promise<{ status: number }>, status: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await push();
    if (answer.status === status || Date.now() > deadline) return answer;
    await sleep(50);
  }
}

describe("runtime overrides file reloaded like a real Loki", () => {
  it("applies a rewritten file after the next reload, and defaults to a tenant removed from it", async () => {
    const path = await overridesFile("overrides:\n  tiny:\n    max_line_size: 4B\n");
    const server = await startLokiTestServer({ overridesFile: path, runtimeConfigPeriodMs: 100 });
    try {
      expect((await pushLine(server.url, "tiny", "12345")).status).toBe(400);
      await writeFile(path, "overrides:\n  tiny:\n    max_line_size: 8B\n");
      const accepted = await waitForStatus(() => pushLine(server.url, "tiny", "12345"), 204, 2000);
      expect(accepted.status).toBe(204);
      expect((await pushLine(server.url, "tiny", "123456789")).body).toMatch(
        /^Max entry size '8' bytes exceeded/,
      );
      await writeFile(path, "overrides:\n  other:\n    max_line_size: 4B\n");
      const defaults = await waitForStatus(() => pushLine(server.url, "tiny", "123456789"), 204, 2000);
      expect(defaults.status).toBe(204);
    } finally {
      await server.close();
    }
  });

  it("keeps the limits read before and reports the error when a reload finds a bad file", async () => {
    const path = await overridesFile("overrides:\n  tiny:\n    max_line_size: 4B\n");
    const errors: string[] = [];
    const server = await startLokiTestServer({
      overridesFile: path,
      runtimeConfigPeriodMs: 50,
      onOverridesReloadError: (error) => errors.push(error.message),
    });
    try {
      await writeFile(path, "overrides:\n  tiny:\n    max_line_size: lots\n");
      while (errors.length === 0) await sleep(20);
      expect(errors[0]).toBe(
        `${path}: overrides.tiny.max_line_size: not a byte size: "lots" (expected e.g. "512MB")`,
      );
      expect((await pushLine(server.url, "tiny", "12345")).status).toBe(400);
    } finally {
      await server.close();
    }
  });

  it("refuses to start with an unreadable overrides file, as Loki does", async () => {
    await expect(startLokiTestServer({ overridesFile: "/nonexistent.yaml" })).rejects.toThrow(
      /^cannot read overrides file \/nonexistent\.yaml/,
    );
  });
});

function startLocalLoki(args: string[]) {
  const child = spawn(process.execPath, ["loki-test-server/main.ts", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const url = new Promise<string>((resolve, reject) => {
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve(match[1] as string);
    });
    child.once("exit", (code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
  const exitCode = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once("exit", resolve);
    });
  return { child, url, exitCode };
}

describe("local-loki command", () => {
  it("starts with an overrides file, prints its URL and serves the tenant's limits until stopped", async () => {
    const path = await overridesFile("overrides:\n  tiny:\n    max_line_size: 4B\n");
    const local = startLocalLoki(["--overrides", path]);
    try {
      const url = await local.url;
      expect((await fetch(`${url}/ready`)).status).toBe(200);
      const push = await pushLine(url, "tiny", "12345");
      expect(push.status).toBe(400);
      expect(push.body).toMatch(/^Max entry size '4' bytes exceeded/);
    } finally {
      local.child.kill("SIGTERM");
    }
    expect(await local.exitCode()).toBe(0);
  });

  it("re-reads the overrides file every --runtime-config-period and frees idle streams after --chunk-idle-period", async () => {
    const path = await overridesFile("overrides:\n  few:\n    max_global_streams_per_user: 1\n");
    const local = startLocalLoki([
      "--overrides",
      path,
      "--runtime-config-period",
      "200ms",
      "--chunk-idle-period",
      "500ms",
    ]);
    try {
      const url = await local.url;
      const push = (n: string) => pushLine(url, "few", `line ${n}`, { n });
      expect((await push("1")).status).toBe(204);
      expect((await push("2")).status).toBe(429);
      await sleep(600); // stream 1 is idle for longer than the chunk idle period
      expect((await push("2")).status).toBe(204);
      expect((await push("3")).status).toBe(429);
      await writeFile(path, "overrides:\n  few:\n    max_global_streams_per_user: 5\n");
      expect((await waitForStatus(() => push("3"), 204, 3000)).status).toBe(204);
    } finally {
      local.child.kill("SIGTERM");
    }
    expect(await local.exitCode()).toBe(0);
  });

  it("exits with a message naming the problem for a bad overrides file", async () => {
    const child = spawn(process.execPath, [
      "loki-test-server/main.ts",
      "--port",
      "0",
      "--overrides",
      "/nonexistent.yaml",
    ]);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise((resolve) => child.once("exit", resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/^local-loki: cannot read overrides file \/nonexistent\.yaml/);
  });
});

describe("GET /metrics", () => {
  it("gives loki_overrides for each tenant's limits unlike the defaults and loki_overrides_defaults, as Loki's overrides exporter", async () => {
    const path = await overridesFile(
      "overrides:\n  strict:\n    max_line_size: 1000\n    reject_old_samples_max_age: 24h\n    ingestion_rate_mb: 4\n",
    );
    const server = await startLokiTestServer({ overridesFile: path });
    server.setTenantLimits("named", {
      discoverServiceName: ["app"],
      perStreamRateLimit: 1000,
      rejectOldSamples: false,
    });
    try {
      const answer = await fetch(`${server.url}/metrics`);
      expect(answer.status).toBe(200);
      expect(answer.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      const lines = (await answer.text()).split("\n");
      // Only the differing limits, in the exporter's units: bytes, ns, 0/1; lists are not exported.
      expect(lines.filter((line) => line.startsWith("loki_overrides{"))).toEqual([
        'loki_overrides{limit_name="per_stream_rate_limit",user="named"} 1000',
        'loki_overrides{limit_name="reject_old_samples",user="named"} 0',
        'loki_overrides{limit_name="max_line_size",user="strict"} 1000',
        'loki_overrides{limit_name="reject_old_samples_max_age",user="strict"} 8.64e+13',
      ]);
      // The same lines a real Loki 3.4.6 gives for its defaults.
      expect(lines).toEqual(
        expect.arrayContaining([
          'loki_overrides_defaults{limit_name="creation_grace_period"} 6e+11',
          'loki_overrides_defaults{limit_name="ingestion_rate_mb"} 4',
          'loki_overrides_defaults{limit_name="max_global_streams_per_user"} 5000',
          'loki_overrides_defaults{limit_name="max_line_size"} 262144',
          'loki_overrides_defaults{limit_name="per_stream_rate_limit"} 3.145728e+06',
          'loki_overrides_defaults{limit_name="per_stream_rate_limit_burst"} 1.572864e+07',
          'loki_overrides_defaults{limit_name="reject_old_samples_max_age"} 6.048e+14',
          'loki_overrides_defaults{limit_name="max_query_length"} 2.5956e+15',
        ]),
      );
    } finally {
      await server.close();
    }
  });

  it("has no GET /runtime_config, as Loki 3.4.6 has none", async () => {
    const server = await startLokiTestServer({});
    try {
      const answer = await fetch(`${server.url}/runtime_config`);
      expect([answer.status, await answer.text()]).toEqual([404, "404 page not found\n"]);
    } finally {
      await server.close();
    }
  });

  it("lets a test that rewrote the overrides file wait until the server applies it, as against a real Loki", async () => {
    const path = await overridesFile("overrides:\n  other:\n    max_line_size: 4B\n");
    const server = await startLokiTestServer({ overridesFile: path, runtimeConfigPeriodMs: 200 });
    try {
      expect((await pushLine(server.url, "waiter", "123456789")).status).toBe(204);
      await writeTenantOverrides(path, "waiter", { max_line_size: "8B" });
      await waitForTenantOverrides(server.url, "waiter", { max_line_size: "8B" });
      // Applied when the wait returns: the next push is measured against the new limit.
      expect((await pushLine(server.url, "waiter", "123456789")).body).toMatch(
        /^Max entry size '8' bytes exceeded/,
      );
      expect((await readOverridesFile(path)).other).toEqual({ maxLineSize: 4 });
    } finally {
      await server.close();
    }
  });
});
