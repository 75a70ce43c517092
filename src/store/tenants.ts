import type { Queryable } from './db.js';

/** A tenant (migration 0008). Its rows are everything whose tenant_id names it. */
export interface TenantRow {
  tenantId: string;
  description: string | null;
  createdAt: Date;
}

const COLUMNS = 'tenant_id, description, created_at';

/** Creates the tenant, or sets the description of an existing one. */
export async function upsertTenant(
  db: Queryable,
  tenant: { tenantId: string; description: string | null },
  now: Date,
): Promise<TenantRow & { created: boolean }> {
  const rows = await db.query<TenantRow & { created: boolean }>(
    `INSERT INTO tenants (tenant_id, description, created_at) VALUES ($1, $2, $3)
     ON CONFLICT (tenant_id) DO UPDATE SET description = excluded.description
     RETURNING ${COLUMNS}, (xmax = 0) AS created`,
    [tenant.tenantId, tenant.description, now],
  );
  return rows[0] as TenantRow & { created: boolean };
}

export async function selectTenant(db: Queryable, tenantId: string): Promise<TenantRow | undefined> {
  const rows = await db.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE tenant_id = $1`, [tenantId]);
  return rows[0];
}

/** One page in id order, after the tenant named by `after`. */
export async function selectTenantsPage(
  db: Queryable,
  q: { after: string | null; limit: number },
): Promise<TenantRow[]> {
  return db.query<TenantRow>(
    `SELECT ${COLUMNS} FROM tenants WHERE ($1::text IS NULL OR tenant_id > $1) ORDER BY tenant_id LIMIT $2`,
    [q.after, q.limit],
  );
}
