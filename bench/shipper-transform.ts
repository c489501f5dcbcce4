/**
 * Throughput of the live shipper's CPU work per payload: decode (base64 + gunzip + JSON + shape
 * check), labels, deterministic timestamps, stream building, batching and push encoding
 * (protobuf + snappy, or JSON + gzip). No network: it measures what a Lambda spends before and
 * between pushes. Run: `npx node bench/shipper-transform.ts`.
 */
import { buildStreams, splitIntoBatches } from "../functions/core/batching.ts";
import { defaultLabelOptions, resolveGroupLabels } from "../functions/core/labels.ts";
import { encodePush, type PushFormat } from "../functions/core/loki-push.ts";
import { decodeSubscriptionData } from "../functions/core/subscription.ts";
import { dataMessage, logEvent, subscriptionEvent } from "../test/fixtures/subscription.ts";

const COUNTS = [1_000, 10_000];
const LINE_BYTES = [100, 1_024, 10_240];
const FORMATS: { name: string; format: PushFormat }[] = [
  { name: "protobuf+snappy", format: "protobuf" },
  { name: "json+gzip", format: "json" },
];
const MAX_BATCH_BYTES = 1024 * 1024;
const tags = {
  runtime: "nodejs",
  name: "fun-orders",
  owner: "team-a",
  "team-name": "payments",
  "aws:cloudformation:stack-name": "s",
};
const labelOptions = defaultLabelOptions();
const WORDS =
  "order payment user request handler error timeout retry queue lambda stored cache miss hit latency".split(
    " ",
  );

/** Log-like lines of `bytes` bytes with varied words and numbers, so compression is not flattered. */
function textLine(bytes: number, index: number): string {
  let line = `${new Date().toISOString()}\t${index}\tINFO\t`;
  let seed = index * 2_654_435_761;
  while (line.length < bytes) {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    line += `${WORDS[seed % WORDS.length]}=${seed % 100_000} `;
  }
  return line.slice(0, bytes);
}

function transform(data: string, format: PushFormat): { bytesOut: number; requests: number } {
  const message = decodeSubscriptionData(data);
  if (message.messageType !== "DATA_MESSAGE") throw new Error("expected a DATA_MESSAGE");
  const { labels, eventLabels } = resolveGroupLabels(message.logGroup, tags, labelOptions, {
    accountId: message.owner,
    region: "eu-central-1",
  });
  const streams = buildStreams([{ logGroup: message.logGroup, labels, events: message.events, eventLabels }]);
  const requests = splitIntoBatches(streams, MAX_BATCH_BYTES, 10_000);
  let bytesOut = 0;
  for (const request of requests) bytesOut += encodePush(request, format).body.length;
  return { bytesOut, requests: requests.length };
}

console.log(`node ${process.version}, ${process.arch}; batches of at most ${MAX_BATCH_BYTES} bytes`);
console.log(
  "events  line B  format            runs  median ms   events/s      MB/s (lines)  requests  wire MB",
);
for (const count of COUNTS) {
  for (const lineBytes of LINE_BYTES) {
    const startMs = Date.now() - 60_000;
    const events = Array.from({ length: count }, (_, index) =>
      logEvent(startMs + index, textLine(lineBytes, index)),
    );
    const data = subscriptionEvent(dataMessage({ logGroup: "/aws/lambda/fun-orders", events })).awslogs.data;
    const lineMegabytes = (count * lineBytes) / 1e6;
    for (const { name, format } of FORMATS) {
      for (let warmUp = 0; warmUp < 3; warmUp += 1) transform(data, format); // JIT
      const runs = count * lineBytes > 50e6 ? 3 : 7;
      const durations: number[] = [];
      let last = { bytesOut: 0, requests: 0 };
      for (let run = 0; run < runs; run += 1) {
        const started = performance.now();
        last = transform(data, format);
        durations.push(performance.now() - started);
      }
      durations.sort((a, b) => a - b);
      const median = durations[Math.floor(durations.length / 2)] as number;
      console.log(
        [
          String(count).padStart(6),
          String(lineBytes).padStart(7),
          `  ${name.padEnd(16)}`,
          String(runs).padStart(5),
          median.toFixed(1).padStart(10),
          Math.round(count / (median / 1000))
            .toLocaleString("en-US")
            .padStart(11),
          (lineMegabytes / (median / 1000)).toFixed(1).padStart(13),
          String(last.requests).padStart(9),
          (last.bytesOut / 1e6).toFixed(2).padStart(8),
        ].join(" "),
      );
    }
  }
}
