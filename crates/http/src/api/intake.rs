//! Secure postback intake: `/api/v1/<a>/<b>/<c>/` (PRODUCT.md §7) and the postback event log.
//!
//! The intake path is three free segments under `/api/v1`. Routes with fixed segments (such as
//! `/api/v1/profile/postback/rotate`) take precedence in the router, so the intake only sees
//! three-segment paths no other module owns; there, wrong credentials are a 401.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderMap, Method, StatusCode, Uri},
    response::Response,
    routing::{any, get},
    Router,
};
use gokart_domain::params::PostbackParams;
use gokart_engine::{
    intake::{log_entry_json, Postback, PostbackAnswer},
    EngineError,
};
use serde::Deserialize;

use crate::{
    envelope::envelope, list, ok, ApiError, ApiQuery, ApiTenant, AppState, Management, PageQuery,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/postback-log", get(postback_log))
        .route("/api/v1/{a}/{b}/{c}", any(postback))
        .route("/api/v1/{a}/{b}/{c}/", any(postback))
}

async fn postback(
    State(state): State<AppState>,
    ApiTenant(tenant): ApiTenant,
    Path((a, b, c)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::POST {
        return Ok(envelope(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            vec!["postbacks are GET or POST".into()],
            serde_json::Value::Null,
        ));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let postback = Postback {
        segment: format!("{a}/{b}/{c}"),
        method: method.as_str().to_owned(),
        params: PostbackParams::from_parts(
            uri.query().unwrap_or_default().as_bytes(),
            &body,
            content_type,
        ),
    };
    let answer = state.engine.receive_postback(tenant, postback).await?;
    Ok(answer_response(&answer))
}

/// `data` of a 200 answer to a postback.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PostbackData<'a> {
    status: &'a str,
    conversion_id: Option<uuid::Uuid>,
    conversion_event_id: Option<uuid::Uuid>,
    rejection_reason: Option<&'a str>,
}

fn answer_response(answer: &PostbackAnswer) -> Response {
    match answer.http_status {
        200 => ok(
            "Postback",
            PostbackData {
                status: answer.status,
                conversion_id: answer.conversion_id,
                conversion_event_id: answer.conversion_event_id,
                rejection_reason: answer.rejection_reason.as_deref(),
            },
        ),
        401 => envelope(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            vec!["the security segment or signature is wrong".into()],
            serde_json::Value::Null,
        ),
        _ => envelope(
            StatusCode::NOT_FOUND,
            "Not found",
            vec!["gk_click_id is unknown".into()],
            serde_json::Value::Null,
        ),
    }
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    from: Option<String>,
    to: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn postback_log(
    State(state): State<AppState>,
    Management(tenant): Management,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Response, ApiError> {
    let page = query.page.request()?;
    let from = query.from.as_deref().map(|t| parse_time("from", t, false)).transpose()?;
    let to = query.to.as_deref().map(|t| parse_time("to", t, true)).transpose()?;
    let entries = state.engine.postback_log(&tenant, from, to, page).await?;
    Ok(list("Postback log", entries.map(|entry| log_entry_json(&entry))))
}

/// An ISO 8601 time, or a date (its start, or with `end_of_day` its last microsecond).
pub(crate) fn parse_time(
    field: &str,
    text: &str,
    end_of_day: bool,
) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let text = text.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    if let Ok(date) = text.parse::<chrono::NaiveDate>() {
        let start = date.and_time(chrono::NaiveTime::MIN).and_utc();
        return Ok(if end_of_day {
            start + chrono::Duration::days(1) - chrono::Duration::microseconds(1)
        } else {
            start
        });
    }
    Err(ApiError::Engine(EngineError::invalid(
        field,
        "an ISO 8601 time such as 2026-11-22T10:15:00Z, or a date",
    )))
}
