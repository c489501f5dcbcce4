import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { OverridesError } from "../../loki-test-server/errors.ts";
import { parseOverrides, readOverridesFile } from "../../loki-test-server/overrides-file.ts";
import { formatGoDuration, formatModelDuration } from "../../loki-test-server/units.ts";

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

describe("local-loki command", () => {
  it("starts with an overrides file, prints its URL and serves the tenant's limits until stopped", async () => {
    const dir = await mkdtemp(join(tmpdir(), "overrides-"));
    const path = join(dir, "overrides.yaml");
    await writeFile(path, "overrides:\n  tiny:\n    max_line_size: 4B\n");
    const child = spawn(process.execPath, ["loki-test-server/main.ts", "--port", "0", "--overrides", path], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let output = "";
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString();
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
          if (match) resolve(match[1] as string);
        });
        child.once("exit", (code) => reject(new Error(`exited with ${code}: ${output}`)));
      });
      expect((await fetch(`${url}/ready`)).status).toBe(200);
      const push = await fetch(`${url}/loki/api/v1/push`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Scope-OrgID": "tiny" },
        body: Buffer.from(
          JSON.stringify({ streams: [{ stream: { a: "b" }, values: [[`${Date.now()}000000`, "12345"]] }] }),
        ),
      });
      expect(push.status).toBe(400);
      expect(await push.text()).toMatch(/^Max entry size '4' bytes exceeded/);
    } finally {
      child.kill("SIGTERM");
    }
    const code = await new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once("exit", resolve);
    });
    expect(code).toBe(0);
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
