//! Row-level security: under organization B's setting, raw SQL sees none of A's rows and
//! cannot insert, update or delete them, on every tenant table.

use mc_domain::db::{begin_org, begin_system};
use mc_domain::ids::OrgId;
use mc_testkit::TestDb;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

const TENANT_TABLES: &[&str] = &[
    "organizations",
    "memberships",
    "boards",
    "agents",
    "api_keys",
    "h5_users",
    "h5_user_agent_assignments",
    "audit_log",
];

async fn seed_org(pool: &PgPool, slug: &str) -> OrgId {
    let org = OrgId::generate();
    let mut tx = begin_org(pool, org).await.unwrap();
    let user = Uuid::now_v7();
    let board = Uuid::now_v7();
    let agent = Uuid::now_v7();
    let h5 = Uuid::now_v7();
    let statements: Vec<(String, Vec<Uuid>)> = vec![
        (format!("INSERT INTO organizations (id, slug, name) VALUES ($1, '{slug}', '{slug}')"), vec![org.0]),
        ("INSERT INTO users (id, email) VALUES ($1, $1::text || '@x.io')".into(), vec![user]),
        ("INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, 'admin')".into(), vec![org.0, user]),
        ("INSERT INTO boards (id, organization_id, name, slug) VALUES ($1, $2, 'b', 'b')".into(), vec![board, org.0]),
        ("INSERT INTO agents (id, organization_id, name) VALUES ($1, $2, 'a')".into(), vec![agent, org.0]),
        ("INSERT INTO api_keys (id, organization_id, name, lookup_prefix, key_hash, role) VALUES ($1, $2, 'k', 'abc', $1::text, 'viewer')".into(), vec![Uuid::now_v7(), org.0]),
        ("INSERT INTO h5_users (id, organization_id, username, password_hash) VALUES ($1, $2, 'u', 'x')".into(), vec![h5, org.0]),
        ("INSERT INTO h5_user_agent_assignments (id, organization_id, h5_user_id, agent_id, board_id) VALUES ($1, $2, $3, $4, $5)".into(), vec![Uuid::now_v7(), org.0, h5, agent, board]),
        ("INSERT INTO audit_log (id, organization_id, actor_type, action) VALUES ($1, $2, 'system', 'seed')".into(), vec![Uuid::now_v7(), org.0]),
    ];
    for (sql, binds) in statements {
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in binds {
            query = query.bind(b);
        }
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    org
}

fn org_column(table: &str) -> &'static str {
    if table == "organizations" {
        "id"
    } else {
        "organization_id"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn org_b_cannot_see_or_touch_org_a() {
    let db = TestDb::migrated().await;
    let pool = db.pool();
    let a = seed_org(pool, "org-a").await;
    let b = seed_org(pool, "org-b").await;

    for table in TENANT_TABLES {
        let col = org_column(table);
        let mut tx = begin_org(pool, b).await.unwrap();
        let visible_a: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {col} = $1"
        )))
        .bind(a)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(visible_a, 0, "{table}: org B sees org A's rows");
        let visible_all: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert!(visible_all >= 1, "{table}: org B sees its own rows");
        let foreign: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {col} <> $1"
        )))
        .bind(b)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(foreign, 0, "{table}: rows of other orgs are visible");

        if *table != "audit_log" {
            let updated = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {table} SET {col} = {col} WHERE {col} = $1"
            )))
            .bind(a)
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
            assert_eq!(updated, 0, "{table}: org B updated org A's rows");
            let deleted = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE {col} = $1"
            )))
            .bind(a)
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
            assert_eq!(deleted, 0, "{table}: org B deleted org A's rows");
        }
        tx.rollback().await.unwrap();
    }

    // Inserting a row for org A under org B's setting is refused by the policy.
    let mut tx = begin_org(pool, b).await.unwrap();
    let err =
        sqlx::query("INSERT INTO boards (id, organization_id, name, slug) VALUES ($1, $2, 'intruder', 'intruder')")
            .bind(Uuid::now_v7())
            .bind(a)
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();
    // Moving one of B's rows to A is refused too.
    let mut tx = begin_org(pool, b).await.unwrap();
    let err = sqlx::query("UPDATE boards SET organization_id = $1")
        .bind(a)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // With no organization set, tenant tables are empty.
    for table in TENANT_TABLES {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} visible without an organization");
    }

    // The system role sees everything (sweepers, rule engine).
    let mut tx = begin_system(pool).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM boards")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 2);
    tx.rollback().await.unwrap();

    // And the application role really is not a superuser and cannot bypass RLS itself.
    let (superuser, bypass): (bool, bool) =
        sqlx::query_as("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(!superuser && !bypass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_with_an_organization_column_has_forced_rls() {
    let db = TestDb::migrated().await;
    let rows: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
           AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                        AND a.attname = 'organization_id' AND NOT a.attisdropped)
                OR c.relname = 'organizations')",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    // Global tables reached only through authentication paths, by design.
    let exempt = ["refresh_tokens", "h5_refresh_tokens", "user_invitations"];
    for (table, enabled, forced) in rows {
        if exempt.contains(&table.as_str()) {
            continue;
        }
        assert!(
            enabled && forced,
            "{table}: RLS enabled={enabled} forced={forced}"
        );
    }
}

/// Tables read in pages through a parent's index (no organization_id in it) read the
/// organization once per statement: inlined, `app_current_org()` is evaluated for every
/// fetched row (migrations/0014_rls_org_once_per_page.sql).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_tables_read_the_organization_once_per_statement() {
    let db = TestDb::migrated().await;
    for table in [
        "h5_chat_messages",
        "h5_chat_sessions",
        "h5_user_agent_assignments",
        "task_comments",
        "task_dependencies",
        "task_tags",
        "approval_tasks",
        "agent_suggestions",
        "gateway_connections",
        "gateway_metrics",
        "rule_firings",
    ] {
        let quals: Vec<String> = sqlx::query_scalar(
            "SELECT qual FROM pg_policies WHERE schemaname = 'public' AND tablename = $1",
        )
        .bind(table)
        .fetch_all(db.pool())
        .await
        .unwrap();
        assert_eq!(quals.len(), 1, "{table}: {quals:?}");
        assert!(
            quals[0].contains("( SELECT app_current_org()"),
            "{table}: USING ({}) evaluates app_current_org() per row",
            quals[0]
        );
    }
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN (COSTS OFF) SELECT seq FROM h5_chat_messages
         WHERE session_id = gen_random_uuid() AND seq > 0 ORDER BY seq LIMIT 50",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert!(
        plan.iter()
            .any(|line| line.contains("organization_id = (InitPlan 1)")),
        "each row compares against the InitPlan's result: {plan:?}"
    );
}
