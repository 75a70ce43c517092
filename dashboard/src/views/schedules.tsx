import { useEffect, useState } from 'preact/hooks';
import { api, query, seg } from '../api';
import { href } from '../router';
import { StatusBadge } from '../components/status';
import { Empty, ErrorNotice, Loading } from '../components/notice';
import { ago, when } from '../format';
import type { JobSchedule, JobScheduleRun } from '../types';

/** How many of a schedule's latest runs the list shows; the selected schedule shows a full page. */
const LAST_RUNS = 3;

interface Row {
  schedule: JobSchedule;
  runs: JobScheduleRun[];
}

/** The job schedules with their latest runs, pause/resume, and the runs of the selected schedule. */
export function SchedulesView({ scheduleId }: { scheduleId?: string }) {
  const [rows, setRows] = useState<Row[]>();
  const [error, setError] = useState<string>();
  const [attempt, setAttempt] = useState(0);
  const [busy, setBusy] = useState<string>();

  useEffect(() => {
    let stale = false;
    api<{ schedules: JobSchedule[] }>('GET', `/job-schedules${query({ maxResults: 100 })}`)
      .then(({ schedules }) =>
        Promise.all(
          schedules.map(async (schedule) => ({
            schedule,
            runs: (
              await api<{ runs: JobScheduleRun[] }>(
                'GET',
                `/job-schedules/${seg(schedule.scheduleId)}/runs${query({ maxResults: LAST_RUNS })}`,
              )
            ).runs,
          })),
        ),
      )
      .then((r) => {
        if (stale) return;
        setRows(r);
        setError(undefined);
      })
      .catch((err: unknown) => !stale && setError(err instanceof Error ? err.message : String(err)));
    return () => {
      stale = true;
    };
  }, [attempt]);

  const toggle = async (s: JobSchedule) => {
    setBusy(s.scheduleId);
    try {
      const action = s.state === 'PAUSED' ? 'resume' : 'pause';
      const updated = await api<JobSchedule>('PUT', `/job-schedules/${seg(s.scheduleId)}/${action}`);
      setRows((rs) =>
        rs?.map((r) => (r.schedule.scheduleId === s.scheduleId ? { ...r, schedule: updated } : r)),
      );
      setError(undefined);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <>
      <section class="card">
        <div class="card-head">
          <h2>Schedules</h2>
          <span class="muted small">
            recurring jobs: each tick creates a job from the schedule's template
          </span>
        </div>
        {error && <ErrorNotice error={error} onRetry={() => setAttempt((n) => n + 1)} />}
        {rows === undefined ? (
          error ? null : (
            <Loading />
          )
        ) : rows.length === 0 ? (
          <Empty>
            No schedules yet. Create one with <code>PUT /job-schedules/&#123;scheduleId&#125;</code>.
          </Empty>
        ) : (
          <table class="schedules">
            <thead>
              <tr>
                <th>Schedule</th>
                <th>Expression</th>
                <th>Timezone</th>
                <th>State</th>
                <th>Next run</th>
                <th>Last runs</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map(({ schedule: s, runs }) => (
                <tr
                  key={s.scheduleId}
                  data-schedule-id={s.scheduleId}
                  class={s.scheduleId === scheduleId ? 'expanded' : ''}
                >
                  <td>
                    <a href={href.schedule(s.scheduleId)}>{s.scheduleId}</a>
                    {s.description && <div class="muted small">{s.description}</div>}
                  </td>
                  <td class="mono">{s.scheduleExpression}</td>
                  <td class="muted">{s.scheduleExpressionTimezone}</td>
                  <td class="state">
                    <StatusBadge status={s.state} />
                  </td>
                  <td class="muted">{when(s.nextRunAt)}</td>
                  <td class="runs">
                    {runs.length === 0 ? (
                      <span class="muted">none yet</span>
                    ) : (
                      runs.map((r) => (
                        <a
                          key={r.scheduledAt}
                          class="run"
                          href={r.outcome === 'CREATED' ? href.job(r.jobId) : href.schedule(s.scheduleId)}
                          title={`${r.jobId} at ${when(r.scheduledAt)}${r.reason ? `: ${r.reason}` : ''}`}
                        >
                          <StatusBadge status={r.outcome} />
                        </a>
                      ))
                    )}
                  </td>
                  <td class="num">
                    <button type="button" disabled={busy === s.scheduleId} onClick={() => void toggle(s)}>
                      {s.state === 'PAUSED' ? 'Resume' : 'Pause'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {scheduleId !== undefined && <ScheduleRuns key={`${scheduleId}#${attempt}`} scheduleId={scheduleId} />}
    </>
  );
}

/** The runs of one schedule, newest first, each linking to the job its tick created. */
function ScheduleRuns({ scheduleId }: { scheduleId: string }) {
  const [runs, setRuns] = useState<JobScheduleRun[]>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    let stale = false;
    api<{ runs: JobScheduleRun[] }>(
      'GET',
      `/job-schedules/${seg(scheduleId)}/runs${query({ maxResults: 100 })}`,
    )
      .then((r) => !stale && setRuns(r.runs))
      .catch((err: unknown) => !stale && setError(err instanceof Error ? err.message : String(err)));
    return () => {
      stale = true;
    };
  }, [scheduleId]);

  return (
    <section class="card schedule-runs">
      <div class="card-head">
        <h2>
          Runs of <span class="mono">{scheduleId}</span>
        </h2>
        <span class="muted small">newest first</span>
      </div>
      {error ? (
        <ErrorNotice error={error} />
      ) : runs === undefined ? (
        <Loading />
      ) : runs.length === 0 ? (
        <Empty>This schedule has not ticked yet.</Empty>
      ) : (
        <table class="runs">
          <thead>
            <tr>
              <th>Tick</th>
              <th>Outcome</th>
              <th>Job</th>
              <th>Job status</th>
              <th>Reason</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.scheduledAt} data-job-id={r.jobId}>
                <td>{when(r.scheduledAt)}</td>
                <td>
                  <StatusBadge status={r.outcome} />
                </td>
                <td>
                  {r.outcome === 'CREATED' ? (
                    <a href={href.job(r.jobId)}>{r.jobId}</a>
                  ) : (
                    <span class="mono muted">{r.jobId}</span>
                  )}
                </td>
                <td>{r.jobStatus ? <StatusBadge status={r.jobStatus} /> : <span class="muted">—</span>}</td>
                <td class="muted">{r.reason ?? ''}</td>
                <td class="muted" title={when(r.createdAt)}>
                  {ago(r.createdAt)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
