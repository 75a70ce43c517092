/**
 * A load-generator child process: holds MQTT device connections (mqtt.js) and runs one workload at a time on
 * them, measuring itself. Several run side by side, each from its own 127.0.0.x source address, because one
 * process (and one source address) holds at most ~19.9k sockets here.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { MqttClient } from 'mqtt';
import { encodeHistogram, newHistogram } from './hist.js';
import { emptyCounters, processMeter, type Counters, type ProcessUsage } from './metrics.js';
import { serve } from './child.js';

export interface ConnectArgs {
  host: string;
  port: number;
  localAddress: string;
  thingNames: string[];
  /** Topic root template, `{thingName}` replaced per device. */
  root: string;
  clean: boolean;
  /**
   * Subscribe to the reply topics (QoS 1), to notify-next, to nothing, to the device's own probe topic (S7's
   * liveness round trip through any broker), or to every firehose topic (S7's subscribers).
   */
  subscribe: 'replies' | 'notify-next' | 'replies+notify-next' | 'none' | 'probe' | 'firehose';
  /** MQTT client id prefix (S7 against a shared Mosquitto); the thing name alone by default. */
  clientIdPrefix?: string;
  /** How many connects are in flight at once. */
  connectConcurrency: number;
}

export interface WorkloadArgs {
  /** echo: `get` round trips; jobs: start-next -> update; probe: publish to self and wait; firehose: QoS 0 flood. */
  workload: 'echo' | 'jobs' | 'probe' | 'firehose';
  durationMs: number;
  /** A request without a reply after this long counts as lost. */
  replyTimeoutMs: number;
  /** When everyone starts, in this machine's performance.timeOrigin + now() milliseconds. */
  startAt: number;
  /**
   * Open loop (echo and jobs): each device starts a pair (echo: two `get`s; jobs: start-next -> update) every
   * pairIntervalMs, from a random phase, instead of as soon as its previous one ended. Latency is per pair,
   * from its scheduled start, so a pair that had to wait for the previous one counts the wait.
   */
  pairIntervalMs?: number;
}

/** How an open-loop run kept its schedule. */
export interface ScheduleResult {
  /** Pairs whose scheduled start fell before the end of the run. */
  scheduled: number;
  /** Pairs that ended with their last reply. */
  done: number;
  /** Scheduled pairs given up unstarted because the run overran its end by more than its duration. */
  skipped: number;
  /** Actual minus scheduled start of every started pair. */
  startLagHistogram: string;
  /** Per request: start-next (or the first `get`) from its scheduled start, the second from when it was sent. */
  requestHistogram: string;
}

export interface WorkloadResult {
  histogram: string;
  counters: Counters;
  /** Wall time the workload ran, from startAt to its last reply. */
  elapsedMs: number;
  usage: ProcessUsage;
  rejectCodes: Record<string, number>;
  schedule?: ScheduleResult;
}

export interface NotifyNextStats {
  /** Devices that got a notify-next naming the watched job. */
  things: number;
  /** Arrivals beyond the first per device. */
  duplicated: number;
  lastAt: number;
}

interface Pending {
  token: string;
  resolve(r: { topic: string; body: Record<string, unknown> } | null): void;
  timer: NodeJS.Timeout;
}

interface Device {
  thing: string;
  root: string;
  client: MqttClient;
  pending: Pending | undefined;
  answered: Set<string>;
  /** Requests given up as lost: a reply that still comes is late, not a duplicate. */
  abandoned: Set<string>;
}

const devices: Device[] = [];
const meter = processMeter('loadgen');
let notifyNext = 0;
let duplicated = 0;
let lateReplies = 0;
/** notify-next naming a watched job, for fan-out timing: per thing, how many arrived and the last arrival. */
let watched: { jobId: string; perThing: Map<string, number>; lastAt: number } | undefined;

const epochMs = () => performance.timeOrigin + performance.now();

function onMessage(d: Device, topic: string, payload: Buffer): void {
  if (topic.endsWith('/notify-next')) {
    notifyNext++;
    if (watched) {
      const body = JSON.parse(payload.toString()) as { execution?: { jobId?: string } };
      if (body.execution?.jobId === watched.jobId) {
        watched.perThing.set(d.thing, (watched.perThing.get(d.thing) ?? 0) + 1);
        watched.lastAt = epochMs();
      }
    }
    return;
  }
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(payload.toString()) as Record<string, unknown>;
  } catch {
    return;
  }
  const token = typeof body.clientToken === 'string' ? body.clientToken : undefined;
  const p = d.pending;
  if (p && token === p.token) {
    d.pending = undefined;
    clearTimeout(p.timer);
    d.answered.add(token);
    p.resolve({ topic, body });
  } else if (token !== undefined && d.abandoned.delete(token)) {
    lateReplies++;
  } else if (token !== undefined) {
    // A second reply to an answered request, or a reply to a request never sent: both are duplicates.
    duplicated++;
  }
}

