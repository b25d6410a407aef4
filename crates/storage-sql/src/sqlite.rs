//! SQLite: WAL, one writer connection (writers take turns on it, so a transaction never meets
//! SQLITE_BUSY on upgrade), a pool of readers, and a checkpointer of its own so that copying the
//! WAL into the database (and its fsync) never stalls a commit. The writer runs the hot path's
//! batches itself, through rusqlite on the same handle (`Writer::run`, `Batching::Prepared`).

use std::{
    ops::{Deref, DerefMut},
    str::FromStr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use async_trait::async_trait;
use gokart_storage::{Backend, Result, Store, Tx};
use sqlx::{
    sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
        SqliteSynchronous,
    },
    ConnectOptions,
};

use crate::map_error;

type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;

pub struct SqliteStore {
    writer: Arc<tokio::sync::Mutex<Writer>>,
    readers: sqlx::SqlitePool,
    /// Ends the checkpointer's thread (`checkpoint_forever`) when the store is dropped.
    stop_checkpoints: Arc<AtomicBool>,
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
/// Each restart stalls the writer for its two syncs (1.5-3.5 ms measured); small batches write
/// many frames each (every index's rightmost page again), so at half load postbacks filled
/// 4,000 frames four times a second, and those stalls were where the 99th percentile's slow
/// requests clustered. 16,000 frames (64 MB) make them about once a second.
const RESTART_WAL_FRAMES: i64 = 16_000;
/// A checkpoint pass this short (its sync included) leaves a tail the writer copies in about a
/// millisecond.
const QUICK_CHECKPOINT: Duration = Duration::from_millis(3);
/// WAL frames (256 MB) past which the writer is asked to start the WAL over after any pass that
/// copied everything, quick or not: where syncs are slow (this VM's disk under load: 3-7 ms)
/// no pass is quick, and the restart's stall (two syncs) is the price of a bounded WAL. Rare
/// restarts keep that stall out of the 99th percentile.
const LONGEST_WAL_FRAMES: i64 = 64_000;

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
            // A statement inside a transaction may keep a statement journal; in a file it costs
            // a temp file's writes (and page zeroing) per statement.
            .pragma("temp_store", "memory");
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| gokart_storage::StorageError::Unavailable(e.to_string()))?;
            }
        }
        // Without SQLite's own mutex (sqlx's default): `direct` and sqlx's thread never use the
        // handle at once (`Writer::hold_off`), and the mutex cost every call on the handle a
        // lock and an unlock (about 4 % of a postback's instructions).
        let writer_options = options.clone().pragma("wal_autocheckpoint", "0");
        let mut connection = writer_options.connect().await.map_err(map_error)?;
        let direct = direct_on(&mut connection).await?;
        let writer = Arc::new(tokio::sync::Mutex::new(Writer::new(direct, connection)));
        let checkpoints = checkpoint_connection(options.get_filename())?;
        let wal = WalFlusher::beside(options.get_filename());
        // No ping before each use: it costs a round trip to the connection's thread per
        // transaction, and a broken connection fails its transaction anyway.
        let readers = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(map_error)?;
        let restart_wal = Arc::new(AtomicBool::new(false));
        let stop_checkpoints = Arc::new(AtomicBool::new(false));
        let (restart, stop) = (restart_wal.clone(), stop_checkpoints.clone());
        std::thread::Builder::new()
            .name("gokart-checkpoints".into())
            .spawn(move || checkpoint_forever(&checkpoints, wal, &restart, &stop))
            .map_err(|e| gokart_storage::StorageError::Unavailable(e.to_string()))?;
        Ok(SqliteStore { writer, readers, stop_checkpoints, restart_wal })
    }
}

/// The checkpointer's nice value: it runs when a core is free rather than taking one from a
/// request or the writer. On two cores at half load, postbacks' p99 was at most 10 ms in
/// three of ten runs with the checkpointer at the default, in seven of ten niced
/// (docs/decisions/performance.md). Under full load it still gets its share (a tenth of a
/// default thread's), and the WAL stays bounded: the writer restarts it at the latest at
/// `LONGEST_WAL_FRAMES`.
const CHECKPOINTER_NICE: libc::c_int = 10;

/// Lowers the calling thread's priority to [`CHECKPOINTER_NICE`] (Linux keeps a nice value per
/// thread); elsewhere, or if refused, the thread runs as it is.
fn give_way_to_the_hot_paths() {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: gettid and setpriority take and return plain integers and touch no memory.
    let refused = unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, CHECKPOINTER_NICE) != 0
    };
    #[cfg(not(target_os = "linux"))]
    let refused = false;
    if refused {
        tracing::debug!("the checkpointer runs at the default priority");
    }
}

