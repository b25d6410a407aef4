//! Outbound deliveries (PRODUCT.md §9): partner postbacks, the signed tenant callback, retries,
//! resend, SSRF refusal, leases and many workers on one queue.
//!
//! The conversion engine decides statuses; these tests hand `enqueue_deliveries` the records it
//! would hand over, then step the worker with `run_once` and move `app.clock`.

mod common;
mod tracking_support;

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method as HttpMethod, StatusCode as AxumStatus, Uri},
    Router,
};
use chrono::{Duration, Utc};
use common::{messages, TestApp, TestTenant};
use gokart_delivery::{signing, OutboundClient, Worker, WorkerConfig};
use gokart_domain::{
    offer::{Offer, OfferSpec, OfferStatus},
    Money,
};
use gokart_engine::outbox::StatusChange;
use gokart_storage::{
    ClickRecord, ConversionEventRecord, ConversionRecord, ConversionStatus, DeliveryKind,
    DeliveryRecord, DeliveryStatus, DirectoryItem, DirectoryKind, OfferRecord, TenantRecord,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// A fake receiver: records every request and answers from a switchable sequence (then 200).

#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

struct Receiver {
    addr: SocketAddr,
    state: ReceiverState,
}

impl Receiver {
    async fn spawn() -> Receiver {
        let state = ReceiverState::default();
        let app = Router::new().fallback(record).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn answer_with(&self, statuses: &[u16]) {
        self.state.answers.lock().unwrap().extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn record(
    State(state): State<ReceiverState>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (AxumStatus, &'static str) {
    let query = uri
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    state.received.lock().unwrap().push(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query,
        headers,
        body,
    });
    let status = state.answers.lock().unwrap().pop_front().unwrap_or(200);
    (AxumStatus::from_u16(status).unwrap(), "ok")
}

// ---------------------------------------------------------------------------------------------
// Fixture: a tenant with a partner, an offer shared with it, a click and its conversion.

struct Fixture {
    app: TestApp,
    tenant: TestTenant,
    record: TenantRecord,
    partner_id: Uuid,
    partner_token: String,
    offer: Offer,
    click: ClickRecord,
    conversion: ConversionRecord,
}

impl Fixture {
    async fn new() -> Fixture {
        let app = TestApp::spawn().await;
        let tenant = app.tenant("brownboots").await;
        let record = app.engine.tenant("brownboots").await.unwrap().unwrap();
        let (partner_id, partner_token) = add_partner(&app, &record, "Reward App").await;
        let offer = add_offer(&app, &record, Some(partner_id), "Pet the Dogs iOS").await;
        let now = app.engine.now();
        let mut pub_params = serde_json::Map::new();
        pub_params.insert("pub_sub_1".into(), "s1".into());
        pub_params.insert("pub_sub_15".into(), "fifteen & more".into());
        pub_params.insert("pub_gender".into(), "female".into());
        let click = ClickRecord {
            id: Uuid::new_v4(),
            tenant_id: record.id,
            offer_id: offer.id,
            partner_id: Some(partner_id),
            pub_member_id: "member-7".into(),
            pub_click_id: Some("pub click/1".into()),
            pub_params: pub_params.into(),
            ip: Some("203.0.113.9".into()),
            user_agent: None,
            created_at: now - Duration::minutes(30),
        };
        let conversion = ConversionRecord {
            id: Uuid::new_v4(),
            tenant_id: record.id,
            offer_id: offer.id,
            click_id: click.id,
            partner_id: Some(partner_id),
            pub_member_id: click.pub_member_id.clone(),
            status: ConversionStatus::Success,
            rejection_reason: None,
            created_at: now,
            updated_at: now,
        };
        Fixture { app, tenant, record, partner_id, partner_token, offer, click, conversion }
    }

    /// A conversion event of the fixture's conversion for `event_id`, with `status`.
    fn event(&self, event_id: &str, status: ConversionStatus) -> ConversionEventRecord {
        let event = self.offer.event(event_id).expect("an event of the offer");
        let now = self.app.engine.now();
        let mut params = serde_json::Map::new();
        params.insert("cnv_event_id".into(), event_id.into());
        params.insert("cnv_conversion_id".into(), "adj-123".into());
        params.insert("cnv_sub_1".into(), "sub one".into());
        ConversionEventRecord {
            id: Uuid::new_v4(),
            tenant_id: self.record.id,
            conversion_id: self.conversion.id,
            offer_id: self.offer.id,
            click_id: self.click.id,
            partner_id: self.click.partner_id,
            pub_member_id: self.click.pub_member_id.clone(),
            event_id: event_id.into(),
            event_name: event.name.clone(),
            sequence_number: event.sequence_number,
            dedup_key: String::new(),
            status,
            rejection_reason: (status == ConversionStatus::Rejected).then(|| "Fraud".into()),
            counted: status != ConversionStatus::Rejected,
            revenue: event.revenue.unwrap_or_default(),
            reward: event.reward.unwrap_or_default(),
            amount: Some(Money::parse("4.99").unwrap()),
            currency: Some("EUR".into()),
            transaction_id: Uuid::new_v4(),
            params: params.into(),
            completed_at: now - Duration::minutes(5),
            pending_until: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Hands a status change to the outbox in its own transaction, as the conversion engine does.
    async fn enqueue(&self, event: &ConversionEventRecord, previous: Option<ConversionStatus>) {
        let change = StatusChange {
            tenant: &self.record,
            offer: &self.offer,
            click: &self.click,
            conversion: &self.conversion,
            event,
            previous,
        };
        let mut tx = self.app.engine.store.write().await.unwrap();
        self.app.engine.enqueue_deliveries(&mut *tx, &change).await.unwrap();
        tx.commit().await.unwrap();
    }

    fn worker(&self, allow_private: bool) -> Worker {
        Worker::new(self.app.engine.clone(), OutboundClient::new(allow_private).unwrap())
    }

    async fn partner_call(&self, method: Method, body: Option<Value>) -> (StatusCode, Value) {
        self.app
            .call(method, "brownboots", &self.partner_token, "/api/v1/partner/postbacks", body)
            .await
    }

    async fn deliveries(&self, query: &str) -> Vec<Value> {
        let (status, body) =
            self.tenant.get(&self.app, &format!("/api/v1/deliveries{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["items"].as_array().unwrap().clone()
    }
}

async fn add_partner(app: &TestApp, tenant: &TenantRecord, name: &str) -> (Uuid, String) {
    let now = app.engine.now();
    let id = Uuid::new_v4();
    let mut tx = app.engine.store.write().await.unwrap();
    tx.insert_directory_item(&DirectoryItem {
        id,
        tenant_id: tenant.id,
        kind: DirectoryKind::Partners,
        name: name.into(),
        body: json!({ "id": id, "name": name, "email": "partner@example.test" }),
        created_at: now,
        updated_at: now,
    })
    .await
    .unwrap();
    let token = app.engine.issue_partner_token(&mut *tx, tenant.id, id).await.unwrap();
    tx.commit().await.unwrap();
    (id, token)
}

async fn add_offer(
    app: &TestApp,
    tenant: &TenantRecord,
    partner_id: Option<Uuid>,
    name: &str,
) -> Offer {
    let spec: OfferSpec = serde_json::from_value(json!({
        "name": name,
        "offerType": "MultiEvent",
        "trackingSystem": "Adjust",
        "trackingSystemLink": "https://app.adjust.com/abc",
        "events": [
            { "eventId": "Install", "name": "Install", "sequenceNumber": 1,
              "revenue": 0.5, "reward": 10 },
            { "eventId": "level_200", "name": "Reach Level 200", "sequenceNumber": 2,
              "revenue": 1.25, "reward": 300 },
        ],
    }))
    .unwrap();
    let now = app.engine.now();
    let offer = Offer {
        id: Uuid::new_v4(),
        status: OfferStatus::Active,
        partner_id,
        shared_at: partner_id.map(|_| now),
        created_at: now,
        updated_at: now,
        spec,
    };
    let mut tx = app.engine.store.write().await.unwrap();
    tx.insert_offer(tenant.id, &OfferRecord { offer: offer.clone(), spent: Money::ZERO })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    offer
}

const EVERY_MACRO: &str = "pcid={pub_click_id}&pmid={pub_member_id}&gk={gk_click_id}\
&offer={gk_offer_id}&name={gk_offer_name}&ev={cnv_event_id}&evname={cnv_event_name}\
&payout={payout}&reward={reward}&amount={cnv_amount}&cur={currency}&conv={conversion_id}\
&tx={transaction_id}&status={status}&s1={pub_sub_1}&s2={pub_sub_2}&s15={pub_sub_15}\
&ts={timestamp}";

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn global_and_event_level_postbacks_both_fire_with_every_macro() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    let (status, body) = f
        .partner_call(
            Method::PUT,
            Some(json!({
                "globalUrl": receiver.url(&format!("/global?{EVERY_MACRO}")),
                "eventPostbacks": [{
                    "offerId": f.offer.id,
                    "eventId": "level_200",
                    "url": receiver.url("/level?tx={transaction_id}&payout={payout}"),
                }],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, shown) = f.partner_call(Method::GET, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["data"]["eventPostbacks"][0]["eventId"], "level_200");

    let level = f.event("level_200", ConversionStatus::Success);
    f.enqueue(&level, None).await;
    assert_eq!(f.worker(true).run_once().await, 2);

    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let global = received.iter().find(|r| r.path == "/global").expect("the global postback");
    let event_level = received.iter().find(|r| r.path == "/level").expect("the event postback");
    assert_eq!(global.method, "GET");
    let q = &global.query;
    let expected = [
        ("pcid", "pub click/1".to_owned()),
        ("pmid", "member-7".to_owned()),
        ("gk", f.click.id.to_string()),
        ("offer", f.offer.id.to_string()),
        ("name", "Pet the Dogs iOS".to_owned()),
        ("ev", "level_200".to_owned()),
        ("evname", "Reach Level 200".to_owned()),
        ("payout", "1.25".to_owned()),
        ("reward", "300".to_owned()),
        ("amount", "4.99".to_owned()),
        ("cur", "USD".to_owned()),
        ("conv", f.conversion.id.to_string()),
        ("tx", level.transaction_id.to_string()),
        ("status", "Success".to_owned()),
        ("s1", "s1".to_owned()),
        ("s2", String::new()),
        ("s15", "fifteen & more".to_owned()),
        ("ts", level.completed_at.timestamp().to_string()),
    ];
    for (name, value) in expected {
        assert_eq!(q.get(name), Some(&value), "macro for {name} in {q:?}");
    }
    assert_eq!(event_level.query["tx"], level.transaction_id.to_string());
    assert_eq!(event_level.query["payout"], "1.25");

    // Another event: only the global postback (no event-level one for Install), its own id.
    let install = f.event("Install", ConversionStatus::Success);
    f.enqueue(&install, None).await;
    assert_eq!(f.worker(true).run_once().await, 1);
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[2].path, "/global");
    assert_eq!(received[2].query["tx"], install.transaction_id.to_string());
    assert_ne!(install.transaction_id, level.transaction_id);
    assert_eq!(received[2].query["payout"], "0.5");

    // Every delivery is listed with its transaction id.
    let items = f.deliveries("?kind=PartnerPostback").await;
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|d| d["status"] == "Delivered" && d["kind"] == "PartnerPostback"));
    assert_eq!(
        items.iter().filter(|d| d["transactionId"] == level.transaction_id.to_string()).count(),
        2
    );
}

#[tokio::test]
async fn a_reversed_success_fires_again_only_templates_with_status() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    let (status, body) = f
        .partner_call(
            Method::PUT,
            Some(json!({
                "globalUrl": receiver.url("/global?tx={transaction_id}&status={status}"),
                "eventPostbacks": [{
                    "offerId": f.offer.id,
                    "eventId": "level_200",
                    "url": receiver.url("/level?tx={transaction_id}"),
                }],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Pending fires nothing; Success fires both; the reversal only the one with {status}.
    let mut event = f.event("level_200", ConversionStatus::Pending);
    f.enqueue(&event, None).await;
    assert_eq!(f.worker(true).run_once().await, 0);
    event.status = ConversionStatus::Success;
    f.enqueue(&event, Some(ConversionStatus::Pending)).await;
    event.status = ConversionStatus::Rejected;
    f.enqueue(&event, Some(ConversionStatus::Success)).await;
    assert_eq!(f.worker(true).run_once().await, 3);

    let received = receiver.received();
    let statuses: Vec<(&str, &str)> = received
        .iter()
        .map(|r| (r.path.as_str(), r.query.get("status").map_or("", String::as_str)))
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == ("/global", "Success")).count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == ("/global", "Rejected")).count(), 1);
    assert_eq!(statuses.iter().filter(|s| s.0 == "/level").count(), 1, "{statuses:?}");
    assert!(received.iter().all(|r| r.query["tx"] == event.transaction_id.to_string()));
}

#[tokio::test]
async fn partner_postback_settings_are_checked() {
    let f = Fixture::new().await;
    let other_offer = add_offer(&f.app, &f.record, None, "Unshared").await;
    let (other_partner, _) = add_partner(&f.app, &f.record, "Other").await;
    let foreign = add_offer(&f.app, &f.record, Some(other_partner), "Someone else's").await;

    let cases = [
        (json!({ "globalUrl": "https://p.example/pb?x={nope}" }), "globalUrl", "{nope}"),
        (json!({ "globalUrl": "ftp://p.example/pb" }), "globalUrl", "http"),
        (json!({ "globalUrl": "not a url" }), "globalUrl", "http"),
        (
            json!({ "eventPostbacks": [{ "offerId": f.offer.id, "eventId": "level_200",
                                           "url": "https://p.example/?a={payout}&b={bogus}" }] }),
            "eventPostbacks[0].url",
            "{bogus}",
        ),
        (
            json!({ "eventPostbacks": [{ "offerId": other_offer.id, "eventId": "Install",
                                           "url": "https://p.example/" }] }),
            "eventPostbacks[0].offerId",
            "shared",
        ),
        (
            json!({ "eventPostbacks": [{ "offerId": foreign.id, "eventId": "Install",
                                           "url": "https://p.example/" }] }),
            "eventPostbacks[0].offerId",
            "shared",
        ),
        (
            json!({ "eventPostbacks": [{ "offerId": f.offer.id, "eventId": "level_999",
                                           "url": "https://p.example/" }] }),
            "eventPostbacks[0].eventId",
            "level_999",
        ),
        (
            json!({ "eventPostbacks": [{ "offerId": "not-a-uuid", "url": "https://p.example/" }] }),
            "eventPostbacks[0].offerId",
            "",
        ),
        (json!({ "globalUrl": 5 }), "globalUrl", ""),
    ];
    for (body, field, hint) in cases {
        let (status, answer) = f.partner_call(Method::PUT, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        let text = messages(&answer);
        assert!(text.contains(field) && text.contains(hint), "{body} → {text}");
    }

    // The Management token is the wrong scope for a partner's own settings.
    let (status, _) = f.tenant.get(&f.app, "/api/v1/partner/postbacks").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Clearing works; nothing was saved by the refused attempts.
    let (status, body) = f.partner_call(Method::GET, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["globalUrl"], Value::Null);
    assert_eq!(body["data"]["eventPostbacks"], json!([]));
}

#[tokio::test]
async fn the_callback_is_signed_and_carries_the_configured_header() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    let (status, body) = f
        .tenant
        .put(
            &f.app,
            "/api/v1/profile/callback",
            json!({ "url": receiver.url("/callback"), "headerName": "X-Api-Key",
                    "headerValue": "s3cret", "sendPending": false, "sendRejected": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, shown) = f.tenant.get(&f.app, "/api/v1/profile/callback").await;
    assert_eq!(status, StatusCode::OK);
    let settings = &shown["data"];
    assert_eq!(settings["headerName"], "X-Api-Key");
    assert!(!shown.to_string().contains("s3cret"), "the header value is write-only: {shown}");
    let secret = settings["signingSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    // Pending is not sent by default; Success is; the reversal to Rejected is (sendRejected).
    let mut event = f.event("level_200", ConversionStatus::Pending);
    f.enqueue(&event, None).await;
    event.status = ConversionStatus::Success;
    f.enqueue(&event, Some(ConversionStatus::Pending)).await;
    event.status = ConversionStatus::Rejected;
    f.enqueue(&event, Some(ConversionStatus::Success)).await;
    assert_eq!(f.worker(true).run_once().await, 2);

    let received = receiver.received();
    assert_eq!(received.len(), 2);
    let mut statuses = Vec::new();
    for request in &received {
        assert_eq!(request.method, "POST");
        let header = |name: &str| request.headers[name].to_str().unwrap().to_owned();
        assert_eq!(header("x-api-key"), "s3cret");
        assert_eq!(header("content-type"), "application/json");
        let id = header("webhook-id");
        let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
        let signature = header("webhook-signature");
        assert!(signing::verify(&secret, &id, timestamp, &request.body, &signature));
        assert!(!signing::verify(&secret, &id, timestamp, b"{}", &signature));

        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["id"], id);
        assert!(body["sentAt"].as_str().unwrap().ends_with('Z'));
        let conversion = &body["conversion"];
        assert_eq!(conversion["conversionId"], f.conversion.id.to_string());
        assert_eq!(conversion["clickId"], f.click.id.to_string());
        assert_eq!(conversion["offerId"], f.offer.id.to_string());
        assert_eq!(conversion["offerName"], "Pet the Dogs iOS");
        assert_eq!(conversion["eventId"], "level_200");
        assert_eq!(conversion["eventName"], "Reach Level 200");
        assert_eq!(conversion["sequenceNumber"], 2);
        assert_eq!(conversion["revenue"].to_string(), "1.25");
        assert_eq!(conversion["rewardPoints"].to_string(), "300");
        assert_eq!(conversion["pubMemberId"], "member-7");
        assert_eq!(conversion["pubClickId"], "pub click/1");
        assert_eq!(conversion["pubSub1"], "s1");
        assert_eq!(conversion["pubSub2"], Value::Null);
        assert_eq!(conversion["pubGender"], "female");
        assert_eq!(conversion["partnerId"], f.partner_id.to_string());
        assert_eq!(conversion["partnerName"], "Reward App");
        assert_eq!(conversion["trackSysConversionId"], "adj-123");
        assert_eq!(conversion["trackSysConversionAmount"].to_string(), "4.99");
        assert_eq!(conversion["trackSysConversionSub1"], "sub one");
        assert_eq!(conversion["clickTime"], "2026-11-22T09:30:00Z");
        statuses.push(conversion["status"].as_str().unwrap().to_owned());
    }
    statuses.sort();
    assert_eq!(statuses, ["Rejected", "Success"]);

    // The delivery id is the webhook id, and the list shows the callback but not the secret.
    let items = f.deliveries("?kind=Callback").await;
    assert_eq!(items.len(), 2);
    assert!(items.iter().any(|d| received[0].headers["webhook-id"] == d["id"].as_str().unwrap()));
    assert!(!Value::Array(items).to_string().contains("s3cret"));

    // Saving again without the write-only value keeps it.
    let (status, body) = f
        .tenant
        .put(
            &f.app,
            "/api/v1/profile/callback",
            json!({ "url": receiver.url("/callback"), "headerName": "X-Api-Key",
                    "sendPending": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["headerValueSet"], true);
    assert_eq!(body["data"]["sendPending"], true);
}

#[tokio::test]
async fn callback_settings_are_checked() {
    let f = Fixture::new().await;
    let cases = [
        (json!({ "url": "ftp://x.example/" }), "url"),
        (
            json!({ "url": "https://x.example/", "headerName": "Bad Header", "headerValue": "v" }),
            "headerName",
        ),
        (
            json!({ "url": "https://x.example/", "headerName": "webhook-id", "headerValue": "v" }),
            "headerName",
        ),
        (json!({ "url": "https://x.example/", "headerName": "X-Key" }), "headerValue"),
        (
            json!({ "url": "https://x.example/", "headerName": "X-Key", "headerValue": "a\nb" }),
            "headerValue",
        ),
        (json!({ "url": "https://x.example/", "headerValue": "v" }), "headerName"),
        (json!({ "sendPending": "yes" }), "sendPending"),
    ];
    for (body, field) in cases {
        let (status, answer) = f.tenant.put(&f.app, "/api/v1/profile/callback", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert!(messages(&answer).contains(field), "{body} → {answer}");
    }
    let (status, _) = f
        .app
        .call(Method::GET, "brownboots", &f.partner_token, "/api/v1/profile/callback", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn set_global_postback(f: &Fixture, url: String) {
    let (status, body) = f.partner_call(Method::PUT, Some(json!({ "globalUrl": url }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn server_errors_are_retried_until_delivered() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    receiver.answer_with(&[500, 500, 200]);
    set_global_postback(&f, receiver.url("/pb?tx={transaction_id}")).await;
    f.enqueue(&f.event("Install", ConversionStatus::Success), None).await;
    let worker = f.worker(true);

    assert_eq!(worker.run_once().await, 1);
    let delivery = &f.deliveries("").await[0];
    assert_eq!(delivery["status"], "Retrying", "{delivery}");
    let next: chrono::DateTime<Utc> = delivery["nextAttemptAt"].as_str().unwrap().parse().unwrap();
    let waited = next - f.app.engine.now();
    assert!(waited >= Duration::seconds(96) && waited <= Duration::seconds(144), "{waited}");
    // Not due yet: nothing to claim.
    assert_eq!(worker.run_once().await, 0);

    for expected in ["Retrying", "Delivered"] {
        let delivery = &f.deliveries("").await[0];
        let next: chrono::DateTime<Utc> =
            delivery["nextAttemptAt"].as_str().unwrap().parse().unwrap();
        f.app.clock.set(next + Duration::seconds(1));
        assert_eq!(worker.run_once().await, 1);
        assert_eq!(f.deliveries("").await[0]["status"], expected);
    }

    let id = f.deliveries("").await[0]["id"].as_str().unwrap().to_owned();
    let (status, detail) = f.tenant.get(&f.app, &format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let detail = &detail["data"];
    assert_eq!(detail["nextAttemptAt"], Value::Null);
    assert_eq!(detail["failureReason"], Value::Null);
    let attempts = detail["attempts"].as_array().unwrap();
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["httpStatus"]).collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(200)]);
    assert_eq!(attempts[2]["responseSnippet"], "ok");
    assert!(attempts.iter().all(|a| a["latencyMs"].is_u64() && a["at"].is_string()));
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn a_404_fails_at_once_and_resend_delivers() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    receiver.answer_with(&[404]);
    set_global_postback(&f, receiver.url("/pb")).await;
    f.enqueue(&f.event("Install", ConversionStatus::Success), None).await;
    let worker = f.worker(true);

    assert_eq!(worker.run_once().await, 1);
    let failed = f.deliveries("?status=Failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["failureReason"], "HTTP 404");
    assert_eq!(failed[0]["nextAttemptAt"], Value::Null);
    let id = failed[0]["id"].as_str().unwrap().to_owned();
    f.app.clock.advance(Duration::days(2));
    assert_eq!(worker.run_once().await, 0, "a failed delivery is not retried");

    let (status, body) =
        f.tenant.post(&f.app, &format!("/api/v1/deliveries/{id}/resend"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "Pending");
    // Already queued: a second resend is refused.
    let (status, _) =
        f.tenant.post(&f.app, &format!("/api/v1/deliveries/{id}/resend"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    assert_eq!(worker.run_once().await, 1);
    let (_, body) = f.tenant.get(&f.app, &format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(body["data"]["status"], "Delivered");
    assert_eq!(body["data"]["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(receiver.received().len(), 2);

    // A delivered one may be resent too.
    let (status, _) =
        f.tenant.post(&f.app, &format!("/api/v1/deliveries/{id}/resend"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(worker.run_once().await, 1);
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn deliveries_api_filters_pages_and_isolates_tenants() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    set_global_postback(&f, receiver.url("/pb")).await;
    for _ in 0..3 {
        f.enqueue(&f.event("Install", ConversionStatus::Success), None).await;
    }
    let (status, body) = f.tenant.get(&f.app, "/api/v1/deliveries?page_size=2&page=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["totalCount"], 3);
    assert_eq!(body["data"]["items"].as_array().unwrap().len(), 1);
    let id = body["data"]["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        f.deliveries(&format!("?conversion_id={}&status=Pending", f.conversion.id)).await.len(),
        3
    );
    assert_eq!(f.deliveries(&format!("?conversion_id={}", Uuid::new_v4())).await.len(), 0);
    assert_eq!(f.deliveries("?kind=Callback").await.len(), 0);

    for (query, field) in [
        ("?status=Done", "status"),
        ("?kind=Email", "kind"),
        ("?conversion_id=x", "conversion_id"),
        ("?page_size=0", "page_size"),
    ] {
        let (status, body) = f.tenant.get(&f.app, &format!("/api/v1/deliveries{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(messages(&body).contains(field), "{query}: {body}");
    }
    for path in ["/api/v1/deliveries/not-a-uuid", &format!("/api/v1/deliveries/{}", Uuid::new_v4())]
    {
        let (status, _) = f.tenant.get(&f.app, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // Another tenant sees none of it, and cannot resend it.
    let other = f.app.tenant("othertenant").await;
    let (status, body) = other.get(&f.app, "/api/v1/deliveries").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["totalCount"], 0);
    let (status, _) = other.get(&f.app, &format!("/api/v1/deliveries/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        other.post(&f.app, &format!("/api/v1/deliveries/{id}/resend"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Partner tokens do not read the tenant's deliveries.
    let (status, _) =
        f.app.call(Method::GET, "brownboots", &f.partner_token, "/api/v1/deliveries", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_private_destination_is_refused_without_the_setting() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    set_global_postback(&f, receiver.url("/pb")).await;
    f.enqueue(&f.event("Install", ConversionStatus::Success), None).await;

    assert_eq!(f.worker(false).run_once().await, 1);
    let delivery = &f.deliveries("").await[0];
    assert_eq!(delivery["status"], "Failed", "{delivery}");
    assert!(delivery["failureReason"].as_str().unwrap().contains("refused"), "{delivery}");
    let error = delivery["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("SSRF"), "{error}");
    assert_eq!(delivery["attempts"][0]["httpStatus"], Value::Null);
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn an_expired_lease_is_claimable_again() {
    let f = Fixture::new().await;
    set_global_postback(&f, "https://partner.example/pb".into()).await;
    f.enqueue(&f.event("Install", ConversionStatus::Success), None).await;
    let engine = &f.app.engine;
    let lease = Duration::seconds(60);

    assert_eq!(engine.claim_deliveries("dead-worker", 10, lease).await.unwrap().len(), 1);
    assert!(engine.claim_deliveries("other", 10, lease).await.unwrap().is_empty());
    f.app.clock.advance(Duration::seconds(61));
    let reclaimed = engine.claim_deliveries("other", 10, lease).await.unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].lease_owner.as_deref(), Some("other"));

    // A released lease is claimable at once.
    engine.release_deliveries("other", &[reclaimed[0].id]).await.unwrap();
    assert_eq!(engine.claim_deliveries("third", 10, lease).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_running_worker_wakes_on_enqueue_and_stops_gracefully() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    set_global_postback(&f, receiver.url("/pb")).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let worker = f.worker(true);
        let cancel = cancel.clone();
        async move { worker.run(cancel).await }
    });
    f.enqueue(&f.event("Install", ConversionStatus::Success), None).await;
    wait_until_delivered(&f, 1).await;
    cancel.cancel();
    running.await.unwrap();
    assert_eq!(receiver.received().len(), 1);
}

async fn wait_until_delivered(f: &Fixture, count: u64) {
    for _ in 0..600 {
        let (_, body) =
            f.tenant.get(&f.app, "/api/v1/deliveries?status=Delivered&page_size=1").await;
        if body["data"]["totalCount"].as_u64() == Some(count) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{count} deliveries were not delivered in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_deliver_every_job_exactly_once() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    let jobs = 2_000;
    let now = f.app.engine.now();
    let mut tx = f.app.engine.store.write().await.unwrap();
    for _ in 0..jobs {
        let transaction_id = Uuid::new_v4();
        tx.insert_delivery(&DeliveryRecord {
            id: Uuid::new_v4(),
            tenant_id: f.record.id,
            kind: DeliveryKind::PartnerPostback,
            conversion_id: None,
            conversion_event_id: None,
            transaction_id: Some(transaction_id),
            url: receiver.url(&format!("/pb?tx={transaction_id}")),
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            status: DeliveryStatus::Pending,
            failure_reason: None,
            attempt_count: 0,
            next_attempt_at: Some(now),
            locked_until: None,
            lease_owner: None,
            first_attempt_at: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    // Each worker drains until it finds nothing; a job it could not see is leased by another.
    let config = WorkerConfig { concurrency: 25, ..WorkerConfig::default() };
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let worker =
            Worker::with_config(f.app.engine.clone(), OutboundClient::new(true).unwrap(), config);
        workers.spawn(async move {
            let mut handled = 0;
            loop {
                let count = worker.run_once().await;
                if count == 0 {
                    return handled;
                }
                handled += count;
            }
        });
    }
    let handled: Vec<usize> = workers.join_all().await;
    assert_eq!(handled.iter().sum::<usize>(), jobs);

    let mut per_transaction: HashMap<String, usize> = HashMap::new();
    for request in receiver.received() {
        *per_transaction.entry(request.query["tx"].clone()).or_default() += 1;
    }
    assert_eq!(per_transaction.len(), jobs);
    assert!(per_transaction.values().all(|count| *count == 1));
    let (_, body) = f.tenant.get(&f.app, "/api/v1/deliveries?status=Delivered&page_size=1").await;
    assert_eq!(body["data"]["totalCount"], jobs);
}

#[tokio::test]
async fn end_to_end_from_the_mmp_postback_to_the_partner_and_the_callback() {
    let f = Fixture::new().await;
    let receiver = Receiver::spawn().await;
    let (status, body) = f
        .partner_call(
            Method::PUT,
            Some(json!({
                "globalUrl": receiver.url("/global?tx={transaction_id}&status={status}&s1={pub_sub_1}"),
                "eventPostbacks": [{ "offerId": f.offer.id, "eventId": "Install",
                                     "url": receiver.url("/install?tx={transaction_id}&payout={payout}") }],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = f
        .tenant
        .put(&f.app, "/api/v1/profile/callback", json!({ "url": receiver.url("/callback") }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, location) = tracking_support::click(
        &f.app,
        "brownboots",
        f.offer.id,
        "pub_member_id=m1&pub_click_id=c1&pub_sub_1=campaign%201",
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = url::Url::parse(&location.unwrap()).unwrap();
    let click: Uuid = location
        .query_pairs()
        .find(|(key, _)| key == "gk_click_id")
        .map(|(_, value)| value.parse().unwrap())
        .expect("the click id in the redirect");
    let (status, install) = tracking_support::mmp_postback(
        &f.app,
        &f.tenant,
        gokart_mmp::Mmp::Adjust,
        &tracking_support::conversion(click, "Install", None),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{install}");
    assert_eq!(install["status"], "Success", "{install}");

    // The 200 came after the deliveries were committed: they are all there.
    assert_eq!(f.worker(true).run_once().await, 3);
    let received = receiver.received();
    let global = received.iter().find(|r| r.path == "/global").unwrap();
    let event_level = received.iter().find(|r| r.path == "/install").unwrap();
    let callback = received.iter().find(|r| r.path == "/callback").unwrap();
    assert_eq!(global.query["tx"], event_level.query["tx"]);
    assert_eq!(global.query["status"], "Success");
    assert_eq!(global.query["s1"], "campaign 1");
    assert_eq!(event_level.query["payout"], "0.5");
    let body: Value = serde_json::from_slice(&callback.body).unwrap();
    assert_eq!(body["conversion"]["conversionId"], install["conversionId"]);
    assert_eq!(body["conversion"]["clickId"], click.to_string());
    assert_eq!(body["conversion"]["status"], "Success");

    // Reversed by the tenant: the {status} template fires again with Rejected.
    let path = format!(
        "/api/v1/sdk-conversion-system/conversions/{}/{}/status?status=Rejected&reason=fraud",
        install["conversionId"].as_str().unwrap(),
        install["conversionEventId"].as_str().unwrap()
    );
    let (status, body) = f.tenant.patch(&f.app, &path).await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(f.worker(true).run_once().await, 1);
    let received = receiver.received();
    assert_eq!(received.len(), 4);
    assert_eq!(received[3].path, "/global");
    assert_eq!(received[3].query["status"], "Rejected");
    assert_eq!(received[3].query["tx"], global.query["tx"]);
}
