import { useState } from 'preact/hooks';
import { api, query, seg } from '../api';
import { Dialog } from '../components/dialog';
import { ErrorNotice } from '../components/notice';
import type { Job } from '../types';

/** CancelJob behind a confirmation: soft cancels the QUEUED executions, force the IN_PROGRESS ones too. */
export function CancelJobDialog({
  job,
  onClose,
  onCancelled,
}: {
  job: Job;
  onClose: () => void;
  onCancelled: () => void;
}) {
  const [force, setForce] = useState(false);
  const [comment, setComment] = useState('');
  const [reasonCode, setReasonCode] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const queued = job.jobProcessDetails?.numberOfQueuedThings ?? 0;
  const inProgress = job.jobProcessDetails?.numberOfInProgressThings ?? 0;

  const confirm = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api('PUT', `/jobs/${seg(job.jobId)}/cancel${query({ force })}`, {
        ...(comment.trim() ? { comment: comment.trim() } : {}),
        ...(reasonCode.trim() ? { reasonCode: reasonCode.trim() } : {}),
      });
      onCancelled();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <Dialog title={`Cancel job ${job.jobId}?`} onClose={onClose}>
      <form onSubmit={confirm} class="stack">
        <fieldset>
          <legend>How</legend>
          <label class="choice">
            <input type="radio" name="force" checked={!force} onChange={() => setForce(false)} />
            <span>
              <strong>Cancel</strong> — {plural(queued, 'queued execution')}{' '}
              {queued === 1 ? 'becomes' : 'become'} CANCELED; {plural(inProgress, 'execution')} in progress
              may still finish.
            </span>
          </label>
          <label class="choice">
            <input type="radio" name="force" checked={force} onChange={() => setForce(true)} />
            <span>
              <strong>Force cancel</strong> — in-progress executions are canceled too; devices are told to
              stop, whatever state they are in.
            </span>
          </label>
        </fieldset>
        <label>
          Reason code <span class="muted">(optional)</span>
          <input name="reasonCode" value={reasonCode} onInput={(e) => setReasonCode(e.currentTarget.value)} />
        </label>
        <label>
          Comment <span class="muted">(optional)</span>
          <input name="comment" value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
        </label>
        {error && <ErrorNotice error={error} />}
        <div class="actions">
          <button type="button" onClick={onClose}>
            Keep the job
          </button>
          <button type="submit" class="danger" disabled={busy}>
            {busy ? 'Cancelling…' : force ? 'Force cancel job' : 'Cancel job'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
