//! Profile → Postback: the secure postback URL behind the eye icon, its three credentials with
//! copy buttons, the Adjust and AppsFlyer templates, and rotation with its grace period.
//! Profile → Callback: where gokart POSTs conversion status changes, and its signing secret.

use axum::{
    extract::{Query, State},
    response::{IntoResponse, Redirect},
    routing::{get, post},
    Router,
};
use gokart_engine::{callback::CallbackInput, EngineError};
use gokart_mmp::{install_postback_template, postback_template, Mmp};
use minijinja::context;
use serde::Deserialize;

use super::{
    page::{render, render_status, PageResult},
    session::{FormData, Posted, SignedIn, Staff},
    wizard::Errors,
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/profile", get(|| async { Redirect::to("/profile/postback") }))
        .route("/profile/postback", get(postback_page))
        .route("/profile/postback/rotate", post(rotate))
        .route("/profile/callback", get(callback_page).post(save_callback))
}

#[derive(Deserialize)]
struct RevealQuery {
    #[serde(default)]
    reveal: Option<String>,
    #[serde(default)]
    rotated: Option<String>,
    #[serde(default)]
    saved: Option<String>,
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

async fn callback_page(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Query(query): Query<RevealQuery>,
) -> PageResult {
    let view = state.engine.callback_settings(&signed.tenant).await?;
    let form = CallbackForm {
        url: view.url.clone().unwrap_or_default(),
        header_name: view.header_name.clone().unwrap_or_default(),
        send_pending: view.send_pending,
        send_rejected: view.send_rejected,
    };
    let notice = query.saved.is_some().then_some("Callback settings saved.");
    render_callback(
        &signed,
        &view,
        &form,
        &Errors::new(),
        query.reveal.as_deref() == Some("1"),
        notice,
    )
}

/// The callback form as typed; the header value is never sent back to the browser.
#[derive(serde::Serialize)]
struct CallbackForm {
    url: String,
    header_name: String,
    send_pending: bool,
    send_rejected: bool,
}

impl CallbackForm {
    fn of(form: &FormData) -> Self {
        CallbackForm {
            url: form.get("url"),
            header_name: form.get("header_name"),
            send_pending: !form.get("send_pending").is_empty(),
            send_rejected: !form.get("send_rejected").is_empty(),
        }
    }
}

fn render_callback(
    signed: &SignedIn,
    view: &gokart_engine::callback::CallbackView,
    form: &CallbackForm,
    errors: &Errors,
    reveal: bool,
    notice: Option<&str>,
) -> PageResult {
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::BAD_REQUEST
    };
    Ok(render_status(
        status,
        "profile_callback.html",
        Some(&signed.chrome("profile")),
        context! {
            tab => "callback",
            form => form,
            header_value_set => view.header_value_set,
            signing_secret => view.signing_secret,
            reveal => reveal,
            errors => errors,
            notice => notice,
        },
    ))
}

async fn save_callback(State(state): State<AppState>, posted: Posted) -> PageResult {
    posted.signed.staff()?;
    let form = CallbackForm::of(&posted.form);
    let input = CallbackInput {
        url: Some(form.url.clone()),
        header_name: Some(form.header_name.clone()),
        // Empty keeps the stored value (write-only field).
        header_value: Some(posted.form.raw("header_value")),
        send_pending: form.send_pending,
        send_rejected: form.send_rejected,
    };
    match state.engine.save_callback_settings(&posted.signed.tenant, input).await {
        Ok(_) => Ok(Redirect::to("/profile/callback?saved=1").into_response()),
        Err(EngineError::Invalid(problems)) => {
            let mut errors = Errors::new();
            for problem in problems {
                let field = match problem.field.as_str() {
                    "headerName" => "header_name",
                    "headerValue" => "header_value",
                    _ => "url",
                };
                errors.insert(field.into(), capitalised(&problem.message));
            }
            let view = state.engine.callback_settings(&posted.signed.tenant).await?;
            render_callback(&posted.signed, &view, &form, &errors, false, None)
        }
        Err(other) => Err(other.into()),
    }
}

fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}
