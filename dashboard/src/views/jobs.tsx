import { href } from '../router';
import { useLive, type LiveJobs } from '../live';
import { ProgressBar, StatusBadge, totals } from '../components/status';
import { Empty, ErrorNotice, Loading } from '../components/notice';
import { ago, when } from '../format';

/** The newest jobs, kept live by the event stream: new jobs appear on top, bars move as devices report. */
export function JobsList({ live }: { live: LiveJobs }) {
  useLive(live);
  const jobs = live.list();
  return (
    <section class="card">
      <div class="card-head">
        <h2>Jobs</h2>
        <span class="muted small">newest first; new jobs and progress appear as they happen</span>
        <span class="grow" />
        <a class="button primary" href={href.newJob()}>
          New job
        </a>
      </div>
      {live.state === 'reconnecting' && (
        <ErrorNotice
          error={`${live.loaded ? 'The live connection dropped; the list may be behind.' : 'The server cannot be reached.'} Reconnecting… (${live.stateDetail ?? 'no answer'})`}
        />
      )}
      {!live.loaded && live.state !== 'live' ? (
        <Loading />
      ) : jobs.length === 0 ? (
        <Empty>
          No jobs yet. <a href={href.newJob()}>Create one</a> for a thing or a thing group.
        </Empty>
      ) : (
        <table class="jobs">
          <thead>
            <tr>
              <th>Job</th>
              <th>Status</th>
              <th>Type</th>
              <th class="wide">Progress</th>
              <th class="num">Done</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => {
              const { done, total } = totals(job.jobProcessDetails);
              return (
                <tr key={job.jobId} data-job-id={job.jobId}>
                  <td>
                    <a href={href.job(job.jobId)}>{job.jobId}</a>
                  </td>
                  <td>
                    <StatusBadge status={job.status} />
                  </td>
                  <td class="muted">{job.targetSelection ?? ''}</td>
                  <td class="wide">
                    <ProgressBar details={job.jobProcessDetails} />
                  </td>
                  <td class="num done">{job.jobProcessDetails ? `${done}/${total}` : '…'}</td>
                  <td class="muted" title={when(job.createdAt)}>
                    {ago(job.createdAt)}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
