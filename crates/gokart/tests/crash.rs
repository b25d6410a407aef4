//! Durability: the real binary is killed with SIGKILL while clicks, postbacks and deliveries are
//! in flight; after each restart every click and postback that was answered is present exactly
//! once, sending the unanswered postbacks again completes the set without double counting, and
//! every callback that became due is delivered at least once. Also `gokart simulate` against the
//! real binary.

use std::{
    collections::{HashMap, HashSet},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{json, Value};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_gokart");
const SLUG: &str = "crashco";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn database_url(path: &Path) -> String {
    if std::env::var("GOKART_TEST_BACKEND").is_ok_and(|b| b == "postgres") {
        // One real database shared by the processes: a fresh schema per test.
        let schema = format!("gk_{}", Uuid::new_v4().simple());
        let base = std::env::var("GOKART_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        gokart_storage_sql::PostgresStore::connect_to_schema(&base, &schema).await.unwrap();
        format!("{base}?options=-c%20search_path%3D{schema}")
    } else {
        format!("sqlite://{}", path.display())
    }
}

/// A running `gokart serve` process.
struct Gokart {
    child: Child,
    api: Api,
}

/// How the test talks to it; cheap to clone into concurrent tasks.
#[derive(Clone)]
struct Api {
    port: u16,
    client: reqwest::Client,
}

impl Gokart {
    async fn start(database_url: &str, port: u16) -> Gokart {
        // The worker runs in the same process, so deliveries are killed mid-send too; a short
        // lease lets the next process take over what the killed one had claimed.
        let child = Command::new(BIN)
            .args(["serve", "--database-url", database_url, "--allow-private-destinations"])
            .args(["--delivery-lease-seconds", "11"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let gokart = Gokart { child, api: Api { port, client } };
        for _ in 0..200 {
            if gokart.api.client.get(gokart.api.url("/healthz")).send().await.is_ok() {
                return gokart;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gokart did not start");
    }

    fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("Host", format!("api.{SLUG}.localhost:{}", self.port))
    }
}

/// `gokart tenant create --json` on the same database.
fn create_tenant(database_url: &str, port: u16) -> Value {
    let output = Command::new(BIN)
        .args(["tenant", "create", SLUG, "--kind", "advertiser", "--name", "Crash Co"])
        .args(["--admin-email", "ops@crash.test", "--admin-password", "password-123", "--json"])
        .args(["--database-url", database_url, "--listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// An offer written straight to the database (the offers API is another module's): one
/// repeatable event, so every postback with a new conversion id is a new conversion event.
async fn create_offer(database_url: &str) -> Uuid {
    let store = gokart_storage_sql::connect(database_url).await.unwrap();
    let mut tx = store.write().await.unwrap();
    let tenant = tx.tenant_by_slug(SLUG).await.unwrap().unwrap();
    let spec = serde_json::from_value(json!({
        "name": "Crash Offer", "offerType": "MultiEvent", "trackingSystem": "Adjust",
        "trackingSystemLink": "https://app.adjust.com/abc",
        "events": [{ "eventId": "purchase", "name": "Purchase", "revenue": 1, "allowRepetitions": true }]
    }))
    .unwrap();
    let now = chrono::Utc::now();
    let offer = gokart_domain::offer::Offer {
        id: Uuid::new_v4(),
        status: Default::default(),
        partner_id: None,
        shared_at: None,
        created_at: now,
        updated_at: now,
        spec,
    };
    let record = gokart_storage::OfferRecord { offer: offer.clone(), spent: Default::default() };
    tx.insert_offer(tenant.id, &record).await.unwrap();
    tx.commit().await.unwrap();
    offer.id
}

async fn click(gokart: &Api, offer: Uuid) -> Uuid {
    try_click(gokart, offer, "crash").await.unwrap()
}

/// One click; its id when it was answered with the redirect.
async fn try_click(gokart: &Api, offer: Uuid, member: &str) -> Option<Uuid> {
    let path = format!("/api/v1/offer-link/redirect/{offer}?pub_member_id={member}");
    let response = gokart.request(reqwest::Method::GET, &path).send().await.ok()?;
    assert!(matches!(response.status().as_u16(), 302 | 503), "{}", response.status());
    let location = url::Url::parse(response.headers().get("location")?.to_str().ok()?).ok()?;
    let id = location.query_pairs().find(|(k, _)| k == "gk_click_id")?.1.parse().ok()?;
    Some(id)
}

/// Records the `conversionEventId` of every callback it receives (the webhook envelope carries
/// the event under `conversion`).
async fn callback_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let record = record.clone();
        async move {
            let payload: Value = serde_json::from_str(&body).unwrap_or_default();
            let payload = payload.get("conversion").unwrap_or(&payload);
            if let Some(id) = payload["conversionEventId"].as_str() {
                record.lock().unwrap().push(id.to_owned());
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Sends one purchase postback; `Some(status)` when it was answered.
async fn send(gokart: &Api, postback_path: &str, click: Uuid, order: &str) -> Option<(u16, Value)> {
    let path = format!(
        "{postback_path}&gk_click_id={click}&cnv_event_id=purchase&cnv_conversion_id={order}"
    );
    let response = gokart.request(reqwest::Method::GET, &path).send().await.ok()?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.ok()?;
    Some((status, body["data"].clone()))
}

/// The conversion's events, read through the API.
async fn events_of(gokart: &Api, token: &str, conversion_id: &str) -> Vec<Value> {
    let path = format!("/api/v1/sdk-conversion-system/conversions/{conversion_id}");
    let response = gokart
        .request(reqwest::Method::GET, &path)
        .header("Authorization", format!("ApiToken {token}"))
        .send()
        .await
        .unwrap();
    let mut body: Value = response.json().await.unwrap();
    body["data"]["conversionEvents"].as_array_mut().map(std::mem::take).unwrap()
}

/// How many events of the conversion carry each conversion id.
async fn orders(gokart: &Api, token: &str, conversion_id: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for event in events_of(gokart, token, conversion_id).await {
        let order = event["params"]["cnv_conversion_id"].as_str().unwrap().to_owned();
        *counts.entry(order).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn clicks_postbacks_and_deliveries_survive_kill_9() {
    let dir = std::env::temp_dir().join("gokart-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let database_url = database_url(&dir.join(format!("crash-{}.db", Uuid::new_v4()))).await;
    let port = free_port();
    let created = create_tenant(&database_url, port);
    let token = created["managementApiToken"].as_str().unwrap().to_owned();
    let postback = url::Url::parse(created["postback"]["url"].as_str().unwrap()).unwrap();
    let postback_path = format!("{}?{}", postback.path(), postback.query().unwrap());
    let offer = create_offer(&database_url).await;
    let store = gokart_storage_sql::connect(&database_url).await.unwrap();
    let tenant_id = store.read().await.unwrap().tenant_by_slug(SLUG).await.unwrap().unwrap().id;

    let mut gokart = Gokart::start(&database_url, port).await;
    let (callback_url, delivered) = callback_receiver().await;
    let response = gokart
        .api
        .request(reqwest::Method::PUT, "/api/v1/profile/callback")
        .header("Authorization", format!("ApiToken {token}"))
        .json(&json!({ "url": callback_url }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let click = click(&gokart.api, offer).await;
    let (_, first) = send(&gokart.api, &postback_path, click, "order-first").await.unwrap();
    let conversion_id = first["conversionId"].as_str().unwrap().to_owned();
    let mut answered = vec!["order-first".to_owned()];
    let mut unanswered = Vec::new();
    let mut answered_clicks = Vec::new();

    // Issue 6 asks for at least 20 kill -9 cycles in CI.
    for cycle in 0..20u64 {
        let mut postbacks = tokio::task::JoinSet::new();
        for n in 0..60 {
            let (api, path) = (gokart.api.clone(), postback_path.clone());
            let order = format!("order-{cycle}-{n}");
            postbacks.spawn(async move {
                let answer = send(&api, &path, click, &order).await;
                (order, answer)
            });
        }
        let mut clicks = tokio::task::JoinSet::new();
        for n in 0..30 {
            let api = gokart.api.clone();
            clicks.spawn(async move { try_click(&api, offer, &format!("m-{cycle}-{n}")).await });
        }
        // Which requests get answered before the kill varies; the assertions hold for any.
        tokio::time::sleep(Duration::from_millis(40 + 15 * (cycle % 8))).await;
        gokart.kill();
        while let Some(result) = postbacks.join_next().await {
            let (order, answer) = result.unwrap();
            match answer {
                Some((200, data)) => {
                    assert_eq!(data["status"], "Success", "{data}");
                    answered.push(order);
                }
                Some((status, data)) => {
                    assert_eq!(status, 503, "answered {status} {data}");
                    unanswered.push(order);
                }
                None => unanswered.push(order),
            }
        }
        while let Some(result) = clicks.join_next().await {
            answered_clicks.extend(result.unwrap());
        }
        gokart = Gokart::start(&database_url, port).await;

        let counts = orders(&gokart.api, &token, &conversion_id).await;
        for order in &answered {
            assert_eq!(counts.get(order), Some(&1), "cycle {cycle}: {order} answered 200");
        }
        assert!(counts.values().all(|n| *n == 1), "nothing twice");
        let mut tx = store.read().await.unwrap();
        for id in &answered_clicks {
            assert!(tx.click(tenant_id, *id).await.unwrap().is_some(), "click {id} was answered");
        }
    }
    assert!(!answered_clicks.is_empty(), "some clicks were answered before the kills");
    // The MMP retries what it got no answer for: each ends up present once.
    for order in &unanswered {
        let (status, _) = send(&gokart.api, &postback_path, click, order).await.unwrap();
        assert_eq!(status, 200);
    }
    let counts = orders(&gokart.api, &token, &conversion_id).await;
    assert_eq!(counts.len(), answered.len() + unanswered.len());
    assert!(counts.values().all(|n| *n == 1));

    // Every Success event's callback arrives at least once, whichever process claimed it. The
    // wait is for an outcome, not a measured time: leases of killed workers run out (11 s).
    let events = events_of(&gokart.api, &token, &conversion_id).await;
    let due: HashSet<String> =
        events.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let mut missing = due.clone();
    for _ in 0..600 {
        let seen: HashSet<String> = delivered.lock().unwrap().iter().cloned().collect();
        missing = due.difference(&seen).cloned().collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(missing.is_empty(), "{} of {} callbacks never delivered", missing.len(), due.len());
    gokart.kill();
}

#[tokio::test]
async fn simulate_plays_an_mmp_against_the_real_binary() {
    let dir = std::env::temp_dir().join("gokart-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let database_url = database_url(&dir.join(format!("simulate-{}.db", Uuid::new_v4()))).await;
    let port = free_port();
    let created = create_tenant(&database_url, port);
    let offer = create_offer(&database_url).await;
    let gokart = Gokart::start(&database_url, port).await;

    let link = format!(
        "http://api.{SLUG}.localhost:{port}/api/v1/offer-link/redirect/{offer}?pub_member_id=u1"
    );
    let output = tokio::process::Command::new(BIN)
        .args([
            "simulate",
            "--link",
            &link,
            "--mmp",
            "adjust",
            "--events",
            "purchase,purchase,level_9",
        ])
        .args(["--amount", "4.99", "--currency", "USD"])
        .args(["--postback-url", created["postback"]["url"].as_str().unwrap()])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("gk_click_id "), "{stdout}");
    let lines: Vec<&str> =
        stdout.lines().filter(|l| l.starts_with("purchase") || l.starts_with("level_9")).collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].contains("200 OK") && lines[0].contains("\"Success\""), "{stdout}");
    assert!(lines[1].contains("\"Success\""), "a new conversion id each time: {stdout}");
    assert!(lines[2].contains("UnknownEvent"), "{stdout}");
    gokart.kill();
}
