import { FleetJobsError } from '../protocol/errors.js';
import { buildArn, parseTarget } from '../protocol/arns.js';
import { writeExecutions } from '../store/funnel.js';
import { insertExecutionsForThings, selectContinuousJobsTargeting } from '../store/jobs.js';
import { removePendingExecutions } from '../store/executions-admin.js';
import {
  deleteGroupMember,
  deleteThingGroupRow,
  insertGroupMembers,
  insertThingGroup,
  lockThingGroups,
  lockThings,
  selectGroupMemberNames,
  selectGroupMembersPage,
  selectOtherGroupNamesOfThing,
  selectThingGroup,
  selectThingGroupsPage,
} from '../store/things.js';
import type { Queryable } from '../store/db.js';
import type { ExecutionChange, ThingGroupRow } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';
import { queuedDeadlineFor } from './create-job.js';
import { decodeToken, page, pageLimit } from './pagination.js';
import { thingGroupView } from './views.js';

/**
 * Thing groups and membership. Membership drives CONTINUOUS jobs ([protocol §4], reference §3.3): a thing that joins a
 * group an IN_PROGRESS CONTINUOUS job targets gets a QUEUED execution at once (a re-join gets the next
 * executionNumber); a thing that leaves it, or a group that is deleted, has its pending executions of those jobs
 * set to REMOVED unless the job still targets the thing directly or through another group.
 * Lock order: thing groups, things, executions, jobs.
 */

