/** The structured-metadata name of the Lambda request id found in a line. */
export const REQUEST_ID_METADATA = "request_id";

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/** START / END / REPORT lines of the Lambda runtime. */
const RUNTIME_LINE = new RegExp(`RequestId: (${UUID})`);
/** Node.js and Python runtimes' default text format: "<time>\t<request id>\t<LEVEL>\t<message>". */
const TEXT_FORMAT = new RegExp(`^\\S+\\t(${UUID})\\t`);
/** JSON logs (Powertools, Lambda's JSON log format). */
const JSON_KEY = new RegExp(
  `"(?:requestId|request_id|awsRequestId|aws_request_id|function_request_id)"\\s*:\\s*"(${UUID})"`,
);
const TAB = 9;
const HYPHEN = 45;

/** Runtimes and loggers put the request id near the start of a line; scanning more costs CPU for nothing. */
const REQUEST_ID_SCAN_CHARS = 1024;

/**
 * The Lambda request id a log line carries, if any. Each pattern runs only when a cheap test of
 * what it cannot match without passes (a substring, tabs at the known places): running the three
 * regular expressions on every line was a tenth of the shipper's CPU. The patterns are tried in
 * the same order as before, so the same line gives the same id.
 */
export function lambdaRequestId(line: string): string | undefined {
  const head = line.length > REQUEST_ID_SCAN_CHARS ? line.slice(0, REQUEST_ID_SCAN_CHARS) : line;
  if (head.includes("RequestId: ")) {
    const match = RUNTIME_LINE.exec(head);
    if (match) return match[1];
  }
  // "<non-space>\t<36-character id>\t": the first tab, a hyphen 9 characters after it, a tab 37.
  const tab = head.indexOf("\t");
  if (tab > 0 && head.charCodeAt(tab + 37) === TAB && head.charCodeAt(tab + 9) === HYPHEN) {
    const match = TEXT_FORMAT.exec(head);
    if (match) return match[1];
  }
  if (head.includes("equest")) {
    const match = JSON_KEY.exec(head);
    if (match) return match[1];
  }
  return undefined;
}
