import { FleetJobsError } from '../protocol/errors.js';
import { buildArn } from '../protocol/arns.js';
import { writeExecutions } from '../store/funnel.js';
import { removePendingExecutions } from '../store/executions-admin.js';
import { deleteThingRow, insertThing, selectThing, selectThingsPage } from '../store/things.js';
import type { ThingRow } from '../store/rows.js';
import type { ServiceDeps } from './deps.js';
import { decodeToken, page, pageLimit } from './pagination.js';
import { thingView } from './views.js';

function sameAttributes(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * CreateThing. As AWS: creating a thing that exists with the same type and attributes succeeds and returns it;
 * with different ones it is ResourceAlreadyExists.
 */
export async function createThing(
  deps: ServiceDeps,
  input: { thingName: string; thingTypeName?: string; attributes?: Record<string, string> },
): Promise<{ thingName: string; thingArn: string; thingId: string }> {
  const now = deps.clock();
  let row: ThingRow;
  try {
    row = await insertThing(deps.db, input, now);
  } catch (err) {
    if (!(err instanceof FleetJobsError) || err.kind !== 'ResourceAlreadyExists') throw err;
    const existing = await selectThing(deps.db, input.thingName);
    if (
      !existing ||
      existing.thingTypeName !== (input.thingTypeName ?? null) ||
      !sameAttributes(existing.attributes, input.attributes ?? {})
    ) {
      throw new FleetJobsError(
        'ResourceAlreadyExists',
        `thing ${input.thingName} already exists with a different configuration`,
      );
    }
    row = existing;
  }
  return {
    thingName: row.thingName,
    thingArn: buildArn(deps.arn, 'thing', row.thingName),
    thingId: row.thingId,
  };
}

export async function describeThing(deps: ServiceDeps, thingName: string) {
  const row = await selectThing(deps.db, thingName);
  if (!row) throw new FleetJobsError('ResourceNotFound', `thing ${thingName} does not exist`);
  return thingView(deps.arn, row);
}

export async function listThings(
  deps: ServiceDeps,
  q: {
    maxResults?: number;
    nextToken?: string;
    attributeName?: string;
    attributeValue?: string;
    thingTypeName?: string;
  },
) {
  if (q.attributeValue !== undefined && q.attributeName === undefined) {
    throw new FleetJobsError('InvalidRequest', 'attributeValue needs attributeName');
  }
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('things', q.nextToken, ['string']);
  const rows = await selectThingsPage(deps.db, {
    after: (after?.[0] as string | undefined) ?? null,
    limit: limit + 1,
    attributeName: q.attributeName,
    attributeValue: q.attributeValue,
    thingTypeName: q.thingTypeName,
  });
  const p = page(rows, limit, 'things', (r) => [r.thingName]);
  return {
    things: p.items.map((t) => {
      const v = thingView(deps.arn, t);
      return {
        thingName: v.thingName,
        thingTypeName: v.thingTypeName,
        thingArn: v.thingArn,
        attributes: v.attributes,
        version: v.version,
      };
    }),
    ...(p.nextToken ? { nextToken: p.nextToken } : {}),
  };
}

/**
 * DeleteThing: its pending executions become REMOVED ([protocol §4]; notify / notify-next and job completion through
 * the write funnel), then the thing and its memberships go, in one transaction. As AWS, deleting a thing
 * that does not exist succeeds; expectedVersion, when given, must match.
 */
export async function deleteThing(
  deps: ServiceDeps,
  input: { thingName: string; expectedVersion?: number },
): Promise<void> {
  const now = deps.clock();
  const changed = await deps.db.transaction(async (tx) => {
    const { changes, found } = await writeExecutions(tx, now, {
      lock: [input.thingName],
      change: async ({ thingNames: locked }) => {
        if (locked.length === 0) return { changes: [], found: false };
        if (input.expectedVersion !== undefined) {
          const row = await selectThing(tx, input.thingName);
          if (row && row.version !== input.expectedVersion) {
            throw new FleetJobsError(
              'VersionMismatch',
              `thing ${input.thingName} is at version ${row.version}, not ${input.expectedVersion}`,
            );
          }
        }
        const changes = await removePendingExecutions(
          tx,
          {
            thingNames: locked,
            jobIds: null,
            thingArnPrefix: buildArn(deps.arn, 'thing', ''),
            groupArnPrefix: buildArn(deps.arn, 'thinggroup', ''),
          },
          now,
        );
        return { changes, found: true };
      },
    });
    if (!found) return false;
    await deleteThingRow(tx, input.thingName);
    return changes.length > 0;
  });
  if (changed) deps.outboxWritten();
}
