import { describe, expect, it } from "vitest";
import { buildStreams } from "../../functions/core/delivery/batching.ts";
import { lambdaReportFields } from "../../functions/core/delivery/lambda-report.ts";
import { cloudWatchEventId, lambdaLines } from "../fixtures/subscription.ts";

const requestId = "8f5d3c1e-2b4a-4c6d-9e8f-0a1b2c3d4e5f";
const expectedFields = [
  ["duration_ms", "12.34"],
  ["billed_duration_ms", "13"],
  ["memory_size_mb", "128"],
  ["max_memory_used_mb", "67"],
  ["init_duration_ms", "180.52"],
  // 67 of 128 MB
  ["memory_utilization", "52.3"],
];

describe("lambdaReportFields", () => {
  it("reads the figures of a text REPORT line as numbers without units", () => {
    expect(lambdaReportFields(lambdaLines.report(requestId))).toEqual(expectedFields);
  });

  it("reads the same figures from a platform.report record of the JSON log format", () => {
    expect(lambdaReportFields(lambdaLines.platformReport(0, requestId))).toEqual(expectedFields);
  });

  it("leaves init_duration_ms out when the invocation was warm", () => {
    const warm = `REPORT RequestId: ${requestId}\tDuration: 36.00 ms\tBilled Duration: 36 ms\tMemory Size: 128 MB\tMax Memory Used: 71 MB\t`;
    expect(lambdaReportFields(warm)).toEqual([
      ["duration_ms", "36"],
      ["billed_duration_ms", "36"],
      ["memory_size_mb", "128"],
      ["max_memory_used_mb", "71"],
      ["memory_utilization", "55.5"],
    ]);
    expect(
      lambdaReportFields(lambdaLines.platformReport(0, requestId, false))?.map(([field]) => field),
    ).not.toContain("init_duration_ms");
  });

  it.each([
    ["a START line", lambdaLines.start(requestId)],
    ["an application line that mentions REPORT", "daily REPORT RequestId: sent"],
    ["another platform record", JSON.stringify({ type: "platform.start", record: { requestId } })],
    ["an application JSON line quoting platform.report", JSON.stringify({ message: "platform.report" })],
    ["broken JSON", '{"type":"platform.report",'],
  ])("finds nothing in %s", (_what, line) => {
    expect(lambdaReportFields(line)).toBeUndefined();
  });
});

describe("buildStreams with report lines", () => {
  it.each([
    ["text", lambdaLines.report(requestId)],
    ["JSON", lambdaLines.platformReport(0, requestId)],
  ])("attaches request_id and the figures as structured metadata (%s format)", (_format, message) => {
    const timestamp = Date.parse("2026-11-28T01:00:00Z");
    const [stream] = buildStreams([
      {
        logGroup: "/aws/lambda/orders",
        labels: { source: "cloudwatch" },
        events: [{ id: cloudWatchEventId(timestamp), timestamp, message, logStream: "s-1" }],
      },
    ]);
    expect(stream?.entries[0]?.metadata).toEqual([
      ["log_stream", "s-1"],
      ["request_id", requestId],
      ...expectedFields,
    ]);
  });
});
