import { fileURLToPath } from "node:url";
import { profileInProcess } from "./cpu-profile.ts";
import { transformPayload, transformPayloadFor } from "./transform.ts";

/**
 * Profiles the shipper transform (10,000 events of `lineBytes` bytes, protobuf+snappy) for a few
 * seconds with the V8 profiler, once the payload is built and the JIT warm (building a payload of
 * 10 KiB lines takes longer than transforming it), and prints the top frames by self time as JSON:
 * run.ts puts them into BENCHMARKS.md. `npx node bench/profile-transform.ts [seconds] [lineBytes]`
 */
const seconds = Number(process.argv[2] ?? "4");
const lineBytes = Number(process.argv[3] ?? "200");
const data = transformPayloadFor(10_000, lineBytes);
for (let warmUp = 0; warmUp < 2; warmUp++) transformPayload(data, "protobuf");
const frames = await profileInProcess(
  async () => {
    const ends = performance.now() + seconds * 1000;
    while (performance.now() < ends) transformPayload(data, "protobuf");
  },
  fileURLToPath(new URL("..", import.meta.url)),
  15,
);
console.log(JSON.stringify(frames));
