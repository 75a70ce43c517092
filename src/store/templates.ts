import type { Queryable } from './db.js';
import { translatePgError } from './errors.js';

export interface JobTemplateRow {
  jobTemplateId: string;
  /** The version this row's content is: the latest one (job_templates) or the one asked for (versions). */
  versionNumber: number;
  description: string;
  document: string | null;
  documentSource: string | null;
  /** Everything else the template carries, as given (timeoutConfig, jobExecutionsRetryConfig, ...). */
  config: Record<string, unknown>;
  createdAt: Date;
}

export type TemplateContent = Omit<JobTemplateRow, 'jobTemplateId' | 'versionNumber' | 'createdAt'>;

const TEMPLATE_COLUMNS =
  'job_template_id, version_number, description, document, document_source, config, created_at';

/**
 * A new template at its first version (versionNumber as given: 1, or the first of an imported history), in the
 * caller's transaction.
 */
export async function insertJobTemplate(
  tx: Queryable,
  t: TemplateContent & { jobTemplateId: string; versionNumber: number },
  now: Date,
): Promise<JobTemplateRow> {
  try {
    const rows = await tx.query<JobTemplateRow>(
      `INSERT INTO job_templates (job_template_id, version_number, description, document, document_source, config,
         created_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING ${TEMPLATE_COLUMNS}`,
      [t.jobTemplateId, t.versionNumber, t.description, t.document, t.documentSource, t.config, now],
    );
    await insertJobTemplateVersionRow(tx, t, now);
    return rows[0] as JobTemplateRow;
  } catch (err) {
    translatePgError(err, { resource: 'job template', id: t.jobTemplateId });
  }
}

async function insertJobTemplateVersionRow(
  tx: Queryable,
  t: TemplateContent & { jobTemplateId: string; versionNumber: number },
  now: Date,
): Promise<void> {
  await tx.query(
    `INSERT INTO job_template_versions (job_template_id, version_number, description, document, document_source,
       config, created_at)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)`,
    [t.jobTemplateId, t.versionNumber, t.description, t.document, t.documentSource, t.config, now],
  );
}

/**
 * A template's next version: the versions row and the template's latest content, guarded by the version read
 * (`expectedVersion`), so two concurrent new versions cannot both become version n + 1. Undefined when the
 * template is gone or moved on meanwhile.
 */
export async function insertNextJobTemplateVersion(
  tx: Queryable,
  t: TemplateContent & { jobTemplateId: string; expectedVersion: number; versionNumber?: number },
  now: Date,
): Promise<JobTemplateRow | undefined> {
  const versionNumber = t.versionNumber ?? t.expectedVersion + 1;
  const rows = await tx.query<JobTemplateRow>(
    `UPDATE job_templates SET version_number = $2, description = $3, document = $4, document_source = $5,
       config = $6::jsonb
     WHERE job_template_id = $1 AND version_number = $7
     RETURNING ${TEMPLATE_COLUMNS}`,
    [
      t.jobTemplateId,
      versionNumber,
      t.description,
      t.document,
      t.documentSource,
      t.config,
      t.expectedVersion,
    ],
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  await insertJobTemplateVersionRow(tx, { ...t, versionNumber }, now);
  return { ...row, createdAt: now };
}

export async function selectJobTemplate(
  db: Queryable,
  jobTemplateId: string,
): Promise<JobTemplateRow | undefined> {
  const rows = await db.query<JobTemplateRow>(
    `SELECT ${TEMPLATE_COLUMNS} FROM job_templates WHERE job_template_id = $1`,
    [jobTemplateId],
  );
  return rows[0];
}

/** One version of a template (created_at is that version's). */
export async function selectJobTemplateVersion(
  db: Queryable,
  jobTemplateId: string,
  versionNumber: number,
): Promise<JobTemplateRow | undefined> {
  const rows = await db.query<JobTemplateRow>(
    `SELECT ${TEMPLATE_COLUMNS} FROM job_template_versions WHERE job_template_id = $1 AND version_number = $2`,
    [jobTemplateId, versionNumber],
  );
  return rows[0];
}

/** A template's versions in number order, after a page's last (or all of them, for an export). */
export async function selectJobTemplateVersionsPage(
  db: Queryable,
  args: { jobTemplateId: string; after: number | null; limit: number | null },
): Promise<JobTemplateRow[]> {
  return db.query<JobTemplateRow>(
    `SELECT ${TEMPLATE_COLUMNS} FROM job_template_versions
     WHERE job_template_id = $1 AND ($2::int IS NULL OR version_number > $2)
     ORDER BY version_number LIMIT $3`,
    [args.jobTemplateId, args.after, args.limit],
  );
}

export async function selectJobTemplatesPage(
  db: Queryable,
  args: { after: string | null; limit: number },
): Promise<JobTemplateRow[]> {
  return db.query<JobTemplateRow>(
    `SELECT ${TEMPLATE_COLUMNS} FROM job_templates WHERE ($1::text IS NULL OR job_template_id > $1)
     ORDER BY job_template_id LIMIT $2`,
    [args.after, args.limit],
  );
}

export async function deleteJobTemplateRow(db: Queryable, jobTemplateId: string): Promise<boolean> {
  const rows = await db.query(
    `DELETE FROM job_templates WHERE job_template_id = $1 RETURNING job_template_id`,
    [jobTemplateId],
  );
  return rows.length > 0;
}
