//! SQLite: WAL, one writer connection (writers are serialised by the pool, so a transaction never
//! meets SQLITE_BUSY on upgrade), and a pool of readers.

use std::{str::FromStr, time::Duration};

use async_trait::async_trait;
use gokart_storage::{Backend, Result, Store, Tx};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::map_error;

type Db = sqlx::Sqlite;

pub struct SqliteStore {
    writer: sqlx::SqlitePool,
    readers: sqlx::SqlitePool,
}

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
            .connect_with(options.clone())
            .await
            .map_err(map_error)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await
            .map_err(map_error)?;
        Ok(SqliteStore { writer, readers })
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
