-- fleetjobs schema, version 5: job priority, dead letters, template versions, recurring jobs (issue 17).

-- Priority (fleetjobs extension, AWS has none): NULL on the job when not given. Each execution carries a copy
-- (0 when the job has none) so the head order is served by the head-order index; with every priority 0 the
-- order is AWS's exactly.
ALTER TABLE jobs ADD COLUMN priority integer;
ALTER TABLE job_executions ADD COLUMN priority integer NOT NULL DEFAULT 0;
DROP INDEX job_executions_next;
CREATE INDEX job_executions_next ON job_executions (thing_name, (status <> 'IN_PROGRESS'), priority DESC, queued_at, seq)
  WHERE status IN ('QUEUED', 'IN_PROGRESS');

-- Dead letters (GET /executions?retriesExhausted=true): failed executions, newest first. Only terminal failures
-- are in it, so the device hot path (QUEUED / IN_PROGRESS rows) never writes to it.
CREATE INDEX job_executions_failed ON job_executions (seq DESC) WHERE status IN ('FAILED', 'TIMED_OUT');