function connectOne(args: ConnectArgs, thing: string): Promise<Device> {
  const root = args.root.replace('{thingName}', thing);
  const client = new MqttClient(
    () => {
      const socket = net.createConnection({
        host: args.host,
        port: args.port,
        localAddress: args.localAddress,
      });
      // Nagle + delayed ACK stall a PUBACK followed by the next request for ~40 ms (protocol fact 1).
      socket.setNoDelay(true);
      return socket;
    },
    {
      clientId: thing,
      clean: args.clean,
      protocolVersion: 4,
      keepalive: 300,
      reconnectPeriod: 0,
      connectTimeout: 60_000,
    },
  );
  const d: Device = { thing, root, client, pending: undefined, answered: new Set(), abandoned: new Set() };
  client.on('message', (topic, payload) => onMessage(d, topic, payload));
  return new Promise((resolve, reject) => {
    client.once('error', reject);
    client.once('connect', () => {
      const filters: string[] = [];
      if (args.subscribe.startsWith('replies'))
        filters.push(
          `${root}/+/accepted`,
          `${root}/+/rejected`,
          `${root}/+/+/accepted`,
          `${root}/+/+/rejected`,
        );
      if (args.subscribe.endsWith('notify-next')) filters.push(`${root}/notify-next`);
      if (args.subscribe === 'probe') filters.push(`bench/probe/${thing}`);
      if (args.subscribe === 'firehose') filters.push('bench/firehose/#');
      if (filters.length === 0) return resolve(d);
      client.subscribe(filters, { qos: 1 }, (err) => (err ? reject(err) : resolve(d)));
    });
  });
}

async function connect(args: ConnectArgs): Promise<{ connected: number }> {
  let i = 0;
  const worker = async () => {
    while (i < args.thingNames.length) {
      const thing = args.thingNames[i++] as string;
      devices.push(await connectOne(args, thing));
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(args.connectConcurrency, args.thingNames.length) }, worker),
  );
  return { connected: devices.length };
}

type Reply = { topic: string; body: Record<string, unknown> } | null;

function request(
  d: Device,
  topic: string,
  body: Record<string, unknown>,
  timeoutMs: number,
  seq: number,
): Promise<Reply> {
  const token = `${d.thing}:${seq}`;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      d.pending = undefined;
      d.abandoned.add(token);
      resolve(null);
    }, timeoutMs);
    d.pending = { token, resolve, timer };
    d.client.publish(topic, JSON.stringify({ ...body, clientToken: token }), { qos: 1 });
  });
}

