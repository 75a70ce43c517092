-- fleetjobs schema, version 1. Names follow AWS IoT (thing_name, job_id, execution_number, version_number...).

CREATE TABLE things (
  thing_name        text PRIMARY KEY,
  thing_id          uuid NOT NULL,
  thing_type_name   text,
  attributes        jsonb NOT NULL DEFAULT '{}',
  version           bigint NOT NULL DEFAULT 1,
  created_at        timestamptz NOT NULL,
  -- The head last announced on notify-next ([protocol §3]): a change of head is detected by comparing with it.
  notified_next_job_id           text,
  notified_next_execution_number bigint
);

CREATE TABLE thing_groups (
  thing_group_name  text PRIMARY KEY,
  thing_group_id    uuid NOT NULL,
  description       text,
  attributes        jsonb NOT NULL DEFAULT '{}',
  version           bigint NOT NULL DEFAULT 1,
  created_at        timestamptz NOT NULL
);

CREATE TABLE thing_group_members (
  thing_group_name  text NOT NULL REFERENCES thing_groups (thing_group_name) ON DELETE CASCADE,
  thing_name        text NOT NULL REFERENCES things (thing_name) ON DELETE CASCADE,
  added_at          timestamptz NOT NULL,
  PRIMARY KEY (thing_group_name, thing_name)
);
CREATE INDEX thing_group_members_thing ON thing_group_members (thing_name);

CREATE TABLE job_templates (
  job_template_id   text PRIMARY KEY,
  description       text NOT NULL,
  document          text,
  document_source   text,
  -- Everything else a template carries (timeoutConfig, jobExecutionsRetryConfig, ...), as given.
  config            jsonb NOT NULL DEFAULT '{}',
  created_at        timestamptz NOT NULL
);

CREATE TABLE jobs (
  job_id                 text PRIMARY KEY,
  status                 text NOT NULL CHECK (status IN ('SCHEDULED','IN_PROGRESS','CANCELED','COMPLETED','DELETION_IN_PROGRESS')),
  target_selection       text NOT NULL CHECK (target_selection IN ('SNAPSHOT','CONTINUOUS')),
  targets                text[] NOT NULL,
  -- The document as the operator sent it (after template parameter substitution), a JSON text.
  document               text NOT NULL,
  document_source        text,
  description            text,
  job_template_arn       text,
  document_parameters    jsonb,
  timeout_config         jsonb,
  retry_config           jsonb,
  rollout_config         jsonb,
  abort_config           jsonb,
  scheduling_config      jsonb,
  presigned_url_config   jsonb,
  namespace_id           text,
  force_canceled         boolean NOT NULL DEFAULT false,
  reason_code            text,
  comment                text,
  -- True while executions are still to be created by rollout (rate limits, schedules, windows).
  rollout_pending        boolean NOT NULL DEFAULT false,
  version                bigint NOT NULL DEFAULT 1,
  created_at             timestamptz NOT NULL,
  last_updated_at        timestamptz NOT NULL,
  completed_at           timestamptz
);
CREATE INDEX jobs_status ON jobs (status, created_at);

CREATE SEQUENCE job_executions_seq;

CREATE TABLE job_executions (
  job_id             text NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
  thing_name         text NOT NULL,
  execution_number   bigint NOT NULL,
  status             text NOT NULL CHECK (status IN ('QUEUED','IN_PROGRESS','SUCCEEDED','FAILED','TIMED_OUT','REJECTED','REMOVED','CANCELED')),
  version_number     bigint NOT NULL DEFAULT 1,
  retry_attempt      integer NOT NULL DEFAULT 0,
  status_details     jsonb NOT NULL DEFAULT '{}',
  force_canceled     boolean NOT NULL DEFAULT false,
  queued_at          timestamptz NOT NULL,
  started_at         timestamptz,
  last_updated_at    timestamptz NOT NULL,
  -- Monotonic tie-break for executions queued in the same instant ([protocol §3] head ordering).
  seq                bigint NOT NULL DEFAULT nextval('job_executions_seq'),
  -- Timer deadlines ([protocol §4]); timeout_at is the earliest of those that apply to the current status, so one
  -- index finds every overdue execution.
  queued_deadline       timestamptz,
  in_progress_deadline  timestamptz,
  step_deadline         timestamptz,
  timeout_at            timestamptz GENERATED ALWAYS AS (
    CASE status
      WHEN 'QUEUED' THEN queued_deadline
      WHEN 'IN_PROGRESS' THEN LEAST(in_progress_deadline, step_deadline)
    END) STORED,
  PRIMARY KEY (job_id, thing_name, execution_number)
);
-- The next pending execution of a thing: IN_PROGRESS first, then queue order.
CREATE INDEX job_executions_next ON job_executions (thing_name, (status <> 'IN_PROGRESS'), queued_at, seq)
  WHERE status IN ('QUEUED', 'IN_PROGRESS');
-- Executions of a job by status (counters, cancel, rollup).
CREATE INDEX job_executions_job_status ON job_executions (job_id, status);
-- Executions of a thing (ListJobExecutionsForThing).
CREATE INDEX job_executions_thing ON job_executions (thing_name, queued_at DESC);
-- Overdue timers.
CREATE INDEX job_executions_timeout ON job_executions (timeout_at)
  WHERE timeout_at IS NOT NULL AND status IN ('QUEUED', 'IN_PROGRESS');

-- Notifications written in the same transaction as the change and published after commit ([protocol §3]).
-- kind: 'notify' | 'notify-next' | 'event'. notify-next rows name the head (job_id, execution_number) or none;
-- the dispatcher builds their payload (with the job document) when it publishes.
CREATE TABLE outbox (
  id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind               text NOT NULL,
  thing_name         text,
  topic              text,
  job_id             text,
  execution_number   bigint,
  payload            jsonb,
  created_at         timestamptz NOT NULL
);
