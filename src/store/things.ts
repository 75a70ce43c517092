import { randomUUID } from 'node:crypto';
import type { Queryable } from './db.js';
import { translatePgError } from './errors.js';
import type { ThingGroupRow, ThingRow } from './rows.js';

const THING_COLUMNS = 'thing_name, thing_id, thing_type_name, attributes, version, created_at';
const GROUP_COLUMNS = 'thing_group_name, thing_group_id, description, attributes, version, created_at';

export async function insertThing(
  db: Queryable,
  thing: {
    thingName: string;
    thingTypeName?: string | undefined;
    attributes?: Record<string, string> | undefined;
  },
  now: Date,
): Promise<ThingRow> {
  try {
    const rows = await db.query<ThingRow>(
      `INSERT INTO things (thing_name, thing_id, thing_type_name, attributes, created_at)
       VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING ${THING_COLUMNS}`,
      [thing.thingName, randomUUID(), thing.thingTypeName ?? null, thing.attributes ?? {}, now],
    );
    return rows[0] as ThingRow;
  } catch (err) {
    translatePgError(err, { resource: 'thing', id: thing.thingName });
  }
}

/** Many things in one statement (tests, benchmarks, bulk registration); existing names are skipped. */
export async function insertThings(db: Queryable, thingNames: readonly string[], now: Date): Promise<number> {
  const rows = await db.query<{ n: number }>(
    `WITH ins AS (
       INSERT INTO things (thing_name, thing_id, created_at)
       SELECT n, gen_random_uuid(), $2 FROM unnest($1::text[]) AS n
       ON CONFLICT (thing_name) DO NOTHING RETURNING 1)
     SELECT count(*) AS n FROM ins`,
    [thingNames, now],
  );
  return rows[0]?.n ?? 0;
}

export async function selectThing(db: Queryable, thingName: string): Promise<ThingRow | undefined> {
  const rows = await db.query<ThingRow>(`SELECT ${THING_COLUMNS} FROM things WHERE thing_name = $1`, [
    thingName,
  ]);
  return rows[0];
}

/** The tenant a thing belongs to (migration 0008), or undefined when there is no such thing. */
export async function selectThingTenant(db: Queryable, thingName: string): Promise<string | undefined> {
  const rows = await db.query<{ tenantId: string }>(`SELECT tenant_id FROM things WHERE thing_name = $1`, [
    thingName,
  ]);
  return rows[0]?.tenantId;
}

export async function insertThingGroup(
  db: Queryable,
  group: {
    thingGroupName: string;
    description?: string | undefined;
    attributes?: Record<string, string> | undefined;
  },
  now: Date,
): Promise<ThingGroupRow> {
  try {
    const rows = await db.query<ThingGroupRow>(
      `INSERT INTO thing_groups (thing_group_name, thing_group_id, description, attributes, created_at)
       VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING ${GROUP_COLUMNS}`,
      [group.thingGroupName, randomUUID(), group.description ?? null, group.attributes ?? {}, now],
    );
    return rows[0] as ThingGroupRow;
  } catch (err) {
    translatePgError(err, { resource: 'thing group', id: group.thingGroupName });
  }
}

export async function selectThingGroup(
  db: Queryable,
  thingGroupName: string,
): Promise<ThingGroupRow | undefined> {
  const rows = await db.query<ThingGroupRow>(
    `SELECT ${GROUP_COLUMNS} FROM thing_groups WHERE thing_group_name = $1`,
    [thingGroupName],
  );
  return rows[0];
}

/** Adds things to a group in one statement; returns the names that were not members before. */
export async function insertGroupMembers(
  db: Queryable,
  thingGroupName: string,
  thingNames: readonly string[],
  now: Date,
): Promise<string[]> {
  const rows = await db.query<{ thingName: string }>(
    `INSERT INTO thing_group_members (thing_group_name, thing_name, added_at)
     SELECT $1, n, $3 FROM unnest($2::text[]) AS n
     ON CONFLICT DO NOTHING RETURNING thing_name`,
    [thingGroupName, thingNames, now],
  );
  return rows.map((r) => r.thingName);
}

/** A page of things in name order, after the given name; limit + 1 rows tell the caller whether more follow. */
export async function selectThingsPage(
  db: Queryable,
  args: {
    after: string | null;
    limit: number;
    attributeName?: string | undefined;
    attributeValue?: string | undefined;
    thingTypeName?: string | undefined;
  },
): Promise<ThingRow[]> {
  return db.query<ThingRow>(
    `SELECT ${THING_COLUMNS} FROM things
     WHERE ($1::text IS NULL OR thing_name > $1)
       AND ($2::text IS NULL OR attributes ? $2)
       AND ($3::text IS NULL OR attributes ->> $2 = $3)
       AND ($4::text IS NULL OR thing_type_name = $4)
     ORDER BY thing_name LIMIT $5`,
    [
      args.after,
      args.attributeName ?? null,
      args.attributeValue ?? null,
      args.thingTypeName ?? null,
      args.limit,
    ],
  );
}

