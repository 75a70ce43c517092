-- fleetjobs schema, version 9: the notify payload and the execution event rows for less PostgreSQL CPU per write.
--
-- Measured at N = 200 (S3), the bound is CPU, not commits: an UpdateJobExecution to SUCCEEDED cost 4 × a
-- start-next inside fj_device_batch, 42 % of it fj_notify (docs/performance.md, "What bounds fleetjobs now").
-- Payloads, rows and their order are those of migration 0006; only how they are built changes.

-- notify rows for things whose pending set gained or lost a member, payload as of now: per thing, the first 10
-- (LIMITS.MAX_PENDING_LIST) pending executions in head order straight off the head-order index. Built as json
-- and cast to jsonb once: nested jsonb is re-encoded at every level (summary, list, jobs, payload), and the
-- aggregates ordered per group sorted each thing's list again. IN_PROGRESS executions come first in head order,
-- so a thing's list is its first n items (n = how many of them are IN_PROGRESS) and then the QUEUED ones;
-- startedAt is left out while NULL, as jsonb_strip_nulls did.
CREATE OR REPLACE FUNCTION fj_notify(p_now timestamptz, p_thing_names text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(p_thing_names) = 0 THEN RETURN; END IF;
  INSERT INTO outbox (kind, thing_name, payload, created_at)
  SELECT 'notify', t.thing_name,
    json_build_object('timestamp', floor(extract(epoch FROM p_now))::bigint, 'jobs', CASE
      WHEN cardinality(l.items) = 0 THEN '{}'::json
      WHEN l.in_progress = 0 THEN json_build_object('QUEUED', to_json(l.items))
      WHEN l.in_progress >= cardinality(l.items) THEN json_build_object('IN_PROGRESS', to_json(l.items))
      ELSE json_build_object('IN_PROGRESS', to_json(l.items[1:l.in_progress]),
        'QUEUED', to_json(l.items[l.in_progress + 1:])) END)::jsonb,
    p_now
  FROM (SELECT DISTINCT unnest(p_thing_names) AS thing_name) t
  CROSS JOIN LATERAL (
    SELECT ARRAY(
      SELECT CASE WHEN e.started_at IS NULL THEN json_build_object(
          'jobId', e.job_id,
          'queuedAt', floor(extract(epoch FROM e.queued_at))::bigint,
          'lastUpdatedAt', floor(extract(epoch FROM e.last_updated_at))::bigint,
          'versionNumber', e.version_number,
          'executionNumber', e.execution_number)
        ELSE json_build_object(
          'jobId', e.job_id,
          'queuedAt', floor(extract(epoch FROM e.queued_at))::bigint,
          'startedAt', floor(extract(epoch FROM e.started_at))::bigint,
          'lastUpdatedAt', floor(extract(epoch FROM e.last_updated_at))::bigint,
          'versionNumber', e.version_number,
          'executionNumber', e.execution_number) END
      FROM job_executions e
      WHERE e.thing_name = t.thing_name AND e.status IN ('QUEUED', 'IN_PROGRESS')
      ORDER BY (e.status <> 'IN_PROGRESS'), e.priority DESC, e.queued_at, e.seq LIMIT 10) AS items,
      (SELECT count(*) FILTER (WHERE h.status = 'IN_PROGRESS') FROM (
        SELECT e.status FROM job_executions e
        WHERE e.thing_name = t.thing_name AND e.status IN ('QUEUED', 'IN_PROGRESS')
        ORDER BY (e.status <> 'IN_PROGRESS'), e.priority DESC, e.queued_at, e.seq LIMIT 10) h) AS in_progress
    -- OFFSET 0: evaluated once per thing, not once per use in the CASE above.
    OFFSET 0) l
  ORDER BY t.thing_name;
END $$;

-- Terminal execution events with their outbox copies, in (job, thing, execution) order; bare (no payload, built
-- after commit by completeBareEvents) in the order given when the change is too large to build them inline. The
-- inline rows take their tenant from the execution, read anyway for statusDetails, so the per-row trigger that
-- looks the job up (migration 0008) does not fire; a deleted execution's event gets the column default, and
-- the trigger, as before.
CREATE OR REPLACE FUNCTION fj_execution_events(p_now timestamptz, p_root text, p_bare boolean, p_job_ids text[],
  p_thing_names text[], p_execution_numbers bigint[], p_operations text[], p_statuses text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(p_job_ids) = 0 THEN RETURN; END IF;
  IF p_bare THEN
    INSERT INTO events (topic, job_id, thing_name, execution_number, status, created_at)
    SELECT p_root || '/jobExecution/' || k.job_id || '/' || k.operation, k.job_id, k.thing_name,
      k.execution_number, k.status, p_now
    FROM unnest(p_job_ids, p_thing_names, p_execution_numbers, p_operations, p_statuses) WITH ORDINALITY
           AS k(job_id, thing_name, execution_number, operation, status, ord)
    ORDER BY k.ord;
    RETURN;
  END IF;
  WITH ev AS (
    INSERT INTO events (topic, job_id, payload, created_at, tenant_id)
    SELECT p_root || '/jobExecution/' || k.job_id || '/' || k.operation, k.job_id,
      fj_execution_event_payload(p_now, k.operation, k.job_id, k.thing_name, k.status, e.status_details,
        d.region, d.account_id),
      -- Without the execution (deleted), the column's default as before.
      p_now, coalesce(e.tenant_id, nullif(current_setting('fleetjobs.tenant_id', true), ''))
    FROM unnest(p_job_ids, p_thing_names, p_execution_numbers, p_operations, p_statuses)
           AS k(job_id, thing_name, execution_number, operation, status)
    -- LATERAL ... LIMIT 1: one primary-key lookup per event, never a hash join over every execution.
    LEFT JOIN LATERAL (
      SELECT x.status_details, x.tenant_id FROM job_executions x
      WHERE x.job_id = k.job_id AND x.thing_name = k.thing_name AND x.execution_number = k.execution_number
      LIMIT 1) e ON true
    CROSS JOIN deployment_settings d
    ORDER BY k.job_id, k.thing_name, k.execution_number
    RETURNING topic, job_id, payload
  )
  INSERT INTO outbox (kind, topic, job_id, payload, created_at)
  SELECT 'event', topic, job_id, payload, p_now FROM ev;
END $$;
