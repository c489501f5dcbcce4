import { describe, expect, it } from "vitest";
import { InputError } from "../../functions/core/errors.ts";
import { splitIntoSlices } from "../../functions/core/workflow/backfill-plan.ts";
import { parseBackfillRequest } from "../../functions/core/workflow/backfill-request.ts";
import { parseTimeRange } from "../../functions/core/workflow/time-range.ts";

const NOW = Date.parse("2026-11-25T15:30:00Z");

describe("time ranges", () => {
  it("reads relative ages, ISO timestamps, dates and START..END", () => {
    expect(parseTimeRange("7d", NOW)).toEqual({ startMs: NOW - 7 * 86_400_000, endMs: NOW });
    expect(parseTimeRange("2026-11-01..2026-11-08", NOW)).toEqual({
      startMs: Date.parse("2026-11-01T00:00:00Z"),
      endMs: Date.parse("2026-11-08T00:00:00Z"),
    });
    expect(parseTimeRange("2026-11-20T06:00..2026-11-20T08:30:00+01:00", NOW)).toEqual({
      startMs: Date.parse("2026-11-20T06:00:00Z"),
      endMs: Date.parse("2026-11-20T07:30:00Z"),
    });
    expect(parseTimeRange("3d..1d", NOW)).toEqual({ startMs: NOW - 3 * 86_400_000, endMs: NOW - 86_400_000 });
    expect(parseTimeRange("90m..now", NOW)).toEqual({ startMs: NOW - 90 * 60_000, endMs: NOW });
  });

  it("says what to write instead of a malformed time", () => {
    expect(() => parseTimeRange("7 days", NOW)).toThrow(
      /Cannot read range start "7 days": use an ISO timestamp .* 7d/,
    );
    expect(() => parseTimeRange("2026-13-45", NOW)).toThrow(InputError);
  });
});

describe("parseBackfillRequest", () => {
  const valid = { logGroupNames: ["/aws/lambda/a"], range: "2026-11-22T00:00Z..2026-11-23T00:00Z" };

  it("takes the replay pace of a tenant with raised limits, and refuses a pace of zero", () => {
    const request = parseBackfillRequest(
      { ...valid, bytesPerSecond: 50 * 1_048_576, perStreamBytesPerSecond: 10 * 1_048_576 },
      { now: NOW },
    );
    expect(request).toMatchObject({
      bytesPerSecond: 50 * 1_048_576,
      perStreamBytesPerSecond: 10 * 1_048_576,
    });
    expect(parseBackfillRequest(valid, { now: NOW }).bytesPerSecond).toBeUndefined();
    expect(() => parseBackfillRequest({ ...valid, bytesPerSecond: 0 }, { now: NOW })).toThrow(
      "Invalid backfill request: bytesPerSecond: bytesPerSecond must be above 0",
    );
  });

  it("normalises a request with defaults", () => {
    const request = parseBackfillRequest({ ...valid, filterPattern: "ERROR" }, { now: NOW });
    expect(request).toMatchObject({
      selector: { names: ["/aws/lambda/a"] },
      startMs: Date.parse("2026-11-22T00:00:00Z"),
      endMs: Date.parse("2026-11-23T00:00:00Z"),
      filterPattern: "ERROR",
      sliceHours: 1,
      concurrency: 4,
      requestsPerSecond: 4,
      dryRun: false,
    });
  });

  it("ends a range that reaches now before CloudWatch's ingestion delay", () => {
    const request = parseBackfillRequest({ tagSelector: "team=payments", range: "2h" }, { now: NOW });
    expect(request.requestedEndMs).toBe(NOW);
    expect(request.endMs).toBe(NOW - 300_000);
  });

  it.each([
    [
      { ...valid, range: "2026-11-23..2026-11-22" },
      /ends \(2026-11-22T00:00:00.000Z\) before it starts .*put the earlier time first/,
    ],
    [{ ...valid, range: "yesterday" }, /Cannot read range start "yesterday"/],
    [{ range: "1d" }, /choose log groups: give logGroupNames, logGroupNamePrefix or tagSelector/],
    [{ ...valid, logStreamNames: ["a"], logStreamNamePrefix: "b" }, /mutually exclusive in FilterLogEvents/],
    [{ ...valid, tagSelector: "team=x" }, /cannot be combined/],
    [{ ...valid, concurrency: 0 }, /concurrency: concurrency must be at least 1/],
    [{ ...valid, sliceHours: 1.5 }, /sliceHours: sliceHours must be a whole number/],
    [{ ...valid, range: "2d", start: "1d" }, /either range or start\/end/],
    [{ ...valid, range: "2026-11-25T15:28Z..now" }, /within the last 300 s.*start it earlier/],
    [{ ...valid, range: "1d..2026-12-01" }, /ends in the future/],
    [
      {
        ...valid,
        tagSelector: undefined,
        logGroupNames: undefined,
        logGroupNamePrefix: "/x",
        tagSelecter: "a=b",
      },
      /unknown field\(s\) tagSelecter/,
    ],
    [{ ...valid, labels: { LABEL_MAX_COUNT: "1" } }, /LABEL_MAX_COUNT/],
  ])("refuses %j with a message that says what to change", (input, message) => {
    expect(() => parseBackfillRequest(input, { now: NOW })).toThrow(InputError);
    expect(() => parseBackfillRequest(input, { now: NOW })).toThrow(message);
  });
});

