//! What a conversion status change triggers: partner postbacks and the tenant callback, enqueued
//! in the same transaction as the decision, so a committed decision always has its deliveries.

use gokart_domain::offer::Offer;
use gokart_storage::{
    ClickRecord, ConversionEventRecord, ConversionRecord, ConversionStatus, DeliveryKind,
    DeliveryRecord, DeliveryStatus, TenantRecord, Tx,
};
use uuid::Uuid;

use crate::{callback, partner_postbacks, Engine, EngineResult};

/// A conversion event that was just created or changed status.
pub struct StatusChange<'a> {
    pub tenant: &'a TenantRecord,
    pub offer: &'a Offer,
    pub click: &'a ClickRecord,
    pub conversion: &'a ConversionRecord,
    /// The event with its new status.
    pub event: &'a ConversionEventRecord,
    /// `None` when the event is new.
    pub previous: Option<ConversionStatus>,
}

impl StatusChange<'_> {
    /// Whether the status is new (a fresh event, or one whose status really changed).
    pub fn is_new_status(&self) -> bool {
        self.previous != Some(self.event.status)
    }
}

impl Engine {
    /// Enqueues the deliveries a status change triggers, inside the caller's transaction:
    /// the partner's postbacks (global and event-level) and the tenant's callback. Workers are
    /// woken; a worker that looks before the caller commits finds the jobs on its next poll.
    pub async fn enqueue_deliveries(
        &self,
        tx: &mut dyn Tx,
        change: &StatusChange<'_>,
    ) -> EngineResult<()> {
        if !change.is_new_status() {
            return Ok(());
        }
        let now = self.now();
        let mut queued = 0;
        for request in partner_postbacks::requests_for(tx, change).await? {
            tx.insert_delivery(&new_delivery(change, request, now)).await?;
            queued += 1;
        }
        if let Some(request) = callback::request_for(tx, change).await? {
            tx.insert_delivery(&new_delivery(change, request, now)).await?;
            queued += 1;
        }
        if queued > 0 {
            self.deliveries_enqueued.notify_waiters();
        }
        Ok(())
    }
}

/// One request a status change asks to send.
pub(crate) struct QueuedRequest {
    pub kind: DeliveryKind,
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

fn new_delivery(
    change: &StatusChange<'_>,
    request: QueuedRequest,
    now: chrono::DateTime<chrono::Utc>,
) -> DeliveryRecord {
    DeliveryRecord {
        // Time-ordered, as the hot paths' other ids: each new row goes at the end of the
        // primary key's index instead of into a random page of it (a page written per row).
        id: Uuid::now_v7(),
        tenant_id: change.tenant.id,
        kind: request.kind,
        conversion_id: Some(change.conversion.id),
        conversion_event_id: Some(change.event.id),
        transaction_id: Some(change.event.transaction_id),
        url: request.url,
        method: request.method.to_owned(),
        headers: request.headers,
        body: request.body,
        status: DeliveryStatus::Pending,
        failure_reason: None,
        attempt_count: 0,
        next_attempt_at: Some(now),
        locked_until: None,
        lease_owner: None,
        first_attempt_at: None,
        created_at: now,
        updated_at: now,
    }
}
