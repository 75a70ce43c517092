import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createFleetJobs, type FleetJobs } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createJob } from '../../src/service/create-job.js';
import { insertThings } from '../../src/store/things.js';
import type { Db } from '../../src/store/db.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';

/** Prometheus text format to `name{a="b"}` -> value, failing on a line that is not well formed. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|[+-]?Inf|NaN|Nan)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

const config = loadConfig({ HTTP_PORT: '0', MQTT_PORT: '0', AUTH_MODE: 'off', LOG_LEVEL: 'silent' });
const silent = pino({ level: 'silent' });

describe('GET /metrics on postgres', () => {
  let t: TestDb;
  let app: FleetJobs;
  const now = new Date('2026-03-01T12:00:00Z');

  beforeAll(async () => {
    t = await createTestDb('postgres');
    // Not started: no dispatcher drains the outbox, so the backlog is exactly what the test wrote.
    app = await createFleetJobs({ config, db: t.db, logger: silent, clock: () => now });
    await insertThings(t.db, ['m-1', 'm-2', 'm-3'], now);
    const earlier = { ...app.deps, clock: () => new Date(now.getTime() - 30_000) };
    await createJob(earlier, { jobId: 'm-job', targets: ['thing/m-1', 'thing/m-2'], document: '{}' });
    await t.db.query(`UPDATE job_executions SET status = 'SUCCEEDED' WHERE thing_name = 'm-2'`);
  });
  afterAll(async () => {
    await app.close();
    await t.close();
  });

  it('reports jobs and executions by status, the outbox backlog and process metrics', async () => {
    const res = await app.http.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = parseMetrics(res.body);
    expect(m.get('fleetjobs_database_up')).toBe(1);
    expect(m.get('fleetjobs_jobs{status="IN_PROGRESS"}')).toBe(1);
    expect(m.get('fleetjobs_jobs{status="COMPLETED"}')).toBe(0);
    expect(m.get('fleetjobs_job_executions{status="QUEUED"}')).toBe(1);
    expect(m.get('fleetjobs_job_executions{status="SUCCEEDED"}')).toBe(1);
    expect(m.get('fleetjobs_job_executions{status="FAILED"}')).toBe(0);
    // CreateJob wrote notify and notify-next for each of the two things.
    expect(m.get('fleetjobs_outbox_backlog')).toBe(4);
    expect(m.get('fleetjobs_outbox_oldest_age_seconds')).toBe(30);
    expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(1_000_000);
    expect(m.get('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(m.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
  });

  it('recounts executions at most every 30 s, however often it is scraped', async () => {
    await t.db.query(`UPDATE job_executions SET status = 'IN_PROGRESS' WHERE thing_name = 'm-1'`);
    const m = parseMetrics((await app.http.inject({ method: 'GET', url: '/metrics' })).body);
    // The counts of the previous scrape, taken less than 30 s ago; jobs and the outbox are read afresh.
    expect(m.get('fleetjobs_job_executions{status="QUEUED"}')).toBe(1);
    expect(m.get('fleetjobs_job_executions{status="IN_PROGRESS"}')).toBe(0);
    expect(m.get('fleetjobs_outbox_backlog')).toBe(4);
  });

  it('counts device requests by transport, operation and outcome', async () => {
    app.deps.metrics?.deviceRequest('mqtt', 'UpdateJobExecution', 'VersionMismatch');
    app.deps.metrics?.deviceRequest('mqtt', 'UpdateJobExecution', 'VersionMismatch');
    app.deps.metrics?.deviceRequest('https', 'StartNextPendingJobExecution', 'accepted');
    const m = parseMetrics((await app.http.inject({ method: 'GET', url: '/metrics' })).body);
    expect(
      m.get(
        'fleetjobs_device_requests_total{transport="mqtt",operation="UpdateJobExecution",outcome="VersionMismatch"}',
      ),
    ).toBe(2);
    expect(
      m.get(
        'fleetjobs_device_requests_total{transport="https",operation="StartNextPendingJobExecution",outcome="accepted"}',
      ),
    ).toBe(1);
  });

  it('still answers, with fleetjobs_database_up 0, when the store fails', async () => {
    const down: Db = { ...t.db, query: () => Promise.reject(new Error('connection refused')) };
    const broken = await createFleetJobs({ config, db: down, logger: silent });
    try {
      const res = await broken.http.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      const m = parseMetrics(res.body);
      expect(m.get('fleetjobs_database_up')).toBe(0);
      expect(m.has('fleetjobs_jobs{status="IN_PROGRESS"}')).toBe(false);
      expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(0);
    } finally {
      await broken.close();
    }
  });
});

describe('/metrics of a running server on postgres', () => {
  let t: TestDb;
  let app: FleetJobs;
  beforeAll(async () => {
    t = await createTestDb('postgres');
    app = await startTestServer({ db: t.db });
  });
  afterAll(async () => {
    await app.close();
    await t.close();
  });

  it('counts MQTT device requests by operation and outcome', async () => {
    const client = await connectDevice(app.addresses.mqtt, { clientId: 'metrics-dev' });
    try {
      const ok = await deviceRequest(client, '$aws/things/metrics-dev/jobs/get', { clientToken: 'a' });
      expect(ok.outcome).toBe('accepted');
      const bad = await deviceRequest(client, '$aws/things/metrics-dev/jobs/j1/update', { clientToken: 'b' });
      expect(bad.json).toMatchObject({ code: 'InvalidRequest' });
    } finally {
      await client.endAsync();
    }
    const m = parseMetrics(await (await fetch(`${app.addresses.http}/metrics`)).text());
    expect(
      m.get(
        'fleetjobs_device_requests_total{transport="mqtt",operation="GetPendingJobExecutions",outcome="accepted"}',
      ),
    ).toBe(1);
    expect(
      m.get(
        'fleetjobs_device_requests_total{transport="mqtt",operation="UpdateJobExecution",outcome="InvalidRequest"}',
      ),
    ).toBe(1);
  });
});
