//! Clicks, conversions, conversion events and the postback event log.

use chrono::{DateTime, Utc};
use gokart_domain::{json::JsonObject, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Page, PageRequest, Result};

/// A click on a partner tracking link, recorded before the redirect is answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ClickRecord {
    /// The `gk_click_id`.
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub offer_id: Uuid,
    /// `None` for clicks on an unshared offer (the tenant's own tests).
    pub partner_id: Option<Uuid>,
    /// `pub_member_id`, or `pub_click_id` when no member id was given.
    pub pub_member_id: String,
    pub pub_click_id: Option<String>,
    /// Every `pub_*` parameter given, by name (read back, parsed only when asked for).
    pub pub_params: JsonObject,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl ClickRecord {
    pub fn pub_param(&self, name: &str) -> Option<&str> {
        self.pub_params.get(name).and_then(|v| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConversionStatus {
    Pending,
    Success,
    Rejected,
}

impl ConversionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversionStatus::Pending => "Pending",
            ConversionStatus::Success => "Success",
            ConversionStatus::Rejected => "Rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Pending" => Some(ConversionStatus::Pending),
            "Success" => Some(ConversionStatus::Success),
            "Rejected" => Some(ConversionStatus::Rejected),
            _ => None,
        }
    }
}

/// One conversion per click (and so per offer).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub offer_id: Uuid,
    pub click_id: Uuid,
    pub partner_id: Option<Uuid>,
    pub pub_member_id: String,
    /// The status of the conversion as a whole (see the engine for how it follows its events).
    pub status: ConversionStatus,
    pub rejection_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One completed event of a conversion (the only one, for a SingleEvent offer).
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionEventRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub conversion_id: Uuid,
    pub offer_id: Uuid,
    pub click_id: Uuid,
    pub partner_id: Option<Uuid>,
    pub pub_member_id: String,
    /// The offer's event id (empty for a SingleEvent offer).
    pub event_id: String,
    pub event_name: String,
    pub sequence_number: Option<u32>,
    /// What makes a repeat of a repeatable event distinct: empty for non-repeatable events, else
    /// the MMP's conversion id or a fingerprint of the request. Unique with (click, event).
    pub dedup_key: String,
    pub status: ConversionStatus,
    pub rejection_reason: Option<String>,
    /// Whether it reserves budget and counts toward caps (`Pending` not held, or `Success`).
    pub counted: bool,
    pub revenue: Money,
    pub reward: Money,
    /// `cnv_amount` as the MMP sent it.
    pub amount: Option<Money>,
    pub currency: Option<String>,
    /// The `{transaction_id}` partners see: one per conversion event, stable across retries.
    pub transaction_id: Uuid,
    /// The postback's parameters as received (the `cnv_*` values and the MMP's raw data).
    pub params: JsonObject,
    pub completed_at: DateTime<Utc>,
    /// When a `Pending` event with a pending time becomes `Success` by itself.
    pub pending_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Every postback received, whatever its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PostbackLogEntry {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub method: String,
    pub params: JsonObject,
    pub http_status: u16,
    /// `Success`, `Pending`, `Rejected`, `Duplicate`, `Unattributed`, or empty for 4xx/5xx.
    pub status: String,
    pub rejection_reason: Option<String>,
    pub click_id: Option<String>,
    pub conversion_id: Option<Uuid>,
    pub conversion_event_id: Option<Uuid>,
}

/// What the conversions list filters on. `from`/`to` bound the conversion's creation time
/// (`userCompletedAt`), both inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionFilter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub offer_id: Option<Uuid>,
    pub status: Option<ConversionStatus>,
    /// A member id (case-insensitive substring) or a click id (exact).
    pub search: Option<String>,
    /// Count at most this many rows past the page (a total above `offset + limit` then means
    /// "more than that"); `None` counts them all, as the API's `totalCount` promises.
    pub count_limit: Option<u64>,
}

