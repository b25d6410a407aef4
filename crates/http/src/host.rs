//! The tenant a request is for, from its `Host` header.

use axum::{extract::FromRequestParts, http::request::Parts};
use gokart_storage::TenantRecord;

use crate::{ApiError, AppState};

/// Which face of gokart a host names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// `api.<tenant>.<base>`: API, tracking links, postbacks.
    Api,
    /// `app.<tenant>.<base>`: dashboard and partner portal.
    App,
}

/// Splits `api.brownboots.localhost:8080` into (`Api`, `brownboots`) when it ends in the base
/// domain; anything else is not ours.
pub fn parse_host<'a>(host: &'a str, base_domain: &str) -> Option<(Face, &'a str)> {
    let host = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let rest = host.strip_suffix(base_domain)?.strip_suffix('.')?;
    let (face, slug) = rest.split_once('.')?;
    let face = match face {
        "api" => Face::Api,
        "app" => Face::App,
        _ => return None,
    };
    (!slug.is_empty() && !slug.contains('.')).then_some((face, slug))
}

pub(crate) async fn tenant_for(
    parts: &Parts,
    state: &AppState,
    wanted: Face,
) -> Result<TenantRecord, ApiError> {
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())
        .ok_or_else(ApiError::not_found)?;
    let (face, slug) = parse_host(host, state.engine.urls.base_domain())
        .filter(|(face, _)| *face == wanted)
        .ok_or_else(ApiError::not_found)?;
    debug_assert_eq!(face, wanted);
    state.engine.tenant(slug).await?.ok_or_else(ApiError::not_found)
}

/// The tenant of an `api.<tenant>.<base>` request; 404 for an unknown tenant.
pub struct ApiTenant(pub TenantRecord);

impl FromRequestParts<AppState> for ApiTenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        tenant_for(parts, state, Face::Api).await.map(ApiTenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("api.brownboots.localhost:8080", "localhost"),
            Some((Face::Api, "brownboots"))
        );
        assert_eq!(
            parse_host("app.x-1.gk.example.com", "gk.example.com"),
            Some((Face::App, "x-1"))
        );
        assert_eq!(parse_host("api.a.b.localhost", "localhost"), None);
        assert_eq!(parse_host("localhost:8080", "localhost"), None);
        assert_eq!(parse_host("www.brownboots.localhost", "localhost"), None);
    }
}
