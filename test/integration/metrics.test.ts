import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import type { FleetJobs } from '../../src/app.js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';
import { connectDevice, deviceRequest } from '../helpers/mqtt.js';

/**
 * Prometheus text format to `name{a="b"}` -> value; every sample must follow the TYPE line of its family. prom-client
 * writes NaN as `Nan` (a summary of no samples yet), which Prometheus parses case-insensitively.
 */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    const m = /^(([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?) (-?[0-9.e+-]+|[+-]?Inf|NaN|Nan)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const name = m[2] as string;
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(family)) throw new Error(`sample ${name} has no TYPE line`);
    out.set(m[1] as string, Number(m[3]));
  }
  return out;
}

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

describe.each(BACKENDS)('GET /metrics by prom-client on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let device: MqttClient;
  const scrape = async () => (await fetch(`${app.addresses.http}/metrics`)).text();
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${app.addresses.http}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({ db: t.db });
    expect((await api('POST', '/things/meter-1', {})).status).toBe(200);
    device = await connectDevice(app.addresses.mqtt, { clientId: 'meter-1' });
  });
  afterAll(async () => {
    await device.endAsync();
    await app.close();
    await t.close();
  });

  it(`passes ${hasPromtool ? 'promtool check metrics' : 'a strict parse (promtool is not installed)'}`, async () => {
    const text = await scrape();
    if (hasPromtool) {
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(check.stdout + check.stderr).toBe('');
      expect(check.status).toBe(0);
    }
    const m = parseMetrics(text);
    expect(m.get('fleetjobs_database_up')).toBe(1);
    expect(m.get('process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(m.has('nodejs_eventloop_lag_p99_seconds')).toBe(true);
  });

  it('moves the device, batch, error and store metrics after real MQTT and HTTP traffic', async () => {
    const before = parseMetrics(await scrape());
    const delta = (m: Map<string, number>, key: string) => (m.get(key) ?? 0) - (before.get(key) ?? 0);
    expect((await api('PUT', '/jobs/meter-job', { targets: ['thing/meter-1'], document: '{}' })).status).toBe(
      200,
    );
    expect((await api('GET', '/jobs/no-such-job')).status).toBe(404);

    const root = '$aws/things/meter-1/jobs';
    const started = await deviceRequest(device, `${root}/start-next`, { clientToken: 's' });
    expect(started.json).toMatchObject({ execution: { jobId: 'meter-job', status: 'IN_PROGRESS' } });
    const done = await deviceRequest(device, `${root}/meter-job/update`, {
      clientToken: 'u',
      status: 'SUCCEEDED',
    });
    expect(done.outcome).toBe('accepted');
    const missing = await deviceRequest(device, `${root}/no-such-job/update`, {
      clientToken: 'm',
      status: 'SUCCEEDED',
    });
    expect(missing.json).toMatchObject({ code: 'ResourceNotFound' });

    const after = parseMetrics(await scrape());
    const requests = (operation: string, outcome: string) =>
      `fleetjobs_device_requests_total{transport="mqtt",operation="${operation}",outcome="${outcome}"}`;
    expect(delta(after, requests('StartNextPendingJobExecution', 'accepted'))).toBe(1);
    expect(delta(after, requests('UpdateJobExecution', 'accepted'))).toBe(1);
    expect(delta(after, requests('UpdateJobExecution', 'ResourceNotFound'))).toBe(1);
    expect(
      delta(
        after,
        'fleetjobs_device_request_duration_seconds_count{transport="mqtt",operation="UpdateJobExecution"}',
      ),
    ).toBe(2);
    expect(
      delta(
        after,
        'fleetjobs_device_request_duration_seconds_sum{transport="mqtt",operation="UpdateJobExecution"}',
      ),
    ).toBeGreaterThan(0);
    expect(delta(after, 'fleetjobs_device_batch_transaction_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(delta(after, 'fleetjobs_device_batch_writes_sum')).toBeGreaterThanOrEqual(2);
    expect(delta(after, 'fleetjobs_errors_total{surface="operator",code="ResourceNotFoundException"}')).toBe(
      1,
    );
    expect(delta(after, 'fleetjobs_errors_total{surface="device-mqtt",code="ResourceNotFound"}')).toBe(1);
    expect(after.get('fleetjobs_jobs{status="COMPLETED"}')).toBe(1);
    expect(after.get('fleetjobs_jobs{status="IN_PROGRESS"}')).toBe(0);
  });
});