async function run(args: WorkloadArgs): Promise<WorkloadResult> {
  const hist = newHistogram();
  const paced = args.pairIntervalMs !== undefined;
  // Open loop: hist holds pairs, requests go here; closed loop: hist holds requests.
  const requestHist = paced ? newHistogram() : hist;
  const counters = emptyCounters();
  const rejectCodes: Record<string, number> = {};
  notifyNext = 0;
  duplicated = 0;
  lateReplies = 0;
  let seq = 0;
  const wait = args.startAt - epochMs();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  meter.start();
  const deadline = args.startAt + args.durationMs;
  let lastReply = args.startAt;

  const record = (h: typeof hist, since: number) =>
    h.recordValue(Math.max(1, Math.round((performance.now() - since) * 1000)));
  /** One request and its reply; `since` (performance.now() ms) is when its latency starts, by default now. */
  const timed = async (
    d: Device,
    topic: string,
    body: Record<string, unknown>,
    since = performance.now(),
  ): Promise<Reply> => {
    counters.requests++;
    const reply = await request(d, topic, body, args.replyTimeoutMs, ++seq);
    if (reply === null) {
      counters.lost++;
      return null;
    }
    record(requestHist, since);
    counters.replies++;
    lastReply = epochMs();
    if (reply.topic.endsWith('/rejected')) {
      counters.rejected++;
      const code = String(reply.body.code ?? 'unknown');
      rejectCodes[code] = (rejectCodes[code] ?? 0) + 1;
    }
    return reply;
  };

  /** One unit of a workload; false when the device must stop (no reply, nothing left to claim). */
  type Step = (d: Device, since: number) => Promise<boolean>;

  const echoOnce: Step = async (d, since) => (await timed(d, `${d.root}/get`, {}, since)) !== null;
  const echoPair: Step = async (d, since) => (await echoOnce(d, since)) && echoOnce(d, performance.now());

  const claimed = new Set<string>();
  const jobsPair: Step = async (d, since) => {
    const sn = await timed(d, `${d.root}/start-next`, {}, since);
    if (sn === null || sn.topic.endsWith('/rejected')) return false;
    const exec = sn.body.execution as
      { jobId: string; executionNumber: number; versionNumber: number } | undefined;
    if (!exec) {
      counters.drained++;
      return false;
    }
    const key = `${d.thing}/${exec.jobId}/${exec.executionNumber}`;
    if (claimed.has(key)) counters.doubleClaimed++;
    claimed.add(key);
    const up = await timed(d, `${d.root}/${exec.jobId}/update`, {
      status: 'SUCCEEDED',
      expectedVersion: exec.versionNumber,
    });
    if (up === null) return false;
    if (up.topic.endsWith('/accepted')) counters.completed++;
    return true;
  };

  const closedLoop = (step: Step) => async (d: Device) => {
    while (epochMs() < deadline) if (!(await step(d, performance.now()))) return;
  };

  const schedule = { scheduled: 0, done: 0, skipped: 0 };
  const startLag = newHistogram();
  // Past this, a device that fell behind gives up its remaining slots instead of prolonging the run.
  const giveUpAt = deadline + Math.max(2_000, args.durationMs);
  /** Fixed interval per device from a random phase, so the fleet's starts spread evenly over time. */
  const openLoop = (step: Step, interval: number) => async (d: Device) => {
    for (let at = args.startAt + Math.random() * interval; at < deadline; at += interval) {
      const now = epochMs();
      if (now > giveUpAt) {
        // This slot and every later one before the end.
        const left = Math.ceil((deadline - at) / interval);
        schedule.scheduled += left;
        schedule.skipped += left;
        return;
      }
      schedule.scheduled++;
      if (at > now) await new Promise((r) => setTimeout(r, at - now));
      const since = at - performance.timeOrigin;
      record(startLag, since);
      if (!(await step(d, since))) return;
      record(hist, since);
      schedule.done++;
    }
  };

  const probeLoop = async (d: Device) => {
    while (epochMs() < deadline) {
      if ((await timed(d, `bench/probe/${d.thing}`, {})) === null) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const firehose = Buffer.alloc(1024, 'x');
  const firehoseLoop = async (d: Device) => {
    const stream = d.client.stream;
    while (epochMs() < deadline && d.client.connected) {
      d.client.publish(`bench/firehose/${d.thing}`, firehose, { qos: 0 });
      counters.requests++;
      // As fast as the socket takes it: wait for drain when the kernel buffer is full.
      if (stream.writableNeedDrain) await new Promise((r) => stream.once('drain', r));
      else if (counters.requests % 100 === 0) await new Promise((r) => setImmediate(r));
    }
  };

  const pairs = { echo: echoPair, jobs: jobsPair };
  const loop =
    args.workload === 'probe'
      ? probeLoop
      : args.workload === 'firehose'
        ? firehoseLoop
        : args.pairIntervalMs !== undefined
          ? openLoop(pairs[args.workload], args.pairIntervalMs)
          : closedLoop(args.workload === 'echo' ? echoOnce : jobsPair);
  await Promise.all(devices.map(loop));
  // Replies that arrive after the last request was answered (duplicates) need a moment to show up.
  await new Promise((r) => setTimeout(r, 200));
  counters.duplicated = duplicated;
  counters.late = lateReplies;
  counters.notifyNext = notifyNext;
  return {
    histogram: encodeHistogram(hist),
    counters,
    elapsedMs: Math.max(1, lastReply - args.startAt),
    usage: meter.stop(),
    rejectCodes,
    ...(paced
      ? {
          schedule: {
            ...schedule,
            startLagHistogram: encodeHistogram(startLag),
            requestHistogram: encodeHistogram(requestHist),
          },
        }
      : {}),
  };
}

async function closeAll(): Promise<void> {
  await Promise.all(devices.map((d) => d.client.endAsync(true).catch(() => {})));
  devices.length = 0;
}

serve(
  {
    connect: (args: ConnectArgs) => connect(args),
    run: (args: WorkloadArgs) => run(args),
    watchNotifyNext: (args: { jobId: string }) => {
      watched = { jobId: args.jobId, perThing: new Map(), lastAt: 0 };
      return null;
    },
    notifyNextStats: (): NotifyNextStats => {
      const counts = [...(watched?.perThing.values() ?? [])];
      return {
        things: counts.length,
        duplicated: counts.reduce((acc, k) => acc + k - 1, 0),
        lastAt: watched?.lastAt ?? 0,
      };
    },
    /** A subscriber that stops reading: its sockets are paused, so the broker's writes to it back up. */
    pauseReading: () => {
      for (const d of devices) d.client.stream.pause();
      return null;
    },
    meterStart: () => meter.start(),
    meterStop: () => meter.stop(),
    close: () => closeAll(),
  },
  closeAll,
);
