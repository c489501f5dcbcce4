import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  type FilteredLogEvent,
  FilterLogEventsCommand,
  PutLogEventsCommand,
  TagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import got from "got";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { awsClientConfig, TEST_ACCOUNT, TEST_REGION, uniqueName } from "../helpers/aws.ts";
import { startTestLoki, type TestLoki } from "../helpers/loki.ts";

/**
 * The first vertical slice: CloudWatch Logs (moto) -> FilterLogEvents paging -> Loki push (got, JSON)
 * -> query_range, with the log group's tags as stream labels. Deliberately written without the
 * shipper's core, so that it checks the test bed itself: both servers and the real clients.
 */
const logs = new CloudWatchLogsClient(awsClientConfig());
let loki: TestLoki;

interface SampleGroup {
  name: string;
  tags: Record<string, string>;
  lines: { timestamp: number; message: string }[];
}

function sampleGroup(functionName: string, runtime: string, count: number, startMs: number): SampleGroup {
  const lines = Array.from({ length: count }, (_, index) => ({
    timestamp: startMs + index * 250,
    message: `${functionName} event ${index} ünïcode ✓ {"level":"info","n":${index}}`,
  }));
  return {
    name: `/aws/lambda/${uniqueName(functionName)}`,
    tags: { name: functionName, runtime, region: TEST_REGION, owner: "team-slice" },
    lines,
  };
}

async function createGroup(group: SampleGroup): Promise<void> {
  await logs.send(new CreateLogGroupCommand({ logGroupName: group.name }));
  await logs.send(
    new TagResourceCommand({
      resourceArn: `arn:aws:logs:${TEST_REGION}:${TEST_ACCOUNT}:log-group:${group.name}`,
      tags: group.tags,
    }),
  );
  await logs.send(
    new CreateLogStreamCommand({ logGroupName: group.name, logStreamName: "2026/11/25/[$LATEST]abc" }),
  );
  // PutLogEvents takes at most 10,000 events / 1 MB per call.
  for (let offset = 0; offset < group.lines.length; offset += 5_000) {
    await logs.send(
      new PutLogEventsCommand({
        logGroupName: group.name,
        logStreamName: "2026/11/25/[$LATEST]abc",
        logEvents: group.lines.slice(offset, offset + 5_000),
      }),
    );
  }
}

async function readAll(logGroupName: string): Promise<{ events: FilteredLogEvent[]; pages: number }> {
  const events: FilteredLogEvent[] = [];
  let nextToken: string | undefined;
  let pages = 0;
  do {
    const page = await logs.send(new FilterLogEventsCommand({ logGroupName, nextToken }));
    pages += 1;
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return { events, pages };
}

async function pushToLoki(labels: Record<string, string>, events: FilteredLogEvent[]): Promise<void> {
  // Loki's default max_entries_limit and 4 MiB push size: push in slices of 2,000 entries.
  for (let offset = 0; offset < events.length; offset += 2_000) {
    const values = events
      .slice(offset, offset + 2_000)
      .map((event) => [`${BigInt(event.timestamp ?? 0) * 1_000_000n}`, event.message ?? ""]);
    const response = await got.post(`${loki.url}/loki/api/v1/push`, {
      headers: { "X-Scope-OrgID": loki.tenant },
      json: { streams: [{ stream: labels, values }] },
      throwHttpErrors: false,
    });
    expect(response.statusCode, response.body).toBe(204);
  }
}

describe("vertical slice: moto -> FilterLogEvents -> Loki push -> query_range", () => {
  const now = Date.now();
  const python = sampleGroup("fun-python", "python", 12_000, now - 80 * 60_000);
  const node = sampleGroup("fun-node", "nodejs", 30, now - 20 * 60_000);

  beforeAll(async () => {
    loki = await startTestLoki();
    await Promise.all([createGroup(python), createGroup(node)]);
  });
  afterAll(async () => {
    await loki?.close();
  });

  it("pages FilterLogEvents, ships by tag labels and reads back exact lines, timestamps and labels", async () => {
    for (const group of [python, node]) {
      const { events, pages } = await readAll(group.name);
      expect(events).toHaveLength(group.lines.length);
      if (group === python) expect(pages).toBeGreaterThan(1);
      await pushToLoki(group.tags, events);
    }

    const streams = await loki.queryRangeAll(`{runtime="python", region="${TEST_REGION}", name=~"fun.*"}`, {
      start: BigInt(now - 2 * 3_600_000) * 1_000_000n,
      end: BigInt(now + 60_000) * 1_000_000n,
    });

    expect(streams).toHaveLength(1);
    const [stream] = streams;
    expect(stream?.stream).toMatchObject(python.tags);
    expect(stream?.values).toEqual(
      python.lines.map((line) => [`${BigInt(line.timestamp) * 1_000_000n}`, line.message]),
    );
  });
});
