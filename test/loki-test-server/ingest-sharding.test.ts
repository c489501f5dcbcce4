import { describe, expect, it } from "vitest";
import { Ingester } from "../../loki-test-server/ingest.ts";
import { LimitsRegistry } from "../../loki-test-server/limits.ts";
import type { DecodedStream } from "../../loki-test-server/push-decode.ts";
import { LogStore } from "../../loki-test-server/store.ts";
import { StreamRates } from "../../loki-test-server/stream-rates.ts";

const KB = 1024;
const LABELS = '{app="a", service_name="a"}';

/**
 * An ingester whose stream rates run on a clock the test moves: tenant "t" shards above 1KB/s,
 * tenant "off" has the same desired rate and sharding disabled.
 */
function ingesterAt() {
  const clock = { ms: 0 };
  const rates = new StreamRates({ nowMs: () => clock.ms });
  const store = new LogStore();
  const limits = new LimitsRegistry({
    t: { shardStreamsDesiredRate: KB },
    off: { shardStreamsEnabled: false, shardStreamsDesiredRate: KB },
  });
  const ingester = new Ingester(store, limits, { streamRates: rates });
  const streamsOf = (tenant = "t") =>
    [...store.streamsOf(tenant)].map((s) => `${s.key} ${s.entries.map((e) => e.line[0]).join("")}`).sort();
  return { ingester, rates, clock, streamsOf };
}

const nowNs = BigInt(Date.now()) * 1_000_000n;

function push(...lines: Array<[string, number]>): DecodedStream[] {
  return [
    {
      labels: [["app", "a"]],
      entries: lines.map(([name, size], i) => ({
        ts: nowNs + BigInt(i),
        line: name.padEnd(size, "x"),
        metadata: undefined,
      })),
    },
  ];
}

describe("ingester with stream sharding", () => {
  it("stores the shards of a push as streams of their own: entries pushed again are stored again", () => {
    const { ingester, clock, streamsOf } = ingesterAt();
    const entries = push(["a", 2 * KB], ["b", 2 * KB], ["c", 2 * KB]);
    ingester.push("t", entries);
    clock.ms += 1000;
    ingester.push("t", entries);
    expect(streamsOf()).toEqual([
      `{__stream_shard__="0", app="a", service_name="a"} a`,
      `{__stream_shard__="1", app="a", service_name="a"} b`,
      `{__stream_shard__="2", app="a", service_name="a"} c`,
      `${LABELS} abc`,
    ]);
  });

  it("leaves the streams of a tenant with shard_streams disabled whole, entries de-duplicated", () => {
    const { ingester, clock, streamsOf } = ingesterAt();
    const entries = push(["a", 2 * KB], ["b", 2 * KB], ["c", 2 * KB]);
    ingester.push("off", entries);
    clock.ms += 1000;
    ingester.push("off", entries);
    expect(streamsOf("off")).toEqual([`${LABELS} abc`]);
  });

  it("counts a push repeating the stream's last entry as a push of no bytes", () => {
    const { ingester, rates, clock } = ingesterAt();
    ingester.push("t", push(["a", 100]));
    ingester.push("t", push(["a", 100]));
    ingester.push("t", push(["a", 100]));
    clock.ms += 1000;
    expect(rates.rateFor("t", LABELS)).toEqual({ bytesPerSecond: 100, pushes: 3 });
  });

  it("counts the stored entries in the streams' rates after replayWal(), as a restarted Loki does", () => {
    const withReplay = ingesterAt();
    const without = ingesterAt();
    for (const { ingester, clock } of [withReplay, without]) {
      ingester.push("t", push(["a", 20 * KB]));
      clock.ms += 60_000; // the rate has decayed to 0 (bytes), the pushes to almost 0
    }
    withReplay.ingester.replayWal();
    for (const { ingester, clock } of [withReplay, without]) {
      clock.ms += 1000;
      ingester.push("t", push(["b", KB / 2], ["c", KB / 2]));
    }
    expect(without.streamsOf()).toEqual([`${LABELS} abc`]);
    expect(withReplay.streamsOf()).toEqual([
      `{__stream_shard__="0", app="a", service_name="a"} b`,
      `{__stream_shard__="1", app="a", service_name="a"} c`,
      `${LABELS} a`,
    ]);
  });
});
