import { describe, expect, it } from "vitest";
import { ConfigError } from "../../functions/core/errors.ts";
import {
  defaultLabelOptions,
  explainLabels,
  parseLabelOptions,
  resolveGroupLabels,
  sanitizeLabelName,
} from "../../functions/core/labels/labels.ts";

const context = { accountId: "123456789012", region: "eu-central-1" };

describe("sanitizeLabelName", () => {
  it.each([
    ["team-name", "team_name"],
    ["aws:cloudformation:stack-name", "aws_cloudformation_stack_name"],
    ["1st", "_1st"],
    ["app.kubernetes.io/name", "app_kubernetes_io_name"],
    ["Runtime", "Runtime"],
  ])("%s -> %s", (key, label) => {
    expect(sanitizeLabelName(key)).toBe(label);
    expect(label).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
  });
});

describe("resolveGroupLabels", () => {
  it("adds fixed labels and the allowed tags, denying aws:* by default", () => {
    const { labels, dropped } = resolveGroupLabels(
      "/aws/lambda/fun-orders",
      { runtime: "python", "team-name": "payments", "aws:cloudformation:stack-name": "orders" },
      defaultLabelOptions(),
      context,
    );
    expect(labels).toEqual({
      source: "cloudwatch",
      log_group: "/aws/lambda/fun-orders",
      account: "123456789012",
      region: "eu-central-1",
      runtime: "python",
      team_name: "payments",
    });
    expect(dropped).toEqual([{ key: "aws:cloudformation:stack-name", reason: 'denied by "aws:*"' }]);
  });

  it("applies the allow list, the deny list and the prefix", () => {
    const options = parseLabelOptions({
      LABEL_TAG_PREFIX: "loki:",
      LABEL_TAG_DENY: "loki:secret*",
      LABEL_TAG_ALLOW: "loki:*",
    });
    const explanation = explainLabels(
      "/aws/lambda/a",
      { "loki:runtime": "nodejs", "loki:secret-token": "x", owner: "me" },
      options,
      context,
    );
    expect(explanation.labels.runtime).toBe("nodejs");
    expect(explanation.labels).not.toHaveProperty("owner");
    expect(explanation.tags.find((tag) => tag.tag === "owner")?.reason).toMatch(/prefix/);
    expect(explanation.tags.find((tag) => tag.tag === "loki:secret-token")?.reason).toMatch(/denied/);
  });

  it("never lets a tag override a fixed label and drops name collisions deterministically", () => {
    const { labels, dropped } = resolveGroupLabels(
      "/g",
      { region: "us-east-1", "team-a": "x", team_a: "y", source: "spoof" },
      defaultLabelOptions(),
      context,
    );
    expect(labels.region).toBe("eu-central-1");
    expect(labels.source).toBe("cloudwatch");
    expect(labels.team_a).toBe("x"); // "team-a" sorts before "team_a"
    expect(dropped.map((drop) => drop.key).sort()).toEqual(["region", "source", "team_a"]);
  });

  it("keeps at most 15 label names including time_shard, dropping tags by name order with a reason", () => {
    const tags = Object.fromEntries(
      Array.from({ length: 20 }, (_, index) => [`tag${String(index).padStart(2, "0")}`, "v"]),
    );
    const explanation = explainLabels("/g", tags, defaultLabelOptions(), context);
    expect(Object.keys(explanation.labels)).toHaveLength(14);
    expect(explanation.labels).toHaveProperty("tag00");
    expect(explanation.labels).toHaveProperty("tag09");
    expect(explanation.labels).not.toHaveProperty("tag10");
    expect(explanation.dropped.filter((drop) => drop.reason.includes("limit"))).toHaveLength(10);
    expect(explanation.warnings.join()).toMatch(/10 tag\(s\) of \/g dropped/);
  });

  it("counts the log stream label when it is asked for, and then keeps it out of structured metadata", () => {
    const options = parseLabelOptions({ LABEL_LOG_STREAM: "true", LABEL_LOG_GROUP: "false" });
    const explanation = explainLabels("/g", {}, options, context);
    expect(explanation.labels).not.toHaveProperty("log_group");
    expect(explanation.perEntryLabels).toEqual(["time_shard", "log_stream"]);
    expect(explanation.structuredMetadata).toEqual(["request_id"]);
    expect(explanation.eventLabels).toEqual({ logStreamLabel: true, structuredMetadata: true });
  });
});

describe("parseLabelOptions", () => {
  it("reports every mistake in one ConfigError naming the variable", () => {
    let caught: unknown;
    try {
      parseLabelOptions({ LABEL_LOG_STREAM: "maybe", LABEL_MAX_COUNT: "x", LABEL_STATIC: "bad-name=1" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as Error).message;
    expect(message).toContain('LABEL_LOG_STREAM: expected true or false (got "maybe")');
    expect(message).toContain("LABEL_MAX_COUNT");
    expect(message).toContain("LABEL_STATIC");
  });

  it("reads static labels", () => {
    expect(parseLabelOptions({ LABEL_STATIC: "env=prod, cluster=eu" }).staticLabels).toEqual({
      env: "prod",
      cluster: "eu",
    });
  });
});

describe("deny list", () => {
  it("can be emptied with 'none', letting aws:* tags through", () => {
    const { labels } = resolveGroupLabels(
      "/g",
      { "aws:cloudformation:stack-name": "orders" },
      parseLabelOptions({ LABEL_TAG_DENY: "none" }),
      context,
    );
    expect(labels.aws_cloudformation_stack_name).toBe("orders");
  });
});
