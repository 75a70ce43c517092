import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, query, seg } from '../api';
import { href } from '../router';
import { StatusFilter } from '../components/status';
import { ExecutionCells, ExecutionsTable } from '../components/executions';
import { Empty, ErrorNotice, Loading } from '../components/notice';
import type { ExecutionStatus, ExecutionSummary, Thing } from '../types';

interface ThingExecutions {
  executionSummaries: { jobId: string; jobExecutionSummary: ExecutionSummary }[];
  nextToken?: string;
}

/** One thing: its attributes and its executions across jobs, newest first. */
export function ThingView({ thingName }: { thingName: string }) {
  const [thing, setThing] = useState<Thing>();
  const [rows, setRows] = useState<ThingExecutions['executionSummaries']>();
  const [filter, setFilter] = useState<ExecutionStatus | ''>('');
  const [error, setError] = useState<string>();
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let stale = false;
    setRows(undefined);
    Promise.all([
      api<Thing>('GET', `/things/${seg(thingName)}`),
      api<ThingExecutions>(
        'GET',
        `/things/${seg(thingName)}/jobs${query({ status: filter, maxResults: 100 })}`,
      ),
    ])
      .then(([t, list]) => {
        if (stale) return;
        setThing(t);
        setRows(list.executionSummaries);
        setError(undefined);
      })
      .catch((err: unknown) => !stale && setError(err instanceof Error ? err.message : String(err)));
    return () => {
      stale = true;
    };
  }, [thingName, filter, attempt]);

  const attributes = Object.entries(thing?.attributes ?? {});
  return (
    <section class="card">
      <div class="card-head">
        <a href={href.jobs()}>← Jobs</a>
        <h2>
          Thing <span class="mono">{thingName}</span>
        </h2>
        {thing?.thingTypeName && <span class="badge">{thing.thingTypeName}</span>}
        <span class="grow" />
        <StatusFilter value={filter} onChange={setFilter} />
      </div>
      {error && <ErrorNotice error={error} onRetry={() => setAttempt((n) => n + 1)} />}
      {attributes.length > 0 && (
        <dl class="facts">
          {attributes.map(([k, v]) => (
            <Fragment key={k}>
              <dt>{k}</dt>
              <dd>{v}</dd>
            </Fragment>
          ))}
        </dl>
      )}
      {error ? null : rows === undefined ? (
        <Loading />
      ) : rows.length === 0 ? (
        <Empty>
          {filter ? `No ${filter} executions on this thing.` : 'No job has run on this thing yet.'}
        </Empty>
      ) : (
        <ExecutionsTable first="Job">
          {rows.map(({ jobId, jobExecutionSummary: e }) => (
            <tr key={`${jobId}#${e.executionNumber ?? ''}`} data-job-id={jobId}>
              <td>
                <a href={href.job(jobId)}>{jobId}</a>
              </td>
              <ExecutionCells e={e} />
            </tr>
          ))}
        </ExecutionsTable>
      )}
    </section>
  );
}
