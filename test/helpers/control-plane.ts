import { pino } from 'pino';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/http/app.js';
import { createTopicScheme } from '../../src/protocol/topics.js';
import type { ServiceDeps } from '../../src/service/deps.js';
import { createTestDb, type Backend, type TestDb } from './db.js';

export interface ControlPlane {
  t: TestDb;
  deps: ServiceDeps;
  app: FastifyInstance;
  /** Moves the service clock. */
  setNow(date: Date): void;
  /** How many times a change told the outbox dispatcher to run. */
  outboxKicks(): number;
  /** inject() with a JSON body; returns status, parsed body and the AWS error name. */
  call(
    method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    body?: unknown,
  ): Promise<{
    status: number;
    body: Record<string, unknown>;
    error: string | undefined;
    raw: LightMyRequestResponse;
  }>;
  close(): Promise<void>;
}

/** The operator API as a plugin on a fresh database, driven through inject() (auth off). */
export async function createControlPlane(
  backend: Backend,
  options: { max?: number } = {},
): Promise<ControlPlane> {
  const t = await createTestDb(backend, options);
  let now = new Date('2026-01-01T00:00:00.000Z');
  let kicks = 0;
  const deps: ServiceDeps = {
    db: t.db,
    clock: () => now,
    log: pino({ level: 'silent' }),
    arn: { region: 'local', accountId: '000000000000' },
    topics: createTopicScheme(),
    outboxWritten: () => {
      kicks++;
    },
  };
  const app = await buildApp(
    { ...deps, isReady: () => true },
    { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) },
  );
  await app.ready();
  return {
    t,
    deps,
    app,
    setNow: (d) => {
      now = d;
    },
    outboxKicks: () => kicks,
    async call(method, url, body) {
      const raw = await app.inject({
        method,
        url,
        ...(body === undefined ? {} : { payload: body as object }),
      });
      const text = raw.body;
      return {
        status: raw.statusCode,
        body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
        error: raw.headers['x-amzn-errortype'] as string | undefined,
        raw,
      };
    },
    async close() {
      await app.close();
      await t.close();
    },
  };
}
