//! Conversions: `/api/v1/sdk-conversion-system/conversions` and the postback log.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
