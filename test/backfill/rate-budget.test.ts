import { describe, expect, it } from "vitest";
import { AccountRateBudgets, RateBudget } from "../../functions/core/cloudwatch/rate-budget.ts";

/** A clock that only moves when a budget sleeps: the time a series of takes needs, without waiting. */
function fakeClock() {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
  };
}

describe("AccountRateBudgets", () => {
  it("gives each account and region its own FilterLogEvents budget, and one account's groups one between them", async () => {
    const clock = fakeClock();
    const budgets = new AccountRateBudgets(() => new RateBudget(2, { burst: 1, ...clock }));
    const a = budgets.of("111111111111", "eu-west-1");

    expect(budgets.of("111111111111", "eu-west-1")).toBe(a);
    expect(budgets.of("222222222222", "eu-west-1")).not.toBe(a);
    expect(budgets.of("111111111111", "us-east-1")).not.toBe(a);

    // Two requests a second: four requests of one account take 1.5 s...
    for (let request = 0; request < 4; request++) await a.take();
    expect(clock.now()).toBe(1500);
    // ...while another account's first request waits for nothing of it.
    const before = clock.now();
    await budgets.of("222222222222", "eu-west-1").take();
    expect(clock.now()).toBe(before);
  });
});
