import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { parseTarget } from '../protocol/arns.js';
import {
  insertExecutionsForThings,
  selectJob,
  selectTargetThingNames,
  updateJobAddTargets,
} from '../store/jobs.js';
import { writeExecutions } from '../store/funnel.js';
import { lockThingGroups, lockThings } from '../store/things.js';
import type { JobRow } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';
import { checkTargetsExist, queuedDeadlineFor } from './create-job.js';
import { parseTargets } from './job-validation.js';

/**
 * AssociateTargetsWithJob (reference §5.10): adds targets to an IN_PROGRESS CONTINUOUS job (at most 100 in all)
 * and fans out at once to the things they reach that the job did not reach before. Another kind of job is
 * InvalidRequest; a CONTINUOUS job no longer IN_PROGRESS is InvalidStateTransition.
 */
export async function associateTargetsWithJob(
  deps: ServiceDeps,
  input: { jobId: string; targets: string[]; comment?: string | undefined },
): Promise<JobRow> {
  const parsed = parseTargets(deps, input.targets);
  await checkTargetsExist(deps.db, parsed.things, parsed.groups);
  const now = deps.clock();
  const job = await deps.db.transaction(async (tx) => {
    await lockThingGroups(tx, parsed.groups, 'update');
    const { updated } = await writeExecutions(tx, now, {
      lock: async (tx) => ({
        thingNames: await lockThings(tx, await selectTargetThingNames(tx, parsed.things, parsed.groups)),
      }),
      change: async ({ thingNames: reached }) => {
        const job = await selectJob(tx, input.jobId, { forUpdate: true });
        if (!job) throw new FleetJobsError('ResourceNotFound', `job ${input.jobId} does not exist`);
        if (job.targetSelection !== 'CONTINUOUS') {
          throw new FleetJobsError(
            'InvalidRequest',
            `job ${input.jobId} is a SNAPSHOT job; only CONTINUOUS jobs take new targets`,
          );
        }
        if (job.status !== 'IN_PROGRESS') {
          throw new FleetJobsError(
            'InvalidStateTransition',
            `job ${input.jobId} is ${job.status}; targets are added to IN_PROGRESS jobs only`,
          );
        }
        const all = new Set([...job.targets, ...parsed.arns]);
        if (all.size > LIMITS.MAX_TARGETS_PER_JOB) {
          throw new FleetJobsError(
            'LimitExceeded',
            `a job names at most ${LIMITS.MAX_TARGETS_PER_JOB} targets; it would name ${all.size}`,
          );
        }
        const before = { things: [] as string[], groups: [] as string[] };
        for (const t of job.targets) {
          const p = parseTarget(t, deps.arn);
          if (!('error' in p)) (p.type === 'thing' ? before.things : before.groups).push(p.name);
        }
        const reachedBefore = new Set(await selectTargetThingNames(tx, before.things, before.groups));
        const updated = await updateJobAddTargets(
          tx,
          { jobId: job.jobId, version: job.version, targets: parsed.arns, comment: input.comment ?? null },
          now,
        );
        if (!updated) throw new FleetJobsError('Conflict', `job ${input.jobId} changed meanwhile; retry`);
        const changes = await insertExecutionsForThings(
          tx,
          {
            jobId: job.jobId,
            thingNames: reached.filter((n) => !reachedBefore.has(n)),
            queuedDeadline: queuedDeadlineFor(job, now),
          },
          now,
        );
        return { changes, updated };
      },
    });
    return updated;
  });
  deps.outboxWritten();
  return job;
}
