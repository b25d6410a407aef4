//! The one error type of the HTTP layer: every failure becomes an envelope with the right status.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use gokart_domain::FieldError;
use gokart_engine::EngineError;
use serde_json::Value;

use crate::envelope::envelope;

#[derive(Debug)]
pub enum ApiError {
    Engine(EngineError),
    TooLarge,
    RateLimited,
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Engine(EngineError::invalid(field, message))
    }

    pub fn not_found() -> Self {
        ApiError::Engine(EngineError::NotFound)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Engine(EngineError::Forbidden(message.into()))
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        ApiError::Engine(error)
    }
}

impl From<gokart_storage::StorageError> for ApiError {
    fn from(error: gokart_storage::StorageError) -> Self {
        ApiError::Engine(error.into())
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(problems: Vec<FieldError>) -> Self {
        ApiError::Engine(EngineError::Invalid(problems))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, title, messages) = match self {
            ApiError::Engine(EngineError::Invalid(problems)) => (
                StatusCode::BAD_REQUEST,
                "Invalid input",
                problems.iter().map(ToString::to_string).collect(),
            ),
            ApiError::Engine(EngineError::Unauthorized) => (
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                vec!["a valid `Authorization: ApiToken <token>` header is required".into()],
            ),
            ApiError::Engine(EngineError::Forbidden(message)) => {
                (StatusCode::FORBIDDEN, "Forbidden", vec![message])
            }
            ApiError::Engine(EngineError::NotFound) => {
                (StatusCode::NOT_FOUND, "Not found", vec!["not found".into()])
            }
            ApiError::Engine(EngineError::Conflict(message)) => {
                (StatusCode::CONFLICT, "Conflict", vec![message])
            }
            ApiError::Engine(EngineError::Unavailable(message)) => {
                tracing::error!(%message, "storage unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service unavailable",
                    vec!["not stored; try again".into()],
                )
            }
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload too large",
                vec![format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES)],
            ),
            ApiError::RateLimited => {
                (StatusCode::TOO_MANY_REQUESTS, "Too many requests", vec!["slow down".into()])
            }
        };
        envelope(status, title, messages, Value::Null)
    }
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found()
}
