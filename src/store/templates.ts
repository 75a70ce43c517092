import type { Queryable } from './db.js';
import { translatePgError } from './errors.js';

export interface JobTemplateRow {
  jobTemplateId: string;
  description: string;
  document: string | null;
  documentSource: string | null;
  /** Everything else the template carries, as given (timeoutConfig, jobExecutionsRetryConfig, ...). */
  config: Record<string, unknown>;
  createdAt: Date;
}

const TEMPLATE_COLUMNS = 'job_template_id, description, document, document_source, config, created_at';

export async function insertJobTemplate(
  db: Queryable,
  t: Omit<JobTemplateRow, 'createdAt'>,
  now: Date,
): Promise<JobTemplateRow> {
  try {
    const rows = await db.query<JobTemplateRow>(
      `INSERT INTO job_templates (job_template_id, description, document, document_source, config, created_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING ${TEMPLATE_COLUMNS}`,
      [t.jobTemplateId, t.description, t.document, t.documentSource, t.config, now],
    );
    return rows[0] as JobTemplateRow;
  } catch (err) {
    translatePgError(err, { resource: 'job template', id: t.jobTemplateId });
  }
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
