import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { buildApp } from "../../infra/app.ts";
import { InfraConfigError, loadConfig } from "../../infra/config.ts";
import { unacknowledgedNagFindings } from "./cdk-helpers.ts";

const context = (values: Record<string, unknown>) => (key: string) => values[key];

describe("loadConfig", () => {
  it("reads context, lets environment variables win, and fills defaults", () => {
    // Given cdk.json-like context and one environment override
    const config = loadConfig(
      context({
        region: "eu-central-1",
        lokiUrl: "https://loki.example.com",
        subscribeTagSelectors: ['system_under_test="demo"'],
      }),
      { LOKI_URL: "https://logs.example.net", SUBSCRIBE_PREFIXES: "/aws/lambda/fun-, /aws/lambda/app-" },
    );

    // Then
    expect(config).toMatchObject({
      region: "eu-central-1",
      lokiUrl: "https://logs.example.net",
      subscribePrefixes: ["/aws/lambda/fun-", "/aws/lambda/app-"],
      subscribeTagSelectors: ['system_under_test="demo"'],
      subscribeNewLogGroups: true,
      spillDrainMinutes: 5,
      logRetentionDays: 30,
      lokiPushFormat: "protobuf",
      deployDemo: true,
      stackPrefix: "LokiShipper",
      functionLabels: true,
    });
    expect(
      loadConfig(
        context({ region: "eu-central-1", lokiUrl: "https://l.example.com", functionLabels: "false" }),
        {},
      ).functionLabels,
    ).toBe(false);
    expect(
      loadConfig(
        context({
          region: "eu-central-1",
          lokiUrl: "https://l.example.com",
          tenantTag: "loki_tenant",
          allowedTenants: "team-a,/^shared-[a-z]{2,8}$/",
        }),
        {},
      ),
    ).toMatchObject({ tenantTag: "loki_tenant", allowedTenants: ["team-a,/^shared-[a-z]{2,8}$/"] });
    expect(
      loadConfig(context({ region: "eu-central-1", lokiUrl: "https://l.example.com" }), {
        LABEL_TENANT_TAG: "loki_tenant",
        LOKI_TENANTS_ALLOWED: "team-a,team-b",
      }),
    ).toMatchObject({ tenantTag: "loki_tenant", allowedTenants: ["team-a,team-b"] });
  });

  it("reports every mistake at once, naming the key, the variable and the value received", () => {
    // Given three bad values
    const load = () =>
      loadConfig(context({ region: "Frankfurt", lokiUrl: "ftp://loki", logRetentionDays: 10 }), {});

    // When / Then one error lists all three
    expect(load).toThrow(InfraConfigError);
    expect(load).toThrow(
      [
        "Invalid loki-shipper configuration:",
        '  region (context) / LOKI_SHIPPER_REGION (environment): expected an AWS region such as eu-central-1. Received: "Frankfurt"',
        '  lokiUrl (context) / LOKI_URL (environment): expected an http(s) URL such as https://loki.example.com. Received: "ftp://loki"',
        "  logRetentionDays (context) / LOG_RETENTION_DAYS (environment): must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653. Received: 10",
      ].join("\n"),
    );
  });

  it("says when the Loki URL is missing", () => {
    expect(() => loadConfig(context({ region: "eu-central-1" }), {})).toThrow(
      "lokiUrl (context) / LOKI_URL (environment): expected an http(s) URL such as https://loki.example.com. Received: nothing",
    );
  });
});

describe("the project's app", () => {
  it("builds the pipeline and the demo offline, with no unexplained cdk-nag finding", () => {
    // Given the app with the checked-in context and no AWS account
    const app = new App({
      context: {
        "aws:cdk:bundling-stacks": [],
        region: "eu-central-1",
        lokiUrl: "https://loki.example.com",
        subscribeTagSelectors: ['system_under_test="loki-shipper-demo"'],
      },
    });

    // When built
    const { pipeline, demo } = buildApp(app, {});

    // Then both stacks exist in eu-central-1, the demo subscribes through the pipeline's registrar
    expect(pipeline.stackName).toBe("LokiShipper-Pipeline");
    expect(demo?.stackName).toBe("LokiShipper-Demo");
    expect(pipeline.region).toBe("eu-central-1");
    Template.fromStack(pipeline).hasResourceProperties("Custom::LokiShipperRegistration", {
      Selections: JSON.stringify([{ tagSelector: 'system_under_test="loki-shipper-demo"' }]),
    });
    Template.fromStack(pipeline).hasOutput("BackfillStateMachineArn", {});
    Template.fromStack(demo as never).resourceCountIs("Custom::LokiShipperRegistration", 2);
    expect(unacknowledgedNagFindings(app)).toEqual([]);
  });

  it("leaves the demo out when asked", () => {
    const app = new App({
      context: { "aws:cdk:bundling-stacks": [], region: "eu-central-1", lokiUrl: "https://loki.example.com" },
    });
    const { demo } = buildApp(app, { DEPLOY_DEMO: "false" });
    expect(demo).toBeUndefined();
    expect(app.node.children.map((child) => child.node.id)).toEqual(["LokiShipper-Pipeline"]);
  });
});
