-- fleetjobs schema, version 10: the execution events of a fanout change are written once, after commit.
--
-- A change above the fanout threshold (a timeout sweep batch, a large cancel) wrote its execution events bare in
-- its transaction; the dispatcher then built each payload with an UPDATE, and the sequencer updated each row
-- again: three row versions and three sets of index entries per event. Profiled on one 5,000-row timeout batch
-- (docs/performance.md, "What bounds fleetjobs now"), the bare insert was 104 ms of the batch's 390 ms (half of
-- it the per-row tenant trigger) and completing the payloads 338 ms of the dispatcher's work after it. Now the
-- fanout row carries the events' keys and the ids they will have, drawn from the events sequence in the
-- change's transaction, and the dispatcher inserts each event once, with its payload, under that id. The
-- sequencer numbers no event at or past the first id a fanout row still holds, so GET /events keeps commit
-- order exactly as it did with the bare rows.
ALTER TABLE outbox
  ADD COLUMN event_ids bigint[],
  ADD COLUMN event_topics text[],
  ADD COLUMN event_job_ids text[],
  ADD COLUMN event_thing_names text[],
  ADD COLUMN event_execution_numbers bigint[],
  ADD COLUMN event_statuses text[],
  ADD COLUMN event_tenant_ids text[],
  ADD COLUMN events_written integer NOT NULL DEFAULT 0;

-- A tenant's own large cancel draws the ids of its events too.
DO $$
BEGIN
  EXECUTE format('GRANT USAGE ON SEQUENCE %s TO fleetjobs_tenant', pg_get_serial_sequence('events', 'id'));
END $$;

