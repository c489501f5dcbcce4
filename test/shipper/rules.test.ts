import { RE2JS } from "re2js";
import { describe, expect, it } from "vitest";
import {
  BUILTIN_MASKS,
  FAST_MASK_MAX_CHARS,
  RuleSet,
  v8Pattern,
} from "../../functions/core/delivery/rules.ts";
import { ConfigError } from "../../functions/core/errors.ts";
import type { LogEvent } from "../../functions/core/log-event.ts";
import { workflowTasksFromEnv } from "../../functions/core/workflow/workflow-env.ts";
import { parseShipperConfig } from "../../functions/shipper/ship-subscription.ts";
import { cloudWatchEventId } from "../fixtures/subscription.ts";

const group = "/aws/lambda/orders";

function event(message: string, logStream = "2026/11/28/[$LATEST]0f1e2d3c"): LogEvent {
  const timestamp = Date.parse("2026-11-28T01:00:00Z");
  return { id: cloudWatchEventId(timestamp), timestamp, message, logStream };
}

function shipped(rules: RuleSet, message: string, logGroup = group): string | number {
  const outcome = rules.apply(logGroup, event(message));
  return "event" in outcome ? outcome.event.message : outcome.droppedBy;
}

describe("drop rules", () => {
  it("drop a matching line and name the rule that dropped it, only in the groups the rule names", () => {
    const rules = RuleSet.fromJson(
      JSON.stringify([
        { action: "mask", builtin: "email" },
        { action: "drop", pattern: "GET /health", logGroups: "^/aws/lambda/orders$" },
      ]),
    );
    expect(shipped(rules, "GET /health 200 in 2 ms")).toBe(2);
    expect(shipped(rules, "GET /health 200 in 2 ms", "/aws/lambda/payments")).toBe("GET /health 200 in 2 ms");
    expect(shipped(rules, "GET /orders/42 200")).toBe("GET /orders/42 200");
  });

  it("count what each rule dropped, and keep the order of the rest", () => {
    const rules = RuleSet.fromJson(
      JSON.stringify([
        { action: "drop", pattern: "DEBUG" },
        { action: "drop", pattern: "health" },
      ]),
    );
    const events = [
      event("DEBUG a"),
      event("INFO b"),
      event("health"),
      event("DEBUG health"),
      event("INFO c"),
    ];
    const shaped = rules.shape(group, events);
    expect(shaped.events.map((kept) => kept.message)).toEqual(["INFO b", "INFO c"]);
    expect(shaped.dropped).toEqual({ "rule 1": 2, "rule 2": 1 });
  });
});

describe("mask rules", () => {
  const builtins = RuleSet.fromJson(JSON.stringify([{ action: "mask", builtin: "all" }]));

  it.each([
    ["an email", "user jane.doe+shop@example.co.uk signed in", "user <email> signed in"],
    ["an IPv4 address", "client 203.0.113.42 connected", "client <ipv4> connected"],
    ["an IPv6 address", "client 2001:db8::8a2e:370:7334 connected", "client <ipv6> connected"],
    ["a full IPv6 address", "from 2001:0db8:85a3:0000:0000:8a2e:0370:7334.", "from <ipv6>."],
    ["a bearer token", "Authorization: Bearer abc.DEF-123_~+/xyz==", "Authorization: Bearer <token>"],
    [
      "a JWT",
      "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk rest",
      "token=<jwt> rest",
    ],
    ["an AWS access key id", "key AKIAIOSFODNN7EXAMPLE used", "key <aws_access_key> used"],
  ])("hide %s", (_what, line, masked) => {
    expect(shipped(builtins, line)).toBe(masked);
  });

  it.each([
    ["a time of day", "at 01:02:03 the job ran"],
    ["a version number", "runtime 3.12.1 started"],
    ["a C++ scope", "std::vector and Data::Dumper"],
    ["a UUID request id", "RequestId: 8f5d3c1e-2b4a-4c6d-9e8f-0a1b2c3d4e5f"],
  ])("leave %s alone", (_what, line) => {
    expect(shipped(builtins, line)).toBe(line);
  });

  it("give the same result on V8 (short lines) as on RE2 (long lines)", () => {
    const lines = [
      "user jane.doe+shop@example.co.uk from 203.0.113.42 and 2001:db8::8a2e:370:7334 and ::1",
      "Authorization: BEARER abc.DEF-123==; key AKIAIOSFODNN7EXAMPLE; eyJa.eyJb.c",
      "a@b a@b.c x@y.io 999.1.1.1 1.2.3.4.5 fe80::1%eth0 12:34:56",
    ];
    for (const [name, mask] of Object.entries(BUILTIN_MASKS)) {
      const re2 = RE2JS.compile(mask.pattern);
      for (const line of lines) {
        expect(line.replace(v8Pattern(mask.pattern), mask.replacement), name).toBe(
          re2.matcher(line).replaceAll(mask.replacement),
        );
      }
    }
    // The same line, once under and once over the V8 length bound, is masked the same way.
    const long = `${lines[0]} ${"x".repeat(FAST_MASK_MAX_CHARS)}`;
    expect(shipped(builtins, long)).toBe(
      `${shipped(builtins, lines[0] as string)} ${"x".repeat(FAST_MASK_MAX_CHARS)}`,
    );
  });

  it("give the same line when applied to an already masked line (every built-in's output is stable)", () => {
    const line = "a@b.io from 10.0.0.1 and ::1 with Bearer xyz and AKIAIOSFODNN7EXAMPLE";
    const once = shipped(builtins, line) as string;
    expect(shipped(builtins, once)).toBe(once);
  });

  it("apply custom patterns with their replacement, group references included, to the line and the log stream", () => {
    const rules = RuleSet.fromJson(
      JSON.stringify([
        { action: "mask", pattern: "(password=)\\S+", replacement: "$1***" },
        { action: "mask", pattern: "tenant-[0-9]+" },
      ]),
    );
    const outcome = rules.apply(group, event("login password=hunter2 ok", "tenant-42/worker"));
    expect(outcome).toMatchObject({
      event: { message: "login password=*** ok", logStream: "<redacted>/worker" },
    });
  });

  it("return the very same event when nothing matches", () => {
    const original = event("nothing to hide");
    expect(builtins.apply(group, original)).toEqual({ event: original });
  });
});

