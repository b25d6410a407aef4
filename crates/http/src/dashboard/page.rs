//! Rendering: the embedded templates, the context every page shares, and the HTML error pages.

use std::sync::OnceLock;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use gokart_engine::EngineError;
use minijinja::{Environment, Value};
use serde::Serialize;

/// Every template, embedded at build time: no files to ship beside the binary.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("error.html", include_str!("../../templates/error.html")),
    ("profile_postback.html", include_str!("../../templates/profile_postback.html")),
    ("profile_tabs.html", include_str!("../../templates/profile_tabs.html")),
    ("offers.html", include_str!("../../templates/offers.html")),
    ("offer_wizard.html", include_str!("../../templates/offer_wizard.html")),
    ("offer_share.html", include_str!("../../templates/offer_share.html")),
    ("offer_history.html", include_str!("../../templates/offer_history.html")),
    ("backoffice.html", include_str!("../../templates/backoffice.html")),
    ("portal_offers.html", include_str!("../../templates/portal_offers.html")),
    ("portal_offer.html", include_str!("../../templates/portal_offer.html")),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("embedded templates parse");
        }
        env
    })
}

/// What the layout needs about who is signed in; `None` on the login and error pages.
#[derive(Debug, Clone, Serialize)]
pub struct Chrome {
    pub tenant_name: String,
    pub email: String,
    /// `true` for a partner's portal login: the navigation shows the portal only.
    pub partner: bool,
    pub csrf: String,
    /// The navigation entry to highlight.
    pub section: &'static str,
}

/// Renders `template` with `context` and the shared `chrome` (signed-in header and navigation).
pub fn render(template: &str, chrome: Option<&Chrome>, context: Value) -> Response {
    render_status(StatusCode::OK, template, chrome, context)
}

pub fn render_status(
    status: StatusCode,
    template: &str,
    chrome: Option<&Chrome>,
    context: Value,
) -> Response {
    let context = minijinja::context! { chrome => chrome, ..context };
    match environment().get_template(template).and_then(|t| t.render(context)) {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            // Pages hold credentials and CSRF tokens: never cache them.
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(%error, template, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// Why a dashboard request did not get its page.
#[derive(Debug)]
pub enum PageError {
    /// No session (or an expired one): back to the login page.
    SignIn,
    /// The form's CSRF token was missing or wrong.
    Csrf,
    /// Signed in, but this page is not for this kind of user.
    Forbidden(String),
    NotFound,
    /// A plain-words refusal (400) for input that cannot be shown next to a field.
    BadRequest(String),
    /// The request body is larger than the page accepts.
    TooLarge(String),
    Engine(EngineError),
}

impl From<EngineError> for PageError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::NotFound => PageError::NotFound,
            other => PageError::Engine(other),
        }
    }
}

impl From<gokart_storage::StorageError> for PageError {
    fn from(error: gokart_storage::StorageError) -> Self {
        PageError::Engine(error.into())
    }
}

impl From<crate::ApiError> for PageError {
    fn from(error: crate::ApiError) -> Self {
        match error {
            crate::ApiError::Engine(engine) => engine.into(),
            crate::ApiError::TooLarge => PageError::TooLarge("the request is too large".into()),
            crate::ApiError::RateLimited => {
                PageError::BadRequest("too many requests; wait a moment and try again".into())
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::SignIn => return Redirect::to("/login").into_response(),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was missing its security token or the token did not match your \
                 session, so nothing was changed. Go back, reload the page and try again."
                    .to_owned(),
            ),
            PageError::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", message),
            PageError::NotFound => {
                (StatusCode::NOT_FOUND, "Not found", "There is nothing at this address.".into())
            }
            PageError::BadRequest(message) => (StatusCode::BAD_REQUEST, "Cannot do that", message),
            PageError::TooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, "Too large", message),
            PageError::Engine(EngineError::Invalid(problems)) => (
                StatusCode::BAD_REQUEST,
                "Cannot do that",
                problems.iter().map(|p| p.message.clone()).collect::<Vec<_>>().join("; "),
            ),
            PageError::Engine(EngineError::Conflict(message)) => {
                (StatusCode::CONFLICT, "Cannot do that", message)
            }
            PageError::Engine(EngineError::Forbidden(message)) => {
                (StatusCode::FORBIDDEN, "Not allowed", message)
            }
            PageError::Engine(EngineError::Unauthorized) => {
                return Redirect::to("/login").into_response()
            }
            PageError::Engine(EngineError::NotFound) => {
                (StatusCode::NOT_FOUND, "Not found", "There is nothing at this address.".into())
            }
            PageError::Engine(EngineError::Unavailable(message)) => {
                tracing::error!(%message, "storage unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again",
                    "The database is busy; nothing was changed. Try again in a moment.".into(),
                )
            }
        };
        render_status(
            status,
            "error.html",
            None,
            minijinja::context! { status => status.as_u16(), title => title, message => message },
        )
    }
}

pub type PageResult = Result<Response, PageError>;
