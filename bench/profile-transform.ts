import { transformPayload, transformPayloadFor } from "./transform.ts";

/**
 * Runs the shipper transform (10,000 events of `lineBytes` bytes, 200 by default, protobuf+snappy)
 * for a few seconds, to be started with `node --cpu-prof`: run.ts summarises the profile's top
 * frames into BENCHMARKS.md. `node --cpu-prof bench/profile-transform.ts [seconds] [lineBytes]`
 */
const seconds = Number(process.argv[2] ?? "4");
const lineBytes = Number(process.argv[3] ?? "200");
const data = transformPayloadFor(10_000, lineBytes);
const ends = performance.now() + seconds * 1000;
while (performance.now() < ends) transformPayload(data, "protobuf");
