//! Conversions (PRODUCT.md §8): list, detail, and status overrides.

use axum::{
    body::Bytes,
    extract::{Path, State},
    response::Response,
    routing::{get, patch},
    Router,
};
use gokart_engine::conversions::ConversionQuery;
use gokart_storage::ConversionStatus;
use serde::Deserialize;

use super::{intake::parse_time, parse_id};
use crate::{list, ok, ApiError, ApiQuery, AppState, Management, PageQuery};

const BASE: &str = "/api/v1/sdk-conversion-system/conversions";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list_conversions))
        .route(&format!("{BASE}/{{id}}"), get(show_conversion))
        .route(&format!("{BASE}/{{id}}/status"), patch(override_conversion))
        .route(&format!("{BASE}/{{id}}/{{event_id}}/status"), patch(override_event))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    user_completed_at_from: Option<String>,
    user_completed_at_to: Option<String>,
    #[serde(rename = "filter.offer_id")]
    offer_id: Option<String>,
    #[serde(rename = "filter.status")]
    status: Option<String>,
    #[serde(rename = "filter.search")]
    search: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn list_conversions(
    State(state): State<AppState>,
    Management(tenant): Management,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let page = query.page.request()?;
    let status =
        query.status.as_deref().map(|text| parse_status("filter.status", text)).transpose()?;
    let offer_id = match query.offer_id.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => Some(
            uuid::Uuid::parse_str(text)
                .map_err(|_| ApiError::invalid("filter.offer_id", "must be an offer id (UUID)"))?,
        ),
        None => None,
    };
    let from = query
        .user_completed_at_from
        .as_deref()
        .map(|t| parse_time("user_completed_at_from", t, false))
        .transpose()?;
    let to = query
        .user_completed_at_to
        .as_deref()
        .map(|t| parse_time("user_completed_at_to", t, true))
        .transpose()?;
    let query = ConversionQuery {
        from,
        to,
        offer_id,
        status,
        search: query.search.filter(|s| !s.trim().is_empty()),
        // The API's totalCount is exact (PRODUCT.md); only the dashboard caps its count.
        count_limit: None,
    };
    let found = state.engine.list_conversions(&tenant, query, page).await?;
    Ok(list("Conversions", found.map(|detail| detail.to_json(false))))
}

async fn show_conversion(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let detail = state.engine.conversion_detail(&tenant, parse_id(&id)?).await?;
    Ok(ok("Conversion", detail.to_json(true)))
}

#[derive(Debug, Deserialize)]
struct OverrideQuery {
    status: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct OverrideBody {
    reason: Option<String>,
}

async fn override_conversion(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<OverrideQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (status, reason) = override_input(query, &body)?;
    let detail =
        state.engine.override_status(&tenant, parse_id(&id)?, None, status, reason).await?;
    Ok(ok("Conversion status updated", detail.to_json(true)))
}

async fn override_event(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path((id, event_id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<OverrideQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (status, reason) = override_input(query, &body)?;
    let (id, event_id) = (parse_id(&id)?, parse_id(&event_id)?);
    let detail = state.engine.override_status(&tenant, id, Some(event_id), status, reason).await?;
    Ok(ok("Conversion event status updated", detail.to_json(true)))
}

/// `status` from the query; `reason` from the query or a JSON body `{"reason": "..."}`.
fn override_input(
    query: OverrideQuery,
    body: &[u8],
) -> Result<(ConversionStatus, Option<String>), ApiError> {
    let status = query
        .status
        .as_deref()
        .ok_or_else(|| ApiError::invalid("status", "is required: Success or Rejected"))
        .and_then(|text| parse_status("status", text))?;
    let body_reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        crate::body::parse_json::<OverrideBody>(body)?.reason
    };
    Ok((status, query.reason.or(body_reason)))
}

fn parse_status(field: &str, text: &str) -> Result<ConversionStatus, ApiError> {
    ConversionStatus::parse(text.trim())
        .ok_or_else(|| ApiError::invalid(field, "one of Pending, Success, Rejected"))
}
