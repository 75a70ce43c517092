import { describe, expect, it } from 'vitest';
import {
  DEVICE_SETTABLE_STATUSES,
  EXECUTION_STATUSES,
  STATUS_COUNTERS,
  TERMINAL_STATUSES,
  deviceTransition,
  isTerminal,
} from '../../src/protocol/states.js';
import { PENDING_SQL, statusCountsSql } from '../../src/store/states-sql.js';
import { counts } from '../../src/cli/commands/format.js';

describe('device transition table', () => {
  const expected = (from: string, to: string) => {
    if (!(DEVICE_SETTABLE_STATUSES as readonly string[]).includes(to)) return 'InvalidRequest';
    if ((TERMINAL_STATUSES as readonly string[]).includes(from)) return 'InvalidStateTransition';
    return 'ok';
  };

  for (const from of EXECUTION_STATUSES) {
    for (const to of [...EXECUTION_STATUSES, 'BOGUS']) {
      it(`${from} -> ${to} is ${expected(from, to)}`, () => {
        const verdict = deviceTransition(from, to);
        expect(verdict.ok ? 'ok' : verdict.code).toBe(expected(from, to));
      });
    }
  }

  it('lets IN_PROGRESS report progress again (IN_PROGRESS -> IN_PROGRESS)', () => {
    expect(deviceTransition('IN_PROGRESS', 'IN_PROGRESS')).toEqual({ ok: true });
  });

  it('lets a device reject a QUEUED execution without starting it', () => {
    expect(deviceTransition('QUEUED', 'REJECTED')).toEqual({ ok: true });
  });

  it('treats exactly six statuses as terminal', () => {
    expect(EXECUTION_STATUSES.filter(isTerminal)).toEqual([...TERMINAL_STATUSES]);
    expect(TERMINAL_STATUSES).toHaveLength(6);
  });
});

describe('status counters', () => {
  it('name one jobProcessDetails counter per status, and the SQL and the CLI count every one', () => {
    const counters = Object.values(STATUS_COUNTERS);
    expect(Object.keys(STATUS_COUNTERS).sort()).toEqual([...EXECUTION_STATUSES].sort());
    expect(new Set(counters).size).toBe(EXECUTION_STATUSES.length);
    const sql = statusCountsSql('l.status');
    for (const [status, counter] of Object.entries(STATUS_COUNTERS)) {
      expect(sql).toContain(`'${counter}', count(*) FILTER (WHERE l.status = '${status}')`);
    }
    const one = Object.fromEntries(counters.map((c) => [c, 1]));
    expect(counts(one)).toMatchObject({ done: TERMINAL_STATUSES.length, total: EXECUTION_STATUSES.length });
    expect(PENDING_SQL).toBe("'QUEUED', 'IN_PROGRESS'");
  });
});
