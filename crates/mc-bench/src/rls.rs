//! Row-level security overhead on indexed queries (seed 001 Phase 1: < 5%).
//!
//! The same 100,000 rows (100 organizations) live in `boards` (RLS forced, as in
//! production) and in three copies: unprotected, with the policy inlined (the production
//! form) and with the organization read once per statement (migration 0014's form for
//! tables paged through a parent's index). All are read under the same organization
//! setting, so the only difference is the policy. Two views: (1) server-side executor cost
//! inside one PL/pgSQL loop, for primary-key lookups and 50-row pages; (2) client-observed
//! latency of a lookup and a page on `boards`, and of a page through a parent's index on
//! the children's copy, as prepared statements over the wire.

use mc_domain::db::begin_org;
use mc_domain::ids::OrgId;
use sqlx::postgres::PgPoolOptions;
use std::time::Instant;
use uuid::Uuid;

const ORGS: usize = 100;
const PER_ORG: usize = 1000;

/// A page of a list endpoint inside the executor loop (`org` is a PL/pgSQL variable).
const LIST_IN_LOOP: &str = "SELECT count(name) INTO n FROM (SELECT name FROM {table} \
     WHERE organization_id = org ORDER BY created_at DESC, id DESC LIMIT 50) page";

/// The same page as one prepared statement over the wire.
const LIST_OVER_WIRE: &str = "SELECT name FROM {table} WHERE organization_id = $1 ORDER BY created_at DESC, id DESC LIMIT 50";

/// The same page through a parent's index as one prepared statement over the wire.
const PAGE_OVER_WIRE: &str =
    "SELECT body FROM {table} WHERE parent_id = $1 AND seq > 0 ORDER BY seq LIMIT 50";

/// A page through a parent's index, shaped like a session's chat messages (the index
/// `(session_id, seq)` does not name the organization, like a task's comments).
const PAGE_IN_LOOP: &str = "SELECT count(body) INTO n FROM (SELECT body FROM {pages} \
     WHERE parent_id = groups[1 + i % array_length(groups, 1)] AND seq > 0 ORDER BY seq LIMIT 50) page";

/// The tables: the production `boards` and three copies of its rows.
const PLAIN: &str = "bench_boards_no_rls";
const INLINED: &str = "bench_boards_inlined";
const ONCE: &str = "bench_boards_once";

