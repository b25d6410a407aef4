//! The dashboard's Conversions, Postback Log, Deliveries, Profile → Callback and portal Postback
//! Settings pages over plain HTTP: what they show, and that their forms change state only with
//! the session's CSRF token.

mod common;
mod tracking_support;

use common::{TestApp, TestTenant};
use gokart_delivery::{OutboundClient, Worker};
use gokart_mmp::Mmp;
use gokart_storage::{DirectoryKind, TenantRecord};
use reqwest::StatusCode;
use serde_json::json;
use tracking_support::{click_id, conversion, create_offer, mmp_postback, single_offer};
use uuid::Uuid;

/// A signed-in browser session over plain HTTP.
struct Session {
    host: String,
    cookie: String,
}

impl Session {
    async fn log_in(app: &TestApp, slug: &str, email: &str, password: &str) -> Session {
        let host = format!("app.{slug}.localhost:{}", app.addr.port());
        let response = app
            .client
            .get(format!("http://{}/login", app.addr))
            .header("Host", &host)
            .send()
            .await
            .unwrap();
        let login = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        let token = login.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
        let body = form(&[("_csrf", &token), ("email", email), ("password", password)]);
        let response = app
            .client
            .post(format!("http://{}/login", app.addr))
            .header("Host", &host)
            .header("Cookie", format!("gokart_login_csrf={token}"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("gokart_session="))
            .unwrap();
        Session { host, cookie: cookie.split(';').next().unwrap().to_owned() }
    }

    async fn get(&self, app: &TestApp, path: &str) -> (StatusCode, String) {
        let response = app
            .client
            .get(format!("http://{}{path}", app.addr))
            .header("Host", &self.host)
            .header("Cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (response.status(), unescape(&response.text().await.unwrap()))
    }

    /// The CSRF token of the page at `path`.
    async fn csrf(&self, app: &TestApp, path: &str) -> String {
        let (_, page) = self.get(app, path).await;
        page.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
    }

    async fn post(
        &self,
        app: &TestApp,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let response = app
            .client
            .post(format!("http://{}{path}", app.addr))
            .header("Host", &self.host)
            .header("Cookie", &self.cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
            .await
            .unwrap();
        (response.status(), unescape(&response.text().await.unwrap()))
    }
}

/// The page's text with minijinja's HTML escapes undone, to look for values in it.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in fields {
        body.append_pair(key, value);
    }
    body.finish()
}

/// A tenant with a publisher (and its portal login), an offer shared with it, a global partner
/// postback to a private address (refused at send time, so it fails at once), and one Success
/// conversion sent through the postback API.
struct Scene {
    app: TestApp,
    tenant: TestTenant,
    record: TenantRecord,
    partner_email: String,
    partner_password: String,
    conversion_id: Uuid,
    click_id: Uuid,
}

async fn scene() -> Scene {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let record = app.engine.tenant("brownboots").await.unwrap().unwrap();
    let created = app
        .engine
        .create_item(
            &record,
            DirectoryKind::Partners,
            &json!({ "name": "Reward App", "email": "ops@rewardapp.test" }),
        )
        .await
        .unwrap();
    let credentials = created.partner_credentials.unwrap();
    let partner = created.item.id;
    let offer = create_offer(&app, "brownboots", single_offer(json!({})), Some(partner)).await;
    let input = gokart_engine::partner_postbacks::PartnerPostbacksInput {
        global_url: Some("http://127.0.0.1:9/pb?click={pub_click_id}&status={status}".into()),
        event_postbacks: Vec::new(),
    };
    app.engine.save_partner_postbacks(&record, partner, input).await.unwrap();
    let click = click_id(&app, "brownboots", offer, "member-1").await;
    let (status, data) =
        mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(click, "Install", None)).await;
    assert_eq!(status, StatusCode::OK, "{data}");
    assert_eq!(data["status"], "Success", "{data}");
    let conversion_id = data["conversionId"].as_str().unwrap().parse().unwrap();
    Scene {
        app,
        tenant,
        record,
        partner_email: credentials.portal_email,
        partner_password: credentials.portal_password,
        conversion_id,
        click_id: click,
    }
}

