import { Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import type { IKey } from "aws-cdk-lib/aws-kms";
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  type IBucket,
  ObjectOwnership,
} from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";

export interface ShipperBucketProps {
  /**
   * KMS key for the objects. Without one, S3-managed keys (SSE-S3) encrypt them: no key policy to
   * keep in step with the functions, and no KMS request cost per chunk.
   * @default - SSE-S3
   */
  readonly encryptionKey?: IKey;
  /**
   * Bucket that receives the S3 server access logs of this bucket.
   * @default - no server access logs (acknowledged for cdk-nag with the reason)
   */
  readonly serverAccessLogsBucket?: IBucket;
  /**
   * Days before backfill/replay run state under `runs/` expires.
   * @default 30
   */
  readonly runsExpiration?: Duration;
  /**
   * Days before objects under `archive/` expire.
   * @default 90
   */
  readonly archiveExpiration?: Duration;
  /**
   * Days before an overwritten or deleted version (e.g. a drained spill chunk) is removed for good.
   * @default 30
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * What happens to the bucket when the stack is deleted. Undelivered events live here.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The one bucket of the pipeline: `spill/` (undelivered, waiting for replay), `rejected/` (refused
 * by Loki, with the reason), `malformed/`, `runs/` (backfill and replay state) and `archive/`.
 * Encrypted, private, TLS only, versioned. `spill/`, `rejected/` and `malformed/` have no
 * expiration: they are the record that nothing was lost silently, and only the operator deletes them.
 */
export class ShipperBucket extends Construct {
  readonly bucket: Bucket;

  constructor(scope: Construct, id: string, props: ShipperBucketProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.bucket = new Bucket(this, "Bucket", {
      ...(props.encryptionKey
        ? { encryption: BucketEncryption.KMS, encryptionKey: props.encryptionKey, bucketKeyEnabled: true }
        : { encryption: BucketEncryption.S3_MANAGED }),
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      removalPolicy,
      autoDeleteObjects: false,
      ...(props.serverAccessLogsBucket
        ? { serverAccessLogsBucket: props.serverAccessLogsBucket, serverAccessLogsPrefix: "loki-shipper/" }
        : {}),
      lifecycleRules: [
        { id: "expire-runs", prefix: "runs/", expiration: props.runsExpiration ?? Duration.days(30) },
        {
          id: "expire-archive",
          prefix: "archive/",
          expiration: props.archiveExpiration ?? Duration.days(90),
        },
        {
          id: "expire-noncurrent-versions",
          noncurrentVersionExpiration: props.noncurrentVersionExpiration ?? Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
          expiredObjectDeleteMarker: true,
        },
      ],
    });
    if (!props.serverAccessLogsBucket) {
      Validations.of(this.bucket).acknowledge({
        id: "AwsSolutions-S1",
        reason:
          "Only the pipeline's own functions read and write this private bucket, and their access is in CloudTrail; pass serverAccessLogsBucket to turn S3 server access logs on.",
      });
    }
  }
}
