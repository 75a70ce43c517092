import { pino } from 'pino';
import type { Db } from '../../src/store/db.js';
import type { ServiceDeps } from '../../src/service/deps.js';
import { createTopicScheme } from '../../src/protocol/topics.js';

/** Service deps over a test database with a clock the test moves by hand. */
export function workerDeps(db: Db, start: Date): ServiceDeps & { setNow(d: Date): void } {
  let now = start;
  return {
    db,
    clock: () => now,
    setNow: (d: Date) => {
      now = d;
    },
    log: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    arn: { region: 'local', accountId: '000000000000' },
    topics: createTopicScheme(),
    outboxWritten: () => {},
  };
}

export const minutes = (d: Date, m: number): Date => new Date(d.getTime() + m * 60_000);
export const seconds = (d: Date, s: number): Date => new Date(d.getTime() + s * 1000);
