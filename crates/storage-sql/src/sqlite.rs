//! SQLite: WAL, one writer connection (writers are serialised by the pool, so a transaction never
//! meets SQLITE_BUSY on upgrade), a pool of readers, and a checkpointer of its own so that copying
//! the WAL into the database (and its fsync) never stalls a commit.

use std::{
    str::FromStr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use gokart_storage::{Backend, Result, Store, Tx};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::map_error;

type Db = sqlx::Sqlite;

pub struct SqliteStore {
    writer: sqlx::SqlitePool,
    readers: sqlx::SqlitePool,
    checkpointer: tokio::task::JoinHandle<()>,
    /// Set by the checkpointer when the WAL has grown long: the writer then checkpoints the
    /// short tail itself before its next transaction, so that transaction starts the WAL over.
    restart_wal: Arc<AtomicBool>,
}

/// How often the WAL is copied into the database file. SQLite's own automatic checkpoint would
/// do it inside whichever commit crosses 1000 pages, holding up every click and postback behind
/// that commit.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// WAL frames (pages) past which the writer is asked to start the WAL over. Under sustained
/// load the background checkpoint never catches up with the writer by itself, and a WAL that
/// only grows makes every commit write to new file blocks (measured: 650 MB in one load test).
const RESTART_WAL_FRAMES: i64 = 4000;
/// A checkpoint pass this short leaves a tail the writer copies in about a millisecond.
const QUICK_CHECKPOINT: Duration = Duration::from_millis(3);

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(map_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode survives a process crash (kill -9); FULL would also survive
            // power loss at the price of an fsync per commit. Decision in docs/DECISIONS.md.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Multi-row INSERTs inside a transaction keep a statement journal; in a file it
            // costs a temp file's writes (and page zeroing) per statement.
            .pragma("temp_store", "memory");
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| gokart_storage::StorageError::Unavailable(e.to_string()))?;
            }
        }
        // No ping before each use: it costs the hot paths a round trip to the connection's
        // thread per transaction, and a broken connection fails its transaction anyway.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await
            .map_err(map_error)?;
        let checkpoints = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(map_error)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(map_error)?;
        let restart_wal = Arc::new(AtomicBool::new(false));
        let checkpointer = tokio::spawn(checkpoint_forever(checkpoints, restart_wal.clone()));
        Ok(SqliteStore { writer, readers, checkpointer, restart_wal })
    }
}

/// PASSIVE checkpoints never wait for readers or the writer; what they cannot copy yet, the next
/// one does. A writer starts the WAL over from its beginning only when a checkpoint has copied
/// all of it, which under load is never true when it begins. So once the WAL is long, passes
/// follow each other closely until one copies everything quickly: the tail written meanwhile is
/// then short, and the writer is asked to copy it itself before its next transaction (`write`).
async fn checkpoint_forever(pool: sqlx::SqlitePool, restart_wal: Arc<AtomicBool>) {
    loop {
        let started = std::time::Instant::now();
        let checkpoint = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)");
        let pause = match checkpoint.fetch_one(&pool).await {
            Ok((_busy, frames, copied)) if frames >= RESTART_WAL_FRAMES => {
                if copied == frames && started.elapsed() < QUICK_CHECKPOINT {
                    restart_wal.store(true, Ordering::Relaxed);
                }
                Duration::from_millis(1)
            }
            Ok(_) => CHECKPOINT_EVERY,
            Err(error) => {
                tracing::warn!(%error, "WAL checkpoint failed; trying again");
                CHECKPOINT_EVERY
            }
        };
        tokio::time::sleep(pause).await;
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<()> {
        crate::MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|e| gokart_storage::StorageError::Unavailable(e.to_string()))
    }

    async fn read(&self) -> Result<Box<dyn Tx>> {
        let tx = self.readers.begin().await.map_err(map_error)?;
        Ok(Box::new(SqlTx::new(tx)))
    }

    async fn write(&self) -> Result<Box<dyn Tx>> {
        if self.restart_wal.swap(false, Ordering::Relaxed) {
            // The background checkpoint has copied most of the WAL; copying the rest here, with
            // no write transaction open, lets the transaction below start the WAL over.
            let tail = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&self.writer).await;
            if let Err(error) = tail {
                tracing::warn!(%error, "WAL checkpoint before a write failed");
            }
        }
        let tx = self.writer.begin().await.map_err(map_error)?;
        Ok(Box::new(SqlTx::new(tx)))
    }

    async fn insert_clicks(&self, clicks: &[&gokart_storage::ClickRecord]) -> Result<()> {
        insert_clicks_autocommit(&self.writer, clicks).await
    }
}

/// Row locks: the single writer connection already serialises every writing transaction.
const FOR_UPDATE: &str = "";
/// Job claims: the single writer makes the claiming UPDATE atomic by itself.
const CLAIM_LOCK: &str = "";

/// Statements per request when a transaction settles: 0, as many as there are (SQLite runs a
/// request's statements one after another, each with its own values).
const STATEMENTS_PER_REQUEST: usize = 0;

include!("common/mod.rs");
