//! Offers: `/api/v1/sdk-offer-management/...` for the tenant.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
