import { FleetJobsError } from '../protocol/errors.js';
import { pgErrorCode } from './db.js';

/**
 * Translates PostgreSQL errors at the store boundary ([STYLE Errors]): callers see FleetJobsError kinds, never
 * driver messages.
 */
export function translatePgError(err: unknown, what: { resource: string; id: string }): never {
  const code = pgErrorCode(err);
  if (code === '23505') {
    throw new FleetJobsError('ResourceAlreadyExists', `${what.resource} ${what.id} already exists`, {
      cause: err,
    });
  }
  // An upsert whose conflicting row is another tenant's meets that row's policy (migration 0008): the name is
  // taken, as by any other holder.
  if (code === '42501') {
    throw new FleetJobsError('ResourceAlreadyExists', `${what.resource} ${what.id} already exists`, {
      cause: err,
    });
  }
  if (code === '23503') {
    throw new FleetJobsError(
      'ResourceNotFound',
      `${what.resource} ${what.id} refers to something that does not exist`,
      {
        cause: err,
      },
    );
  }
  throw err;
}
