//! The one HTTP client outbound deliveries go through: SSRF-guarded, no redirects, bounded in
//! time and in how much of the answer it reads.

use std::{
    error::Error as StdError,
    sync::Arc,
    time::{Duration, Instant},
};

use gokart_domain::retry::AttemptResult;
use reqwest::{
    header::{HeaderMap, HeaderName, HeaderValue},
    redirect, Response,
};
use url::Url;

use crate::ssrf::{
    self, ForbiddenDestination, GuardedResolver, Lookup, ResolveError, SystemLookup,
};

const USER_AGENT: &str = "gokart-postback/0.1";
const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a response body is kept in the attempt log.
pub const SNIPPET_LIMIT: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// What one send produced, as recorded in the delivery's attempt log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub result: AttemptResult,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The first [`SNIPPET_LIMIT`] bytes of the response body, lossy UTF-8.
    pub response_snippet: Option<String>,
}

impl Attempt {
    fn refused(error: impl ToString) -> Self {
        Self {
            result: AttemptResult::Refused,
            latency_ms: 0,
            error: Some(error.to_string()),
            response_snippet: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutboundClient {
    http: reqwest::Client,
    allow_private: bool,
}

impl OutboundClient {
    /// A client resolving names with the system resolver. Private, loopback, link-local and
    /// metadata destinations are refused unless `allow_private`.
    pub fn new(allow_private: bool) -> Result<Self, reqwest::Error> {
        Self::with_lookup(allow_private, Arc::new(SystemLookup))
    }

    /// A client resolving names through `lookup`, e.g. a stub in tests.
    pub fn with_lookup(
        allow_private: bool,
        lookup: Arc<dyn Lookup>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver::new(lookup, allow_private)))
            // Through a proxy the resolver would vet the proxy's address, not the destination's.
            .no_proxy()
            .redirect(redirect::Policy::none())
            .timeout(TOTAL_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(USER_AGENT)
            .build()?;
        Ok(Self { http, allow_private })
    }

    /// Sends `request` once. Never fails: every outcome, refusals included, is an [`Attempt`].
    pub async fn send(&self, request: OutboundRequest) -> Attempt {
        let url = match self.checked_url(&request.url) {
            Ok(url) => url,
            Err(reason) => return Attempt::refused(reason),
        };
        let headers = match header_map(&request.headers) {
            Ok(headers) => headers,
            Err(reason) => return Attempt::refused(reason),
        };
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut builder = self.http.request(method, url).headers(headers);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }

        let started = Instant::now();
        let attempt = match builder.send().await {
            Ok(response) => answered(response).await,
            Err(error) => failed(error),
        };
        Attempt {
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..attempt
        }
    }

    fn checked_url(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw).map_err(|e| format!("invalid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("unsupported URL scheme {:?}", url.scheme()));
        }
        ssrf::check_url_host(&url, self.allow_private).map_err(|e| e.to_string())?;
        Ok(url)
    }
}

fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
        map.append(name, value);
    }
    Ok(map)
}

async fn answered(mut response: Response) -> Attempt {
    let status = response.status().as_u16();
    let (snippet, error) = match read_snippet(&mut response).await {
        Ok(snippet) => (snippet, None),
        Err(e) => (None, Some(format!("reading the response body: {}", chain(&e)))),
    };
    Attempt {
        result: AttemptResult::Status(status),
        latency_ms: 0,
        error,
        response_snippet: snippet,
    }
}

/// Reads at most [`SNIPPET_LIMIT`] bytes (plus the rest of the chunk holding the last of them);
/// the remainder is never read and the connection is dropped with the response.
async fn read_snippet(response: &mut Response) -> Result<Option<String>, reqwest::Error> {
    let mut bytes = Vec::new();
    while bytes.len() < SNIPPET_LIMIT {
        let Some(chunk) = response.chunk().await? else {
            return Ok((!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned()));
        };
        let wanted = (SNIPPET_LIMIT - bytes.len()).min(chunk.len());
        bytes.extend_from_slice(&chunk[..wanted]);
    }
    Ok(Some(truncated_utf8(&bytes)))
}

