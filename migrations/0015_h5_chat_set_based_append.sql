-- Chat appends set-based. Profiled at 1,000 messages/s (BENCHMARKS.md, h5), PostgreSQL
-- was the largest CPU user: every message ran h5_chat_append (lock, duplicate check,
-- session update, insert: four statements) and then a row trigger (session lookup, agent
-- lookup, outbox insert, each call a SECURITY DEFINER switch). Now a batch is a handful
-- of statements whatever its size, and its events one INSERT ... SELECT.

-- The outbox events of stored messages, once per statement (transition table) instead of
-- once per row. Same rows as h5_chat_record_event (migration 0009).
CREATE FUNCTION h5_chat_record_events() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
AS $$
BEGIN
    INSERT INTO event_outbox
        (organization_id, event_type, actor_type, actor_id, actor_name, agent_id, payload)
    SELECT
        n.organization_id,
        CASE n.role WHEN 'user' THEN 'chat.message_sent' ELSE 'chat.reply_completed' END,
        CASE n.role WHEN 'user' THEN 'h5_user' ELSE 'agent' END,
        CASE n.role WHEN 'user' THEN s.h5_user_id ELSE s.agent_id END,
        CASE n.role WHEN 'user' THEN 'h5 user' ELSE coalesce(a.name, 'agent') END,
        s.agent_id,
        jsonb_strip_nulls(jsonb_build_object(
            'session_id', n.session_id,
            'h5_user_id', s.h5_user_id,
            'gateway_id', s.gateway_id,
            'message_id', n.id,
            'seq', n.seq,
            'status', n.status,
            'run_id', n.run_id,
            'content_length', char_length(n.content),
            'content', CASE WHEN current_setting('app.chat_event_content', true) = 'on'
                            THEN n.content END))
      FROM new_messages n
      JOIN h5_chat_sessions s ON s.id = n.session_id
      LEFT JOIN agents a ON n.role = 'agent' AND a.id = s.agent_id
     -- A session's events in seq order (the forwarder numbers them in outbox order).
     ORDER BY n.session_id, n.seq;
    -- No NOTIFY, as before (migration 0009): the forwarder polls.
    RETURN NULL;
END
$$;
ALTER FUNCTION h5_chat_record_events() OWNER TO mc_system;

DROP TRIGGER h5_chat_messages_record_event ON h5_chat_messages;
CREATE TRIGGER h5_chat_messages_record_events AFTER INSERT ON h5_chat_messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION h5_chat_record_events();
DROP FUNCTION h5_chat_record_event();

-- Same contract as migration 0012: `ord` is the 1-based position in the arrays; a row
-- whose session is missing (or not visible) returns nothing; a client id already stored
-- in the session, or repeated earlier in the batch, returns that message with
-- `duplicate`. Seqs follow the order given within each session.
CREATE OR REPLACE FUNCTION h5_chat_append_many(
    p_ids uuid[], p_sessions uuid[], p_roles text[], p_contents text[], p_client_ids text[],
    p_run_ids text[], p_statuses text[]
) RETURNS TABLE (ord integer, id uuid, seq bigint, status text, run_id text,
                 created_at timestamptz, content text, duplicate boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    -- Sessions locked in id order, so concurrent batches cannot deadlock. The next
    -- statement's snapshot is taken after the locks: it sees every committed seq.
    PERFORM 1 FROM h5_chat_sessions s WHERE s.id = ANY (p_sessions) ORDER BY s.id FOR UPDATE;
    RETURN QUERY
    WITH input AS (
        SELECT i.ord::integer AS ord, i.id, i.sess, i.role, i.content, i.cid, i.run, i.status
          FROM unnest(p_ids, p_sessions, p_roles, p_contents, p_client_ids, p_run_ids,
                      p_statuses)
               WITH ORDINALITY AS i(id, sess, role, content, cid, run, status, ord)
    ),
    -- The first of each client id in the batch; later ones are its retries.
    firsts AS (
        SELECT DISTINCT ON (sess, cid) * FROM input ORDER BY sess, cid, ord
    ),
    fresh AS (
        SELECT f.*, s.organization_id AS org,
               s.last_seq + row_number() OVER (PARTITION BY f.sess ORDER BY f.ord) AS seq
          FROM firsts f
          JOIN h5_chat_sessions s ON s.id = f.sess
         WHERE NOT EXISTS (SELECT 1 FROM h5_chat_messages m
                            WHERE m.session_id = f.sess AND m.client_message_id = f.cid)
    ),
    inserted AS (
        INSERT INTO h5_chat_messages AS m
            (id, organization_id, session_id, seq, role, content, client_message_id, run_id,
             status)
        SELECT id, org, sess, seq, role, content, cid, run, status FROM fresh
         ORDER BY sess, seq
        RETURNING m.id, m.session_id, m.client_message_id, m.seq, m.status, m.run_id,
                  m.created_at, m.content
    ),
    bumped AS (
        UPDATE h5_chat_sessions s SET last_seq = b.seq, last_message_at = now()
          FROM (SELECT sess, max(seq) AS seq FROM fresh GROUP BY sess) b
         WHERE s.id = b.sess
    )
    SELECT i.ord,
           coalesce(n.id, e.id),
           coalesce(n.seq, e.seq),
           coalesce(n.status, e.status),
           coalesce(n.run_id, e.run_id),
           coalesce(n.created_at, e.created_at),
           coalesce(n.content, e.content),
           n.id IS DISTINCT FROM i.id
      FROM input i
      LEFT JOIN inserted n ON n.session_id = i.sess AND n.client_message_id = i.cid
      LEFT JOIN h5_chat_messages e ON n.id IS NULL
                                  AND e.session_id = i.sess AND e.client_message_id = i.cid
     WHERE coalesce(n.id, e.id) IS NOT NULL
     ORDER BY i.ord;
END;
$$;

-- Every append goes through h5_chat_append_many now.
DROP FUNCTION h5_chat_append(uuid, uuid, text, text, text, text, text);
