import { Command, CommanderError } from "commander";
import type { AwsOptions } from "./aws.ts";
import { describeFailure, EXIT_BAD_INPUT, EXIT_OK } from "./errors.ts";
import type { Output } from "./output.ts";

/** What every command module gets: where to write, and the global AWS options once parsed. */
export interface CommandContext {
  output: Output;
  awsOptions(): AwsOptions;
}

export type CommandModule = (program: Command, context: CommandContext) => void;

/**
 * Runs the CLI in-process and resolves to its exit code (never calls process.exit), so that
 * tests see exactly what a user sees.
 */
export async function runCli(argv: string[], output: Output, commands: CommandModule[]): Promise<number> {
  const program = new Command("loki-shipper")
    .description("Ship AWS CloudWatch Logs into Grafana Loki, labelled by log group tags.")
    .option("--region <region>", "AWS region (default: AWS_REGION)")
    .option("--profile <profile>", "AWS named profile (default: the standard credential chain)")
    .option("--endpoint-url <url>", "another endpoint for every AWS API, e.g. a local emulator")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out(text.trimEnd()),
      writeErr: (text) => output.err(text.trimEnd()),
    })
    .showHelpAfterError("(add --help for usage)");
  const context: CommandContext = {
    output,
    awsOptions: () => program.opts<AwsOptions>(),
  };
  for (const register of commands) register(program, context);
  for (const command of program.commands) command.exitOverride();

  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return error.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT;
    }
    const failure = describeFailure(error);
    output.err(failure.line);
    return failure.exitCode;
  }
}
