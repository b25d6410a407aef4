//! SQLite: WAL, one writer connection (writers are serialised by the pool, so a transaction never
//! meets SQLITE_BUSY on upgrade), a pool of readers, and a checkpointer of its own so that copying
//! the WAL into the database (and its fsync) never stalls a commit.

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use gokart_storage::{Backend, Result, Store, Tx};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::map_error;

type Db = sqlx::Sqlite;

pub struct SqliteStore {
    writer: sqlx::SqlitePool,
    readers: sqlx::SqlitePool,
    checkpointer: tokio::task::JoinHandle<()>,
}

/// How often the WAL is copied into the database file. SQLite's own automatic checkpoint would
/// do it inside whichever commit crosses 1000 pages, holding up every click and postback behind
/// that commit.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

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
            .foreign_keys(true);
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| gokart_storage::StorageError::Unavailable(e.to_string()))?;
            }
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
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
            .connect_with(options.read_only(true))
            .await
            .map_err(map_error)?;
        let checkpointer = tokio::spawn(checkpoint_forever(checkpoints));
        Ok(SqliteStore { writer, readers, checkpointer })
    }
}

/// PASSIVE checkpoints never wait for readers or the writer; what they cannot copy yet, the next
/// one does. Once a checkpoint has caught up, the writer starts the WAL over from its beginning.
async fn checkpoint_forever(pool: sqlx::SqlitePool) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::warn!(%error, "WAL checkpoint failed; trying again");
        }
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
        let tx = self.writer.begin().await.map_err(map_error)?;
        Ok(Box::new(SqlTx::new(tx)))
    }
}

/// Row locks: the single writer connection already serialises every writing transaction.
const FOR_UPDATE: &str = "";
/// Job claims: the single writer makes the claiming UPDATE atomic by itself.
const CLAIM_LOCK: &str = "";

include!("common/mod.rs");
