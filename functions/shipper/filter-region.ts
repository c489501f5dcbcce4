/**
 * The region of a payload's log group. A subscription payload names the account (`owner`) but not
 * the region, and a central Kinesis stream takes payloads from many regions. The source side names
 * its subscription filter (or account policy) `loki-shipper-<region>`; the payload's
 * `subscriptionFilters` lists those names, so the region is read from the first that ends in one.
 */

/** `eu-central-1`, `us-gov-west-1`, `ap-southeast-2` at the end of a name, after a `-` or alone. */
const REGION_SUFFIX = /(?:^|-)([a-z]{2}(?:-gov)?-[a-z]+-\d)$/;

/** The region a filter name ends in, else `ownRegion` (a direct subscription in the shipper's region). */
export function regionOfFilters(subscriptionFilters: readonly string[], ownRegion: string): string {
  for (const name of subscriptionFilters) {
    const region = REGION_SUFFIX.exec(name)?.[1];
    if (region) return region;
  }
  return ownRegion;
}
