-- H5 chat (seed 000 M4 `h5_chat_sessions`, plus the messages): every user and agent
-- message is stored with a per-session sequence number before it is relayed, so a client
-- that reconnects anywhere resumes with no loss and no duplicates.
CREATE TABLE h5_chat_sessions (
    id              uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    h5_user_id      uuid NOT NULL REFERENCES h5_users(id) ON DELETE CASCADE,
    agent_id        uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    gateway_id      uuid NOT NULL REFERENCES gateways(id) ON DELETE CASCADE,
    session_key     text NOT NULL CHECK (length(session_key) BETWEEN 1 AND 255),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    -- The last seq handed out; the row lock on it orders the session's messages.
    last_seq        bigint NOT NULL DEFAULT 0,
    last_message_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_h5_chat_sessions_user ON h5_chat_sessions (h5_user_id, status);
-- One active conversation per user and agent: get-or-create is race-free.
CREATE UNIQUE INDEX h5_chat_sessions_active ON h5_chat_sessions (h5_user_id, agent_id)
    WHERE status = 'active';
CREATE INDEX h5_chat_sessions_gateway ON h5_chat_sessions (gateway_id, last_message_at DESC)
    WHERE status = 'active';
CREATE INDEX h5_chat_sessions_agent ON h5_chat_sessions (agent_id);
CREATE TRIGGER h5_chat_sessions_updated_at BEFORE UPDATE ON h5_chat_sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE h5_chat_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5_chat_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON h5_chat_sessions
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

CREATE TABLE h5_chat_messages (
    id                uuid PRIMARY KEY,
    organization_id   uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    session_id        uuid NOT NULL REFERENCES h5_chat_sessions(id) ON DELETE CASCADE,
    seq               bigint NOT NULL CHECK (seq > 0),
    role              text NOT NULL CHECK (role IN ('user', 'agent')),
    content           text NOT NULL,
    -- The client's id for a user message (retries find the stored one), `run:{runId}`
    -- for an agent reply (a replayed final is stored once).
    client_message_id text NOT NULL CHECK (length(client_message_id) BETWEEN 1 AND 128),
    -- The gateway run: set on a user message when the gateway accepts it, on a reply
    -- from its events.
    run_id            text,
    status            text NOT NULL CHECK (status IN
                      ('received', 'sent', 'failed', 'completed', 'error', 'aborted')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, seq),
    UNIQUE (session_id, client_message_id)
);
-- User messages not yet handed to a gateway (a relay died in between): re-sent by a sweep.
CREATE INDEX h5_chat_messages_unsent ON h5_chat_messages (created_at) WHERE status = 'received';
CREATE TRIGGER h5_chat_messages_updated_at BEFORE UPDATE ON h5_chat_messages
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE h5_chat_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE h5_chat_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON h5_chat_messages
    USING (organization_id = app_current_org())
    WITH CHECK (organization_id = app_current_org());

-- Appends a message in one round trip: locks the session row (ordering its seqs), returns
-- the stored message when its client id was seen before, else takes the next seq. Runs
-- with the caller's rights, so row-level security applies.
CREATE FUNCTION h5_chat_append(
    p_id uuid, p_session uuid, p_role text, p_content text, p_client_id text,
    p_run_id text, p_status text
) RETURNS TABLE (id uuid, seq bigint, status text, run_id text, created_at timestamptz,
                 content text, duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_org  uuid;
    v_last bigint;
BEGIN
    SELECT s.organization_id, s.last_seq INTO v_org, v_last
      FROM h5_chat_sessions s WHERE s.id = p_session FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT m.id, m.seq, m.status, m.run_id, m.created_at, m.content, true
      FROM h5_chat_messages m
     WHERE m.session_id = p_session AND m.client_message_id = p_client_id;
    IF FOUND THEN
        RETURN;
    END IF;
    UPDATE h5_chat_sessions SET last_seq = v_last + 1, last_message_at = now()
     WHERE h5_chat_sessions.id = p_session;
    RETURN QUERY INSERT INTO h5_chat_messages AS m
        (id, organization_id, session_id, seq, role, content, client_message_id, run_id, status)
        VALUES (p_id, v_org, p_session, v_last + 1, p_role, p_content, p_client_id, p_run_id,
                p_status)
        RETURNING m.id, m.seq, m.status, m.run_id, m.created_at, m.content, false;
END;
$$;
