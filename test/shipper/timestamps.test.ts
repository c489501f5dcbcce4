import { describe, expect, it } from "vitest";
import {
  eventIdOffset,
  eventNanoseconds,
  nanosToMillis,
  timeShard,
} from "../../functions/core/delivery/timestamps.ts";
import { cloudWatchEventId } from "../fixtures/subscription.ts";

describe("eventNanoseconds", () => {
  it("is the same for the same event on every call", () => {
    const id = cloudWatchEventId(1_795_618_291_784);
    expect(eventNanoseconds(1_795_618_291_784, id)).toBe(eventNanoseconds(1_795_618_291_784, id));
  });

  it("keeps the millisecond and adds an offset below 1 ms", () => {
    const ns = eventNanoseconds(
      1_795_618_291_784,
      "36432817283474923874923874923874923874923874923874923874",
    );
    expect(nanosToMillis(ns)).toBe(1_795_618_291_784);
    expect(ns - 1_795_618_291_784n * 1_000_000n).toBeLessThan(1_000_000n);
  });

  it("gives distinct events of the same millisecond distinct timestamps", () => {
    const ms = 1_795_618_291_784;
    // Deterministic ids (CloudWatch-like: 56 digits), so the test cannot flake: 1,000 ids into 1e6 slots.
    const ids = Array.from({ length: 1000 }, (_, index) => `${ms}${String(index).padStart(43, "0")}`);
    const offsets = new Set(ids.map((id) => eventIdOffset(id)));
    expect(offsets.size).toBeGreaterThanOrEqual(998);
  });
});

describe("timeShard", () => {
  it("is the UTC hour of the timestamp", () => {
    expect(timeShard(Date.parse("2026-11-25T14:59:59.999Z"))).toBe("2026-11-25T14");
    expect(timeShard(Date.parse("2026-11-25T15:00:00.000Z"))).toBe("2026-11-25T15");
  });
});
