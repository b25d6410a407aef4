//! The partner's own API (Partner token): the offers shared with it and their change history.

use axum::{
    extract::{Path, State},
    response::Response,
    routing::get,
    Router,
};

use crate::{api::parse_id, list, ok, ApiError, ApiQuery, AppState, PageQuery, PartnerPrincipal};

const BASE: &str = "/api/v1/sdk-offer-management/partner";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list_offers))
        .route(&format!("{BASE}/{{id}}"), get(show_offer))
        .route(&format!("{BASE}/{{id}}/history"), get(offer_history))
}

async fn list_offers(
    State(state): State<AppState>,
    partner: PartnerPrincipal,
    ApiQuery(paging): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let engine = &state.engine;
    let page =
        engine.partner_offers(&partner.tenant, partner.partner_id, paging.request()?).await?;
    Ok(list("Offers", page.map(|offer| engine.partner_offer_json(&partner.tenant, &offer))))
}

async fn show_offer(
    State(state): State<AppState>,
    partner: PartnerPrincipal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let engine = &state.engine;
    let offer = engine.partner_offer(&partner.tenant, partner.partner_id, parse_id(&id)?).await?;
    Ok(ok("Offer", engine.partner_offer_json(&partner.tenant, &offer)))
}

async fn offer_history(
    State(state): State<AppState>,
    partner: PartnerPrincipal,
    Path(id): Path<String>,
    ApiQuery(paging): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (tenant, partner_id, id) = (&partner.tenant, partner.partner_id, parse_id(&id)?);
    let page =
        state.engine.partner_offer_history(tenant, partner_id, id, paging.request()?).await?;
    Ok(list("Offer history", page.map(|entry| serde_json::to_value(entry).unwrap_or_default())))
}
