-- Chat appends for the floor of a round trip (docs/h5-chat.md): one statement per batch,
-- nothing read before it, no plan made per call.
--
-- 1. A user's message is authorised in the statement that stores it. Before, a relay
--    re-read the user's assignment and session in two read transactions whenever its 5 s
--    cache had expired, so a user who writes now and then paid both on every message.
--    Now a relay keeps what it read until the database says it changed: each user row
--    names the gateway the relay will hand it to, and the row is stored only while the
--    session is active on that gateway, the agent is still on it and the user is still
--    assigned to the agent. A refused row returns nothing, like a missing session; the
--    relay then reads the route and session again and either appends once more or tells
--    the user why not. Rows with a NULL gateway (agent replies, routed by the gateway
--    that owns the session) are not checked.
-- 2. The batch carries each row's organization and the function scopes row-level security
--    to each organization in turn, so a relay calls it outside an explicit transaction:
--    the statement is its own transaction and commits (durably) before its rows are
--    returned. One round trip instead of three (BEGIN and the setting, the call, COMMIT).
-- 3. Its statements are planned generically at once. Left to choose, PostgreSQL kept
--    making a custom plan on every call (the inputs are arrays, so no custom plan is
--    better), which took about 1 ms of a single-row append's 1.5 ms (pgbench on the bench
--    machine: 1.6 -> 0.8 ms per call). A generic plan is made once per connection, maybe
--    while the tables are still nearly empty, and then kept: with sequential scans off it
--    finds messages and sessions through their indexes whatever the statistics said then
--    (a plan made on a new database scanned every message of every session on each call
--    and fell behind within seconds at 1,000 messages/s).
--
-- Same contract as h5_chat_append_many (migration 0015) otherwise: `ord` is the 1-based
-- position in the arrays; a client id already stored in the session, or repeated earlier
-- in the batch, returns that message with `duplicate`; seqs follow the order given within
-- each session; a missing (or invisible) session returns nothing. That function stays
-- for relays of the previous release during a rolling upgrade.
CREATE FUNCTION h5_chat_store_batch(
    p_orgs uuid[], p_ids uuid[], p_sessions uuid[], p_roles text[], p_contents text[],
    p_client_ids text[], p_run_ids text[], p_statuses text[], p_gateways uuid[],
    p_event_content boolean
) RETURNS TABLE (ord integer, id uuid, seq bigint, status text, run_id text,
                 created_at timestamptz, content text, duplicate boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    v_org uuid;
BEGIN
    IF p_event_content THEN
        -- Read by the event trigger (migration 0015).
        PERFORM set_config('app.chat_event_content', 'on', true);
    END IF;
    -- Organizations, and their sessions, in one order in every batch, so concurrent
    -- batches cannot deadlock.
    FOR v_org IN SELECT DISTINCT o FROM unnest(p_orgs) AS o ORDER BY o LOOP
        PERFORM set_config('app.current_org_id', v_org::text, true);
        -- The next statement's snapshot is taken after these locks: it sees every committed
        -- seq.
        PERFORM 1 FROM h5_chat_sessions s
          WHERE s.id IN (SELECT x.sess FROM unnest(p_orgs, p_sessions) AS x(o, sess)
                          WHERE x.o = v_org)
          ORDER BY s.id FOR UPDATE;
        RETURN QUERY
        WITH input AS (
            SELECT i.ord::integer AS ord, i.id, i.sess, i.role, i.content, i.cid, i.run, i.status,
                   i.gw
              FROM unnest(p_orgs, p_ids, p_sessions, p_roles, p_contents, p_client_ids,
                          p_run_ids, p_statuses, p_gateways)
                   WITH ORDINALITY AS i(o, id, sess, role, content, cid, run, status, gw, ord)
             WHERE i.o = v_org
        ),
        -- Rows whose session exists and, when the caller named a gateway, may still be sent
        -- there by this user.
        usable AS (
            SELECT i.*, s.organization_id AS org, s.last_seq
              FROM input i
              JOIN h5_chat_sessions s ON s.id = i.sess
             WHERE i.gw IS NULL
                OR (s.status = 'active' AND s.gateway_id = i.gw
                    AND EXISTS (SELECT 1 FROM agents a
                                 WHERE a.id = s.agent_id AND a.gateway_id = i.gw)
                    AND EXISTS (SELECT 1 FROM h5_user_agent_assignments x
                                 WHERE x.h5_user_id = s.h5_user_id AND x.agent_id = s.agent_id))
        ),
        -- The first of each client id in the batch; later ones are its retries.
        firsts AS (
            SELECT DISTINCT ON (sess, cid) * FROM usable ORDER BY sess, cid, ord
        ),
        fresh AS (
            SELECT f.*, f.last_seq + row_number() OVER (PARTITION BY f.sess ORDER BY f.ord) AS seq
              FROM firsts f
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
        SELECT u.ord,
               coalesce(n.id, e.id),
               coalesce(n.seq, e.seq),
               coalesce(n.status, e.status),
               coalesce(n.run_id, e.run_id),
               coalesce(n.created_at, e.created_at),
               coalesce(n.content, e.content),
               n.id IS DISTINCT FROM u.id
          FROM usable u
          LEFT JOIN inserted n ON n.session_id = u.sess AND n.client_message_id = u.cid
          LEFT JOIN h5_chat_messages e ON n.id IS NULL
                                      AND e.session_id = u.sess AND e.client_message_id = u.cid
         WHERE coalesce(n.id, e.id) IS NOT NULL
         ORDER BY u.ord;
    END LOOP;
END;
$$;

-- Appends move a session's last_seq and last_message_at, twice per exchange. With
-- last_message_at in an index no such update could be HOT: each wrote a new entry into
-- all five of the table's indexes and left a dead row version behind (in the h5
-- benchmark: 1.5 million updates, 0.2% HOT, 60,000 dead versions of 2,000 rows). A
-- gateway's active sessions are now sorted when read (an admin page of at most 100), and
-- pages keep room for the updated versions.
DROP INDEX h5_chat_sessions_gateway;
CREATE INDEX h5_chat_sessions_gateway ON h5_chat_sessions (gateway_id) WHERE status = 'active';
ALTER TABLE h5_chat_sessions SET (fillfactor = 70);
