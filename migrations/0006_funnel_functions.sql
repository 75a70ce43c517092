-- fleetjobs schema, version 6: the write funnel's after-change step, and a whole device batch, as SQL functions.
--
-- A device batch was 4-5 round trips (lock + read, guarded update, events + retries, notify + notify-next +
-- rollup) plus its commit. fj_device_batch runs all of it server-side in one call; fj_after_change is the funnel's
-- step 4 (src/store/funnel.ts), called by that function and by every other writer of executions, so the rules
-- live here once. The status lists and jobProcessDetails counters below are those src/protocol/states.ts
-- generates (test/unit/funnel-sql.test.ts checks that they agree).

-- The $aws/events/jobExecution payload (reference §4.4); d_region and d_account from deployment_settings.
CREATE FUNCTION fj_execution_event_payload(p_at timestamptz, p_operation text, p_job_id text, p_thing_name text,
  p_status text, p_status_details jsonb, p_region text, p_account_id text)
RETURNS jsonb LANGUAGE sql VOLATILE AS $$
  SELECT jsonb_build_object(
    'eventType', 'JOB_EXECUTION',
    'eventId', gen_random_uuid()::text,
    'timestamp', floor(extract(epoch FROM p_at))::bigint,
    'operation', p_operation,
    'jobId', p_job_id,
    'thingArn', 'arn:aws:iot:' || p_region || ':' || p_account_id || ':thing/' || p_thing_name,
    'status', p_status,
    'statusDetails', coalesce(p_status_details, '{}'::jsonb))
$$;

-- Terminal execution events with their outbox copies, in (job, thing, execution) order; bare (no payload, built
-- after commit by completeBareEvents) in the order given when the change is too large to build them inline.
CREATE FUNCTION fj_execution_events(p_now timestamptz, p_root text, p_bare boolean, p_job_ids text[],
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
    INSERT INTO events (topic, job_id, payload, created_at)
    SELECT p_root || '/jobExecution/' || k.job_id || '/' || k.operation, k.job_id,
      fj_execution_event_payload(p_now, k.operation, k.job_id, k.thing_name, k.status, e.status_details,
        d.region, d.account_id),
      p_now
    FROM unnest(p_job_ids, p_thing_names, p_execution_numbers, p_operations, p_statuses)
           AS k(job_id, thing_name, execution_number, operation, status)
    -- LATERAL ... LIMIT 1: one primary-key lookup per event, never a hash join over every execution.
    LEFT JOIN LATERAL (
      SELECT x.status_details FROM job_executions x
      WHERE x.job_id = k.job_id AND x.thing_name = k.thing_name AND x.execution_number = k.execution_number
      LIMIT 1) e ON true
    CROSS JOIN deployment_settings d
    ORDER BY k.job_id, k.thing_name, k.execution_number
    RETURNING topic, job_id, payload
  )
  INSERT INTO outbox (kind, topic, job_id, payload, created_at)
  SELECT 'event', topic, job_id, payload, p_now FROM ev;
END $$;

