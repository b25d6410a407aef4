//! Test harness: a real gokart on 127.0.0.1:0 with a fresh database (a new SQLite file, or a new
//! PostgreSQL schema when `GOKART_TEST_BACKEND=postgres`), a manual clock, and an HTTP client that
//! addresses tenants through the `Host` header.

#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc};

use chrono::TimeZone;
use gokart::Server;
use gokart_engine::{tenants::NewTenant, Engine, ManualClock, PublicUrls};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn backend_is_postgres() -> bool {
    std::env::var("GOKART_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// A fresh, migrated database URL-equivalent store for one test.
pub async fn fresh_store() -> Arc<dyn gokart_storage::Store> {
    let store: Arc<dyn gokart_storage::Store> = if backend_is_postgres() {
        let url = std::env::var("GOKART_TEST_PG_URL").unwrap_or_else(|_| PG_URL.into());
        let schema = format!("gk_{}", uuid::Uuid::new_v4().simple());
        Arc::new(
            gokart_storage_sql::PostgresStore::connect_to_schema(&url, &schema)
                .await
                .expect("PostgreSQL at 127.0.0.1:5432 (see README)"),
        )
    } else {
        let path = fresh_sqlite_path();
        gokart_storage_sql::connect(&format!("sqlite://{}", path.display())).await.unwrap()
    };
    store.migrate().await.unwrap();
    store
}

pub fn fresh_sqlite_path() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("gokart-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}.db", uuid::Uuid::new_v4()))
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
}

pub struct TestTenant {
    pub slug: String,
    pub token: String,
    pub postback_url: String,
    pub segment: String,
    pub signature: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
        let server = Server::new(
            fresh_store().await,
            Arc::new(clock.clone()),
            PublicUrls::new("localhost", addr.port(), None),
            true,
            false,
        );
        let engine = server.engine.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            gokart::serve(&server, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        TestApp { addr, engine, clock, client, stop: Some(stop) }
    }

    pub async fn tenant(&self, slug: &str) -> TestTenant {
        self.tenant_of_kind(slug, gokart_domain::tenant::TenantKind::AffNetwork).await
    }

    pub async fn tenant_of_kind(
        &self,
        slug: &str,
        kind: gokart_domain::tenant::TenantKind,
    ) -> TestTenant {
        let created = self
            .engine
            .create_tenant(NewTenant {
                slug: slug.into(),
                kind,
                name: format!("Tenant {slug}"),
                admin_email: format!("ops@{slug}.test"),
                admin_password: "password-123".into(),
            })
            .await
            .unwrap();
        TestTenant {
            slug: slug.into(),
            token: created.management_api_token,
            postback_url: created.postback.url,
            segment: created.postback.security_segment,
            signature: created.postback.signature,
        }
    }

    pub fn api_host(&self, slug: &str) -> String {
        format!("api.{slug}.localhost:{}", self.addr.port())
    }

    /// A request to `path` on the tenant's API host.
    pub fn request(&self, method: Method, slug: &str, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("http://{}{path}", self.addr))
            .header(reqwest::header::HOST, self.api_host(slug))
    }

    /// Sends with `Authorization: ApiToken <token>` and returns status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        slug: &str,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request =
            self.request(method, slug, path).header("Authorization", format!("ApiToken {token}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.unwrap()).await
    }
}

impl TestTenant {
    pub async fn get(&self, app: &TestApp, path: &str) -> (StatusCode, Value) {
        app.call(Method::GET, &self.slug, &self.token, path, None).await
    }

    pub async fn post(&self, app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
        app.call(Method::POST, &self.slug, &self.token, path, Some(body)).await
    }

    pub async fn put(&self, app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
        app.call(Method::PUT, &self.slug, &self.token, path, Some(body)).await
    }

    pub async fn patch(&self, app: &TestApp, path: &str) -> (StatusCode, Value) {
        app.call(Method::PATCH, &self.slug, &self.token, path, None).await
    }
}

/// Status and JSON body (`Null` when the body is empty or not JSON).
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The envelope's messages joined, for assertions on field names.
pub fn messages(body: &Value) -> String {
    body["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" | "))
        .unwrap_or_default()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
