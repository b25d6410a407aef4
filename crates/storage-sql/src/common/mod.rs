// Shared by both backends: `include!`d into `sqlite.rs` and `postgres.rs`, which define `Db`
// (the sqlx database) and its `DbRow`, `DbTx` (an open transaction: derefs to the connection)
// with `commit`, `FOR_UPDATE` (the row-lock clause), and how statements go out (`READS`,
// `WRITES`, `push_in_list`, `push_rows`, `run_prepared`, `query_prepared`). Everything here is
// compiled once per backend, so each query is checked against both.

use gokart_storage::*;
use sqlx::Row;
use uuid::Uuid;

use crate::{parse_json, parse_uuid, uuid_text};

pub struct SqlTx {
    /// The backend's open transaction (`DbTx`: a connection to run statements on, and how it
    /// ends).
    tx: DbTx,
    /// Buffered writes and per-transaction reads (`pending.rs`).
    pending: Pending,
}

fn micros(at: chrono::DateTime<chrono::Utc>) -> i64 {
    gokart_domain::time::to_micros(at)
}

fn at(micros: i64) -> chrono::DateTime<chrono::Utc> {
    gokart_domain::time::from_micros(micros)
}

fn col<T: Column>(row: &impl RowLike, name: &str) -> Result<T> {
    row.column(name)
}

/// A column's Rust type, read the same from sqlx's rows and rusqlite's.
trait Column: for<'r> sqlx::Decode<'r, Db> + sqlx::Type<Db> + rusqlite::types::FromSql {}

impl<T> Column for T where T: for<'r> sqlx::Decode<'r, Db> + sqlx::Type<Db> + rusqlite::types::FromSql {}

/// A row as sqlx returns it, or as rusqlite does on the SQLite writer (`sqlite::DirectRow`):
/// the `*_from_row` functions read both.
trait RowLike {
    fn column<T: Column>(&self, name: &str) -> Result<T>;
}

impl RowLike for DbRow {
    fn column<T: Column>(&self, name: &str) -> Result<T> {
        self.try_get(name).map_err(map_error)
    }
}

/// What a row of a batch's reads becomes (`Statements::fetch_all`).
trait FromRow: Sized {
    fn from_row(row: &impl RowLike) -> Result<Self>;
}

/// `SELECT COUNT(*) FROM <table> WHERE <condition>`, binding `values` in order.
async fn count_where(
    tx: &mut DbTx,
    table: &str,
    condition: &str,
    values: &[String],
) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {condition}");
    let mut count = sqlx::query_scalar::<_, i64>(&sql);
    for value in values {
        count = count.bind(value);
    }
    count.fetch_one(&mut **tx).await.map_err(map_error)
}

fn page_of<T>(items: Vec<T>, request: PageRequest, total: i64) -> Page<T> {
    Page { items, request, total: u64::try_from(total).unwrap_or(0) }
}

#[async_trait]
impl Tx for SqlTx {
    async fn commit(mut self: Box<Self>) -> Result<()> {
        let statements = self.settle_statements();
        commit(self.tx, statements).await
    }
}

include!("pending.rs");
include!("tenants.rs");
include!("catalog.rs");
include!("tracking.rs");
include!("delivery.rs");
