/**
 * An AWS SDK client that loads its package and is created on its first `send`. Loading an SDK
 * package is the largest part of a cold start, and some clients serve only some invocations: the
 * live shipper needs S3 only to keep what Loki did not take, Lambda only to label a function's log
 * group, Secrets Manager or SSM only when Loki needs credentials. A failed creation is tried again
 * on the next `send`.
 *
 * Only `send` exists on the returned object: the one method the core calls on such a client.
 */
export function deferredClient<Client extends { send: unknown }>(create: () => Promise<Client>): Client {
  let client: Promise<CommandSender> | undefined;
  const sender: CommandSender = {
    async send(...args) {
      client ??= (create() as Promise<unknown> as Promise<CommandSender>).catch((error: unknown) => {
        client = undefined;
        throw error;
      });
      return (await client).send(...args);
    },
  };
  return sender as unknown as Client;
}

interface CommandSender {
  send(...args: unknown[]): Promise<unknown>;
}
