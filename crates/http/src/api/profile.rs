//! Profile → Postback: the tenant's secure postback credentials and their rotation.

use axum::{
    extract::State,
    response::Response,
    routing::{get, post},
    Router,
};

use crate::{ok, ApiError, AppState, Management};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/profile/postback", get(show_postback))
        .route("/api/v1/profile/postback/rotate", post(rotate_postback))
}

async fn show_postback(
    State(state): State<AppState>,
    Management(tenant): Management,
) -> Result<Response, ApiError> {
    let info = state.engine.postback_credentials(&tenant).await?;
    Ok(ok("Postback", info))
}

async fn rotate_postback(
    State(state): State<AppState>,
    Management(tenant): Management,
) -> Result<Response, ApiError> {
    let info = state.engine.rotate_postback_credentials(&tenant).await?;
    Ok(ok("Postback rotated", info))
}
