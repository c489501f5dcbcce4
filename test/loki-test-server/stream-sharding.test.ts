import { describe, expect, it } from "vitest";
import { formatLabels, type LabelPairs } from "../../loki-test-server/labels.ts";
import { StreamRates } from "../../loki-test-server/stream-rates.ts";
import {
  dealEntries,
  SHARD_LABEL,
  StreamSharder,
  shardCount,
  withShardLabel,
} from "../../loki-test-server/stream-sharding.ts";

const KB = 1024;

describe("shard count (Loki's shardCountFor / calculateShards)", () => {
  it("never shards a stream the rate store does not know (its first push), however large", () => {
    expect(shardCount({ bytesPerSecond: 0, pushes: 0 }, 100 * KB, KB)).toBe(1);
  });

  it("is ceil((rate + push size) / desired rate) for a stream pushed at least once per window", () => {
    expect(shardCount({ bytesPerSecond: 1000, pushes: 1 }, 2000, KB)).toBe(3); // 2.93
    expect(shardCount({ bytesPerSecond: 3000, pushes: 1 }, 0, KB)).toBe(3); // 2.93
    expect(shardCount({ bytesPerSecond: 0, pushes: 1 }, 2049, KB)).toBe(3); // 2.0009
  });

  it("scales the push size by the pushes per window when below one, and caps them at one", () => {
    expect(shardCount({ bytesPerSecond: 1000, pushes: 0.5 }, 2000, KB)).toBe(2); // (1000 + 1000) / 1024
    expect(shardCount({ bytesPerSecond: 1000, pushes: 3 }, 2000, KB)).toBe(3); // as with 1
  });

  it("keeps one stream up to the desired rate included, and when the desired rate is not positive", () => {
    expect(shardCount({ bytesPerSecond: 24, pushes: 1 }, 1000, KB)).toBe(1); // exactly 1
    expect(shardCount({ bytesPerSecond: 25, pushes: 1 }, 1000, KB)).toBe(2);
    expect(shardCount({ bytesPerSecond: 1e9, pushes: 1 }, 1e9, 0)).toBe(1);
  });
});

describe("dealing a push's entries to shards", () => {
  const entries = ["e0", "e1", "e2", "e3", "e4", "e5", "e6"];

  it("deals round-robin from the start shard", () => {
    expect(dealEntries(entries, 3, 0)).toEqual([
      { shard: 0, entries: ["e0", "e3", "e6"] },
      { shard: 1, entries: ["e1", "e4"] },
      { shard: 2, entries: ["e2", "e5"] },
    ]);
    expect(dealEntries(entries, 3, 4)).toEqual([
      { shard: 1, entries: ["e0", "e3", "e6"] },
      { shard: 2, entries: ["e1", "e4"] },
      { shard: 0, entries: ["e2", "e5"] },
    ]);
  });

  it("uses only as many shards as there are entries", () => {
    expect(dealEntries(["a", "b"], 5, 4)).toEqual([
      { shard: 4, entries: ["a"] },
      { shard: 0, entries: ["b"] },
    ]);
  });

  it("adds the shard label in Loki's label order (byte order of the names)", () => {
    const labels: LabelPairs = [
      ["Zone", "z"],
      ["app", "a"],
      ["service_name", "a"],
    ];
    expect(withShardLabel(labels, 2)).toEqual([
      ["Zone", "z"],
      [SHARD_LABEL, "2"],
      ["app", "a"],
      ["service_name", "a"],
    ]);
  });
});

describe("stream sharder (Loki's shardStream with its shard tracker)", () => {
  const labels: LabelPairs = [
    ["app", "a"],
    ["service_name", "a"],
  ];
  const labelText = formatLabels(labels);
  const settings = { enabled: true, desiredRate: KB };
  const line = (name: string, size: number) => ({ line: name.padEnd(size, "x") });

  function sharderAt() {
    const clock = { ms: 0 };
    const rates = new StreamRates({ nowMs: () => clock.ms });
    return { sharder: new StreamSharder(rates), rates, clock };
  }

  /** The rate store has seen the stream (one push of `bytes` in the last window). */
  function known(rates: StreamRates, clock: { ms: number }, bytes: number) {
    rates.record("t", labelText, labelText, bytes);
    clock.ms += 1000;
  }

  it("leaves a stream's first push whole, with its labels", () => {
    const { sharder } = sharderAt();
    const entries = [line("a", 10 * KB), line("b", 10 * KB)];
    expect(sharder.shard("t", { labels, labelText, entries }, settings)).toEqual([
      { labels, labelText, entries, rateKey: labelText },
    ]);
  });

  it("splits a push over the desired rate into shards labelled __stream_shard__, rates kept under the stream's labels", () => {
    const { sharder, rates, clock } = sharderAt();
    known(rates, clock, 100);
    const entries = [line("a", KB), line("b", KB), line("c", KB)];
    const shards = sharder.shard("t", { labels, labelText, entries }, settings);
    expect(shards.map((s) => [s.labelText, s.entries.map((e) => e.line[0]), s.rateKey])).toEqual([
      ['{__stream_shard__="0", app="a", service_name="a"}', ["a"], labelText],
      ['{__stream_shard__="1", app="a", service_name="a"}', ["b"], labelText],
      ['{__stream_shard__="2", app="a", service_name="a"}', ["c"], labelText],
    ]);
  });

  it("starts each push at the shard after the last one used, so one entry pushed again can land in another shard", () => {
    const { sharder, rates, clock } = sharderAt();
    known(rates, clock, 100);
    const shardOf = (name: string) => {
      const [shard, ...more] = sharder.shard(
        "t",
        { labels, labelText, entries: [line(name, 2500)] },
        settings,
      );
      expect(more).toEqual([]); // one entry: one shard of the 3
      return shard?.labels.find(([n]) => n === SHARD_LABEL)?.[1];
    };
    expect(["a", "b", "c", "d"].map(shardOf)).toEqual(["0", "1", "2", "0"]);
    // Two entries, three shards: the next two shards are used, and the push after starts behind them.
    const two = sharder.shard(
      "t",
      { labels, labelText, entries: [line("e", 1250), line("f", 1250)] },
      settings,
    );
    expect(two.map((s) => s.labels[0])).toEqual([
      [SHARD_LABEL, "1"],
      [SHARD_LABEL, "2"],
    ]);
    expect(shardOf("a")).toBe("0");
    expect(shardOf("b")).toBe("1");
    expect(shardOf("e")).toBe("2"); // first stored in shard 1: a second copy now, in shard 2
  });

  it("keeps a stream whole when its tenant has shard_streams disabled", () => {
    const { sharder, rates, clock } = sharderAt();
    known(rates, clock, 100 * KB);
    const entries = [line("a", 10 * KB), line("b", 10 * KB)];
    expect(sharder.shard("t", { labels, labelText, entries }, { ...settings, enabled: false })).toEqual([
      { labels, labelText, entries, rateKey: labelText },
    ]);
  });

  it("counts the lines' bytes as the push size, not their structured metadata", () => {
    const { sharder, rates, clock } = sharderAt();
    known(rates, clock, 0);
    const withMetadata = { line: "x".repeat(KB), metadata: [["trace_id", "y".repeat(10 * KB)]] };
    expect(
      sharder.shard("t", { labels, labelText, entries: [withMetadata, withMetadata] }, settings),
    ).toHaveLength(2);
    const small = { line: "x".repeat(500), metadata: [["trace_id", "y".repeat(10 * KB)]] };
    expect(sharder.shard("t", { labels, labelText, entries: [small, small] }, settings)).toHaveLength(1);
  });
});
