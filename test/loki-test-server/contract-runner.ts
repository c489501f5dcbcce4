import { deflateRawSync, gzipSync } from "node:zlib";
import protobuf from "protobufjs/minimal.js";
import snappy from "snappyjs";

/**
 * Replays the captured Loki contract cases (test/data/loki-contract/cases.json, format in its
 * README) against a server and reports every difference.
 */

export interface ContractStep {
  id?: string;
  sleep_ms?: number;
  request: {
    method?: string;
    path: string;
    query?: Record<string, string>;
    headers?: Record<string, string>;
    json?: unknown;
    text?: string;
    b64?: string;
    proto?: ProtoBody;
    encode?: "gzip" | "deflate";
  };
  repeat?: { max_attempts: number; until_status: number; interim_status?: number };
  expect?: {
    status?: number;
    headers?: Record<string, string>;
    headers_absent?: string[];
    body?: string;
    body_regex?: string;
    body_parts_any_order?: { separator: string; parts: string[]; suffix?: string };
    json?: unknown;
    streams?: unknown;
    /** `/loki/api/v1/series` data: the label sets, in any order, their labels in any order. */
    series?: unknown[];
    vector?: unknown[];
    matrix?: unknown[];
    /** With vector / matrix: the order of the series is compared too (sort, sort_desc). */
    ordered?: boolean;
  };
}

export interface ContractCase {
  name: string;
  tenant?: string;
  needs?: string[];
  /** The case's now is rounded down to a multiple of this duration (metric cases: step grid). */
  now_align?: string;
  steps: ContractStep[];
}

interface ProtoBody {
  compression: "snappy" | "snappy-literal" | "none";
  streams: Array<{
    labels: string;
    entries: Array<{ ts: string; line: string; sm?: Array<[string, string]> }>;
  }>;
  captured?: { now_ns: string; run: string; tenant: string; protobuf_b64: string; snappy_b64?: string };
}

interface Context {
  run: string;
  tenant: string;
  now: bigint;
  i?: number;
}

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
  d: 86_400_000_000_000n,
};

function offsetNs(expression: string): bigint {
  if (!expression.startsWith("now")) throw new Error(`bad time expression ${expression}`);
  let total = 0n;
  const rest = expression.slice(3);
  const consumed = rest.replace(
    /([+-])(\d+)(ns|us|ms|s|m|h|d)/g,
    (_, sign: string, amount: string, unit: string) => {
      const value = BigInt(amount) * (UNIT_NS[unit] as bigint);
      total += sign === "-" ? -value : value;
      return "";
    },
  );
  if (consumed !== "") throw new Error(`bad time expression ${expression}`);
  return total;
}

function durationNs(text: string): bigint {
  return offsetNs(`now+${text}`);
}

function two(n: number): string {
  return String(n).padStart(2, "0");
}

/** Unix seconds of the ns value truncated to the ms, trailing zeros trimmed (Loki's sample times). */
function formatSeconds(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const fraction = ms % 1000n;
  const fractionText = fraction === 0n ? "" : `.${fraction.toString().padStart(3, "0").replace(/0+$/, "")}`;
  return `${ms / 1000n}${fractionText}`;
}

