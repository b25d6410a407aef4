//! Back office: `/api/v1/sdk-back-office-management/{kind}`, one set of routes for every kind
//! (advertisers, partners, categories, placements, age-ranges, genders).

use axum::{
    extract::{Path, State},
    response::Response,
    routing::get,
    Router,
};
use gokart_engine::catalog::item_json;
use gokart_storage::DirectoryKind;
use serde_json::Value;

use crate::{
    api::parse_id, list, ok, ApiError, ApiJson, ApiQuery, AppState, Management, PageQuery,
};

const BASE: &str = "/api/v1/sdk-back-office-management";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/{{kind}}"), get(list_items).post(create_item))
        .route(&format!("{BASE}/{{kind}}/{{id}}"), get(show_item).put(update_item))
}

/// An unknown kind names nothing: 404.
fn kind(text: &str) -> Result<DirectoryKind, ApiError> {
    DirectoryKind::parse(text).ok_or_else(ApiError::not_found)
}

async fn list_items(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(kind_text): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let kind = kind(&kind_text)?;
    let page = state.engine.list_items(&tenant, kind, query.request()?).await?;
    Ok(list(kind.as_str(), page.map(|item| item_json(&item))))
}

async fn show_item(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path((kind_text, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = kind(&kind_text)?;
    let item = state.engine.get_item(&tenant, kind, parse_id(&id)?).await?;
    Ok(ok(kind.as_str(), item_json(&item)))
}

/// A partner's answer also carries its Partner API token and portal login, shown this once.
async fn create_item(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path(kind_text): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let kind = kind(&kind_text)?;
    let created = state.engine.create_item(&tenant, kind, &body).await?;
    let mut data = item_json(&created.item);
    if let (Some(object), Some(credentials)) = (data.as_object_mut(), created.partner_credentials) {
        if let Ok(Value::Object(credentials)) = serde_json::to_value(credentials) {
            object.extend(credentials);
        }
    }
    Ok(ok("Created", data))
}

async fn update_item(
    State(state): State<AppState>,
    Management(tenant): Management,
    Path((kind_text, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let kind = kind(&kind_text)?;
    let item = state.engine.update_item(&tenant, kind, parse_id(&id)?, &body).await?;
    Ok(ok("Updated", item_json(&item)))
}
