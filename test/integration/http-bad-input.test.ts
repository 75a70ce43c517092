import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/db.js';
import { createControlPlane, type ControlPlane } from '../helpers/control-plane.js';

const OTHER_ACCOUNT = 'arn:aws:iot:us-east-1:123456789012:thing/x1';

type Case = {
  name: string;
  method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  body?: unknown;
  /** A raw payload with its content type, for bodies that are not JSON. */
  raw?: { payload: string; contentType: string };
  status: number;
  error: string;
  message?: string;
};

const job = (extra: Record<string, unknown>) => ({ targets: ['thing/x1'], document: '{}', ...extra });

const CASES: Case[] = [
  {
    name: 'malformed JSON',
    method: 'PUT',
    url: '/jobs/j1',
    raw: { payload: '{"targets": [', contentType: 'application/json' },
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a body that is not JSON',
    method: 'PUT',
    url: '/jobs/j1',
    raw: { payload: 'targets=thing/x1', contentType: 'text/plain' },
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'targets as a string',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ targets: 'thing/x1' }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'targets',
  },
  {
    name: 'document as a number',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ document: 5 }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'document',
  },
  {
    name: 'a timeout as a string',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ timeoutConfig: { inProgressTimeoutInMinutes: '10' } }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a timeout out of range',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ timeoutConfig: { inProgressTimeoutInMinutes: 10081 } }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a description with a control character',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ description: 'a\u0007b' }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'an unknown targetSelection',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ targetSelection: 'SOMETIMES' }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'an oversize document',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ document: JSON.stringify({ pad: 'x'.repeat(32_760) }) }),
    status: 400,
    error: 'InvalidRequestException',
    message: '32768',
  },
  {
    name: 'a document that is a JSON array',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ document: '[1]' }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'JSON object',
  },
  {
    name: 'a document that is not JSON',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ document: 'reboot' }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'no document',
    method: 'PUT',
    url: '/jobs/j1',
    body: { targets: ['thing/x1'] },
    status: 400,
    error: 'InvalidRequestException',
    message: 'document',
  },
  {
    name: 'no targets',
    method: 'PUT',
    url: '/jobs/j1',
    body: { document: '{}' },
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'empty targets',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ targets: [] }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: '101 targets',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ targets: Array.from({ length: 101 }, (_, i) => `thing/t${i}`) }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'unknown targets, named',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ targets: ['thing/x1', 'thing/ghost', 'thinggroup/nowhere'] }),
    status: 404,
    error: 'ResourceNotFoundException',
    message: 'thing/ghost, thinggroup/nowhere',
  },
  {
    name: 'a target of another account',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ targets: [OTHER_ACCOUNT] }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'account',
  },
  {
    name: 'a target that is no ARN',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ targets: ['x1'] }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a jobId with a space',
    method: 'PUT',
    url: '/jobs/bad%20id',
    body: job({}),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a 65-character jobId',
    method: 'PUT',
    url: `/jobs/${'j'.repeat(65)}`,
    body: job({}),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a thingName with a slash',
    method: 'POST',
    url: '/things/a%2Fb',
    body: {},
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a 129-character thingName',
    method: 'POST',
    url: `/things/${'t'.repeat(129)}`,
    body: {},
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'attributes that are not strings',
    method: 'POST',
    url: '/things/x2',
    body: { attributePayload: { attributes: { a: 1 } } },
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'more than 10 retries in all',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({
      jobExecutionsRetryConfig: {
        criteriaList: [
          { failureType: 'FAILED', numberOfRetries: 6 },
          { failureType: 'TIMED_OUT', numberOfRetries: 5 },
        ],
      },
      timeoutConfig: { inProgressTimeoutInMinutes: 5 },
    }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'at most 10',
  },
  {
    name: 'TIMED_OUT retries without a timeout',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({
      jobExecutionsRetryConfig: { criteriaList: [{ failureType: 'TIMED_OUT', numberOfRetries: 1 }] },
    }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'timeoutConfig',
  },
  {
    name: 'an incrementFactor with two decimals',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({
      jobExecutionsRolloutConfig: {
        exponentialRate: {
          baseRatePerMinute: 5,
          incrementFactor: 1.15,
          rateIncreaseCriteria: { numberOfNotifiedThings: 5 },
        },
      },
    }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'incrementFactor',
  },
  {
    name: 'an abort threshold with three decimals',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({
      abortConfig: {
        criteriaList: [
          { failureType: 'ALL', action: 'CANCEL', thresholdPercentage: 1.234, minNumberOfExecutedThings: 1 },
        ],
      },
    }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a startTime that is no date',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ schedulingConfig: { startTime: 'tomorrow' } }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'startTime',
  },
  {
    name: 'an endTime too close to the startTime',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ schedulingConfig: { startTime: '2026-01-02T10:00', endTime: '2026-01-02T10:10' } }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'endTime',
  },
  {
    name: 'a maintenance window that is no cron expression',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({
      schedulingConfig: { maintenanceWindows: [{ startTime: 'cron(every day)', durationInMinutes: 30 }] },
    }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a maintenance window on AWS weekday 0 (AWS numbers weekdays 1 = SUN to 7 = SAT)',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({
      schedulingConfig: { maintenanceWindows: [{ startTime: 'cron(0 1 ? * 0 *)', durationInMinutes: 30 }] },
    }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'maintenanceWindows[0].startTime',
  },
  {
    name: 'a scheduled job whose maintenance window is on AWS weekday 8',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({
      schedulingConfig: {
        startTime: '2026-01-02T10:00',
        maintenanceWindows: [{ startTime: 'cron(0 1 ? * 2,8 *)', durationInMinutes: 30 }],
      },
    }),
    status: 400,
    error: 'InvalidRequestException',
    message: 'maintenanceWindows[0].startTime',
  },
  {
    name: 'an AWS cron without ? in either day field',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({
      schedulingConfig: { maintenanceWindows: [{ startTime: 'cron(0 1 * * 2 *)', durationInMinutes: 30 }] },
    }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'documentParameters without a template',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ documentParameters: { a: 'b' } }),
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a lower-case reasonCode',
    method: 'PUT',
    url: '/jobs/live/cancel',
    body: { reasonCode: 'oops' },
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'force that is no boolean',
    method: 'PUT',
    url: '/jobs/live/cancel?force=maybe',
    body: {},
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: '11 statusDetails pairs',
    method: 'PUT',
    url: '/things/x1/jobs/live/cancel',
    body: { statusDetails: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v'])) },
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a statusDetails key with a space',
    method: 'PUT',
    url: '/things/x1/jobs/live/cancel',
    body: { statusDetails: { 'a b': 'v' } },
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'expectedVersion as text',
    method: 'PUT',
    url: '/things/x1/jobs/live/cancel',
    body: { expectedVersion: 'one' },
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'maxResults 0',
    method: 'GET',
    url: '/jobs?maxResults=0',
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'maxResults 251',
    method: 'GET',
    url: '/things?maxResults=251',
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a forged nextToken',
    method: 'GET',
    url: '/jobs?nextToken=abc',
    status: 400,
    error: 'InvalidRequestException',
    message: 'nextToken',
  },
  {
    name: 'an unknown job status filter',
    method: 'GET',
    url: '/jobs?status=DONE',
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'attributeValue without attributeName',
    method: 'GET',
    url: '/things?attributeValue=x',
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a body over the size limit',
    method: 'PUT',
    url: '/jobs/j1',
    body: job({ description: 'x'.repeat(300_000) }),
    status: 413,
    error: 'InvalidRequestException',
  },
  {
    name: 'an unknown route',
    method: 'GET',
    url: '/nowhere',
    status: 404,
    error: 'ResourceNotFoundException',
  },
  {
    name: 'a template without a description',
    method: 'PUT',
    url: '/job-templates/t1',
    body: { document: '{}' },
    status: 400,
    error: 'InvalidRequestException',
  },
  {
    name: 'a template whose maintenance window is on AWS weekday 0',
    method: 'PUT',
    url: '/job-templates/t1',
    body: {
      description: 'x',
      document: '{}',
      maintenanceWindows: [{ startTime: 'cron(0 1 ? * 0 *)', durationInMinutes: 30 }],
    },
    status: 400,
    error: 'InvalidRequestException',
    message: 'maintenanceWindows[0].startTime',
  },
  {
    name: 'a template with too many placeholders',
    method: 'PUT',
    url: '/job-templates/t1',
    body: {
      description: 'x',
      document: JSON.stringify(
        Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, '${aws:iot:parameter:p}'])),
      ),
    },
    status: 400,
    error: 'InvalidRequestException',
  },
];

