//! The delivery worker: claims due deliveries with a lease, sends them concurrently through the
//! SSRF-guarded client, records every attempt and schedules retries with [`RetryPolicy`].
//!
//! Several workers (threads or processes) may share one database: a claim leases each job to one
//! worker, and a lease that ran out (its worker died) makes the job claimable again. Time comes
//! from the engine's clock, so tests move it instead of waiting.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::Duration;
use gokart_domain::{
    retry::{AttemptResult, RetryPolicy, Verdict},
    time::iso,
};
use gokart_engine::Engine;
use gokart_storage::{
    DeliveryAttemptRecord, DeliveryKind, DeliveryOutcome, DeliveryRecord, DeliveryStatus,
};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{signing, Attempt, Method, OutboundClient, OutboundRequest};

#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// Sends in flight at once; also the most one claim takes.
    pub concurrency: u32,
    /// How long a claimed job stays with this worker. Far above the client's 10 s timeout, so a
    /// live worker always finishes before its lease runs out.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs without being woken.
    pub poll_interval: StdDuration,
    pub policy: RetryPolicy,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 64,
            lease: Duration::seconds(60),
            poll_interval: StdDuration::from_secs(1),
            policy: RetryPolicy::default(),
        }
    }
}

/// A delivery worker. Cheap to clone; clones share one lease identity.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<Engine>,
    client: OutboundClient,
    config: WorkerConfig,
    /// The lease owner written on claimed rows.
    owner: String,
}

impl Worker {
    pub fn new(engine: Arc<Engine>, client: OutboundClient) -> Self {
        Self::with_config(engine, client, WorkerConfig::default())
    }

    pub fn with_config(engine: Arc<Engine>, client: OutboundClient, config: WorkerConfig) -> Self {
        let owner = format!("worker-{}", Uuid::new_v4());
        Worker { inner: Arc::new(Inner { engine, client, config, owner }) }
    }

    /// Claims one batch of due deliveries, sends them all, records the outcomes, and answers how
    /// many it handled. For tests and tools that step the queue by hand.
    pub async fn run_once(&self) -> usize {
        let jobs = self.claim(self.inner.config.concurrency).await;
        let count = jobs.len();
        let mut sends = JoinSet::new();
        for job in jobs {
            let worker = self.clone();
            sends.spawn(async move { worker.deliver(job).await });
        }
        while sends.join_next().await.is_some() {}
        count
    }

