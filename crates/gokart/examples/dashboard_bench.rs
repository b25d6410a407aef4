//! Server time of the dashboard's Offer Management and Conversions pages with 10,000 offers and
//! 1,000,000 conversions stored (issue 5: each page under 50 ms of server time).
//!
//! ```text
//! cargo run --release -p gokart --example dashboard_bench -- --backend sqlite|postgres|both
//! ```
//!
//! For each backend: a fresh database (a SQLite file in the temp directory; a new database on
//! `--pg-url`), a tenant with 20 partners, `--offers` offers and `--conversions` conversions (each
//! with its click and one to three conversion events, spread over the last `--days` days, so the
//! page's default 30-day range holds all of them by default), seeded straight into the tables with
//! multi-row INSERTs. Then the real server starts in this process, the benchmark signs in to the
//! dashboard and requests each page `--requests` times, one at a time, and prints p50/p99 of the
//! server time (the dashboard's `Server-Timing: app;dur=<ms>` header) and of the latency the
//! client saw. PostgreSQL gets `VACUUM ANALYZE` after the seeding, as autovacuum would do.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use clap::Parser;
use gokart::Server;
use gokart_domain::{
    offer::{Offer, OfferSpec, OfferStatus},
    tenant::TenantKind,
    Money,
};
use gokart_engine::{tenants::NewTenant, PublicUrls, SystemClock};
use gokart_storage::{DirectoryKind, OfferRecord, TenantRecord};
use serde_json::json;
use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// sqlite, postgres or both.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    #[arg(long, default_value_t = 10_000)]
    offers: usize,
    #[arg(long, default_value_t = 1_000_000)]
    conversions: usize,
    /// The conversions are spread evenly over this many days up to now.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Timed requests per page (after 3 untimed ones).
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// PostgreSQL server for the postgres backend (a fresh database is created on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    /// Keep the seeded database instead of deleting it (its URL is printed).
    #[arg(long)]
    keep: bool,
}

const PASSWORD: &str = "password-123";
const PARTNERS: usize = 20;
/// Half of the conversions go to the first `BIG_OFFERS` offers, the rest spread over all.
const BIG_OFFERS: usize = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backends: Vec<&str> = match args.backend.as_str() {
        "both" => vec!["sqlite", "postgres"],
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        other => anyhow::bail!("--backend {other:?}: use sqlite, postgres or both"),
    };
    let mut results = Vec::new();
    for backend in backends {
        results.extend(run(&args, backend).await?);
    }
    println!();
    println!(
        "{} offers, {} conversions over {} days, {} requests per page",
        args.offers, args.conversions, args.days, args.requests
    );
    println!();
    println!("| backend | page | server p50 ms | server p99 ms | client p50 ms | client p99 ms |");
    println!("|---|---|---|---|---|---|");
    for line in results {
        println!("{line}");
    }
    Ok(())
}