/// The checkpointer's own connection: rusqlite, on a thread of its own (`checkpoint_forever`),
/// so that it can sync the database file through SQLite's own file handle (`sync_database_file`).
fn checkpoint_connection(path: &std::path::Path) -> Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open(path).map_err(crate::map_direct_error)?;
    connection.busy_timeout(Duration::from_secs(10)).map_err(crate::map_direct_error)?;
    // A checkpoint syncs the WAL before it copies it, and the database file after (NORMAL).
    connection.pragma_update(None, "synchronous", "NORMAL").map_err(crate::map_direct_error)?;
    Ok(connection)
}

/// PASSIVE checkpoints never wait for readers or the writer; what they cannot copy yet, the next
/// one does. A writer starts the WAL over from its beginning only when a checkpoint has copied
/// all of it, which under load is never true when it begins. So once the WAL is long, passes
/// follow each other closely until one copies everything quickly: the tail written meanwhile is
/// then short, and the writer is asked to copy it itself before its next transaction (`write`).
///
/// SQLite syncs the database file only after a pass that reached the WAL's live end, which
/// under load none does: a commit lands during every pass. So the pages of every pass since
/// the last restart would wait for the writer's tail pass, whose sync then wrote them all (a
/// stall of 10-30 ms measured). The checkpointer syncs the file itself after each pass of a
/// long WAL, off the writer's path, and asks for the restart only once a pass and its sync
/// were quick. Between passes it starts the WAL's writeback every 10 ms (`WalFlusher`), so that
/// a pass's own sync of the WAL has little left to write.
fn checkpoint_forever(
    connection: &rusqlite::Connection,
    mut wal: WalFlusher,
    restart_wal: &AtomicBool,
    stop: &AtomicBool,
) {
    give_way_to_the_hot_paths();
    let mut next_pass = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        wal.flush();
        if std::time::Instant::now() >= next_pass {
            next_pass = std::time::Instant::now() + checkpoint_pass(connection, restart_wal);
        }
        let until_pass = next_pass.saturating_duration_since(std::time::Instant::now());
        std::thread::sleep(until_pass.min(FLUSH_WAL_EVERY));
    }
}

/// One checkpoint pass (see `checkpoint_forever`); answers how long to wait before the next.
fn checkpoint_pass(connection: &rusqlite::Connection, restart_wal: &AtomicBool) -> Duration {
    let started = std::time::Instant::now();
    let checkpoint = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match checkpoint {
        Ok((frames, copied)) if frames >= RESTART_WAL_FRAMES => {
            let synced = sync_database_file(connection)
                .map_err(|error| tracing::warn!(%error, "syncing the database file failed"))
                .is_ok();
            let due = started.elapsed() < QUICK_CHECKPOINT || frames >= LONGEST_WAL_FRAMES;
            if synced && copied == frames && due {
                restart_wal.store(true, Ordering::Relaxed);
                // Out of the way of the writer's own pass (the checkpoint lock).
                CHECKPOINT_EVERY
            } else {
                Duration::from_millis(1)
            }
        }
        Ok(_) => CHECKPOINT_EVERY,
        Err(error) => {
            tracing::warn!(%error, "WAL checkpoint failed; trying again");
            CHECKPOINT_EVERY
        }
    }
}

/// How often the checkpointer starts the writeback of what the writer has appended to the WAL
/// (`WalFlusher`).
const FLUSH_WAL_EVERY: Duration = Duration::from_millis(10);

/// Starts the kernel's writeback of the WAL's dirty pages, often, so that the sync a checkpoint
/// pass begins with finds little to write. The writer appends each frame to the block the last
/// one ended in; while that block is being written back, the append waits for it (ext4), and a
/// sync that wrote 100 ms of WAL held it for up to 10 ms (`perf`: the writer off its core in
/// `ext4_block_write_begin`, a checkpoint's sync of the WAL in flight).
struct WalFlusher {
    /// The WAL file SQLite keeps beside the database.
    path: std::path::PathBuf,
    /// Opened once the WAL exists (the first write creates it). SQLite holds no POSIX lock on
    /// the WAL file (its locks are on the shared-memory file), so this descriptor closing
    /// drops none.
    file: Option<std::fs::File>,
}

impl WalFlusher {
    /// The flusher of the WAL of the database at `database`.
    fn beside(database: &std::path::Path) -> Self {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        WalFlusher { path: path.into(), file: None }
    }

    fn flush(&mut self) {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        #[cfg(target_os = "linux")]
        if let Some(file) = &self.file {
            use std::os::fd::AsRawFd;
            #[allow(unsafe_code)]
            // SAFETY: sync_file_range takes a descriptor this struct keeps open and integers.
            let started = unsafe {
                libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) == 0
            };
            if !started {
                tracing::debug!("starting the WAL's writeback failed");
            }
        }
    }
}

