/**
 * S2: claim + complete through the service and store functions (startNext, then updateExecution to SUCCEEDED
 * with expectedVersion, with the thing lock, outbox rows and job rollup), against what the S2 target (docs/performance.md)
 * target means by "the same SQL in a raw postgres.js loop" (fact 5): a naive implementation's plain claim
 * (`UPDATE … WHERE pk = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING`) and guarded complete, one
 * transaction each per device request. Both sides run 32 workers over an identical seed until every execution
 * is SUCCEEDED, checked by the same counters. No MQTT. Each timed run starts from a fresh seed.
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
import type { ClaimCompleteArgs, ClaimCompleteResult } from './lib/db-worker.js';

async function drive(
  ctx: RunContext,
  mode: ClaimCompleteArgs['mode'],
  concurrency: number,
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
        url: s.url,
        schema: s.schema,
        concurrency,
        thingNames: thingNames(n),
        mode,
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

  const measure = async (variant: Variant): Promise<Measurement> => {
    const { r, pgUsage, counts } = await drive(
      ctx,
      variant === 'baseline' ? 'raw' : 'store',
      concurrency,
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
      extra: {
        transactions: r.transactions,
        pairs: succeeded,
        ...(r.guardMisses > 0 ? { guardMisses: r.guardMisses } : {}),
      },
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
      baselineName: 'naive claim + complete, raw postgres.js',
      runs,
      ratio,
      target: '≥ 0.8 × baseline',
      met: ratio === undefined ? false : ratio.median >= 0.8,
      notes: [
        `latency is per transaction (baseline: per statement; fleetjobs: per service call, batched or not); median fleetjobs p99 ${medianOf(runs, 'fleetjobs', (m) => m.latency?.p99Ms)} ms, baseline p99 ${medianOf(runs, 'baseline', (m) => m.latency?.p99Ms)} ms`,
      ],
    },
  ];
}