    /// Delivers until `cancel` fires: claims while there is room in flight, sleeps when nothing is
    /// due until woken by an enqueue or the poll interval. On cancel it stops claiming and lets
    /// the sends in flight finish (each is bounded by the client's timeout).
    pub async fn run(&self, cancel: CancellationToken) {
        let engine = self.inner.engine.clone();
        let room = Arc::new(Semaphore::new(self.inner.config.concurrency as usize));
        let mut sends = JoinSet::new();
        tracing::info!(owner = %self.inner.owner, "delivery worker started");
        while !cancel.is_cancelled() {
            while sends.try_join_next().is_some() {}
            // At least one free slot before claiming, so a claim never outruns the sends.
            let first = tokio::select! {
                () = cancel.cancelled() => break,
                permit = room.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let mut permits = vec![first];
            while let Ok(permit) = room.clone().try_acquire_owned() {
                permits.push(permit);
            }
            let wanted = u32::try_from(permits.len()).unwrap_or(u32::MAX);
            // Listen before looking, so an enqueue between the claim and the wait is not missed.
            let woken = engine.deliveries_enqueued();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let jobs = self.claim(wanted).await;
            let claimed_all = jobs.len() as u32 == wanted;
            for (job, permit) in jobs.into_iter().zip(permits.drain(..)) {
                let worker = self.clone();
                sends.spawn(async move {
                    worker.deliver(job).await;
                    drop(permit);
                });
            }
            drop(permits);
            if claimed_all {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = &mut woken => {
                    // The enqueuer may not have committed yet: look again shortly.
                    tokio::time::sleep(StdDuration::from_millis(20)).await;
                }
                () = tokio::time::sleep(self.inner.config.poll_interval) => {}
            }
        }
        tracing::info!(in_flight = sends.len(), "delivery worker stopping; finishing sends");
        while sends.join_next().await.is_some() {}
    }

    async fn claim(&self, limit: u32) -> Vec<DeliveryRecord> {
        let inner = &self.inner;
        match inner.engine.claim_deliveries(&inner.owner, limit, inner.config.lease).await {
            Ok(jobs) => jobs,
            Err(error) => {
                // The database is away; the poll interval paces the retries.
                tracing::warn!(%error, "claiming deliveries failed");
                tokio::time::sleep(inner.config.poll_interval).await;
                Vec::new()
            }
        }
    }

    /// Sends one claimed job and writes back the attempt and the verdict.
    async fn deliver(&self, job: DeliveryRecord) {
        let engine = &self.inner.engine;
        let started = engine.now();
        let attempt = match self.request(&job, started).await {
            Ok(request) => self.inner.client.send(request).await,
            Err(reason) => Attempt {
                result: AttemptResult::Refused,
                latency_ms: 0,
                error: Some(reason),
                response_snippet: None,
            },
        };
        let outcome = self.outcome(&job, started, attempt);
        match engine.complete_delivery(&self.inner.owner, &outcome).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(delivery = %job.id, "lease lost before the attempt was recorded")
            }
            // The lease runs out and the job is tried again: at least once, never lost.
            Err(error) => {
                tracing::error!(delivery = %job.id, %error, "recording an attempt failed")
            }
        }
    }

    /// The HTTP request of a job; callbacks get their envelope and signature now, at send time.
    async fn request(
        &self,
        job: &DeliveryRecord,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<OutboundRequest, String> {
        let method = if job.method == "POST" { Method::Post } else { Method::Get };
        let mut headers = job.headers.clone();
        let body = match job.kind {
            DeliveryKind::PartnerPostback => job.body.clone().map(String::into_bytes),
            DeliveryKind::Callback => {
                let conversion = job.body.as_deref().unwrap_or("null");
                let body = format!(
                    r#"{{"id":"{}","sentAt":"{}","conversion":{conversion}}}"#,
                    job.id,
                    iso(now)
                )
                .into_bytes();
                let secret = self
                    .inner
                    .engine
                    .callback_signing_secret(job.tenant_id)
                    .await
                    .map_err(|e| format!("reading the signing secret: {e}"))?;
                let id = job.id.to_string();
                let timestamp = now.timestamp();
                let signature = signing::sign(&secret, &id, timestamp, &body)
                    .map_err(|e| format!("signing: {e}"))?;
                headers.push(("webhook-id".into(), id));
                headers.push(("webhook-timestamp".into(), timestamp.to_string()));
                headers.push(("webhook-signature".into(), signature));
                Some(body)
            }
        };
        Ok(OutboundRequest { method, url: job.url.clone(), headers, body })
    }

    fn outcome(
        &self,
        job: &DeliveryRecord,
        started: chrono::DateTime<chrono::Utc>,
        attempt: Attempt,
    ) -> DeliveryOutcome {
        let first_attempt = job.first_attempt_at.unwrap_or(started);
        let verdict = self.inner.config.policy.decide(
            &attempt.result,
            job.attempt_count.saturating_add(1),
            started - first_attempt,
            rand::random::<f64>(),
        );
        let finished = self.inner.engine.now();
        let (status, failure_reason, next_attempt_at) = match verdict {
            Verdict::Delivered => (DeliveryStatus::Delivered, None, None),
            Verdict::RetryAfter(delay) => {
                (DeliveryStatus::Retrying, Some(last_problem(&attempt)), Some(finished + delay))
            }
            Verdict::Failed(reason) => (DeliveryStatus::Failed, Some(reason), None),
        };
        DeliveryOutcome {
            attempt: DeliveryAttemptRecord {
                id: Uuid::now_v7(),
                tenant_id: job.tenant_id,
                delivery_id: job.id,
                at: started,
                http_status: match attempt.result {
                    AttemptResult::Status(status) => Some(status),
                    _ => None,
                },
                latency_ms: attempt.latency_ms,
                error: attempt.error,
                response_snippet: attempt.response_snippet,
            },
            status,
            failure_reason,
            next_attempt_at,
        }
    }
}

/// What went wrong with a retried attempt, for `failureReason` while it waits.
fn last_problem(attempt: &Attempt) -> String {
    match (&attempt.result, &attempt.error) {
        (AttemptResult::Status(status), _) => format!("HTTP {status}; retrying"),
        (_, Some(error)) => format!("{error}; retrying"),
        (result, None) => format!("{result:?}; retrying"),
    }
}
