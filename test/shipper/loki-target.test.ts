import { CreateSecretCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { beforeEach, describe, expect, it } from "vitest";
import { ConfigError } from "../../functions/core/errors.ts";
import { parseRetryAfter } from "../../functions/core/loki/loki-client.ts";
import { authorizationHeader, parseLokiTarget } from "../../functions/core/loki/loki-target.ts";
import { clearSecretCache } from "../../functions/core/loki/secrets.ts";
import { parseShipperConfig } from "../../functions/shipper/ship-subscription.ts";
import { awsClientConfig, uniqueName } from "../helpers/aws.ts";

const secretsManager = new SecretsManagerClient(awsClientConfig());
const ssm = new SSMClient(awsClientConfig());
const clients = { secretsManager: () => secretsManager, ssm: () => ssm };

beforeEach(() => clearSecretCache());

describe("parseLokiTarget", () => {
  it("applies Loki's default limits and the push path", () => {
    const target = parseLokiTarget({ LOKI_URL: "https://loki.example.com", LOKI_TENANT: "team-a" });
    expect(target).toMatchObject({
      pushUrl: "https://loki.example.com/loki/api/v1/push",
      tenant: "team-a",
      format: "protobuf",
      auth: { kind: "none" },
      limits: {
        rejectOldSamplesMaxAgeMs: 168 * 3_600_000,
        creationGracePeriodMs: 600_000,
        maxLineSize: 262_144,
      },
      maxBatchBytes: 1_048_576,
    });
  });

  it("reads Loki-style durations and sizes", () => {
    const target = parseLokiTarget({
      LOKI_URL: "http://127.0.0.1:3100/loki/api/v1/push",
      LOKI_REJECT_OLD_SAMPLES_MAX_AGE: "2d",
      LOKI_CREATION_GRACE_PERIOD: "1h30m",
      LOKI_MAX_LINE_SIZE: "1MB",
    });
    expect(target.limits).toEqual({
      rejectOldSamplesMaxAgeMs: 172_800_000,
      creationGracePeriodMs: 5_400_000,
      maxLineSize: 1_048_576,
    });
  });

  it("names every mistake in one message", () => {
    expect(() =>
      parseLokiTarget({
        LOKI_URL: "loki:3100",
        LOKI_AUTH: "basic",
        LOKI_PUSH_FORMAT: "xml",
        LOKI_BATCH_MAX_BYTES: "5MB",
      }),
    ).toThrow(
      expect.objectContaining({
        name: "ConfigError",
        message: expect.stringMatching(
          /LOKI_URL: expected an http\(s\) URL.*\(got "loki:3100"\)[\s\S]*LOKI_PUSH_FORMAT: expected protobuf or json \(got "xml"\)[\s\S]*LOKI_BATCH_MAX_BYTES: must be between[\s\S]*LOKI_AUTH: basic auth needs/,
        ),
      }),
    );
  });

  it("is part of the shipper's configuration, which also needs the bucket", () => {
    expect(() => parseShipperConfig({ AWS_REGION: "eu-central-1" })).toThrow(
      /BUCKET_NAME: required[\s\S]*LOKI_URL/,
    );
  });
});

describe("authorizationHeader", () => {
  it("reads a bearer token from Secrets Manager", async () => {
    const name = uniqueName("loki-token");
    const created = await secretsManager.send(
      new CreateSecretCommand({ Name: name, SecretString: '{"token":"s3cr3t"}' }),
    );
    const target = parseLokiTarget({
      LOKI_URL: "https://loki.example.com",
      LOKI_AUTH: "bearer",
      LOKI_SECRET_ARN: created.ARN,
    });
    expect(await authorizationHeader(target, clients)).toBe("Bearer s3cr3t");
  });

  it("reads basic credentials from an SSM SecureString", async () => {
    const name = `/${uniqueName("loki")}/password`;
    await ssm.send(new PutParameterCommand({ Name: name, Value: "p@ss", Type: "SecureString" }));
    const target = parseLokiTarget({
      LOKI_URL: "https://loki.example.com",
      LOKI_AUTH: "basic",
      LOKI_USERNAME: "12345",
      LOKI_SECRET_PARAMETER: name,
    });
    expect(await authorizationHeader(target, clients)).toBe(
      `Basic ${Buffer.from("12345:p@ss").toString("base64")}`,
    );
  });

  it("says which secret could not be read, without its value", async () => {
    const target = parseLokiTarget({
      LOKI_URL: "https://loki.example.com",
      LOKI_AUTH: "bearer",
      LOKI_SECRET_ARN: "missing-secret",
    });
    await expect(authorizationHeader(target, clients)).rejects.toThrow(
      new ConfigError(
        "Could not read the Loki credentials from secret missing-secret: ResourceNotFoundException",
      ),
    );
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), () => 4_000)).toBe(6_000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
