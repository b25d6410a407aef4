//! Back office: `/api/v1/sdk-back-office-management/{kind}`.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
