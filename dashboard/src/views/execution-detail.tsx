import { useEffect, useState } from 'preact/hooks';
import { api, query, seg } from '../api';
import { StatusBadge } from '../components/status';
import { ErrorNotice, Loading } from '../components/notice';
import { when } from '../format';
import type { Execution, ExecutionSummary } from '../types';

/**
 * One device's execution of a job: the latest execution's statusDetails (what the device last reported) and
 * its history, every execution number (a retry is a new one) with its status and times.
 */
export function ExecutionDetail({
  jobId,
  thingName,
  version,
}: {
  jobId: string;
  thingName: string;
  /** Changes when the job moved, to read the execution again. */
  version: number;
}) {
  const [execution, setExecution] = useState<Execution>();
  const [history, setHistory] = useState<ExecutionSummary[]>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    let stale = false;
    Promise.all([
      api<{ execution: Execution }>('GET', `/things/${seg(thingName)}/jobs/${seg(jobId)}`),
      api<{ executionSummaries: { jobExecutionSummary: ExecutionSummary }[] }>(
        'GET',
        `/things/${seg(thingName)}/jobs${query({ jobId, maxResults: 100 })}`,
      ),
    ])
      .then(([one, list]) => {
        if (stale) return;
        setExecution(one.execution);
        setHistory(list.executionSummaries.map((s) => s.jobExecutionSummary));
        setError(undefined);
      })
      .catch((err: unknown) => !stale && setError(err instanceof Error ? err.message : String(err)));
    return () => {
      stale = true;
    };
  }, [jobId, thingName, version]);

  if (error) return <ErrorNotice error={error} />;
  if (!execution || !history) return <Loading />;
  const details = Object.entries(execution.statusDetails?.detailsMap ?? {});
  return (
    <div class="execution-detail">
      <div>
        <h3>statusDetails</h3>
        {details.length === 0 ? (
          <p class="muted">The device has reported no statusDetails.</p>
        ) : (
          <table class="kv">
            <tbody>
              {details.map(([k, v]) => (
                <tr key={k}>
                  <th>{k}</th>
                  <td>{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p class="muted small">
          versionNumber {execution.versionNumber ?? '—'}
          {execution.approximateSecondsBeforeTimedOut !== undefined &&
            ` · times out in about ${execution.approximateSecondsBeforeTimedOut} s`}
          {execution.forceCanceled ? ' · force-canceled' : ''}
        </p>
      </div>
      <div>
        <h3>History</h3>
        <table class="history">
          <thead>
            <tr>
              <th class="num">#</th>
              <th>Status</th>
              <th>Queued</th>
              <th>Started</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {history.map((h) => (
              <tr key={h.executionNumber}>
                <td class="num">{h.executionNumber}</td>
                <td>
                  <StatusBadge status={h.status} />
                </td>
                <td class="muted">{when(h.queuedAt)}</td>
                <td class="muted">{when(h.startedAt)}</td>
                <td class="muted">{when(h.lastUpdatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
