import { buildArn, type ArnContext } from '../protocol/arns.js';
import type { ExecutionRow, JobRow, ThingGroupRow, ThingRow } from '../store/rows.js';
import type { JobProcessDetails } from '../store/jobs.js';
import type { JobTemplateRow } from '../store/templates.js';

/**
 * [protocol §5] AWS IoT control-plane shapes of our rows. Timestamps are epoch seconds with a fractional part, as AWS
 * returns them; absent values are omitted rather than null.
 */
export function awsTime(date: Date): number;
export function awsTime(date: Date | null): number | undefined;
export function awsTime(date: Date | null): number | undefined {
  return date === null ? undefined : date.getTime() / 1000;
}

/** Drops undefined and null members, so responses carry only what is set. */
export function compact<T extends Record<string, unknown>>(obj: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null) out[k] = v;
  return out as Partial<T>;
}

export function thingView(arn: ArnContext, t: ThingRow) {
  return compact({
    thingName: t.thingName,
    thingId: t.thingId,
    thingArn: buildArn(arn, 'thing', t.thingName),
    thingTypeName: t.thingTypeName,
    attributes: t.attributes,
    version: t.version,
    defaultClientId: t.thingName,
  });
}

export function thingGroupView(arn: ArnContext, g: ThingGroupRow) {
  return {
    thingGroupName: g.thingGroupName,
    thingGroupId: g.thingGroupId,
    thingGroupArn: buildArn(arn, 'thinggroup', g.thingGroupName),
    version: g.version,
    thingGroupProperties: compact({
      thingGroupDescription: g.description,
      attributePayload: { attributes: g.attributes },
    }),
    thingGroupMetadata: { rootToParentThingGroups: [], creationDate: awsTime(g.createdAt) },
  };
}

export function jobSummaryView(arn: ArnContext, j: JobRow, thingGroupId?: string) {
  return compact({
    jobArn: buildArn(arn, 'job', j.jobId),
    jobId: j.jobId,
    thingGroupId,
    targetSelection: j.targetSelection,
    status: j.status,
    createdAt: awsTime(j.createdAt),
    lastUpdatedAt: awsTime(j.lastUpdatedAt),
    completedAt: awsTime(j.completedAt),
    isConcurrent: j.rolloutPending,
  });
}

export function jobView(arn: ArnContext, j: JobRow, details: JobProcessDetails) {
  return compact({
    jobArn: buildArn(arn, 'job', j.jobId),
    jobId: j.jobId,
    targetSelection: j.targetSelection,
    status: j.status,
    forceCanceled: j.forceCanceled,
    reasonCode: j.reasonCode,
    comment: j.comment,
    targets: j.targets,
    description: j.description,
    presignedUrlConfig: j.presignedUrlConfig,
    jobExecutionsRolloutConfig: j.rolloutConfig,
    abortConfig: j.abortConfig,
    createdAt: awsTime(j.createdAt),
    lastUpdatedAt: awsTime(j.lastUpdatedAt),
    completedAt: awsTime(j.completedAt),
    jobProcessDetails: compact({
      ...details,
      processingTargets: j.rolloutPending ? j.targets : undefined,
    }),
    timeoutConfig: j.timeoutConfig,
    namespaceId: j.namespaceId,
    jobTemplateArn: j.jobTemplateArn,
    jobTemplateVersion: j.jobTemplateVersion,
    jobExecutionsRetryConfig: j.retryConfig,
    documentParameters: j.documentParameters,
    isConcurrent: j.rolloutPending,
    schedulingConfig: j.schedulingConfig,
    priority: j.priority,
  });
}

export function executionSummaryView(e: ExecutionRow) {
  return compact({
    status: e.status,
    queuedAt: awsTime(e.queuedAt),
    startedAt: awsTime(e.startedAt),
    lastUpdatedAt: awsTime(e.lastUpdatedAt),
    executionNumber: e.executionNumber,
    retryAttempt: e.retryAttempt,
  });
}

export function executionView(arn: ArnContext, e: ExecutionRow, now: Date) {
  const pending = e.status === 'QUEUED' || e.status === 'IN_PROGRESS';
  return compact({
    jobId: e.jobId,
    status: e.status,
    forceCanceled: e.forceCanceled,
    statusDetails: { detailsMap: e.statusDetails },
    thingArn: buildArn(arn, 'thing', e.thingName),
    queuedAt: awsTime(e.queuedAt),
    startedAt: awsTime(e.startedAt),
    lastUpdatedAt: awsTime(e.lastUpdatedAt),
    executionNumber: e.executionNumber,
    versionNumber: e.versionNumber,
    retryAttempt: e.retryAttempt,
    approximateSecondsBeforeTimedOut:
      pending && e.timeoutAt !== null
        ? Math.max(0, Math.ceil((e.timeoutAt.getTime() - now.getTime()) / 1000))
        : undefined,
  });
}

export function jobTemplateView(arn: ArnContext, t: JobTemplateRow) {
  return compact({
    jobTemplateArn: buildArn(arn, 'jobtemplate', t.jobTemplateId),
    jobTemplateId: t.jobTemplateId,
    description: t.description,
    documentSource: t.documentSource,
    document: t.document,
    createdAt: awsTime(t.createdAt),
    ...t.config,
    versionNumber: t.versionNumber,
  });
}

export function jobTemplateSummaryView(arn: ArnContext, t: JobTemplateRow) {
  return {
    jobTemplateArn: buildArn(arn, 'jobtemplate', t.jobTemplateId),
    jobTemplateId: t.jobTemplateId,
    description: t.description,
    createdAt: awsTime(t.createdAt),
  };
}
