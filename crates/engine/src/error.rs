//! What a use case can answer besides success; the HTTP layer maps each to its status code.

use gokart_domain::FieldError;
use gokart_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// 400: one problem per field.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// 401
    #[error("unauthorized")]
    Unauthorized,
    /// 403
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404, also for another tenant's or another partner's object.
    #[error("not found")]
    NotFound,
    /// 409: the current state forbids it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 503: not stored; the caller may retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl EngineError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        EngineError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<StorageError> for EngineError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Conflict(message) => EngineError::Conflict(message),
            StorageError::Unavailable(message) => EngineError::Unavailable(message),
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
