import {
  EXECUTION_STATUSES,
  PROGRESS_ORDER,
  STATUS_COUNTERS,
  type ExecutionStatus,
  type JobProcessDetails,
} from '../types';

/** The executions tables' status filter: every status, or all of them (''). */
export function StatusFilter(props: {
  value: ExecutionStatus | '';
  onChange: (status: ExecutionStatus | '') => void;
}) {
  return (
    <label class="inline">
      Status
      <select
        name="status"
        value={props.value}
        onChange={(e) => props.onChange(e.currentTarget.value as ExecutionStatus | '')}
      >
        <option value="">all</option>
        {EXECUTION_STATUSES.map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
    </label>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge s-${status}`}>{status.replace(/_/g, ' ')}</span>;
}

export function counts(details: JobProcessDetails | undefined): { status: ExecutionStatus; n: number }[] {
  return EXECUTION_STATUSES.map((status) => ({ status, n: details?.[STATUS_COUNTERS[status]] ?? 0 }));
}

export function totals(details: JobProcessDetails | undefined): { done: number; total: number } {
  let done = 0;
  let total = 0;
  for (const { status, n } of counts(details)) {
    total += n;
    if (status !== 'QUEUED' && status !== 'IN_PROGRESS') done += n;
  }
  return { done, total };
}

export function ProgressBar({ details }: { details: JobProcessDetails | undefined }) {
  const byStatus = new Map(counts(details).map((c) => [c.status, c.n]));
  const { total } = totals(details);
  if (details === undefined) return <div class="bar bar-unknown" aria-label="progress not known yet" />;
  const label = PROGRESS_ORDER.filter((s) => (byStatus.get(s) ?? 0) > 0)
    .map((s) => `${s}: ${byStatus.get(s)}`)
    .join(', ');
  return (
    <div class="bar" role="img" aria-label={label || 'no executions'}>
      {PROGRESS_ORDER.map((s) => {
        const n = byStatus.get(s) ?? 0;
        return n > 0 ? (
          <span key={s} class={`s-${s}`} style={{ width: `${(100 * n) / total}%` }} title={`${s}: ${n}`} />
        ) : null;
      })}
    </div>
  );
}
