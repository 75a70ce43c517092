/**
 * `npm run bench` runs every scenario (S1–S8), each beside its baseline, and writes bench/results/<date>.md and
 * .json. `--smoke` runs a reduced set in under a minute and exits non-zero on any correctness counter above 0
 * (lost, duplicated, double-claimed) or a scenario that failed, never on timings. `--only S1,S3` picks
 * scenarios; `--reps n` and `--duration s` override the defaults.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { BENCH_DATABASE_URL, dropStaleSchemas } from './lib/db.js';
import { describeMachine, renderMarkdown } from './lib/report.js';
import { correctnessTotal, type ResultRow, type RunContext } from './lib/runner.js';
import { runS1 } from './s1-request-reply.js';
import { runS2 } from './s2-claim-complete.js';
import { runS3 } from './s3-end-to-end.js';
import { runS4 } from './s4-fan-out.js';
import { runS5 } from './s5-sessions.js';
import { runS6 } from './s6-sweep.js';
import { runS7 } from './s7-abuse.js';
import { runS8 } from './s8-cluster.js';

/** In order: S3 takes its baseline from the S1 and S2 rows of the same run. */
const SCENARIOS: {
  id: string;
  smoke: boolean;
  run(ctx: RunContext, earlier: ResultRow[]): Promise<ResultRow[]>;
}[] = [
  { id: 'S1', smoke: true, run: runS1 },
  { id: 'S2', smoke: true, run: runS2 },
  { id: 'S3', smoke: true, run: runS3 },
  { id: 'S4', smoke: false, run: runS4 },
  { id: 'S5', smoke: false, run: runS5 },
  { id: 'S6', smoke: false, run: runS6 },
  { id: 'S7', smoke: false, run: runS7 },
  { id: 'S8', smoke: false, run: runS8 },
];

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    reps: { type: 'string' },
    duration: { type: 'string' },
  },
});
const smoke = values.smoke === true;
const only = values.only?.split(',').map((s) => s.trim().toUpperCase());
const ctx: RunContext = {
  smoke,
  reps: Number(values.reps ?? (smoke ? 1 : 3)),
  durationMs: Number(values.duration ?? (smoke ? 2 : 5)) * 1000,
  pgUrl: BENCH_DATABASE_URL,
  log: (m) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`),
};

const started = Date.now();
await dropStaleSchemas(ctx.pgUrl);
const machine = await describeMachine(ctx.pgUrl);
const rows: ResultRow[] = [];
const errors: { scenario: string; error: string }[] = [];
const date = new Date()
  .toISOString()
  .replace(/:\d\d\.\d+Z$/, 'Z')
  .replace(':', '');
const extraArgs = process.argv.slice(2).filter((a) => a !== '--smoke');
const command = `npm run bench${smoke ? ':smoke' : ''}${extraArgs.length ? ' -- ' + extraArgs.join(' ') : ''}`;
const dir = new URL('./results/', import.meta.url);
const base = `${date}${smoke ? '-smoke' : ''}`;

/** Rewritten after every scenario, so that a run cut short still leaves the scenarios it finished. */
async function writeReport(): Promise<string> {
  const md = renderMarkdown({
    date,
    machine,
    rows,
    errors,
    smoke,
    reps: ctx.reps,
    durationMs: ctx.durationMs,
    command,
  });
  await mkdir(dir, { recursive: true });
  await writeFile(new URL(`${base}.md`, dir), md);
  await writeFile(
    new URL(`${base}.json`, dir),
    JSON.stringify(
      { date, machine, command, reps: ctx.reps, durationMs: ctx.durationMs, rows, errors },
      null,
      2,
    ) + '\n',
  );
  return md;
}

for (const s of SCENARIOS) {
  if (only ? !only.includes(s.id) : smoke && !s.smoke) continue;
  try {
    rows.push(...(await s.run(ctx, rows)));
  } catch (err) {
    const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    ctx.log(`${s.id} failed: ${error}`);
    errors.push({ scenario: s.id, error });
  }
  await writeReport();
}
await dropStaleSchemas(ctx.pgUrl);

const total = correctnessTotal(rows);
const md = await writeReport();
console.log(md);
ctx.log(`wrote bench/results/${base}.md and .json in ${Math.round((Date.now() - started) / 1000)} s`);
if (total.lost + total.duplicated + total.doubleClaimed > 0 || errors.length > 0) {
  console.error(
    `correctness: lost ${total.lost}, duplicated ${total.duplicated}, double-claimed ${total.doubleClaimed}; failed scenarios: ${errors.length}`,
  );
  process.exitCode = 1;
}
