//! Log in and out. A wrong email or password answers one plain message and changes nothing.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{AppendHeaders, IntoResponse, Redirect},
    routing::{get, post},
    Router,
};
use gokart_engine::{secrets::random_token, sessions::SESSION_LIFETIME, EngineError};
use minijinja::context;

use super::{
    page::{render_status, PageResult},
    session::{
        cookie, session_cookie_name, set_cookie, AppTenant, LoginForm, Posted, LOGIN_CSRF_COOKIE,
    },
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/login", get(login_page).post(log_in)).route("/logout", post(log_out))
}

async fn login_page(
    State(state): State<AppState>,
    AppTenant(tenant): AppTenant,
    headers: HeaderMap,
) -> PageResult {
    // Keep the login CSRF token of an open tab, so two tabs do not invalidate each other.
    let token = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_else(|| random_token(24));
    let page = render_status(
        StatusCode::OK,
        "login.html",
        None,
        context! { tenant_name => tenant.name, login_csrf => token, email => "" },
    );
    let cookie = set_cookie(&state.engine, LOGIN_CSRF_COOKIE, &token, 3600);
    Ok((AppendHeaders([(header::SET_COOKIE, cookie)]), page).into_response())
}

async fn log_in(
    State(state): State<AppState>,
    LoginForm { tenant, form }: LoginForm,
) -> PageResult {
    let email = form.get("email");
    match state.engine.sign_in(&tenant, &email, &form.raw("password")).await {
        Ok(session) => {
            let engine = &state.engine;
            let cookies = [
                (
                    header::SET_COOKIE,
                    set_cookie(
                        engine,
                        session_cookie_name(engine),
                        &session.token,
                        SESSION_LIFETIME.num_seconds(),
                    ),
                ),
                (header::SET_COOKIE, set_cookie(engine, LOGIN_CSRF_COOKIE, "", 0)),
            ];
            Ok((AppendHeaders(cookies), Redirect::to("/")).into_response())
        }
        Err(EngineError::Unauthorized) => Ok(render_status(
            StatusCode::UNAUTHORIZED,
            "login.html",
            None,
            context! {
                tenant_name => tenant.name,
                login_csrf => form.get("_csrf"),
                email => email,
                error => "The email or password is not right. Check both and try again.",
            },
        )),
        Err(other) => Err(other.into()),
    }
}

/// Needs the session's CSRF token like every form, so no other site can sign a user out.
async fn log_out(State(state): State<AppState>, headers: HeaderMap, _: Posted) -> PageResult {
    let engine = &state.engine;
    if let Some(token) = cookie(&headers, session_cookie_name(engine)) {
        engine.sign_out(&token).await?;
    }
    let clear = set_cookie(engine, session_cookie_name(engine), "", 0);
    Ok((AppendHeaders([(header::SET_COOKIE, clear)]), Redirect::to("/login")).into_response())
}