pub async fn run(url: &str) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
    let mut setup = vec![
        format!("DROP TABLE IF EXISTS {PLAIN}, {INLINED}, {ONCE}"),
        format!("DROP TABLE IF EXISTS {PLAIN}_pages, {INLINED}_pages, {ONCE}_pages"),
    ];
    for table in [PLAIN, INLINED, ONCE] {
        setup.push(format!("CREATE TABLE {table} (LIKE boards INCLUDING ALL)"));
        // Children of a parent, 50 per parent, indexed like h5_chat_messages.
        setup.push(format!(
            "CREATE TABLE {table}_pages (id uuid PRIMARY KEY, organization_id uuid NOT NULL,
               parent_id uuid NOT NULL, seq integer NOT NULL, body text NOT NULL,
               UNIQUE (parent_id, seq))"
        ));
    }
    // The two policy forms. Inlined: what `boards` and most tables have. Once per
    // statement (InitPlan): what migration 0014 gives the tables paged through a parent.
    for (table, form) in [
        (INLINED, "app_current_org()"),
        (ONCE, "(SELECT app_current_org())"),
    ] {
        for name in [table.to_owned(), format!("{table}_pages")] {
            setup.push(format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY"));
            setup.push(format!("ALTER TABLE {name} FORCE ROW LEVEL SECURITY"));
            setup.push(format!(
                "CREATE POLICY tenant ON {name} USING (organization_id = {form})"
            ));
        }
    }
    for statement in setup {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await?;
    }

    let mut orgs = Vec::new();
    let mut samples = Vec::new();
    for o in 0..ORGS {
        let org = OrgId::generate();
        orgs.push(org);
        let mut tx = begin_org(&pool, org).await?;
        sqlx::query("INSERT INTO organizations (id, slug, name) VALUES ($1, $2, $2)")
            .bind(org)
            .bind(format!(
                "bench-rls-{o}-{}",
                &Uuid::new_v4().simple().to_string()[..8]
            ))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO boards (id, organization_id, name, slug)
             SELECT gen_random_uuid(), $1, 'board ' || g, 'board-' || g
             FROM generate_series(1, $2) g",
        )
        .bind(org)
        .bind(PER_ORG as i32)
        .execute(&mut *tx)
        .await?;
        for copy in [PLAIN, INLINED, ONCE] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {copy} SELECT * FROM boards"
            )))
            .execute(&mut *tx)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {copy}_pages (id, organization_id, parent_id, seq, body)
                 SELECT gen_random_uuid(), $1,
                        md5($1::text || (g / 50)::text)::uuid, g % 50 + 1, 'message ' || g
                 FROM generate_series(0, $2 - 1) g"
            )))
            .bind(org)
            .bind(PER_ORG as i32)
            .execute(&mut *tx)
            .await?;
        }
        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM boards ORDER BY random() LIMIT 20")
            .fetch_all(&mut *tx)
            .await?;
        let groups: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT parent_id FROM {PLAIN}_pages WHERE organization_id = $1 LIMIT 20"
        )))
        .bind(org)
        .fetch_all(&mut *tx)
        .await?;
        samples.push((org, ids, groups));
        tx.commit().await?;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ANALYZE boards, {PLAIN}, {INLINED}, {ONCE}, {PLAIN}_pages, {INLINED}_pages, {ONCE}_pages"
    )))
    .execute(&pool)
    .await?;

    // (1) Server-side: the executor cost of the policy, free of network noise, one
    // statement repeated in a PL/pgSQL loop. A primary-key lookup reading the row (what
    // the API does for one item); a primary-key count, which the plain table answers from
    // the index alone while the policy needs organization_id from the heap; a page of 50
    // from an index that leads with organization_id (the list endpoints), where the
    // policy becomes an index condition; and a page of 50 through a parent's index, where
    // the policy filters each fetched row.
    let (org, ids, groups) = &samples[0];
    let uuid_array = |values: &[Uuid]| {
        values
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (id_array, group_array) = (uuid_array(ids), uuid_array(groups));
    let kinds = [
        (
            "executor only: 200,000 primary-key lookups reading the row, in one PL/pgSQL loop (best of 3)",
            200_000,
            "SELECT name INTO v FROM {table} WHERE id = ids[1 + i % array_length(ids, 1)]",
        ),
        (
            "executor only: 200,000 primary-key counts (index-only scan without RLS, index scan + heap fetch with it; best of 3)",
            200_000,
            "SELECT count(*) INTO n FROM {table} WHERE id = ids[1 + i % array_length(ids, 1)]",
        ),
        (
            "executor only: 20,000 pages of 50 rows from an index led by organization_id (a list endpoint; best of 3)",
            20_000,
            LIST_IN_LOOP,
        ),
        (
            "executor only: 20,000 pages of 50 rows through a parent's index (a session's chat messages, a task's comments; best of 3)",
            20_000,
            PAGE_IN_LOOP,
        ),
    ];
    let mut server: Vec<(usize, &str, f64)> = Vec::new();
    for round in 0..3 {
        for (kind, (_, loops, statement)) in kinds.iter().enumerate() {
            let mut tables = [PLAIN, INLINED, ONCE];
            tables.rotate_left(round % 3);
            for table in tables {
                let mut tx = begin_org(&pool, *org).await?;
                let statement = statement
                    .replace("{table}", table)
                    .replace("{pages}", &format!("{table}_pages"));
                let sql = format!(
                    "DO $$ DECLARE ids uuid[] := ARRAY[{id_array}]::uuid[];
                       groups uuid[] := ARRAY[{group_array}]::uuid[];
                       org uuid := '{org}'; n int; v text; BEGIN
                       FOR i IN 1..{loops} LOOP {statement}; END LOOP; END $$"
                );
                let started = Instant::now();
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await?;
                server.push((
                    kind,
                    table,
                    started.elapsed().as_secs_f64() * 1e6 / f64::from(*loops),
                ));
                tx.rollback().await?;
            }
        }
    }
    let best = |k: usize, t: &str| {
        server
            .iter()
            .filter(|(kind, table, _)| *kind == k && *table == t)
            .map(|(_, _, v)| *v)
            .fold(f64::INFINITY, f64::min)
    };

    // (2) Client-observed: single prepared statements over the wire, on the production
    // table against the plain copy. Rounds alternate between the tables; the median round
    // of each is reported, so a burst of noise on this shared machine does not decide it.
    let boards = ["boards", PLAIN];
    let lookup = client_rounds(
        &pool,
        &samples,
        (20, 1000),
        "SELECT name FROM {table} WHERE id = $1",
        Bind::PrimaryKey,
        boards,
    )
    .await?;
    let list = client_rounds(
        &pool,
        &samples,
        (20, 500),
        LIST_OVER_WIRE,
        Bind::Org,
        boards,
    )
    .await?;
    // The children's production form is the once-per-statement policy (migration 0014).
    let (once_pages, plain_pages) = (format!("{ONCE}_pages"), format!("{PLAIN}_pages"));
    let children = client_rounds(
        &pool,
        &samples,
        (20, 500),
        PAGE_OVER_WIRE,
        Bind::Parent,
        [&once_pages, &plain_pages],
    )
    .await?;

    // Clean up what the benchmark created.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE {PLAIN}, {INLINED}, {ONCE}, {PLAIN}_pages, {INLINED}_pages, {ONCE}_pages"
    )))
    .execute(&pool)
    .await?;
    for org in &orgs {
        let mut tx = begin_org(&pool, *org).await?;
        sqlx::query("DELETE FROM boards").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM organizations")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }

    let overhead = |rls: f64, plain: f64| (rls / plain - 1.0) * 100.0;
    println!(
        "| Measurement | without RLS (µs per statement) | policy inlined (µs) | overhead | \
         policy once per statement (µs) | overhead |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (kind, (label, _, _)) in kinds.iter().enumerate() {
        let (plain, inlined, once) = (best(kind, PLAIN), best(kind, INLINED), best(kind, ONCE));
        println!(
            "| {label} | {plain:.2} | {inlined:.2} | {:+.1}% | {once:.2} | {:+.1}% |",
            overhead(inlined, plain),
            overhead(once, plain)
        );
    }
    for (label, (rls, plain)) in [
        (
            "client round trip (`boards`, inlined policy): prepared primary-key lookup, median of 20,000, alternating with the copy statement by statement",
            lookup,
        ),
        (
            "client round trip (`boards`, inlined policy): prepared page of 50 from the organization's index, median of 10,000, alternating likewise",
            list,
        ),
    ] {
        println!(
            "| {label} | {plain:.1} | {rls:.1} | {:+.1}% | n/a | n/a |",
            overhead(rls, plain)
        );
    }
    let (rls, plain) = children;
    println!(
        "| client round trip (children, once-per-statement policy as in migration 0014): prepared page of 50 through the parent's index, median of 10,000, alternating likewise | {plain:.1} | n/a | n/a | {rls:.1} | {:+.1}% |",
        overhead(rls, plain)
    );
    println!();
    println!(
        "Data: {ORGS} organizations × {PER_ORG} boards in `boards` and in each copy (same \
         indexes), and {PER_ORG} children per organization in 50-row pages (a table \
         shaped like h5_chat_messages: primary key, unique (parent_id, seq), no index on \
         organization_id), with each policy form; all read under the same `app.current_org_id`. Inlined, \
         `organization_id = app_current_org()` is evaluated wherever the row is checked: \
         once as an index condition when the index leads with organization_id, but on every \
         fetched row when it does not (the setting and a text → uuid parse each time). Once \
         per statement, `organization_id = (SELECT app_current_org())` is an InitPlan whose \
         set-up every statement pays. Migration 0014 gives that form to the tables read in \
         pages through a parent's index; the rest keep the inlined one."
    );
    println!();
    let lookup_executor = overhead(best(0, INLINED), best(0, PLAIN));
    let wire_met = [lookup, list, children]
        .iter()
        .all(|(rls, plain)| overhead(*rls, *plain) < 5.0);
    println!(
        "Goal (< 5% latency overhead on indexed queries; seed 001 Phase 1 measures the \
         latency of the same queries with and without RLS): over the wire on this machine, \
         {} for all three shapes (a lookup pays {:.1} µs on a {:.0} µs round trip, an \
         organization's page {:.1} µs on {:.0} µs, a parent's page {:.1} µs on {:.0} µs). \
         Inside the executor alone, without the round trip, a primary-key lookup pays \
         {lookup_executor:+.1}% ({:.2} µs): the fixed cost of checking one row.",
        if wire_met { "met" } else { "not met" },
        lookup.0 - lookup.1,
        lookup.1,
        list.0 - list.1,
        list.1,
        children.0 - children.1,
        children.1,
        best(0, INLINED) - best(0, PLAIN),
    );
    Ok(())
}