/// Syncs the database file of `connection` through SQLite's own handle for it. Not through a
/// file opened for the purpose: closing any descriptor of the file would drop every POSIX lock
/// this process holds on it, SQLite's included (a corruption hazard SQLite documents; seen here
/// as `SQLITE_IOERR_SHORT_READ` while another process wrote to the database).
#[allow(unsafe_code)]
fn sync_database_file(connection: &rusqlite::Connection) -> std::result::Result<(), String> {
    use rusqlite::ffi;
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: the handle is this connection's, used on this thread only; FILE_POINTER writes
    // the main database's `sqlite3_file` (owned by the connection, open while it is) into
    // `file`, and its methods table is SQLite's own VFS, whose xSync takes that file.
    unsafe {
        let asked = ffi::sqlite3_file_control(
            connection.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&mut file as *mut *mut ffi::sqlite3_file).cast(),
        );
        if asked != ffi::SQLITE_OK || file.is_null() || (*file).pMethods.is_null() {
            return Err(format!("no database file (code {asked})"));
        }
        let Some(sync) = (*(*file).pMethods).xSync else {
            return Err("the VFS cannot sync".into());
        };
        match sync(file, ffi::SQLITE_SYNC_NORMAL) {
            ffi::SQLITE_OK => Ok(()),
            code => Err(format!("sync failed (code {code})")),
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.stop_checkpoints.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<()> {
        // The migrator begins and commits transactions of its own.
        let mut writer = self.lease(Standing::Closed).await?;
        crate::MIGRATOR
            .run_direct(writer.sqlx())
            .await
            .map_err(|e| gokart_storage::StorageError::Unavailable(e.to_string()))?;
        writer.standing = Standing::Closed;
        Ok(())
    }

    async fn read(&self) -> Result<Box<dyn Tx>> {
        let tx = self.readers.begin().await.map_err(map_error)?;
        Ok(Box::new(SqlTx::new(DbTx::Read(tx))))
    }

    async fn write(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(SqlTx::new(DbTx::Write(self.lease(Standing::Begun).await?))))
    }

    /// A transaction of its own, written and committed in one call on the writer.
    async fn insert_clicks(&self, clicks: &[&gokart_storage::ClickRecord]) -> Result<()> {
        if clicks.is_empty() {
            return Ok(());
        }
        let mut statements = Statements::writes();
        write_clicks(&mut statements, clicks);
        commit(DbTx::Write(self.lease(Standing::Begun).await?), statements).await
    }

    /// The same store, whichever runtime uses it: its connections run on threads of their own.
    fn on_this_runtime(self: Arc<Self>, _connections: u32) -> Arc<dyn Store> {
        self
    }
}

impl SqliteStore {
    /// The writer connection, once it is free, `wanted` (`Begun`: in a transaction begun for
    /// this write, usually the one begun by the last commit, so a write costs no round trip to
    /// begin; `Closed`: in none). When the checkpointer asks for it (`restart_wal`), the
    /// connection first copies the rest of the WAL (the checkpointer has copied most of it), so
    /// that this write starts the WAL over.
    async fn lease(&self, wanted: Standing) -> Result<tokio::sync::OwnedMutexGuard<Writer>> {
        let mut writer = self.writer.clone().lock_owned().await;
        let restart_wal = self.restart_wal.swap(false, Ordering::Relaxed);
        let standing = writer.standing;
        if standing != wanted || restart_wal {
            writer
                .run(|connection| {
                    if standing != Standing::Closed {
                        // An error means SQLite ended the transaction itself: nothing to undo.
                        let _ = connection.execute_batch("ROLLBACK");
                    }
                    if restart_wal {
                        let tail = "PRAGMA wal_checkpoint(PASSIVE)";
                        if let Err(error) = connection.query_row(tail, [], |_| Ok(())) {
                            tracing::warn!(%error, "WAL checkpoint before a write failed");
                        }
                    }
                    match wanted {
                        Standing::Begun => connection.execute_batch("BEGIN"),
                        Standing::Closed | Standing::Used => Ok(()),
                    }
                    .map_err(crate::map_direct_error)
                })
                .await?;
        }
        writer.standing = Standing::Used;
        Ok(writer)
    }
}

/// The one writer connection, lent to one write at a time. It is kept out of a pool: a pool
/// tests a connection on its way back (a round trip to the connection's thread per
/// transaction), and a lease of its own lets COMMIT go out with a transaction's last
/// statements (`commit`). Transactions are begun and ended in SQL, not with sqlx's
/// `Transaction`, for the same reason.
struct Writer {
    /// The same connection for rusqlite (`run`). Declared first: dropped (its prepared
    /// statements finalized) while sqlx's thread is still held off the handle (`Drop`), and
    /// before `connection` closes the handle.
    direct: rusqlite::Connection,
    /// sqlx's thread for `connection`, held off the handle from one direct call (`run`) to the
    /// next, and let back on only when a statement goes through sqlx (`sqlx`): taking the
    /// handle costs a hand-off to that thread and back (0.2-0.3 ms under load), twice per batch
    /// if it were taken per call. Declared before `connection`: released before it closes.
    held_off: Option<sqlx::sqlite::LockedSqliteHandle<'static>>,
    /// Statements reach it only through `sqlx`, which lets sqlx's thread back on the handle
    /// first (`Deref` of `DbTx` lends it immutably, which runs nothing).
    connection: SqliteConnection,
    standing: Standing,
}

