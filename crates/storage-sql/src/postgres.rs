//! PostgreSQL: a connection pool; rows that decide money are locked with `FOR UPDATE`, and jobs
//! are claimed with `FOR UPDATE SKIP LOCKED`, so several gokart processes can share a database.

use std::{str::FromStr, sync::Arc, time::Duration};

use async_trait::async_trait;
use gokart_storage::{Backend, Result, Store, Tx};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::map_error;

type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;

pub struct PostgresStore {
    pool: sqlx::PgPool,
    options: PgConnectOptions,
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
        Ok(PostgresStore { pool, options })
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
            .map_err(|e| gokart_storage::StorageError::Unavailable(e.to_string()))
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
        Arc::new(PostgresStore { pool, options: self.options.clone() })
    }
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