/** Deletes a thing (its memberships go with it); the thing must be locked. Returns false if it was not there. */
export async function deleteThingRow(tx: Queryable, thingName: string): Promise<boolean> {
  const rows = await tx.query(`DELETE FROM things WHERE thing_name = $1 RETURNING thing_name`, [thingName]);
  return rows.length > 0;
}

export async function selectThingGroupsPage(
  db: Queryable,
  args: { after: string | null; limit: number; namePrefixFilter?: string | undefined },
): Promise<ThingGroupRow[]> {
  return db.query<ThingGroupRow>(
    `SELECT ${GROUP_COLUMNS} FROM thing_groups
     WHERE ($1::text IS NULL OR thing_group_name > $1)
       AND ($2::text IS NULL OR starts_with(thing_group_name, $2))
     ORDER BY thing_group_name LIMIT $3`,
    [args.after, args.namePrefixFilter ?? null, args.limit],
  );
}

/**
 * Takes the row lock of each thing, in name order; returns the things that exist. Every transaction that changes
 * a thing's executions takes it first (the write funnel, funnel.ts), so per-thing changes serialize (two
 * start-next of one thing never claim two heads) and the notifications' head comparison always sees the
 * committed state of every other writer.
 */
export async function lockThings(tx: Queryable, thingNames: readonly string[]): Promise<string[]> {
  if (thingNames.length === 0) return [];
  const rows = await tx.query<{ thingName: string }>(
    `SELECT thing_name FROM things WHERE thing_name = ANY($1::text[]) ORDER BY thing_name FOR UPDATE`,
    [thingNames],
  );
  return rows.map((r) => r.thingName);
}

/**
 * Locks thing groups, in name order, and returns those that exist. Membership changes take a share lock,
 * CreateJob and AssociateTargetsWithJob of a CONTINUOUS job an exclusive one before expanding the groups: a thing
 * joining a group at that moment then either is expanded by the job or sees the committed job and gets its
 * execution. Lock order: thing groups, things, executions, jobs.
 */
export async function lockThingGroups(
  tx: Queryable,
  groupNames: readonly string[],
  mode: 'share' | 'update',
): Promise<string[]> {
  if (groupNames.length === 0) return [];
  const rows = await tx.query<{ thingGroupName: string }>(
    `SELECT thing_group_name FROM thing_groups WHERE thing_group_name = ANY($1::text[])
     ORDER BY thing_group_name FOR ${mode === 'share' ? 'SHARE' : 'UPDATE'}`,
    [groupNames],
  );
  return rows.map((r) => r.thingGroupName);
}

export async function deleteThingGroupRow(tx: Queryable, thingGroupName: string): Promise<boolean> {
  const rows = await tx.query(
    `DELETE FROM thing_groups WHERE thing_group_name = $1 RETURNING thing_group_name`,
    [thingGroupName],
  );
  return rows.length > 0;
}

/** Removes one membership; returns false if the thing was not a member. */
export async function deleteGroupMember(
  tx: Queryable,
  thingGroupName: string,
  thingName: string,
): Promise<boolean> {
  const rows = await tx.query(
    `DELETE FROM thing_group_members WHERE thing_group_name = $1 AND thing_name = $2 RETURNING thing_name`,
    [thingGroupName, thingName],
  );
  return rows.length > 0;
}

export async function selectGroupMemberNames(db: Queryable, thingGroupName: string): Promise<string[]> {
  const rows = await db.query<{ thingName: string }>(
    `SELECT thing_name FROM thing_group_members WHERE thing_group_name = $1 ORDER BY thing_name`,
    [thingGroupName],
  );
  return rows.map((r) => r.thingName);
}

export async function selectGroupMembersPage(
  db: Queryable,
  args: { thingGroupName: string; after: string | null; limit: number },
): Promise<string[]> {
  const rows = await db.query<{ thingName: string }>(
    `SELECT thing_name FROM thing_group_members
     WHERE thing_group_name = $1 AND ($2::text IS NULL OR thing_name > $2)
     ORDER BY thing_name LIMIT $3`,
    [args.thingGroupName, args.after, args.limit],
  );
  return rows.map((r) => r.thingName);
}

/** The groups a thing is in, other than the one given. */
export async function selectOtherGroupNamesOfThing(
  db: Queryable,
  thingName: string,
  exceptGroup: string,
): Promise<string[]> {
  const rows = await db.query<{ thingGroupName: string }>(
    `SELECT thing_group_name FROM thing_group_members WHERE thing_name = $1 AND thing_group_name <> $2
     ORDER BY thing_group_name`,
    [thingName, exceptGroup],
  );
  return rows.map((r) => r.thingGroupName);
}

export async function selectThingGroupById(
  db: Queryable,
  thingGroupId: string,
): Promise<ThingGroupRow | undefined> {
  const rows = await db.query<ThingGroupRow>(
    `SELECT ${GROUP_COLUMNS} FROM thing_groups WHERE thing_group_id::text = $1`,
    [thingGroupId],
  );
  return rows[0];
}
