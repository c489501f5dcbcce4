import { transformPayload, transformPayloadFor } from "./transform.ts";

/**
 * Runs the shipper transform (10,000 events of 200 bytes, protobuf+snappy) for a few seconds, to be
 * started with `node --cpu-prof`: run.ts summarises the profile's top frames into BENCHMARKS.md.
 */
const seconds = Number(process.argv[2] ?? "4");
const data = transformPayloadFor(10_000, 200);
const ends = performance.now() + seconds * 1000;
while (performance.now() < ends) transformPayload(data, "protobuf");