/// Lossy UTF-8 of a cut-off body, dropping a multi-byte character split by the cut.
fn truncated_utf8(bytes: &[u8]) -> String {
    let end = match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        _ => bytes.len(),
    };
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn failed(error: reqwest::Error) -> Attempt {
    let error = error.without_url();
    let (result, message) = if is_ssrf_refusal(&error) {
        (AttemptResult::Refused, ForbiddenDestination.to_string())
    } else if error.is_builder() {
        (AttemptResult::Refused, chain(&error))
    } else if error.is_timeout() {
        (AttemptResult::Timeout, chain(&error))
    } else {
        // Refused connections, TLS failures, resets and truncated answers: all worth a retry.
        (AttemptResult::ConnectError, chain(&error))
    };
    Attempt { result, latency_ms: 0, error: Some(message), response_snippet: None }
}

fn is_ssrf_refusal(error: &(dyn StdError + 'static)) -> bool {
    sources(error).any(|e| {
        e.is::<ForbiddenDestination>()
            || matches!(e.downcast_ref(), Some(ResolveError::Forbidden(_)))
    })
}

/// `error` and its sources joined with ": ", since reqwest's own message alone says little.
fn chain(error: &(dyn StdError + 'static)) -> String {
    sources(error).map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

fn sources<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        net::{IpAddr, SocketAddr},
        sync::atomic::{AtomicUsize, Ordering},
    };

    use async_trait::async_trait;
    use axum::{
        body::Body,
        extract::Request,
        http::{header, StatusCode},
        middleware::{self, Next},
        response::IntoResponse,
        routing::get,
        Router,
    };
    use tokio::net::TcpListener;

    use super::*;

    /// A local receiver counting the requests that reach it.
    struct Receiver {
        addr: SocketAddr,
        hits: Arc<AtomicUsize>,
    }

    impl Receiver {
        async fn spawn() -> Self {
            let hits = Arc::new(AtomicUsize::new(0));
            let counter = hits.clone();
            let app = Router::new()
                .route("/ok", get(|| async { "accepted" }).post(echo_user_agent))
                .route("/redirect", get(found))
                .route("/endless", get(endless_body))
                .layer(middleware::from_fn(move |req: Request, next: Next| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    next.run(req)
                }));
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local addr");
            tokio::spawn(async move { axum::serve(listener, app).await });
            Self { addr, hits }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    async fn echo_user_agent(headers: axum::http::HeaderMap, body: String) -> String {
        let agent =
            headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
        format!("{agent} {body}")
    }

    async fn found() -> impl IntoResponse {
        (StatusCode::FOUND, [(header::LOCATION, "/ok")])
    }

    /// An answer that never ends, so reading it all would hang until the timeout.
    async fn endless_body() -> impl IntoResponse {
        let stream = tokio_util::io::ReaderStream::new(tokio::io::repeat(b'x'));
        (StatusCode::OK, Body::from_stream(stream))
    }

    fn get_request(url: String) -> OutboundRequest {
        OutboundRequest { method: Method::Get, url, headers: Vec::new(), body: None }
    }

    /// Resolves every name to one address, without the network.
    struct Stub(IpAddr);

    #[async_trait]
    impl Lookup for Stub {
        async fn lookup(&self, _host: &str) -> io::Result<Vec<IpAddr>> {
            Ok(vec![self.0])
        }
    }

    fn stub_client(ip: &str, allow_private: bool) -> OutboundClient {
        let stub = Arc::new(Stub(ip.parse().expect("valid IP")));
        OutboundClient::with_lookup(allow_private, stub).expect("client")
    }

    fn assert_ssrf_refused(attempt: &Attempt) {
        assert_eq!(attempt.result, AttemptResult::Refused, "{attempt:?}");
        assert_eq!(
            attempt.error.as_deref(),
            Some("destination address is private/loopback (SSRF protection)")
        );
    }

    #[tokio::test]
    async fn loopback_literal_is_refused_without_connecting() {
        let receiver = Receiver::spawn().await;
        let client = OutboundClient::new(false).expect("client");
        for url in
            [receiver.url("/ok"), format!("http://[::ffff:127.0.0.1]:{}/ok", receiver.addr.port())]
        {
            assert_ssrf_refused(&client.send(get_request(url)).await);
        }
        assert_eq!(receiver.hits(), 0);
    }

    #[tokio::test]
    async fn allow_private_reaches_a_local_receiver() {
        let receiver = Receiver::spawn().await;
        let client = OutboundClient::new(true).expect("client");
        let attempt = client
            .send(OutboundRequest {
                method: Method::Post,
                url: receiver.url("/ok"),
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: Some(b"{}".to_vec()),
            })
            .await;
        assert_eq!(attempt.result, AttemptResult::Status(200), "{attempt:?}");
        assert_eq!(attempt.error, None);
        assert_eq!(attempt.response_snippet.as_deref(), Some("gokart-postback/0.1 {}"));
        assert_eq!(receiver.hits(), 1);
    }

    #[tokio::test]
    async fn a_public_looking_name_resolving_to_a_private_address_is_refused() {
        let client = stub_client("10.0.0.1", false);
        let attempt =
            client.send(get_request("https://partner.example/postback?id=1".into())).await;
        assert_ssrf_refused(&attempt);
    }

    #[tokio::test]
    async fn names_go_through_the_guarded_resolver() {
        let receiver = Receiver::spawn().await;
        let url = format!("http://receiver.example:{}/ok", receiver.addr.port());

        let attempt = stub_client("127.0.0.1", false).send(get_request(url.clone())).await;
        assert_ssrf_refused(&attempt);
        assert_eq!(receiver.hits(), 0);

        let attempt = stub_client("127.0.0.1", true).send(get_request(url)).await;
        assert_eq!(attempt.result, AttemptResult::Status(200), "{attempt:?}");
        assert_eq!(receiver.hits(), 1);
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let receiver = Receiver::spawn().await;
        let client = OutboundClient::new(true).expect("client");
        let attempt = client.send(get_request(receiver.url("/redirect"))).await;
        assert_eq!(attempt.result, AttemptResult::Status(302), "{attempt:?}");
        assert_eq!(receiver.hits(), 1, "the redirect target must not be requested");
    }

    #[tokio::test]
    async fn an_endless_body_is_cut_at_the_snippet_limit() {
        let receiver = Receiver::spawn().await;
        let client = OutboundClient::new(true).expect("client");
        let attempt = client.send(get_request(receiver.url("/endless"))).await;
        assert_eq!(attempt.result, AttemptResult::Status(200), "{attempt:?}");
        assert_eq!(attempt.error, None);
        assert_eq!(attempt.response_snippet, Some("x".repeat(SNIPPET_LIMIT)));
        assert!(attempt.latency_ms < 5_000, "the body was read to the timeout");
    }

    #[tokio::test]
    async fn non_http_and_invalid_urls_are_refused() {
        let client = OutboundClient::new(false).expect("client");
        for url in ["ftp://partner.example/file", "file:///etc/passwd", "not a url", "http://"] {
            let attempt = client.send(get_request(url.into())).await;
            assert_eq!(attempt.result, AttemptResult::Refused, "{url}: {attempt:?}");
        }
    }

    #[tokio::test]
    async fn invalid_headers_are_refused() {
        let client = OutboundClient::new(false).expect("client");
        let mut request = get_request("https://partner.example/".into());
        request.headers.push(("X-Secret".into(), "line\nbreak".into()));
        let attempt = client.send(request).await;
        assert_eq!(attempt.result, AttemptResult::Refused, "{attempt:?}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connection_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        drop(listener);
        let client = OutboundClient::new(true).expect("client");
        let attempt = client.send(get_request(format!("http://{addr}/"))).await;
        assert_eq!(attempt.result, AttemptResult::ConnectError, "{attempt:?}");
        assert!(attempt.error.is_some());
    }

    #[test]
    fn a_character_split_by_the_cut_is_dropped() {
        assert_eq!(truncated_utf8("aé".as_bytes()), "aé");
        assert_eq!(truncated_utf8(&"aé".as_bytes()[..2]), "a");
        assert_eq!(truncated_utf8(b"a\xffb"), "a\u{fffd}b");
    }
}
