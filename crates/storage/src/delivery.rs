//! Outbound deliveries (partner postbacks and tenant callbacks), their attempts and settings.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Page, PageRequest, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryKind {
    /// A partner's GET postback (global or event-level).
    PartnerPostback,
    /// The tenant's signed POST JSON conversion callback.
    Callback,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::PartnerPostback => "PartnerPostback",
            DeliveryKind::Callback => "Callback",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PartnerPostback" => Some(DeliveryKind::PartnerPostback),
            "Callback" => Some(DeliveryKind::Callback),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryStatus {
    /// Never tried yet (or queued again by a resend).
    Pending,
    /// Tried, failed transiently, due again at `next_attempt_at`.
    Retrying,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "Pending",
            DeliveryStatus::Retrying => "Retrying",
            DeliveryStatus::Delivered => "Delivered",
            DeliveryStatus::Failed => "Failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Pending" => Some(DeliveryStatus::Pending),
            "Retrying" => Some(DeliveryStatus::Retrying),
            "Delivered" => Some(DeliveryStatus::Delivered),
            "Failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }

    /// Whether the worker still has something to do with it.
    pub fn is_queued(self) -> bool {
        matches!(self, DeliveryStatus::Pending | DeliveryStatus::Retrying)
    }
}

/// One queued outbound request and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: DeliveryKind,
    pub conversion_id: Option<Uuid>,
    pub conversion_event_id: Option<Uuid>,
    /// The conversion event's `{transaction_id}`.
    pub transaction_id: Option<Uuid>,
    /// Fully expanded: what is sent.
    pub url: String,
    /// `GET` or `POST`.
    pub method: String,
    /// Extra request headers (the callback's configured header, the content type).
    pub headers: Vec<(String, String)>,
    /// For callbacks: the `conversion` object; the envelope (`id`, `sentAt`) and the signature
    /// are added at send time.
    pub body: Option<String>,
    pub status: DeliveryStatus,
    pub failure_reason: Option<String>,
    pub attempt_count: u32,
    /// When it is due; `None` once Delivered or Failed.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// While a worker holds the job: until when. An expired lease is claimable again.
    pub locked_until: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One send of a delivery, as the attempt log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttemptRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub delivery_id: Uuid,
    pub at: DateTime<Utc>,
    /// `None` when there was no answer (timeout, connection error, refused destination).
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
}

/// What the worker writes back after an attempt: the attempt and the delivery's new state.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOutcome {
    pub attempt: DeliveryAttemptRecord,
    pub status: DeliveryStatus,
    pub failure_reason: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub kind: Option<DeliveryKind>,
    pub conversion_id: Option<Uuid>,
}

/// A partner's event-level postback: fires for one event of one offer shared with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPostback {
    pub offer_id: Uuid,
    /// The offer's event id; empty for a SingleEvent offer.
    #[serde(default)]
    pub event_id: String,
    pub url: String,
}

/// One partner's postback templates.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerPostbackSettings {
    pub tenant_id: Uuid,
    pub partner_id: Uuid,
    pub global_url: Option<String>,
    pub event_postbacks: Vec<EventPostback>,
    pub updated_at: DateTime<Utc>,
}

/// The tenant's conversion callback (Profile → Callback).
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackSettings {
    pub tenant_id: Uuid,
    pub url: Option<String>,
    pub header_name: Option<String>,
    /// Write-only: never shown by the API.
    pub header_value: Option<String>,
    pub send_pending: bool,
    pub send_rejected: bool,
    pub updated_at: DateTime<Utc>,
}

/// The delivery queue, its attempts, and the partner postback and callback settings.
#[async_trait::async_trait]
pub trait DeliveryTx: Send {
    async fn insert_delivery(&mut self, delivery: &DeliveryRecord) -> Result<()>;
    async fn delivery(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<DeliveryRecord>>;
    async fn list_deliveries(
        &mut self,
        tenant_id: Uuid,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliveryRecord>>;
    /// The attempts of these deliveries of the tenant, oldest first.
    async fn delivery_attempts(
        &mut self,
        tenant_id: Uuid,
        delivery_ids: &[Uuid],
    ) -> Result<Vec<DeliveryAttemptRecord>>;

    /// Leases up to `limit` due deliveries (Pending or Retrying, `next_attempt_at <= now`, not
    /// leased or lease expired) to `owner` until `now + lease`, across all tenants. Two claims
    /// never return the same delivery while its lease runs (PostgreSQL: `FOR UPDATE SKIP LOCKED`;
    /// SQLite: the single writer).
    async fn claim_deliveries(
        &mut self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>>;
    /// Records an attempt and the delivery's new state, and ends `owner`'s lease. `false` when
    /// `owner` no longer holds the lease (the attempt is recorded anyway).
    async fn complete_delivery(&mut self, owner: &str, outcome: &DeliveryOutcome) -> Result<bool>;
    /// Gives leased deliveries back untouched (a worker shutting down).
    async fn release_deliveries(&mut self, owner: &str, ids: &[Uuid]) -> Result<()>;
    /// Queues a delivery again, due at `now`, with a fresh retry schedule. `false` if unknown.
    async fn requeue_delivery(
        &mut self,
        tenant_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    async fn partner_postbacks(
        &mut self,
        tenant_id: Uuid,
        partner_id: Uuid,
    ) -> Result<Option<PartnerPostbackSettings>>;
    async fn save_partner_postbacks(&mut self, settings: &PartnerPostbackSettings) -> Result<()>;

    async fn callback_settings(&mut self, tenant_id: Uuid) -> Result<Option<CallbackSettings>>;
    async fn save_callback_settings(&mut self, settings: &CallbackSettings) -> Result<()>;
}
