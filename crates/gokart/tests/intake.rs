//! Postback intake (PRODUCT.md §7) and the conversion rules it applies (§8), end to end through
//! the real server, with postbacks shaped as Adjust and AppsFlyer send them.

mod common;
mod tracking_support;

use std::sync::Arc;

use common::{TestApp, TestTenant};
use gokart_domain::Money;
use gokart_mmp::Mmp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tracking_support::*;
use uuid::Uuid;

const ADJUST_LINK: &str = "https://app.adjust.com/abc123?campaign={gk_offer_name}";
const APPSFLYER_LINK: &str = "https://app.appsflyer.com/id1234?pid=gokart_int&c={gk_offer_name}";

async fn end_to_end(mmp: Mmp, system: &str, link: &str, parameter: &str) {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let partner = create_partner(&app, "brownboots").await;
    let offer = create_offer(&app, "brownboots", game_offer(system, link), Some(partner)).await;

    let (status, location) =
        click(&app, "brownboots", offer, "pub_member_id=m1&pub_click_id=c1").await;
    assert_eq!(status, StatusCode::FOUND);
    let location = url::Url::parse(&location.unwrap()).unwrap();
    let click: Uuid = location
        .query_pairs()
        .find(|(key, _)| key == parameter)
        .map(|(_, value)| value.parse().unwrap())
        .unwrap_or_else(|| panic!("{parameter} in {location}"));

    let (status, install) =
        mmp_postback(&app, &tenant, mmp, &conversion(click, "Install", None)).await;
    assert_eq!(status, StatusCode::OK, "{install}");
    assert_eq!(install["status"], "Success", "{install}");
    assert!(install["conversionEventId"].is_string());
    let conversion_id = install["conversionId"].clone();

    for level in ["s2s_level 200", "s2s_level 400"] {
        let (status, data) =
            mmp_postback(&app, &tenant, mmp, &conversion(click, level, None)).await;
        assert_eq!((status, data["status"].as_str()), (StatusCode::OK, Some("Success")), "{data}");
        assert_eq!(data["conversionId"], conversion_id, "one conversion per click");
    }
    let (_, purchase) =
        mmp_postback(&app, &tenant, mmp, &conversion(click, "purchase", Some("4.99"))).await;
    assert_eq!(purchase["status"], "Success", "{purchase}");

    let detail = conversion_detail(&app, &tenant, &conversion_id).await;
    assert_eq!(detail["status"], "Success");
    assert_eq!(detail["partnerId"], partner.to_string());
    assert_eq!(detail["pubMemberId"], "m1");
    assert_eq!(detail["revenue"], json!(10.75));
    assert_eq!(detail["reward"], json!(1075));
    let events = detail["conversionEvents"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    let bought = events.iter().find(|e| e["eventId"] == "purchase").unwrap();
    assert_eq!(bought["cnvAmount"], json!(4.99));
    assert_eq!(bought["revenue"], json!(1.25));
    assert_eq!(bought["eventName"], "Make a purchase");
    assert_eq!(offer_spent(&app, "brownboots", offer).await, Money::parse("10.75").unwrap());

    let (status, log) =
        tenant.get(&app, "/api/v1/postback-log?from=2026-11-22&to=2026-11-22").await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["data"]["totalCount"], 4);
    let newest = &log["data"]["items"][0];
    assert_eq!(newest["method"], "GET");
    assert_eq!(newest["httpStatus"], 200);
    assert_eq!(newest["status"], "Success");
    assert_eq!(newest["clickId"], click.to_string());
    assert_eq!(newest["params"]["signature"], "<redacted>");
    assert_eq!(newest["receivedAt"], "2026-11-22T10:00:00Z");
}

#[tokio::test]
async fn adjust_end_to_end() {
    end_to_end(Mmp::Adjust, "Adjust", ADJUST_LINK, "gk_click_id").await;
}

#[tokio::test]
async fn appsflyer_end_to_end() {
    end_to_end(Mmp::AppsFlyer, "AppsFlyer", APPSFLYER_LINK, "clickid").await;
}

async fn game(app: &TestApp) -> (TestTenant, Uuid) {
    let tenant = app.tenant("brownboots").await;
    let offer = create_offer(app, "brownboots", game_offer("Adjust", ADJUST_LINK), None).await;
    (tenant, offer)
}

