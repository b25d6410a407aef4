//! Request bodies and query strings, read so that every problem is a 4xx naming the field.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::request::Parts,
};
use gokart_storage::PageRequest;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON body. Malformed JSON, a wrong type or an unknown enum value answer 400 with the path
/// of the field; unknown fields are ignored.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state).await.map_err(|_| ApiError::TooLarge)?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("body", "a JSON body is required"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(&field, error.inner().to_string())
    })
}

/// A query string; a bad value answers 400 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(ApiQuery).map_err(|error| {
            ApiError::invalid(&error.path().to_string(), error.inner().to_string())
        })
    }
}

/// `page` (0-based) and `page_size` (1–100, default 10).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PageQuery {
    pub page: Option<String>,
    pub page_size: Option<String>,
}

impl PageQuery {
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        let index = match &self.page {
            None => 0,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|page| *page <= 1_000_000)
                .ok_or_else(|| ApiError::invalid("page", "a whole number from 0"))?,
        };
        let size = match &self.page_size {
            None => 10,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|size| (1..=100).contains(size))
                .ok_or_else(|| ApiError::invalid("page_size", "a whole number from 1 to 100"))?,
        };
        Ok(PageRequest { index, size })
    }
}
