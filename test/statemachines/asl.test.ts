import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { StateMachine } from "aws-local-stepfunctions";
import { describe, expect, it } from "vitest";
import { loadDefinition } from "../../cli/local-workflow.ts";

const require = createRequire(import.meta.url);
const aslValidator = require("asl-validator") as (definition: unknown) => {
  isValid: boolean;
  errorsText: (separator?: string) => string;
};

/** The substitutions the stack gives each definition (DefinitionBody.fromFile + definitionSubstitutions). */
const SUBSTITUTIONS = {
  backfill: [
    "PlanBackfillFunctionArn",
    "ExportSliceFunctionArn",
    "ReplayChunksFunctionArn",
    "FinishRunFunctionArn",
    "BackfillStateMachineArn",
    "BucketName",
  ],
  replay: ["PlanReplayFunctionArn", "ReplayChunksFunctionArn", "FinishRunFunctionArn", "BucketName"],
} as const;

type States = Record<string, Record<string, unknown>>;

function readText(kind: keyof typeof SUBSTITUTIONS): string {
  return readFileSync(new URL(`../../statemachines/${kind}.asl.json`, import.meta.url), "utf8");
}

/** Every (states map, state name, state) of a definition, nested Map/Parallel states included. */
function allStateMaps(definition: {
  States: States;
}): { states: States; name: string; state: Record<string, unknown> }[] {
  const found: { states: States; name: string; state: Record<string, unknown> }[] = [];
  const visit = (states: States) => {
    for (const [name, state] of Object.entries(states)) {
      found.push({ states, name, state });
      const processor = (state.ItemProcessor ?? state.Iterator) as { States: States } | undefined;
      if (processor) visit(processor.States);
      for (const branch of (state.Branches as { States: States }[] | undefined) ?? []) visit(branch.States);
    }
  };
  visit(definition.States);
  return found;
}

describe.each(["backfill", "replay"] as const)("statemachines/%s.asl.json", (kind) => {
  it("is valid Amazon States Language (asl-validator)", () => {
    const result = aslValidator(JSON.parse(readText(kind)));
    expect(result.errorsText("\n")).toBe("");
    expect(result.isValid).toBe(true);
  });

  it("uses only the substitutions the stack provides", () => {
    const placeholders = [...readText(kind).matchAll(/\$\{(\w+)\}/g)].map((match) => match[1]);
    expect(placeholders.length).toBeGreaterThan(0);
    for (const name of placeholders) expect(SUBSTITUTIONS[kind]).toContain(name);
  });

  it("resolves every Next, Default, Catch and StartAt within its own states", () => {
    const definition = JSON.parse(readText(kind)) as { StartAt: string; States: States };
    expect(definition.States[definition.StartAt]).toBeDefined();
    for (const { states, name, state } of allStateMaps(definition)) {
      const targets = [
        state.Next,
        state.Default,
        ...((state.Choices as { Next: string }[] | undefined) ?? []).map((choice) => choice.Next),
        ...((state.Catch as { Next: string }[] | undefined) ?? []).map((catcher) => catcher.Next),
      ].filter((target): target is string => typeof target === "string");
      for (const target of targets) expect(states[target], `${name} -> ${target}`).toBeDefined();
      const processor = state.ItemProcessor as { StartAt: string; States: States } | undefined;
      if (processor) expect(processor.States[processor.StartAt], `${name} StartAt`).toBeDefined();
      // A Lambda task without TimeoutSeconds would wait on a lost invocation for a year (ASL default).
      if (state.Resource === "arn:aws:states:::lambda:invoke") {
        expect(state.TimeoutSeconds, `${name} TimeoutSeconds`).toBeGreaterThan(60);
      }
    }
  });

  it("loads in aws-local-stepfunctions, the local engine", () => {
    expect(
      () => new StateMachine(loadDefinition(kind) as never, { validationOptions: { checkArn: false } }),
    ).not.toThrow();
  });
});
