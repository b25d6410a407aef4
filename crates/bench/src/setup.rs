//! The server under test: a fresh database, a tenant, a shared offer, and the gokart child process.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{json, Value};

use crate::load::{client, get, HttpClient, MakeRequest, OnResponse};

/// The first argument that makes this binary act as `gokart`.
pub const CHILD_MARKER: &str = "__gokart";

pub struct Target {
    pub addr: SocketAddr,
    pub api_host: String,
    offer_id: String,
    /// Path and query of the postback URL without click id and event.
    postback_path: String,
    child: Child,
    database: Database,
}

/// The fresh database of a run, removed when the run is over (a 10-million-click prefill is
/// gigabytes).
enum Database {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

/// This binary as `gokart`; with `under` (a command and its arguments, e.g. valgrind's), run
/// by that command.
fn gokart_command(under: &[String]) -> anyhow::Result<Command> {
    let exe = std::env::current_exe()?;
    let mut command = match under.split_first() {
        Some((tool, arguments)) => {
            let mut command = Command::new(tool);
            command.args(arguments).arg(exe);
            command
        }
        None => Command::new(exe),
    };
    command.arg(CHILD_MARKER);
    Ok(command)
}

async fn fresh_database(backend: &str, pg_url: &str) -> anyhow::Result<(String, Database)> {
    let name = format!("gk_bench_{}", uuid::Uuid::new_v4().simple());
    match backend {
        "sqlite" => {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir)?;
            Ok((format!("sqlite://{}/gokart.db", dir.display()), Database::Sqlite(dir)))
        }
        "postgres" => {
            let admin = sqlx::PgPool::connect(pg_url).await?;
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
            admin.close().await;
            let base = pg_url.rsplit_once('/').map_or(pg_url, |(base, _)| base);
            let database = Database::Postgres { admin_url: pg_url.to_owned(), name: name.clone() };
            Ok((format!("{base}/{name}"), database))
        }
        other => anyhow::bail!("unknown backend {other}: sqlite or postgres"),
    }
}

impl Database {
    async fn remove(self) {
        let removed = match &self {
            Database::Sqlite(dir) => std::fs::remove_dir_all(dir).map_err(anyhow::Error::from),
            Database::Postgres { admin_url, name } => {
                async {
                    let admin = sqlx::PgPool::connect(admin_url).await?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&admin)
                        .await?;
                    admin.close().await;
                    Ok(())
                }
                .await
            }
        };
        if let Err(error) = removed {
            eprintln!("   note: the run's database was not removed: {error}");
        }
    }
}

