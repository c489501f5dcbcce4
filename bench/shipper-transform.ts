/**
 * Throughput of the live shipper's CPU work per payload, on its own: decode (base64 + gunzip + JSON +
 * shape check), labels, pre-checks, deterministic timestamps, stream building, batching and push
 * encoding (protobuf + snappy, or JSON + gzip). No network. `npm run bench` runs the same
 * measurement (section 1) with the rest; this runs it alone: `npx node bench/shipper-transform.ts`.
 * Then the cost of drop and mask rules on that work (rules.ts).
 */
import { measureRules, rulesSection } from "./rules.ts";
import { measureTransform, TRANSFORM_FORMATS, type TransformRow, transformTable } from "./transform.ts";

const COUNTS = [1_000, 10_000];
const LINE_BYTES = [100, 200, 1_024, 10_240];

console.log(`node ${process.version}, ${process.arch}; batches of at most 1 MiB (the shipper's default)`);
const rows: TransformRow[] = [];
for (const count of COUNTS)
  for (const lineBytes of LINE_BYTES)
    for (const { name } of TRANSFORM_FORMATS) rows.push(measureTransform(count, lineBytes, name));
console.log(transformTable(rows));
console.log("");
console.log(rulesSection(measureRules()));
