//! Postback intake (PRODUCT.md §7): authenticate the MMP's postback, attribute it to its click,
//! decide it, and keep every postback received in the event log. An accepted postback's log
//! entry, conversion and deliveries commit together; nothing is answered 200 before that.

use gokart_domain::params::{ClickIdParam, PostbackParams};
use gokart_storage::{PostbackLogEntry, StorageError, TenantRecord, Tx};
use uuid::Uuid;

use crate::{Engine, EngineError, EngineResult};

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
    /// Handles one postback. `Err(Unavailable)` means nothing was stored (answer 503 so the MMP
    /// sends it again).
    pub async fn receive_postback(
        &self,
        tenant: &TenantRecord,
        postback: &Postback,
    ) -> EngineResult<PostbackAnswer> {
        let signature = postback.params.get("signature").unwrap_or_default();
        if !self.verify_postback_credentials(tenant, &postback.segment, signature).await? {
            return self.log_refusal(tenant, postback, PostbackAnswer::refused(401)).await;
        }
        let click_id = match postback.params.gk_click_id() {
            ClickIdParam::Absent => {
                return self.log_refusal(tenant, postback, PostbackAnswer::ok("Unattributed")).await
            }
            ClickIdParam::Invalid(_) => {
                return self.log_refusal(tenant, postback, PostbackAnswer::refused(404)).await
            }
            ClickIdParam::Valid(id) => id,
        };
        // A unique-index conflict means a concurrent twin got in first: deciding again sees it
        // and answers Duplicate.
        match self.attribute(tenant, postback, click_id).await {
            Err(EngineError::Conflict(_)) => self.attribute(tenant, postback, click_id).await,
            other => other,
        }
    }

    async fn attribute(
        &self,
        tenant: &TenantRecord,
        postback: &Postback,
        click_id: Uuid,
    ) -> EngineResult<PostbackAnswer> {
        let mut tx = self.store.write().await?;
        let Some(click) = tx.click(tenant.id, click_id).await? else {
            let answer = PostbackAnswer::refused(404);
            let logged = match self.log(tx.as_mut(), tenant, postback, &answer).await {
                Ok(()) => tx.commit().await,
                Err(error) => Err(error),
            };
            if let Err(error) = logged {
                tracing::warn!(%error, "postback log not written");
            }
            return Ok(answer);
        };
        let decision = self.decide_postback(tx.as_mut(), tenant, &click, &postback.params).await?;
        let answer = PostbackAnswer {
            http_status: 200,
            status: decision.status,
            rejection_reason: decision.rejection_reason,
            conversion_id: Some(decision.conversion_id),
            conversion_event_id: Some(decision.conversion_event_id),
        };
        self.log(tx.as_mut(), tenant, postback, &answer).await?;
        tx.commit().await?;
        Ok(answer)
    }

    /// Logs a postback that decides nothing. A 401 or 404 is answered even when the log cannot be
    /// written (the MMP must not retry those); an Unattributed 200 is not.
    async fn log_refusal(
        &self,
        tenant: &TenantRecord,
        postback: &Postback,
        answer: PostbackAnswer,
    ) -> EngineResult<PostbackAnswer> {
        let logged = async {
            let mut tx = self.store.write().await?;
            self.log(tx.as_mut(), tenant, postback, &answer).await?;
            tx.commit().await
        };
        match logged.await {
            Ok(()) => Ok(answer),
            Err(error) if answer.http_status != 200 => {
                tracing::warn!(%error, "postback log not written");
                Ok(answer)
            }
            Err(error) => Err(error.into()),
        }
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
        tx.insert_postback_log(&PostbackLogEntry {
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
