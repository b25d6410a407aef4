//! The dashboard and partner portal at `app.<tenant>.<base>`: server-rendered pages with a
//! little hand-written script (the eye icon, copy buttons), no build step.
//!
//! Every page needs a session (`/login`); every form carries the session's CSRF token, checked
//! before the handler runs ([`session::Posted`]).

mod activity;
mod backoffice;
mod creatives;
mod login;
mod offers;
mod page;
mod portal;
mod portal_postbacks;
mod profile;
mod session;
mod wizard;

pub use creatives::set_data_dir;

use std::time::Instant;

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::get,
    Router,
};

use crate::AppState;
use page::PageResult;
use session::{AppTenant, SignedIn};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .merge(login::routes())
        .merge(profile::routes())
        .merge(offers::routes())
        .merge(creatives::routes())
        .merge(backoffice::routes())
        .merge(portal::routes())
        .merge(portal_postbacks::routes())
        .merge(activity::routes())
        .layer(middleware::from_fn(server_timing))
}

/// `Server-Timing: app;dur=<ms>` on every dashboard answer: the time from the request reaching
/// the dashboard to its page being rendered (browsers' dev tools show it; the dashboard benchmark
/// reads it). The body is already rendered by then, so this is the whole server-side cost.
async fn server_timing(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().append("server-timing", value);
    }
    response
}

/// Staff land on Offer Management, partners on their portal.
async fn home(signed: SignedIn) -> PageResult {
    Ok(Redirect::to(if signed.is_partner() { "/portal" } else { "/offers" }).into_response())
}

async fn stylesheet(_: AppTenant) -> Response {
    asset("text/css; charset=utf-8", include_str!("../../static/app.css"))
}

async fn script(_: AppTenant) -> Response {
    asset("text/javascript; charset=utf-8", include_str!("../../static/app.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}
