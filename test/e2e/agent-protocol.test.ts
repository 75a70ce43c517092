import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBroker, type EmbeddedBroker } from '../../broker/index.js';
import type { JobExecution } from '../../src/protocol/messages.js';
import { agentPool, nextEvent } from './helpers.js';

type Reply = { kind: 'accepted' | 'rejected'; body: object } | undefined;
type Request = { topic: string; body: Record<string, unknown> };

/**
 * The agent against a scripted jobs service on the real broker, for what the real service never does on
 * purpose: losing a reply, and handing out an execution the agent already finished.
 */
describe('the device agent with lost replies and duplicate deliveries', () => {
  const root = '$aws/things/dup-1/jobs';
  let broker: EmbeddedBroker;
  let dir: string;
  let script: (request: Request) => Reply = () => undefined;
  const requests: Request[] = [];
  const pool = agentPool(() => url);
  let url = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fj-agent-dup-'));
    broker = createBroker({
      host: '127.0.0.1',
      port: 0,
      log: pino({ level: 'silent' }),
      hooks: {
        inspectPublish: (_client, topic) => (/\/(start-next|get|update)$/.test(topic) ? 'answer' : 'forward'),
        answer: async (_client, topic, payload) => {
          const body = JSON.parse(payload.toString()) as Record<string, unknown>;
          requests.push({ topic, body });
          const reply = script({ topic, body });
          if (reply === undefined) return undefined;
          const out = { ...reply.body, clientToken: body.clientToken, timestamp: 1 };
          return { topic: `${topic}/${reply.kind}`, payload: Buffer.from(JSON.stringify(out)) };
        },
        isPrivateTopic: () => false,
      },
    });
    url = (await broker.start()).mqtt;
  });
  afterAll(async () => {
    await pool.stopAll();
    await broker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('retries a final update whose reply was lost, and never reruns an execution handed out again', async () => {
    const log = join(dir, 'runs');
    const execution = (executionNumber: number): JobExecution => ({
      jobId: 'dup',
      executionNumber,
      status: 'QUEUED',
      versionNumber: 1,
      queuedAt: 1,
      lastUpdatedAt: 1,
      jobDocument: {
        version: '1.0',
        steps: [
          {
            action: {
              name: 'run',
              type: 'runCommand',
              input: { command: `sh,-c,echo ${executionNumber} >> ${log}` },
            },
          },
        ],
      },
    });
    // The service's view: what start-next hands out next, and the state of each execution.
    const queue = [execution(1), execution(1), execution(2)];
    const state = new Map<number, JobExecution>();
    let dropNextFinal = true;
    script = ({ topic, body }) => {
      if (topic === `${root}/start-next`) {
        const next = queue.shift();
        if (next === undefined) return { kind: 'accepted', body: {} };
        const current = state.get(next.executionNumber);
        const handed: JobExecution = current
          ? { ...current, status: 'IN_PROGRESS' } // a duplicate: the service still thinks it is running
          : {
              ...next,
              status: 'IN_PROGRESS',
              versionNumber: 2,
              statusDetails: body.statusDetails as Record<string, string>,
            };
        state.set(next.executionNumber, handed);
        return { kind: 'accepted', body: { execution: handed } };
      }
      if (topic === `${root}/dup/update`) {
        const n = body.executionNumber as number;
        const current = state.get(n) as JobExecution;
        if (current.status === 'SUCCEEDED') {
          const executionState = { status: current.status, versionNumber: current.versionNumber };
          return {
            kind: 'rejected',
            body: { code: 'InvalidStateTransition', message: 'terminal', executionState },
          };
        }
        if (body.expectedVersion !== current.versionNumber) {
          const executionState = { status: current.status, versionNumber: current.versionNumber };
          return { kind: 'rejected', body: { code: 'VersionMismatch', message: 'version', executionState } };
        }
        const updated = {
          ...current,
          status: body.status as JobExecution['status'],
          versionNumber: current.versionNumber + 1,
        };
        state.set(n, updated);
        if (body.status === 'SUCCEEDED' && n === 1 && dropNextFinal) {
          dropNextFinal = false;
          return undefined; // applied, but the reply is lost
        }
        const executionState = { status: updated.status, versionNumber: updated.versionNumber };
        return { kind: 'accepted', body: { executionState } };
      }
      return { kind: 'rejected', body: { code: 'InvalidTopic', message: topic } };
    };

    const starts: string[] = [];
    const done: string[] = [];
    const agent = await pool.start('dup-1', { requestTimeoutMs: 300 });
    agent.on('job:start', (e) => starts.push(`${e.jobId}#${e.executionNumber}`));
    agent.on('job:done', (e) => done.push(`${e.jobId}#${e.executionNumber} ${e.status}`));
    await nextEvent(agent, 'job:done', (e) => e.executionNumber === 2);

    expect(await readFile(log, 'utf8')).toBe('1\n2\n');
    expect(starts).toEqual(['dup#1', 'dup#2']);
    expect(done).toEqual(['dup#1 SUCCEEDED', 'dup#2 SUCCEEDED']);
    const finals = requests.filter((r) => r.body.status === 'SUCCEEDED' && r.body.executionNumber === 1);
    // The update whose reply was lost, its retry, and the report sent again for the duplicate delivery.
    expect(finals.map((r) => r.body.expectedVersion)).toEqual([3, 3, 4]);
    expect(new Set(requests.map((r) => r.body.clientToken)).size).toBe(requests.length);
  });
});
