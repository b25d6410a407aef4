//! The SQLite and PostgreSQL implementations of gokart's storage traits.
//!
//! The SQL is written once, in portable form (`$n` placeholders, TEXT/BIGINT/BOOLEAN columns),
//! in `src/common/`, and compiled twice: `include!`d into the `sqlite` and the `postgres` module,
//! each with its own concrete `sqlx` types. Every query is therefore type-checked for both
//! backends, and the few real differences (row locks, job claims) are in the backend modules.

mod postgres;
mod sqlite;

use gokart_storage::{Result, StorageError, Store};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Opens the store a database URL names: `sqlite://path` (created if missing) or `postgres://...`.
pub async fn connect(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StorageError::Unavailable(format!(
            "unsupported database URL {url:?}: use sqlite://... or postgres://..."
        )))
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn map_error(error: sqlx::Error) -> StorageError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StorageError::Conflict(db.message().to_owned())
        }
        _ => StorageError::Unavailable(error.to_string()),
    }
}

/// rusqlite's errors (the SQLite writer's `Batching::Prepared` statements) as sqlx's are mapped.
fn map_direct_error(error: rusqlite::Error) -> StorageError {
    use rusqlite::ffi;
    match &error {
        rusqlite::Error::SqliteFailure(failure, message)
            if matches!(
                failure.extended_code,
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            StorageError::Conflict(message.clone().unwrap_or_default())
        }
        _ => StorageError::Unavailable(error.to_string()),
    }
}

fn parse_uuid(text: &str) -> uuid::Uuid {
    // Ids are written by gokart itself; a malformed one would be a corrupted row.
    uuid::Uuid::parse_str(text).unwrap_or_default()
}

fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// How a list of statements goes to the database (`READS` and `WRITES` of each backend).
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Batching {
    /// All as one statement, each a data-modifying `WITH` part of the next (PostgreSQL: its
    /// extended protocol takes one statement per request, and this makes one of many writes).
    /// Foreign keys are checked at the end of the statement, so children may come with their
    /// parents; with one array per column (`push_rows`), the statement binds a few dozen values
    /// whatever the number of rows.
    OneStatement,
    /// One request each, in order.
    EachAlone,
    /// Each statement prepared once per connection and run for each row of values, on this
    /// thread, straight on the connection (SQLite's writer: `sqlite::Writer::run`, one hand-off
    /// for all). Binding a value costs a function call instead of sqlx's copies, rows are read
    /// without sqlx's, and a statement's text no longer depends on the number of rows, so it is
    /// parsed once.
    Prepared,
}

/// A statement with placeholders (`?1`, `?2`, …, or `?` for an INSERT's rows) and the rows of
/// values to run it with (`Batching::Prepared`).
pub(crate) struct Prepared {
    sql: String,
    rows: Vec<Vec<Value>>,
    /// For an INSERT of many rows: the same INSERT of [`Prepared::CHUNK_ROWS`] rows at once,
    /// run for each whole chunk (`sql` takes the rest one by one). One run opens the table's
    /// and each index's cursor once for all of its rows.
    chunked: Option<String>,
}

impl Prepared {
    /// What a list's placeholder is written in: one JSON array, so a statement's text does not
    /// depend on the number of values (SQLite, also for its sqlx statements: `push_in_list`).
    const IN_LIST: (&'static str, &'static str) = (" IN (SELECT value FROM json_each(", "))");

    /// The statement made of `parts` with `values` between them (`Statements::statement`).
    fn statement(parts: &[&str], values: Vec<Value>) -> Self {
        let mut sql = String::new();
        for (i, part) in parts.iter().enumerate() {
            sql.push_str(part);
            match values.get(i) {
                Some(Value::List(_)) => {
                    sql.push_str(&format!("{}?{}{}", Self::IN_LIST.0, i + 1, Self::IN_LIST.1))
                }
                Some(_) => sql.push_str(&format!("?{}", i + 1)),
                None => {}
            }
        }
        Prepared { sql, rows: vec![values], chunked: None }
    }

    /// Rows per run of [`Prepared::chunked`]: 384 values for the widest table (events, 24
    /// columns), far under SQLite's limit, and two statement texts per table whatever the
    /// number of rows.
    pub(crate) const CHUNK_ROWS: usize = 16;

    /// `insert` (`INSERT INTO <table> (<columns>) `) with one row of placeholders, run for each
    /// of `rows`.
    fn insert(insert: &str, rows: impl IntoIterator<Item = Vec<Value>>) -> Self {
        let rows: Vec<Vec<Value>> = rows.into_iter().collect();
        // Anonymous placeholders, bound in order: a chunk's text is one row's, repeated.
        let row = format!("({})", vec!["?"; rows.first().map_or(0, Vec::len)].join(", "));
        // A chunk fails as the whole transaction (`OR ROLLBACK`), as every caller treats any
        // failed statement: SQLite then keeps no statement journal (a copy of each page the
        // statement changes, to undo just it), 3 % of the writer's time at the postback maximum.
        let chunked = (rows.len() >= Self::CHUNK_ROWS).then(|| {
            let insert = insert.replacen("INSERT INTO", "INSERT OR ROLLBACK INTO", 1);
            format!("{insert}VALUES {}", vec![row.as_str(); Self::CHUNK_ROWS].join(", "))
        });
        Prepared { sql: format!("{insert}VALUES {row}"), rows, chunked }
    }
}

/// One value of a statement or of a row that an INSERT writes (`push_rows` of each backend), in
/// the columns' portable types: ids as text, times as microseconds.
pub(crate) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    /// The right-hand side of an `IN`, written by the backend's `push_in_list`; only in
    /// `Statements::statement`, never in a row.
    List(Vec<String>),
    /// A list as one value the statement reads as rows (`push_array`): a `text[]` on
    /// PostgreSQL (`unnest($1::text[])`), a JSON array on SQLite (`json_each(?1)`). Only in
    /// `Statements::statement`, never in a row.
    Array(Vec<String>),
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(Some(text))
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(Some(text.to_owned()))
    }
}

impl From<Option<String>> for Value {
    fn from(text: Option<String>) -> Self {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Value::Int(Some(number))
    }
}

impl From<Option<i64>> for Value {
    fn from(number: Option<i64>) -> Self {
        Value::Int(number)
    }
}

impl From<bool> for Value {
    fn from(flag: bool) -> Self {
        Value::Bool(flag)
    }
}

impl From<uuid::Uuid> for Value {
    fn from(id: uuid::Uuid) -> Self {
        Value::Text(Some(uuid_text(id)))
    }
}

impl From<Option<uuid::Uuid>> for Value {
    fn from(id: Option<uuid::Uuid>) -> Self {
        Value::Text(id.map(uuid_text))
    }
}

/// The hyphenated text of `id`, written straight (not through `Display`'s formatter: a
/// batch writes a few hundred ids).
pub(crate) fn uuid_text(id: uuid::Uuid) -> String {
    id.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
}

impl From<chrono::DateTime<chrono::Utc>> for Value {
    fn from(at: chrono::DateTime<chrono::Utc>) -> Self {
        Value::Int(Some(gokart_domain::time::to_micros(at)))
    }
}

impl From<Option<chrono::DateTime<chrono::Utc>>> for Value {
    fn from(at: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        Value::Int(at.map(gokart_domain::time::to_micros))
    }
}