describe.each(BACKENDS)('bad input over REST on %s', (backend) => {
  let cp: ControlPlane;

  /** Every row of every table the API writes, to prove a refused request changed nothing. */
  const fingerprint = async () =>
    cp.t.db.query(
      `SELECT (SELECT count(*) FROM things) AS things, (SELECT count(*) FROM thing_groups) AS groups,
         (SELECT count(*) FROM thing_group_members) AS members, (SELECT count(*) FROM jobs) AS jobs,
         (SELECT count(*) FROM job_templates) AS templates, (SELECT count(*) FROM outbox) AS outbox,
         (SELECT coalesce(string_agg(job_id || thing_name || status || version_number, ',' ORDER BY job_id, thing_name), '')
            FROM job_executions) AS executions,
         (SELECT coalesce(string_agg(job_id || status || version, ',' ORDER BY job_id), '') FROM jobs) AS job_states`,
    );

  beforeAll(async () => {
    cp = await createControlPlane(backend);
    await cp.call('POST', '/things/x1');
    await cp.call('PUT', '/jobs/live', { targets: ['thing/x1'], document: '{}' });
  });
  afterAll(() => cp.close());

  it('a 128-character thingName is valid', async () => {
    const name = 't'.repeat(128);
    expect((await cp.call('POST', `/things/${name}`)).status).toBe(200);
    expect((await cp.call('DELETE', `/things/${name}`)).status).toBe(200);
  });

  it.each(CASES)('$name is answered $status $error and changes nothing', async (c) => {
    const before = await fingerprint();
    const res = await cp.app.inject({
      method: c.method,
      url: c.url,
      ...(c.raw
        ? { payload: c.raw.payload, headers: { 'content-type': c.raw.contentType } }
        : c.body === undefined
          ? {}
          : { payload: c.body as object }),
    });
    expect(res.statusCode).toBe(c.status);
    expect(res.headers['x-amzn-errortype']).toBe(c.error);
    const body = JSON.parse(res.body) as { message: string };
    expect(body.message).toEqual(expect.any(String));
    if (c.message) expect(body.message).toContain(c.message);
    expect(await fingerprint()).toEqual(before);
  });
});
