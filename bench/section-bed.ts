import { startMotoServer } from "../scripts/moto-server.ts";
import { type AwsBed, awsBed, createBucket } from "./aws-bed.ts";
import { type LokiEndpoint, openLokiEndpoint } from "./loki-endpoint.ts";

/** What a standalone bench section runs against: moto, a bucket in it, and the Loki endpoint. */
export interface SectionBed {
  bed: AwsBed;
  bucket: string;
  endpoint: LokiEndpoint;
  close(): Promise<void>;
}

export async function openSectionBed(runLabel: string): Promise<SectionBed> {
  const moto = await startMotoServer();
  const endpoint = await openLokiEndpoint(process.env);
  const bed = awsBed(moto.endpoint);
  const bucket = `bench-${runLabel}`;
  await createBucket(bed, bucket);
  return {
    bed,
    bucket,
    endpoint,
    close: async () => {
      await endpoint.close();
      await moto.stop();
    },
  };
}