/// Seeds one backend, measures every page, and answers the table rows.
async fn run(args: &Args, backend: &str) -> anyhow::Result<Vec<String>> {
    let (url, database) = fresh_database(backend, &args.pg_url).await?;
    eprintln!("== {backend}: {url}");
    let store = gokart_storage_sql::connect(&url).await?;
    store.migrate().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = Server::new(
        store,
        Arc::new(SystemClock),
        PublicUrls::new("localhost", addr.port(), None),
        false,
        false,
    );
    let engine = server.engine.clone();
    let slug = "dash";
    engine
        .create_tenant(NewTenant {
            slug: slug.into(),
            kind: TenantKind::AffNetwork,
            name: "Dashboard Bench".into(),
            admin_email: "ops@dash.test".into(),
            admin_password: PASSWORD.into(),
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = engine.tenant(slug).await.map_err(|e| anyhow::anyhow!("{e}"))?.unwrap();

    let started = Instant::now();
    let offers = seed_offers(&engine, &tenant, args.offers).await?;
    eprintln!("   {} offers in {:.1} s", offers.len(), started.elapsed().as_secs_f64());
    let started = Instant::now();
    let db = Db::connect(&url).await?;
    let sample = seed_conversions(&db, &tenant, &offers, args.conversions, args.days).await?;
    eprintln!(
        "   {} conversions (clicks, events) in {:.1} s",
        args.conversions,
        started.elapsed().as_secs_f64()
    );
    if let Db::Postgres(pool) = &db {
        let started = Instant::now();
        sqlx::raw_sql("VACUUM ANALYZE").execute(pool).await?;
        eprintln!("   VACUUM ANALYZE in {:.1} s", started.elapsed().as_secs_f64());
    }
    db.close().await;

    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        gokart::serve(&server, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let browser = Browser::sign_in(addr, slug).await?;
    let big = offers[0].offer.id;
    // Each page with a text it must show, so an empty or wrong page is never timed.
    let row = "data-offer-id=";
    let card = "data-conversion-id=";
    let pages: Vec<(&str, String, String)> = vec![
        ("offers, first page", "/offers".into(), row.into()),
        ("offers, paused, name contains 7", "/offers?status=Pending&search=7".into(), row.into()),
        ("offers, page 150", "/offers?page=150".into(), row.into()),
        ("conversions, first page", "/conversions".into(), card.into()),
        (
            "conversions, one offer, rejected",
            format!("/conversions?offer={big}&status=Rejected"),
            card.into(),
        ),
        ("conversions, rejected", "/conversions?status=Rejected".into(), card.into()),
        ("conversions, page 1000", "/conversions?page=1000".into(), card.into()),
        (
            "conversions, member search",
            format!("/conversions?search={}", sample.member),
            sample.member.clone(),
        ),
        (
            "conversions, click id search",
            format!("/conversions?search={}", sample.click),
            sample.click.to_string(),
        ),
    ];
    let mut rows = Vec::new();
    for (name, path, expected) in pages {
        let timing = browser.measure(&path, &expected, args.requests).await?;
        eprintln!("   {name}: {timing}");
        rows.push(format!("| {backend} | {name} | {timing} |"));
    }

    let _ = stop.send(());
    serving.await??;
    drop(engine);
    if args.keep {
        eprintln!("   kept {url}");
    } else {
        database.remove(&args.pg_url).await?;
    }
    Ok(rows)
}

// ---- The database ----

/// Where the seeded database lives, to remove it afterwards.
enum Database {
    File(std::path::PathBuf),
    Postgres(String),
}

impl Database {
    async fn remove(self, pg_url: &str) -> anyhow::Result<()> {
        match self {
            Database::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = path.clone().into_os_string();
                    name.push(suffix);
                    let _ = std::fs::remove_file(name);
                }
            }
            Database::Postgres(name) => {
                let admin = sqlx::PgPool::connect(pg_url).await?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
            }
        }
        Ok(())
    }
}

async fn fresh_database(backend: &str, pg_url: &str) -> anyhow::Result<(String, Database)> {
    let tag = &Uuid::new_v4().simple().to_string()[..12];
    if backend == "postgres" {
        let name = format!("gokart_dash_{tag}");
        let admin = sqlx::PgPool::connect(pg_url).await?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
        admin.close().await;
        let base = pg_url.rsplit_once('/').map_or(pg_url, |(base, _)| base);
        Ok((format!("{base}/{name}"), Database::Postgres(name)))
    } else {
        let path = std::env::temp_dir().join(format!("gokart-dash-{tag}.db"));
        Ok((format!("sqlite://{}", path.display()), Database::File(path)))
    }
}

/// A connection for the seeding, beside the server's store.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    async fn connect(url: &str) -> anyhow::Result<Db> {
        Ok(if url.starts_with("sqlite:") {
            let pool =
                sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(url).await?;
            // Bulk loading only: the seeded file is thrown away if the machine crashes.
            sqlx::raw_sql("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144")
                .execute(&pool)
                .await?;
            Db::Sqlite(pool)
        } else {
            Db::Postgres(
                sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?,
            )
        })
    }

    /// Runs `sql` (one or more statements, values inlined) on the single connection.
    async fn run(&self, sql: &str) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop)?,
            Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    async fn close(self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

// ---- Seeding ----

/// Partners, then `count` three-event offers (newest last), a third of them shared with a
/// partner and a tenth paused, through the storage traits.
async fn seed_offers(
    engine: &gokart_engine::Engine,
    tenant: &TenantRecord,
    count: usize,
) -> anyhow::Result<Vec<OfferRecord>> {
    let mut partners = Vec::new();
    for k in 0..PARTNERS {
        let body =
            json!({"name": format!("Reward Wall {k:02}"), "email": format!("wall{k}@dash.test")});
        let created = engine
            .create_item(tenant, DirectoryKind::Partners, &body)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        partners.push(created.item.id);
    }
    let spec: OfferSpec = serde_json::from_value(json!({
        "name": "Pet the Dogs iOS", "advertiserCampaignName": "Game_iOS_GoKart",
        "offerType": "MultiEvent", "trackingSystem": "Adjust", "platform": "IOS",
        "trackingSystemLink": "https://app.adjust.com/abc123?campaign=Game_iOS_GoKart",
        "headline": "Pet the dogs, reach level 400",
        "targeting": {"countries": ["US", "ZA", "AU"], "ageFrom": 18}, "epc": 1,
        "events": [
            {"eventId": "Install", "name": "Install", "sequenceNumber": 1, "revenue": 1.5, "reward": 150},
            {"eventId": "s2s_level 200", "name": "Reach Level 200", "sequenceNumber": 2, "revenue": 2, "reward": 200},
            {"eventId": "s2s_level 400", "name": "Reach Level 400", "sequenceNumber": 3, "revenue": 3, "reward": 300}
        ]
    }))?;
    let now = Utc::now();
    let mut offers = Vec::with_capacity(count);
    let mut tx = engine.store.write().await?;
    for i in 0..count {
        // One a minute, the first one (the biggest, see `offer_of`) the newest.
        let created_at = now - chrono::Duration::minutes(i as i64 + 1);
        let mut spec = spec.clone();
        spec.name = format!("Pet the Dogs #{i:05} iOS");
        let partner = (i % 3 == 1).then(|| partners[i % PARTNERS]);
        let record = OfferRecord {
            offer: Offer {
                id: v7(created_at),
                status: if i % 10 == 9 { OfferStatus::Pending } else { OfferStatus::Active },
                partner_id: partner,
                shared_at: partner.map(|_| created_at),
                created_at,
                updated_at: created_at,
                spec,
            },
            spent: Money::ZERO,
        };
        tx.insert_offer(tenant.id, &record).await?;
        offers.push(record);
    }
    tx.commit().await?;
    Ok(offers)
}

/// A conversion to search for.
struct Sample {
    member: String,
    click: Uuid,
}

/// Which offer conversion `n` belongs to: half to the first `BIG_OFFERS`, half spread over all.
fn offer_of(n: usize, offers: usize) -> usize {
    let mixed = n.wrapping_mul(2_654_435_761) >> 7;
    if n % 2 == 1 {
        mixed % offers
    } else {
        mixed % BIG_OFFERS.min(offers)
    }
}

/// `count` conversions, each with its click and 1–3 events, oldest first, spread over the last
/// `days` days; multi-row INSERTs of 1,000 rows, committed every 50,000 conversions.
async fn seed_conversions(
    db: &Db,
    tenant: &TenantRecord,
    offers: &[OfferRecord],
    count: usize,
    days: i64,
) -> anyhow::Result<Sample> {
    const ROWS: usize = 1_000;
    const COMMIT_EVERY: usize = 50_000;
    let tenant_id = tenant.id;
    let end = Utc::now() - chrono::Duration::minutes(1);
    let span = chrono::Duration::days(days).num_microseconds().unwrap_or(0);
    let step = span / count.max(1) as i64;
    let start_micros = end.timestamp_micros() - span;
    let names = ["Install", "Reach Level 200", "Reach Level 400"];
    let event_ids = ["Install", "s2s_level 200", "s2s_level 400"];
    let mut sample = None;
    let mut n = 0;
    while n < count {
        let mut sql = String::from("BEGIN;\n");
        let batch_end = (n + COMMIT_EVERY).min(count);
        while n < batch_end {
            let chunk_end = (n + ROWS).min(batch_end);
            let mut clicks = String::from(
                "INSERT INTO clicks (id, tenant_id, offer_id, partner_id, pub_member_id, \
                 pub_click_id, pub_params, ip, user_agent, created_at) VALUES ",
            );
            let mut conversions = String::from(
                "INSERT INTO conversions (id, tenant_id, offer_id, click_id, partner_id, \
                 pub_member_id, status, rejection_reason, created_at, updated_at) VALUES ",
            );
            let mut events = String::from(
                "INSERT INTO conversion_events (id, tenant_id, conversion_id, offer_id, click_id, \
                 partner_id, pub_member_id, event_id, event_name, sequence_number, dedup_key, \
                 status, rejection_reason, counted, revenue, reward, amount, currency, \
                 transaction_id, params, completed_at, pending_until, created_at, updated_at) \
                 VALUES ",
            );
            for i in n..chunk_end {
                let offer = &offers[offer_of(i, offers.len())].offer;
                let partner = offer.partner_id.map_or("NULL".to_owned(), |p| format!("'{p}'"));
                let clicked = start_micros + step * i as i64;
                let converted = clicked + 60_000_000;
                let click_id = v7(gokart_domain::time::from_micros(clicked));
                let conversion_id = v7(gokart_domain::time::from_micros(converted));
                let member = format!("member-{i:07}");
                let (status, reason) = match i % 10 {
                    0 => ("Rejected", "'CapReached'"),
                    1 | 2 => ("Pending", "NULL"),
                    _ => ("Success", "NULL"),
                };
                let comma = if i == n { "" } else { "," };
                write!(
                    clicks,
                    "{comma}('{click_id}','{tenant_id}','{}',{partner},'{member}','pc-{i}',\
                     '{{\"pub_sub_1\":\"wall\"}}','203.0.113.7','Mozilla/5.0 (iPhone)',{clicked})",
                    offer.id
                )?;
                write!(
                    conversions,
                    "{comma}('{conversion_id}','{tenant_id}','{}','{click_id}',{partner},\
                     '{member}','{status}',{reason},{converted},{converted})",
                    offer.id
                )?;
                if sample.is_none() && i >= count / 2 {
                    sample = Some(Sample { member: member.clone(), click: click_id });
                }
                let events_here = 1 + usize::from(i % 3 == 0) + usize::from(i % 9 == 0);
                for e in 0..events_here {
                    let at = converted + e as i64 * 3_600_000_000;
                    let counted = status != "Rejected";
                    let comma = if i == n && e == 0 { "" } else { "," };
                    write!(
                        events,
                        "{comma}('{}','{tenant_id}','{conversion_id}','{}','{click_id}',{partner},\
                         '{member}','{}','{}',{},'','{status}',{reason},{counted},{},{},NULL,NULL,\
                         '{}','{{\"cnv_status\":\"ok\"}}',{at},NULL,{at},{at})",
                        v7(gokart_domain::time::from_micros(at)),
                        offer.id,
                        event_ids[e],
                        names[e],
                        e + 1,
                        15_000 + e as i64 * 5_000,
                        1_500_000 + e as i64 * 500_000,
                        Uuid::new_v4(),
                    )?;
                }
            }
            sql.push_str(&clicks);
            sql.push_str(";\n");
            sql.push_str(&conversions);
            sql.push_str(";\n");
            sql.push_str(&events);
            sql.push_str(";\n");
            n = chunk_end;
        }
        sql.push_str("COMMIT;");
        db.run(&sql).await?;
        if n % 200_000 == 0 {
            eprintln!("   {n} conversions");
        }
    }
    sample.ok_or_else(|| anyhow::anyhow!("no conversions seeded"))
}

/// A time-ordered id for `at`, as gokart makes them.
fn v7(at: DateTime<Utc>) -> Uuid {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        at.timestamp() as u64,
        at.timestamp_subsec_nanos(),
    );
    // Random low bits keep ids made for the same instant distinct.
    let mut id = *Uuid::new_v7(ts).as_bytes();
    id[8..].copy_from_slice(&Uuid::new_v4().as_bytes()[8..]);
    id[8] = (id[8] & 0x3f) | 0x80;
    Uuid::from_bytes(id)
}