#[tokio::test]
async fn an_early_event_waits_for_its_predecessors() {
    let app = TestApp::spawn().await;
    let (tenant, offer) = game(&app).await;
    let click = click_id(&app, "brownboots", offer, "m1").await;
    let send = |event: &'static str| {
        let (app, tenant) = (&app, &tenant);
        async move { mmp_postback(app, tenant, Mmp::Adjust, &conversion(click, event, None)).await.1 }
    };
    assert_eq!(send("Install").await["status"], "Success");
    let early = send("s2s_level 400").await;
    assert_eq!(early["status"], "Pending");
    assert_eq!(early["rejectionReason"], "AwaitingPreviousEvent");
    // Held events reserve no budget.
    assert_eq!(offer_spent(&app, "brownboots", offer).await, Money::parse("0.5").unwrap());

    assert_eq!(send("s2s_level 200").await["status"], "Success");
    let detail = conversion_detail(&app, &tenant, &early["conversionId"]).await;
    assert_eq!(event_status(&detail, "s2s_level 400"), ("Success".into(), None));
    assert_eq!(offer_spent(&app, "brownboots", offer).await, Money::parse("9.5").unwrap());
}

#[tokio::test]
async fn a_rejected_install_rejects_the_events_held_behind_it() {
    let app = TestApp::spawn().await;
    let (tenant, offer) = game(&app).await;
    let click = click_id(&app, "brownboots", offer, "m1").await;
    let (_, held) =
        mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(click, "s2s_level 200", None)).await;
    assert_eq!(held["status"], "Pending");

    let mut install = conversion(click, "Install", None);
    install.rejected_reason = Some("too_many_engagements".into());
    let (status, rejected) = mmp_postback(&app, &tenant, Mmp::Adjust, &install).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rejected["status"], "Rejected");
    assert_eq!(rejected["rejectionReason"], "too_many_engagements");

    let detail = conversion_detail(&app, &tenant, &held["conversionId"]).await;
    assert_eq!(
        event_status(&detail, "s2s_level 200"),
        ("Rejected".into(), Some("PreviousEventRejected".into()))
    );
    assert_eq!(detail["status"], "Rejected");
    let (_, late) =
        mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(click, "s2s_level 400", None)).await;
    assert_eq!(late["rejectionReason"], "PreviousEventRejected");
    assert_eq!(offer_spent(&app, "brownboots", offer).await, Money::ZERO);
}

#[tokio::test]
async fn retries_are_duplicates_and_repeatable_events_count_each_conversion() {
    let app = TestApp::spawn().await;
    let (tenant, offer) = game(&app).await;
    let click = click_id(&app, "brownboots", offer, "m1").await;
    let install = conversion(click, "Install", None);
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(mmp_postback(&app, &tenant, Mmp::AppsFlyer, &install).await.1);
    }
    assert_eq!(answers[0]["status"], "Success");
    for again in &answers[1..] {
        assert_eq!(again["status"], "Duplicate");
        assert_eq!(again["conversionEventId"], answers[0]["conversionEventId"]);
    }
    // A case-insensitive event id matches the only event it can mean.
    let (_, level) =
        mmp_postback(&app, &tenant, Mmp::AppsFlyer, &conversion(click, "S2S_LEVEL 200", None))
            .await;
    assert_eq!(level["status"], "Success", "{level}");

    let mut first = conversion(click, "purchase", Some("1.99"));
    first.conversion_id = "order-1".into();
    let mut second = first.clone();
    second.conversion_id = "order-2".into();
    for (input, expected) in [(&first, "Success"), (&second, "Success"), (&first, "Duplicate")] {
        let (_, data) = mmp_postback(&app, &tenant, Mmp::Adjust, input).await;
        assert_eq!(data["status"], expected, "{data}");
    }
    // Without a conversion id only an identical request is a duplicate.
    let anonymous =
        [("gk_click_id".to_owned(), click.to_string()), ("cnv_event_id".into(), "purchase".into())];
    assert_eq!(postback(&app, &tenant, &anonymous).await.1["data"]["status"], "Success");
    assert_eq!(postback(&app, &tenant, &anonymous).await.1["data"]["status"], "Duplicate");

    let (_, unknown) =
        mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(click, "level_999", None)).await;
    assert_eq!(
        (unknown["status"].as_str(), unknown["rejectionReason"].as_str()),
        (Some("Rejected"), Some("UnknownEvent"))
    );

    let detail = conversion_detail(&app, &tenant, &answers[0]["conversionId"]).await;
    assert_eq!(detail["conversionEvents"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn a_member_completes_an_offer_once_unless_repeats_are_allowed() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let once = create_offer(&app, "brownboots", single_offer(json!({})), None).await;
    let again = create_offer(
        &app,
        "brownboots",
        single_offer(json!({ "allowRepeatConversions": true })),
        None,
    )
    .await;
    for (offer, second_status) in [(once, "Rejected"), (again, "Success")] {
        let first = click_id(&app, "brownboots", offer, "same-member").await;
        let second = click_id(&app, "brownboots", offer, "same-member").await;
        let (_, a) =
            mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(first, "Install", None)).await;
        assert_eq!(a["status"], "Success");
        let (_, b) =
            mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(second, "Install", None)).await;
        assert_eq!(b["status"], second_status, "{b}");
        if second_status == "Rejected" {
            assert_eq!(b["rejectionReason"], "AlreadyCompleted");
        }
    }
}