async fn conversion_status(scene: &Scene) -> String {
    let detail = scene.app.engine.conversion_detail(&scene.record, scene.conversion_id).await;
    detail.unwrap().conversion.status.as_str().to_owned()
}

async fn staff(scene: &Scene) -> Session {
    Session::log_in(&scene.app, "brownboots", "ops@brownboots.test", "password-123").await
}

#[tokio::test]
async fn conversions_postback_log_and_deliveries_show_the_postback() {
    let s = scene().await;
    let session = staff(&s).await;
    let (status, page) = session.get(&s.app, "/conversions").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&s.conversion_id.to_string()), "{page}");
    assert!(page.contains("badge Success"), "{page}");
    // Default range: the 30 days up to the engine clock's today.
    assert!(page.contains("value=\"2026-10-23\"") && page.contains("value=\"2026-11-22\""));

    // Filters: another status hides it; a search by click id finds it.
    let (_, page) = session.get(&s.app, "/conversions?status=Rejected").await;
    assert!(!page.contains(&s.conversion_id.to_string()));
    let (_, page) = session.get(&s.app, &format!("/conversions?search={}", s.click_id)).await;
    assert!(page.contains(&s.conversion_id.to_string()));
    // Bad filters: 400 with the message next to the field, never a 5xx.
    let (status, page) = session.get(&s.app, "/conversions?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("id=\"from-error\""), "{page}");
    let (status, page) = session.get(&s.app, "/conversions?from=2026-01-01&to=2026-11-22").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("id=\"to-error\"") && page.contains("3 months"), "{page}");
    let (status, _) = session.get(&s.app, "/conversions?offer=nope&status=Maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, page) = session.get(&s.app, "/postback-log").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&s.click_id.to_string()), "{page}");
    assert!(page.contains("<details>"), "raw params collapsed: {page}");
    assert!(!page.contains("serde_json") && page.contains(">200</td>"), "{page}");
    let (status, _) = session.get(&s.app, "/postback-log?to=2026-13-01").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, page) = session.get(&s.app, "/deliveries?kind=PartnerPostback").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("127.0.0.1:9/pb"), "{page}");
    assert!(page.contains("badge Pending"), "{page}");
    assert!(!page.contains("serde_json") && page.contains("<dd>0</dd>"), "{page}");
    let (status, _) = session.get(&s.app, "/deliveries?status=Lost").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn override_needs_csrf_and_a_reason_to_reject() {
    let s = scene().await;
    let session = staff(&s).await;
    let path = format!("/conversions/{}/override", s.conversion_id);
    let csrf = session.csrf(&s.app, "/conversions").await;

    let (status, page) =
        session.post(&s.app, &path, &[("status", "Rejected"), ("reason", "Fraud")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("security token"), "{page}");
    assert_eq!(conversion_status(&s).await, "Success", "nothing changed");

    // Rejecting without a reason: the error sits next to that form's reason field.
    let (status, page) = session
        .post(&s.app, &path, &[("_csrf", &csrf), ("status", "Rejected"), ("reason", " ")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains(&format!("id=\"ov-{}-all-reason-error\"", s.conversion_id)), "{page}");
    assert_eq!(conversion_status(&s).await, "Success");
    let (status, _) = session.post(&s.app, &path, &[("_csrf", &csrf), ("status", "Pending")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let back = "status=Success";
    let (status, _) = session
        .post(
            &s.app,
            &path,
            &[("_csrf", &csrf), ("status", "Rejected"), ("reason", "Fraud"), ("back", back)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(conversion_status(&s).await, "Rejected");
    let (_, page) = session.get(&s.app, "/conversions?status=Rejected").await;
    assert!(page.contains("Fraud"), "{page}");

    // One event back to Success.
    let detail = s.app.engine.conversion_detail(&s.record, s.conversion_id).await.unwrap();
    let event = detail.events[0].id.to_string();
    let (status, _) = session
        .post(&s.app, &path, &[("_csrf", &csrf), ("status", "Success"), ("event", &event)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(conversion_status(&s).await, "Success");

    // Another tenant's staff cannot see or touch it: 404 as if it did not exist.
    s.app.tenant("other").await;
    let other = Session::log_in(&s.app, "other", "ops@other.test", "password-123").await;
    let other_csrf = other.csrf(&s.app, "/conversions").await;
    let (status, _) = other
        .post(&s.app, &path, &[("_csrf", &other_csrf), ("status", "Rejected"), ("reason", "x")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, page) = other.get(&s.app, "/conversions").await;
    assert!(!page.contains(&s.conversion_id.to_string()));
    assert_eq!(conversion_status(&s).await, "Success");

    // Unknown or malformed ids are 404s.
    let missing = format!("/conversions/{}/override", Uuid::new_v4());
    let (status, _) =
        session.post(&s.app, &missing, &[("_csrf", &csrf), ("status", "Success")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = session
        .post(&s.app, "/conversions/x/override", &[("_csrf", &csrf), ("status", "Success")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn resend_needs_csrf_and_requeues_a_failed_delivery() {
    let s = scene().await;
    // The private destination is refused without the setting: Failed at once.
    let worker = Worker::new(s.app.engine.clone(), OutboundClient::new(false).unwrap());
    assert_eq!(worker.run_once().await, 1);
    let delivery = || async {
        let filter = Default::default();
        let page = s
            .app
            .engine
            .list_deliveries(&s.record, &filter, gokart_storage::PageRequest::ALL)
            .await
            .unwrap();
        page.items[0].clone()
    };
    let failed = delivery().await;
    assert_eq!(failed["status"], "Failed", "{failed}");
    let id = failed["id"].as_str().unwrap().to_owned();
    let session = staff(&s).await;
    let (_, page) = session.get(&s.app, "/deliveries?status=Failed").await;
    assert!(page.contains("SSRF") && page.contains(">Resend</button>"), "{page}");

    let path = format!("/deliveries/{id}/resend");
    let (status, _) = session.post(&s.app, &path, &[("_csrf", "wrong")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(delivery().await["status"], "Failed", "nothing changed");

    let csrf = session.csrf(&s.app, "/deliveries").await;
    let (status, _) = session.post(&s.app, &path, &[("_csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(delivery().await["status"], "Pending");
    let (status, page) = session.post(&s.app, &path, &[("_csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "already queued: {page}");
    s.app.tenant("other").await;
    let other = Session::log_in(&s.app, "other", "ops@other.test", "password-123").await;
    let other_csrf = other.csrf(&s.app, "/deliveries").await;
    let (status, _) = other.post(&s.app, &path, &[("_csrf", &other_csrf)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's delivery");
    let (_, page) = other.get(&s.app, "/deliveries").await;
    assert!(!page.contains(&id));
    let missing = format!("/deliveries/{}/resend", Uuid::new_v4());
    let (status, _) = session.post(&s.app, &missing, &[("_csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn callback_settings_keep_the_header_value_write_only() {
    let s = scene().await;
    let session = staff(&s).await;
    let (status, page) = session.get(&s.app, "/profile/callback").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let secret = s.app.engine.callback_settings(&s.record).await.unwrap().signing_secret;
    assert!(page.contains(&secret) && page.contains("type=\"password\""), "masked secret");
    let csrf = session.csrf(&s.app, "/profile/callback").await;
    let fields = [
        ("url", "https://brownboots.example/callback"),
        ("header_name", "X-Api-Key"),
        ("header_value", "top-secret-value"),
        ("send_rejected", "1"),
    ];
    let (status, _) = session.post(&s.app, "/profile/callback", &fields).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(s.app.engine.callback_settings(&s.record).await.unwrap().url.is_none());

    let with_csrf: Vec<_> = [("_csrf", csrf.as_str())].into_iter().chain(fields).collect();
    let (status, _) = session.post(&s.app, "/profile/callback", &with_csrf).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let view = s.app.engine.callback_settings(&s.record).await.unwrap();
    assert_eq!(view.url.as_deref(), Some("https://brownboots.example/callback"));
    assert!(view.header_value_set && view.send_rejected && !view.send_pending);
    let (_, page) = session.get(&s.app, "/profile/callback").await;
    assert!(!page.contains("top-secret-value"), "never shown back");
    assert!(page.contains("A value is stored"), "{page}");

    // Bad input: errors next to the fields, the typed URL kept, nothing saved.
    let bad = [("_csrf", csrf.as_str()), ("url", "ftp://x"), ("header_name", "Bad Name")];
    let (status, page) = session.post(&s.app, "/profile/callback", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("id=\"url-error\"") && page.contains("id=\"header_name-error\""));
    assert!(page.contains("value=\"ftp://x\""), "{page}");
    let view = s.app.engine.callback_settings(&s.record).await.unwrap();
    assert_eq!(view.url.as_deref(), Some("https://brownboots.example/callback"));
}

#[tokio::test]
async fn portal_postback_settings_check_each_field() {
    let s = scene().await;
    let session =
        Session::log_in(&s.app, "brownboots", &s.partner_email, &s.partner_password).await;
    let (status, page) = session.get(&s.app, "/portal/postbacks").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("127.0.0.1:9/pb"), "the saved global URL: {page}");
    assert!(page.contains("{gk_offer_name}"), "the macro list: {page}");
    let csrf = session.csrf(&s.app, "/portal/postbacks").await;

    let global = "https://rewardapp.example/pb?c={pub_click_id}&p={payout}";
    let (status, _) = session.post(&s.app, "/portal/postbacks", &[("global_url", global)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let bad = [
        ("_csrf", csrf.as_str()),
        ("global_url", "https://rewardapp.example/pb?c={nope}"),
        ("rows", "1"),
        ("ep_offer_0", ""),
        ("ep_url_0", "https://rewardapp.example/ev"),
    ];
    let (status, page) = session.post(&s.app, "/portal/postbacks", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("id=\"ep_offer_0-error\"") && page.contains("Choose one of your offers"));
    assert!(page.contains("id=\"global_url-error\""), "every problem at once: {page}");
    let (status, page) = session.post(&s.app, "/portal/postbacks", &bad[..3]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("id=\"global_url-error\"") && page.contains("Unknown macro {nope}"),
        "{page}"
    );

    let (status, _) = session
        .post(&s.app, "/portal/postbacks", &[("_csrf", &csrf), ("global_url", global)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let partner = session_partner(&s).await;
    let view = s.app.engine.partner_postbacks(&s.record, partner).await.unwrap();
    assert_eq!(view.global_url.as_deref(), Some(global));

    // An event-level row: checked against the offer (a SingleEvent offer has no event ids).
    let offers = s.app.engine.partner_offers(&s.record, partner, gokart_storage::PageRequest::ALL);
    let offer = offers.await.unwrap().items[0].id.to_string();
    let row = |event: &'static str| {
        [
            ("_csrf", csrf.clone()),
            ("global_url", global.to_owned()),
            ("rows", "2".to_owned()),
            ("ep_offer_1", offer.clone()),
            ("ep_event_1", event.to_owned()),
            ("ep_url_1", "https://rewardapp.example/ev?t={transaction_id}".to_owned()),
        ]
    };
    let fields = row("Install");
    let fields: Vec<_> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = session.post(&s.app, "/portal/postbacks", &fields).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("id=\"ep_event_1-error\""), "the form's own row: {page}");
    let fields = row("");
    let fields: Vec<_> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = session.post(&s.app, "/portal/postbacks", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let view = s.app.engine.partner_postbacks(&s.record, partner).await.unwrap();
    assert_eq!(view.event_postbacks.len(), 1);
    assert_eq!(view.event_postbacks[0].offer_id.to_string(), offer);
    let (_, page) = session.get(&s.app, "/portal/postbacks").await;
    assert!(page.contains("https://rewardapp.example/ev?t={transaction_id}"), "{page}");

    // Staff cannot open the portal page, nor partners the tenant's pages.
    let (status, _) = staff(&s).await.get(&s.app, "/portal/postbacks").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = session.get(&s.app, "/conversions").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let _ = &s.tenant;
}

async fn session_partner(s: &Scene) -> Uuid {
    let items = s
        .app
        .engine
        .list_items(&s.record, DirectoryKind::Partners, gokart_storage::PageRequest::ALL)
        .await;
    items.unwrap().items[0].id
}

/// How many offer rows a page of Offer Management shows.
fn offer_rows(page: &str) -> usize {
    page.matches("data-offer-id=").count()
}

#[tokio::test]
async fn offer_management_pages_by_fifty_and_filters_by_name_and_status() {
    let s = scene().await;
    let mut paused = Vec::new();
    for i in 0..54 {
        let spec = single_offer(json!({ "name": format!("Bulk {i:02}") }));
        let id = create_offer(&s.app, "brownboots", spec, None).await;
        if i % 20 == 3 {
            tracking_support::set_offer_status(
                &s.app,
                "brownboots",
                id,
                gokart_domain::offer::OfferStatus::Pending,
            )
            .await;
            paused.push(id);
        }
        s.app.clock.advance(chrono::Duration::seconds(1));
    }
    let session = staff(&s).await;

    let (status, page) = session.get(&s.app, "/offers").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(offer_rows(&page), 50, "{page}");
    assert!(page.contains("55 offers."), "{page}");
    assert!(page.contains("Bulk 53") && !page.contains("Sign up"), "newest first: {page}");
    assert!(page.contains("href=\"/offers?page=1\""), "a Next link: {page}");
    assert!(page.contains(&format!("href=\"/conversions?offer={}\"", paused[2])), "{page}");

    let (status, page) = session.get(&s.app, "/offers?page=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(offer_rows(&page), 5, "{page}");
    assert!(page.contains("Sign up") && page.contains("href=\"/offers?page=0\""), "{page}");

    let (_, page) = session.get(&s.app, "/offers?search=bulk+07").await;
    assert_eq!(offer_rows(&page), 1, "{page}");
    assert!(page.contains("1 offer matches these filters."), "{page}");
    assert!(page.contains("value=\"bulk 07\""), "the search is kept: {page}");

    let (_, page) = session.get(&s.app, "/offers?status=Pending").await;
    assert_eq!(offer_rows(&page), paused.len(), "{page}");
    assert!(paused.iter().all(|id| page.contains(&id.to_string())), "{page}");
    assert!(page.contains("<option value=\"Pending\" selected>Paused</option>"), "{page}");

    let (_, page) = session.get(&s.app, "/offers?search=nothing+like+it").await;
    assert_eq!(offer_rows(&page), 0);
    assert!(page.contains("No offers match these filters."), "{page}");

    let (status, page) = session.get(&s.app, "/offers?status=Sleeping").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("aria-describedby=\"status-error\""), "{page}");
    assert!(page.contains("Choose a status from the list."), "{page}");

    let (status, page) = session.get(&s.app, "/offers?page=9").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("This page is past the last offer."), "{page}");

    // Every dashboard answer says how long the server took (the dashboard benchmark reads it).
    let response = s
        .app
        .client
        .get(format!("http://{}/offers", s.app.addr))
        .header("Host", &session.host)
        .header("Cookie", &session.cookie)
        .send()
        .await
        .unwrap();
    let timing = response.headers()["server-timing"].to_str().unwrap();
    let ms: f64 = timing.strip_prefix("app;dur=").unwrap().parse().unwrap();
    assert!(ms >= 0.0, "{timing}");
}

#[tokio::test]
async fn with_many_offers_the_conversions_offer_filter_takes_a_name_or_an_id() {
    let s = scene().await;
    let offer = s.app.engine.conversion_detail(&s.record, s.conversion_id).await.unwrap();
    let offer = offer.conversion.offer_id;
    let session = staff(&s).await;
    let (_, page) = session.get(&s.app, "/conversions").await;
    assert!(page.contains("<select id=\"f-offer\" name=\"offer\""), "a few offers: a select");

    for i in 0..100 {
        let spec = single_offer(json!({ "name": format!("Bulk {i:03}") }));
        create_offer(&s.app, "brownboots", spec, None).await;
    }
    let shown = format!("data-conversion-id=\"{}\"", s.conversion_id);
    let (status, page) = session.get(&s.app, "/conversions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<select id=\"f-offer\""), "{page}");
    assert!(page.contains("<input id=\"f-offer\" name=\"offer\" type=\"search\""), "{page}");
    assert!(page.contains("Offer (name or ID)") && page.contains(&shown), "{page}");

    for typed in ["sign up", "Sign", &offer.to_string()] {
        let path = format!("/conversions?offer={}", typed.replace(' ', "+"));
        let (status, page) = session.get(&s.app, &path).await;
        assert_eq!(status, StatusCode::OK, "{typed}: {page}");
        assert!(page.contains(&shown) && page.contains("1 conversion from"), "{typed}: {page}");
        assert!(page.contains(&format!("value=\"{typed}\"")), "kept as typed: {page}");
    }

    let (_, page) = session.get(&s.app, "/conversions?offer=Bulk+042").await;
    assert!(page.contains("0 conversions from"), "one offer, none of its own: {page}");

    let (status, page) = session.get(&s.app, "/conversions?offer=Bulk").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("100 offers match “Bulk”: type more of the name, or paste the offer ID."),
        "{page}"
    );
    assert!(page.contains("aria-describedby=\"offer-error\"") && !page.contains(&shown));

    let (status, page) = session.get(&s.app, "/conversions?offer=Dogs").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("No offer name contains “Dogs”."), "{page}");
}

/// The wizard's fields of a SingleEvent offer so far, with `extra` on top (hidden fields travel
/// the same way: every field is posted at every step).
fn wizard_form<'a>(
    csrf: &'a str,
    step: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("_csrf", csrf),
        ("step", step),
        ("go", "next"),
        ("offer_type", "SingleEvent"),
        ("tracking_system", "Adjust"),
        ("name", "Cashback Store"),
        ("link", "https://app.adjust.com/abc123"),
        ("platform", "All"),
        ("epc", "1"),
        ("pending_time", "0"),
    ];
    for (key, value) in extra {
        fields.retain(|(k, _)| k != key);
        fields.push((key, value));
    }
    fields
}

#[tokio::test]
async fn the_targeting_step_takes_caps_and_revshare_with_errors_next_to_the_fields() {
    let s = scene().await;
    let session = staff(&s).await;
    let csrf = session.csrf(&s.app, "/offers/new").await;
    let (_, page) = session.get(&s.app, "/offers/new").await;
    assert!(page.contains("name=\"conversion_type\" value=\"FlatRate\""), "preselected: {page}");

    // Targeting & Budget: unreadable or zero caps stay on the step, as typed, with their errors.
    let typed = [
        ("conversion_type", "RevShare"),
        ("daily_cap", "ten"),
        ("weekly_cap", "0"),
        ("monthly_cap", "100"),
    ];
    let (status, page) =
        session.post(&s.app, "/offers/new", &wizard_form(&csrf, "3", &typed)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<h2>Targeting & Budget</h2>"), "{page}");
    assert!(page.contains("<label for=\"f-daily_cap\">Daily cap</label>"), "{page}");
    assert!(
        page.contains("value=\"ten\" aria-invalid=\"true\" aria-describedby=\"daily_cap-error\"")
    );
    assert!(
        page.contains("<p class=\"field-error\" id=\"daily_cap-error\">enter a whole number</p>")
    );
    assert!(page.contains(
        "<p class=\"field-error\" id=\"weekly_cap-error\">This must be at least 1 when set</p>"
    ));
    assert!(page.contains("id=\"f-monthly_cap\" name=\"monthly_cap\" type=\"text\" value=\"100\""));
    assert!(page.contains("<option value=\"RevShare\" selected>RevShare</option>"), "{page}");

    let fixed = [
        ("conversion_type", "RevShare"),
        ("daily_cap", "10"),
        ("weekly_cap", ""),
        ("monthly_cap", "100"),
    ];
    let (_, page) = session.post(&s.app, "/offers/new", &wizard_form(&csrf, "3", &fixed)).await;
    assert!(page.contains("<h2>Event Mapping</h2>"), "{page}");
    assert!(page.contains("<label for=\"f-revenue\">Revenue %</label>"), "{page}");
    assert!(page.contains("<label for=\"f-reward\">Reward %</label>"), "{page}");
    assert!(page.contains("name=\"daily_cap\" value=\"10\""), "carried along: {page}");

    // Event Mapping: a RevShare offer needs its revenue percentage, at most 100.
    let mut fields = fixed.to_vec();
    fields.push(("revenue", "150"));
    let (_, page) = session.post(&s.app, "/offers/new", &wizard_form(&csrf, "4", &fields)).await;
    assert!(page.contains(
        "<p class=\"field-error\" id=\"revenue-error\">This must be between 0 and 100</p>"
    ));
    assert!(page.contains("value=\"150\""), "{page}");
    fields.retain(|(k, _)| *k != "revenue");
    let (_, page) = session.post(&s.app, "/offers/new", &wizard_form(&csrf, "4", &fields)).await;
    assert!(page.contains("id=\"revenue-error\">This is required for a RevShare offer</p>"));

    fields.extend([("revenue", "30"), ("reward", "12.5")]);
    let (_, page) = session.post(&s.app, "/offers/new", &wizard_form(&csrf, "4", &fields)).await;
    assert!(page.contains("<h2>Review</h2>"), "{page}");
    for shown in [
        "<dd>RevShare (a percentage",
        "<dd>30%</dd>",
        "<dd>12.5%</dd>",
        "<dd>10 daily · 100 monthly</dd>",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    fields.push(("go", "create"));
    let (status, _) = session.post(&s.app, "/offers/new", &wizard_form(&csrf, "5", &fields)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let filter =
        gokart_storage::OfferFilter { search: Some("Cashback".into()), ..Default::default() };
    let found = s.app.engine.list_offers(&s.record, &filter, gokart_storage::PageRequest::ALL);
    let offer = found.await.unwrap().items.remove(0);
    let spec = &offer.spec;
    assert_eq!(spec.conversion_type, gokart_domain::offer::ConversionType::RevShare);
    assert_eq!(spec.revenue_percent, Some(gokart_domain::Money::whole(30)));
    assert_eq!(spec.reward_percent, Some(gokart_domain::Money::parse("12.5").unwrap()));
    assert_eq!((spec.revenue, spec.reward), (None, None));
    let caps = (spec.daily_cap, spec.weekly_cap, spec.monthly_cap, spec.all_time_cap);
    assert_eq!(caps, (Some(10), None, Some(100), None));

    // Editing shows what was saved.
    let (_, page) = session.get(&s.app, &format!("/offers/{}/edit", offer.id)).await;
    for kept in [
        "name=\"conversion_type\" value=\"RevShare\"",
        "name=\"daily_cap\" value=\"10\"",
        "name=\"monthly_cap\" value=\"100\"",
        "name=\"revenue\" value=\"30\"",
        "name=\"reward\" value=\"12.5\"",
    ] {
        assert!(page.contains(kept), "{kept}: {page}");
    }
}

#[tokio::test]
async fn offer_notices_come_from_the_offer_not_from_the_link() {
    let s = scene().await;
    let session = staff(&s).await;
    let offer =
        create_offer(&s.app, "brownboots", single_offer(json!({ "name": "Notice Offer" })), None)
            .await;
    let csrf = session.csrf(&s.app, "/offers").await;
    let path = format!("/offers/{offer}/pause");
    let (status, _) = session.post(&s.app, &path, &[("_csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = session.get(&s.app, &format!("/offers?done=paused&offer={offer}")).await;
    assert!(page.contains("Offer “Notice Offer” paused."), "{page}");

    // A link cannot put words of its own on the page, nor name another tenant's or no offer.
    let (_, page) = session.get(&s.app, "/offers?notice=Log+in+at+evil.test&done=hacked").await;
    assert!(!page.contains("evil.test") && !page.contains("hacked"), "{page}");
    let (_, page) =
        session.get(&s.app, &format!("/offers?done=paused&offer={}", Uuid::new_v4())).await;
    assert!(!page.contains(" paused."), "{page}");
}
