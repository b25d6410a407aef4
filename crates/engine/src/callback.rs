//! The tenant conversion callback (PRODUCT.md §9): its settings (Profile → Callback) and the
//! conversion payload a status change queues. The envelope (`id`, `sentAt`) and the Standard
//! Webhooks signature are added by the worker at send time.

use gokart_domain::{time::iso, FieldError};
use gokart_storage::{
    CallbackSettings, ConversionStatus, DeliveryKind, DirectoryKind, TenantRecord, Tx,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::{outbox::QueuedRequest, outbox::StatusChange, Engine, EngineError, EngineResult};

/// Headers gokart sets itself, which a tenant may not configure.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// The body of `PUT /api/v1/profile/callback`. `headerValue` may be left out to keep the stored
/// one (it is write-only, so a client that read the settings does not have it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackInput {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub header_name: Option<String>,
    #[serde(default)]
    pub header_value: Option<String>,
    #[serde(default)]
    pub send_pending: bool,
    #[serde(default)]
    pub send_rejected: bool,
}

/// What `GET /api/v1/profile/callback` answers: never the header value.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackView {
    pub url: Option<String>,
    pub header_name: Option<String>,
    /// Whether a header value is stored (the value itself is write-only).
    pub header_value_set: bool,
    pub send_pending: bool,
    pub send_rejected: bool,
    /// The Standard Webhooks secret that signs every callback.
    pub signing_secret: String,
}

impl CallbackView {
    fn of(tenant: &TenantRecord, settings: Option<CallbackSettings>) -> Self {
        let settings = settings.unwrap_or_else(|| empty_settings(tenant));
        CallbackView {
            url: settings.url,
            header_name: settings.header_name,
            header_value_set: settings.header_value.is_some(),
            send_pending: settings.send_pending,
            send_rejected: settings.send_rejected,
            signing_secret: tenant.callback_signing_secret.clone(),
        }
    }
}

fn empty_settings(tenant: &TenantRecord) -> CallbackSettings {
    CallbackSettings {
        tenant_id: tenant.id,
        url: None,
        header_name: None,
        header_value: None,
        send_pending: false,
        send_rejected: false,
        updated_at: tenant.created_at,
    }
}

impl Engine {
    pub async fn callback_settings(&self, tenant: &TenantRecord) -> EngineResult<CallbackView> {
        let mut tx = self.store.read().await?;
        Ok(CallbackView::of(tenant, tx.callback_settings(tenant.id).await?))
    }

    pub async fn save_callback_settings(
        &self,
        tenant: &TenantRecord,
        input: CallbackInput,
    ) -> EngineResult<CallbackView> {
        let mut tx = self.store.write().await?;
        let stored = tx.callback_settings(tenant.id).await?;
        let settings = checked_settings(tenant, input, stored, self.now())?;
        tx.save_callback_settings(&settings).await?;
        tx.commit().await?;
        Ok(CallbackView::of(tenant, Some(settings)))
    }
}

fn checked_settings(
    tenant: &TenantRecord,
    input: CallbackInput,
    stored: Option<CallbackSettings>,
    now: chrono::DateTime<chrono::Utc>,
) -> EngineResult<CallbackSettings> {
    let mut problems = Vec::new();
    let url = non_empty(input.url);
    if let Some(url) = &url {
        let absolute = url::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !absolute {
            problems
                .push(FieldError::new("url", "an absolute http:// or https:// URL is required"));
        }
    }
    let header_name = non_empty(input.header_name);
    let mut header_value = non_empty(input.header_value);
    if let Some(name) = &header_name {
        if !is_token(name) {
            problems.push(FieldError::new("headerName", "not a valid HTTP header name"));
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            problems.push(FieldError::new("headerName", "gokart sets this header itself"));
        }
        // Write-only: left out, the stored value of the same header stays.
        if header_value.is_none() {
            header_value = stored
                .filter(|s| s.header_name.as_deref() == Some(name.as_str()))
                .and_then(|s| s.header_value);
        }
        match &header_value {
            None => {
                problems.push(FieldError::new("headerValue", "a value for the header is required"))
            }
            Some(value) if !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) => {
                problems.push(FieldError::new("headerValue", "printable ASCII on one line only"))
            }
            Some(_) => {}
        }
    } else if header_value.is_some() {
        problems.push(FieldError::new("headerName", "a header value needs a header name"));
    }
    if !problems.is_empty() {
        return Err(EngineError::Invalid(problems));
    }
    Ok(CallbackSettings {
        tenant_id: tenant.id,
        url,
        header_name: header_name.clone(),
        header_value: header_name.and(header_value),
        send_pending: input.send_pending,
        send_rejected: input.send_rejected,
        updated_at: now,
    })
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// RFC 9110 token characters.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The callback a status change queues, if the tenant wants this status.
pub(crate) async fn request_for(
    tx: &mut dyn Tx,
    change: &StatusChange<'_>,
) -> EngineResult<Option<QueuedRequest>> {
    let Some(settings) = tx.callback_settings(change.tenant.id).await? else {
        return Ok(None);
    };
    let Some(url) = settings.url.clone() else { return Ok(None) };
    let wanted = match change.event.status {
        ConversionStatus::Success => true,
        ConversionStatus::Pending => settings.send_pending,
        ConversionStatus::Rejected => settings.send_rejected,
    };
    if !wanted {
        return Ok(None);
    }
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let (Some(name), Some(value)) = (settings.header_name, settings.header_value) {
        headers.push((name, value));
    }
    let body = conversion_payload(tx, change).await?;
    Ok(Some(QueuedRequest {
        kind: DeliveryKind::Callback,
        method: "POST",
        url,
        headers,
        body: Some(body.to_string()),
    }))
}

