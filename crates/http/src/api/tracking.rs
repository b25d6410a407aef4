//! Partner tracking links: `/api/v1/offer-link/redirect/{offerId}`.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
