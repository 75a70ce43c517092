import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, query, seg } from '../api';
import type { LiveJobs } from '../live';
import { href } from '../router';
import { counts, ProgressBar, StatusBadge, StatusFilter, totals } from '../components/status';
import { ExecutionCells, ExecutionsTable } from '../components/executions';
import { Empty, ErrorNotice, Loading } from '../components/notice';
import { CancelJobDialog } from './cancel-job';
import { ExecutionDetail } from './execution-detail';
import { when } from '../format';
import { thingNameOf, type ExecutionStatus, type ExecutionSummary, type Job } from '../types';

interface ExecutionsPage {
  executionSummaries: { thingArn: string; jobExecutionSummary: ExecutionSummary }[];
  nextToken?: string;
}

const PAGE = 100;

/** One job: its counters by status, its executions (filtered by status), each device's details, cancel. */
export function JobDetail({ jobId, live }: { jobId: string; live: LiveJobs }) {
  const [job, setJob] = useState<Job>();
  const [document, setDocument] = useState<string>();
  const [error, setError] = useState<string>();
  const [filter, setFilter] = useState<ExecutionStatus | ''>('');
  const [rows, setRows] = useState<ExecutionsPage['executionSummaries']>();
  const [nextToken, setNextToken] = useState<string>();
  const [rowsError, setRowsError] = useState<string>();
  const [open, setOpen] = useState<string>();
  const [cancelling, setCancelling] = useState(false);
  const [version, setVersion] = useState(0);
  const filterRef = useRef(filter);
  filterRef.current = filter;

  const loadJob = useCallback(async () => {
    try {
      const { job } = await api<{ job: Job }>('GET', `/jobs/${seg(jobId)}`);
      setJob(job);
      setError(undefined);
      live.put(job);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  }, [jobId, live]);

  const loadRows = useCallback(async () => {
    const status = filterRef.current;
    try {
      const page = await api<ExecutionsPage>(
        'GET',
        `/jobs/${seg(jobId)}/things${query({ status, maxResults: PAGE })}`,
      );
      if (status !== filterRef.current) return;
      setRows(page.executionSummaries);
      setNextToken(page.nextToken);
      setRowsError(undefined);
    } catch (err) {
      setRowsError(err instanceof Error ? err.message : String(err));
    }
  }, [jobId]);

  const loadMore = async () => {
    if (nextToken === undefined) return;
    try {
      const page = await api<ExecutionsPage>(
        'GET',
        `/jobs/${seg(jobId)}/things${query({ status: filter, maxResults: PAGE, nextToken })}`,
      );
      setRows((r) => [...(r ?? []), ...page.executionSummaries]);
      setNextToken(page.nextToken);
    } catch (err) {
      setRowsError(err instanceof Error ? err.message : String(err));
    }
  };

  useEffect(() => {
    setJob(undefined);
    setDocument(undefined);
    void loadJob();
    api<{ document: string }>('GET', `/jobs/${seg(jobId)}/job-document`)
      .then((d) => setDocument(d.document))
      .catch(() => setDocument(undefined));
  }, [jobId, loadJob]);

  useEffect(() => {
    setRows(undefined);
    void loadRows();
  }, [filter, loadRows]);

  // The job moved (an event, or new counters): reload it and the visible page, at most every 300 ms.
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const unsubscribe = live.subscribeJob(jobId, () => {
      if (timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        void loadJob();
        void loadRows();
        setVersion((v) => v + 1);
      }, 300);
    });
    return () => {
      unsubscribe();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [jobId, live, loadJob, loadRows]);

  if (error && !job) {
    return (
      <section class="card">
        <p>
          <a href={href.jobs()}>← Jobs</a>
        </p>
        <ErrorNotice error={error} onRetry={() => void loadJob()} />
      </section>
    );
  }
  if (!job) return <Loading />;

  const { done, total } = totals(job.jobProcessDetails);
  const cancellable = job.status === 'IN_PROGRESS' || job.status === 'SCHEDULED';
  return (
    <>
      <section class="card">
        <div class="card-head">
          <a href={href.jobs()}>← Jobs</a>
          <h2 class="job-title">{job.jobId}</h2>
          <StatusBadge status={job.status} />
          {job.forceCanceled && <span class="badge s-FAILED">force-canceled</span>}
          <span class="grow" />
          {cancellable && (
            <button type="button" class="danger" onClick={() => setCancelling(true)}>
              Cancel job…
            </button>
          )}
        </div>
        {error && <ErrorNotice error={error} />}
        {job.description && <p>{job.description}</p>}
        <dl class="facts">
          <dt>Type</dt>
          <dd>{job.targetSelection}</dd>
          <dt>Created</dt>
          <dd>{when(job.createdAt)}</dd>
          <dt>Updated</dt>
          <dd>{when(job.lastUpdatedAt)}</dd>
          {job.completedAt !== undefined && (
            <>
              <dt>Completed</dt>
              <dd>{when(job.completedAt)}</dd>
            </>
          )}
          {job.reasonCode && (
            <>
              <dt>Reason</dt>
              <dd>{job.reasonCode}</dd>
            </>
          )}
          {job.comment && (
            <>
              <dt>Comment</dt>
              <dd>{job.comment}</dd>
            </>
          )}
          {job.jobTemplateArn && (
            <>
              <dt>Template</dt>
              <dd>{job.jobTemplateArn}</dd>
            </>
          )}
          <dt>Targets</dt>
          <dd class="targets">{(job.targets ?? []).join(', ')}</dd>
        </dl>
        <div class="progress-line">
          <ProgressBar details={job.jobProcessDetails} />
          <span class="num done">
            {done}/{total} done
          </span>
        </div>
        <div class="tiles" role="group" aria-label="executions by status">
          {counts(job.jobProcessDetails).map(({ status, n }) => (
            <button
              type="button"
              key={status}
              class={`tile${filter === status ? ' selected' : ''}${n === 0 ? ' zero' : ''}`}
              data-status={status}
              onClick={() => setFilter(filter === status ? '' : status)}
              title={filter === status ? 'show all executions' : `show ${status} executions only`}
            >
              <span class={`dot s-${status}`} />
              <span class="tile-n">{n}</span>
              <span class="tile-label">{status.replace(/_/g, ' ')}</span>
            </button>
          ))}
        </div>
        {document !== undefined && (
          <details class="document">
            <summary>Job document</summary>
            <pre>{pretty(document)}</pre>
          </details>
        )}
      </section>

      <section class="card">
        <div class="card-head">
          <h2>Executions</h2>
          <span class="grow" />
          <StatusFilter value={filter} onChange={setFilter} />
        </div>
        {rowsError && <ErrorNotice error={rowsError} onRetry={() => void loadRows()} />}
        {rows === undefined ? (
          <Loading />
        ) : rows.length === 0 ? (
          <Empty>{filter ? `No ${filter} executions.` : 'This job has no executions yet.'}</Empty>
        ) : (
          <ExecutionsTable first="Thing">
            {rows.map(({ thingArn, jobExecutionSummary: e }) => {
              const thingName = thingNameOf(thingArn);
              const key = `${thingName}#${e.executionNumber ?? ''}`;
              const expanded = open === thingName;
              return [
                <tr
                  key={key}
                  data-thing={thingName}
                  class={`clickable${expanded ? ' expanded' : ''}`}
                  onClick={() => setOpen(expanded ? undefined : thingName)}
                  title="show statusDetails and history"
                >
                  <td>
                    <span class="caret">{expanded ? '▾' : '▸'}</span>{' '}
                    <a href={href.thing(thingName)} onClick={(ev) => ev.stopPropagation()}>
                      {thingName}
                    </a>
                  </td>
                  <ExecutionCells e={e} />
                </tr>,
                expanded ? (
                  <tr key={`${key}-detail`} class="detail-row">
                    <td colSpan={7}>
                      <ExecutionDetail jobId={jobId} thingName={thingName} version={version} />
                    </td>
                  </tr>
                ) : null,
              ];
            })}
          </ExecutionsTable>
        )}
        {nextToken !== undefined && (
          <button type="button" class="more" onClick={() => void loadMore()}>
            Load more
          </button>
        )}
      </section>

      {cancelling && (
        <CancelJobDialog
          job={job}
          onClose={() => setCancelling(false)}
          onCancelled={() => {
            setCancelling(false);
            void loadJob();
            void loadRows();
          }}
        />
      )}
    </>
  );
}

function pretty(document: string): string {
  try {
    return JSON.stringify(JSON.parse(document), null, 2);
  } catch {
    return document;
  }
}
