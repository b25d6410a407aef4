//! The partner's own API: offers shared with it, its postback settings.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
