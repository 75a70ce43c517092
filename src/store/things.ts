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
