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
      {
        groupTags: { runtime: "python", "team-name": "payments", "aws:cloudformation:stack-name": "orders" },
      },
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
      { groupTags: { "loki:runtime": "nodejs", "loki:secret-token": "x", owner: "me" } },
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
      { groupTags: { region: "us-east-1", "team-a": "x", team_a: "y", source: "spoof" } },
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
    const explanation = explainLabels("/g", { groupTags: tags }, defaultLabelOptions(), context);
    expect(Object.keys(explanation.labels)).toHaveLength(14);
    expect(explanation.labels).toHaveProperty("tag00");
    expect(explanation.labels).toHaveProperty("tag09");
    expect(explanation.labels).not.toHaveProperty("tag10");
    expect(explanation.dropped.filter((drop) => drop.reason.includes("limit"))).toHaveLength(10);
    expect(explanation.warnings.join()).toMatch(/10 tag\(s\) of \/g dropped/);
  });

  it("counts the log stream label when it is asked for, and then keeps it out of structured metadata", () => {
    const options = parseLabelOptions({ LABEL_LOG_STREAM: "true", LABEL_LOG_GROUP: "false" });
    const explanation = explainLabels("/g", { groupTags: {} }, options, context);
    expect(explanation.labels).not.toHaveProperty("log_group");
    expect(explanation.perEntryLabels).toEqual(["time_shard", "log_stream"]);
    expect(explanation.structuredMetadata).toEqual(["request_id"]);
    expect(explanation.eventLabels).toEqual({ logStreamLabel: true, structuredMetadata: true });
  });
});

describe("labels from the Lambda function", () => {
  const functionSources = {
    groupTags: { team: "payments" },
    functionTags: { team: "orders", name: "fun-python", "aws:cloudformation:stack-name": "demo" },
    functionConfig: { runtime: "python", name: "derived" },
  };

  it("adds the function's tags and its runtime, and says where each label comes from", () => {
    const explanation = explainLabels(
      "/aws/lambda/fun-python",
      functionSources,
      defaultLabelOptions(),
      context,
    );
    expect(explanation.labels).toMatchObject({ team: "payments", name: "fun-python", runtime: "python" });
    expect(explanation.sources).toMatchObject({
      source: "fixed",
      region: "fixed",
      team: "group tag",
      name: "function tag",
      runtime: "function configuration",
    });
  });

  it("prefers the group's tags over the function's tags over the derived labels", () => {
    const explanation = explainLabels(
      "/aws/lambda/fun-python",
      functionSources,
      defaultLabelOptions(),
      context,
    );
    const reasonOf = (source: string, tag: string) =>
      explanation.tags.find((decision) => decision.source === source && decision.tag === tag)?.reason;
    expect(reasonOf("function tag", "team")).toBe('label team already comes from the group tag "team"');
    expect(reasonOf("function configuration", "name")).toBe(
      'label name already comes from the function tag "name"',
    );
    expect(reasonOf("function tag", "aws:cloudformation:stack-name")).toBe('denied by "aws:*"');
  });

  it("applies the allow list and the label limit to function labels too, but not the tag prefix to derived ones", () => {
    const options = parseLabelOptions({ LABEL_TAG_ALLOW: "loki_*,runtime", LABEL_TAG_PREFIX: "loki_" });
    const explanation = explainLabels(
      "/aws/lambda/f",
      { groupTags: {}, functionTags: { loki_owner: "me", team: "x" }, functionConfig: { runtime: "java" } },
      options,
      context,
    );
    expect(explanation.labels).toMatchObject({ owner: "me", runtime: "java" });
    expect(explanation.labels).not.toHaveProperty("team");

    const limited = explainLabels(
      "/aws/lambda/f",
      { groupTags: {}, functionTags: { a: "1" }, functionConfig: { runtime: "java" } },
      parseLabelOptions({ LABEL_MAX_COUNT: "6" }),
      context,
    );
    // source, log_group, account, region + time_shard leave room for one: "a" sorts first.
    expect(limited.labels).toHaveProperty("a");
    expect(limited.labels).not.toHaveProperty("runtime");
  });

  it("ignores the function when LABEL_LAMBDA_FUNCTION=false", () => {
    const options = parseLabelOptions({ LABEL_LAMBDA_FUNCTION: "false" });
    const { labels } = resolveGroupLabels("/aws/lambda/fun-python", functionSources, options, context);
    expect(labels).not.toHaveProperty("name");
    expect(labels).not.toHaveProperty("runtime");
    expect(labels.team).toBe("payments");
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
      { groupTags: { "aws:cloudformation:stack-name": "orders" } },
      parseLabelOptions({ LABEL_TAG_DENY: "none" }),
      context,
    );
    expect(labels.aws_cloudformation_stack_name).toBe("orders");
  });
});
