import {
  Alarm,
  ComparisonOperator,
  type IAlarmAction,
  type IMetric,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import type { Construct } from "constructs";

/** The pipeline's alarms: at or above a threshold in one period; no data is no alarm. */
export function thresholdAlarm(
  scope: Construct,
  id: string,
  alarm: { description: string; metric: IMetric; threshold: number; actions: IAlarmAction[] },
): Alarm {
  const created = new Alarm(scope, id, {
    alarmDescription: alarm.description,
    metric: alarm.metric,
    threshold: alarm.threshold,
    evaluationPeriods: 1,
    comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: TreatMissingData.NOT_BREACHING,
  });
  for (const action of alarm.actions) created.addAlarmAction(action);
  return created;
}
