import type { CommandModule } from "../program.ts";
import { registerLabels } from "./labels.ts";
import { registerLink } from "./link.ts";
import { registerPreview } from "./preview.ts";
import { registerRuns } from "./runs.ts";
import { registerWorkflows } from "./workflows.ts";

export const commands: CommandModule[] = [
  registerLink,
  registerLabels,
  registerPreview,
  registerWorkflows,
  registerRuns,
];
