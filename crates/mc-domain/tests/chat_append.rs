//! `h5_chat_append_many` (migrations 0015, 0016): a batch is stored set-based with
//! per-session seqs in the order given, retries (already stored, or repeated in the batch)
//! come back as duplicates of the stored message, a missing session stores nothing, each
//! stored message has exactly one outbox event, concurrent batches on the same sessions
//! neither deadlock nor hand out a seq twice, and a user message is stored only while its
//! user may send it to the gateway it names.

use mc_domain::chat::repo::{NewMessage, append_many};
use mc_domain::chat::{ChatRole, MessageStatus};
use mc_domain::db::{begin_org, begin_system};
use mc_domain::ids::{ChatSessionId, OrgId};
use mc_testkit::TestDb;
use sqlx::PgPool;
use uuid::Uuid;

/// Runs `sql` with uuid `binds` in `tx`.
async fn exec(tx: &mut sqlx::PgConnection, sql: &'static str, binds: &[Uuid]) {
    let mut query = sqlx::query(sql);
    for b in binds {
        query = query.bind(*b);
    }
    query.execute(tx).await.unwrap();
}

/// An organization with an H5 user, an agent named "Ada", a gateway and `sessions`
/// active chat sessions (one agent each, as the unique index wants).
async fn seed(pool: &PgPool, sessions: usize) -> (OrgId, Vec<ChatSessionId>) {
    let org = OrgId::generate();
    let (h5, gateway) = (Uuid::now_v7(), Uuid::now_v7());
    let mut tx = begin_org(pool, org).await.unwrap();
    exec(
        &mut tx,
        "INSERT INTO organizations (id, slug, name) VALUES ($1, $1::text, 'chat')",
        &[org.0],
    )
    .await;
    exec(&mut tx, "INSERT INTO h5_users (id, organization_id, username, password_hash) VALUES ($1, $2, 'u', 'x')", &[h5, org.0]).await;
    exec(&mut tx, "INSERT INTO gateways (id, organization_id, name, relay_token_hash) VALUES ($1, $2, 'office', $1::text)", &[gateway, org.0]).await;
    let mut ids = Vec::new();
    for _ in 0..sessions {
        let (agent, session) = (Uuid::now_v7(), ChatSessionId::generate());
        exec(
            &mut tx,
            "INSERT INTO agents (id, organization_id, name) VALUES ($1, $2, 'Ada')",
            &[agent, org.0],
        )
        .await;
        exec(
            &mut tx,
            "INSERT INTO h5_chat_sessions (id, organization_id, h5_user_id, agent_id, gateway_id, session_key)
             VALUES ($1, $2, $3, $4, $5, 'agent:a:h5')",
            &[session.as_uuid(), org.0, h5, agent, gateway],
        )
        .await;
        ids.push(session);
    }
    tx.commit().await.unwrap();
    (org, ids)
}

fn user(org: OrgId, session: ChatSessionId, client_id: &str) -> NewMessage<'_> {
    NewMessage {
        org,
        session,
        role: ChatRole::User,
        content: "hello",
        client_message_id: client_id,
        run_id: None,
        status: MessageStatus::Received,
        gateway: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_gets_seqs_in_order_and_retries_come_back_as_duplicates() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let (org, sessions) = seed(pool, 2).await;
    let (s1, s2) = (sessions[0], sessions[1]);
    let missing = ChatSessionId::generate();
    let reply = NewMessage {
        org,
        session: s2,
        role: ChatRole::Agent,
        content: "hi there",
        client_message_id: "run:r1",
        run_id: Some("r1"),
        status: MessageStatus::Completed,
        gateway: None,
    };

    let mut tx = begin_org(pool, org).await.unwrap();
    let batch = [
        user(org, s1, "a"),
        user(org, s1, "b"),
        user(org, s1, "a"),
        reply,
        user(org, missing, "x"),
    ];
    // Also works inside a caller's transaction.
    let stored = append_many(&mut *tx, &batch, false).await.unwrap();
    tx.commit().await.unwrap();
    let summary: Vec<(usize, i64, bool)> = stored.iter().map(|(i, m, d)| (*i, m.seq, *d)).collect();
    // The repeated "a" is the first "a"; the missing session stores nothing.
    assert_eq!(
        summary,
        vec![(0, 1, false), (1, 2, false), (2, 1, true), (3, 1, false)]
    );
    assert_eq!(stored[2].1.id, stored[0].1.id);
    assert_eq!(stored[3].1.role, ChatRole::Agent);
    assert_eq!(stored[3].1.run_id.as_deref(), Some("r1"));
    assert_eq!(stored[3].1.status, MessageStatus::Completed);

    // A later batch: "b" is a retry of the stored one, "c" is next.
    let stored = append_many(pool, &[user(org, s1, "b"), user(org, s1, "c")], false)
        .await
        .unwrap();
    let summary: Vec<(usize, i64, bool)> = stored.iter().map(|(i, m, d)| (*i, m.seq, *d)).collect();
    assert_eq!(summary, vec![(0, 2, true), (1, 3, false)]);

    let mut tx = begin_system(pool).await.unwrap();
    let last: Vec<(ChatSessionId, i64)> =
        sqlx::query_as("SELECT id, last_seq FROM h5_chat_sessions ORDER BY last_seq DESC")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(last, vec![(s1, 3), (s2, 1)]);
    // One event per stored message (4), none for the retries; text left out.
    let events: Vec<(String, String, i64, bool)> = sqlx::query_as(
        "SELECT event_type, actor_name, (payload->>'seq')::bigint, payload ? 'content'
           FROM event_outbox WHERE organization_id = $1 ORDER BY payload->>'session_id' = $2::text DESC, id",
    )
    .bind(org.0)
    .bind(s1.to_string())
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let expected = [
        ("chat.message_sent", "h5 user", 1),
        ("chat.message_sent", "h5 user", 2),
        ("chat.message_sent", "h5 user", 3),
        ("chat.reply_completed", "Ada", 1),
    ];
    let expected: Vec<(String, String, i64, bool)> = expected
        .iter()
        .map(|(t, a, s)| ((*t).to_owned(), (*a).to_owned(), *s, false))
        .collect();
    assert_eq!(events, expected);
}

