import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyInstance } from 'fastify';

/**
 * The tenant of the operator request being served, for the tenant db the routes' services run on
 * (src/store/db.ts tenantDb). A scope opens at the first hook of every request, empty; authentication fills it
 * (src/http/auth.ts). A statement outside a scope, or before authentication, runs nothing.
 */
const scope = new AsyncLocalStorage<{ tenantId: string | undefined }>();

export function installTenantScope(app: FastifyInstance): void {
  // Callback style: the rest of the request (hooks, handler) continues inside the scope.
  app.addHook('onRequest', (_request, _reply, done) => scope.run({ tenantId: undefined }, done));
}

/** Called once the request's key is known. */
export function setRequestTenant(tenantId: string): void {
  const current = scope.getStore();
  if (current === undefined)
    throw new Error('no tenant scope: installTenantScope runs before authentication');
  current.tenantId = tenantId;
}

/** The request's tenant; throws outside an authenticated request, so nothing runs unscoped. */
export function requestTenant(): string {
  const tenantId = scope.getStore()?.tenantId;
  if (tenantId === undefined) throw new Error('no tenant: the statement is outside an authenticated request');
  return tenantId;
}

/** Runs fn as another tenant (a default-tenant admin acting on a tenant's keys). */
export function asTenant<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
  return scope.run({ tenantId }, fn);
}