function sameAttributes(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

export interface CreateThingGroupInput {
  thingGroupName: string;
  description?: string | undefined;
  attributes?: Record<string, string> | undefined;
}

export async function createThingGroup(deps: ServiceDeps, input: CreateThingGroupInput) {
  let row: ThingGroupRow;
  try {
    row = await insertThingGroup(deps.db, input, deps.clock());
  } catch (err) {
    if (!(err instanceof FleetJobsError) || err.kind !== 'ResourceAlreadyExists') throw err;
    const existing = await selectThingGroup(deps.db, input.thingGroupName);
    if (
      !existing ||
      existing.description !== (input.description ?? null) ||
      !sameAttributes(existing.attributes, input.attributes ?? {})
    ) {
      throw new FleetJobsError(
        'ResourceAlreadyExists',
        `thing group ${input.thingGroupName} already exists with different properties`,
      );
    }
    row = existing;
  }
  return {
    thingGroupName: row.thingGroupName,
    thingGroupArn: buildArn(deps.arn, 'thinggroup', row.thingGroupName),
    thingGroupId: row.thingGroupId,
  };
}

export async function describeThingGroup(deps: ServiceDeps, thingGroupName: string) {
  const row = await selectThingGroup(deps.db, thingGroupName);
  if (!row) throw new FleetJobsError('ResourceNotFound', `thing group ${thingGroupName} does not exist`);
  return thingGroupView(deps.arn, row);
}

export async function listThingGroups(
  deps: ServiceDeps,
  q: { maxResults?: number; nextToken?: string; namePrefixFilter?: string },
) {
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('thing-groups', q.nextToken, ['string']);
  const rows = await selectThingGroupsPage(deps.db, {
    after: (after?.[0] as string | undefined) ?? null,
    limit: limit + 1,
    namePrefixFilter: q.namePrefixFilter,
  });
  const p = page(rows, limit, 'thing-groups', (r) => [r.thingGroupName]);
  return {
    thingGroups: p.items.map((g) => ({
      groupName: g.thingGroupName,
      groupArn: buildArn(deps.arn, 'thinggroup', g.thingGroupName),
    })),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
}

export async function listThingsInThingGroup(
  deps: ServiceDeps,
  q: { thingGroupName: string; maxResults?: number; nextToken?: string },
) {
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('group-things', q.nextToken, ['string']);
  if (!(await selectThingGroup(deps.db, q.thingGroupName))) {
    throw new FleetJobsError('ResourceNotFound', `thing group ${q.thingGroupName} does not exist`);
  }
  const names = await selectGroupMembersPage(deps.db, {
    thingGroupName: q.thingGroupName,
    after: (after?.[0] as string | undefined) ?? null,
    limit: limit + 1,
  });
  const p = page(names, limit, 'group-things', (n) => [n]);
  return { things: p.items, ...(p.nextToken ? { nextToken: p.nextToken } : {}) };
}

function arnPrefixes(deps: ServiceDeps) {
  return {
    thingArnPrefix: buildArn(deps.arn, 'thing', ''),
    groupArnPrefix: buildArn(deps.arn, 'thinggroup', ''),
  };
}

/** REMOVED for pending executions of the CONTINUOUS jobs targeting the group on things it no longer reaches. */
async function removeFromContinuousJobs(
  deps: ServiceDeps,
  tx: Queryable,
  groupName: string,
  thingNames: readonly string[],
  now: Date,
): Promise<ExecutionChange[]> {
  if (thingNames.length === 0) return [];
  const jobs = await selectContinuousJobsTargeting(tx, [buildArn(deps.arn, 'thinggroup', groupName)]);
  return removePendingExecutions(
    tx,
    { thingNames, jobIds: jobs.map((j) => j.jobId), ...arnPrefixes(deps) },
    now,
  );
}

/**
 * DeleteThingGroup: as AWS, deleting a group that does not exist succeeds. Its members' pending executions of
 * CONTINUOUS jobs that reached them only through this group become REMOVED.
 */
export async function deleteThingGroup(
  deps: ServiceDeps,
  input: { thingGroupName: string; expectedVersion?: number },
): Promise<void> {
  const now = deps.clock();
  const changed = await deps.db.transaction(async (tx) => {
    const locked = await lockThingGroups(tx, [input.thingGroupName], 'update');
    if (locked.length === 0) return false;
    if (input.expectedVersion !== undefined) {
      const row = await selectThingGroup(tx, input.thingGroupName);
      if (row && row.version !== input.expectedVersion) {
        throw new FleetJobsError(
          'VersionMismatch',
          `thing group ${input.thingGroupName} is at version ${row.version}, not ${input.expectedVersion}`,
        );
      }
    }
    const { changes } = await writeExecutions(tx, now, {
      lock: async (tx) => ({
        thingNames: await lockThings(tx, await selectGroupMemberNames(tx, input.thingGroupName)),
      }),
      change: async ({ thingNames: members }) => {
        await deleteThingGroupRow(tx, input.thingGroupName);
        return { changes: await removeFromContinuousJobs(deps, tx, input.thingGroupName, members, now) };
      },
    });
    return changes.length > 0;
  });
  if (changed) deps.outboxWritten();
}

export interface MembershipInput {
  thingGroupName?: string | undefined;
  thingGroupArn?: string | undefined;
  thingName?: string | undefined;
  thingArn?: string | undefined;
}

/** The thing and group a membership request names, by name or ARN (each must be given one way). */
export function resolveMembership(
  deps: ServiceDeps,
  input: MembershipInput,
): { group: string; thing: string } {
  const pick = (type: 'thing' | 'thinggroup', name: string | undefined, arn: string | undefined): string => {
    const label = type === 'thing' ? 'thingName or thingArn' : 'thingGroupName or thingGroupArn';
    if (arn !== undefined) {
      const parsed = parseTarget(arn, deps.arn);
      if ('error' in parsed || parsed.type !== type) {
        throw new FleetJobsError('InvalidRequest', `${arn} is not a ${type} ARN of this account`);
      }
      if (name !== undefined && name !== parsed.name) {
        throw new FleetJobsError('InvalidRequest', `${label}: the name and the ARN name different resources`);
      }
      return parsed.name;
    }
    if (name === undefined) throw new FleetJobsError('InvalidRequest', `${label} is required`);
    return name;
  };
  return {
    group: pick('thinggroup', input.thingGroupName, input.thingGroupArn),
    thing: pick('thing', input.thingName, input.thingArn),
  };
}

/** The funnel's lock step of a membership change: the group (shared), then the thing; both must exist. */
async function lockMembership(
  tx: Queryable,
  group: string,
  thing: string,
): Promise<{ thingNames: string[] }> {
  if ((await lockThingGroups(tx, [group], 'share')).length === 0) {
    throw new FleetJobsError('ResourceNotFound', `thing group ${group} does not exist`);
  }
  const thingNames = await lockThings(tx, [thing]);
  if (thingNames.length === 0) throw new FleetJobsError('ResourceNotFound', `thing ${thing} does not exist`);
  return { thingNames };
}

/**
 * AddThingToThingGroup. A new member of a group that an IN_PROGRESS CONTINUOUS job targets gets a QUEUED execution
 * of that job in the same transaction, unless the job already reached it directly or through another group.
 */
export async function addThingToThingGroup(deps: ServiceDeps, input: MembershipInput): Promise<void> {
  const { group, thing } = resolveMembership(deps, input);
  const now = deps.clock();
  const changed = await deps.db.transaction(async (tx) => {
    const { changes } = await writeExecutions(tx, now, {
      lock: (tx) => lockMembership(tx, group, thing),
      change: async () => ({ changes: await executionsForNewMember(deps, tx, group, thing, now) }),
    });
    return changes.length > 0;
  });
  if (changed) deps.outboxWritten();
}

/** The executions a new member of a group gets: one per CONTINUOUS job that targets the group and not it yet. */
async function executionsForNewMember(
  deps: ServiceDeps,
  tx: Queryable,
  group: string,
  thing: string,
  now: Date,
): Promise<ExecutionChange[]> {
  const added = await insertGroupMembers(tx, group, [thing], now);
  if (added.length === 0) return [];
  const jobs = await selectContinuousJobsTargeting(tx, [buildArn(deps.arn, 'thinggroup', group)]);
  if (jobs.length === 0) return [];
  const otherGroups = (await selectOtherGroupNamesOfThing(tx, thing, group)).map((g) =>
    buildArn(deps.arn, 'thinggroup', g),
  );
  const thingArn = buildArn(deps.arn, 'thing', thing);
  const changes: ExecutionChange[] = [];
  for (const job of jobs) {
    if (job.targets.some((t) => t === thingArn || otherGroups.includes(t))) continue;
    changes.push(
      ...(await insertExecutionsForThings(
        tx,
        { jobId: job.jobId, thingNames: [thing], queuedDeadline: queuedDeadlineFor(job, now) },
        now,
      )),
    );
  }
  return changes;
}

/** RemoveThingFromThingGroup: the thing's pending executions of CONTINUOUS jobs it no longer reaches: REMOVED. */
export async function removeThingFromThingGroup(deps: ServiceDeps, input: MembershipInput): Promise<void> {
  const { group, thing } = resolveMembership(deps, input);
  const now = deps.clock();
  const changed = await deps.db.transaction(async (tx) => {
    const { changes } = await writeExecutions(tx, now, {
      lock: (tx) => lockMembership(tx, group, thing),
      change: async () => ({
        changes: (await deleteGroupMember(tx, group, thing))
          ? await removeFromContinuousJobs(deps, tx, group, [thing], now)
          : [],
      }),
    });
    return changes.length > 0;
  });
  if (changed) deps.outboxWritten();
}