// ---- The browser ----

/// A signed-in dashboard session over plain HTTP.
struct Browser {
    client: reqwest::Client,
    addr: SocketAddr,
    host: String,
    cookie: String,
}

impl Browser {
    async fn sign_in(addr: SocketAddr, slug: &str) -> anyhow::Result<Browser> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()?;
        let host = format!("app.{slug}.localhost:{}", addr.port());
        let login = client.get(format!("http://{addr}/login")).header("Host", &host).send().await?;
        let csrf = cookie_value(&login, "gokart_login_csrf")
            .ok_or_else(|| anyhow::anyhow!("no login CSRF cookie"))?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("_csrf", &csrf)
            .append_pair("email", "ops@dash.test")
            .append_pair("password", PASSWORD)
            .finish();
        let signed = client
            .post(format!("http://{addr}/login"))
            .header("Host", &host)
            .header("Cookie", format!("gokart_login_csrf={csrf}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?;
        let session = cookie_value(&signed, "gokart_session")
            .ok_or_else(|| anyhow::anyhow!("sign-in failed: {}", signed.status()))?;
        Ok(Browser { client, addr, host, cookie: format!("gokart_session={session}") })
    }

    /// One GET: server time (from `Server-Timing`) and client latency, in ms.
    async fn get(&self, path: &str, expected: &str) -> anyhow::Result<(f64, f64)> {
        let started = Instant::now();
        let response = self
            .client
            .get(format!("http://{}{path}", self.addr))
            .header("Host", &self.host)
            .header("Cookie", &self.cookie)
            .send()
            .await?;
        let status = response.status();
        let server = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("dur=").nth(1))
            .and_then(|v| v.parse::<f64>().ok());
        let body = response.text().await?;
        let client = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(
            status.is_success() && body.contains(expected),
            "{path}: {status}, expected {expected:?} in\n{}",
            &body[..body.len().min(4000)]
        );
        let server = server.ok_or_else(|| anyhow::anyhow!("{path}: no Server-Timing header"))?;
        Ok((server, client))
    }

