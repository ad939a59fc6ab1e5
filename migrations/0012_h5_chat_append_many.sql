-- Appends many chat messages in one call: the relays gather the appends that arrive
-- together into one transaction and one commit (fsync) instead of one each. Rows are
-- appended in the order given; callers sort them by session, so concurrent batches lock
-- sessions in the same order and cannot deadlock. `ord` is the row's 1-based position in
-- the arrays; a row whose session is missing (or not visible) returns nothing.
CREATE FUNCTION h5_chat_append_many(
    p_ids uuid[], p_sessions uuid[], p_roles text[], p_contents text[], p_client_ids text[],
    p_run_ids text[], p_statuses text[]
) RETURNS TABLE (ord integer, id uuid, seq bigint, status text, run_id text,
                 created_at timestamptz, content text, duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    r record;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        FOR r IN SELECT * FROM h5_chat_append(p_ids[i], p_sessions[i], p_roles[i],
                                              p_contents[i], p_client_ids[i], p_run_ids[i],
                                              p_statuses[i]) LOOP
            ord := i;
            id := r.id;
            seq := r.seq;
            status := r.status;
            run_id := r.run_id;
            created_at := r.created_at;
            content := r.content;
            duplicate := r.duplicate;
            RETURN NEXT;
        END LOOP;
    END LOOP;
END;
$$;
