import { describe, expect, it } from "vitest";
import { lambdaRequestId } from "../../functions/core/delivery/request-id.ts";
import { lambdaLines } from "../fixtures/subscription.ts";

const requestId = "8f5d3c1e-2b4a-4c6d-9e8f-0a1b2c3d4e5f";
const otherId = "0a1b2c3d-4e5f-4c6d-9e8f-8f5d3c1e2b4a";

/** The three patterns run on every line, in order: what the pre-tests must never change. */
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const PATTERNS = [
  new RegExp(`RequestId: (${UUID})`),
  new RegExp(`^\\S+\\t(${UUID})\\t`),
  new RegExp(
    `"(?:requestId|request_id|awsRequestId|aws_request_id|function_request_id)"\\s*:\\s*"(${UUID})"`,
  ),
];
function everyPattern(line: string): string | undefined {
  const head = line.slice(0, 1024);
  for (const pattern of PATTERNS) {
    const match = pattern.exec(head);
    if (match) return match[1];
  }
  return undefined;
}

describe("lambdaRequestId", () => {
  it.each([
    ["START line", lambdaLines.start(requestId)],
    ["REPORT line", lambdaLines.report(requestId)],
    ["Node.js text format", lambdaLines.node(0, requestId, "INFO", "hello")],
    ["JSON log", lambdaLines.json(0, requestId, { message: "hi" })],
  ])("finds the request id in a %s", (_kind, line) => {
    expect(lambdaRequestId(line)).toBe(requestId);
  });

  it("finds none in other lines", () => {
    expect(lambdaRequestId("GET /health 200 in 3 ms")).toBeUndefined();
  });
});

describe("lambdaRequestId pre-tests", () => {
  it.each([
    [
      "a text line that also names a RequestId (the first pattern wins)",
      `2026-11-25T14:00:00.000Z\t${requestId}\tINFO\tretrying RequestId: ${otherId}`,
    ],
    ["a text line with a space before the first tab", `2026-11-25 14:00:00\t${requestId}\tINFO\thi`],
    ["a text line whose id has an upper-case digit", `t\t${requestId.toUpperCase()}\tINFO\thi`],
    [
      "a text line with a tab inside the id's place",
      `t\t${requestId.slice(0, 20)}\t${requestId.slice(21)}\tINFO`,
    ],
    ["a line starting with a tab", `\t${requestId}\tINFO\thi`],
    ["a JSON line with spaces around the colon", `{"aws_request_id" :  "${requestId}"}`],
    ["a JSON line with another key", `{"correlationId":"${requestId}"}`],
    ["an id after the first 1,024 characters", `${"x".repeat(1_020)} RequestId: ${requestId}`],
    ["an id right before character 1,024", `${"x".repeat(1_024 - 11 - 36)}RequestId: ${requestId}`],
    ["a REPORT line", lambdaLines.report(requestId)],
    ["a Node.js line", lambdaLines.node(0, requestId, "INFO", "hello")],
    ["a JSON log", lambdaLines.json(0, requestId, { message: "hi" })],
    ["a stack trace", lambdaLines.stackTrace(0, requestId)],
    ["no id", lambdaLines.unicode(1)],
  ])("find what the three patterns find, in their order: %s", (_name, line) => {
    expect(lambdaRequestId(line)).toBe(everyPattern(line));
  });
});
