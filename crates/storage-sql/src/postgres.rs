//! PostgreSQL: a connection pool; rows that decide money are locked with `FOR UPDATE`, and jobs
//! are claimed with `FOR UPDATE SKIP LOCKED`, so several gokart processes can share a database.

use std::{
    str::FromStr,
    sync::{Arc, Weak},
    time::Duration,
};

use async_trait::async_trait;
use gokart_storage::{Backend, Result, Store, Tx};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::map_error;

type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;

pub struct PostgresStore {
    pool: sqlx::PgPool,
    options: PgConnectOptions,
    /// Held by the store and its writers' copy; the statistics keeper (`keep_statistics`),
    /// started by `migrate`, stops once no copy holds it.
    alive: Arc<()>,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(map_error)?;
        Self::connect_with(options, 16).await
    }

    /// For tests: a pool whose connections use `schema` (created if missing).
    pub async fn connect_to_schema(url: &str, schema: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(map_error)?;
        let setup = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(map_error)?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&setup)
            .await
            .map_err(map_error)?;
        setup.close().await;
        Self::connect_with(options.options([("search_path", schema)]), 8).await
    }

    async fn connect_with(options: PgConnectOptions, max: u32) -> Result<Self> {
        let pool = pool_options(max).connect_with(options.clone()).await.map_err(map_error)?;
        Ok(PostgresStore { pool, options, alive: Arc::new(()) })
    }
}

/// No ping before each use: it is a network round trip per transaction on the hot paths. A
/// connection that died fails its transaction (answered 503, nothing stored), and the pool
/// replaces it.
fn pool_options(max: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(30))
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<()> {
        crate::MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| gokart_storage::StorageError::Unavailable(e.to_string()))?;
        tokio::spawn(keep_statistics(self.pool.clone(), Arc::downgrade(&self.alive)));
        Ok(())
    }

    async fn read(&self) -> Result<Box<dyn Tx>> {
        let tx = self.pool.begin().await.map_err(map_error)?;
        Ok(Box::new(SqlTx::new(tx)))
    }

    async fn write(&self) -> Result<Box<dyn Tx>> {
        let tx = self.pool.begin().await.map_err(map_error)?;
        Ok(Box::new(SqlTx::new(tx)))
    }

    /// One statement outside any transaction: a single statement is atomic and committed when
    /// it returns, so a batch of clicks costs one round trip instead of begin, insert and commit.
    async fn insert_clicks(&self, clicks: &[&gokart_storage::ClickRecord]) -> Result<()> {
        if clicks.is_empty() {
            return Ok(());
        }
        let mut insert = sqlx::QueryBuilder::<Db>::new(CLICK_INSERT);
        push_unnest(&mut insert, clicks.iter().map(|click| click_values(click)));
        insert.build().execute(&self.pool).await.map_err(map_error)?;
        Ok(())
    }

    /// A pool of this runtime's: its connections are opened on first use, by this runtime's
    /// tasks, and their sockets registered with this runtime's IO driver.
    fn on_this_runtime(self: Arc<Self>, connections: u32) -> Arc<dyn Store> {
        let pool = pool_options(connections).connect_lazy_with(self.options.clone());
        Arc::new(PostgresStore { pool, options: self.options.clone(), alive: self.alive.clone() })
    }
}

/// The table whose growth changes the best plan of a hot-path statement: a member's counted
/// events have two indexes to come by. (The hot paths find clicks, conversions and log entries
/// by unique keys, whatever the statistics; an ANALYZE of a table of clicks costs a busy
/// machine its clicks' 99th percentile.)
const KEPT_ANALYZED: &str = "conversion_events";
/// How often the statistics keeper looks at that table's growth.
const STATISTICS_EVERY: Duration = Duration::from_secs(1);

