-- The job queue's hot path, made cheap (BENCHMARKS.md, queue; docs/adr/0003-job-queue-table.md).
--
-- Before: claim and completion each updated the `jobs` row, and neither update could be
-- HOT (the dequeue and lease indexes name `state`), so each job added entries to every
-- index of `jobs` twice, evaluated every CHECK again and fired the updated_at trigger.
-- Worse, the entries a claim left dead sat at the front of the dequeue index until a
-- VACUUM of the whole (large, ever-growing) table, and every later claim walked over them.
--
-- After: `job_queue` holds one small row per pending or running job: what dequeue,
-- leases and concurrency limits look at. Its indexes take the per-claim churn and it stays
-- small (only open jobs), so vacuuming it is cheap and frequent (the worker does, see
-- jobs/worker.rs). `jobs` keeps the record; none of its indexes name a column the queue
-- changes, so the queue's updates of it are HOT (room left by the fillfactor).
--
-- Invariant, kept by every statement in jobs/repo.rs: a `job_queue` row exists iff the job
-- is pending or running, with the job's queue, priority, run_at, concurrency key and timeout; its
-- lease (token, holder, expiry) is set iff the job is running, and equals the job's.

CREATE TABLE job_queue (
    id                uuid PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    organization_id   uuid,
    queue             text NOT NULL,
    priority          smallint NOT NULL,
    run_at            timestamptz NOT NULL,
    concurrency_key   text,
    concurrency_limit integer,
    -- The job's timeout: a lease lasts this plus the worker's slack.
    timeout_ms        integer NOT NULL,
    lease_token       uuid,
    lease_expires_at  timestamptz,
    CHECK ((lease_token IS NULL) = (lease_expires_at IS NULL))
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_delay = 0);
-- The dequeue order, only over runnable rows.
CREATE INDEX job_queue_ready ON job_queue (queue, priority, run_at, id) WHERE lease_token IS NULL;
-- Lapsed leases (reclaim).
CREATE INDEX job_queue_leases ON job_queue (lease_expires_at) WHERE lease_token IS NOT NULL;
-- Running jobs per concurrency key.
CREATE INDEX job_queue_running_keys ON job_queue (concurrency_key)
    WHERE lease_token IS NOT NULL AND concurrency_key IS NOT NULL;
ALTER TABLE job_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_queue FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON job_queue
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

INSERT INTO job_queue (id, organization_id, queue, priority, run_at, concurrency_key,
                       concurrency_limit, timeout_ms, lease_token, lease_expires_at)
SELECT id, organization_id, queue, priority, run_at, concurrency_key, concurrency_limit,
       timeout_ms, lease_token, lease_expires_at
FROM jobs WHERE state IN ('pending', 'running');

DROP INDEX jobs_ready;
DROP INDEX jobs_leases;
DROP INDEX jobs_running_keys;
-- Listing is per organization (jobs_org); the queue's own questions go to job_queue.
DROP INDEX jobs_state;
-- Leases are found by job id and checked by token (one claim gives its jobs one token: a
-- lease is the pair, and a job claimed again gets a new one).
DROP INDEX jobs_lease_token;
-- Every statement that changes a job sets updated_at itself (jobs/repo.rs).
DROP TRIGGER jobs_updated_at ON jobs;
-- Room on each page for the HOT versions of claim and completion (new pages only).
ALTER TABLE jobs SET (fillfactor = 60);

-- Same rules, cheap to check: `{0,99}` made the regex engine build a large automaton on
-- every evaluation (16% of the database's time in a claim/complete loop); a star and a
-- length check say the same.
ALTER TABLE jobs DROP CONSTRAINT jobs_kind_check, DROP CONSTRAINT jobs_queue_check;
ALTER TABLE jobs
    ADD CONSTRAINT jobs_kind_check CHECK (kind ~ '^[a-z][a-z0-9_.]*$' AND length(kind) <= 100),
    ADD CONSTRAINT jobs_queue_check CHECK (queue ~ '^[a-z][a-z0-9_-]*$' AND length(queue) <= 63);
ALTER TABLE job_schedules DROP CONSTRAINT job_schedules_kind_check;
ALTER TABLE job_schedules
    ADD CONSTRAINT job_schedules_kind_check CHECK (kind ~ '^[a-z][a-z0-9_.]*$' AND length(kind) <= 100);

DROP FUNCTION job_complete(uuid[], jsonb[]);
-- Completion by job id and lease token, callable from any role and inside a job's own
-- transaction (so its effects and its completion commit together); the token is the
-- credential. Rows are found by primary key (`= ANY`), never by a join with the arrays
-- (whose plan depends on estimates the arrays do not have).
CREATE FUNCTION job_complete(p_ids uuid[], p_tokens uuid[], p_results jsonb[])
    RETURNS SETOF uuid
    LANGUAGE sql SECURITY DEFINER SET search_path = public
AS $$
    WITH held AS (
        DELETE FROM job_queue q
        WHERE q.id = ANY(p_ids) AND q.lease_token = p_tokens[array_position(p_ids, q.id)]
        RETURNING q.id
    )
    UPDATE jobs j
    SET state = 'completed', result = p_results[array_position(p_ids, j.id)],
        finished_at = now(), updated_at = now(),
        lease_token = NULL, lease_holder = NULL, lease_expires_at = NULL
    WHERE j.id = ANY(ARRAY(SELECT id FROM held)) AND j.state = 'running'
    RETURNING j.id
$$;
ALTER FUNCTION job_complete(uuid[], uuid[], jsonb[]) OWNER TO mc_system;
