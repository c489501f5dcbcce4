import { Duration, RemovalPolicy } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Key } from "aws-cdk-lib/aws-kms";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { describe, expect, it } from "vitest";
import { ShipperBucket } from "../../infra/constructs/shipper-bucket.ts";
import { logicalIdOf, testStack, unacknowledgedNagFindings } from "./cdk-helpers.ts";

describe("ShipperBucket", () => {
  it("is encrypted, private, versioned, TLS-only and retained by default", () => {
    // Given the bucket with defaults
    const stack = testStack();
    const { bucket } = new ShipperBucket(stack, "Storage");

    // When synthesised
    const template = Template.fromStack(stack);

    // Then
    template.hasResource("AWS::S3::Bucket", {
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: Match.objectLike({
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        VersioningConfiguration: { Status: "Enabled" },
        OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
      }),
    });
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      Bucket: { Ref: logicalIdOf(bucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
          Match.objectLike({ Effect: "Deny", Condition: { NumericLessThan: { "s3:TlsVersion": 1.2 } } }),
        ]),
      },
    });
  });

  it("expires runs/ and archive/ but never spill/, rejected/ or malformed/", () => {
    // Given the bucket with a shorter run expiration
    const stack = testStack();
    new ShipperBucket(stack, "Storage", { runsExpiration: Duration.days(7) });

    // When synthesised
    const rules = Template.fromStack(stack).findResources("AWS::S3::Bucket");
    const lifecycle = Object.values(rules)[0]?.Properties.LifecycleConfiguration.Rules as {
      Prefix?: string;
      ExpirationInDays?: number;
      NoncurrentVersionExpiration?: { NoncurrentDays: number };
      Status: string;
    }[];

    // Then runs/ and archive/ expire, current objects elsewhere never do
    expect(lifecycle).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Prefix: "runs/", ExpirationInDays: 7, Status: "Enabled" }),
        expect.objectContaining({ Prefix: "archive/", ExpirationInDays: 90, Status: "Enabled" }),
        expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: "Enabled" }),
      ]),
    );
    const expiringCurrent = lifecycle.filter((rule) => rule.ExpirationInDays !== undefined);
    expect(expiringCurrent.map((rule) => rule.Prefix).sort()).toEqual(["archive/", "runs/"]);
  });

  it("uses a KMS key with a bucket key when given one", () => {
    const stack = testStack();
    const key = new Key(stack, "Key", { enableKeyRotation: true });
    new ShipperBucket(stack, "Storage", { encryptionKey: key, removalPolicy: RemovalPolicy.DESTROY });
    Template.fromStack(stack).hasResourceProperties("AWS::S3::Bucket", {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: "aws:kms",
              KMSMasterKeyID: { "Fn::GetAtt": [logicalIdOf(key), "Arn"] },
            },
          },
        ],
      },
    });
  });

  it("acknowledges missing access logs with a reason, and logs to the given bucket otherwise", () => {
    // Given one bucket without and one with server access logs
    const stack = testStack();
    new ShipperBucket(stack, "Storage");
    const nagWithoutLogs = unacknowledgedNagFindings(stack);

    const other = testStack(undefined, "Other");
    const logsBucket = Bucket.fromBucketName(other, "AccessLogs", "access-logs-bucket");
    new ShipperBucket(other, "Storage", { serverAccessLogsBucket: logsBucket });

    // Then cdk-nag has nothing unexplained, and the second bucket logs access
    expect(nagWithoutLogs).toEqual([]);
    expect(unacknowledgedNagFindings(other)).toEqual([]);
    Template.fromStack(other).hasResourceProperties("AWS::S3::Bucket", {
      LoggingConfiguration: { DestinationBucketName: "access-logs-bucket", LogFilePrefix: "loki-shipper/" },
    });
  });
});