impl Drop for Writer {
    /// `direct` finalizes its prepared statements as it is dropped (first, by field order), so
    /// sqlx's thread is held off the handle first, as for every other call. This waits at most
    /// for that thread to finish the statement in hand; it needs no runtime. If the thread is
    /// gone, so is every other use of the handle.
    fn drop(&mut self) {
        let _ = futures_executor::block_on(self.hold_off());
    }
}

/// Where the writer's transaction stands between leases.
#[derive(Clone, Copy, PartialEq)]
enum Standing {
    /// No transaction is open.
    Closed,
    /// Begun by the last commit for the next write, with nothing run in it: a deferred
    /// transaction holds no lock and no snapshot until its first statement, so it holds up
    /// neither readers nor the checkpointer.
    Begun,
    /// Lent to a write, or left by one: its `SqlTx` was dropped (the caller gave up or failed),
    /// or its commit failed. The next `lease` rolls it back first; until then it holds only the
    /// write lock, which every write takes through this lease anyway.
    Used,
}

impl Writer {
    fn new(direct: rusqlite::Connection, connection: SqliteConnection) -> Self {
        Writer { held_off: None, direct, connection, standing: Standing::Closed }
    }

    /// Runs `work` on this thread, straight on the connection's handle, while sqlx's thread for
    /// the connection is held off it. Statements go in the same transaction as sqlx's.
    async fn run<T>(&mut self, work: impl FnOnce(&rusqlite::Connection) -> Result<T>) -> Result<T> {
        self.hold_off().await?;
        work(&self.direct)
    }

    /// Holds sqlx's thread off the handle until the next `sqlx`. The handle is opened without
    /// SQLite's own mutex, so this hold is what keeps the two threads' calls apart: sqlx's
    /// thread still works on the handle after it has answered (it resets the statement).
    #[allow(unsafe_code)]
    async fn hold_off(&mut self) -> Result<()> {
        if self.held_off.is_none() {
            let held_off = self.connection.lock_handle().await.map_err(map_error)?;
            // SAFETY: the guard borrows only the mutex in sqlx's shared worker state, which
            // lives on the heap for as long as `connection` (and its thread) does, wherever
            // `Writer` moves. It is released before `connection` is used through sqlx (`sqlx`,
            // the only way to it) and before `connection` is dropped (field order).
            let held_off = unsafe {
                std::mem::transmute::<
                    sqlx::sqlite::LockedSqliteHandle<'_>,
                    sqlx::sqlite::LockedSqliteHandle<'static>,
                >(held_off)
            };
            self.held_off = Some(held_off);
        }
        Ok(())
    }

    /// The connection for a statement through sqlx, with sqlx's thread let back on its handle.
    fn sqlx(&mut self) -> &mut SqliteConnection {
        self.held_off = None;
        &mut self.connection
    }
}

/// A rusqlite connection on `connection`'s handle, for `Writer::run`.
#[allow(unsafe_code)]
async fn direct_on(connection: &mut SqliteConnection) -> Result<rusqlite::Connection> {
    let mut locked = connection.lock_handle().await.map_err(map_error)?;
    // SAFETY: the handle lives as long as `connection`, and `Writer` drops the wrapper first
    // (field order). The wrapper does not close the handle, and makes calls on it only in
    // `Writer::run`, while sqlx's thread is held off it, and finalizes its statements on drop
    // with that thread held off too (`Drop for Writer`).
    let direct = unsafe { rusqlite::Connection::from_handle(locked.as_raw_handle().as_ptr()) }
        .map_err(crate::map_direct_error)?;
    // Every statement of the hot paths stays prepared: eight reads ahead, two texts per table
    // written (`Prepared::chunked`), the clicks, the spent budget (rusqlite keeps 16).
    direct.set_prepared_statement_cache_capacity(64);
    Ok(direct)
}

/// Runs `statements` on the writer, each prepared once per connection (`Batching::Prepared`).
async fn run_prepared(tx: &mut DbTx, statements: Vec<crate::Prepared>) -> Result<()> {
    let _: Vec<Ignored> = query_prepared(tx, statements).await?;
    Ok(())
}

