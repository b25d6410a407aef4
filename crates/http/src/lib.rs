//! gokart's HTTP surface. One router serves every tenant; the `Host` header says which tenant
//! (`api.<tenant>.<base>` for the API, tracking links and postbacks, `app.<tenant>.<base>` for the
//! dashboard).

pub mod api;
mod auth;
mod body;
pub mod dashboard;
mod envelope;
mod error;
mod host;

use std::sync::Arc;

use axum::{extract::DefaultBodyLimit, routing::get, Router};
use gokart_engine::Engine;

pub use auth::{Management, PartnerPrincipal};
pub use body::{ApiJson, ApiQuery, PageQuery};
pub use envelope::{list, no_content, ok};
pub use error::ApiError;
pub use host::ApiTenant;

/// The largest request body gokart reads (offers with many events and long copy fit easily).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(api::routes())
        .merge(dashboard::routes())
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
