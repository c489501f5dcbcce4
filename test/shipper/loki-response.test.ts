import { describe, expect, it } from "vitest";
import type { PushEntry } from "../../functions/core/loki/loki-push.ts";
import { attributeRefusals, parseGoTime } from "../../functions/core/loki/loki-response.ts";

/** Bodies in the exact formats real Loki 3.4.6 answered in the contract cases (c05, c07, c09, c10, c24, c27). */
const stream = `{case="c", run="r", service_name="unknown_service"}`;
const now = 1_795_618_291_784_654_321n;
const HOUR = 3_600_000_000_000n;
const DAY = 24n * HOUR;
const entry = (ns: bigint, line = "line"): PushEntry => ({ ns, line });

describe("parseGoTime", () => {
  it("reads Go's time.Time.String()", () => {
    expect(parseGoTime("2026-11-25 13:50:14.040654321 +0000 UTC")).toBe(
      BigInt(Date.parse("2026-11-25T13:50:14Z")) * 1_000_000n + 40_654_321n,
    );
    expect(parseGoTime("2026-11-25 13:50:14 +0000 UTC")).toBe(
      BigInt(Date.parse("2026-11-25T13:50:14Z")) * 1_000_000n,
    );
  });
});

describe("attributeRefusals", () => {
  it("attributes 'entry too far behind' lines to the listed entries (c08)", () => {
    const entries = [entry(now - 2n * HOUR), entry(now - 1000n), entry(now)];
    const body =
      "entry with timestamp 2026-11-25 13:51:31.784654321 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-11-25T13:51:31Z, oldest acceptable timestamp is: 2026-11-25T14:51:31Z',\n" +
      `user 'r-c08', total ignored: 1 out of 3 for stream: ${stream}\n`;
    const attribution = attributeRefusals(
      [
        { ...entries[0], ns: parseGoTime("2026-11-25 13:51:31.784654321 +0000 UTC") as bigint },
        entries[1],
        entries[2],
      ] as PushEntry[],
      body,
    );
    expect([...(attribution?.keys() ?? [])]).toEqual([0]);
    expect(attribution?.get(0)?.kind).toBe("too_far_behind");
  });

  it("gives up when Loki counts more refused entries than it lists (at most 10 listed)", () => {
    const listed =
      "entry with timestamp 2026-11-25 13:51:31.784654321 +0000 UTC ignored, reason: 'entry too far behind, x',\n";
    const body = `${listed}user 't', total ignored: 12 out of 20 for stream: ${stream}\n`;
    const entries = [entry(parseGoTime("2026-11-25 13:51:31.784654321 +0000 UTC") as bigint), entry(now)];
    expect(attributeRefusals(entries, body)).toBeUndefined();
  });

  it("attributes 'too old' to the oldest entries (c09 mixed)", () => {
    const entries = [entry(now), entry(now - 8n * DAY)];
    const body = `entry for stream '${stream}' has timestamp too old: 2026-11-17T14:51:31Z, oldest acceptable timestamp is: 2026-11-18T14:51:31Z\n`;
    const attribution = attributeRefusals(entries, body);
    expect([...(attribution?.entries() ?? [])]).toEqual([[1, { kind: "too_old", reason: body.trim() }]]);
  });

  it("attributes 'too new' to the newest entries, counting 'N errors like' (c27)", () => {
    const entries = [entry(now + 20n * 60_000_000_000n), entry(now), entry(now + 21n * 60_000_000_000n)];
    const body = `2 errors like: entry for stream '${stream}' has timestamp too new: 2026-11-25T15:11:31Z\n`;
    const attribution = attributeRefusals(entries, body);
    expect([...(attribution?.keys() ?? [])].sort()).toEqual([0, 2]);
  });

  it("attributes several kinds in one body (c27 push_two_kinds)", () => {
    const entries = [entry(now - 8n * DAY), entry(now, "x".repeat(262_145)), entry(now - 1n)];
    const body =
      `1 errors like: Max entry size '262144' bytes exceeded for stream '${stream}' while adding an entry with length '262145' bytes; ` +
      `1 errors like: entry for stream '${stream}' has timestamp too old: 2026-11-17T14:51:31Z, oldest acceptable timestamp is: 2026-11-18T14:51:31Z\n`;
    const attribution = attributeRefusals(entries, body);
    expect(attribution?.get(0)?.kind).toBe("too_old");
    expect(attribution?.get(1)?.kind).toBe("line_too_long");
    expect(attribution?.has(2)).toBe(false);
  });

  it("refuses every entry for a request-wide error (c24 invalid label name)", () => {
    const body = "couldn't parse labels: 1:5: parse error: unexpected character inside braces: '-'\n";
    const attribution = attributeRefusals([entry(now), entry(now + 1n)], body);
    expect(attribution?.size).toBe(2);
    expect(attribution?.get(1)?.kind).toBe("invalid_labels");
  });

  it("returns undefined for a body it does not know", () => {
    expect(attributeRefusals([entry(now), entry(now + 1n)], "something odd happened\n")).toBeUndefined();
  });
});
