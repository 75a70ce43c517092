-- fleetjobs schema, version 8: tenants (issue 17 item 5, docs/tenants.md).

-- Names (things, groups, jobs, templates, schedules, keys) stay unique per deployment: device topics carry the
-- bare thing name on one broker, and no primary key changes. Every tenant-owned row carries tenant_id, and
-- row-level security keeps operator requests, which run as the role fleetjobs_tenant with
-- fleetjobs.tenant_id set for their transaction (src/store/db.ts tenantDb), to their tenant's rows.
CREATE TABLE tenants (
  tenant_id    text PRIMARY KEY CHECK (tenant_id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  description  text,
  created_at   timestamptz NOT NULL
);
INSERT INTO tenants (tenant_id, description, created_at) VALUES ('default', 'the deployment''s own tenant', now());

-- Roles belong to the cluster, not the schema: created once, by whichever migration gets there first. The
-- connecting role must be a member to SET ROLE to it (a superuser needs not).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fleetjobs_tenant') THEN
    BEGIN
      CREATE ROLE fleetjobs_tenant NOLOGIN;
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN NULL;
      WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'fleetjobs needs the role fleetjobs_tenant and % may not create roles', current_user
          USING HINT = format('as an administrator: CREATE ROLE fleetjobs_tenant NOLOGIN; GRANT fleetjobs_tenant TO %I;',
            current_user);
    END;
  END IF;
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
     AND NOT pg_has_role(current_user, 'fleetjobs_tenant', 'MEMBER') THEN
    BEGIN
      EXECUTE format('GRANT fleetjobs_tenant TO %I', current_user);
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE EXCEPTION '% must be a member of the role fleetjobs_tenant and may not grant it to itself', current_user
        USING HINT = format('as an administrator: GRANT fleetjobs_tenant TO %I;', current_user);
    END;
  END IF;
END $$;

-- Rows that exist become the default tenant's (the outbox is the system's: see the grants at the end). Root rows
-- written outside a tenant transaction (the first admin key, `fleetjobs keys create`, bulk registration) are the
-- default tenant's too; child rows take their parent's tenant (triggers below), so system code (device batches,
-- sweeps, the dispatcher) never writes one into a tenant by accident: a child row without a parent fails
-- NOT NULL.
ALTER TABLE things ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE thing_groups ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE jobs ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE job_templates ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE job_schedules ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE operator_keys ADD COLUMN tenant_id text NOT NULL DEFAULT 'default' REFERENCES tenants (tenant_id);
ALTER TABLE thing_group_members ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE thing_credentials ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE job_executions ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE rollout_targets ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE execution_retries ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE job_template_versions ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE job_schedule_runs ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';
ALTER TABLE events ADD COLUMN tenant_id text NOT NULL DEFAULT 'default';

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['things', 'thing_groups', 'jobs', 'job_templates', 'job_schedules', 'operator_keys'] LOOP
    EXECUTE format($f$ALTER TABLE %I ALTER COLUMN tenant_id
      SET DEFAULT coalesce(nullif(current_setting('fleetjobs.tenant_id', true), ''), 'default')$f$, t);
  END LOOP;
  FOREACH t IN ARRAY ARRAY['thing_group_members', 'thing_credentials', 'job_executions', 'rollout_targets',
    'execution_retries', 'job_template_versions', 'job_schedule_runs', 'events'] LOOP
    EXECUTE format($f$ALTER TABLE %I ALTER COLUMN tenant_id
      SET DEFAULT nullif(current_setting('fleetjobs.tenant_id', true), '')$f$, t);
  END LOOP;
END $$;

-- A child row written outside a tenant transaction takes its parent's tenant. The triggers fire only then
-- (WHEN tenant_id IS NULL): inside a tenant transaction the default has set it, and the policy checks it.
CREATE FUNCTION fj_tenant_of_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT j.tenant_id INTO NEW.tenant_id FROM jobs j WHERE j.job_id = NEW.job_id;
  RETURN NEW;