describe("splitIntoSlices", () => {
  it("cuts a range at whole UTC hours, so that each slice stays within its time shards", () => {
    const start = Date.parse("2026-11-22T10:20:00Z");
    const end = Date.parse("2026-11-22T13:05:00Z");
    expect(splitIntoSlices(start, end, 1)).toEqual([
      { sliceId: "20261122T10", startMs: start, endMs: Date.parse("2026-11-22T11:00:00Z") },
      {
        sliceId: "20261122T11",
        startMs: Date.parse("2026-11-22T11:00:00Z"),
        endMs: Date.parse("2026-11-22T12:00:00Z"),
      },
      {
        sliceId: "20261122T12",
        startMs: Date.parse("2026-11-22T12:00:00Z"),
        endMs: Date.parse("2026-11-22T13:00:00Z"),
      },
      { sliceId: "20261122T13", startMs: Date.parse("2026-11-22T13:00:00Z"), endMs: end },
    ]);
    expect(splitIntoSlices(start, end, 24).map((slice) => slice.sliceId)).toEqual(["20261122T00"]);
  });
});

describe("parseBackfillRequest: log groups in other accounts", () => {
  const range = "1d";
  const now = Date.now();

  it("reads log group ARNs, with or without :*, each in its own account and region", () => {
    const request = parseBackfillRequest(
      {
        logGroupNames: [
          "/aws/lambda/home",
          "arn:aws:logs:eu-west-1:111111111111:log-group:/aws/lambda/fn:*",
          "arn:aws:logs:us-east-1:222222222222:log-group:/aws/lambda/fn",
        ],
        range,
      },
      { now },
    );
    expect(request.selector).toEqual({
      names: ["/aws/lambda/home"],
      arns: [
        { logGroup: "/aws/lambda/fn", account: "111111111111", region: "eu-west-1" },
        { logGroup: "/aws/lambda/fn", account: "222222222222", region: "us-east-1" },
      ],
    });
  });

  it("takes an account and a region for a prefix or a tag selector", () => {
    const request = parseBackfillRequest(
      { logGroupNamePrefix: "/aws/lambda/", account: "111111111111", region: "eu-west-1", range },
      { now },
    );
    expect(request.selector).toEqual({
      prefix: "/aws/lambda/",
      account: "111111111111",
      region: "eu-west-1",
    });
  });

  it("refuses an account id that is not 12 digits, naming the value", () => {
    expect(() =>
      parseBackfillRequest({ tagSelector: "team=a", account: "11111111111", range }, { now }),
    ).toThrow('Invalid backfill request: account must be a 12-digit AWS account id, got "11111111111"');
  });

  it("refuses a malformed region and a malformed ARN, each with what was expected", () => {
    const bad = "arn:aws:logs:eu-west-1:1111:log-group:/aws/lambda/fn";
    expect(() => parseBackfillRequest({ logGroupNames: [bad], region: "Europe", range }, { now })).toThrow(
      `Invalid backfill request: region must be an AWS region such as eu-west-1, got "Europe"; "${bad}" is not a log group ARN: expected arn:aws:logs:<region>:<12-digit account>:log-group:<name> (with or without :*)`,
    );
    expect(() =>
      parseBackfillRequest(
        { logGroupNames: ["arn:aws:lambda:eu-west-1:111111111111:function:fn"], range },
        { now },
      ),
    ).toThrow(/"arn:aws:lambda:eu-west-1:111111111111:function:fn" is not a log group ARN/);
  });
});
