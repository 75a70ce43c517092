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
