import { describe, expect, it } from "vitest";
import { HISTORY_HOURS } from "../../scripts/demo/demo-data.ts";
import { expectEachStreamOnce, printedAnswer, runDemo } from "./demo-output.ts";

/** `npm run demo -- --once` on its embedded default: its own moto and Loki test server. */

const DEMO_TIMEOUT_MS = 180_000;

describe("the demo on the Loki test server", () => {
  it(
    "queries the whole backfilled day and prints each stream once",
    async () => {
      const startedAt = Date.now();

      const result = await runDemo(["--loki-port", "0"]);

      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const answer = printedAnswer(result.stdout);
      expect(answer.since).toBeLessThanOrEqual(startedAt - HISTORY_HOURS * 3_600_000);
      expectEachStreamOnce(answer);
      // A stream per UTC hour of the history: the whole day, not just its last hours.
      expect(answer.streams).toBeGreaterThanOrEqual(HISTORY_HOURS);
      const printed = answer.streamLines.reduce((total, [, count]) => total + count, 0);
      expect(printed).toBeLessThan(answer.entries);
      // What the test server answered is what the demo wrote to CloudWatch for that time.
      expect(answer.perName).toEqual([
        `name="fun-python": ${answer.entries} entries (all the events /aws/lambda/fun-python holds for that time)`,
      ]);
    },
    DEMO_TIMEOUT_MS,
  );
});
