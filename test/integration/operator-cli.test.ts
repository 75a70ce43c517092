import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import {
  IoTJobsDataPlaneClient,
  StartNextPendingJobExecutionCommand,
  UpdateJobExecutionCommand,
} from '@aws-sdk/client-iot-jobs-data-plane';
import type { FleetJobs } from '../../src/app.js';
import { main } from '../../src/cli/main.js';
import { runOperatorCli, type CliIo } from '../../src/cli/commands/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';
import { startTestServer } from '../helpers/server.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

describe('operator CLI against a real server on postgres', () => {
  let t: TestDb;
  let app: FleetJobs;
  let api: string;
  let dir: string;
  let device: IoTJobsDataPlaneClient;

  /** Runs `fleetjobs <argv>` through the CLI entry function with FLEETJOBS_API pointing at the test server. */
  async function cli(argv: string[], onOut?: () => void, tty = false): Promise<Run> {
    let out = '';
    let err = '';
    const io: CliIo = {
      env: { FLEETJOBS_API: api },
      out: {
        write: (s: string) => {
          out += s;
          onOut?.();
        },
        isTTY: tty,
      },
      err: { write: (s: string) => (err += s) },
      readFile: (p) => readFile(p, 'utf8'),
    };
    const code = await runOperatorCli(argv, io);
    return { code, out, err };
  }

  beforeAll(async () => {
    t = await createTestDb('postgres');
    app = await startTestServer({ db: t.db, config: { deviceHttpPort: 0 } });
    api = app.addresses.http;
    dir = await mkdtemp(join(tmpdir(), 'fleetjobs-cli-'));
    device = new IoTJobsDataPlaneClient({
      endpoint: app.addresses.deviceHttp as string,
      region: 'local',
      credentials: { accessKeyId: 'dummy', secretAccessKey: 'dummy' },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    device?.destroy();
    await app?.close();
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates, describes, lists and deletes things', async () => {
    expect(
      await cli(['things', 'create', 'cli-1', '--attribute', 'model=x1', '--attribute', 'site=lab']),
    ).toMatchObject({
      code: 0,
      out: expect.stringContaining('created thing cli-1 (arn:aws:iot:local:000000000000:thing/cli-1)'),
    });
    for (const name of ['cli-2', 'cli-3', 'cli-gone'])
      expect((await cli(['things', 'create', name])).code).toBe(0);

    const described = await cli(['things', 'describe', 'cli-1']);
    expect(described.code).toBe(0);
    expect(described.out).toMatch(/attributes\s+model=x1,site=lab/);

    const json = await cli(['things', 'list', '--json']);
    expect(json.code).toBe(0);
    const names = (JSON.parse(json.out) as { things: { thingName: string }[] }).things.map(
      (x) => x.thingName,
    );
    expect(names.sort()).toEqual(['cli-1', 'cli-2', 'cli-3', 'cli-gone']);
    const capped = await cli(['things', 'list', '--json', '--max-results', '2']);
    expect((JSON.parse(capped.out) as { things: unknown[] }).things).toHaveLength(2);

    const table = await cli(['things', 'list']);
    expect(table.out.split('\n')[0]).toMatch(/^THING\s+VERSION\s+ATTRIBUTES$/);
    expect(table.out).toMatch(/cli-1\s+1\s+model=x1,site=lab/);

    expect((await cli(['things', 'delete', 'cli-gone'])).out).toBe('deleted thing cli-gone\n');
    const missing = await cli(['things', 'describe', 'cli-gone']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^error: ResourceNotFoundException: .*cli-gone/);
  });

  it('creates groups, adds and removes members, lists groups and members', async () => {
    expect((await cli(['groups', 'create', 'cli-fleet', '--description', 'lab devices'])).code).toBe(0);
    expect(await cli(['groups', 'add', 'cli-fleet', 'cli-1', 'cli-2', 'cli-3'])).toMatchObject({
      code: 0,
      out: 'added cli-1 to cli-fleet\nadded cli-2 to cli-fleet\nadded cli-3 to cli-fleet\n',
    });
    expect((await cli(['groups', 'remove', 'cli-fleet', 'cli-3'])).code).toBe(0);
    expect((await cli(['groups', 'members', 'cli-fleet'])).out.split('\n').filter(Boolean).sort()).toEqual([
      'cli-1',
      'cli-2',
    ]);
    const groups = await cli(['groups', 'list']);
    expect(groups.out).toMatch(/cli-fleet\s+arn:aws:iot:local:000000000000:thinggroup\/cli-fleet/);
    const unknown = await cli(['groups', 'add', 'no-such-group', 'cli-1']);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('ResourceNotFoundException');
  });

  it('creates a job from a document file, lists and describes it, and watches it to COMPLETED', async () => {
    const file = join(dir, 'doc.json');
    await writeFile(file, '{"operation":"reboot"}');
    const created = await cli([
      'jobs',
      'create',
      'cli-job',
      '--target',
      'thinggroup/cli-fleet',
      '--document-file',
      file,
      '--description',
      'reboot the lab',
    ]);
    expect(created).toMatchObject({
      code: 0,
      out: 'created job cli-job (arn:aws:iot:local:000000000000:job/cli-job)\n',
    });

    const listed = await cli(['jobs', 'list']);
    expect(listed.out).toMatch(/cli-job\s+IN_PROGRESS\s+SNAPSHOT/);
    const described = await cli(['jobs', 'describe', 'cli-job']);
    expect(described.out).toMatch(/description\s+reboot the lab/);
    expect(described.out).toMatch(/progress\s+\[-{30}\]\s+0%\s+0\/2 done {2}IN_PROGRESS {2}queued 2/);
    const describedJson = JSON.parse((await cli(['jobs', 'describe', 'cli-job', '--json'])).out) as {
      job: { jobProcessDetails: { numberOfQueuedThings: number } };
    };
    expect(describedJson.job.jobProcessDetails.numberOfQueuedThings).toBe(2);

    // The watcher runs while the two devices finish their executions over the HTTPS data plane.
    const watching = cli(['jobs', 'watch', 'cli-job', '--interval', '0.05']);
    for (const thingName of ['cli-1', 'cli-2']) {
      const { execution } = await device.send(new StartNextPendingJobExecutionCommand({ thingName }));
      await device.send(
        new UpdateJobExecutionCommand({
          thingName,
          jobId: 'cli-job',
          status: 'SUCCEEDED',
          expectedVersion: execution?.versionNumber as number,
        }),
      );
    }
    const watched = await watching;
    expect(watched.code).toBe(0);
    const lines = watched.out.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^\[#{30}\] 100% {2}2\/2 done {2}COMPLETED {2}succeeded 2$/);
  });

  it('follows GET /events: watch ends when the job completes, long before its next poll', async () => {
    expect(
      (await cli(['jobs', 'create', 'cli-sse', '--target', 'thing/cli-1', '--document', '{}'])).code,
    ).toBe(0);
    let firstLine: () => void = () => {};
    const printed = new Promise<void>((resolve) => (firstLine = resolve));
    // An hour between polls: only an event can wake the watcher in time.
    const watching = cli(['jobs', 'watch', 'cli-sse', '--interval', '3600'], () => firstLine());
    await printed;
    const { execution } = await device.send(new StartNextPendingJobExecutionCommand({ thingName: 'cli-1' }));
    expect(execution?.jobId).toBe('cli-sse');
    await device.send(
      new UpdateJobExecutionCommand({ thingName: 'cli-1', jobId: 'cli-sse', status: 'SUCCEEDED' }),
    );
    const watched = await watching;
    expect(watched.code).toBe(0);
    expect(watched.out.trim().split('\n').at(-1)).toMatch(/100% {2}1\/1 done {2}COMPLETED {2}succeeded 1$/);
  });

  it('cancels a job; watch then ends with exit code 3; delete removes it', async () => {
    expect(
      (await cli(['jobs', 'create', 'cli-cancel', '--target', 'thing/cli-3', '--document', '{}'])).code,
    ).toBe(0);
    expect(await cli(['jobs', 'cancel', 'cli-cancel', '--comment', 'not today'])).toMatchObject({
      code: 0,
      out: 'canceled job cli-cancel\n',
    });
    const watched = await cli(['jobs', 'watch', 'cli-cancel'], undefined, true);
    expect(watched.code).toBe(3);
    // On a terminal the bar is redrawn in place: carriage return and erase-line, one newline at the end.
    expect(watched.out.startsWith(`\r\x1b[2K[${'#'.repeat(30)}] 100%`)).toBe(true);
    expect(watched.out.endsWith('\n')).toBe(true);
    expect(watched.out.split('\n')).toHaveLength(2);
    expect(watched.out).toMatch(/CANCELED {2}canceled 1/);
    expect(watched.err).toBe('job cli-cancel is CANCELED\n');

    expect((await cli(['jobs', 'delete', 'cli-cancel'])).code).toBe(0);
  });

  it("prints the server's message and exits non-zero on API errors", async () => {
    const dup = await cli(['jobs', 'create', 'cli-job', '--target', 'thing/cli-1', '--document', '{}']);
    expect(dup.code).toBe(1);
    expect(dup.err).toMatch(/^error: ResourceAlreadyExistsException: .*cli-job/);
    const badTarget = await cli(['jobs', 'create', 'cli-x', '--target', 'thing/nobody', '--document', '{}']);
    expect(badTarget.code).toBe(1);
    expect(badTarget.err).toContain('thing/nobody');
    const unwatched = await cli(['jobs', 'watch', 'no-such-job']);
    expect(unwatched.code).toBe(1);
    expect(unwatched.err).toBe('error: ResourceNotFoundException: job no-such-job does not exist\n');
    const badDoc = await cli([
      'jobs',
      'create',
      'cli-y',
      '--target',
      'thing/cli-1',
      '--document',
      'not json',
    ]);
    expect(badDoc.code).toBe(1);
    expect(badDoc.err).toContain('InvalidRequestException');
  });

  it('reports usage mistakes with exit code 2 and an unreachable API with exit code 1', async () => {
    const unknownFlag = await cli(['jobs', 'list', '--bogus']);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.err).toContain('usage: fleetjobs jobs list');
    expect((await cli(['jobs', 'create', 'no-targets', '--document', '{}'])).code).toBe(2);
    expect((await cli(['jobs', 'describe'])).code).toBe(2);
    expect((await cli(['jobs', 'frobnicate'])).code).toBe(2);
    expect((await cli(['things', 'list', '--max-results', 'many'])).code).toBe(2);
    expect((await cli(['jobs', 'list', '--api', 'ftp://x'])).code).toBe(2);
    const help = await cli(['jobs', 'help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('fleetjobs jobs watch <jobId>');

    const down = await cli(['jobs', 'list', '--api', 'http://127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/cannot reach http:\/\/127\.0\.0\.1:1 .*set --api or FLEETJOBS_API/);
  });

  it('is reached from the fleetjobs entry point', async () => {
    const previous = process.env.FLEETJOBS_API;
    process.env.FLEETJOBS_API = api;
    const writes: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      writes.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      expect(await main(['things', 'describe', 'cli-1', '--json'])).toBe(0);
    } finally {
      process.stdout.write = write;
      if (previous === undefined) delete process.env.FLEETJOBS_API;
      else process.env.FLEETJOBS_API = previous;
    }
    expect(JSON.parse(writes.join(''))).toMatchObject({ thingName: 'cli-1' });
  });
});

describe('operator CLI with AUTH_MODE=required on postgres', () => {
  let t: TestDb;
  let app: FleetJobs;
  let token = '';

  beforeAll(async () => {
    t = await createTestDb('postgres');
    app = await startTestServer({ db: t.db, auth: { onAdminKeyCreated: (key) => (token = key.token) } });
  });
  afterAll(async () => {
    await app?.close();
    await t?.close();
  });

  async function cli(argv: string[], env: Record<string, string>): Promise<Run> {
    let out = '';
    let err = '';
    const code = await runOperatorCli(argv, {
      env: { FLEETJOBS_API: app.addresses.http, ...env },
      out: { write: (s: string) => (out += s) },
      err: { write: (s: string) => (err += s) },
      readFile: (p) => readFile(p, 'utf8'),
    });
    return { code, out, err };
  }

  it('sends --token or FLEETJOBS_TOKEN as a Bearer key, and prints the refusal without one', async () => {
    expect(token).not.toBe('');
    expect(await cli(['things', 'create', 'auth-1', '--token', token], {})).toMatchObject({ code: 0 });
    expect(await cli(['things', 'list', '--json'], { FLEETJOBS_TOKEN: token })).toMatchObject({
      code: 0,
      out: expect.stringContaining('"thingName": "auth-1"'),
    });
    const refused = await cli(['things', 'list'], {});
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^error: UnauthorizedException: /);
    const wrong = await cli(['things', 'list', '--token', 'AKIAWRONG.secret'], {});
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('UnauthorizedException');
  });
});
