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

-- Template versions. job_templates keeps the latest version's content (what CreateJob uses by default) and its
-- number; job_template_versions keeps every version, the latest included. Templates created before this
-- migration become version 1.
ALTER TABLE job_templates ADD COLUMN version_number integer NOT NULL DEFAULT 1;
CREATE TABLE job_template_versions (
  job_template_id   text NOT NULL REFERENCES job_templates (job_template_id) ON DELETE CASCADE,
  version_number    integer NOT NULL,
  description       text NOT NULL,
  document          text,
  document_source   text,
  -- As job_templates.config, with the fleetjobs extension documentParametersSchema (a JSON Schema).
  config            jsonb NOT NULL DEFAULT '{}',
  created_at        timestamptz NOT NULL,
  PRIMARY KEY (job_template_id, version_number)
);
INSERT INTO job_template_versions (job_template_id, version_number, description, document, document_source, config,
  created_at)
SELECT job_template_id, 1, description, document, document_source, config, created_at FROM job_templates;
-- The template version a job was created from (with job_template_arn).
ALTER TABLE jobs ADD COLUMN job_template_version integer;

-- Recurring jobs. A schedule creates a job from a job template on each tick of its expression; the job's id is
-- derived from the schedule and the tick, so a tick becomes one job whatever the number of instances. next_run_at
-- is the next tick to create (NULL while PAUSED); the worker advances it, guarded by the value it read, in the
-- transaction that creates the tick's job.
CREATE TABLE job_schedules (
  schedule_id           text PRIMARY KEY,
  description           text,
  schedule_expression   text NOT NULL,
  timezone              text NOT NULL,
  job_template_id       text NOT NULL,
  job_template_version  integer,
  targets               text[] NOT NULL,
  document_parameters   jsonb,
  concurrency_policy    text NOT NULL CHECK (concurrency_policy IN ('ALLOW', 'SKIP')),
  state                 text NOT NULL CHECK (state IN ('ENABLED', 'PAUSED')),
  next_run_at           timestamptz,
  version               bigint NOT NULL DEFAULT 1,
  created_at            timestamptz NOT NULL,
  last_updated_at       timestamptz NOT NULL
);
CREATE INDEX job_schedules_due ON job_schedules (next_run_at) WHERE state = 'ENABLED';

-- One row per tick handled: the job it created, or why it created none (SKIPPED: the previous run was still
-- active under the SKIP policy; FAILED: CreateJob refused, e.g. the template or a target is gone).
CREATE TABLE job_schedule_runs (
  schedule_id   text NOT NULL REFERENCES job_schedules (schedule_id) ON DELETE CASCADE,
  scheduled_at  timestamptz NOT NULL,
  job_id        text NOT NULL,
  outcome       text NOT NULL CHECK (outcome IN ('CREATED', 'SKIPPED', 'FAILED')),
  reason        text,
  created_at    timestamptz NOT NULL,
  PRIMARY KEY (schedule_id, scheduled_at)
);
