/** The package's entry point (`import { LokiShipper } from "loki-shipper"`): the constructs and their props. */
export {
  FunctionLogGroup,
  type FunctionLogGroupProps,
  type FunctionMetadata,
  type RegistrationTarget,
} from "./constructs/function-log-group.ts";
export {
  LogGroupRegistration,
  type LogGroupRegistrationProps,
  type LogGroupSelectionProps,
} from "./constructs/log-group-registration.ts";
export type { LogSendersProps } from "./constructs/log-senders.ts";
export {
  type LabelOptionsProps,
  LokiShipper,
  type LokiShipperProps,
  SHIPPER_METRICS,
} from "./constructs/loki-shipper.ts";
export {
  LokiShipperDestinationStack,
  type LokiShipperDestinationStackProps,
} from "./constructs/loki-shipper-destination.ts";
export { LokiShipperIntake, type LokiShipperIntakeProps } from "./constructs/loki-shipper-intake.ts";
export {
  LokiShipperSource,
  type LokiShipperSourceProps,
  type SourceReaderRoleProps,
} from "./constructs/loki-shipper-source.ts";
export { NodeFunction, type NodeFunctionProps } from "./constructs/node-function.ts";
export { ShipperBucket, type ShipperBucketProps } from "./constructs/shipper-bucket.ts";
export { Workflows, type WorkflowsProps } from "./constructs/workflows.ts";