/// The rows of `statements` run on the writer (`Batching::Prepared`), each as a `T`.
async fn query_prepared<T: FromRow>(
    tx: &mut DbTx,
    statements: Vec<crate::Prepared>,
) -> Result<Vec<T>> {
    if statements.is_empty() {
        return Ok(Vec::new());
    }
    let DbTx::Write(writer) = tx else {
        return Err(gokart_storage::StorageError::Unavailable("a batch on a reader".into()));
    };
    writer
        .run(|connection| {
            let direct = crate::map_direct_error;
            let mut found = Vec::new();
            for statement in &statements {
                let mut rows_left = statement.rows.as_slice();
                if let Some(sql) = &statement.chunked {
                    // An INSERT: its whole chunks at once, no rows to read.
                    let mut chunked = connection.prepare_cached(sql).map_err(direct)?;
                    while rows_left.len() >= crate::Prepared::CHUNK_ROWS {
                        let (chunk, rest) = rows_left.split_at(crate::Prepared::CHUNK_ROWS);
                        let values = rusqlite::params_from_iter(chunk.iter().flatten());
                        chunked.execute(values).map_err(direct)?;
                        rows_left = rest;
                    }
                }
                let mut prepared = connection.prepare_cached(&statement.sql).map_err(direct)?;
                let names: Vec<String> =
                    prepared.column_names().into_iter().map(str::to_owned).collect();
                for values in rows_left {
                    let mut rows =
                        prepared.query(rusqlite::params_from_iter(values)).map_err(direct)?;
                    while let Some(row) = rows.next().map_err(direct)? {
                        found.push(T::from_row(&DirectRow { row, names: &names })?);
                    }
                }
            }
            Ok(found)
        })
        .await
}

/// A rusqlite row with its statement's column names, looked up here: rusqlite's own lookup by
/// name asks SQLite for every name, each time.
struct DirectRow<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    names: &'r [String],
}

impl RowLike for DirectRow<'_, '_> {
    fn column<T: Column>(&self, name: &str) -> Result<T> {
        let index = self.names.iter().position(|column| column == name).ok_or_else(|| {
            gokart_storage::StorageError::Unavailable(format!("no column {name}"))
        })?;
        self.row.get(index).map_err(crate::map_direct_error)
    }
}

/// The rows of writes: none.
struct Ignored;

impl FromRow for Ignored {
    fn from_row(_row: &impl RowLike) -> Result<Self> {
        Ok(Ignored)
    }
}

impl rusqlite::ToSql for crate::Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            crate::Value::Text(Some(text)) => ValueRef::Text(text.as_bytes()),
            crate::Value::Int(Some(number)) => ValueRef::Integer(*number),
            crate::Value::Bool(flag) => ValueRef::Integer(i64::from(*flag)),
            crate::Value::Text(None) | crate::Value::Int(None) => ValueRef::Null,
            crate::Value::List(list) | crate::Value::Array(list) => {
                return Ok(ToSqlOutput::from(json_list(list)))
            }
        }))
    }
}

/// An open transaction: a read on a pooled connection (sqlx's `Transaction`), or a write on the
/// leased writer connection.
enum DbTx {
    Read(sqlx::Transaction<'static, Db>),
    Write(tokio::sync::OwnedMutexGuard<Writer>),
}

impl Deref for DbTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            DbTx::Read(tx) => tx,
            DbTx::Write(writer) => &writer.connection,
        }
    }
}

impl DerefMut for DbTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            DbTx::Read(tx) => tx,
            DbTx::Write(writer) => writer.sqlx(),
        }
    }
}

/// Writes a transaction's buffered rows (`settle`) and commits it: on the writer, COMMIT goes in
/// the same request as the rows, one round trip for both.
async fn commit(mut tx: DbTx, mut settle: Statements) -> Result<()> {
    if let DbTx::Write(_) = tx {
        // And the next write's transaction, in the same call.
        settle.statement(&["COMMIT"], Vec::new());
        settle.statement(&["BEGIN"], Vec::new());
    }
    settle.execute(&mut tx).await?;
    match tx {
        DbTx::Read(tx) => tx.commit().await.map_err(map_error),
        DbTx::Write(mut writer) => {
            writer.standing = Standing::Begun;
            Ok(())
        }
    }
}

/// Row locks: the single writer connection already serialises every writing transaction.
const FOR_UPDATE: &str = "";
/// Job claims: the single writer makes the claiming UPDATE atomic by itself.
const CLAIM_LOCK: &str = "";

