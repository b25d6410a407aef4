//! GoKart's response envelope: `{responseId, isSuccessful, responseTitle, responseType, messages,
//! data}`; lists carry their paging inside `data`.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use gokart_storage::Page;
use serde_json::{json, Value};
use uuid::Uuid;

/// The envelope as it is sent, serialized straight from its parts (no JSON tree in between).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, T> {
    response_id: Uuid,
    is_successful: bool,
    response_title: &'a str,
    response_type: &'static str,
    messages: Vec<String>,
    data: T,
}

pub(crate) fn envelope(
    status: StatusCode,
    title: &str,
    messages: Vec<String>,
    data: impl serde::Serialize,
) -> Response {
    let body = Envelope {
        response_id: Uuid::new_v4(),
        is_successful: status.is_success(),
        response_title: title,
        response_type: if status.is_success() { "Success" } else { response_type(status) },
        messages,
        data,
    };
    (status, Json(body)).into_response()
}

fn response_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "ValidationError",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "Error",
    }
}

/// 200 with `data`.
pub fn ok(title: &str, data: impl serde::Serialize) -> Response {
    envelope(StatusCode::OK, title, Vec::new(), data)
}

/// 200 with a page of items and GoKart's paging fields.
pub fn list(title: &str, page: Page<Value>) -> Response {
    let size = u64::from(page.request.size.max(1));
    let total_pages = page.total.div_ceil(size);
    let index = u64::from(page.request.index);
    let data = json!({
        "items": page.items,
        "pageIndex": page.request.index,
        "pageSize": page.request.size,
        "totalCount": page.total,
        "totalPages": total_pages,
        "hasPreviousPage": index > 0,
        "hasNextPage": index + 1 < total_pages,
    });
    envelope(StatusCode::OK, title, Vec::new(), data)
}

/// 204, for idempotent commands such as pause and resume.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
