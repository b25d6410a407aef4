//! Postback intake (PRODUCT.md §7): authenticate the MMP's postback, attribute it to its click,
//! decide it, and keep every postback received in the event log. A postback's log entry,
//! conversion and deliveries commit together (in a group commit, `group_commit.rs`); nothing is
//! answered before that.

use gokart_domain::params::{ClickIdParam, PostbackParams};
use gokart_storage::{PostbackLogEntry, StorageError, TenantRecord, Tx};
use uuid::Uuid;

use crate::{Engine, EngineResult};

/// A postback as the intake route received it.
#[derive(Debug, Clone)]
pub struct Postback {
    /// `<a>/<b>/<c>` from the path, without outer slashes.
    pub segment: String,
    pub method: String,
    pub params: PostbackParams,
}

/// The answer to a postback: the HTTP status and, for 200, `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct PostbackAnswer {
    pub http_status: u16,
    /// `Success`, `Pending`, `Rejected`, `Duplicate`, `Unattributed`; empty for 401/404.
    pub status: &'static str,
    pub rejection_reason: Option<String>,
    pub conversion_id: Option<Uuid>,
    pub conversion_event_id: Option<Uuid>,
}

impl PostbackAnswer {
    fn refused(http_status: u16) -> Self {
        PostbackAnswer {
            http_status,
            status: "",
            rejection_reason: None,
            conversion_id: None,
            conversion_event_id: None,
        }
    }

    fn ok(status: &'static str) -> Self {
        PostbackAnswer { status, ..PostbackAnswer::refused(200) }
    }
}

impl Engine {
    /// Handles one postback: it is decided and logged in a group commit, and answered once that
    /// has committed. `Err(Unavailable)` means nothing was stored (answer 503 so the MMP sends
    /// it again).
    pub async fn receive_postback(
        &self,
        tenant: TenantRecord,
        postback: Postback,
    ) -> EngineResult<PostbackAnswer> {
        self.write_postback(tenant, postback).await
    }

    /// Whether the postback carries one of the tenant's valid credential pairs.
    pub(crate) async fn authentic(
        &self,
        tx: &mut dyn Tx,
        tenant: &TenantRecord,
        postback: &Postback,
    ) -> EngineResult<bool> {
        let signature = postback.params.get("signature").unwrap_or_default();
        self.credentials_match(tx, tenant, &postback.segment, signature).await
    }

    /// Attributes, decides and logs one postback inside `tx`, `authentic` saying whether its
    /// credentials matched. Also answers the offer whose budget the decision spent, for the
    /// click path's cache to forget.
    pub(crate) async fn postback_in(
        &self,
        tx: &mut dyn Tx,
        tenant: &TenantRecord,
        postback: &Postback,
        authentic: bool,
    ) -> EngineResult<(PostbackAnswer, Option<Uuid>)> {
        let answer = if !authentic {
            PostbackAnswer::refused(401)
        } else {
            match postback.params.gk_click_id() {
                ClickIdParam::Absent => PostbackAnswer::ok("Unattributed"),
                ClickIdParam::Invalid(_) => PostbackAnswer::refused(404),
                ClickIdParam::Valid(click_id) => match tx.click(tenant.id, click_id).await? {
                    None => PostbackAnswer::refused(404),
                    Some(click) => {
                        let decision =
                            self.decide_postback(tx, tenant, &click, &postback.params).await?;
                        let answer = PostbackAnswer {
                            http_status: 200,
                            status: decision.status,
                            rejection_reason: decision.rejection_reason,
                            conversion_id: Some(decision.conversion_id),
                            conversion_event_id: Some(decision.conversion_event_id),
                        };
                        self.log(tx, tenant, postback, &answer).await?;
                        let budget_spent = decision.budget_spent.then_some(click.offer_id);
                        return Ok((answer, budget_spent));
                    }
                },
            }
        };
        self.log(tx, tenant, postback, &answer).await?;
        Ok((answer, None))
    }

    async fn log(
        &self,
        tx: &mut dyn Tx,
        tenant: &TenantRecord,
        postback: &Postback,
        answer: &PostbackAnswer,
    ) -> Result<(), StorageError> {
        let click_id = match postback.params.gk_click_id() {
            ClickIdParam::Absent => None,
            ClickIdParam::Invalid(text) => {
                Some(crate::conversions::storable(text).chars().take(64).collect())
            }
            ClickIdParam::Valid(id) => Some(id.to_string()),
        };
        tx.insert_postback_log(PostbackLogEntry {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            received_at: self.now(),
            method: postback.method.clone(),
            params: postback.params.raw(),
            http_status: answer.http_status,
            status: answer.status.to_owned(),
            rejection_reason: answer.rejection_reason.clone(),
            click_id,
            conversion_id: answer.conversion_id,
            conversion_event_id: answer.conversion_event_id,
        })
        .await
    }

    /// The postback event log, newest first.
    pub async fn postback_log(
        &self,
        tenant: &TenantRecord,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
        page: gokart_storage::PageRequest,
    ) -> EngineResult<gokart_storage::Page<PostbackLogEntry>> {
        let mut tx = self.store.read().await?;
        Ok(tx.postback_log(tenant.id, from, to, page).await?)
    }
}

/// A log entry as `GET /api/v1/postback-log` shows it.
pub fn log_entry_json(entry: &PostbackLogEntry) -> serde_json::Value {
    serde_json::json!({
        "id": entry.id,
        "receivedAt": gokart_domain::time::iso(entry.received_at),
        "method": entry.method,
        "params": entry.params,
        "httpStatus": entry.http_status,
        "status": if entry.status.is_empty() { None } else { Some(&entry.status) },
        "rejectionReason": entry.rejection_reason,
        "clickId": entry.click_id,
        "conversionId": entry.conversion_id,
        "conversionEventId": entry.conversion_event_id,
    })
}