/// Keeps [`KEPT_ANALYZED`]'s planner statistics current, as autovacuum would, until the store
/// is gone. A prepared statement keeps the plan made at its sixth execution until the
/// statistics of a table it reads change; without statistics (a new database for its first
/// minute, or autovacuum off, as on the machines here) that plan is made for tables of a few
/// hundred rows and kept as they grow. The read under the offer lock then found a member's
/// counted events through the (offer, counted, completed_at) index instead of the (offer,
/// member) one, which tie on such a table: every lookup read all the offer's counted events,
/// and the load test's postbacks fell from about 12,000 to a few hundred per second
/// (docs/decisions/performance.md). An ANALYZE takes no lock that holds up reads or writes,
/// and makes the statements that read the table plan again.
async fn keep_statistics(pool: sqlx::PgPool, alive: Weak<()>) {
    let mut ticks = tokio::time::interval(STATISTICS_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if alive.strong_count() == 0 {
            return;
        }
        if let Err(error) = analyze_if_grown(&pool).await {
            tracing::debug!(%error, "keeping {KEPT_ANALYZED}'s statistics failed; trying again");
        }
    }
}

/// ANALYZEs [`KEPT_ANALYZED`] if it has changed by more than autovacuum's default threshold
/// (50 rows and a tenth of the table) since its last ANALYZE, by autovacuum or by this.
async fn analyze_if_grown(pool: &sqlx::PgPool) -> std::result::Result<(), sqlx::Error> {
    let grown: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_user_tables
                        WHERE schemaname = current_schema() AND relname = $1
                          AND n_mod_since_analyze > 50 + 0.1 * GREATEST(n_live_tup, 0))",
    )
    .bind(KEPT_ANALYZED)
    .fetch_one(pool)
    .await?;
    if grown {
        sqlx::query(&format!("ANALYZE {KEPT_ANALYZED}")).execute(pool).await?;
    }
    Ok(())
}

const FOR_UPDATE: &str = " FOR UPDATE";
/// Job claims: concurrent workers skip each other's rows instead of waiting on them.
const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";

