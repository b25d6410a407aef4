//! Group commit for the hot paths: clicks and postbacks that arrive together are written in one
//! transaction, and each is answered only after that transaction commits.
//!
//! A writer task takes whatever is queued (up to [`MAX_BATCH`]), writes the clicks with a single
//! multi-row INSERT, decides the postbacks one after another, and commits once. PostgreSQL's
//! writers run on a thread and a runtime of their own (`on_a_thread_of_their_own`). A commit
//! costs an fsync on PostgreSQL and a WAL append on SQLite, so sharing it is most of the gain;
//! the single writer also means postbacks never wait on each other's row locks.
//!
//! If anything in a batch fails, the batch is rolled back and every job is run again in a
//! transaction of its own, so one bad job costs the others a retry, never their answer.

use std::{
    collections::BTreeMap,
    sync::{Arc, Weak},
};

use gokart_domain::params::ClickIdParam;

use gokart_storage::{Backend, ClickRecord, Store, TenantRecord};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    intake::{Postback, PostbackAnswer},
    Engine, EngineError, EngineResult,
};

/// Most jobs in one transaction: enough to share a commit widely, small enough that the first
/// job of a batch does not wait long for the last.
pub const MAX_BATCH: usize = 256;
/// Most times the writer lets other tasks run to gather more jobs before it writes a batch; it
/// stops at the first round that brings none.
const GATHER_ROUNDS: usize = 16;
/// Jobs waiting beyond this make callers wait to queue (backpressure instead of memory growth).
const QUEUE_DEPTH: usize = 4096;

/// A write the hot paths ask for.
pub(crate) enum Write {
    Click(ClickRecord),
    Postback(Box<(TenantRecord, Postback)>),
}

enum Reply {
    Click(oneshot::Sender<EngineResult<()>>),
    Postback(oneshot::Sender<EngineResult<PostbackAnswer>>),
}

enum Outcome {
    Click,
    Postback(PostbackAnswer),
}

struct Job {
    write: Write,
    reply: Reply,
}

/// The queue in front of the writer tasks, started on first use.
#[derive(Default)]
pub(crate) struct WriteQueue {
    sender: std::sync::OnceLock<mpsc::Sender<Job>>,
}

impl WriteQueue {
    fn sender(&self, engine: &Weak<Engine>, store: &Arc<dyn Store>) -> &mpsc::Sender<Job> {
        self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
            let (engine, store) = (engine.clone(), store.clone());
            if !on_a_thread_of_their_own(store.backend()) {
                spawn_writers(&engine, &store, receiver);
                return sender;
            }
            let started = std::thread::Builder::new()
                .name("gokart-writer".into())
                .spawn(move || write_forever(engine, store, receiver));
            if let Err(error) = started {
                // The receiver is gone with the closure: every write is answered 503.
                tracing::error!(%error, "could not start the writer thread");
            }
            sender
        })
    }
}

/// Where the writers run: PostgreSQL's on a thread and a runtime of their own
/// (`write_forever`). Under load the request handlers' runtime has hundreds of tasks queued; a
/// writer among them waited its turn after every answer from the database, while holding the
/// locks of the offers its batch pays for, which every other batch of those offers waits on.
/// SQLite's among the handlers' tasks: its writer waits for no socket (its statements run on
/// the writer's own thread of the moment, `Writer::run`), and on a thread of its own it took
/// batches of a few clicks and made the postbacks' 99th percentile worse
/// (docs/decisions/performance.md).
fn on_a_thread_of_their_own(backend: Backend) -> bool {
    backend == Backend::Postgres
}

/// The writers, on a thread and a runtime of their own, until the engine is gone.
fn write_forever(engine: Weak<Engine>, store: Arc<dyn Store>, queue: mpsc::Receiver<Job>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return tracing::error!(%error, "could not start the writer runtime"),
    };
    runtime.block_on(async move {
        for task in spawn_writers(&engine, &store, queue) {
            let _ = task.await;
        }
    });
}

/// Starts the writer tasks on the current runtime, taking turns at `queue`, with the store as
/// this runtime uses it (`Store::on_this_runtime`: on PostgreSQL, connections of their own).
fn spawn_writers(
    engine: &Weak<Engine>,
    store: &Arc<dyn Store>,
    queue: mpsc::Receiver<Job>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let count = writers(store.backend());
    let store = store.clone().on_this_runtime(count as u32);
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    (0..count).map(|_| tokio::spawn(run(engine.clone(), store.clone(), queue.clone()))).collect()
}

/// SQLite has one writer connection. On PostgreSQL a second writer builds the next batch while
/// the first waits for its commit's fsync; batches that lock the same offer still go one after
/// the other, and a deadlock (two batches, two offers, opposite order) fails one batch, whose
/// jobs are then written one by one.
fn writers(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 2,
    }
}

/// Takes batches off the queue until the engine is gone.
async fn run(
    engine: Weak<Engine>,
    store: Arc<dyn Store>,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut queue = queue.lock().await;
            if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
            // Let requests that are already being read join this batch: under load, answers
            // go out together and the next requests come back together, and a batch of the
            // first two or three would make the rest wait a whole round. Idle, this costs a
            // few microseconds.
            for _ in 0..GATHER_ROUNDS {
                tokio::task::yield_now().await;
                let before = batch.len();
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                if batch.len() == before {
                    break; // nothing more is on its way
                }
            }
        }
        let Some(engine) = engine.upgrade() else { return };
        engine.write_batch(&*store, std::mem::take(&mut batch)).await;
    }
}

