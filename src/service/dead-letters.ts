import { FleetJobsError } from '../protocol/errors.js';
import { buildArn } from '../protocol/arns.js';
import {
  hasWaitingRetry,
  reopenJobForRetry,
  selectDeadLettersPage,
  type DeadLetterRow,
} from '../store/dead-letters.js';
import { selectExecution } from '../store/executions-admin.js';
import { writeExecutions } from '../store/funnel.js';
import { insertRetryExecutions } from '../store/retries.js';
import type { ServiceDeps } from './deps.js';
import { decodeToken, page, pageLimit } from './pagination.js';
import { awsTime, compact, executionView } from './views.js';

export interface ListExecutionsQuery {
  retriesExhausted?: boolean | undefined;
  status?: string | undefined;
  jobId?: string | undefined;
  thingName?: string | undefined;
  maxResults?: number | undefined;
  nextToken?: string | undefined;
}

function deadLetterView(deps: ServiceDeps, d: DeadLetterRow) {
  return compact({
    jobId: d.jobId,
    thingName: d.thingName,
    thingArn: buildArn(deps.arn, 'thing', d.thingName),
    jobStatus: d.jobStatus,
    status: d.status,
    statusDetails: { detailsMap: d.statusDetails },
    executionNumber: d.executionNumber,
    retryAttempt: d.retryAttempt,
    versionNumber: d.versionNumber,
    queuedAt: awsTime(d.queuedAt),
    startedAt: awsTime(d.startedAt),
    lastUpdatedAt: awsTime(d.lastUpdatedAt),
    attempts: d.attempts,
  });
}

/**
 * GET /executions?retriesExhausted=true (fleetjobs extension): the dead letters, executions that ended FAILED or
 * TIMED_OUT with no retry left, newest first, each with the statusDetails of every attempt of its retry chain.
 */
export async function listDeadLetters(deps: ServiceDeps, q: ListExecutionsQuery) {
  if (q.retriesExhausted !== true) {
    throw new FleetJobsError(
      'InvalidRequest',
      'GET /executions lists dead letters: pass retriesExhausted=true (per job: GET /jobs/{jobId}/things; per thing: GET /things/{thingName}/jobs)',
    );
  }
  if (q.status !== undefined && q.status !== 'FAILED' && q.status !== 'TIMED_OUT') {
    throw new FleetJobsError(
      'InvalidRequest',
      `status ${q.status} never has retriesExhausted; use FAILED or TIMED_OUT`,
    );
  }
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('dead-letters', q.nextToken, ['number']);
  const rows = await selectDeadLettersPage(deps.db, {
    status: q.status,
    jobId: q.jobId,
    thingName: q.thingName,
    afterSeq: (after?.[0] as number | undefined) ?? null,
    limit: limit + 1,
  });
  const p = page(rows, limit, 'dead-letters', (d) => [d.seq]);
  return {
    executions: p.items.map((d) => deadLetterView(deps, d)),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
}

/**
 * RetryJobExecution (fleetjobs extension): queues a new execution (executionNumber + 1, retryAttempt + 1,
 * version 1) for a dead letter, through the same guarded insert and outbox as an automatic retry, so the device
 * is notified. A COMPLETED SNAPSHOT job becomes IN_PROGRESS again; a CANCELED job cannot be retried.
 */
export async function retryJobExecution(deps: ServiceDeps, input: { thingName: string; jobId: string }) {
  const now = deps.clock();
  const { created } = await deps.db.transaction((tx) =>
    writeExecutions(tx, now, {
      lock: [input.thingName],
      read: (tx) => selectExecution(tx, { jobId: input.jobId, thingName: input.thingName }),
      change: async (_locked, e) => {
        if (!e) {
          throw new FleetJobsError(
            'ResourceNotFound',
            `no execution of job ${input.jobId} on thing ${input.thingName}`,
          );
        }
        const state = { status: e.status, statusDetails: e.statusDetails, versionNumber: e.versionNumber };
        if (e.status !== 'FAILED' && e.status !== 'TIMED_OUT') {
          throw new FleetJobsError(
            'InvalidStateTransition',
            `the latest execution is ${e.status}; only a FAILED or TIMED_OUT one can be retried`,
            { executionState: state },
          );
        }
        if (await hasWaitingRetry(tx, e.jobId, e.thingName)) {
          throw new FleetJobsError(
            'InvalidStateTransition',
            'a retry of this execution is already waiting for its delay',
            { executionState: state },
          );
        }
        const jobStatus = await reopenJobForRetry(tx, e.jobId, now);
        if (jobStatus !== 'IN_PROGRESS') {
          throw new FleetJobsError(
            'InvalidStateTransition',
            `job ${e.jobId} is ${jobStatus ?? 'gone'}; only an IN_PROGRESS or COMPLETED job's executions can be retried`,
          );
        }
        const changes = await insertRetryExecutions(
          tx,
          [{ jobId: e.jobId, thingName: e.thingName, retryAttempt: e.retryAttempt + 1 }],
          now,
        );
        const change = changes[0];
        if (change === undefined) {
          throw new FleetJobsError('Conflict', 'the execution changed meanwhile; retry');
        }
        return { changes, created: await selectExecution(tx, change) };
      },
    }),
  );
  deps.outboxWritten();
  if (!created) throw new FleetJobsError('Conflict', 'the execution changed meanwhile; retry');
  return { execution: executionView(deps.arn, created, now) };
}
