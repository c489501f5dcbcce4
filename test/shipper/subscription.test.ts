import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeSubscriptionData, MalformedPayloadError } from "../../functions/shipper/subscription.ts";
import { controlMessage, dataMessage, logEvent, subscriptionEvent } from "../fixtures/subscription.ts";

function stageOf(data: unknown): string | undefined {
  try {
    decodeSubscriptionData(data);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(MalformedPayloadError);
    return (error as MalformedPayloadError).stage;
  }
}

describe("decodeSubscriptionData", () => {
  it("decodes a DATA_MESSAGE into log events carrying their log stream", () => {
    const message = dataMessage({
      logGroup: "/aws/lambda/orders",
      logStream: "2026/11/25/[$LATEST]abc",
      events: [logEvent(1000, "one"), logEvent(1001, "two ✓")],
    });
    const decoded = decodeSubscriptionData(subscriptionEvent(message).awslogs.data);
    expect(decoded.messageType).toBe("DATA_MESSAGE");
    if (decoded.messageType !== "DATA_MESSAGE") return;
    expect(decoded.logGroup).toBe("/aws/lambda/orders");
    expect(decoded.owner).toBe("123456789012");
    expect(decoded.events).toEqual(
      message.logEvents.map((event) => ({ ...event, logStream: "2026/11/25/[$LATEST]abc" })),
    );
  });

  it("recognises a CONTROL_MESSAGE", () => {
    expect(decodeSubscriptionData(subscriptionEvent(controlMessage()).awslogs.data)).toEqual({
      messageType: "CONTROL_MESSAGE",
    });
  });

  it.each([
    ["no data", undefined, "event"],
    ["bad base64", "this is not base64!!", "base64"],
    ["bad gzip", Buffer.from("plain text, not gzip").toString("base64"), "gzip"],
    ["not JSON", gzipSync("{not json").toString("base64"), "json"],
    ["unknown message type", subscriptionEvent({ messageType: "HELLO" }).awslogs.data, "message_type"],
    [
      "missing fields",
      subscriptionEvent({ messageType: "DATA_MESSAGE", owner: "1", logGroup: "/g", logEvents: [{ id: "1" }] })
        .awslogs.data,
      "shape",
    ],
  ])("rejects %s with stage %s", (_name, data, stage) => {
    expect(stageOf(data)).toBe(stage);
  });

  it("names the missing fields in its message", () => {
    const data = subscriptionEvent({
      messageType: "DATA_MESSAGE",
      owner: "1",
      logGroup: "/g",
      logEvents: [{ id: "1" }],
    }).awslogs.data;
    expect(() => decodeSubscriptionData(data)).toThrow(/logStream.*logEvents\.0\.timestamp/s);
  });

  it("words each problem as full zod does, in a process that loads only zod/mini", () => {
    // zod/mini has no messages of its own; in this test process full zod (loaded by other modules)
    // would supply them, so the decoder runs alone in a fresh Node process.
    const data = subscriptionEvent({ messageType: "DATA_MESSAGE", owner: "", logGroup: "/g", logEvents: [] })
      .awslogs.data;
    const decoder = fileURLToPath(new URL("../../functions/shipper/subscription.ts", import.meta.url));
    const script = `import { decodeSubscriptionData } from ${JSON.stringify(decoder)};
try { decodeSubscriptionData(${JSON.stringify(data)}); } catch (error) { console.log(error.message); }`;
    const message = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
    });
    expect(message.trim()).toBe(
      "the DATA_MESSAGE does not have the expected shape: owner: Too small: expected string to have >=1 characters; logStream: Invalid input: expected string, received undefined",
    );
  });
});
