-- fleetjobs schema, version 2: what the workers need (rollout, delayed retries, the events feed).

-- The things a rollout-managed job (rate limit, schedule, maintenance windows) is to reach, in release order.
-- released_at is set when the execution is created: the rate window is counted from it, exactly.
CREATE TABLE rollout_targets (
  job_id       text NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
  thing_name   text NOT NULL,
  released_at  timestamptz,
  PRIMARY KEY (job_id, thing_name)
);
CREATE INDEX rollout_targets_unreleased ON rollout_targets (job_id, thing_name) WHERE released_at IS NULL;
CREATE INDEX rollout_targets_released ON rollout_targets (job_id, released_at) WHERE released_at IS NOT NULL;

-- A retry waiting for its delay (jobExecutionsRetryConfig.retryDelaySeconds): the retry worker creates the
-- execution when due_at passes. At most one per job and thing, since only the latest execution can fail.
CREATE TABLE execution_retries (
  job_id         text NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
  thing_name     text NOT NULL,
  retry_attempt  integer NOT NULL,
  due_at         timestamptz NOT NULL,
  PRIMARY KEY (job_id, thing_name)
);
CREATE INDEX execution_retries_due ON execution_retries (due_at);

-- Job and execution events ($aws/events/...), kept for GET /events. Rows are written in the transaction of the
-- change; seq is assigned after commit by one sequencer at a time, so seq order is commit order and a consumer
-- resuming after seq N never misses a row that committed late with a smaller id.
CREATE TABLE events (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  seq         bigint UNIQUE,
  topic       text NOT NULL,
  job_id      text NOT NULL,
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL
);
CREATE SEQUENCE events_seq;
CREATE INDEX events_unsequenced ON events (id) WHERE seq IS NULL;
CREATE INDEX events_created_at ON events (created_at);

-- The ARN context of this deployment (AWS_REGION / AWS_ACCOUNT_ID), written at start, so event payloads built in
-- SQL carry thingArn whatever path wrote them.
CREATE TABLE deployment_settings (
  id          boolean PRIMARY KEY DEFAULT true CHECK (id),
  region      text NOT NULL,
  account_id  text NOT NULL
);
INSERT INTO deployment_settings (region, account_id) VALUES ('local', '000000000000');
