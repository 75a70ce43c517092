import { useEffect, useState } from 'preact/hooks';
import { api, query, seg } from '../api';
import { href } from '../router';
import { Dialog } from '../components/dialog';
import { StatusBadge } from '../components/status';
import { Empty, ErrorNotice, Loading } from '../components/notice';
import { ago, when } from '../format';
import type { DeadLetter, Execution } from '../types';

const key = (d: DeadLetter) => `${d.thingName}/${d.jobId}`;

/** Executions that failed for good (FAILED or TIMED_OUT, no retry left), with each attempt's statusDetails. */
export function DeadLettersView() {
  const [rows, setRows] = useState<DeadLetter[]>();
  const [error, setError] = useState<string>();
  const [attempt, setAttempt] = useState(0);
  const [confirming, setConfirming] = useState<DeadLetter>();
  const [retried, setRetried] = useState<{ thingName: string; jobId: string; executionNumber?: number }>();

  useEffect(() => {
    let stale = false;
    api<{ executions: DeadLetter[] }>(
      'GET',
      `/executions${query({ retriesExhausted: true, maxResults: 100 })}`,
    )
      .then((r) => {
        if (stale) return;
        setRows(r.executions);
        setError(undefined);
      })
      .catch((err: unknown) => !stale && setError(err instanceof Error ? err.message : String(err)));
    return () => {
      stale = true;
    };
  }, [attempt]);

  return (
    <section class="card">
      <div class="card-head">
        <h2>Dead letters</h2>
        <span class="muted small">executions that failed after their last retry, newest first</span>
        <span class="grow" />
        <button type="button" class="link" onClick={() => setAttempt((n) => n + 1)}>
          Refresh
        </button>
      </div>
      {error && <ErrorNotice error={error} onRetry={() => setAttempt((n) => n + 1)} />}
      {retried && (
        <div class="notice notice-ok" role="status">
          <span>
            Queued execution #{retried.executionNumber} of{' '}
            <a href={href.job(retried.jobId)}>{retried.jobId}</a> on{' '}
            <a href={href.thing(retried.thingName)}>{retried.thingName}</a>.
          </span>
        </div>
      )}
      {rows === undefined ? (
        error ? null : (
          <Loading />
        )
      ) : rows.length === 0 ? (
        <Empty>No dead letters: every failed execution has been retried or has a retry waiting.</Empty>
      ) : (
        <table class="dead-letters">
          <thead>
            <tr>
              <th>Job</th>
              <th>Thing</th>
              <th>Status</th>
              <th class="wide">Attempts (statusDetails)</th>
              <th>Failed</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.map((d) => (
              <tr key={key(d)} data-job-id={d.jobId} data-thing={d.thingName}>
                <td>
                  <a href={href.job(d.jobId)}>{d.jobId}</a>
                </td>
                <td>
                  <a href={href.thing(d.thingName)}>{d.thingName}</a>
                </td>
                <td>
                  <StatusBadge status={d.status} />
                </td>
                <td class="wide attempts">
                  <ol>
                    {d.attempts.map((a) => (
                      <li key={a.executionNumber}>
                        <span class="muted">#{a.executionNumber}</span> <StatusBadge status={a.status} />{' '}
                        <span class="mono small">{details(a.statusDetails?.detailsMap)}</span>
                      </li>
                    ))}
                  </ol>
                </td>
                <td class="muted" title={when(d.lastUpdatedAt)}>
                  {ago(d.lastUpdatedAt)}
                </td>
                <td class="num">
                  <button type="button" onClick={() => setConfirming(d)}>
                    Retry now…
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {confirming && (
        <RetryDialog
          deadLetter={confirming}
          onClose={() => setConfirming(undefined)}
          onRetried={(execution) => {
            setRetried({
              thingName: confirming.thingName,
              jobId: confirming.jobId,
              executionNumber: execution.executionNumber,
            });
            setRows((rs) => rs?.filter((r) => key(r) !== key(confirming)));
            setConfirming(undefined);
          }}
        />
      )}
    </section>
  );
}

function details(map: Record<string, string> | undefined): string {
  const entries = Object.entries(map ?? {});
  return entries.length === 0 ? '—' : entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

/** RetryJobExecution behind a confirmation: queues a new execution, and the device is notified. */
function RetryDialog({
  deadLetter: d,
  onClose,
  onRetried,
}: {
  deadLetter: DeadLetter;
  onClose: () => void;
  onRetried: (execution: Execution) => void;
}) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const confirm = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const { execution } = await api<{ execution: Execution }>(
        'PUT',
        `/things/${seg(d.thingName)}/jobs/${seg(d.jobId)}/retry`,
      );
      onRetried(execution);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };
  return (
    <Dialog title={`Retry ${d.jobId} on ${d.thingName}?`} onClose={onClose}>
      <form onSubmit={confirm} class="stack">
        <p>
          A new execution (#{(d.executionNumber ?? 0) + 1}) is queued for <strong>{d.thingName}</strong> and
          the device is notified. It gets no automatic retries beyond what the job's retry configuration has
          left.
        </p>
        {error && <ErrorNotice error={error} />}
        <div class="actions">
          <button type="button" onClick={onClose}>
            Keep it failed
          </button>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Retrying…' : 'Retry now'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