/// One batch spans organizations: each row is stored under its own organization's
/// row-level security, so a row that names another organization than its session's is
/// not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_several_organizations_stores_each_row_under_its_own() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let (first, ours) = seed(pool, 1).await;
    let (second, theirs) = seed(pool, 1).await;
    let mut batch = [
        user(first, ours[0], "a"),
        user(second, theirs[0], "b"),
        // Claims the first organization for the second's session: invisible, not stored.
        user(first, theirs[0], "c"),
    ];
    batch.sort_by_key(|m| (m.org, m.session));
    let stored = append_many(pool, &batch, false).await.unwrap();
    let mut by_client: Vec<(&str, i64)> = stored
        .iter()
        .map(|(i, m, _)| (batch[*i].client_message_id, m.seq))
        .collect();
    by_client.sort();
    assert_eq!(by_client, vec![("a", 1), ("b", 1)]);
    let mut tx = begin_system(pool).await.unwrap();
    let rows: Vec<(OrgId, String)> = sqlx::query_as(
        "SELECT organization_id, client_message_id FROM h5_chat_messages ORDER BY 2",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![(first, "a".to_owned()), (second, "b".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_on_the_same_sessions_hand_out_each_seq_once() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let (org, sessions) = seed(pool, 3).await;
    let writers = 6;
    let batches = 15;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (pool, sessions) = (pool.clone(), sessions.clone());
        tasks.push(tokio::spawn(async move {
            for b in 0..batches {
                // Every batch touches every session, in the callers' order (sorted).
                let ids: Vec<String> = (0..sessions.len())
                    .map(|s| format!("w{w}-b{b}-s{s}"))
                    .collect();
                let mut sorted = sessions.clone();
                sorted.sort();
                let batch: Vec<NewMessage<'_>> = sorted
                    .iter()
                    .zip(&ids)
                    .map(|(s, id)| user(org, *s, id))
                    .collect();
                let stored = append_many(&pool, &batch, false).await.unwrap();
                assert!(stored.iter().all(|(_, _, duplicate)| !duplicate));
                assert_eq!(stored.len(), batch.len());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut tx = begin_system(pool).await.unwrap();
    let per_session: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT count(*), count(DISTINCT seq), min(seq), max(seq)
           FROM h5_chat_messages WHERE organization_id = $1 GROUP BY session_id",
    )
    .bind(org.0)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let n = i64::from(writers * batches);
    assert_eq!(per_session, vec![(n, n, 1, n); 3]);
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE organization_id = $1")
            .bind(org.0)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(events, 3 * n);
}

/// A user message naming the gateway it goes to (migration 0016) is stored only while the
/// session is active on that gateway, its agent is on it and the user is assigned to the
/// agent; a refused one (a retry of a stored message too) returns nothing. Replies name
/// no gateway and are not checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_message_is_stored_only_while_its_user_may_send_it_to_that_gateway() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let (org, sessions) = seed(pool, 1).await;
    let session = sessions[0];
    let mut tx = begin_org(pool, org).await.unwrap();
    let (gateway, agent, h5): (Uuid, Uuid, Uuid) = sqlx::query_as(
        "SELECT gateway_id, agent_id, h5_user_id FROM h5_chat_sessions WHERE id = $1",
    )
    .bind(session)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let board = Uuid::now_v7();
    exec(
        &mut tx,
        "UPDATE agents SET gateway_id = $1 WHERE id = $2",
        &[gateway, agent],
    )
    .await;
    exec(
        &mut tx,
        "INSERT INTO boards (id, organization_id, name, slug) VALUES ($1, $2, 'chat', 'chat')",
        &[board, org.0],
    )
    .await;
    exec(&mut tx, "INSERT INTO h5_user_agent_assignments (id, organization_id, h5_user_id, agent_id, board_id) VALUES ($1, $2, $3, $4, $5)", &[Uuid::now_v7(), org.0, h5, agent, board]).await;
    let other = Uuid::now_v7();
    exec(&mut tx, "INSERT INTO gateways (id, organization_id, name, relay_token_hash) VALUES ($1, $2, 'branch', $1::text)", &[other, org.0]).await;
    tx.commit().await.unwrap();

    // (client id, gateway named) → seq stored, or None when refused.
    let append = |client_id: &'static str, named: Uuid| async move {
        let message = NewMessage {
            gateway: Some(named.into()),
            ..user(org, session, client_id)
        };
        let stored = append_many(pool, &[message], false).await.unwrap();
        stored.first().map(|(_, m, duplicate)| (m.seq, *duplicate))
    };
    let change = |sql: &'static str, binds: Vec<Uuid>| async move {
        let mut tx = begin_org(pool, org).await.unwrap();
        exec(&mut tx, sql, &binds).await;
        tx.commit().await.unwrap();
    };

    assert_eq!(append("a", gateway).await, Some((1, false)));
    assert_eq!(append("a", gateway).await, Some((1, true)), "a retry");
    assert_eq!(
        append("b", other).await,
        None,
        "the session is not on that gateway"
    );

    // The agent moved to another gateway: the session's gateway is no longer its.
    change(
        "UPDATE agents SET gateway_id = $1 WHERE id = $2",
        vec![other, agent],
    )
    .await;
    assert_eq!(append("b", gateway).await, None, "the agent moved");
    change(
        "UPDATE agents SET gateway_id = $1 WHERE id = $2",
        vec![gateway, agent],
    )
    .await;
    assert_eq!(append("b", gateway).await, Some((2, false)));

    change(
        "DELETE FROM h5_user_agent_assignments WHERE h5_user_id = $1",
        vec![h5],
    )
    .await;
    assert_eq!(append("c", gateway).await, None, "unassigned");
    assert_eq!(append("a", gateway).await, None, "unassigned, even a retry");
    change("INSERT INTO h5_user_agent_assignments (id, organization_id, h5_user_id, agent_id, board_id) VALUES ($1, $2, $3, $4, $5)", vec![Uuid::now_v7(), org.0, h5, agent, board]).await;

    change(
        "UPDATE h5_chat_sessions SET status = 'closed' WHERE id = $1",
        vec![session.as_uuid()],
    )
    .await;
    assert_eq!(append("c", gateway).await, None, "closed");
    // A reply (no gateway named) still lands in the closed session.
    let reply = NewMessage {
        role: ChatRole::Agent,
        client_message_id: "run:late",
        status: MessageStatus::Completed,
        ..user(org, session, "")
    };
    let stored = append_many(pool, &[reply], false).await.unwrap();
    assert_eq!(
        stored.iter().map(|(_, m, _)| m.seq).collect::<Vec<_>>(),
        vec![3]
    );
}

/// Appends move the session's `last_seq` and `last_message_at` on every message; those
/// updates must stay HOT (no indexed column changes), or each one writes a new entry in
/// every index of the table (migration 0016).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_session_along_touches_none_of_its_indexes() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let (org, sessions) = seed(pool, 1).await;
    let mut tx = begin_org(pool, org).await.unwrap();
    for n in 0..20 {
        let id = format!("m{n}");
        append_many(&mut *tx, &[user(org, sessions[0], &id)], false)
            .await
            .unwrap();
    }
    // This transaction's own counts, before they are reported.
    let (updated, hot): (i64, i64) = sqlx::query_as(
        "SELECT pg_stat_get_xact_tuples_updated('h5_chat_sessions'::regclass),
                pg_stat_get_xact_tuples_hot_updated('h5_chat_sessions'::regclass)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(updated, 20);
    assert_eq!(hot, updated, "every session update is HOT");
}

/// The append's plan is generic and kept per connection, so it is often made while the
/// tables are still empty; it must go through the indexes anyway, not scan every message
/// on each call once there are many (migration 0016).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_made_on_empty_tables_still_finds_messages_through_indexes() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let (org, sessions) = seed(pool, 1).await;
    let mut conn = pool.acquire().await.unwrap();
    // The first call on this connection plans against empty tables.
    append_many(&mut *conn, &[user(org, sessions[0], "first")], false)
        .await
        .unwrap();
    let ids: Vec<String> = (0..2000).map(|n| format!("bulk-{n}")).collect();
    for chunk in ids.chunks(250) {
        let batch: Vec<NewMessage<'_>> =
            chunk.iter().map(|id| user(org, sessions[0], id)).collect();
        append_many(&mut *conn, &batch, false).await.unwrap();
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    let stored = append_many(&mut *tx, &[user(org, sessions[0], "last")], false)
        .await
        .unwrap();
    assert_eq!(stored[0].1.seq, 2002);
    let scans: i64 =
        sqlx::query_scalar("SELECT pg_stat_get_xact_numscans('h5_chat_messages'::regclass)")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(scans, 0, "no sequential scan of the messages");
}
