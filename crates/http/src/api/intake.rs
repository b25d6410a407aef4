//! Secure postback intake: `/api/v1/<a>/<b>/<c>/`.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
