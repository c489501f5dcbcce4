import { gzipSync } from "node:zlib";

/** Minimal push for tests: one JSON body, answered status and text. */
export async function pushJson(
  url: string,
  tenant: string,
  streams: Array<{
    stream: Record<string, string>;
    values: Array<[string, string] | [string, string, Record<string, string>]>;
  }>,
  options: { gzip?: boolean } = {},
): Promise<{ status: number; body: string }> {
  const json = Buffer.from(JSON.stringify({ streams }));
  const response = await fetch(`${url}/loki/api/v1/push`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-Scope-OrgID": tenant,
      ...(options.gzip ? { "Content-Encoding": "gzip" } : {}),
    },
    body: options.gzip ? gzipSync(json) : json,
  });
  return { status: response.status, body: await response.text() };
}

/** ns timestamp `offsetMs` from now, as Loki's JSON push wants it. */
export function nsAgo(offsetMs: number, extraNs = 0n): string {
  return (BigInt(Date.now() - offsetMs) * 1_000_000n + extraNs).toString();
}