/// The read-ahead's conversions, events and counted events of a batch's clicks
/// (`read_after_clicks`), each list one JSON array: SQLite's planner looks each listed id up in
/// the index.
const CONVERSIONS_OF_CLICKS: &[&str] = &[
    "SELECT 'conversion' AS part, * FROM conversions
     WHERE click_id IN (SELECT value FROM json_each(",
    "))",
];
/// A conversion's events share its click: the (click_id, ...) unique index finds them.
const EVENTS_OF_CLICKS: &[&str] = &[
    "SELECT 'event' AS part, * FROM conversion_events
     WHERE click_id IN (SELECT value FROM json_each(",
    ")) ORDER BY created_at, id",
];
/// Through the (offer_id, pub_member_id) index, once per pair of the clicks. The pairs are
/// found through the clicks again (a primary-key lookup each): two JSON arrays of the pairs'
/// offers and members cannot be zipped by `json_each` without reading one whole for each element
/// of the other.
const COUNTED_OF_CLICKS: &[&str] = &[
    "SELECT 'counted' AS part, e.tenant_id, e.offer_id, e.pub_member_id, e.click_id
     FROM (SELECT DISTINCT offer_id, pub_member_id FROM clicks
           WHERE id IN (SELECT value FROM json_each(",
    "))) AS m JOIN conversion_events AS e
       ON e.offer_id = m.offer_id AND e.pub_member_id = m.pub_member_id
     WHERE e.counted = TRUE",
];

/// The three as the read-ahead runs them: apart, since each of its reads goes to the writer in
/// one call anyway.
const AFTER_LOCK_READS: &[(&[&str], &[BatchArray])] = &[
    (CONVERSIONS_OF_CLICKS, &[BatchArray::Clicks]),
    (EVENTS_OF_CLICKS, &[BatchArray::Clicks]),
    (COUNTED_OF_CLICKS, &[BatchArray::Clicks]),
];

/// A batch's reads and a transaction's writes each run straight on the writer, in one call.
const READS: Batching = Batching::Prepared;
const WRITES: Batching = Batching::Prepared;

/// ` IN (SELECT value FROM json_each($1))`: the list as one JSON array, so that the statement's
/// text is the same whatever the number of values, and sqlx prepares it once. With one
/// placeholder per value every batch size is a new text to parse and plan.
fn push_in_list(query: &mut sqlx::QueryBuilder<'static, Db>, values: &[String]) {
    let (before, after) = crate::Prepared::IN_LIST;
    query.push(before).push_bind(json_list(values)).push(after);
}

/// `Value::Array` on SQLite: one JSON array, which the statement reads with `json_each`.
fn push_array(query: &mut sqlx::QueryBuilder<'static, Db>, values: Vec<String>) {
    query.push_bind(json_list(&values));
}

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

/// `Statements::insert` on SQLite: one row of placeholders, run for each of `rows` on the
/// writer.
fn push_rows(
    statements: &mut Statements,
    insert: &str,
    rows: impl IntoIterator<Item = Vec<crate::Value>>,
) {
    statements.requests.push(Request::Prepared(crate::Prepared::insert(insert, rows)));
}

include!("common/mod.rs");

#[cfg(test)]
mod tests {
    use gokart_domain::tenant::TenantKind;
    use gokart_storage::{Store, TenantRecord};

    use super::SqliteStore;

    fn tenant(slug: &str) -> TenantRecord {
        TenantRecord {
            id: uuid::Uuid::now_v7(),
            slug: slug.to_owned(),
            kind: TenantKind::Advertiser,
            name: slug.to_owned(),
            currency: "USD".to_owned(),
            callback_signing_secret: "whsec_test".to_owned(),
            created_at: chrono::Utc::now(),
        }
    }

    /// A migrated store in a directory of its own.
    async fn fresh_store(name: &str) -> (SqliteStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("gokart-{name}-{}", uuid::Uuid::now_v7()));
        let store = SqliteStore::connect(&format!("sqlite://{}/db", dir.display())).await.unwrap();
        store.migrate().await.unwrap();
        (store, dir)
    }

    /// A migrated store with one tenant in it.
    async fn store_with_owner(name: &str) -> (SqliteStore, std::path::PathBuf, TenantRecord) {
        let (store, dir) = fresh_store(name).await;
        let owner = tenant("owner");
        let mut write = store.write().await.unwrap();
        write.insert_tenant(&owner).await.unwrap();
        write.commit().await.unwrap();
        (store, dir, owner)
    }

    /// The `n`-th click of `owner` on `offer_id`, with values of its own.
    fn click(owner: &TenantRecord, offer_id: uuid::Uuid, n: usize) -> gokart_storage::ClickRecord {
        use chrono::SubsecRound;
        gokart_storage::ClickRecord {
            id: uuid::Uuid::now_v7(),
            tenant_id: owner.id,
            offer_id,
            partner_id: None,
            pub_member_id: format!("member-{n}"),
            pub_click_id: Some(format!("pc-{n}")),
            pub_params: serde_json::Map::from_iter([(
                "pub_sub_1".to_owned(),
                serde_json::Value::String(format!("sub-{n}")),
            )])
            .into(),
            ip: None,
            user_agent: None,
            // As stored: in microseconds.
            created_at: chrono::Utc::now().trunc_subsecs(6),
        }
    }

    /// Writes a tenant, then reads it back: the writer takes writes.
    async fn assert_writes_go_through(store: &SqliteStore) {
        let mut kept = store.write().await.unwrap();
        kept.insert_tenant(&tenant("kept")).await.unwrap();
        kept.commit().await.unwrap();
        let mut read = store.read().await.unwrap();
        assert!(read.tenant_by_slug("kept").await.unwrap().is_some());
    }

    /// A write dropped open leaves nothing behind, and does not hold up the next write.
    #[tokio::test]
    async fn a_write_dropped_open_is_rolled_back_by_the_next() {
        let (store, dir) = fresh_store("lease").await;

        let mut abandoned = store.write().await.unwrap();
        abandoned.insert_tenant(&tenant("abandoned")).await.unwrap();
        drop(abandoned);
        assert_writes_go_through(&store).await;

        let mut read = store.read().await.unwrap();
        assert!(read.tenant_by_slug("abandoned").await.unwrap().is_none());
        drop(read);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A write that fails inside the writer's direct call (here a batch of two clicks, the
    /// second a repeat of the first's id) stores nothing of its batch, and the next write goes
    /// through.
    #[tokio::test]
    async fn a_failed_direct_write_leaves_nothing_and_the_writer_recovers() {
        let (store, dir, owner) = store_with_owner("direct").await;
        let click = click(&owner, uuid::Uuid::now_v7(), 0);
        let repeat =
            gokart_storage::ClickRecord { pub_member_id: "repeat".to_owned(), ..click.clone() };
        assert!(store.insert_clicks(&[&click, &repeat]).await.is_err());
        let mut read = store.read().await.unwrap();
        assert!(read.click(owner.id, click.id).await.unwrap().is_none());
        drop(read);

        assert_writes_go_through(&store).await;
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Many rows go in whole chunks of `Prepared::CHUNK_ROWS` and the rest one by one: 40
    /// clicks in one batch are all stored, each with its own values; a repeat inside a chunk
    /// fails the whole batch and stores nothing, and the next batch is stored.
    #[tokio::test]
    async fn a_batch_in_chunks_stores_every_row_or_none() {
        let (store, dir, owner) = store_with_owner("chunks").await;
        let offer_id = uuid::Uuid::now_v7();
        let click = |n| click(&owner, offer_id, n);
        let clicks: Vec<_> = (0..2 * crate::Prepared::CHUNK_ROWS + 8).map(click).collect();
        store.insert_clicks(&clicks.iter().collect::<Vec<_>>()).await.unwrap();
        let mut read = store.read().await.unwrap();
        for stored in &clicks {
            assert_eq!(read.click(owner.id, stored.id).await.unwrap().as_ref(), Some(stored));
        }
        drop(read);

        let mut again: Vec<_> = (0..crate::Prepared::CHUNK_ROWS).map(click).collect();
        again[5].id = again[2].id;
        assert!(store.insert_clicks(&again.iter().collect::<Vec<_>>()).await.is_err());
        let mut read = store.read().await.unwrap();
        for (n, refused) in again.iter().enumerate() {
            assert!(read.click(owner.id, refused.id).await.unwrap().is_none(), "click {n}");
        }
        drop(read);

        // The failed chunk ended its whole transaction (`OR ROLLBACK`); the writer's next one
        // starts clean and stores its rows.
        let next: Vec<_> = (0..crate::Prepared::CHUNK_ROWS + 1).map(click).collect();
        store.insert_clicks(&next.iter().collect::<Vec<_>>()).await.unwrap();
        let mut read = store.read().await.unwrap();
        for stored in &next {
            assert_eq!(read.click(owner.id, stored.id).await.unwrap().as_ref(), Some(stored));
        }
        drop(read);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Migration 0008 rebuilds the hot tables without foreign keys: a database migrated up to
    /// 0007, with a row in each, keeps every row, and the unique backstop and the indexes are
    /// still there. Run with foreign keys on, as the store runs it.
    #[tokio::test]
    async fn the_hot_tables_rebuild_keeps_their_rows() {
        use sqlx::{sqlite::SqliteConnectOptions, ConnectOptions, Connection};
        let dir = std::env::temp_dir().join(format!("gokart-rebuild-{}", uuid::Uuid::now_v7()));
        let earlier = dir.join("migrations");
        std::fs::create_dir_all(&earlier).unwrap();
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(&all).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.as_str() < "0008" {
                std::fs::copy(&path, earlier.join(&name)).unwrap();
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(dir.join("db"))
            .create_if_missing(true)
            .foreign_keys(true);
        let mut connection = options.connect().await.unwrap();
        let up_to_0007 = sqlx::migrate::Migrator::new(earlier.as_path()).await.unwrap();
        up_to_0007.run_direct(&mut connection).await.unwrap();
        let rows = [
            "INSERT INTO tenants VALUES ('t', 'slug', 'Advertiser', 'T', 'USD', 'whsec', 0)",
            "INSERT INTO offers (id, tenant_id, status, name, offer_type, tracking_system, spec,
                                 created_at, updated_at)
             VALUES ('o', 't', 'Active', 'O', 'SingleEvent', 'Adjust', '{}', 0, 0)",
            "INSERT INTO clicks VALUES ('k', 't', 'o', NULL, 'm', NULL, '{}', NULL, NULL, 1)",
            "INSERT INTO conversions VALUES ('c', 't', 'o', 'k', NULL, 'm', 'Success', NULL, 2, 2)",
            "INSERT INTO conversion_events VALUES ('e', 't', 'c', 'o', 'k', NULL, 'm', 'Install',
             'Install', 1, '', 'Success', NULL, TRUE, 10, 5, NULL, NULL, 'x', '{}', 3, NULL, 3, 3)",
            "INSERT INTO postback_log VALUES ('l', 't', 4, 'GET', '{}', 200, 'Success', NULL, 'k',
             'c', 'e')",
        ];
        for row in rows {
            sqlx::query(row).execute(&mut connection).await.unwrap();
        }

        crate::MIGRATOR.run_direct(&mut connection).await.unwrap();

        for table in ["clicks", "conversions", "conversion_events", "postback_log"] {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let count: i64 = sqlx::query_scalar(&sql).fetch_one(&mut connection).await.unwrap();
            assert_eq!(count, 1, "{table}");
            let pragma = format!("PRAGMA foreign_key_list({table})");
            let keys = sqlx::query(&pragma).fetch_all(&mut connection).await.unwrap();
            assert!(keys.is_empty(), "{table} still declares foreign keys");
        }
        let twin = "INSERT INTO conversion_events SELECT 'e2', tenant_id, conversion_id, offer_id,
                      click_id, partner_id, pub_member_id, event_id, event_name, sequence_number,
                      dedup_key, status, rejection_reason, counted, revenue, reward, amount,
                      currency, transaction_id, params, completed_at, pending_until, created_at,
                      updated_at
                    FROM conversion_events";
        assert!(sqlx::query(twin).execute(&mut connection).await.is_err(), "the backstop is gone");
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap();
        for index in [
            "clicks_by_offer",
            "conversion_events_by_member",
            "conversion_events_counted",
            "conversion_events_due",
            "conversions_by_offer",
            "conversions_by_status",
            "conversions_by_time",
            "postback_log_by_time",
        ] {
            assert!(indexes.iter().any(|name| name == index), "{index} missing: {indexes:?}");
        }
        connection.close().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The checkpointer's WAL flusher finds the WAL beside the database once a write has made
    /// it (before, it has nothing to flush and fails nothing), and the store writes on beside it.
    #[tokio::test]
    async fn the_wal_flusher_keeps_the_wal_once_it_exists() {
        let dir = std::env::temp_dir().join(format!("gokart-flush-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut flusher = super::WalFlusher::beside(&dir.join("db"));
        assert_eq!(flusher.path, dir.join("db-wal"));
        flusher.flush();
        assert!(flusher.file.is_none());
        let store = SqliteStore::connect(&format!("sqlite://{}/db", dir.display())).await.unwrap();
        store.migrate().await.unwrap();
        assert_writes_go_through(&store).await;
        flusher.flush();
        assert!(flusher.file.is_some(), "the flusher opens the WAL the first write created");
        let mut read = store.read().await.unwrap();
        assert!(read.tenant_by_slug("kept").await.unwrap().is_some());
        drop(read);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The checkpointer's sync goes through SQLite's own handle for the database file (it
    /// finds one, and the sync succeeds), and the store writes on beside it.
    #[tokio::test]
    async fn the_checkpointer_syncs_through_sqlites_own_file() {
        let (store, dir) = fresh_store("sync").await;
        let checkpoints = super::checkpoint_connection(&dir.join("db")).unwrap();
        super::sync_database_file(&checkpoints).unwrap();
        assert_writes_go_through(&store).await;
        drop(checkpoints);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A unique violation in a direct statement is a conflict, as it is through sqlx: the
    /// engine decides a batch's jobs again on a conflict.
    #[test]
    fn a_direct_unique_violation_is_a_conflict() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY); INSERT INTO t VALUES ('a')")
            .unwrap();
        let again = connection.execute("INSERT INTO t VALUES ('a')", []).unwrap_err();
        assert!(matches!(
            crate::map_direct_error(again),
            gokart_storage::StorageError::Conflict(_)
        ));
    }
}
