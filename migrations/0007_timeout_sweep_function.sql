-- fleetjobs schema, version 7: a timeout sweep batch as one SQL function.
--
-- A batch was seven round trips (BEGIN, the sweep's advisory lock, the overdue select, the thing locks, the
-- guarded UPDATE, fj_after_change, COMMIT); on a loaded machine each waits for a core, and the waits were as long
-- as the work. fj_time_out_overdue runs the same steps server-side, so a batch is one statement in autocommit.
-- The status lists are those src/protocol/states.ts generates (test/unit/funnel-sql.test.ts checks them).

-- [protocol §4] QUEUED / IN_PROGRESS -> TIMED_OUT, version + 1, for the earliest overdue pending executions (timeout_at
-- passed, at most p_limit, through the timeout index), then the write funnel's step 4 (fj_after_change). Each
-- row is addressed by the row version selected (a TID scan): the things are locked in name order between the
-- select and the UPDATE, and a row a device changed before the lock has a new version and is left alone, as is
-- one whose guard (status, deadline) no longer holds; an unchanged row version means the status selected is the
-- previous status. Returns {selected, timed out}.
CREATE FUNCTION fj_time_out_overdue(p_now timestamptz, p_root text, p_threshold integer, p_limit integer)
RETURNS integer[] LANGUAGE plpgsql AS $$
DECLARE
  d_rows tid[];
  d_jobs text[];
  d_things text[];
  d_numbers bigint[];
  d_statuses text[];
  a_jobs text[];
  a_things text[];
  a_numbers bigint[];
  a_previous text[];
BEGIN
  SELECT array_agg(d.ctid), array_agg(d.job_id), array_agg(d.thing_name), array_agg(d.execution_number),
    array_agg(d.status)
  INTO d_rows, d_jobs, d_things, d_numbers, d_statuses
  FROM (SELECT e.ctid, e.job_id, e.thing_name, e.execution_number, e.status FROM job_executions e
        WHERE e.timeout_at <= p_now AND e.status IN ('QUEUED', 'IN_PROGRESS')
        ORDER BY e.timeout_at LIMIT p_limit) d;
  IF d_rows IS NULL THEN RETURN ARRAY[0, 0]; END IF;
  PERFORM 1 FROM things t WHERE t.thing_name = ANY(d_things) ORDER BY t.thing_name FOR UPDATE;
  WITH u AS (
    UPDATE job_executions e
    SET status = 'TIMED_OUT', version_number = e.version_number + 1, last_updated_at = p_now
    WHERE e.ctid = ANY(d_rows) AND e.status IN ('QUEUED', 'IN_PROGRESS') AND e.timeout_at <= p_now
    RETURNING e.job_id, e.thing_name, e.execution_number
  )
  SELECT array_agg(u.job_id ORDER BY u.job_id, u.thing_name, u.execution_number),
    array_agg(u.thing_name ORDER BY u.job_id, u.thing_name, u.execution_number),
    array_agg(u.execution_number ORDER BY u.job_id, u.thing_name, u.execution_number),
    array_agg(d.status ORDER BY u.job_id, u.thing_name, u.execution_number)
  INTO a_jobs, a_things, a_numbers, a_previous
  FROM u JOIN unnest(d_jobs, d_things, d_numbers, d_statuses) AS d(job_id, thing_name, execution_number, status)
    ON d.job_id = u.job_id AND d.thing_name = u.thing_name AND d.execution_number = u.execution_number;
  IF a_jobs IS NOT NULL THEN
    PERFORM fj_after_change(p_now, p_root, p_threshold, a_jobs, a_things, a_numbers,
      array_fill('TIMED_OUT'::text, ARRAY[cardinality(a_jobs)]), a_previous, '{}');
  END IF;
  RETURN ARRAY[cardinality(d_rows), coalesce(cardinality(a_jobs), 0)];
END $$;
