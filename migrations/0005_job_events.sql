-- Job state changes of organization jobs become events in that organization's log
-- (issue 5: job.enqueued, job.started, job.completed, job.retry_scheduled, job.released,
-- job.dead_lettered, job.cancelled, job.requeued).
--
-- A transactional outbox: a row trigger records the change in the same transaction as
-- the change itself, without touching org_event_seq. Taking that per-organization lock
-- inside the worker's multi-organization claim and completion statements would order
-- locks by row order and deadlock concurrent workers. The worker's forwarder moves
-- outbox rows into agent_events in id order (one forwarder at a time, under an advisory
-- lock) and publishes them. System jobs (no organization) pay only the WHEN check.

CREATE TABLE job_event_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    event_type      text NOT NULL,
    actor_type      text NOT NULL,
    actor_id        uuid NOT NULL,
    actor_name      text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- Only mc_system (BYPASSRLS) reads or writes it: through the trigger and the forwarder.
ALTER TABLE job_event_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_event_outbox FORCE ROW LEVEL SECURITY;

-- Who changed a job, when the change came through the API (cancel, retry, replay): set
-- per transaction with set_config('app.actor_*', ..., true). Otherwise the queue itself.
CREATE FUNCTION jobs_record_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    ev     text;
    before text;
    holder text;
    error  jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        ev := 'job.enqueued';
        holder := NULL;
    ELSE
        before := OLD.state;
        holder := coalesce(NEW.lease_holder, OLD.lease_holder);
        IF jsonb_array_length(NEW.errors) > jsonb_array_length(OLD.errors) THEN
            error := NEW.errors -> -1;
        END IF;
        ev := CASE
            WHEN NEW.state = 'running' THEN 'job.started'
            WHEN NEW.state = 'completed' THEN 'job.completed'
            WHEN NEW.state = 'dead' THEN 'job.dead_lettered'
            WHEN NEW.state = 'cancelled' THEN 'job.cancelled'
            WHEN OLD.state = 'running' AND error IS NOT NULL THEN 'job.retry_scheduled'
            WHEN OLD.state = 'running' THEN 'job.released'
            ELSE 'job.requeued'
        END;
    END IF;
    INSERT INTO job_event_outbox
        (organization_id, event_type, actor_type, actor_id, actor_name, payload)
    VALUES (
        NEW.organization_id,
        ev,
        coalesce(nullif(current_setting('app.actor_type', true), ''), 'system'),
        coalesce(nullif(current_setting('app.actor_id', true), '')::uuid,
                 '00000000-0000-0000-0000-000000000000'::uuid),
        coalesce(nullif(current_setting('app.actor_name', true), ''), holder, 'queue'),
        jsonb_strip_nulls(jsonb_build_object(
            'job_id', NEW.id,
            'kind', NEW.kind,
            'queue', NEW.queue,
            'priority', CASE NEW.priority WHEN 0 THEN 'critical' WHEN 1 THEN 'high'
                                          WHEN 2 THEN 'medium' ELSE 'low' END,
            'state', NEW.state,
            'previous_state', before,
            'attempts', NEW.attempts,
            'max_attempts', NEW.max_attempts,
            'run_at', NEW.run_at,
            'error', error)));
    -- Identical payloads are folded by Postgres: one wake-up per transaction.
    PERFORM pg_notify('mc_job_events', '');
    RETURN NULL;
END
$$;
ALTER FUNCTION jobs_record_event() OWNER TO mc_system;

CREATE TRIGGER jobs_record_event_insert AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.organization_id IS NOT NULL)
    EXECUTE FUNCTION jobs_record_event();
CREATE TRIGGER jobs_record_event_update AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (NEW.organization_id IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION jobs_record_event();