describe("validation", () => {
  it("report every bad rule at once, one line each, naming the rule and the value", () => {
    const text = JSON.stringify([
      { action: "drop", pattern: "(a" },
      { action: "mask", builtin: "phone" },
      { action: "drop", pattern: "ok" },
      { action: "mask", pattern: "(x)\\1" },
      { action: "drop", pattern: "x", logGroups: "[" },
    ]);
    let error: unknown;
    try {
      RuleSet.fromJson(text);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const lines = (error as ConfigError).message.split("\n").slice(1);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^- LOG_RULES rule 1: pattern "\(a" is not a valid RE2 regular expression \(.*missing closing \)/,
    );
    expect(lines[1]).toMatch(
      /^- LOG_RULES rule 2: expected one of .* got \{"action":"mask","builtin":"phone"\}/,
    );
    expect(lines[2]).toMatch(
      /^- LOG_RULES rule 4: pattern "\(x\)\\\\1" is not a valid RE2 regular expression/,
    );
    expect(lines[3]).toMatch(/^- LOG_RULES rule 5: logGroups "\[" is not a valid RE2 regular expression/);
  });

  it("say what is expected when the setting is not a JSON list", () => {
    expect(() => RuleSet.fromJson("drop health")).toThrow(/LOG_RULES: not JSON .* expected a list of/);
    expect(() => RuleSet.fromJson('{"action":"drop"}')).toThrow(/LOG_RULES: expected a JSON list of/);
  });

  it("treat an unset or empty setting as no rules", () => {
    expect(RuleSet.fromJson(undefined).size).toBe(0);
    expect(RuleSet.fromJson(" ").size).toBe(0);
  });
});

describe("catastrophic backtracking", () => {
  it("match the hostile pattern (a+)+$ against a 256 KB line in linear time (RE2, not a backtracking engine)", () => {
    const rules = RuleSet.fromJson(JSON.stringify([{ action: "drop", pattern: "(a+)+$" }]));
    // A backtracking engine needs about 2^n steps for n 'a's followed by a non-matching character:
    // this test would not finish. RE2 reads the line once.
    const hostile = `${"a".repeat(262_143)}!`;
    expect(shipped(rules, hostile)).toBe(hostile);
    expect(shipped(rules, "aaaa")).toBe(1);
  });

  it("run every built-in mask over 256 KB lines made to look almost like their targets", () => {
    const builtins = RuleSet.fromJson(JSON.stringify([{ action: "mask", builtin: "all" }]));
    for (const hostile of [
      "0.0.0x".repeat(43_690),
      "12:12:12:12:12:x".repeat(16_384),
      "a.".repeat(131_072),
      "bearer.".repeat(37_449),
    ]) {
      expect(shipped(builtins, hostile)).toBe(hostile);
    }
  });
});

describe("describe", () => {
  it("list the rules that apply to a group, in order, with their numbers", () => {
    const rules = RuleSet.fromJson(
      JSON.stringify([
        { action: "drop", pattern: "health", logGroups: "^/aws/lambda/api-" },
        { action: "mask", builtin: "email" },
        { action: "mask", builtin: "all" },
      ]),
    );
    expect(rules.describe(group)).toEqual([
      { number: 2, action: "mask", description: "mask email" },
      { number: 3, action: "mask", description: "mask email, ipv4, ipv6, bearer, jwt, aws_access_key" },
    ]);
    expect(rules.describe("/aws/lambda/api-users")[0]).toEqual({
      number: 1,
      action: "drop",
      description: "drop /health/",
      logGroups: "^/aws/lambda/api-",
    });
  });
});

describe("at cold start", () => {
  const badRules = JSON.stringify([
    { action: "drop", pattern: "(a" },
    { action: "mask", pattern: "[z-a]" },
  ]);

  it("the shipper reports every bad rule with its other configuration mistakes, one line each", () => {
    expect(() =>
      parseShipperConfig({
        AWS_REGION: "eu-central-1",
        BUCKET_NAME: "bucket",
        LOKI_URL: "ftp://x",
        LOG_RULES: badRules,
      }),
    ).toThrow(
      expect.objectContaining({
        name: "ConfigError",
        message: expect.stringMatching(
          /^Invalid configuration:\n- LOKI_URL: .*\n- LOG_RULES rule 1: pattern "\(a" .*\n- LOG_RULES rule 2: pattern "\[z-a\]" .*$/,
        ),
      }),
    );
  });

  it("the workflow functions refuse bad rules when they start", () => {
    expect(() =>
      workflowTasksFromEnv({ BUCKET_NAME: "bucket", LOKI_URL: "http://127.0.0.1:3100", LOG_RULES: badRules }),
    ).toThrow(/LOG_RULES rule 1: .*\n- LOG_RULES rule 2: /);
  });
});
