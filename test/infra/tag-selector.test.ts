import { describe, expect, it } from "vitest";
import {
  formatTagSelector,
  matchesTagSelector,
  parseTagSelector,
} from "../../functions/core/cloudwatch/tag-selector.ts";
import { InputError } from "../../functions/core/errors.ts";

describe("parseTagSelector", () => {
  it("reads bare and LogQL-style selectors alike", () => {
    // Given the same selector in both spellings
    const bare = "runtime=python, name=~fun.*, owner!=team-b, stage!~test|dev";
    const braces = '{runtime="python", name=~"fun.*", owner!="team-b", stage!~"test|dev"}';

    // When parsed / Then both give the same four matchers
    const expected = [
      { key: "runtime", operator: "=", value: "python" },
      { key: "name", operator: "=~", value: "fun.*" },
      { key: "owner", operator: "!=", value: "team-b" },
      { key: "stage", operator: "!~", value: "test|dev" },
    ];
    expect(parseTagSelector(bare)).toEqual(expected);
    expect(parseTagSelector(braces)).toEqual(expected);
  });

  it("keeps commas and escaped quotes inside quoted values, and AWS tag key characters", () => {
    // Given a quoted value with a comma and a key with AWS's characters
    const matchers = parseTagSelector('aws:cloudformation:stack-name="a,b", team/name="say \\"hi\\""');

    // Then both are read whole
    expect(matchers).toEqual([
      { key: "aws:cloudformation:stack-name", operator: "=", value: "a,b" },
      { key: "team/name", operator: "=", value: 'say "hi"' },
    ]);
  });

  it("says where a selector cannot be read", () => {
    // Given a matcher without operator / When parsed / Then the message shows the rest of the text
    expect(() => parseTagSelector("runtime=python, owner")).toThrow(InputError);
    expect(() => parseTagSelector("runtime=python, owner")).toThrow('at "owner"');
  });

  it("refuses an empty selector and an invalid regular expression", () => {
    expect(() => parseTagSelector("{}")).toThrow("Tag selector is empty");
    expect(() => parseTagSelector("name=~fun(")).toThrow('Invalid regular expression "fun("');
  });
});

describe("matchesTagSelector", () => {
  const tags = { runtime: "python", name: "fun-python", region: "eu-central-1" };

  it("anchors regular expressions to the whole value, as Loki does", () => {
    expect(matchesTagSelector(tags, parseTagSelector("name=~fun.*"))).toBe(true);
    expect(matchesTagSelector(tags, parseTagSelector("name=~fun"))).toBe(false);
    expect(matchesTagSelector(tags, parseTagSelector("name!~.*node"))).toBe(true);
  });

  it("reads a missing tag as the empty string", () => {
    expect(matchesTagSelector(tags, parseTagSelector('owner=""'))).toBe(true);
    expect(matchesTagSelector(tags, parseTagSelector("owner!=team-a"))).toBe(true);
    expect(matchesTagSelector(tags, parseTagSelector("owner=team-a"))).toBe(false);
  });

  it("needs every matcher to accept", () => {
    const selector = parseTagSelector('{runtime="python", region="eu-central-1", name=~"fun.*"}');
    expect(matchesTagSelector(tags, selector)).toBe(true);
    expect(matchesTagSelector({ ...tags, region: "us-east-1" }, selector)).toBe(false);
  });

  it("formats matchers back into the braces form", () => {
    expect(formatTagSelector(parseTagSelector("runtime=python,name=~fun.*"))).toBe(
      '{runtime="python", name=~"fun.*"}',
    );
  });
});
