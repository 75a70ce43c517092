import { FleetJobsError } from '../protocol/errors.js';
import { LIMITS } from '../protocol/limits.js';
import { selectTenant, selectTenantsPage, upsertTenant, type TenantRow } from '../store/tenants.js';
import type { ServiceDeps } from './deps.js';
import { decodeToken, page, pageLimit } from './pagination.js';
import { awsTime, compact } from './views.js';

/**
 * Tenants (docs/tenants.md): isolated parts of one deployment. An operator key belongs to one; its requests see and
 * change that tenant's things, groups, jobs, templates, schedules, events and keys only, which row-level security
 * enforces (migration 0008). The default tenant is the deployment's own: every key made before tenants existed,
 * every row written then, and the keys that manage tenants. These operations run on the system db: tenants are
 * the deployment's, not a tenant's.
 */
export const DEFAULT_TENANT_ID = 'default';
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

function tenantView(row: TenantRow) {
  return compact({
    tenantId: row.tenantId,
    description: row.description ?? undefined,
    createdAt: awsTime(row.createdAt),
  });
}

function checkTenantId(tenantId: string): void {
  if (!TENANT_ID_PATTERN.test(tenantId)) {
    throw new FleetJobsError(
      'InvalidRequest',
      `tenantId ${tenantId} is not valid: 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit`,
    );
  }
}

/** PutTenant: creates the tenant, or updates its description. */
export async function putTenant(
  deps: ServiceDeps,
  input: { tenantId: string; description?: string | undefined },
): Promise<ReturnType<typeof tenantView> & { created: boolean }> {
  checkTenantId(input.tenantId);
  if (input.description !== undefined && input.description.length > LIMITS.MAX_DESCRIPTION_CHARS) {
    throw new FleetJobsError('InvalidRequest', `description is longer than ${LIMITS.MAX_DESCRIPTION_CHARS}`);
  }
  const row = await upsertTenant(
    deps.db,
    { tenantId: input.tenantId, description: input.description ?? null },
    deps.clock(),
  );
  return { ...tenantView(row), created: row.created };
}

export async function describeTenant(deps: ServiceDeps, tenantId: string) {
  const row = TENANT_ID_PATTERN.test(tenantId) ? await selectTenant(deps.db, tenantId) : undefined;
  if (row === undefined) throw new FleetJobsError('ResourceNotFound', `tenant ${tenantId} does not exist`);
  return tenantView(row);
}

/** Fails unless the tenant exists: keys are made for existing tenants only. */
export async function requireTenant(deps: ServiceDeps, tenantId: string): Promise<void> {
  await describeTenant(deps, tenantId);
}

export async function listTenants(deps: ServiceDeps, q: { maxResults?: number; nextToken?: string }) {
  const limit = pageLimit(q.maxResults);
  const after = decodeToken('tenants', q.nextToken, ['string']);
  const rows = await selectTenantsPage(deps.db, { after: (after?.[0] as string) ?? null, limit: limit + 1 });
  const p = page(rows, limit, 'tenants', (r) => [r.tenantId]);
  return { tenants: p.items.map(tenantView), ...(p.nextToken ? { nextToken: p.nextToken } : {}) };
}