impl Target {
    /// The server on a fresh `backend` database with `prefill` clicks stored, run `under` a
    /// tool if one is given (`gokart_command`).
    pub async fn start(
        backend: &str,
        pg_url: &str,
        prefill: u64,
        under: &[String],
    ) -> anyhow::Result<Target> {
        let (database_url, database) = fresh_database(backend, pg_url).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let created = gokart_command(&[])?
            .args(["tenant", "create", "bench", "--kind", "aff-network", "--name", "Bench"])
            .args([
                "--admin-email",
                "ops@bench.test",
                "--admin-password",
                "bench-password",
                "--json",
            ])
            .args(["--database-url", &database_url, "--listen", &addr.to_string()])
            .output()?;
        anyhow::ensure!(
            created.status.success(),
            "tenant create: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let tenant: Value = serde_json::from_slice(&created.stdout)?;
        let token = tenant["managementApiToken"].as_str().unwrap_or_default().to_owned();
        let postback_url = tenant["postback"]["url"].as_str().unwrap_or_default();
        let postback_path = postback_url
            .find("/api/v1/")
            .map(|at| postback_url[at..].to_owned())
            .ok_or_else(|| anyhow::anyhow!("no postback url in {tenant}"))?;

        let child = gokart_command(under)?
            .args(["serve", "--listen", &addr.to_string(), "--database-url", &database_url])
            .arg("--allow-private-destinations")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("GOKART_BENCH_SERVER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()?;
        let api_host = format!("api.bench.localhost:{port}");
        let http = client(4);
        wait_until_up(&http, addr, &api_host).await?;
        let offer_id = create_shared_offer(&http, addr, &api_host, &token).await?;
        if prefill > 0 {
            crate::setup::prefill_clicks(&database_url, &offer_id, prefill).await?;
        }
        Ok(Target { addr, api_host, offer_id, postback_path, child, database })
    }

    /// `GET /healthz`, over and over.
    pub fn healthz_requests(&self) -> MakeRequest {
        let (addr, host) = (self.addr, self.api_host.clone());
        Arc::new(move |_| get(addr, &host, "/healthz"))
    }

    /// Clicks from distinct members with realistic publisher parameters.
    /// `first` numbers the first member, so that runs one after another use new members.
    pub fn click_requests(&self, tag: &'static str, first: u64) -> MakeRequest {
        let (addr, host) = (self.addr, self.api_host.clone());
        let path = format!("/api/v1/offer-link/redirect/{}", self.offer_id);
        Arc::new(move |n| {
            let n = first + n;
            get(
                addr,
                &host,
                &format!(
                    "{path}?pub_member_id=member-{tag}-{n}&pub_click_id=pc-{tag}-{n}&pub_sub_1=wall&pub_sub_2=placement-7&pub_sub_3={n}&pub_geo_country=US&pub_device=iphone"
                ),
            )
        })
    }

    /// Postbacks for existing clicks, one event each, from the `first`-th click on.
    pub fn postback_requests(
        &self,
        click_ids: Arc<Vec<String>>,
        event: &'static str,
        first: u64,
    ) -> MakeRequest {
        let (addr, host, path) = (self.addr, self.api_host.clone(), self.postback_path.clone());
        let event = event.replace(' ', "%20");
        Arc::new(move |n| {
            let click = click_ids
                .get((first + n) as usize % click_ids.len().max(1))
                .map_or("", String::as_str);
            get(
                addr,
                &host,
                &format!("{path}&gk_click_id={click}&cnv_event_id={event}&adid=abc&tracker=xyz"),
            )
        })
    }

    /// On SQLite, samples the WAL file's size every 100 ms for as long as the answer is kept;
    /// the answer holds the largest size seen, in bytes.
    pub fn watch_wal(&self) -> Option<Arc<std::sync::atomic::AtomicU64>> {
        let Database::Sqlite(dir) = &self.database else { return None };
        let (wal, peak) =
            (dir.join("gokart.db-wal"), Arc::new(std::sync::atomic::AtomicU64::new(0)));
        let seen = Arc::downgrade(&peak);
        tokio::spawn(async move {
            while let Some(peak) = seen.upgrade() {
                let size = std::fs::metadata(&wal).map_or(0, |meta| meta.len());
                peak.fetch_max(size, std::sync::atomic::Ordering::Relaxed);
                drop(peak);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Some(peak)
    }

    /// The server's process id (the tool's, when run under one).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn peak_rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse().ok()))
            })
            .unwrap_or(0)
    }

    /// CPU time (user and system) the server process has used so far. On PostgreSQL the
    /// database's own processes are not included.
    pub fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // After the command name (in parentheses, may hold spaces) the fields start at the
        // third; utime and stime are the 14th and 15th, in clock ticks (USER_HZ: 100 on Linux).
        let ticks: u64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().skip(11).take(2))
            .into_iter()
            .flatten()
            .filter_map(|field| field.parse::<u64>().ok())
            .sum();
        Duration::from_millis(ticks * 10)
    }

    /// Stops the server and removes its database.
    pub async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.database.remove().await;
    }
}

/// The click ids of the redirects answered so far (from their `Location`), for the postbacks
/// that follow them.
#[derive(Clone, Default)]
pub struct ClickIds(Arc<std::sync::Mutex<Vec<String>>>);

impl ClickIds {
    /// Keeps the click id of each answer it sees.
    pub fn collect(&self) -> OnResponse {
        let seen = self.0.clone();
        Arc::new(move |response| {
            if let Some(id) = click_id_from_location(response) {
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(id);
            }
        })
    }

    /// The ids kept so far; the next call answers those kept after this one.
    pub fn take(&self) -> Arc<Vec<String>> {
        Arc::new(std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner())))
    }
}

fn click_id_from_location(response: &hyper::Response<hyper::body::Incoming>) -> Option<String> {
    let location = response.headers().get(hyper::header::LOCATION)?.to_str().ok()?;
    let at = location.find("gk_click_id=")? + "gk_click_id=".len();
    Some(location[at..].split('&').next()?.to_owned())
}

