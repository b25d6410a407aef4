//! The dashboard and partner portal at `app.<tenant>.<base>`: server-rendered pages.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
