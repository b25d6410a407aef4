//! Partner tracking links: `GET /api/v1/offer-link/redirect/{offerId}` (PRODUCT.md §6).

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Path, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use gokart_engine::tracking::{ClickRefused, ClickRequest};

use crate::{ApiTenant, AppState};

pub fn routes() -> Router<AppState> {
    // `get` also answers HEAD; the handler records nothing for it.
    Router::new().route("/api/v1/offer-link/redirect/{offer_id}", get(redirect))
}

async fn redirect(
    State(state): State<AppState>,
    ApiTenant(tenant): ApiTenant,
    Path(offer_id): Path<String>,
    request: Request,
) -> Response {
    let Ok(offer_id) = uuid::Uuid::parse_str(&offer_id) else {
        return refusal(&ClickRefused::UnknownOffer);
    };
    let click = ClickRequest {
        query: request.uri().query().unwrap_or_default(),
        ip: client_ip(request.headers(), request.extensions().get()),
        user_agent: header_text(request.headers(), header::USER_AGENT),
    };
    let record = request.method() != Method::HEAD;
    match state.engine.track_click(&tenant, offer_id, &click, record).await {
        // HEAD (link checkers, previews) is told the link works but gets no click id.
        Ok(_) if !record => no_store(StatusCode::OK.into_response()),
        Ok(redirect) => match HeaderValue::from_str(&redirect.location) {
            Ok(location) => {
                no_store((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
            }
            Err(_) => refusal(&ClickRefused::UnknownOffer),
        },
        Err(refused) => refusal(&refused),
    }
}

/// A plain-words page for the user whose click was refused.
fn refusal(refused: &ClickRefused) -> Response {
    if let ClickRefused::Storage(error) = refused {
        tracing::error!(%error, "click not recorded");
    }
    let status =
        StatusCode::from_u16(refused.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let page = format!("{refused}\n");
    no_store((status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], page).into_response())
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let text = String::from_utf8_lossy(headers.get(name)?.as_bytes()).trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// The first `X-Forwarded-For` address (gokart usually runs behind a proxy), else the peer.
fn client_ip(headers: &HeaderMap, peer: Option<&ConnectInfo<SocketAddr>>) -> Option<String> {
    let forwarded = header_text(headers, header::HeaderName::from_static("x-forwarded-for"))
        .and_then(|list| list.split(',').next().map(|first| first.trim().to_owned()))
        .filter(|first| first.parse::<std::net::IpAddr>().is_ok());
    forwarded.or_else(|| peer.map(|ConnectInfo(addr)| addr.ip().to_string()))
}
