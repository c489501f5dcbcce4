import { gunzipSync } from "node:zlib";
import {
  CreateQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";

/**
 * Lambda's asynchronous invocation, as CloudWatch Logs' subscription uses it: a failed invocation
 * (the handler threw, or ran past its deadline) is retried twice, then its event goes to the
 * function's on-failure destination, here a queue in moto's SQS. AWS waits about 1 and 2 minutes
 * before the retries; the soak waits `retryDelaysMs` (a few seconds) to fit a short run.
 */
export interface AsyncInvoker {
  invoke(event: unknown): void;
  /** Resolves when every invocation and its retries have ended. */
  settled(): Promise<void>;
  readonly counts: { invocations: number; failures: number; toQueue: number; overran: number };
}

export type Handler = (event: unknown) => Promise<void>;

export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
}

export function asyncInvoker(
  handler: Handler,
  queue: { sqs: SQSClient; url: string },
  retryDelaysMs: number[],
  log: (line: string) => void,
): AsyncInvoker {
  const running = new Set<Promise<void>>();
  const counts = { invocations: 0, failures: 0, toQueue: 0, overran: 0 };
  const attempt = async (event: unknown): Promise<void> => {
    let lastError: Error | undefined;
    for (let retry = 0; retry <= retryDelaysMs.length; retry++) {
      if (retry > 0) await new Promise((resolve) => setTimeout(resolve, retryDelaysMs[retry - 1]));
      counts.invocations++;
      try {
        await handler(event);
        return;
      } catch (error) {
        counts.failures++;
        if (error instanceof DeadlineExceeded) counts.overran++;
        lastError = error as Error;
      }
    }
    counts.toQueue++;
    log(
      `invocation failed ${retryDelaysMs.length + 1} times, event sent to the failure queue: ${lastError?.message}`,
    );
    // The shape of Lambda's on-failure destination record (the parts the audit reads).
    await queue.sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: JSON.stringify({
          requestContext: { condition: "RetriesExhausted", approximateInvokeCount: retryDelaysMs.length + 1 },
          responseContext: { functionError: "Unhandled" },
          responsePayload: { errorType: lastError?.name, errorMessage: lastError?.message },
          requestPayload: event,
        }),
      }),
    );
  };
  return {
    counts,
    invoke(event) {
      const run = attempt(event).finally(() => running.delete(run));
      running.add(run);
    },
    async settled() {
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}

export async function createFailureQueue(sqs: SQSClient, name: string): Promise<string> {
  const created = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  if (!created.QueueUrl) throw new Error(`moto did not answer a URL for the queue ${name}`);
  return created.QueueUrl;
}

/** The ids of the CloudWatch events held in the failure queue's messages, read (hidden, not deleted) until none is left. */
export async function eventIdsInQueue(sqs: SQSClient, url: string): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (;;) {
    const page = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 600 }),
    );
    const messages = page.Messages ?? [];
    if (messages.length === 0) return ids;
    for (const message of messages) {
      const record = JSON.parse(message.Body ?? "{}") as { requestPayload?: { awslogs?: { data?: string } } };
      const data = record.requestPayload?.awslogs?.data ?? "";
      const payload = JSON.parse(gunzipSync(Buffer.from(data, "base64")).toString("utf8")) as {
        logEvents: { id: string }[];
      };
      for (const event of payload.logEvents) ids.set(event.id, (ids.get(event.id) ?? 0) + 1);
    }
  }
}
