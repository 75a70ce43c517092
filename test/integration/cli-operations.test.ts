import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFile } from 'node:fs/promises';
import {
  IoTJobsDataPlaneClient,
  StartNextPendingJobExecutionCommand,
  UpdateJobExecutionCommand,
} from '@aws-sdk/client-iot-jobs-data-plane';
import type { FleetJobs } from '../../src/app.js';
import { CONFIG_VARS, flagName } from '../../src/config.js';
import { main } from '../../src/cli/main.js';
import { runOperatorCli } from '../../src/cli/commands/index.js';
import { BACKENDS, createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';

describe.each(BACKENDS)('CLI: executions, device credentials and watch exit codes on %s', (backend) => {
  let t: TestDb;
  let app: FleetJobs;
  let device: IoTJobsDataPlaneClient;

  async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await runOperatorCli(argv, {
      env: { FLEETJOBS_API: app.addresses.http },
      out: { write: (s: string) => (out += s) },
      err: { write: (s: string) => (err += s) },
      readFile: (p) => readFile(p, 'utf8'),
    });
    return { code, out, err };
  }

  /** A device takes its next execution over the HTTPS data plane and ends it with `status`. */
  async function finish(thingName: string, status: 'SUCCEEDED' | 'FAILED', details?: Record<string, string>) {
    const { execution } = await device.send(new StartNextPendingJobExecutionCommand({ thingName }));
    await device.send(
      new UpdateJobExecutionCommand({
        thingName,
        jobId: execution?.jobId,
        status,
        ...(details ? { statusDetails: details } : {}),
      }),
    );
  }

  beforeAll(async () => {
    t = await createTestDb(backend);
    app = await startTestServer({ db: t.db, config: { deviceHttpPort: 0 } });
    device = new IoTJobsDataPlaneClient({
      endpoint: app.addresses.deviceHttp as string,
      region: 'local',
      credentials: { accessKeyId: 'dummy', secretAccessKey: 'dummy' },
      maxAttempts: 1,
    });
    for (const name of ['ops-1', 'ops-2']) expect((await cli(['things', 'create', name])).code).toBe(0);
  });
  afterAll(async () => {
    device?.destroy();
    await app?.close();
    await t?.close();
  });

  it('watch exits 4 when a job completes with a failed execution, and executions list shows which device and why', async () => {
    const created = await cli([
      'jobs',
      'create',
      'ops-job',
      '--target',
      'thing/ops-1',
      '--target',
      'thing/ops-2',
      '--document',
      '{"op":"update"}',
    ]);
    expect(created.code).toBe(0);
    await finish('ops-1', 'SUCCEEDED');
    await finish('ops-2', 'FAILED', { reason: 'disk-full' });

    const watched = await cli(['jobs', 'watch', 'ops-job', '--interval', '0.05']);
    expect(watched.code).toBe(4);
    expect(watched.out).toMatch(/COMPLETED {2}succeeded 1, failed 1/);
    expect(watched.err).toBe(
      'job ops-job completed with 1 failed; fleetjobs executions list --job ops-job --details shows which ' +
        'devices and why\n',
    );

    const failed = await cli(['executions', 'list', '--job', 'ops-job', '--status', 'FAILED', '--details']);
    expect(failed.code).toBe(0);
    const lines = failed.out.trim().split('\n');
    expect(lines[0]).toMatch(/^THING\s+STATUS\s+EXECUTION\s+RETRY\s+STARTED\s+UPDATED\s+STATUS DETAILS$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^ops-2\s+FAILED\s+1\s+0\s+\S+Z\s+\S+Z\s+reason=disk-full$/);

    const all = await cli(['executions', 'list', '--job', 'ops-job', '--json']);
    expect(JSON.parse(all.out)).toEqual({
      executions: [
        expect.objectContaining({ jobId: 'ops-job', thingName: 'ops-1', status: 'SUCCEEDED' }),
        expect.objectContaining({ jobId: 'ops-job', thingName: 'ops-2', status: 'FAILED' }),
      ],
    });

    const ofThing = await cli(['executions', 'list', '--thing', 'ops-2']);
    expect(ofThing.out.trim().split('\n')[1]).toMatch(/^ops-job\s+FAILED\s+1/);

    const described = await cli(['executions', 'describe', 'ops-job', 'ops-2']);
    expect(described.code).toBe(0);
    expect(described.out).toMatch(/status\s+FAILED/);
    expect(described.out).toMatch(/statusDetails\s+reason=disk-full/);
    expect(described.out).toMatch(/thingName\s+ops-2/);

    expect((await cli(['executions', 'list'])).code).toBe(2);
    expect((await cli(['executions', 'describe', 'ops-job', 'nobody'])).code).toBe(1);
  });

  it('watch exits 0 when every execution succeeded', async () => {
    expect(
      (await cli(['jobs', 'create', 'ops-ok', '--target', 'thing/ops-1', '--document', '{}'])).code,
    ).toBe(0);
    await finish('ops-1', 'SUCCEEDED');
    expect(await cli(['jobs', 'watch', 'ops-ok', '--interval', '0.05'])).toMatchObject({ code: 0, err: '' });
  });

  it('creates, lists, rotates and revokes device secrets', async () => {
    const first = await cli(['things', 'credentials', 'create', 'ops-1', '--json']);
    expect(first.code).toBe(0);
    const one = JSON.parse(first.out) as { credentialId: string; secret: string };
    expect(one.secret.length).toBeGreaterThan(20);

    const second = await cli(['things', 'credentials', 'create', 'ops-1']);
    expect(second.out).toMatch(/^secret \S+ for ops-1 \(shown only now\):\n\S{20,}\n$/);

    const listed = await cli(['things', 'credentials', 'list', 'ops-1']);
    expect(listed.out.trim().split('\n').slice(1)).toHaveLength(2);
    expect(listed.out).not.toContain(one.secret);

    const rotated = await cli(['things', 'credentials', 'rotate', 'ops-1', '--json']);
    const r = JSON.parse(rotated.out) as { credentialId: string; revokedCredentialIds: string[] };
    expect(r.revokedCredentialIds).toContain(one.credentialId);
    expect(r.revokedCredentialIds).toHaveLength(2);

    const revokedOne = await cli(['things', 'credentials', 'revoke', 'ops-1', r.credentialId]);
    expect(revokedOne).toMatchObject({
      code: 0,
      out: `revoked ${r.credentialId}; sessions they opened are closed\n`,
    });
    expect((await cli(['things', 'credentials', 'revoke', 'ops-1'])).out).toBe(
      'no active secret of ops-1 to revoke\n',
    );
    const after = await cli(['things', 'credentials', 'list', 'ops-1', '--json']);
    const statuses = (JSON.parse(after.out) as { credentials: { status: string }[] }).credentials.map(
      (c) => c.status,
    );
    expect(statuses).toEqual(['REVOKED', 'REVOKED', 'REVOKED']);

    expect((await cli(['things', 'credentials', 'frobnicate', 'ops-1'])).code).toBe(2);
    expect((await cli(['things', 'credentials', 'create', 'no-such-thing'])).code).toBe(1);
  });
});

describe('fleetjobs --version and serve --help', () => {
  async function run(argv: string[]): Promise<{ code: number; out: string }> {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const code = await main(argv);
      return { code, out: log.mock.calls.map((c) => String(c[0])).join('\n') };
    } finally {
      log.mockRestore();
    }
  }

  it('prints the package version', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(await run(['--version'])).toEqual({ code: 0, out: `fleetjobs ${pkg.version}` });
  });

  it('lists every serve flag with its environment variable, without starting anything', async () => {
    const { code, out } = await run(['serve', '--help']);
    expect(code).toBe(0);
    for (const v of CONFIG_VARS) expect(out).toMatch(new RegExp(`^  ${flagName(v)} VALUE +${v}: \\S`, 'm'));
  });
});
