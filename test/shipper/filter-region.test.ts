import { describe, expect, it } from "vitest";
import { regionOfFilters } from "../../functions/shipper/filter-region.ts";

/** The region label of a payload from a central stream: the suffix of its filter's name. */
describe("regionOfFilters", () => {
  it.each([
    ["loki-shipper-eu-central-1", "eu-central-1"],
    ["loki-shipper-us-east-1", "us-east-1"],
    ["loki-shipper-ap-southeast-2", "ap-southeast-2"],
    ["loki-shipper-us-gov-west-1", "us-gov-west-1"],
    ["loki-shipper-cn-north-1", "cn-north-1"],
    ["eu-west-3", "eu-west-3"],
  ])("reads %s as %s", (filterName, region) => {
    expect(regionOfFilters([filterName], "eu-central-1")).toBe(region);
  });

  it.each([
    ["no filter names", []],
    ["a name without a region", ["loki-shipper"]],
    ["a region not at the end", ["loki-shipper-us-east-1-old"]],
    ["a region glued to a word", ["loki-shipperus-east-1"]],
    ["a region with a two-digit number", ["loki-shipper-us-east-12"]],
    ["upper case", ["loki-shipper-US-EAST-1"]],
  ])("falls back to the shipper's own region for %s", (_case, filterNames) => {
    expect(regionOfFilters(filterNames, "eu-central-1")).toBe("eu-central-1");
  });

  it("takes the first name that ends in a region", () => {
    expect(regionOfFilters(["audit", "loki-shipper-eu-west-1", "other-us-east-2"], "eu-central-1")).toBe(
      "eu-west-1",
    );
  });
});
