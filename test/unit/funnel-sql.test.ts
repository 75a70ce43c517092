import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/protocol/limits.js';
import { DEVICE_SETTABLE_STATUSES } from '../../src/protocol/states.js';
import { PENDING_SQL, statusCountsSql } from '../../src/store/states-sql.js';
import { HEAD_ORDER_SQL, JOB_DONE_SQL } from '../../src/store/notifications.js';

const sql = readFileSync(new URL('../../migrations/0006_funnel_functions.sql', import.meta.url), 'utf8');
const cheaper = readFileSync(
  new URL('../../migrations/0009_cheaper_notify_and_events.sql', import.meta.url),
  'utf8',
);
const fanoutEvents = readFileSync(
  new URL('../../migrations/0010_fanout_events.sql', import.meta.url),
  'utf8',
);
const sweep = readFileSync(
  new URL('../../migrations/0007_timeout_sweep_function.sql', import.meta.url),
  'utf8',
);

describe('the write funnel in SQL (migration 0006)', () => {
  it('uses the status lists, counters, head order and limits that src/protocol defines', () => {
    const pending = [...sql.matchAll(/status IN \(([^)]*)\)/g)].map((m) => m[1]);
    const settable = DEVICE_SETTABLE_STATUSES.map((s) => `'${s}'`).join(', ');
    expect(pending.length).toBeGreaterThan(5);
    for (const list of pending) expect([PENDING_SQL, `'FAILED', 'TIMED_OUT'`]).toContain(list);
    expect(sql).toContain(`x.wanted IN (${settable})`);
    expect(sql).toContain(statusCountsSql('l.status'));
    // The head order: fj_notify (twice), fj_notify_next and fj_device_batch, and nothing else.
    expect(sql.split(`ORDER BY ${HEAD_ORDER_SQL}`)).toHaveLength(5);
    expect(sql.match(/ORDER BY \(e\.status <> 'IN_PROGRESS'\)/g)).toHaveLength(4);
    expect(sql).toContain(`ORDER BY ${HEAD_ORDER_SQL} LIMIT ${LIMITS.MAX_PENDING_LIST}) e`);
    expect(sql).toContain(`p_retry_attempt < ${LIMITS.MAX_RETRIES_TOTAL}`);
  });

  it('completes a job on the condition the rollup sweep selects by (fj_complete_jobs: the check, then under lock)', () => {
    const flat = (text: string) => text.replace(/\s+/g, ' ');
    expect(flat(sql).split(flat(JOB_DONE_SQL))).toHaveLength(3);
  });

  it('builds notify over the pending statuses, in head order, at most MAX_PENDING_LIST (migration 0009)', () => {
    const lists = [...cheaper.matchAll(/status IN \(([^)]*)\)/g)].map((m) => m[1]);
    expect(lists).toHaveLength(2);
    for (const list of lists) expect(list).toBe(PENDING_SQL);
    // The list and the count of its IN_PROGRESS items read the same rows.
    expect(cheaper.split(`ORDER BY ${HEAD_ORDER_SQL} LIMIT ${LIMITS.MAX_PENDING_LIST})`)).toHaveLength(3);
  });

  it('classifies changes over the same status lists in the fanout-events version of fj_after_change (migration 0010)', () => {
    const lists = [...fanoutEvents.matchAll(/status IN \(([^)]*)\)/g)].map((m) => m[1]);
    expect(lists).toHaveLength(5);
    for (const list of lists) expect([PENDING_SQL, `'FAILED', 'TIMED_OUT'`]).toContain(list);
  });

  it('sweeps timeouts over the pending statuses (migration 0007)', () => {
    const lists = [...sweep.matchAll(/status IN \(([^)]*)\)/g)].map((m) => m[1]);
    expect(lists).toHaveLength(2);
    for (const list of lists) expect(list).toBe(PENDING_SQL);
  });
});
