//! The JSON API under `/api/v1`: one module per resource, each with its own `routes()`.

mod profile;

use axum::Router;
use uuid::Uuid;

use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().merge(profile::routes())
}

/// A path id: anything that is not a UUID names nothing, so it is a 404 like an unknown id.
pub fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::not_found())
}