impl Engine {
    /// Records a click durably (returns once its transaction has committed).
    pub(crate) async fn write_click(&self, click: ClickRecord) -> EngineResult<()> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job { write: Write::Click(click), reply: Reply::Click(reply) }).await?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Decides and logs a postback durably.
    pub(crate) async fn write_postback(
        &self,
        tenant: TenantRecord,
        postback: Postback,
    ) -> EngineResult<PostbackAnswer> {
        let (reply, answer) = oneshot::channel();
        let write = Write::Postback(Box::new((tenant, postback)));
        self.submit(Job { write, reply: Reply::Postback(reply) }).await?;
        answer.await.map_err(|_| writer_gone())?
    }

    async fn submit(&self, job: Job) -> EngineResult<()> {
        let sender = self.writes.sender(&self.me, &self.store);
        sender.send(job).await.map_err(|_| writer_gone())
    }

    async fn write_batch(self: Arc<Self>, store: &dyn Store, jobs: Vec<Job>) {
        if jobs.len() > 1 {
            let writes: Vec<&Write> = jobs.iter().map(|job| &job.write).collect();
            match self.write_together(store, &writes).await {
                Ok(outcomes) => {
                    for (job, outcome) in jobs.into_iter().zip(outcomes) {
                        answer(job.reply, Ok(outcome));
                    }
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, "batch rolled back; writing its jobs one by one")
                }
            }
        }
        for job in jobs {
            let mut outcome = self.write_together(store, &[&job.write]).await;
            if matches!(outcome, Err(EngineError::Conflict(_))) {
                // A concurrent twin (another process) got in first: deciding again sees it.
                outcome = self.write_together(store, &[&job.write]).await;
            }
            answer(job.reply, outcome.map(|mut outcomes| outcomes.remove(0)));
        }
    }

    /// Writes `writes` in one transaction; an error means nothing of them was stored.
    async fn write_together(
        &self,
        store: &dyn Store,
        writes: &[&Write],
    ) -> EngineResult<Vec<Outcome>> {
        let clicks: Vec<&ClickRecord> = writes
            .iter()
            .filter_map(|write| match write {
                Write::Click(click) => Some(click),
                Write::Postback(_) => None,
            })
            .collect();
        if clicks.len() == writes.len() {
            // Only clicks: one atomic statement, no transaction around it (one round trip).
            store.insert_clicks(&clicks).await?;
            return Ok(writes.iter().map(|_| Outcome::Click).collect());
        }
        let mut tx = store.write().await?;
        if !clicks.is_empty() {
            tx.insert_clicks(&clicks).await?;
        }
        // The postbacks' clicks with their conversions, and their tenants' credentials, read
        // ahead in a few round trips for all (an unauthentic postback's click is read for
        // nothing, and not used). By tenant in id order: the offer locks are taken in the same
        // order by every batch.
        let mut clicks_of_tenant: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for write in writes {
            if let Write::Postback(job) = write {
                let (tenant, postback) = &**job;
                if let ClickIdParam::Valid(id) = postback.params.gk_click_id() {
                    clicks_of_tenant.entry(tenant.id).or_default().push(id);
                }
            }
        }
        for (tenant_id, click_ids) in clicks_of_tenant {
            tx.prefetch_clicks(tenant_id, &click_ids).await?;
        }
        let mut authentic = Vec::with_capacity(writes.len());
        for write in writes {
            authentic.push(match write {
                Write::Postback(job) => {
                    let (tenant, postback) = &**job;
                    self.authentic(tx.as_mut(), tenant, postback).await?
                }
                Write::Click(_) => false,
            });
        }
        let mut outcomes = Vec::with_capacity(writes.len());
        let mut spent_offers = Vec::new();
        for (write, authentic) in writes.iter().zip(authentic) {
            outcomes.push(match write {
                Write::Click(_) => Outcome::Click,
                Write::Postback(job) => {
                    let (tenant, postback) = &**job;
                    let (answer, budget_spent) =
                        self.postback_in(tx.as_mut(), tenant, postback, authentic).await?;
                    spent_offers.extend(budget_spent.map(|offer| (tenant.id, offer)));
                    Outcome::Postback(answer)
                }
            });
        }
        tx.commit().await?;
        for (tenant_id, offer_id) in spent_offers {
            self.click_offers.forget(tenant_id, offer_id);
        }
        Ok(outcomes)
    }
}

fn answer(reply: Reply, outcome: EngineResult<Outcome>) {
    // A caller that went away (client disconnected) no longer needs its answer. Outcomes are
    // made in the order of their jobs, so a mismatch is a bug, answered as a retryable error.
    match (reply, outcome) {
        (Reply::Click(reply), Ok(Outcome::Click)) => drop(reply.send(Ok(()))),
        (Reply::Postback(reply), Ok(Outcome::Postback(answer))) => drop(reply.send(Ok(answer))),
        (Reply::Click(reply), Err(error)) => drop(reply.send(Err(error))),
        (Reply::Postback(reply), Err(error)) => drop(reply.send(Err(error))),
        (Reply::Click(reply), Ok(_)) => drop(reply.send(Err(mismatch()))),
        (Reply::Postback(reply), Ok(_)) => drop(reply.send(Err(mismatch()))),
    }
}

fn mismatch() -> EngineError {
    EngineError::Unavailable("write outcome does not match its job".into())
}

fn writer_gone() -> EngineError {
    EngineError::Unavailable("the writer stopped".into())
}
