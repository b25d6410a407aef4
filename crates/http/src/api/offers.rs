//! Offers: `/api/v1/sdk-offer-management/...` for the tenant (Management token).

use axum::{
    body::Bytes,
    extract::{Path, State},
    response::Response,
    routing::{get, patch, post},
    Router,
};
use gokart_domain::offer::{OfferSpec, OfferStatus, TrackingSystem};
use gokart_engine::offers::merge_patch;
use gokart_storage::{OfferFilter, TenantRecord};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{
    api::parse_id, body::parse_json, list, no_content, ok, ApiError, ApiJson, ApiQuery, AppState,
    Management, PageQuery,
};

const BASE: &str = "/api/v1/sdk-offer-management";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/{{product}}/offers"), get(list_offers).post(create_offer))
        .route(&format!("{BASE}/{{product}}/offers/{{id}}"), get(show_offer).put(update_offer))
        .route(&format!("{BASE}/offers/{{id}}/pause"), patch(pause_offer))
        .route(&format!("{BASE}/offers/{{id}}/resume"), patch(resume_offer))
        .route(&format!("{BASE}/offers/{{id}}/clone"), post(clone_offer))
        .route(&format!("{BASE}/offers/{{id}}/share"), post(share_offer).delete(unshare_offer))
        .route(&format!("{BASE}/offers/{{id}}/unshare"), post(unshare_offer))
        .route(&format!("{BASE}/offers/{{id}}/history"), get(offer_history))
}

/// Who the history names for a change made through the API.
pub fn api_actor(tenant: &TenantRecord) -> String {
    format!("tenant:{}", tenant.slug)
}

/// `{product}` must be the tenant's kind (`advertiser`, `aff-network`, `publisher`).
fn check_product(tenant: &TenantRecord, product: &str) -> Result<(), ApiError> {
    if product == tenant.kind.as_str() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this tenant is an {}: use /api/v1/sdk-offer-management/{}/offers",
            tenant.kind.as_str(),
            tenant.kind.as_str()
        )))
    }
}

#[derive(Debug, Default, Deserialize)]
struct OfferQuery {
    #[serde(rename = "filter.status")]
    status: Option<String>,
    #[serde(rename = "filter.offer_type")]
    offer_type: Option<String>,
    #[serde(rename = "filter.tracking_system")]
    tracking_system: Option<String>,
    #[serde(rename = "filter.search")]
    search: Option<String>,
}

impl OfferQuery {
    /// Each filter value must be one the offers can have, so a typo is a 400, not an empty list.
    fn filter(self) -> Result<OfferFilter, ApiError> {
        let status = self
            .status
            .map(|text| {
                OfferStatus::parse(&text).map(|s| s.as_str().to_owned()).ok_or_else(|| {
                    ApiError::invalid("filter.status", "one of Active, Pending, Expired")
                })
            })
            .transpose()?;
        let offer_type = self
            .offer_type
            .map(|text| match text.as_str() {
                "SingleEvent" | "MultiEvent" => Ok(text),
                _ => Err(ApiError::invalid("filter.offer_type", "one of SingleEvent, MultiEvent")),
            })
            .transpose()?;
        let tracking_system = self
            .tracking_system
            .map(|text| {
                TrackingSystem::parse(&text).map(|s| s.as_str().to_owned()).ok_or_else(|| {
                    ApiError::invalid("filter.tracking_system", "not a known tracking system")
                })
            })
            .transpose()?;
        let search = self.search.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(OfferFilter { status, offer_type, tracking_system, search, partner_id: None })
    }
}

async fn list_offers(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(product): Path<String>,
    ApiQuery(paging): ApiQuery<PageQuery>,
    ApiQuery(query): ApiQuery<OfferQuery>,
) -> Result<Response, ApiError> {
    check_product(&tenant, &product)?;
    let filter = query.filter()?;
    let page = state.engine.list_offers(&tenant, &filter, paging.request()?).await?;
    let engine = &state.engine;
    Ok(list("Offers", page.map(|offer| engine.offer_json(&tenant, &offer))))
}

async fn create_offer(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(product): Path<String>,
    ApiJson(spec): ApiJson<OfferSpec>,
) -> Result<Response, ApiError> {
    check_product(&tenant, &product)?;
    let offer = state.engine.create_offer(&tenant, spec).await?;
    Ok(ok("Offer created", state.engine.offer_json(&tenant, &offer)))
}

async fn show_offer(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path((product, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_product(&tenant, &product)?;
    let offer = state.engine.get_offer(&tenant, parse_id(&id)?).await?;
    Ok(ok("Offer", state.engine.offer_json(&tenant, &offer)))
}

async fn update_offer(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path((product, id)): Path<(String, String)>,
    ApiJson(spec): ApiJson<OfferSpec>,
) -> Result<Response, ApiError> {
    check_product(&tenant, &product)?;
    let id = parse_id(&id)?;
    let offer = state.engine.update_offer(&tenant, id, spec, &api_actor(&tenant)).await?;
    Ok(ok("Offer updated", state.engine.offer_json(&tenant, &offer)))
}

async fn pause_offer(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    state.engine.set_offer_paused(&tenant, id, true, &api_actor(&tenant)).await?;
    Ok(no_content())
}

async fn resume_offer(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    state.engine.set_offer_paused(&tenant, id, false, &api_actor(&tenant)).await?;
    Ok(no_content())
}

/// The body is optional: the fields to change in the copy, merged onto the source offer.
async fn clone_offer(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let body = body.map_err(|_| ApiError::TooLarge)?;
    let overrides: Value =
        if body.iter().all(u8::is_ascii_whitespace) { Value::Null } else { parse_json(&body)? };
    let spec = match overrides {
        Value::Null => None,
        Value::Object(_) => {
            let source = state.engine.get_offer(&tenant, id).await?;
            let mut merged = serde_json::to_value(&source.spec).unwrap_or_default();
            merge_patch(&mut merged, &overrides);
            // Read back through the API's own parser, so a bad override names its field.
            let bytes = serde_json::to_vec(&merged).unwrap_or_default();
            Some(parse_json::<OfferSpec>(&bytes)?)
        }
        _ => return Err(ApiError::invalid("body", "a JSON object of the fields to override")),
    };
    let offer = state.engine.clone_offer(&tenant, id, spec).await?;
    Ok(ok("Offer cloned", state.engine.offer_json(&tenant, &offer)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShareBody {
    partner_id: Uuid,
}

async fn share_offer(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ShareBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let shared =
        state.engine.share_offer(&tenant, id, body.partner_id, &api_actor(&tenant)).await?;
    Ok(ok("Offer shared", shared))
}

async fn unshare_offer(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state.engine.unshare_offer(&tenant, parse_id(&id)?).await?;
    Ok(no_content())
}

async fn offer_history(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
    ApiQuery(paging): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = state.engine.offer_history(&tenant, parse_id(&id)?, paging.request()?).await?;
    Ok(list("Offer history", page.map(|entry| serde_json::to_value(entry).unwrap_or_default())))
}