/// The read-ahead's conversions, events and counted events of a batch's clicks
/// (`read_after_clicks`), in one statement: each is a round trip on PostgreSQL, and these three come
/// after the offers are locked, where every other batch of the same offers waits for them. The
/// parts share the events' columns, named by the first part (a conversion's and a counted
/// event's are subsets, the rest NULL: a counted event is read for its offer, member and click
/// alone), and come conversions first ('conversion' < 'counted' < 'event'), each conversion
/// before its events.
/// The clicks and the (offer, member) pairs come as arrays the first read filled, so no click is
/// looked up again; each element's rows are found through their index (`LATERAL … OFFSET 0`: a
/// nested loop the planner cannot turn into a scan). With `click_id = ANY($1)` PostgreSQL
/// scanned the whole table of a database not yet analyzed (for its first minute, and for the
/// load test's whole run): without statistics it takes each id to match 0.5 % of the rows.
const AFTER_LOCK_READS: &[(&[&str], &[BatchArray])] = &[(
    &[
        "SELECT 'conversion' AS part, c.id, c.tenant_id, NULL::text AS conversion_id, c.offer_id,
                c.click_id, c.partner_id, c.pub_member_id, NULL::text AS event_id,
                NULL::text AS event_name, NULL::bigint AS sequence_number,
                NULL::text AS dedup_key, c.status, c.rejection_reason, NULL::boolean AS counted,
                NULL::bigint AS revenue, NULL::bigint AS reward, NULL::bigint AS amount,
                NULL::text AS currency, NULL::text AS transaction_id, NULL::text AS params,
                NULL::bigint AS completed_at, NULL::bigint AS pending_until, c.created_at,
                c.updated_at
         FROM unnest(",
        "::text[]) AS k(id) CROSS JOIN LATERAL
           (SELECT * FROM conversions WHERE click_id = k.id OFFSET 0) AS c
         UNION ALL
         SELECT 'event', e.id, e.tenant_id, e.conversion_id, e.offer_id, e.click_id,
                e.partner_id, e.pub_member_id, e.event_id, e.event_name, e.sequence_number,
                e.dedup_key, e.status, e.rejection_reason, e.counted, e.revenue, e.reward,
                e.amount, e.currency, e.transaction_id, e.params, e.completed_at,
                e.pending_until, e.created_at, e.updated_at
         FROM unnest(",
        "::text[]) AS k(id) CROSS JOIN LATERAL
           (SELECT * FROM conversion_events WHERE click_id = k.id OFFSET 0) AS e
         UNION ALL
         SELECT 'counted', NULL, e.tenant_id, NULL, e.offer_id, e.click_id, NULL,
                e.pub_member_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                NULL, NULL, NULL, NULL, NULL, NULL, NULL
         FROM unnest(",
        "::text[], ",
        "::text[]) AS m(offer_id, pub_member_id) CROSS JOIN LATERAL
           (SELECT * FROM conversion_events
            WHERE offer_id = m.offer_id AND pub_member_id = m.pub_member_id AND counted = TRUE
            OFFSET 0) AS e
         ORDER BY part, created_at, id",
    ],
    &[BatchArray::Clicks, BatchArray::Clicks, BatchArray::PairOffers, BatchArray::PairMembers],
)];

/// The extended protocol takes one statement per request: reads go one by one, writes as one
/// statement of data-modifying `WITH` parts.
const READS: Batching = Batching::EachAlone;
const WRITES: Batching = Batching::OneStatement;

/// A transaction is sqlx's: statements run on its connection.
type DbTx = sqlx::Transaction<'static, Db>;

/// Writes a transaction's buffered rows (`settle`), then commits it.
async fn commit(mut tx: DbTx, settle: Statements) -> Result<()> {
    settle.execute(&mut tx).await?;
    tx.commit().await.map_err(map_error)
}

/// PostgreSQL's statements are never `Batching::Prepared`.
async fn run_prepared(tx: &mut DbTx, statements: Vec<crate::Prepared>) -> Result<()> {
    query_prepared::<()>(tx, statements).await.map(drop)
}

async fn query_prepared<T>(_tx: &mut DbTx, statements: Vec<crate::Prepared>) -> Result<Vec<T>> {
    match statements.is_empty() {
        true => Ok(Vec::new()),
        false => Err(StorageError::Unavailable("prepared statements are SQLite's".into())),
    }
}

/// ` = ANY($1)` of `values`, one array: the statement's text is the same for any number of
/// values, so it stays prepared (a new text costs a round trip to prepare, and a parse).
fn push_in_list(query: &mut sqlx::QueryBuilder<'static, Db>, values: &[String]) {
    query.push(" = ANY(").push_bind(values.to_vec()).push(")");
}

/// `Value::Array` on PostgreSQL: one `text[]`, which the statement casts and unnests.
fn push_array(query: &mut sqlx::QueryBuilder<'static, Db>, values: Vec<String>) {
    query.push_bind(values);
}

/// `Statements::insert` on PostgreSQL: the next statement, `insert` then `push_unnest` of `rows`.
fn push_rows(
    statements: &mut Statements,
    insert: &str,
    rows: impl IntoIterator<Item = Vec<crate::Value>>,
) {
    push_unnest(statements.next(insert), rows);
}

/// ` SELECT * FROM UNNEST($1::text[], …)` of `rows`, one array per column: the statement's text
/// is the same for any number of rows, so it stays prepared, and binds no more values than
/// there are columns.
fn push_unnest(
    insert: &mut sqlx::QueryBuilder<'static, Db>,
    rows: impl IntoIterator<Item = Vec<crate::Value>>,
) {
    use crate::Value;
    enum Column {
        Text(Vec<Option<String>>),
        Int(Vec<Option<i64>>),
        Bool(Vec<bool>),
    }
    let mut columns: Vec<Column> = Vec::new();
    for row in rows {
        if columns.is_empty() {
            columns = row
                .iter()
                .map(|value| match value {
                    Value::Text(_) => Column::Text(Vec::new()),
                    Value::Int(_) => Column::Int(Vec::new()),
                    Value::Bool(_) => Column::Bool(Vec::new()),
                    Value::List(_) | Value::Array(_) => {
                        unreachable!("a list is never a row's value")
                    }
                })
                .collect();
        }
        for (column, value) in columns.iter_mut().zip(row) {
            match (column, value) {
                (Column::Text(texts), Value::Text(text)) => texts.push(text),
                (Column::Int(numbers), Value::Int(number)) => numbers.push(number),
                (Column::Bool(flags), Value::Bool(flag)) => flags.push(flag),
                // Each place in a writer's row is one Rust expression, so one type.
                _ => unreachable!("a column's values are of one type in every row"),
            }
        }
    }
    insert.push("SELECT * FROM UNNEST(");
    let mut list = insert.separated(", ");
    for column in columns {
        match column {
            Column::Text(texts) => list.push_bind(texts).push_unseparated("::text[]"),
            Column::Int(numbers) => list.push_bind(numbers).push_unseparated("::int8[]"),
            Column::Bool(flags) => list.push_bind(flags).push_unseparated("::bool[]"),
        };
    }
    insert.push(")");
}

include!("common/mod.rs");

#[cfg(test)]
mod tests {
    use super::*;

    /// Once the statistics keeper has analyzed the events table, the read under the offer lock
    /// finds a member's counted events through the member index, also in the plan PostgreSQL
    /// keeps for a prepared statement (a generic plan, made here before the ANALYZE and made
    /// again after it).
    #[tokio::test]
    async fn grown_tables_are_analyzed_and_counted_events_found_by_the_member_index() {
        let url = std::env::var("GOKART_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("gk_{}", uuid::Uuid::new_v4().simple());
        let store = PostgresStore::connect_to_schema(&url, &schema)
            .await
            .expect("PostgreSQL at 127.0.0.1:5432 (see README)");
        store.migrate().await.unwrap();
        let mut connection = store.pool.acquire().await.unwrap();
        // One offer's counted events, each of another member: the load test's shape.
        let offer = "0193a5c2-7f3a-7c9e-9a1b-4f3a9c7e2d10";
        let events = format!(
            "INSERT INTO conversion_events
             SELECT gen_random_uuid()::text, 't', gen_random_uuid()::text, '{offer}',
                    gen_random_uuid()::text, NULL, 'member-7f3a9c-' || n, 'install', 'install',
                    1, '', 'Success', NULL, TRUE, 100, 50, NULL, NULL, gen_random_uuid()::text,
                    '{{}}', 1765000000000000 + n, NULL, 1765000000000000 + n, 1765000000000000 + n
             FROM generate_series(1, 3000) AS n"
        );
        // The read as the read-ahead builds it.
        let (parts, arrays) = AFTER_LOCK_READS[0];
        let mut statements = Statements::reads();
        statements.statement(parts, arrays.iter().map(|_| Value::Array(Vec::new())).collect());
        let Some(Request::Built(request)) = statements.finished().pop() else {
            panic!("the read is one statement built for sqlx");
        };
        let read = request.sql().to_owned();
        let types = vec!["text[]"; arrays.len()].join(", ");
        for statement in [
            events,
            // The backend's counts reach pg_stat_user_tables before its next answer.
            "SELECT pg_stat_force_next_flush()".to_owned(),
            "SET plan_cache_mode = force_generic_plan".to_owned(),
            format!("PREPARE after_lock ({types}) AS {read}"),
        ] {
            sqlx::query(&statement).execute(&mut *connection).await.unwrap();
        }
        let values = vec![format!("'{{{offer}}}'"); arrays.len()].join(", ");
        let explain = format!("EXPLAIN EXECUTE after_lock ({values})");
        // Planned before any statistics: which of the two indexes it takes then is a tie.
        let _: Vec<String> =
            sqlx::query_scalar(&explain).fetch_all(&mut *connection).await.unwrap();
        // The keeper started by `migrate` may have got there first; either way it is analyzed.
        analyze_if_grown(&store.pool).await.unwrap();
        let analyzed: Option<i64> = sqlx::query_scalar(
            "SELECT analyze_count + autoanalyze_count FROM pg_stat_user_tables
             WHERE schemaname = current_schema() AND relname = 'conversion_events'",
        )
        .fetch_optional(&mut *connection)
        .await
        .unwrap();
        assert!(analyzed.unwrap_or(0) > 0, "conversion_events was not analyzed");
        let plan: Vec<String> =
            sqlx::query_scalar(&explain).fetch_all(&mut *connection).await.unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("conversion_events_by_member"), "{plan}");
        assert!(!plan.contains("conversion_events_counted"), "{plan}");
        drop(connection);
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(&store.pool)
            .await
            .unwrap();
    }
}