END $$;
CREATE FUNCTION fj_tenant_of_thing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT t.tenant_id INTO NEW.tenant_id FROM things t WHERE t.thing_name = NEW.thing_name;
  RETURN NEW;
END $$;
CREATE FUNCTION fj_tenant_of_template() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT t.tenant_id INTO NEW.tenant_id FROM job_templates t WHERE t.job_template_id = NEW.job_template_id;
  RETURN NEW;
END $$;
CREATE FUNCTION fj_tenant_of_schedule() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT s.tenant_id INTO NEW.tenant_id FROM job_schedules s WHERE s.schedule_id = NEW.schedule_id;
  RETURN NEW;
END $$;
CREATE TRIGGER tenant_of_thing BEFORE INSERT ON thing_group_members
  FOR EACH ROW WHEN (NEW.tenant_id IS NULL) EXECUTE FUNCTION fj_tenant_of_thing();
CREATE TRIGGER tenant_of_thing BEFORE INSERT ON thing_credentials
  FOR EACH ROW WHEN (NEW.tenant_id IS NULL) EXECUTE FUNCTION fj_tenant_of_thing();
CREATE TRIGGER tenant_of_job BEFORE INSERT ON job_executions
  FOR EACH ROW WHEN (NEW.tenant_id IS NULL) EXECUTE FUNCTION fj_tenant_of_job();
CREATE TRIGGER tenant_of_job BEFORE INSERT ON rollout_targets
  FOR EACH ROW WHEN (NEW.tenant_id IS NULL) EXECUTE FUNCTION fj_tenant_of_job();
CREATE TRIGGER tenant_of_job BEFORE INSERT ON execution_retries
  FOR EACH ROW WHEN (NEW.tenant_id IS NULL) EXECUTE FUNCTION fj_tenant_of_job();
CREATE TRIGGER tenant_of_job BEFORE INSERT ON events
  FOR EACH ROW WHEN (NEW.tenant_id IS NULL) EXECUTE FUNCTION fj_tenant_of_job();
CREATE TRIGGER tenant_of_template BEFORE INSERT ON job_template_versions
  FOR EACH ROW WHEN (NEW.tenant_id IS NULL) EXECUTE FUNCTION fj_tenant_of_template();
CREATE TRIGGER tenant_of_schedule BEFORE INSERT ON job_schedule_runs
  FOR EACH ROW WHEN (NEW.tenant_id IS NULL) EXECUTE FUNCTION fj_tenant_of_schedule();

-- The policies bind fleetjobs_tenant only. The connecting role owns the tables and is not subject to them (no
-- FORCE): it is the system code that serves every tenant (workers, device batches, key lookup). A request
-- transaction that never set a tenant sees and writes nothing: current_setting is NULL or '' there.
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['things', 'thing_groups', 'thing_group_members', 'thing_credentials', 'jobs',
    'job_executions', 'rollout_targets', 'execution_retries', 'job_templates', 'job_template_versions',
    'job_schedules', 'job_schedule_runs', 'events', 'operator_keys'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format($f$CREATE POLICY tenant_rows ON %I TO fleetjobs_tenant
      USING (tenant_id = current_setting('fleetjobs.tenant_id', true))
      WITH CHECK (tenant_id = current_setting('fleetjobs.tenant_id', true))$f$, t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO fleetjobs_tenant', t);
  END LOOP;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO fleetjobs_tenant', current_schema());
END $$;
-- The outbox is write-only to tenants: their changes insert notifications (in the funnel's functions), only the
-- dispatcher reads them. A tenant reads no outbox row, its own included, so the outbox needs no tenant_id (and
-- the device path no trigger on its busiest table). Read-only deployment data the funnel's payloads use;
-- tenants and fleetjobs_migrations stay the system's.
GRANT INSERT ON outbox TO fleetjobs_tenant;
GRANT SELECT ON deployment_settings TO fleetjobs_tenant;
GRANT USAGE ON SEQUENCE job_executions_seq, events_seq TO fleetjobs_tenant;
