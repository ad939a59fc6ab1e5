-- One outbox for events written at a high rate (docs/adr/0002-events-through-the-outbox.md).
-- Appending to agent_events takes the organization's org_event_seq row lock until commit,
-- so every writer of an organization queues behind the others' commits (fsync included);
-- chat stores two messages per exchange and collapsed at 1,000 messages/s that way. The
-- job queue already recorded its events through an outbox (migration 0005); chat messages
-- now do too, so the table loses its job-only name and gains the agent an event is about.
ALTER TABLE job_event_outbox RENAME TO event_outbox;
ALTER TABLE event_outbox ADD COLUMN agent_id uuid;

-- The job trigger, unchanged but for the new table and notification names.
CREATE OR REPLACE FUNCTION jobs_record_event() RETURNS trigger
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
    INSERT INTO event_outbox
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
    PERFORM pg_notify('mc_event_outbox', '');
    RETURN NULL;
END
$$;

-- Chat: a stored message records `chat.message_sent` (user) or `chat.reply_completed`
-- (agent) in the same transaction. The text is left out unless the writer sets
-- app.chat_event_content = 'on' for its transaction (CHAT_EVENT_INCLUDE_CONTENT).
CREATE FUNCTION h5_chat_record_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
DECLARE
    s          record;
    agent_name text;
BEGIN
    SELECT h5_user_id, agent_id, gateway_id INTO s FROM h5_chat_sessions WHERE id = NEW.session_id;
    IF NEW.role = 'agent' THEN
        SELECT name INTO agent_name FROM agents WHERE id = s.agent_id;
    END IF;
    INSERT INTO event_outbox
        (organization_id, event_type, actor_type, actor_id, actor_name, agent_id, payload)
    VALUES (
        NEW.organization_id,
        CASE NEW.role WHEN 'user' THEN 'chat.message_sent' ELSE 'chat.reply_completed' END,
        CASE NEW.role WHEN 'user' THEN 'h5_user' ELSE 'agent' END,
        CASE NEW.role WHEN 'user' THEN s.h5_user_id ELSE s.agent_id END,
        CASE NEW.role WHEN 'user' THEN 'h5 user' ELSE coalesce(agent_name, 'agent') END,
        s.agent_id,
        jsonb_strip_nulls(jsonb_build_object(
            'session_id', NEW.session_id,
            'h5_user_id', s.h5_user_id,
            'gateway_id', s.gateway_id,
            'message_id', NEW.id,
            'seq', NEW.seq,
            'status', NEW.status,
            'run_id', NEW.run_id,
            'content_length', char_length(NEW.content),
            'content', CASE WHEN current_setting('app.chat_event_content', true) = 'on'
                            THEN NEW.content END)));
    -- No NOTIFY: a notifying transaction holds a database-wide lock through its commit,
    -- which would queue every chat commit behind the others again. The forwarder's
    -- polling (MC_WORKER_POLL_INTERVAL_MS) picks these up.
    RETURN NULL;
END
$$;
ALTER FUNCTION h5_chat_record_event() OWNER TO mc_system;

CREATE TRIGGER h5_chat_messages_record_event AFTER INSERT ON h5_chat_messages
    FOR EACH ROW EXECUTE FUNCTION h5_chat_record_event();