/// Postbacks sent at once share group commits; whatever batches they land in, a member counts
/// once and a retried postback is a duplicate.
#[tokio::test]
async fn postbacks_at_once_count_a_member_once_and_a_retry_never() {
    let app = Arc::new(TestApp::spawn().await);
    let tenant = Arc::new(app.tenant("brownboots").await);
    let offer = create_offer(&app, "brownboots", single_offer(json!({})), None).await;
    let mut postbacks = Vec::new();
    for _ in 0..40 {
        let click = click_id(&app, "brownboots", offer, "one-member").await;
        postbacks.push(conversion(click, "Install", None));
    }
    let retried = click_id(&app, "brownboots", offer, "another-member").await;
    postbacks.extend(std::iter::repeat_n(conversion(retried, "Install", None), 20));
    let mut tasks = tokio::task::JoinSet::new();
    for postback in postbacks {
        let (app, tenant) = (app.clone(), tenant.clone());
        tasks.spawn(async move { mmp_postback(&app, &tenant, Mmp::Adjust, &postback).await });
    }
    let mut outcomes = std::collections::HashMap::new();
    while let Some(answer) = tasks.join_next().await {
        let (status, data) = answer.unwrap();
        assert_eq!(status, StatusCode::OK, "{data}");
        let outcome = format!("{} {}", data["status"], data["rejectionReason"]);
        *outcomes.entry(outcome).or_insert(0) += 1;
    }
    let expected = [
        ("\"Success\" null".to_owned(), 2),
        ("\"Rejected\" \"AlreadyCompleted\"".to_owned(), 39),
        ("\"Duplicate\" null".to_owned(), 19),
    ];
    assert_eq!(outcomes, expected.into_iter().collect(), "{outcomes:?}");
}

