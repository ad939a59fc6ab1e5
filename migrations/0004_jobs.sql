-- Durable job queue (issue 5): strict four-tier priority, run_at scheduling, leases with
-- heartbeat and reclaim, retries with backoff, dead letters, idempotency keys.
--
-- States: pending -> running -> completed | pending (retry) | dead; pending|running ->
-- cancelled. A running job is held by exactly one lease (holder + token); only that
-- lease may finish it.

CREATE TABLE jobs (
    id                uuid PRIMARY KEY,
    -- NULL for system jobs (sweepers); set for work done on behalf of a tenant.
    organization_id   uuid REFERENCES organizations(id) ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,99}$'),
    queue             text NOT NULL DEFAULT 'default' CHECK (queue ~ '^[a-z][a-z0-9_-]{0,62}$'),
    -- 0 critical, 1 high, 2 medium, 3 low: ascending order is dequeue order.
    priority          smallint NOT NULL CHECK (priority BETWEEN 0 AND 3),
    payload           jsonb NOT NULL DEFAULT '{}'::jsonb,
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'running', 'completed', 'dead', 'cancelled')),
    run_at            timestamptz NOT NULL DEFAULT now(),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts      integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    timeout_ms        integer NOT NULL CHECK (timeout_ms BETWEEN 100 AND 86400000),
    idempotency_key   text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    -- At most concurrency_limit jobs with the same key run at once (per agent, per
    -- webhook endpoint, ...): a scheduler never over-assigns (seed 002 US-002).
    concurrency_key   text CHECK (length(concurrency_key) BETWEEN 1 AND 200),
    concurrency_limit integer CHECK (concurrency_limit BETWEEN 1 AND 10000),
    lease_holder      text,
    lease_token       uuid,
    lease_expires_at  timestamptz,
    -- One entry per failed attempt: {attempt, error, at, worker}.
    errors            jsonb NOT NULL DEFAULT '[]'::jsonb,
    result            jsonb,
    enqueued_at       timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'running') = (lease_token IS NOT NULL)),
    CHECK ((concurrency_key IS NULL) = (concurrency_limit IS NULL))
);
-- Enqueueing the same (kind, key) twice gives one job.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (kind, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The dequeue order, only over runnable rows.
CREATE INDEX jobs_ready ON jobs (queue, priority, run_at, id) WHERE state = 'pending';
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'running';
-- Completion, failure and heartbeat find a job by its lease token.
CREATE UNIQUE INDEX jobs_lease_token ON jobs (lease_token) WHERE lease_token IS NOT NULL;
CREATE INDEX jobs_running_keys ON jobs (concurrency_key) WHERE state = 'running' AND concurrency_key IS NOT NULL;
CREATE INDEX jobs_state ON jobs (state, kind, enqueued_at DESC, id DESC);
CREATE INDEX jobs_org ON jobs (organization_id, enqueued_at DESC, id DESC) WHERE organization_id IS NOT NULL;
CREATE TRIGGER jobs_updated_at BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
-- Tenants see their own jobs; the worker and admin tooling run as mc_system (BYPASSRLS).
CREATE POLICY tenant ON jobs
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Wakes idle workers when jobs arrive (one notification per statement and queue);
-- retries, replays and delayed jobs are found by the workers' polling.
CREATE FUNCTION jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mc_jobs', q.queue)
    FROM (SELECT DISTINCT queue FROM inserted WHERE state = 'pending') q;
    RETURN NULL;
END
$$;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_notify();

-- Completion by lease token, callable from any role and inside a job's own transaction
-- (so its effects and its completion commit together); the token is the credential.
CREATE FUNCTION job_complete(p_tokens uuid[], p_results jsonb[])
    RETURNS SETOF uuid
    LANGUAGE sql SECURITY DEFINER SET search_path = public
AS $$
    UPDATE jobs j
    SET state = 'completed', result = d.result, finished_at = now(),
        lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL
    FROM unnest(p_tokens, p_results) AS d(token, result)
    WHERE j.lease_token = d.token AND j.state = 'running'
    RETURNING j.id
$$;
ALTER FUNCTION job_complete(uuid[], jsonb[]) OWNER TO mc_system;

-- Event-log retention: drops monthly partitions that end at or before the cutoff
-- (PROACTIVITY_EVENT_TTL_DAYS); run by the worker as the table owner.
CREATE FUNCTION drop_agent_event_partitions_before(p_cutoff timestamptz)
    RETURNS SETOF text
    LANGUAGE plpgsql
AS $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT c.relname::text AS name
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'agent_events'::regclass
          AND c.relname ~ '^agent_events_[0-9]{6}$'
        ORDER BY c.relname
    LOOP
        IF (to_date(substr(part.name, 14), 'YYYYMM') + interval '1 month') <= p_cutoff THEN
            EXECUTE format('DROP TABLE %I', part.name);
            RETURN NEXT part.name;
        END IF;
    END LOOP;
END
$$;

-- Recurring (cron, UTC) and one-shot schedules that enqueue jobs. A due schedule is
-- claimed with SKIP LOCKED, its job enqueued with the idempotency key
-- schedule:{id}:{tick}, and next_run_at advanced in the same transaction: one job per
-- tick however many workers run.
CREATE TABLE job_schedules (
    id              uuid PRIMARY KEY,
    organization_id uuid REFERENCES organizations(id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind            text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{0,99}$'),
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority        smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 3),
    queue           text NOT NULL DEFAULT 'default',
    cron            text,
    run_once_at     timestamptz,
    enabled         boolean NOT NULL DEFAULT true,
    next_run_at     timestamptz,
    last_run_at     timestamptz,
    last_job_id     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((cron IS NULL) <> (run_once_at IS NULL))
);
-- System schedules (no organization) have globally unique names; tenant ones per org.
CREATE UNIQUE INDEX job_schedules_system_name ON job_schedules (name) WHERE organization_id IS NULL;
CREATE UNIQUE INDEX job_schedules_org_name ON job_schedules (organization_id, name) WHERE organization_id IS NOT NULL;
CREATE INDEX job_schedules_due ON job_schedules (next_run_at) WHERE enabled;
CREATE TRIGGER job_schedules_updated_at BEFORE UPDATE ON job_schedules
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE job_schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_schedules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON job_schedules
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());
