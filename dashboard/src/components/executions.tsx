import type { ComponentChildren } from 'preact';
import { StatusBadge } from './status';
import { when } from '../format';
import type { ExecutionSummary } from '../types';

/** The executions table both the job and the thing view show; `first` names its first column. */
export function ExecutionsTable({ first, children }: { first: string; children: ComponentChildren }) {
  return (
    <table class="executions">
      <thead>
        <tr>
          <th>{first}</th>
          <th>Status</th>
          <th class="num">#</th>
          <th class="num">Retry</th>
          <th>Queued</th>
          <th>Started</th>
          <th>Updated</th>
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

/** An execution's cells after the first column, in ExecutionsTable's order. */
export function ExecutionCells({ e }: { e: ExecutionSummary }) {
  return (
    <>
      <td>
        <StatusBadge status={e.status} />
      </td>
      <td class="num">{e.executionNumber}</td>
      <td class="num">{e.retryAttempt ?? 0}</td>
      <td class="muted">{when(e.queuedAt)}</td>
      <td class="muted">{when(e.startedAt)}</td>
      <td class="muted">{when(e.lastUpdatedAt)}</td>
    </>
  );
}