/// Which counted conversion events a cap or budget looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountedScope<'a> {
    pub offer_id: Uuid,
    /// One event of a MultiEvent offer; `None` for the whole offer.
    pub event_id: Option<&'a str>,
    /// Completed at or after this time; `None` for all time.
    pub since: Option<DateTime<Utc>>,
}

/// Clicks, conversions, conversion events and the postback log.
#[async_trait::async_trait]
pub trait TrackingTx: Send {
    /// Inserts clicks in one statement (a group commit writes many at once).
    async fn insert_clicks(&mut self, clicks: &[&ClickRecord]) -> Result<()>;
    async fn click(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<ClickRecord>>;
    /// A hint that postbacks for these clicks are about to be decided in this transaction: the
    /// implementation may read the clicks, their conversions and events ahead, in one go.
    async fn prefetch_clicks(&mut self, _tenant_id: Uuid, _click_ids: &[Uuid]) -> Result<()> {
        Ok(())
    }

    async fn insert_conversion(&mut self, conversion: &ConversionRecord) -> Result<()>;
    /// Writes status, rejection reason and `updated_at`.
    async fn update_conversion(&mut self, conversion: &ConversionRecord) -> Result<()>;
    async fn conversion(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<ConversionRecord>>;
    async fn conversion_for_click(
        &mut self,
        tenant_id: Uuid,
        click_id: Uuid,
    ) -> Result<Option<ConversionRecord>>;
    /// Newest first.
    async fn list_conversions(
        &mut self,
        tenant_id: Uuid,
        filter: &ConversionFilter,
        page: PageRequest,
    ) -> Result<Page<ConversionRecord>>;

    /// Refused with `Conflict` when (click, event, dedup key) exists already.
    async fn insert_conversion_event(&mut self, event: &ConversionEventRecord) -> Result<()>;
    /// Writes status, rejection reason, `counted`, `pending_until` and `updated_at`.
    async fn update_conversion_event(&mut self, event: &ConversionEventRecord) -> Result<()>;
    async fn conversion_event(
        &mut self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<ConversionEventRecord>>;
    /// The events of several conversions (a page of the list), each conversion's oldest first.
    async fn events_of_conversions(
        &mut self,
        tenant_id: Uuid,
        conversion_ids: &[Uuid],
    ) -> Result<Vec<ConversionEventRecord>>;
    /// The events of one conversion, oldest first.
    async fn conversion_events(
        &mut self,
        tenant_id: Uuid,
        conversion_id: Uuid,
    ) -> Result<Vec<ConversionEventRecord>>;
    /// How many counted events `scope` holds (caps).
    async fn count_counted_events(
        &mut self,
        tenant_id: Uuid,
        scope: CountedScope<'_>,
    ) -> Result<u64>;
    /// The revenue of the counted events `scope` holds (daily budget).
    async fn counted_revenue(&mut self, tenant_id: Uuid, scope: CountedScope<'_>) -> Result<Money>;
    /// Whether the member has a counted event on the offer through a click other than `click_id`.
    async fn member_counted_elsewhere(
        &mut self,
        tenant_id: Uuid,
        offer_id: Uuid,
        pub_member_id: &str,
        click_id: Uuid,
    ) -> Result<bool>;
    /// `offers.spent += delta` (negative to give budget back).
    async fn add_offer_spent(
        &mut self,
        tenant_id: Uuid,
        offer_id: Uuid,
        delta: Money,
    ) -> Result<()>;
    /// Pending events of every tenant whose pending time ended at or before `now` (a system job,
    /// so not scoped to one tenant), oldest first.
    async fn due_pending_events(
        &mut self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ConversionEventRecord>>;

    async fn insert_postback_log(&mut self, entry: PostbackLogEntry) -> Result<()>;
    /// Newest first; `from` and `to` inclusive.
    async fn postback_log(
        &mut self,
        tenant_id: Uuid,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        page: PageRequest,
    ) -> Result<Page<PostbackLogEntry>>;
}