function formatTimestamp(ns: bigint, format: string): string {
  if (format === "ns") return ns.toString();
  if (format === "s") return formatSeconds(ns);
  const seconds = ns / 1_000_000_000n;
  const fraction = ns % 1_000_000_000n;
  const date = new Date(Number(seconds) * 1000);
  const day = `${date.getUTCFullYear()}-${two(date.getUTCMonth() + 1)}-${two(date.getUTCDate())}`;
  const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`;
  const fractionText = fraction === 0n ? "" : `.${fraction.toString().padStart(9, "0").replace(/0+$/, "")}`;
  if (format === "go") return `${day} ${time}${fractionText} +0000 UTC`;
  if (format === "rfc3339") return `${day}T${time}Z`;
  if (format === "rfc3339nano") return `${day}T${time}${fractionText}Z`;
  throw new Error(`unknown timestamp format ${format}`);
}

const FORMAT_PATTERN: Record<string, string> = {
  ns: "\\d{1,20}",
  s: "\\d{1,12}(?:\\.\\d{1,3})?",
  go: "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d(?:\\.\\d{1,9})? \\+0000 UTC",
  rfc3339: "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ",
  rfc3339nano: "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(?:\\.\\d{1,9})?Z",
};

function parseTimestamp(text: string, format: string): bigint {
  if (format === "ns") return BigInt(text);
  if (format === "s") {
    const [whole = "0", fraction = ""] = text.split(".");
    return BigInt(whole) * 1_000_000_000n + BigInt(fraction.padEnd(3, "0")) * 1_000_000n;
  }
  const match = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?/.exec(text);
  if (!match) throw new Error(`cannot parse ${text} as ${format}`);
  const [, y, mo, d, h, mi, s, f] = match;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  return BigInt(ms) * 1_000_000n + BigInt((f ?? "").padEnd(9, "0") || "0");
}

const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;

function placeholderValue(body: string, context: Context): string {
  if (body === "run") return context.run;
  if (body === "tenant") return context.tenant;
  if (body === "i") {
    if (context.i === undefined) throw new Error("{{i}} outside a generator");
    return String(context.i);
  }
  if (body.startsWith("ts:")) {
    const [expression = "", format = "ns"] = body.slice(3).split("|");
    return formatTimestamp(context.now + offsetNs(expression), format);
  }
  if (body.startsWith("repeat:")) {
    const separator = body.lastIndexOf(":");
    return body.slice(7, separator).repeat(Number(body.slice(separator + 1)));
  }
  throw new Error(`unknown placeholder {{${body}}}`);
}

export function resolve(text: string, context: Context): string {
  return text.replace(PLACEHOLDER, (_, body: string) => placeholderValue(body, context));
}

interface GenValues {
  count: number;
  ts: string;
  step?: string;
  line: string;
}

interface GenStreams {
  count: number;
  first?: number;
  stream: unknown;
  values: unknown;
}

function isGenStreams(value: unknown): value is { $gen_streams: GenStreams } {
  return typeof value === "object" && value !== null && !Array.isArray(value) && "$gen_streams" in value;
}

/** `$gen_values`: `count` [ts, line] pairs, ts = EXPR + i*step. */
function generateValues(generator: GenValues, context: Context): Array<[string, string]> {
  const base = context.now + offsetNs(generator.ts);
  const step = durationNs(generator.step ?? "1ns");
  return Array.from({ length: generator.count }, (_, i) => [
    (base + BigInt(i) * step).toString(),
    resolve(generator.line, { ...context, i }),
  ]);
}

/** `$gen_streams`: `count` push streams, stream and values resolved with {{i}} = first, first+1, ... */
function generateStreams(generator: GenStreams, context: Context): unknown[] {
  const first = generator.first ?? 0;
  return Array.from({ length: generator.count }, (_, k) => {
    const streamContext = { ...context, i: first + k };
    return {
      stream: resolveValue(generator.stream, streamContext),
      values: resolveValue(generator.values, streamContext),
    };
  });
}

/**
 * Resolves placeholders in every string of a JSON value and expands the generators; a
 * `$gen_streams` element of an array is spliced into that array.
 */
function resolveValue(value: unknown, context: Context): unknown {
  if (typeof value === "string") return resolve(value, context);
  if (Array.isArray(value)) {
    return value.flatMap((item) =>
      isGenStreams(item) ? generateStreams(item.$gen_streams, context) : [resolveValue(item, context)],
    );
  }
  if (value && typeof value === "object") {
    if (isGenStreams(value)) return generateStreams(value.$gen_streams, context);
    const generator = (value as { $gen_values?: GenValues }).$gen_values;
    if (generator) return generateValues(generator, context);
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [resolve(key, context), resolveValue(item, context)]),
    );
  }
  return value;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A template matcher: literal text (or a regex) with placeholders, `approx` ones within a tolerance. */
function templateMatcher(
  template: string,
  context: Context,
  mode: "exact" | "regex",
): (actual: string) => boolean {
  const approximations: Array<{ expression: string; format: string; tolerance: bigint }> = [];
  let pattern = "";
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    const literal = template.slice(last, match.index);
    pattern += mode === "regex" ? literal : escapeRegex(literal);
    const body = match[1] as string;
    if (body.startsWith("approx:")) {
      const [expression = "", format = "ns", tolerance = "60s"] = body.slice(7).split("|");
      approximations.push({ expression, format, tolerance: durationNs(tolerance) });
      pattern += `(${FORMAT_PATTERN[format]})`;
    } else {
      pattern += escapeRegex(placeholderValue(body, context));
    }
    last = (match.index as number) + match[0].length;
  }
  const tail = template.slice(last);
  pattern += mode === "regex" ? tail : escapeRegex(tail);
  const regex = new RegExp(`^(?:${pattern})$`, "s");
  return (actual) => {
    const found = regex.exec(actual);
    if (!found) return false;
    return approximations.every((approx, k) => {
      const got = parseTimestamp(found[k + 1] as string, approx.format);
      const want = context.now + offsetNs(approx.expression);
      return (got > want ? got - want : want - got) <= approx.tolerance;
    });
  };
}

/** logproto.PushRequest as Go's gogo-protobuf marshals it (field order, empty fields omitted). */
export function encodePushRequest(body: ProtoBody, context: Context): Uint8Array {
  const writer = protobuf.Writer.create();
  for (const stream of body.streams) {
    writer.uint32((1 << 3) | 2).fork();
    const labels = resolve(stream.labels, context);
    if (labels !== "") writer.uint32((1 << 3) | 2).string(labels);
    for (const entry of stream.entries) {
      const ns = context.now + offsetNs(entry.ts);
      const seconds = ns / 1_000_000_000n;
      const nanos = Number(ns % 1_000_000_000n);
      writer.uint32((2 << 3) | 2).fork();
      writer.uint32((1 << 3) | 2).fork();
      if (seconds !== 0n) writer.uint32(1 << 3).int64(seconds.toString());
      if (nanos !== 0) writer.uint32(2 << 3).int32(nanos);
      writer.ldelim();
      const line = resolve(entry.line, context);
      if (line !== "") writer.uint32((2 << 3) | 2).string(line);
      for (const [name, value] of entry.sm ?? []) {
        writer.uint32((3 << 3) | 2).fork();
        if (name !== "") writer.uint32((1 << 3) | 2).string(resolve(name, context));
        if (value !== "") writer.uint32((2 << 3) | 2).string(resolve(value, context));
        writer.ldelim();
      }
      writer.ldelim();
    }
    writer.ldelim();
  }
  return writer.finish();
}

/** Checks our protobuf encoder against the bytes Loki's Go code produced when the case was captured. */
function checkCapturedProto(body: ProtoBody): string | undefined {
  const captured = body.captured;
  if (!captured) return undefined;
  const context = { now: BigInt(captured.now_ns), run: captured.run, tenant: captured.tenant };
  const expected = Buffer.from(captured.protobuf_b64, "base64");
  if (!Buffer.from(encodePushRequest(body, context)).equals(expected)) {
    return "protobuf encoder output differs from the bytes captured from Loki's Go encoder";
  }
  if (
    captured.snappy_b64 &&
    !snappy.uncompress(Buffer.from(captured.snappy_b64, "base64")).equals(expected)
  ) {
    return "captured snappy body does not decode to the captured protobuf bytes";
  }
  return undefined;
}

/** Snappy block format made of literals only: valid snappy that a decoder must read without copies. */
export function snappyLiteral(raw: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from(protobuf.Writer.create().uint32(raw.length).finish())];
  for (let offset = 0; offset < raw.length; offset += 65536) {
    const chunk = raw.subarray(offset, Math.min(offset + 65536, raw.length));
    const n = chunk.length - 1;
    if (n < 60) parts.push(Buffer.from([n << 2]));
    else if (n < 256) parts.push(Buffer.from([60 << 2, n]));
    else parts.push(Buffer.from([61 << 2, n & 0xff, n >> 8]));
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

function buildRequest(step: ContractStep, context: Context, baseUrl: string) {
  const request = step.request;
  const url = new URL(resolve(request.path, context), baseUrl);
  for (const [key, value] of Object.entries(request.query ?? {})) {
    url.searchParams.append(key, resolve(String(value), context));
  }
  const headers = Object.fromEntries(
    Object.entries(request.headers ?? {}).map(([key, value]) => [key, resolve(value, context)]),
  );
  let body: Buffer | undefined;
  if (request.json !== undefined) body = Buffer.from(JSON.stringify(resolveValue(request.json, context)));
  else if (request.text !== undefined) body = Buffer.from(resolve(request.text, context));
  else if (request.b64 !== undefined) body = Buffer.from(request.b64, "base64");
  else if (request.proto !== undefined) {
    const raw = Buffer.from(encodePushRequest(request.proto, context));
    if (request.proto.compression === "none") body = raw;
    else if (request.proto.compression === "snappy-literal") body = snappyLiteral(raw);
    else body = snappy.compress(raw);
  }
  if (body && request.encode === "gzip") body = gzipSync(body);
  if (body && request.encode === "deflate") body = deflateRawSync(body);
  return { url, method: request.method ?? "GET", headers, body };
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

function sortedKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, value[key]]),
  );
}

function normalizeStreams(result: unknown): string[] {
  return (result as Array<{ stream?: Record<string, unknown>; values?: unknown }>)
    .map((s) => JSON.stringify({ stream: sortedKeys(s.stream ?? {}), values: s.values }))
    .sort();
}

type Expectation = NonNullable<ContractStep["expect"]>;

function checkHeaders(expected: Expectation, answer: Answer): string[] {
  const problems: string[] = [];
  if (expected.status !== undefined && answer.status !== expected.status) {
    problems.push(`status: expected ${expected.status}, got ${answer.status}`);
  }
  for (const [name, value] of Object.entries(expected.headers ?? {})) {
    const got = answer.headers.get(name);
    if (got !== value)
      problems.push(`header ${name}: expected ${JSON.stringify(value)}, got ${JSON.stringify(got)}`);
  }
  for (const name of expected.headers_absent ?? []) {
    if (answer.headers.has(name)) problems.push(`header ${name}: expected absent`);
  }
  return problems;
}

function bodyPartsMatch(
  expected: NonNullable<Expectation["body_parts_any_order"]>,
  text: string,
  context: Context,
): boolean {
  const { separator, parts, suffix = "" } = expected;
  if (!text.endsWith(suffix)) return false;
  const got = text.slice(0, text.length - suffix.length).split(separator);
  const matchers = parts.map((part) => templateMatcher(part, context, "exact"));
  const unused = new Set(matchers.keys());
  return (
    got.length === parts.length &&
    got.every((piece) => {
      const index = [...unused].find((k) => (matchers[k] as (s: string) => boolean)(piece));
      if (index === undefined) return false;
      unused.delete(index);
      return true;
    })
  );
}

function checkTextBody(expected: Expectation, text: string, context: Context): string[] {
  const problems: string[] = [];
  if (expected.body !== undefined && !templateMatcher(expected.body, context, "exact")(text)) {
    problems.push(
      `body: expected ${JSON.stringify(resolveForDisplay(expected.body, context))}, got ${JSON.stringify(text)}`,
    );
  }
  if (expected.body_regex !== undefined && !templateMatcher(expected.body_regex, context, "regex")(text)) {
    problems.push(`body does not match /${expected.body_regex}/: ${JSON.stringify(text)}`);
  }
  if (
    expected.body_parts_any_order !== undefined &&
    !bodyPartsMatch(expected.body_parts_any_order, text, context)
  ) {
    problems.push(`body parts (any order) do not match: ${JSON.stringify(text)}`);
  }
  return problems;
}

interface QueryAnswer {
  status?: string;
  data?: { resultType?: string; result?: unknown };
}

/** Label sets as comparable text, sorted (Loki prints a set's labels in Go map order). */
function normalizeLabelSets(sets: unknown[]): string[] {
  return sets.map((set) => JSON.stringify(sortedKeys((set ?? {}) as Record<string, unknown>))).sort();
}

function checkSeries(expected: unknown[], parsed: QueryAnswer, text: string, context: Context): string[] {
  const data: unknown = parsed.data;
  if (parsed.status !== "success" || !Array.isArray(data)) {
    return [`expected a successful series answer, got ${text.slice(0, 300)}`];
  }
  const want = normalizeLabelSets(resolveValue(expected, context) as unknown[]);
  const got = normalizeLabelSets(data);
  if (JSON.stringify(want) === JSON.stringify(got)) return [];
  return [
    `series differ\n  expected: ${want.join("\n            ")}\n  got:      ${got.join("\n            ")}`,
  ];
}

function checkJsonBody(expected: Expectation, text: string, context: Context): string[] {
  let parsed: QueryAnswer;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [`body is not JSON: ${JSON.stringify(text.slice(0, 300))}`];
  }
  if (expected.json !== undefined) {
    const want = JSON.stringify(resolveValue(expected.json, context));
    if (JSON.stringify(parsed) !== want) return [`json: expected ${want}, got ${text}`];
  }
  if (expected.series !== undefined) return checkSeries(expected.series, parsed, text, context);
  if (expected.streams === undefined) return [];
  if (parsed.status !== "success" || parsed.data?.resultType !== "streams") {
    return [`expected a successful streams result, got ${text.slice(0, 300)}`];
  }
  const want = normalizeStreams(resolveValue(expected.streams, context));
  const got = normalizeStreams(parsed.data.result ?? []);
  if (JSON.stringify(want) === JSON.stringify(got)) return [];
  return [
    `streams differ\n  expected: ${want.join("\n            ")}\n  got:      ${got.join("\n            ")}`,
  ];
}

/**
 * Metric results: a sample's timestamp is Loki's JSON number taken literally from the body, so the
 * body is parsed with every `[<number>, "` turned into `["\u0001<number>", "` (outside strings a
 * `"` is never escaped, so only sample pairs match).
 */
const NUMBER_MARK = "\u0001";

function parseKeepingSampleTimes(text: string): QueryAnswer {
  return JSON.parse(
    text.replace(/\[(\s*)(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(\s*),(\s*)"/g, '[$1"\\u0001$2"$3,$4"'),
  );
}

/** A sample as text, `[1795826400.25,"4"]`; a timestamp sent as a JSON string stays quoted. */
function sampleText(sample: unknown): string {
  if (!Array.isArray(sample) || sample.length !== 2) return JSON.stringify(sample);
  const [time, value] = sample as [unknown, unknown];
  const timeText =
    typeof time === "string" && time.startsWith(NUMBER_MARK) ? time.slice(1) : JSON.stringify(time);
  return `[${timeText},${JSON.stringify(value)}]`;
}

/** Expected samples are written `["{{ts:now|s}}", "4"]`: the first element is the number's text. */
function expectedSampleText(sample: unknown): string {
  const [time, value] = sample as [string, string];
  return `[${time},${JSON.stringify(value)}]`;
}

interface MetricSeries {
  metric?: Record<string, unknown>;
  value?: unknown;
  values?: unknown;
}

function normalizeSeries(result: unknown[], kind: "vector" | "matrix", expected: boolean, ordered: boolean) {
  const toText = expected ? expectedSampleText : sampleText;
  const series = (result as MetricSeries[]).map((s) =>
    JSON.stringify(
      kind === "vector"
        ? { metric: sortedKeys(s?.metric ?? {}), value: toText(s?.value) }
        : {
            metric: sortedKeys(s?.metric ?? {}),
            values: Array.isArray(s?.values) ? s.values.map(toText) : s?.values,
          },
    ),
  );
  return ordered ? series : series.sort();
}

function checkMetricBody(expected: Expectation, text: string, context: Context): string[] {
  const kind = expected.vector !== undefined ? "vector" : "matrix";
  const template = expected.vector ?? expected.matrix;
  if (template === undefined) return [];
  let parsed: QueryAnswer;
  try {
    parsed = parseKeepingSampleTimes(text);
  } catch {
    return [`body is not JSON: ${JSON.stringify(text.slice(0, 300))}`];
  }
  if (parsed.status !== "success" || parsed.data?.resultType !== kind || !Array.isArray(parsed.data.result)) {
    return [`expected a successful ${kind} result, got ${text.slice(0, 300)}`];
  }
  const ordered = expected.ordered === true;
  const want = normalizeSeries(resolveValue(template, context) as unknown[], kind, true, ordered);
  const got = normalizeSeries(parsed.data.result, kind, false, ordered);
  if (JSON.stringify(want) === JSON.stringify(got)) return [];
  const order = ordered ? "series order significant" : "series order ignored";
  return [
    `${kind} differs (${order})\n  expected: ${want.join("\n            ")}\n  got:      ${got.join("\n            ")}`,
  ];
}

function checkAnswer(expected: Expectation, answer: Answer, context: Context): string[] {
  const problems = [...checkHeaders(expected, answer), ...checkTextBody(expected, answer.text, context)];
  if (expected.json !== undefined || expected.streams !== undefined || expected.series !== undefined) {
    problems.push(...checkJsonBody(expected, answer.text, context));
  }
  problems.push(...checkMetricBody(expected, answer.text, context));
  return problems;
}

function resolveForDisplay(template: string, context: Context): string {
  return template.replace(PLACEHOLDER, (all, body: string) =>
    body.startsWith("approx:") ? all : placeholderValue(body, context),
  );
}

/** Sends a request; a connection failure is an answer with status 0 (reported, not thrown). */
async function send(request: ReturnType<typeof buildRequest>): Promise<Answer> {
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      ...(request.body ? { body: request.body } : {}),
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  } catch (error) {
    return { status: 0, headers: new Headers(), text: String(error) };
  }
}

/**
 * Runs one case with its own "now" (wall clock plus 654321 ns, so that ±1ns offsets never cross a
 * second) and returns the problems found, empty when the server behaves like the captured Loki.
 */
export async function runContractCase(
  contractCase: ContractCase,
  baseUrl: string,
  run: string,
): Promise<string[]> {
  let now = BigInt(Date.now()) * 1_000_000n + 654_321n;
  if (contractCase.now_align) now -= now % durationNs(contractCase.now_align);
  const partial = { run, now, tenant: "" };
  const context: Context = {
    ...partial,
    tenant: contractCase.tenant ? resolve(contractCase.tenant, partial) : "",
  };
  const problems: string[] = [];
  for (const [index, step] of contractCase.steps.entries()) {
    const label = `step ${index + 1} (${step.id ?? step.request.path})`;
    if (step.sleep_ms) await new Promise((r) => setTimeout(r, step.sleep_ms));
    const protoProblem = step.request.proto ? checkCapturedProto(step.request.proto) : undefined;
    if (protoProblem) problems.push(`${label}: ${protoProblem}`);
    const repeat = step.repeat;
    let answer: Answer;
    let attempts = 0;
    for (;;) {
      const request = buildRequest(step, repeat ? { ...context, i: attempts } : context, baseUrl);
      attempts++;
      answer = await send(request);
      if (!repeat || answer.status === repeat.until_status || attempts >= repeat.max_attempts) break;
      if (repeat.interim_status !== undefined && answer.status !== repeat.interim_status) break;
    }
    if (repeat && answer.status !== repeat.until_status) {
      problems.push(`${label}: status ${repeat.until_status} not seen in ${attempts} attempts`);
    }
    for (const problem of step.expect ? checkAnswer(step.expect, answer, context) : []) {
      problems.push(`${label}: ${problem}`);
    }
  }
  return problems;
}
