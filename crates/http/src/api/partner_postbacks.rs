//! A partner's own postback templates (Partner token): the global one and the event-level ones.

use axum::{extract::State, response::Response, routing::get, Router};
use gokart_engine::partner_postbacks::PartnerPostbacksInput;

use crate::{ok, ApiError, ApiJson, AppState, PartnerPrincipal};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/partner/postbacks", get(show).put(save))
}

async fn show(
    State(state): State<AppState>,
    partner: PartnerPrincipal,
) -> Result<Response, ApiError> {
    let view = state.engine.partner_postbacks(&partner.tenant, partner.partner_id).await?;
    Ok(ok("Partner postbacks", view))
}

async fn save(
    State(state): State<AppState>,
    partner: PartnerPrincipal,
    ApiJson(input): ApiJson<PartnerPostbacksInput>,
) -> Result<Response, ApiError> {
    let view =
        state.engine.save_partner_postbacks(&partner.tenant, partner.partner_id, input).await?;
    Ok(ok("Partner postbacks saved", view))
}