/// What a client statement's `$1` is.
#[derive(Clone, Copy)]
enum Bind {
    /// One of the round's organization's sample primary keys, in turn.
    PrimaryKey,
    /// The round's organization.
    Org,
    /// One of the round's organization's sample parents, in turn.
    Parent,
}

/// Median µs of one execution of `sql` on the protected table (`tables[0]`) and on the
/// unprotected copy (`tables[1]`). The two alternate statement by statement (the order
/// flipping each time) inside `rounds.0` transactions of `rounds.1` pairs, so the noise of
/// this shared machine falls on both alike.
async fn client_rounds(
    pool: &sqlx::PgPool,
    samples: &[(OrgId, Vec<Uuid>, Vec<Uuid>)],
    (rounds, per_round): (usize, usize),
    sql: &str,
    bind: Bind,
    tables: [&str; 2],
) -> anyhow::Result<(f64, f64)> {
    let statements = tables.map(|table| sql.replace("{table}", table));
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let (org, ids, parents) = &samples[round % samples.len()];
        let mut tx = begin_org(pool, *org).await?;
        for i in 0..per_round {
            let param = match bind {
                Bind::PrimaryKey => ids[i % ids.len()],
                Bind::Org => org.0,
                Bind::Parent => parents[i % parents.len()],
            };
            let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
            for slot in order {
                let started = Instant::now();
                let names: Vec<String> =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(statements[slot].clone()))
                        .bind(param)
                        .fetch_all(&mut *tx)
                        .await?;
                times[slot].push(started.elapsed().as_secs_f64() * 1e6);
                anyhow::ensure!(!names.is_empty(), "no rows for {param}");
                std::hint::black_box(names);
            }
        }
        tx.rollback().await?;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(&mut times[0]), median(&mut times[1])))
}
