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
