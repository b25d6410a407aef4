//! Profile → Postback: the secure postback URL behind the eye icon, its three credentials with
//! copy buttons, the Adjust and AppsFlyer templates, and rotation with its grace period.

use axum::{
    extract::{Query, State},
    response::{IntoResponse, Redirect},
    routing::{get, post},
    Router,
};
use gokart_mmp::{install_postback_template, postback_template, Mmp};
use minijinja::context;
use serde::Deserialize;

use super::{
    page::{render, PageResult},
    session::{Posted, Staff},
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/profile", get(|| async { Redirect::to("/profile/postback") }))
        .route("/profile/postback", get(postback_page))
        .route("/profile/postback/rotate", post(rotate))
}

#[derive(Deserialize)]
struct RevealQuery {
    #[serde(default)]
    reveal: Option<String>,
    #[serde(default)]
    rotated: Option<String>,
}

async fn postback_page(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Query(query): Query<RevealQuery>,
) -> PageResult {
    let info = state.engine.postback_credentials(&signed.tenant).await?;
    let templates = context! {
        adjust_install => install_postback_template(Mmp::Adjust, &info.url),
        adjust_event => postback_template(Mmp::Adjust, &info.url),
        appsflyer_install => install_postback_template(Mmp::AppsFlyer, &info.url),
        appsflyer_event => postback_template(Mmp::AppsFlyer, &info.url),
    };
    let notice = query.rotated.is_some().then_some(
        "New credentials are active. Paste them into your MMP before the grace period ends.",
    );
    Ok(render(
        "profile_postback.html",
        Some(&signed.chrome("profile")),
        context! {
            tab => "postback",
            postback => info,
            templates => templates,
            reveal => query.reveal.as_deref() == Some("1"),
            grace_days => gokart_engine::tenants::POSTBACK_GRACE.num_days(),
            notice => notice,
        },
    ))
}

async fn rotate(State(state): State<AppState>, posted: Posted) -> PageResult {
    posted.signed.staff()?;
    state.engine.rotate_postback_credentials(&posted.signed.tenant).await?;
    Ok(Redirect::to("/profile/postback?rotated=1&reveal=1").into_response())
}
