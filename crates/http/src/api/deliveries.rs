//! Deliveries and the tenant callback settings (Management token).

use axum::{
    extract::{Path, State},
    response::Response,
    routing::{get, post},
    Router,
};
use gokart_engine::callback::CallbackInput;
use gokart_storage::{DeliveryFilter, DeliveryKind, DeliveryStatus};
use serde::Deserialize;

use crate::{
    api::parse_id, list, ok, ApiError, ApiJson, ApiQuery, AppState, Management, PageQuery,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/deliveries", get(list_deliveries))
        .route("/api/v1/deliveries/{id}", get(show_delivery))
        .route("/api/v1/deliveries/{id}/resend", post(resend_delivery))
        .route("/api/v1/profile/callback", get(show_callback).put(save_callback))
}

#[derive(Debug, Default, Deserialize)]
struct DeliveryQuery {
    status: Option<String>,
    kind: Option<String>,
    conversion_id: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

impl DeliveryQuery {
    fn filter(&self) -> Result<DeliveryFilter, ApiError> {
        let status = match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
                ApiError::invalid("status", "one of Pending, Retrying, Delivered, Failed")
            })?),
        };
        let kind = match self.kind.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(
                DeliveryKind::parse(text)
                    .ok_or_else(|| ApiError::invalid("kind", "one of PartnerPostback, Callback"))?,
            ),
        };
        let conversion_id = match self.conversion_id.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(
                uuid::Uuid::parse_str(text)
                    .map_err(|_| ApiError::invalid("conversion_id", "a conversion id (UUID)"))?,
            ),
        };
        Ok(DeliveryFilter { status, kind, conversion_id })
    }
}

async fn list_deliveries(
    State(state): State<AppState>,
    Management(tenant): Management,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter()?;
    let page = query.page.request()?;
    let deliveries = state.engine.list_deliveries(&tenant, &filter, page).await?;
    Ok(list("Deliveries", deliveries))
}

async fn show_delivery(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let delivery = state.engine.delivery_detail(&tenant, parse_id(&id)?).await?;
    Ok(ok("Delivery", delivery))
}

async fn resend_delivery(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let delivery = state.engine.resend_delivery(&tenant, parse_id(&id)?).await?;
    Ok(ok("Delivery queued again", delivery))
}

async fn show_callback(
    State(state): State<AppState>,
    Management(tenant): Management,
) -> Result<Response, ApiError> {
    Ok(ok("Callback", state.engine.callback_settings(&tenant).await?))
}

async fn save_callback(
    State(state): State<AppState>,
    Management(tenant): Management,
    ApiJson(input): ApiJson<CallbackInput>,
) -> Result<Response, ApiError> {
    Ok(ok("Callback saved", state.engine.save_callback_settings(&tenant, input).await?))
}
