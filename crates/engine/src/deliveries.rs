//! The delivery queue as tenants see it (list, detail with attempts, resend) and as workers use
//! it (claim with a lease, complete, release).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use gokart_domain::time::iso;
use gokart_storage::{
    DeliveryAttemptRecord, DeliveryFilter, DeliveryOutcome, DeliveryRecord, Page, PageRequest,
    TenantRecord,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{Engine, EngineError, EngineResult};

impl Engine {
    /// A page of the tenant's deliveries, newest first, each with its attempts.
    pub async fn list_deliveries(
        &self,
        tenant: &TenantRecord,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> EngineResult<Page<Value>> {
        let mut tx = self.store.read().await?;
        let deliveries = tx.list_deliveries(tenant.id, filter, page).await?;
        let ids: Vec<Uuid> = deliveries.items.iter().map(|d| d.id).collect();
        let mut attempts: HashMap<Uuid, Vec<DeliveryAttemptRecord>> = HashMap::new();
        for attempt in tx.delivery_attempts(tenant.id, &ids).await? {
            attempts.entry(attempt.delivery_id).or_default().push(attempt);
        }
        Ok(deliveries.map(|d| {
            let own = attempts.remove(&d.id).unwrap_or_default();
            delivery_json(&d, &own)
        }))
    }

    /// One delivery with its attempts; another tenant's is not found.
    pub async fn delivery_detail(&self, tenant: &TenantRecord, id: Uuid) -> EngineResult<Value> {
        let mut tx = self.store.read().await?;
        let delivery = tx.delivery(tenant.id, id).await?.ok_or(EngineError::NotFound)?;
        let attempts = tx.delivery_attempts(tenant.id, &[id]).await?;
        Ok(delivery_json(&delivery, &attempts))
    }

    /// Queues a Delivered or Failed delivery again, due now, with a fresh retry schedule.
    pub async fn resend_delivery(&self, tenant: &TenantRecord, id: Uuid) -> EngineResult<Value> {
        let mut tx = self.store.write().await?;
        let delivery = tx.delivery(tenant.id, id).await?.ok_or(EngineError::NotFound)?;
        if delivery.status.is_queued() {
            return Err(EngineError::Conflict(format!(
                "the delivery is already queued ({})",
                delivery.status.as_str()
            )));
        }
        tx.requeue_delivery(tenant.id, id, self.now()).await?;
        let requeued = tx.delivery(tenant.id, id).await?.ok_or(EngineError::NotFound)?;
        let attempts = tx.delivery_attempts(tenant.id, &[id]).await?;
        tx.commit().await?;
        self.deliveries_enqueued.notify_waiters();
        Ok(delivery_json(&requeued, &attempts))
    }

    /// Resolves when deliveries have been enqueued or resent (possibly not committed yet).
    /// Create the future before looking for work, so that no wake-up is missed in between.
    pub fn deliveries_enqueued(&self) -> tokio::sync::futures::Notified<'_> {
        self.deliveries_enqueued.notified()
    }

    /// Leases up to `limit` due deliveries of every tenant to `owner` for `lease`.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> EngineResult<Vec<DeliveryRecord>> {
        let mut tx = self.store.write().await?;
        let claimed = tx.claim_deliveries(owner, self.now(), lease, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Records an attempt and the delivery's new state; `false` if `owner` had lost the lease.
    pub async fn complete_delivery(
        &self,
        owner: &str,
        outcome: &DeliveryOutcome,
    ) -> EngineResult<bool> {
        let mut tx = self.store.write().await?;
        let held = tx.complete_delivery(owner, outcome).await?;
        tx.commit().await?;
        Ok(held)
    }

    /// Hands leased deliveries back, untouched, for another worker to take now.
    pub async fn release_deliveries(&self, owner: &str, ids: &[Uuid]) -> EngineResult<()> {
        let mut tx = self.store.write().await?;
        tx.release_deliveries(owner, ids).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The Standard Webhooks secret of a tenant's callbacks.
    pub async fn callback_signing_secret(&self, tenant_id: Uuid) -> EngineResult<String> {
        let mut tx = self.store.read().await?;
        let tenant = tx.tenant_by_id(tenant_id).await?.ok_or(EngineError::NotFound)?;
        Ok(tenant.callback_signing_secret)
    }
}

/// A delivery as the API shows it (PRODUCT.md §9). Headers and body are not shown: the callback
/// header carries the tenant's secret.
pub fn delivery_json(delivery: &DeliveryRecord, attempts: &[DeliveryAttemptRecord]) -> Value {
    let optional_iso = |at: Option<DateTime<Utc>>| at.map(iso);
    json!({
        "id": delivery.id.to_string(),
        "kind": delivery.kind.as_str(),
        "method": delivery.method,
        "url": delivery.url,
        "conversionId": delivery.conversion_id.map(|id| id.to_string()),
        "conversionEventId": delivery.conversion_event_id.map(|id| id.to_string()),
        "transactionId": delivery.transaction_id.map(|id| id.to_string()),
        "status": delivery.status.as_str(),
        "failureReason": delivery.failure_reason,
        "attemptCount": delivery.attempt_count,
        "nextAttemptAt": optional_iso(delivery.next_attempt_at),
        "createdAt": iso(delivery.created_at),
        "updatedAt": iso(delivery.updated_at),
        "attempts": attempts.iter().map(attempt_json).collect::<Vec<_>>(),
    })
}

fn attempt_json(attempt: &DeliveryAttemptRecord) -> Value {
    json!({
        "at": iso(attempt.at),
        "httpStatus": attempt.http_status,
        "latencyMs": attempt.latency_ms,
        "error": attempt.error,
        "responseSnippet": attempt.response_snippet,
    })
}
