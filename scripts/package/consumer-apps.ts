/**
 * The two CDK apps a new user would write after `npm i loki-shipper aws-cdk-lib constructs`: one
 * in plain JavaScript, one in TypeScript. Each synthesises into the directory given as its first
 * argument and exits 1 with the list of cdk-nag findings that no acknowledgement explains.
 */

const body = (stackName: string) => `
const app = new App({ outdir: process.argv[2] });
const stack = new Stack(app, "${stackName}", { env: { region: "eu-central-1" } });
new LokiShipper(stack, "Logs", {
  lokiUrl: "https://logs-prod-012.grafana.net",
  tenant: "my-team",
  subscriptions: [{ prefixes: ["/aws/lambda/checkout-"] }],
});
const findings = new AwsSolutionsChecks().validateScope(app).violations.flatMap((violation) =>
  violation.violatingResources.map((resource) => violation.ruleName + " at " + resource.constructPath),
);
if (findings.length > 0) {
  console.error("cdk-nag findings without a reason:\\n" + findings.join("\\n"));
  process.exit(1);
}
app.synth();
`;

const imports = `import { App, Stack } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { LokiShipper } from "loki-shipper";
`;

export const JS_APP = { file: "app.mjs", stackName: "ConsumerJs", source: imports + body("ConsumerJs") };

export const TS_APP = {
  file: "app.ts",
  stackName: "ConsumerTs",
  source: imports + body("ConsumerTs"),
  tsconfig: {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      strict: true,
      skipLibCheck: true,
      types: ["node"],
      outDir: "ts-out",
    },
    files: ["app.ts"],
  },
};