    async fn measure(&self, path: &str, expected: &str, requests: usize) -> anyhow::Result<Timing> {
        for _ in 0..3 {
            self.get(path, expected).await?;
        }
        let mut server = Vec::with_capacity(requests);
        let mut client = Vec::with_capacity(requests);
        for _ in 0..requests {
            let (s, c) = self.get(path, expected).await?;
            server.push(s);
            client.push(c);
        }
        Ok(Timing { server: percentiles(server), client: percentiles(client) })
    }
}

fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().find_map(|value| {
        let text = value.to_str().ok()?;
        let (key, rest) = text.split(';').next()?.split_once('=')?;
        (key == name).then(|| rest.to_owned())
    })
}

struct Timing {
    server: [f64; 2],
    client: [f64; 2],
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [s50, s99] = self.server;
        let [c50, c99] = self.client;
        write!(f, "{s50:.1} | {s99:.1} | {c50:.1} | {c99:.1}")
    }
}

/// p50 and p99 (nearest rank).
fn percentiles(mut samples: Vec<f64>) -> [f64; 2] {
    samples.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let index = ((p * samples.len() as f64).ceil() as usize).saturating_sub(1);
        samples.get(index).copied().unwrap_or(f64::NAN)
    };
    [rank(0.50), rank(0.99)]
}