/// Postbacks of two tenants at once, read ahead and decided together: each tenant's postback
/// for its own click succeeds, one carrying the other tenant's click id is unknown (404), and
/// the same member on both tenants' offers counts on each.
#[tokio::test]
async fn postbacks_of_two_tenants_at_once_stay_apart() {
    let app = Arc::new(TestApp::spawn().await);
    let slugs = ["brownboots", "greenhats"];
    let mut tenants = Vec::new();
    let mut clicks = Vec::new();
    for slug in slugs {
        let tenant = Arc::new(app.tenant(slug).await);
        let partner = create_partner(&app, slug).await;
        let offer = create_offer(&app, slug, single_offer(json!({})), Some(partner)).await;
        let mut own = Vec::new();
        for n in 0..10 {
            own.push(click_id(&app, slug, offer, &format!("member-{n}")).await);
        }
        tenants.push(tenant);
        clicks.push(own);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (mine, tenant) in tenants.iter().enumerate() {
        for (theirs, clicks) in clicks.iter().enumerate() {
            for click in clicks {
                let (app, tenant, postback) =
                    (app.clone(), tenant.clone(), conversion(*click, "Install", None));
                tasks.spawn(async move {
                    let (status, data) = mmp_postback(&app, &tenant, Mmp::Adjust, &postback).await;
                    (mine == theirs, status, data)
                });
            }
        }
    }
    let (mut succeeded, mut unknown) = (0, 0);
    while let Some(answer) = tasks.join_next().await {
        let (own_click, status, data) = answer.unwrap();
        if own_click {
            assert_eq!(
                (status, data["status"].as_str()),
                (StatusCode::OK, Some("Success")),
                "{data}"
            );
            succeeded += 1;
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's click: {data}");
            unknown += 1;
        }
    }
    assert_eq!((succeeded, unknown), (20, 20));
}

/// 200 postbacks for 200 clicks at once against an offer that has room for 50.
async fn two_hundred_at_once(spec: Value, reason: &str) {
    let app = Arc::new(TestApp::spawn().await);
    let tenant = Arc::new(app.tenant("brownboots").await);
    let offer = create_offer(&app, "brownboots", spec, None).await;
    let mut clicks = Vec::new();
    for n in 0..200 {
        clicks.push(click_id(&app, "brownboots", offer, &format!("member-{n}")).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for click in clicks {
        let (app, tenant) = (app.clone(), tenant.clone());
        tasks.spawn(async move {
            mmp_postback(&app, &tenant, Mmp::AppsFlyer, &conversion(click, "Install", None)).await
        });
    }
    let (mut accepted, mut refused) = (0, 0);
    while let Some(answer) = tasks.join_next().await {
        let (status, data) = answer.unwrap();
        assert_eq!(status, StatusCode::OK, "{data}");
        match data["status"].as_str() {
            Some("Success") => accepted += 1,
            Some("Rejected") if data["rejectionReason"] == reason => refused += 1,
            other => panic!("unexpected {other:?}: {data}"),
        }
    }
    assert_eq!((accepted, refused), (50, 150));
    let spent = offer_spent(&app, "brownboots", offer).await;
    assert_eq!(spent, Money::whole(100));
    // Out of budget (or capped), the offer stops taking clicks only for the budget.
    let (status, _) = click(&app, "brownboots", offer, "pub_member_id=late").await;
    let expected =
        if reason == "BudgetExhausted" { StatusCode::FORBIDDEN } else { StatusCode::FOUND };
    assert_eq!(status, expected);
}

#[tokio::test]
async fn concurrent_postbacks_never_overspend_the_budget() {
    two_hundred_at_once(single_offer(json!({ "budget": { "total": 100 } })), "BudgetExhausted")
        .await;
}

#[tokio::test]
async fn concurrent_postbacks_never_exceed_a_cap() {
    two_hundred_at_once(single_offer(json!({ "dailyCap": 50 })), "CapReached").await;
}

#[tokio::test]
async fn answers_for_bad_credentials_unknown_clicks_and_organic_traffic() {
    let app = TestApp::spawn().await;
    let (tenant, offer) = game(&app).await;
    let click = click_id(&app, "brownboots", offer, "m1").await;
    let segment = tenant.segment.trim_end_matches('/');

    let bad_signature =
        format!("/api/v1/{segment}/?signature=wrong&gk_click_id={click}&cnv_event_id=Install");
    let no_signature = format!("/api/v1/{segment}?gk_click_id={click}&cnv_event_id=Install");
    let bad_segment = format!("/api/v1/a/b/c/?signature={}&gk_click_id={click}", tenant.signature);
    for path in [&bad_signature, &no_signature, &bad_segment] {
        let (status, body) =
            common::read(app.request(Method::GET, "brownboots", path).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
    // Other tenants' credentials and clicks are someone else's.
    let other = app.tenant("othertenant").await;
    let foreign =
        [("gk_click_id".to_owned(), click.to_string()), ("cnv_event_id".into(), "Install".into())];
    assert_eq!(postback(&app, &other, &foreign).await.0, StatusCode::NOT_FOUND);
    let path = format!("{}&gk_click_id={click}", postback_path(&other));
    let (status, _) =
        common::read(app.request(Method::GET, "brownboots", &path).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let unknown = [("gk_click_id".to_owned(), Uuid::new_v4().to_string())];
    assert_eq!(postback(&app, &tenant, &unknown).await.0, StatusCode::NOT_FOUND);
    let (status, organic) =
        postback(&app, &tenant, &[("cnv_event_id".into(), "Install".into())]).await;
    assert_eq!(
        (status, organic["data"]["status"].as_str()),
        (StatusCode::OK, Some("Unattributed"))
    );
    let (status, macro_only) =
        postback(&app, &tenant, &[("gk_click_id".into(), "{gk_click_id}".into())]).await;
    assert_eq!(
        (status, macro_only["data"]["status"].as_str()),
        (StatusCode::OK, Some("Unattributed"))
    );

    // POST with a form body and with a JSON body; the trailing slash is optional.
    let url = format!("/api/v1/{segment}");
    let form = format!("signature={}&gk_click_id={click}&cnv_event_id=Install", tenant.signature);
    let response = app
        .request(Method::POST, "brownboots", &url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let (status, body) = common::read(response).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (StatusCode::OK, Some("Success")),
        "{body}"
    );
    let json_body = json!({ "signature": tenant.signature, "gk_click_id": click.to_string(), "cnv_event_id": "s2s_level 200" });
    let response = app
        .request(Method::POST, "brownboots", &format!("{url}/"))
        .json(&json_body)
        .send()
        .await
        .unwrap();
    let (status, body) = common::read(response).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (StatusCode::OK, Some("Success")),
        "{body}"
    );

    let (_, log) = tenant.get(&app, "/api/v1/postback-log?page_size=100").await;
    let statuses: Vec<u64> = log["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["httpStatus"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 404).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 4, "{statuses:?}");
    let (status, _) = tenant.get(&app, "/api/v1/postback-log?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Routes with fixed segments are not taken for postbacks.
    let (status, body) = tenant.post(&app, "/api/v1/profile/postback/rotate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn bad_input_is_never_a_server_error() {
    let app = TestApp::spawn().await;
    let (tenant, offer) = game(&app).await;
    let click = click_id(&app, "brownboots", offer, "m1").await;
    let base = postback_path(&tenant);
    let huge = "x".repeat(1024 * 1024);
    let paths = vec![
        format!("{base}&gk_click_id=not-a-uuid"),
        format!("{base}&gk_click_id={click}&cnv_event_id=%FF%FE%00"),
        format!("{base}&gk_click_id={click}&cnv_event_id=Install';DROP TABLE clicks;--"),
        format!("{base}&gk_click_id={click}' OR '1'='1"),
        format!("{base}&gk_click_id={click}&cnv_amount=1e999&cnv_event_id=purchase"),
        format!("{base}&gk_click_id={click}&cnv_amount=-5&cnv_event_id=purchase"),
        format!("{base}&&&===&%%%&gk_click_id=&gk_click_id={click}&cnv_event_id=\"Install\""),
        format!("{base}&junk={huge}"),
    ];
    for path in &paths {
        let result = app.request(Method::GET, "brownboots", path).send().await;
        if let Ok(response) = result {
            let status = response.status();
            assert!(!status.is_server_error(), "{status} for {}", &path[..path.len().min(200)]);
        }
    }
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{not json".to_vec()),
        ("application/json", b"[1,2,3]".to_vec()),
        ("application/x-www-form-urlencoded", vec![0xff, 0xfe, b'=', 0x80]),
        ("text/plain", b"\x00\x01garbage".to_vec()),
    ];
    for (content_type, body) in bodies {
        let response = app
            .request(Method::POST, "brownboots", &format!("{base}&gk_click_id={click}"))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(!response.status().is_server_error(), "{content_type}");
    }
    // NUL characters (which PostgreSQL's TEXT refuses) in a click are dropped, not a 5xx.
    let (status, _) =
        tracking_support::click(&app, "brownboots", offer, "pub_member_id=a%00b&pub_sub_1=%00")
            .await;
    assert_eq!(status, StatusCode::FOUND);
    // The tables survived the SQL-looking values.
    let again = click_id(&app, "brownboots", offer, "m2").await;
    let (status, _) =
        mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(again, "Install", None)).await;
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn random_query_strings_never_make_a_server_error() {
    use proptest::{
        prelude::*,
        test_runner::{Config, TestRunner},
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (app, tenant) = runtime.block_on(async {
        let app = TestApp::spawn().await;
        let (tenant, _) = game(&app).await;
        (app, tenant)
    });
    let base = postback_path(&tenant);
    let mut runner = TestRunner::new(Config { cases: 24, ..Config::default() });
    let strategy = proptest::collection::vec(
        (
            prop_oneof!["gk_click_id", "cnv_event_id", "cnv_amount", "is_rejected", "[a-z_]{1,12}"],
            "[ -~]{0,40}",
        ),
        0..8,
    );
    runner
        .run(&strategy, |pairs| {
            let path = pairs.iter().fold(base.clone(), |path, (key, value)| {
                gokart_domain::macros::append_query_param(&path, key, value)
            });
            let status = runtime.block_on(async {
                app.request(Method::GET, "brownboots", &path).send().await.unwrap().status()
            });
            prop_assert!(!status.is_server_error(), "{} for {}", status, path);
            Ok(())
        })
        .unwrap();
}
