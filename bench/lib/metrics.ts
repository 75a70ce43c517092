import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import postgres from 'postgres';

/** Correctness and traffic counters of one load generator; merged by summing. */
export interface Counters {
  requests: number;
  replies: number;
  lost: number;
  duplicated: number;
  doubleClaimed: number;
  rejected: number;
  /** jobs: executions this worker saw accepted as SUCCEEDED. */
  completed: number;
  /** jobs: devices that found nothing pending before the end. */
  drained: number;
  notifyNext: number;
  /** Replies that came after their request was counted lost. */
  late: number;
}

export function emptyCounters(): Counters {
  return {
    requests: 0,
    replies: 0,
    lost: 0,
    duplicated: 0,
    doubleClaimed: 0,
    rejected: 0,
    completed: 0,
    drained: 0,
    notifyNext: 0,
    late: 0,
  };
}

/** What one process used during a measured window. */
export interface ProcessUsage {
  role: string;
  cpuSeconds: number;
  /** Peak resident set size seen during the window (sampled every 100 ms). */
  rssMb: number;
  eventLoopP99Ms: number;
  eventLoopMaxMs: number;
}

/**
 * Measures this process from start() to stop(): CPU (user + system), peak RSS and event-loop delay. Each
 * process (server host, load generators) measures itself and reports over IPC, so CPU is never mixed up.
 */
export function processMeter(role: string): { start(): void; stop(): ProcessUsage } {
  let cpu = process.cpuUsage();
  let peak = 0;
  let timer: NodeJS.Timeout | undefined;
  let eld: IntervalHistogram | undefined;
  return {
    start() {
      cpu = process.cpuUsage();
      peak = process.memoryUsage.rss();
      eld = monitorEventLoopDelay({ resolution: 10 });
      eld.enable();
      timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
      const used = process.cpuUsage(cpu);
      eld?.disable();
      peak = Math.max(peak, process.memoryUsage.rss());
      const ns = (v: number | undefined) => Math.round((v ?? 0) / 1e4) / 100;
      return {
        role,
        cpuSeconds: Math.round((used.user + used.system) / 1e4) / 100,
        rssMb: Math.round(peak / 1048576),
        eventLoopP99Ms: ns(eld?.percentile(99)),
        eventLoopMaxMs: ns(eld?.max),
      };
    },
  };
}

export interface PgUsage {
  /** pg_stat_database.xact_commit delta; backends report it when idle or on exit, so stop after pools close. */
  commits: number;
  /** Transaction ids assigned: the write transactions, exact at once. */
  writeXacts: number;
  walMb: number;
  /**
   * CPU seconds (user + system) of the server's own PostgreSQL backends (those with its application_name), from
   * /proc: only when PostgreSQL runs on this machine; absent otherwise.
   */
  backendCpuSeconds?: number;
}

/** The application_name of a bench server's pool (server-host.ts), so its backends can be told apart. */
export const benchApplicationName = (pid: number) => `fleetjobs-bench-${pid}`;

const CLOCK_TICKS_PER_SECOND = 100;

/** user + system CPU seconds of these processes so far; a process gone (or not visible here) counts 0. */
function cpuSecondsOf(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields after the command name, which is in parentheses and may hold spaces: utime is the 12th, stime 13th.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    } catch {
      // Not on this machine, or exited.
    }
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** PostgreSQL commits and WAL written between two snapshots (whole cluster's database, so run one thing at a time). */
export function pgMeter(
  url: string,
  /** Also measure the CPU of the backends with this application_name (benchApplicationName). */
  applicationName?: string,
): {
  start(): Promise<void>;
  endLoad(): void;
  stop(): Promise<PgUsage>;
  close(): Promise<void>;
} {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  let before: { commits: number; xid: number; lsn: string } | undefined;
  let backends: number[] = [];
  let backendCpu = 0;
  let backendCpuEnd: number | undefined;
  const snap = async () => {
    const [row] = await sql<{ commits: string; xid: string; lsn: string }[]>`
      SELECT xact_commit::text AS commits, pg_snapshot_xmax(pg_current_snapshot())::text AS xid,
        pg_current_wal_lsn()::text AS lsn
      FROM pg_stat_database WHERE datname = current_database()`;
    if (!row) throw new Error('pg_stat_database has no row for the current database');
    return { commits: Number(row.commits), xid: Number(row.xid), lsn: row.lsn };
  };
  return {
    async start() {
      // Statistics are cached per transaction; a fresh snapshot is needed for the counter to move.
      await sql`SELECT pg_stat_clear_snapshot()`;
      before = await snap();
      if (applicationName !== undefined) {
        // The server's pool is open by now (after the warm-up) and keeps its connections through the run.
        const rows = await sql<{ pid: number }[]>`
          SELECT pid FROM pg_stat_activity WHERE application_name = ${applicationName}`;
        backends = rows.map((r) => r.pid);
        backendCpu = cpuSecondsOf(backends);
        backendCpuEnd = undefined;
      }
    },
    /** The end of the measured load: the backends' CPU is read here, while the server still holds them. */
    endLoad() {
      const now = cpuSecondsOf(backends);
      // 0 for every backend: PostgreSQL is not on this machine (or they are not visible from here).
      if (backends.length > 0 && now > 0) backendCpuEnd = now;
    },
    async stop() {
      await sql`SELECT pg_stat_clear_snapshot()`;
      const after = await snap();
      if (!before) throw new Error('pgMeter.stop() before start()');
      const [diff] = await sql<
        { bytes: string }[]
      >`SELECT pg_wal_lsn_diff(${after.lsn}, ${before.lsn})::text AS bytes`;
      return {
        // Our own snapshot queries are committed transactions too; they are not the workload's.
        commits: Math.max(0, after.commits - before.commits - 2),
        writeXacts: after.xid - before.xid,
        walMb: Math.round((Number(diff?.bytes ?? 0) / 1048576) * 10) / 10,
        ...(backendCpuEnd === undefined
          ? {}
          : { backendCpuSeconds: Math.round((backendCpuEnd - backendCpu) * 100) / 100 }),
      };
    },
    close: () => sql.end({ timeout: 5 }),
  };
}