/// GoKart's callback `conversion` object (reference gokart.md §3.7), for one conversion event.
async fn conversion_payload(tx: &mut dyn Tx, change: &StatusChange<'_>) -> EngineResult<Value> {
    let (tenant, offer, click, event) = (change.tenant, change.offer, change.click, change.event);
    let partner_id = click.partner_id.or(event.partner_id);
    let partner_name = match partner_id {
        Some(id) => directory_name(tx, tenant, DirectoryKind::Partners, id).await?,
        None => None,
    };
    let advertiser_name = match offer.spec.advertiser_id {
        Some(id) => directory_name(tx, tenant, DirectoryKind::Advertisers, id).await?,
        None => None,
    };
    let param = |name: &str| -> Value {
        match event.params.get(name) {
            Some(Value::String(text)) => Value::String(text.clone()),
            Some(Value::Null) | None => Value::Null,
            Some(other) => Value::String(other.to_string()),
        }
    };
    let pub_param = |name: &str| -> Value { click.pub_param(name).map(Value::from).into() };
    let mut payload = json!({
        "status": event.status.as_str(),
        "rejectionReason": event.rejection_reason,
        "userCompletedAt": iso(event.completed_at),
        "isRewardSent": event.status == ConversionStatus::Success,
        "clickId": click.id.to_string(),
        "conversionId": change.conversion.id.to_string(),
        "conversionEventId": event.id.to_string(),
        "transactionId": event.transaction_id.to_string(),
        "offerId": offer.id.to_string(),
        "offerName": offer.spec.name,
        "offerAdvertiserId": offer.spec.advertiser_id.map(|id| id.to_string()),
        "offerAdvertiserName": advertiser_name,
        "offerCategoryName": offer.spec.categories.first(),
        "eventId": event.event_id,
        "eventName": event.event_name,
        "sequenceNumber": event.sequence_number,
        "rewardPoints": event.reward,
        "revenue": event.revenue,
        "currency": tenant.currency,
        "pubMemberId": click.pub_member_id,
        "pubClickId": click.pub_click_id,
        "pubSessionId": pub_param("pub_session_id"),
        "pubGender": pub_param("pub_gender"),
        "pubAge": pub_param("pub_age"),
        "pubGeoCountry": pub_param("pub_geo_country"),
        "pubGeoState": pub_param("pub_geo_state"),
        "pubPostalCode": pub_param("pub_postal_code"),
        "pubDevice": pub_param("pub_device"),
        "trackSysEventId": param("cnv_event_id"),
        "trackSysConversionId": param("cnv_conversion_id"),
        "trackSysConversionAmount": event.amount,
        "trackSysConversionCurrency": event.currency,
        "trackSysConversionIpAddress": param("cnv_conversion_ip_address"),
        "trackSysConversionEmail": param("cnv_email"),
        "trackSysConversionUserId": param("cnv_user_id"),
        "partnerId": partner_id.map(|id| id.to_string()),
        "partnerName": partner_name,
        "createdAt": iso(event.created_at),
        "clickTime": iso(click.created_at),
    });
    if let Some(object) = payload.as_object_mut() {
        add_numbered(object, "pubSub", 15, |n| pub_param(&format!("pub_sub_{n}")));
        add_numbered(object, "trackSysConversionSub", 5, |n| param(&format!("cnv_sub_{n}")));
    }
    Ok(payload)
}

fn add_numbered(
    object: &mut Map<String, Value>,
    prefix: &str,
    count: u32,
    value: impl Fn(u32) -> Value,
) {
    for n in 1..=count {
        object.insert(format!("{prefix}{n}"), value(n));
    }
}

async fn directory_name(
    tx: &mut dyn Tx,
    tenant: &TenantRecord,
    kind: DirectoryKind,
    id: uuid::Uuid,
) -> EngineResult<Option<String>> {
    Ok(tx.directory_item(tenant.id, kind, id).await?.map(|item| item.name))
}
