/**
 * S2: claim + complete through the service and store functions (startNext, then updateExecution to SUCCEEDED
 * with expectedVersion: two transactions per execution, with the thing lock, outbox rows and job rollup),
 * against the very same SQL statements replayed in a raw postgres.js loop. The statements are recorded from
 * an unmeasured service run over an identical seed, so the baseline does the same database work and the ratio
 * is the cost of fleetjobs' own code around it. No MQTT. Each timed run starts from a fresh seed.
 */
import { spawnChild } from './lib/child.js';
import { countExecutions, createBenchSchema, seedFleet, thingNames } from './lib/db.js';
import { summarize, mergeHistograms } from './lib/hist.js';
import { pgMeter } from './lib/metrics.js';
import {
  interleave,
  medianOf,
  ratioOf,
  type Measurement,
  type ResultRow,
  type RunContext,
  type Variant,
} from './lib/runner.js';
import type { ClaimCompleteArgs, ClaimCompleteResult, Recording } from './lib/db-worker.js';

async function drive(
  ctx: RunContext,
  args: Omit<ClaimCompleteArgs, 'url' | 'schema' | 'thingNames'>,
  n: number,
  jobs: number,
) {
  const s = await createBenchSchema(ctx.pgUrl);
  try {
    await seedFleet(s, n, jobs);
    const child = await spawnChild(new URL('./lib/db-worker.ts', import.meta.url));
    const pg = pgMeter(ctx.pgUrl);
    try {
      await pg.start();
      const r = await child.call<ClaimCompleteResult>('claimComplete', {
        ...args,
        url: s.url,
        schema: s.schema,
        thingNames: thingNames(n),
      } satisfies ClaimCompleteArgs);
      const pgUsage = await pg.stop();
      const counts = await countExecutions(s.db);
      return { r, pgUsage, counts };
    } finally {
      await pg.close();
      await child.exit();
    }
  } finally {
    await s.drop();
  }
}

export async function runS2(ctx: RunContext): Promise<ResultRow[]> {
  const n = ctx.smoke ? 50 : 500;
  const jobs = ctx.smoke ? 2 : 4;
  const concurrency = ctx.smoke ? 16 : 32;
  const expected = n * jobs;
  ctx.log(`S2 recording the store's statements (${expected} claim + complete pairs)`);
  const rec = await drive(ctx, { concurrency, mode: 'store', record: true }, n, jobs);
  const recording = rec.r.recording as Recording;

  const measure = async (variant: Variant): Promise<Measurement> => {
    const { r, pgUsage, counts } = await drive(
      ctx,
      variant === 'baseline' ? { concurrency, mode: 'replay', recording } : { concurrency, mode: 'store' },
      n,
      jobs,
    );
    const succeeded = counts.SUCCEEDED ?? 0;
    const pending = (counts.QUEUED ?? 0) + (counts.IN_PROGRESS ?? 0);
    return {
      variant,
      value: succeeded / (r.elapsedMs / 1000),
      latency: summarize(mergeHistograms([r.histogram])),
      usage: [r.usage],
      pg: pgUsage,
      // Every seeded execution must end SUCCEEDED exactly once.
      counters: {
        lost: expected - succeeded + pending,
        duplicated: r.duplicated,
        doubleClaimed: r.doubleClaimed,
      },
      extra: { transactions: r.transactions, pairs: succeeded },
    };
  };
  const runs = await interleave(ctx, `S2 ${expected} pairs`, {
    baseline: () => measure('baseline'),
    fleetjobs: () => measure('fleetjobs'),
  });
  const ratio = ratioOf(runs);
  return [
    {
      id: 'S2',
      title: `claim + complete, ${n} things × ${jobs} jobs, ${concurrency} concurrent`,
      unit: 'pairs/s',
      lowerIsBetter: false,
      baselineName: 'same SQL, raw postgres.js',
      runs,
      ratio,
      target: '≥ 0.8 × baseline',
      met: ratio === undefined ? false : ratio.median >= 0.8,
      notes: [
        `latency is per transaction; median fleetjobs p99 ${medianOf(runs, 'fleetjobs', (m) => m.latency?.p99Ms)} ms`,
        `${recording.texts.length} distinct statements, ${recording.workers.reduce((a, w) => a + w.length, 0)} transactions recorded`,
      ],
    },
  ];
}
