import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeSubscriptionData, MalformedPayloadError } from "../../functions/shipper/subscription.ts";
import {
  controlMessage,
  dataMessage,
  logEvent,
  realisticEvents,
  subscriptionEvent,
} from "../fixtures/subscription.ts";

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

  describe("a payload large enough to be parsed in pieces (the size lowered to 64 KiB)", () => {
    const decodeInPieces = (data: string) => decodeSubscriptionData(data, "awslogs.data", 64 * 1024);
    const logStream = "2026/11/25/[$LATEST]abc";
    /** Lines that hold what a cut between events looks for, quotes, unicode and JSON lines. */
    function trickyEvents(count: number) {
      const startMs = Date.now() - 60_000;
      return realisticEvents(count, startMs).map((event, index) =>
        index % 7 === 0
          ? { ...event, message: `${event.message} },{"id":"fake","timestamp":1,"message":"x"}]}` }
          : event,
      );
    }
    const expected = (events: { id: string; timestamp: number; message: string }[]) =>
      events.map((event) => ({ ...event, logStream }));

    it("decodes every event as a parse of the whole text does", () => {
      const message = dataMessage({ logGroup: "/aws/lambda/orders", logStream, events: trickyEvents(3_000) });
      expect(JSON.stringify(message).length).toBeGreaterThan(10 * 64 * 1024);
      const decoded = decodeInPieces(subscriptionEvent(message).awslogs.data);
      expect(decoded.messageType === "DATA_MESSAGE" && decoded.events).toEqual(expected(message.logEvents));
    });

    it.each([
      [
        "logEvents not last",
        (message: ReturnType<typeof dataMessage>) => {
          const { logEvents, ...rest } = message;
          return JSON.stringify({ logEvents, ...rest });
        },
      ],
      ["pretty-printed", (message: ReturnType<typeof dataMessage>) => JSON.stringify(message, null, 2)],
      [
        "a key after logEvents",
        (message: ReturnType<typeof dataMessage>) => JSON.stringify({ ...message, extra: [1, 2] }),
      ],
    ])("decodes it with %s", (_name, layout) => {
      const message = dataMessage({ logGroup: "/aws/lambda/orders", logStream, events: trickyEvents(1_000) });
      const decoded = decodeInPieces(subscriptionEvent(layout(message)).awslogs.data);
      expect(decoded.messageType === "DATA_MESSAGE" && decoded.events).toEqual(expected(message.logEvents));
    });

    it("names a broken event of a later piece as a parse of the whole text does", () => {
      const text = JSON.stringify(dataMessage({ logGroup: "/g", logStream, events: trickyEvents(1_000) }));
      // The comma between the last two events left out.
      const cut = text.lastIndexOf('},{"id":');
      const broken = `${text.slice(0, cut + 1)}${text.slice(cut + 2)}`;
      const parseError = (() => {
        try {
          JSON.parse(broken);
        } catch (error) {
          return (error as Error).message;
        }
      })();
      expect(parseError).toMatch(/JSON/);
      expect(() => decodeInPieces(subscriptionEvent(broken).awslogs.data)).toThrow(
        `awslogs.data is not JSON: ${parseError}`,
      );
    });
  });
});