/// Waits up to two minutes: under callgrind the server takes tens of seconds to start.
async fn wait_until_up(http: &HttpClient, addr: SocketAddr, host: &str) -> anyhow::Result<()> {
    for _ in 0..2400 {
        if let Ok(response) = http.request(get(addr, host, "/healthz")).await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("gokart did not start on {addr}")
}

async fn api(
    http: &HttpClient,
    addr: SocketAddr,
    host: &str,
    token: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let request = Request::post(format!("http://{addr}{path}"))
        .header(hyper::header::HOST, host)
        .header(hyper::header::AUTHORIZATION, format!("ApiToken {token}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = http.request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{path}: {status} {value}");
    Ok(value)
}

async fn create_shared_offer(
    http: &HttpClient,
    addr: SocketAddr,
    host: &str,
    token: &str,
) -> anyhow::Result<String> {
    let partner = api(
        http,
        addr,
        host,
        token,
        "/api/v1/sdk-back-office-management/partners",
        json!({"name": "Bench Wall", "email": "wall@bench.test"}),
    )
    .await?;
    let offer = api(
        http,
        addr,
        host,
        token,
        "/api/v1/sdk-offer-management/aff-network/offers",
        json!({
            "name": "Bench Offer", "offerType": "MultiEvent", "trackingSystem": "Adjust",
            "trackingSystemLink": "https://app.adjust.com/bench?campaign={pub_sub_1}",
            "targeting": {"countries": ["US"]},
            "events": [
                {"eventId": "Install", "name": "Install", "sequenceNumber": 1, "revenue": 1.5, "reward": 150},
                {"eventId": "s2s_level 200", "name": "Reach Level 200", "sequenceNumber": 2, "revenue": 2, "reward": 200}
            ]
        }),
    )
    .await?;
    let offer_id = offer["data"]["id"].as_str().unwrap_or_default().to_owned();
    let partner_id = partner["data"]["id"].as_str().unwrap_or_default();
    api(
        http,
        addr,
        host,
        token,
        &format!("/api/v1/sdk-offer-management/offers/{offer_id}/share"),
        json!({ "partnerId": partner_id }),
    )
    .await?;
    Ok(offer_id)
}

/// Stores `count` clicks on the offer straight into the database, generated by the database
/// itself in batches, so that a 10-million-click table takes minutes, not hours.
pub async fn prefill_clicks(database_url: &str, offer_id: &str, count: u64) -> anyhow::Result<()> {
    eprintln!("   storing {count} clicks");
    const BATCH: u64 = 200_000;
    let (sqlite, postgres) = if database_url.starts_with("sqlite:") {
        (Some(sqlx::SqlitePool::connect(database_url).await?), None)
    } else {
        (None, Some(sqlx::PgPool::connect(database_url).await?))
    };
    let tenant_offer = "SELECT tenant_id, partner_id FROM offers WHERE id = $1";
    let (tenant_id, partner_id): (String, Option<String>) = match (&sqlite, &postgres) {
        (Some(pool), _) => sqlx::query_as(tenant_offer).bind(offer_id).fetch_one(pool).await?,
        (_, Some(pool)) => sqlx::query_as(tenant_offer).bind(offer_id).fetch_one(pool).await?,
        _ => unreachable!("one pool is open"),
    };
    let mut start = 0u64;
    while start < count {
        let end = (start + BATCH).min(count);
        let (lo, hi) = (start as i64, end as i64);
        match (&sqlite, &postgres) {
            (Some(pool), _) => {
                sqlx::query(SQLITE_PREFILL)
                    .bind(lo)
                    .bind(hi)
                    .bind(&tenant_id)
                    .bind(offer_id)
                    .bind(&partner_id)
                    .execute(pool)
                    .await?;
            }
            (_, Some(pool)) => {
                sqlx::query(POSTGRES_PREFILL)
                    .bind(lo)
                    .bind(hi)
                    .bind(&tenant_id)
                    .bind(offer_id)
                    .bind(&partner_id)
                    .execute(pool)
                    .await?;
            }
            _ => unreachable!("one pool is open"),
        }
        start = end;
    }
    Ok(())
}

// Click ids are UUID-shaped text made from the row number, so they never collide with real ones
// (version nibble 0).
const SQLITE_PREFILL: &str = "
    WITH RECURSIVE seq(n) AS (SELECT $1 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < $2)
    INSERT INTO clicks (id, tenant_id, offer_id, partner_id, pub_member_id, pub_click_id,
                        pub_params, ip, user_agent, created_at)
    SELECT printf('00000000-0000-0000-0000-%012x', n), $3, $4, $5, 'prefill-' || n, 'pc-' || n,
           '{}', '127.0.0.1', 'prefill', 0
    FROM seq";

const POSTGRES_PREFILL: &str = "
    INSERT INTO clicks (id, tenant_id, offer_id, partner_id, pub_member_id, pub_click_id,
                        pub_params, ip, user_agent, created_at)
    SELECT '00000000-0000-0000-0000-' || lpad(to_hex(n), 12, '0'), $3, $4, $5, 'prefill-' || n,
           'pc-' || n, '{}', '127.0.0.1', 'prefill', 0
    FROM generate_series($1::bigint, $2::bigint - 1) AS n";
