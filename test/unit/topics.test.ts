import { describe, expect, it } from 'vitest';
import { createTopicScheme, validateTopicRoot, jobEventTopic } from '../../src/protocol/topics.js';

describe('default AWS topic scheme', () => {
  const t = createTopicScheme();

  it('builds the four request topics exactly as AWS IoT names them', () => {
    expect(t.request('dev-1', 'GetPendingJobExecutions')).toBe('$aws/things/dev-1/jobs/get');
    expect(t.request('dev-1', 'StartNextPendingJobExecution')).toBe('$aws/things/dev-1/jobs/start-next');
    expect(t.request('dev-1', 'DescribeJobExecution', '$next')).toBe('$aws/things/dev-1/jobs/$next/get');
    expect(t.request('dev-1', 'UpdateJobExecution', 'job-1')).toBe('$aws/things/dev-1/jobs/job-1/update');
    expect(t.accepted('$aws/things/dev-1/jobs/get')).toBe('$aws/things/dev-1/jobs/get/accepted');
    expect(t.rejected('$aws/things/dev-1/jobs/get')).toBe('$aws/things/dev-1/jobs/get/rejected');
    expect(t.notify('dev-1')).toBe('$aws/things/dev-1/jobs/notify');
    expect(t.notifyNext('dev-1')).toBe('$aws/things/dev-1/jobs/notify-next');
    expect(t.wildcard()).toBe('$aws/things/+/jobs/#');
  });

  it.each([
    ['$aws/things/dev-1/jobs/get', 'GetPendingJobExecutions', undefined],
    ['$aws/things/dev-1/jobs/start-next', 'StartNextPendingJobExecution', undefined],
    ['$aws/things/dev-1/jobs/$next/get', 'DescribeJobExecution', '$next'],
    ['$aws/things/dev-1/jobs/job_1-a/get', 'DescribeJobExecution', 'job_1-a'],
    ['$aws/things/dev-1/jobs/job_1-a/update', 'UpdateJobExecution', 'job_1-a'],
  ])('parses %s as %s', (topic, operation, jobId) => {
    const parsed = t.parse(topic);
    expect(parsed).toMatchObject({ kind: 'request', operation, thingName: 'dev-1', requestTopic: topic });
    expect(parsed && 'jobId' in parsed ? parsed.jobId : undefined).toBe(jobId);
  });

  it('treats reply and event topics as not requests', () => {
    expect(t.parse('$aws/things/dev-1/jobs/get/accepted')).toEqual({ kind: 'reply', thingName: 'dev-1' });
    expect(t.parse('$aws/things/dev-1/jobs/j1/update/rejected')).toEqual({
      kind: 'reply',
      thingName: 'dev-1',
    });
    expect(t.parse('$aws/things/dev-1/jobs/notify')).toEqual({ kind: 'event', thingName: 'dev-1' });
    expect(t.parse('$aws/things/dev-1/jobs/notify-next')).toEqual({ kind: 'event', thingName: 'dev-1' });
  });

  it.each([
    '$aws/things/dev-1/jobs',
    '$aws/things/dev-1/jobs/bogus',
    '$aws/things/dev-1/jobs/$next/update',
    '$aws/things/dev-1/jobs/bad id/get',
    '$aws/things/dev-1/jobs/j1/cancel',
    '$aws/things/dev-1/jobs/a/b/c',
  ])('answers %s under the root with InvalidTopic', (topic) => {
    expect(t.parse(topic)).toMatchObject({ kind: 'invalid', thingName: 'dev-1' });
  });

  it.each([
    'aws/things/dev-1/jobs/get',
    '$aws/things/dev-1/shadow/get',
    '$aws/things/bad name/jobs/get',
    'other',
  ])('ignores %s, which is not under any jobs root', (topic) => {
    expect(t.parse(topic)).toBeUndefined();
  });
});

describe('configurable topic root', () => {
  it('puts every topic under a custom root with the thing name anywhere in it', () => {
    const t = createTopicScheme('fleet/{thingName}/j');
    expect(t.request('d', 'GetPendingJobExecutions')).toBe('fleet/d/j/get');
    expect(t.parse('fleet/d/j/start-next')).toMatchObject({
      operation: 'StartNextPendingJobExecution',
      thingName: 'd',
    });
    expect(t.parse('$aws/things/d/jobs/get')).toBeUndefined();
    expect(t.wildcard()).toBe('fleet/+/j/#');
    const trailing = createTopicScheme('jobs/{thingName}');
    expect(trailing.parse('jobs/d/get')).toMatchObject({
      operation: 'GetPendingJobExecutions',
      thingName: 'd',
    });
  });

  it.each([
    ['fleet/jobs', 'must contain {thingName}'],
    ['a/{thingName}/{thingName}', 'once'],
    ['a/+/{thingName}', 'wildcards'],
    ['a/x{thingName}', 'whole topic level'],
    ['a/{thingName}/', 'must not start or end'],
  ])('refuses %s', (root, problem) => {
    expect(validateTopicRoot(root)).toContain(problem);
    expect(() => createTopicScheme(root)).toThrow(/JOBS_TOPIC_ROOT/);
  });
});

describe('fleet event topics', () => {
  it('follows $aws/events/job/{jobId}/{event}', () => {
    expect(jobEventTopic('j1', 'completed')).toBe('$aws/events/job/j1/completed');
  });
});
