import type { FleetJobs } from '../../src/app.js';
import { createAgent, type Agent, type AgentEvents, type AgentOptions } from '../../agent/index.js';

/** Operator calls over the real REST API (auth is off in test servers). */
export function operator(app: FleetJobs) {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${app.addresses.http}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text === '' ? {} : JSON.parse(text)) as T;
  };
  return {
    call,
    createThing: (thingName: string) => call('POST', `/things/${thingName}`, {}),
    createJob: (jobId: string, thingName: string, document: object) =>
      call('PUT', `/jobs/${jobId}`, { targets: [`thing/${thingName}`], document: JSON.stringify(document) }),
    cancelJob: (jobId: string, force: boolean) => call('PUT', `/jobs/${jobId}/cancel?force=${force}`, {}),
    job: async (jobId: string) => (await call<{ job: { status: string } }>('GET', `/jobs/${jobId}`)).job,
    execution: async (thingName: string, jobId: string) =>
      (
        await call<{
          execution: {
            status: string;
            versionNumber: number;
            statusDetails?: { detailsMap?: Record<string, string> };
          };
        }>('GET', `/things/${thingName}/jobs/${jobId}`)
      ).execution,
  };
}

/** Resolves with the first event that satisfies the predicate; rejects after timeoutMs naming the event. */
export function nextEvent<E extends keyof AgentEvents>(
  agent: Agent,
  event: E,
  predicate: (...args: AgentEvents[E]) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<AgentEvents[E][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = agent.on(event, (...args) => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args[0]);
    });
  });
}

/** Agents with short back-off and grace periods, stopped by stopAll(). */
export function agentPool(url: () => string) {
  const agents: Agent[] = [];
  return {
    async start(thingName: string, options: Partial<AgentOptions> = {}): Promise<Agent> {
      const agent = createAgent({
        url: url(),
        thingName,
        killGraceMs: 500,
        requestTimeoutMs: 5000,
        reconnect: { initialMs: 50, maxMs: 500 },
        ...options,
      });
      agents.push(agent);
      await agent.start();
      return agent;
    },
    async stopAll() {
      await Promise.all(agents.splice(0).map((a) => a.stop({ timeoutMs: 0 })));
    },
  };
}

/** A process that exited (or is a zombie) no longer runs. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return true;
}