-- Job events for the given jobs as they are now; `completed` carries jobProcessDetails.
CREATE FUNCTION fj_job_events(p_now timestamptz, p_root text, p_job_ids text[], p_operation text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  IF cardinality(p_job_ids) = 0 THEN RETURN 0; END IF;
  WITH ev AS (
    INSERT INTO events (topic, job_id, payload, created_at)
    SELECT p_root || '/job/' || j.job_id || '/' || p_operation, j.job_id,
      jsonb_strip_nulls(jsonb_build_object(
        'eventType', 'JOB',
        'eventId', gen_random_uuid()::text,
        'timestamp', floor(extract(epoch FROM p_now))::bigint,
        'operation', p_operation,
        'jobId', j.job_id,
        'status', CASE p_operation WHEN 'completed' THEN 'COMPLETED' WHEN 'canceled' THEN 'CANCELED'
                    ELSE 'DELETED' END,
        'targetSelection', j.target_selection,
        'targets', to_jsonb(j.targets),
        'description', j.description,
        'createdAt', floor(extract(epoch FROM j.created_at))::bigint,
        'lastUpdatedAt', floor(extract(epoch FROM j.last_updated_at))::bigint,
        'completedAt', floor(extract(epoch FROM j.completed_at))::bigint,
        'reasonCode', j.reason_code,
        'comment', j.comment,
        'jobProcessDetails', CASE WHEN p_operation = 'completed' THEN (
          SELECT jsonb_build_object('numberOfCanceledThings', count(*) FILTER (WHERE l.status = 'CANCELED'), 'numberOfSucceededThings', count(*) FILTER (WHERE l.status = 'SUCCEEDED'), 'numberOfFailedThings', count(*) FILTER (WHERE l.status = 'FAILED'), 'numberOfRejectedThings', count(*) FILTER (WHERE l.status = 'REJECTED'), 'numberOfQueuedThings', count(*) FILTER (WHERE l.status = 'QUEUED'), 'numberOfInProgressThings', count(*) FILTER (WHERE l.status = 'IN_PROGRESS'), 'numberOfRemovedThings', count(*) FILTER (WHERE l.status = 'REMOVED'), 'numberOfTimedOutThings', count(*) FILTER (WHERE l.status = 'TIMED_OUT'))
          FROM (SELECT DISTINCT ON (x.thing_name) x.status FROM job_executions x
                WHERE x.job_id = j.job_id ORDER BY x.thing_name, x.execution_number DESC) l) END)),
      p_now
    FROM jobs j WHERE j.job_id = ANY(p_job_ids)
    ORDER BY j.job_id
    RETURNING topic, job_id, payload
  ), ob AS (
    INSERT INTO outbox (kind, topic, job_id, payload, created_at)
    SELECT 'event', topic, job_id, payload, p_now FROM ev RETURNING 1
  )
  SELECT count(*) INTO n FROM ob;
  RETURN n;
END $$;

-- notify rows for things whose pending set gained or lost a member, payload as of now: per thing, the first 10
-- (LIMITS.MAX_PENDING_LIST) pending executions in head order straight off the head-order index.
CREATE FUNCTION fj_notify(p_now timestamptz, p_thing_names text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(p_thing_names) = 0 THEN RETURN; END IF;
  WITH t AS (SELECT DISTINCT unnest(p_thing_names) AS thing_name),
  top AS (
    SELECT t.thing_name,
           CASE WHEN e.status = 'IN_PROGRESS' THEN 'IN_PROGRESS' ELSE 'QUEUED' END AS list,
           jsonb_strip_nulls(jsonb_build_object(
             'jobId', e.job_id,
             'queuedAt', floor(extract(epoch FROM e.queued_at))::bigint,
             'startedAt', floor(extract(epoch FROM e.started_at))::bigint,
             'lastUpdatedAt', floor(extract(epoch FROM e.last_updated_at))::bigint,
             'versionNumber', e.version_number,
             'executionNumber', e.execution_number)) AS summary,
           e.ord
    FROM t CROSS JOIN LATERAL (
      SELECT e.*, row_number() OVER (ORDER BY (e.status <> 'IN_PROGRESS'), e.priority DESC, e.queued_at, e.seq) AS ord
      FROM job_executions e
      WHERE e.thing_name = t.thing_name AND e.status IN ('QUEUED', 'IN_PROGRESS')
      ORDER BY (e.status <> 'IN_PROGRESS'), e.priority DESC, e.queued_at, e.seq LIMIT 10) e
  ),
  lists AS (SELECT thing_name, list, jsonb_agg(summary ORDER BY ord) AS items FROM top GROUP BY thing_name, list),
  jobs AS (SELECT thing_name, jsonb_object_agg(list, items) AS jobs FROM lists GROUP BY thing_name)
  INSERT INTO outbox (kind, thing_name, payload, created_at)
  SELECT 'notify', t.thing_name,
    jsonb_build_object('timestamp', floor(extract(epoch FROM p_now))::bigint, 'jobs', coalesce(jobs.jobs, '{}'::jsonb)),
    p_now
  FROM t LEFT JOIN jobs USING (thing_name)
  ORDER BY t.thing_name;
END $$;

-- notify-next rows for things whose head (one index probe per thing) differs from the one last announced.
CREATE FUNCTION fj_notify_next(p_now timestamptz, p_thing_names text[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(p_thing_names) = 0 THEN RETURN; END IF;
  WITH heads AS (
    SELECT t.thing_name, h.job_id, h.execution_number
    FROM (SELECT DISTINCT unnest(p_thing_names) AS thing_name) t
    LEFT JOIN LATERAL (
      SELECT e.job_id, e.execution_number FROM job_executions e
      WHERE e.thing_name = t.thing_name AND e.status IN ('QUEUED', 'IN_PROGRESS')
      ORDER BY (e.status <> 'IN_PROGRESS'), e.priority DESC, e.queued_at, e.seq LIMIT 1) h ON true
  ), changed AS (
    UPDATE things th
    SET notified_next_job_id = heads.job_id, notified_next_execution_number = heads.execution_number
    FROM heads
    WHERE th.thing_name = heads.thing_name
      AND (th.notified_next_job_id IS DISTINCT FROM heads.job_id
        OR th.notified_next_execution_number IS DISTINCT FROM heads.execution_number)
    RETURNING th.thing_name, heads.job_id, heads.execution_number
  )
  INSERT INTO outbox (kind, thing_name, job_id, execution_number, created_at)
  SELECT 'notify-next', thing_name, job_id, execution_number, p_now FROM changed ORDER BY thing_name;
END $$;

-- [protocol §4] Whether a failure is retried: every criterion that matches its type (the type itself or ALL) still has
-- retries left (ALL counts every retry, a typed criterion the retries its type caused), and the chain stays
-- within 10 retries in all (LIMITS.MAX_RETRIES_TOTAL). REJECTED never reaches here.
CREATE FUNCTION fj_should_retry(p_status text, p_retry_attempt integer, p_failed_before bigint,
  p_timed_out_before bigint, p_retry_config jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT p_retry_attempt < 10
    AND count(*) > 0
    AND bool_and(CASE WHEN k->>'failureType' = 'ALL' THEN p_retry_attempt
                      WHEN p_status = 'FAILED' THEN p_failed_before
                      ELSE p_timed_out_before END < (k->>'numberOfRetries')::int)
  FROM jsonb_array_elements(coalesce(p_retry_config->'criteriaList', '[]'::jsonb)) AS k
  WHERE k->>'failureType' IN (p_status, 'ALL')
$$;

-- fleetjobs extension: the delay before retry number p_attempt (1 for the first), in ms, with full jitter:
-- p_random (uniform in [0, 1)) times min(maxDelaySeconds, retryDelaySeconds * backoffFactor^(attempt-1)).
-- NULL without a delay: the retry is created at once.
CREATE FUNCTION fj_retry_delay_ms(p_retry_config jsonb, p_attempt integer, p_random double precision)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN coalesce((p_retry_config->>'retryDelaySeconds')::double precision, 0) <= 0 THEN NULL
    ELSE floor(p_random * 1000 * least(
      (p_retry_config->>'retryDelaySeconds')::double precision
        * power(coalesce((p_retry_config->>'backoffFactor')::double precision, 1), p_attempt - 1),
      coalesce((p_retry_config->>'maxDelaySeconds')::double precision, 'Infinity')))::bigint END
$$;

-- New QUEUED executions (next executionNumber, version 1, the job's priority) for the given retries, unless the thing has a pending
-- execution of the job already or the job is no longer IN_PROGRESS; the things are locked. The queued deadline
-- comes from the job's timeoutConfig, as at creation.
CREATE FUNCTION fj_insert_retry_executions(p_now timestamptz, p_job_ids text[], p_thing_names text[],
  p_retry_attempts integer[])
RETURNS TABLE (job_id text, thing_name text, execution_number bigint) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  INSERT INTO job_executions AS x (job_id, thing_name, execution_number, status, retry_attempt, queued_at,
    last_updated_at, queued_deadline, priority)
  SELECT k.job_id, k.thing_name,
    coalesce((SELECT max(e.execution_number) FROM job_executions e
              WHERE e.job_id = k.job_id AND e.thing_name = k.thing_name), 0) + 1,
    'QUEUED', k.retry_attempt, p_now, p_now,
    p_now + make_interval(mins => (j.timeout_config ->> 'queuedTimeoutInMinutes')::int),
    coalesce(j.priority, 0)
  FROM unnest(p_job_ids, p_thing_names, p_retry_attempts) AS k(job_id, thing_name, retry_attempt)
  JOIN jobs j ON j.job_id = k.job_id
  WHERE j.status = 'IN_PROGRESS'
    AND NOT EXISTS (SELECT 1 FROM job_executions p WHERE p.job_id = k.job_id AND p.thing_name = k.thing_name
                      AND p.status IN ('QUEUED', 'IN_PROGRESS'))
  ORDER BY k.thing_name
  RETURNING x.job_id, x.thing_name, x.execution_number;
END $$;

-- [protocol §4] Retries of the given FAILED / TIMED_OUT executions: delayed ones recorded for the retry worker,
-- immediate ones created now and returned. A chain is the first attempt and the retries that followed it:
-- executions (n - retryAttempt) .. n of the thing.
CREATE FUNCTION fj_queue_retries(p_now timestamptz, p_job_ids text[], p_thing_names text[],
  p_execution_numbers bigint[])
RETURNS TABLE (job_id text, thing_name text, execution_number bigint) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  r_jobs text[];
  r_things text[];
  r_attempts integer[];
  r_delays bigint[];
BEGIN
  IF cardinality(p_job_ids) = 0
    OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = ANY(p_job_ids) AND j.status = 'IN_PROGRESS'
                     AND j.retry_config IS NOT NULL) THEN
    RETURN;
  END IF;
  SELECT array_agg(c.job_id), array_agg(c.thing_name), array_agg(c.retry_attempt + 1),
         array_agg(fj_retry_delay_ms(c.retry_config, c.retry_attempt + 1, random()))
  INTO r_jobs, r_things, r_attempts, r_delays
  FROM (
    SELECT x.job_id, x.thing_name, x.status, x.retry_attempt, j.retry_config,
      (SELECT count(*) FROM job_executions p
       WHERE p.job_id = x.job_id AND p.thing_name = x.thing_name AND p.status = 'FAILED'
         AND p.execution_number >= x.execution_number - x.retry_attempt
         AND p.execution_number < x.execution_number) AS failed_before,
      (SELECT count(*) FROM job_executions p
       WHERE p.job_id = x.job_id AND p.thing_name = x.thing_name AND p.status = 'TIMED_OUT'
         AND p.execution_number >= x.execution_number - x.retry_attempt
         AND p.execution_number < x.execution_number) AS timed_out_before
    FROM unnest(p_job_ids, p_thing_names, p_execution_numbers) AS k(job_id, thing_name, execution_number)
    JOIN jobs j ON j.job_id = k.job_id
    -- One primary-key lookup per change, never a hash join over every execution.
    JOIN LATERAL (
      SELECT e.job_id, e.thing_name, e.execution_number, e.status, e.retry_attempt FROM job_executions e
      WHERE e.job_id = k.job_id AND e.thing_name = k.thing_name AND e.execution_number = k.execution_number
      LIMIT 1) x ON true
    WHERE x.status IN ('FAILED', 'TIMED_OUT') AND j.status = 'IN_PROGRESS' AND j.retry_config IS NOT NULL
  ) c
  WHERE fj_should_retry(c.status, c.retry_attempt, c.failed_before, c.timed_out_before, c.retry_config);
  IF r_jobs IS NULL THEN RETURN; END IF;
  INSERT INTO execution_retries (job_id, thing_name, retry_attempt, due_at)
  SELECT k.job_id, k.thing_name, k.retry_attempt, p_now + k.delay_ms * interval '1 millisecond'
  FROM unnest(r_jobs, r_things, r_attempts, r_delays) AS k(job_id, thing_name, retry_attempt, delay_ms)
  WHERE k.delay_ms IS NOT NULL
  ON CONFLICT (job_id, thing_name) DO NOTHING;
  RETURN QUERY
  SELECT * FROM fj_insert_retry_executions(p_now,
    ARRAY(SELECT j FROM unnest(r_jobs, r_delays) AS u(j, d) WHERE d IS NULL),
    ARRAY(SELECT t FROM unnest(r_things, r_delays) AS u(t, d) WHERE d IS NULL),
    ARRAY(SELECT a FROM unnest(r_attempts, r_delays) AS u(a, d) WHERE d IS NULL));
END $$;

-- Completes SNAPSHOT jobs whose rollout is done and whose executions are all terminal, with a `completed` event.
-- The check runs first without a lock: most changes leave executions pending, and locking the job row on every
-- device update would serialize all of a job's devices until commit. Only jobs that look done are locked and
-- re-checked under the lock (see completeJobsIfDone in src/store/notifications.ts for the race this leaves to the
-- rollout worker's rollup sweep).
CREATE FUNCTION fj_complete_jobs(p_now timestamptz, p_root text, p_job_ids text[])
RETURNS text[] LANGUAGE plpgsql AS $$
DECLARE
  candidates text[];
  completed text[];
BEGIN
  IF cardinality(p_job_ids) = 0 THEN RETURN '{}'; END IF;
  SELECT array_agg(j.job_id) INTO candidates FROM jobs j
  WHERE j.job_id = ANY(p_job_ids)
    AND j.status = 'IN_PROGRESS' AND j.target_selection = 'SNAPSHOT' AND NOT j.rollout_pending
    AND NOT EXISTS (SELECT 1 FROM job_executions e WHERE e.job_id = j.job_id AND e.status IN ('QUEUED', 'IN_PROGRESS'))
    AND NOT EXISTS (SELECT 1 FROM execution_retries r WHERE r.job_id = j.job_id);
  IF candidates IS NULL THEN RETURN '{}'; END IF;
  PERFORM 1 FROM jobs WHERE job_id = ANY(candidates) ORDER BY job_id FOR UPDATE;
  WITH done AS (
    UPDATE jobs j SET status = 'COMPLETED', completed_at = p_now, last_updated_at = p_now, version = version + 1
    WHERE j.job_id = ANY(candidates)
      AND j.status = 'IN_PROGRESS' AND j.target_selection = 'SNAPSHOT' AND NOT j.rollout_pending
      AND NOT EXISTS (SELECT 1 FROM job_executions e WHERE e.job_id = j.job_id AND e.status IN ('QUEUED', 'IN_PROGRESS'))
      AND NOT EXISTS (SELECT 1 FROM execution_retries r WHERE r.job_id = j.job_id)
    RETURNING j.job_id)
  SELECT coalesce(array_agg(job_id ORDER BY job_id), '{}') INTO completed FROM done;
  PERFORM fj_job_events(p_now, p_root, completed, 'completed');
  RETURN completed;
END $$;

-- The write funnel's step 4 (src/store/funnel.ts) for a list of execution changes (previous status NULL for a
-- created execution; p_deleted for a deleted one): execution events, retries, notify for pending-set membership
-- changes and notify-next for head changes (one fanout row instead above p_threshold things), and the rollup of
-- SNAPSHOT jobs whose last execution ended. Returns the jobs it completed.
CREATE FUNCTION fj_after_change(p_now timestamptz, p_root text, p_threshold integer, p_job_ids text[],
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
  PERFORM fj_execution_events(p_now, p_root, cardinality(touched) > p_threshold, ev_jobs, ev_things, ev_numbers,
    ev_operations, ev_statuses);
  -- [protocol §4] Retries of FAILED / TIMED_OUT executions join the pending set in this same transaction.
  SELECT coalesce(array_agg(r.thing_name), '{}') INTO retried
  FROM fj_queue_retries(p_now, failed_jobs, failed_things, failed_numbers) r;
  IF cardinality(retried) > 0 THEN
    touched := ARRAY(SELECT DISTINCT unnest(touched || retried));
    membership := ARRAY(SELECT DISTINCT unnest(membership || retried));
  END IF;
  IF cardinality(touched) > p_threshold THEN
    INSERT INTO outbox (kind, notify_things, notify_next_things, created_at)
    VALUES ('fanout', ARRAY(SELECT t FROM unnest(membership) t ORDER BY t COLLATE "C"),
      ARRAY(SELECT t FROM unnest(touched) t ORDER BY t COLLATE "C"), p_now);
  ELSE
    PERFORM fj_notify(p_now, membership);
    PERFORM fj_notify_next(p_now, touched);
  END IF;
  -- The rollup reads only executions and retries, written above.
  RETURN fj_complete_jobs(p_now, p_root, ended_jobs);
END $$;

-- A batch of device writes (StartNextPendingJobExecution claims and UpdateJobExecution, at most one per thing)
-- through the whole funnel in one call: the things' locks in name order; each write's execution under them (the
-- one an update names, the latest when executionNumber is omitted; the thing's head for a start-next); one
-- guarded UPDATE of those that apply (an update to a pending execution at expectedVersion when given, a claim of
-- a QUEUED head: version + 1, startedAt and the in-progress deadline at the first IN_PROGRESS, the step deadline
-- kept within it); then fj_after_change. Returns, per write that found an execution (ord, 1-based), that
-- execution as it now is with its job document, and whether the write applied: the caller builds each reply
-- and rejection from it (src/service/device-batch.ts).
CREATE FUNCTION fj_device_batch(p_now timestamptz, p_root text, p_threshold integer, p_kinds text[],
  p_thing_names text[], p_job_ids text[], p_execution_numbers bigint[], p_statuses text[], p_status_details text[],
  p_expected_versions bigint[], p_step_timeouts integer[])
RETURNS TABLE (ord bigint, applied boolean, job_id text, thing_name text, execution_number bigint, status text,
  version_number bigint, retry_attempt integer, status_details jsonb, force_canceled boolean,
  queued_at timestamptz, started_at timestamptz, last_updated_at timestamptz, seq bigint,
  queued_deadline timestamptz, in_progress_deadline timestamptz, step_deadline timestamptz,
  timeout_at timestamptz, job_document text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  w_ords bigint[];
  w_jobs text[];
  w_numbers bigint[];
  w_previous text[];
  w_versions bigint[];
  w_apply boolean[];
  a_ords bigint[];
  a_jobs text[];
  a_things text[];
  a_numbers bigint[];
  a_statuses text[];
  a_previous text[];
BEGIN
  PERFORM 1 FROM things t WHERE t.thing_name = ANY(p_thing_names) ORDER BY t.thing_name FOR UPDATE;
  WITH w AS (
    SELECT * FROM unnest(p_kinds, p_thing_names, p_job_ids, p_execution_numbers, p_statuses, p_expected_versions)
      WITH ORDINALITY AS w(kind, thing_name, job_id, execution_number, status, expected_version, ord)
  ), x AS (
    SELECT w.ord, w.kind, w.status AS wanted, w.expected_version, e.* FROM w CROSS JOIN LATERAL (
      SELECT e.job_id, e.execution_number, e.status, e.version_number FROM job_executions e
      WHERE w.kind = 'update' AND e.thing_name = w.thing_name AND e.job_id = w.job_id
        AND (w.execution_number IS NULL OR e.execution_number = w.execution_number)
      ORDER BY e.execution_number DESC LIMIT 1) e
    UNION ALL
    -- [protocol §3] The head: IN_PROGRESS before QUEUED, then priority, then queuedAt, then the monotonic sequence.
    SELECT w.ord, w.kind, w.status, w.expected_version, e.* FROM w CROSS JOIN LATERAL (
      SELECT e.job_id, e.execution_number, e.status, e.version_number FROM job_executions e
      WHERE w.kind = 'start-next' AND e.thing_name = w.thing_name AND e.status IN ('QUEUED', 'IN_PROGRESS')
      ORDER BY (e.status <> 'IN_PROGRESS'), e.priority DESC, e.queued_at, e.seq LIMIT 1) e
  )
  SELECT array_agg(x.ord), array_agg(x.job_id), array_agg(x.execution_number), array_agg(x.status),
    array_agg(x.version_number),
    array_agg(CASE WHEN x.kind = 'start-next' THEN x.status = 'QUEUED'
      ELSE x.status IN ('QUEUED', 'IN_PROGRESS') AND x.wanted IN ('IN_PROGRESS', 'SUCCEEDED', 'FAILED', 'REJECTED')
        AND (x.expected_version IS NULL OR x.expected_version = x.version_number) END)
  INTO w_ords, w_jobs, w_numbers, w_previous, w_versions, w_apply
  FROM x;
  IF w_ords IS NULL THEN RETURN; END IF;
  WITH u AS (
    SELECT a.ord, a.job_id, p_thing_names[a.ord::int] AS thing_name, a.execution_number, a.version_number,
      a.previous, p_kinds[a.ord::int] AS kind, p_statuses[a.ord::int] AS status,
      p_status_details[a.ord::int] AS status_details, p_step_timeouts[a.ord::int] AS step_timeout
    FROM unnest(w_ords, w_jobs, w_numbers, w_versions, w_previous, w_apply)
           AS a(ord, job_id, execution_number, version_number, previous, apply)
    WHERE a.apply
  ), done AS (
    UPDATE job_executions e SET
      status = u.status,
      version_number = e.version_number + 1,
      status_details = coalesce(u.status_details::jsonb, e.status_details),
      last_updated_at = p_now,
      started_at = CASE WHEN u.status = 'IN_PROGRESS' THEN coalesce(e.started_at, p_now) ELSE e.started_at END,
      in_progress_deadline = CASE
        WHEN u.status = 'IN_PROGRESS' AND e.started_at IS NULL AND (j.timeout_config->>'inProgressTimeoutInMinutes') IS NOT NULL
          THEN p_now + (j.timeout_config->>'inProgressTimeoutInMinutes')::int * interval '1 minute'
        ELSE e.in_progress_deadline END,
      step_deadline = CASE
        WHEN u.status <> 'IN_PROGRESS' OR u.step_timeout = -1 THEN NULL
        WHEN u.step_timeout IS NULL THEN e.step_deadline
        ELSE LEAST(p_now + u.step_timeout * interval '1 minute', CASE
          WHEN e.started_at IS NULL AND (j.timeout_config->>'inProgressTimeoutInMinutes') IS NOT NULL
            THEN p_now + (j.timeout_config->>'inProgressTimeoutInMinutes')::int * interval '1 minute'
          ELSE e.in_progress_deadline END) END
    FROM u, jobs j
    WHERE j.job_id = e.job_id AND e.job_id = u.job_id AND e.thing_name = u.thing_name
      AND e.execution_number = u.execution_number AND e.version_number = u.version_number
      AND (e.status = 'QUEUED' OR (u.kind = 'update' AND e.status = 'IN_PROGRESS'))
    RETURNING u.ord, e.job_id, e.thing_name, e.execution_number, e.status, u.previous
  )
  SELECT array_agg(d.ord), array_agg(d.job_id), array_agg(d.thing_name), array_agg(d.execution_number),
    array_agg(d.status), array_agg(d.previous)
  INTO a_ords, a_jobs, a_things, a_numbers, a_statuses, a_previous
  FROM done d;
  IF a_ords IS NOT NULL THEN
    PERFORM fj_after_change(p_now, p_root, p_threshold, a_jobs, a_things, a_numbers, a_statuses, a_previous, '{}');
  END IF;
  RETURN QUERY
  SELECT k.ord, k.ord = ANY(coalesce(a_ords, '{}')), e.job_id, e.thing_name, e.execution_number, e.status,
    e.version_number, e.retry_attempt, e.status_details, e.force_canceled, e.queued_at, e.started_at,
    e.last_updated_at, e.seq, e.queued_deadline, e.in_progress_deadline, e.step_deadline, e.timeout_at,
    j.document
  FROM unnest(w_ords, w_jobs, w_numbers) AS k(ord, job_id, execution_number)
  JOIN job_executions e ON e.job_id = k.job_id AND e.thing_name = p_thing_names[k.ord::int]
    AND e.execution_number = k.execution_number
  JOIN jobs j ON j.job_id = e.job_id
  ORDER BY k.ord;
END $$;
