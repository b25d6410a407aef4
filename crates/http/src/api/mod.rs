//! The JSON API under `/api/v1`: one module per resource, each with its own `routes()`.

mod backoffice;
mod conversions;
mod deliveries;
mod intake;
mod offers;
mod partner;
mod partner_postbacks;
mod profile;
mod tracking;

use axum::Router;
use uuid::Uuid;

use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(backoffice::routes())
        .merge(conversions::routes())
        .merge(deliveries::routes())
        .merge(intake::routes())
        .merge(offers::routes())
        .merge(partner::routes())
        .merge(partner_postbacks::routes())
        .merge(profile::routes())
        .merge(tracking::routes())
}

/// A path id: anything that is not a UUID names nothing, so it is a 404 like an unknown id.
pub fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::not_found())
}