-- The write funnel's step 4 as in migration 0006, except above p_threshold things: the events' keys, topics,
-- tenants (the column default, else the job's, as the trigger of migration 0008 would give a bare row) and
-- ids go into the fanout row instead of bare event rows.
CREATE OR REPLACE FUNCTION fj_after_change(p_now timestamptz, p_root text, p_threshold integer, p_job_ids text[],
  p_thing_names text[], p_execution_numbers bigint[], p_statuses text[], p_previous_statuses text[],
  p_deleted boolean[])
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  touched text[];
  membership text[];
  ended_jobs text[];
  ev_jobs text[];
  ev_things text[];
  ev_numbers bigint[];
  ev_operations text[];
  ev_statuses text[];
  failed_jobs text[];
  failed_things text[];
  failed_numbers bigint[];
  retried text[];
  deferred boolean;
  ev_sequence regclass;
BEGIN
  IF cardinality(p_job_ids) = 0 THEN RETURN '{}'; END IF;
  WITH c AS (
    SELECT k.*, coalesce(k.deleted, false) AS gone,
      coalesce(k.previous_status IN ('QUEUED', 'IN_PROGRESS'), false) AS was_pending,
      NOT coalesce(k.deleted, false) AND k.status IN ('QUEUED', 'IN_PROGRESS') AS now_pending
    FROM unnest(p_job_ids, p_thing_names, p_execution_numbers, p_statuses, p_previous_statuses, p_deleted)
           WITH ORDINALITY AS k(job_id, thing_name, execution_number, status, previous_status, deleted, ord)
  ), ev AS (
    -- [protocol §6] An execution event when an execution ends or is deleted.
    SELECT c.*, CASE WHEN c.gone THEN 'deleted' ELSE lower(c.status) END AS operation FROM c
    WHERE c.gone OR (c.was_pending AND NOT c.now_pending)
  )
  SELECT
    (SELECT array_agg(DISTINCT c.thing_name) FROM c),
    (SELECT coalesce(array_agg(DISTINCT c.thing_name), '{}') FROM c WHERE c.was_pending <> c.now_pending),
    (SELECT coalesce(array_agg(DISTINCT c.job_id), '{}') FROM c WHERE NOT c.now_pending),
    coalesce(array_agg(ev.job_id ORDER BY ev.ord), '{}'), array_agg(ev.thing_name ORDER BY ev.ord),
    array_agg(ev.execution_number ORDER BY ev.ord), array_agg(ev.operation ORDER BY ev.ord),
    array_agg(ev.status ORDER BY ev.ord),
    coalesce(array_agg(ev.job_id ORDER BY ev.ord) FILTER (WHERE NOT ev.gone AND ev.status IN ('FAILED', 'TIMED_OUT')), '{}'),
    array_agg(ev.thing_name ORDER BY ev.ord) FILTER (WHERE NOT ev.gone AND ev.status IN ('FAILED', 'TIMED_OUT')),
    array_agg(ev.execution_number ORDER BY ev.ord) FILTER (WHERE NOT ev.gone AND ev.status IN ('FAILED', 'TIMED_OUT'))
  INTO touched, membership, ended_jobs, ev_jobs, ev_things, ev_numbers, ev_operations, ev_statuses,
    failed_jobs, failed_things, failed_numbers
  FROM ev;
  -- Decided before the retries join, as in migration 0006: a fanout row may still follow inline events.
  deferred := cardinality(touched) > p_threshold AND cardinality(ev_jobs) > 0;
  IF NOT deferred THEN
    PERFORM fj_execution_events(p_now, p_root, false, ev_jobs, ev_things, ev_numbers, ev_operations, ev_statuses);
  END IF;
  -- [protocol §4] Retries of FAILED / TIMED_OUT executions join the pending set in this same transaction.
  SELECT coalesce(array_agg(r.thing_name), '{}') INTO retried
  FROM fj_queue_retries(p_now, failed_jobs, failed_things, failed_numbers) r;
  IF cardinality(retried) > 0 THEN
    touched := ARRAY(SELECT DISTINCT unnest(touched || retried));
    membership := ARRAY(SELECT DISTINCT unnest(membership || retried));
  END IF;
  IF cardinality(touched) > p_threshold THEN
    -- The event ids are drawn here, before fj_complete_jobs writes its `completed` events, so those come after
    -- these in GET /events as they did after the bare rows; sorted, the i-th id is the i-th event's. The
    -- sequence is looked up only here: a device batch never comes this way.
    IF deferred THEN ev_sequence := pg_get_serial_sequence('events', 'id'); END IF;
    INSERT INTO outbox (kind, notify_things, notify_next_things, created_at, event_ids, event_topics, event_job_ids,
      event_thing_names, event_execution_numbers, event_statuses, event_tenant_ids)
    VALUES ('fanout', ARRAY(SELECT t FROM unnest(membership) t ORDER BY t COLLATE "C"),
      ARRAY(SELECT t FROM unnest(touched) t ORDER BY t COLLATE "C"), p_now,
      CASE WHEN deferred THEN ARRAY(SELECT nextval(ev_sequence) FROM generate_series(1, cardinality(ev_jobs)) ORDER BY 1) END,
      CASE WHEN deferred THEN ARRAY(SELECT p_root || '/jobExecution/' || k.job_id || '/' || k.operation
        FROM unnest(ev_jobs, ev_operations) WITH ORDINALITY AS k(job_id, operation, ord) ORDER BY k.ord) END,
      CASE WHEN deferred THEN ev_jobs END, CASE WHEN deferred THEN ev_things END, CASE WHEN deferred THEN ev_numbers END,
      CASE WHEN deferred THEN ev_statuses END,
      CASE WHEN deferred THEN ARRAY(SELECT coalesce(nullif(current_setting('fleetjobs.tenant_id', true), ''), j.tenant_id)
        FROM unnest(ev_jobs) WITH ORDINALITY AS k(job_id, ord)
        LEFT JOIN (SELECT j.job_id, j.tenant_id FROM jobs j WHERE j.job_id = ANY(ev_jobs)) j ON j.job_id = k.job_id
        ORDER BY k.ord) END);
  ELSE
    PERFORM fj_notify(p_now, membership);
    PERFORM fj_notify_next(p_now, touched);
  END IF;
  -- The rollup reads only executions and retries, written above.
  RETURN fj_complete_jobs(p_now, p_root, ended_jobs);
END $$;

-- Bare events an earlier version left (committed, not yet completed by its dispatcher) are completed here as
-- its completeBareEvents did: payload as at their change, then their outbox copies in id order. None is
-- written from now on, so their index goes.
WITH ev AS (
  UPDATE events v SET payload = fj_execution_event_payload(v.created_at, substring(v.topic FROM '[^/]+$'),
    v.job_id, v.thing_name, v.status,
    (SELECT x.status_details FROM job_executions x
     WHERE x.job_id = v.job_id AND x.thing_name = v.thing_name AND x.execution_number = v.execution_number),
    d.region, d.account_id)
  FROM deployment_settings d
  WHERE v.payload IS NULL
  RETURNING v.id, v.topic, v.job_id, v.payload
)
INSERT INTO outbox (kind, topic, job_id, payload, created_at)
SELECT 'event', topic, job_id, payload, now() FROM ev ORDER BY id;
DROP INDEX events_bare;
