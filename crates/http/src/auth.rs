//! `Authorization: ApiToken <token>`: Management and Partner scopes.

use axum::{extract::FromRequestParts, http::request::Parts};
use gokart_engine::tenants::Principal;
use gokart_storage::{TenantRecord, TokenScope};
use uuid::Uuid;

use crate::{host::Face, ApiError, AppState};

async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let tenant = crate::host::tenant_for(parts, state, Face::Api).await?;
    let token = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("ApiToken "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or(ApiError::Engine(gokart_engine::EngineError::Unauthorized))?;
    Ok(state.engine.authenticate(&tenant, token).await?)
}

/// A request made with the tenant's Management token.
pub struct Management(pub TenantRecord);

impl FromRequestParts<AppState> for Management {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        match principal.scope {
            TokenScope::Management => Ok(Management(principal.tenant)),
            TokenScope::Partner => Err(ApiError::forbidden("this needs a Management API token")),
        }
    }
}

/// A request made with one partner's Partner token.
pub struct PartnerPrincipal {
    pub tenant: TenantRecord,
    pub partner_id: Uuid,
}

impl FromRequestParts<AppState> for PartnerPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        match (principal.scope, principal.partner_id) {
            (TokenScope::Partner, Some(partner_id)) => {
                Ok(PartnerPrincipal { tenant: principal.tenant, partner_id })
            }
            _ => Err(ApiError::forbidden("this needs a Partner API token")),
        }
    }
}
