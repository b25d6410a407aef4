//! Conversions (PRODUCT.md §8): pending time, manual rewarding and overrides, RevShare, and the
//! conversions API.

mod common;
mod tracking_support;

use chrono::Duration;
use common::TestApp;
use gokart_domain::Money;
use gokart_mmp::Mmp;
use reqwest::StatusCode;
use serde_json::json;
use tracking_support::*;

const BASE: &str = "/api/v1/sdk-conversion-system/conversions";

#[tokio::test]
async fn pending_time_ends_in_success() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let offer =
        create_offer(&app, "brownboots", single_offer(json!({ "pendingTime": 3 })), None).await;
    let click = click_id(&app, "brownboots", offer, "m1").await;
    let (_, data) =
        mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(click, "Install", None)).await;
    assert_eq!(data["status"], "Pending");
    assert_eq!(data["rejectionReason"], json!(null));
    // Pending events reserve budget.
    assert_eq!(offer_spent(&app, "brownboots", offer).await, Money::whole(2));
    let detail = conversion_detail(&app, &tenant, &data["conversionId"]).await;
    assert_eq!(detail["conversionEvents"][0]["pendingUntil"], "2026-11-25T10:00:00Z");

    app.clock.advance(Duration::days(3) - Duration::seconds(1));
    app.engine.approve_due(app.engine.now()).await.unwrap();
    assert_eq!(conversion_detail(&app, &tenant, &data["conversionId"]).await["status"], "Pending");

    app.clock.advance(Duration::seconds(1));
    app.engine.approve_due(app.engine.now()).await.unwrap();
    let detail = conversion_detail(&app, &tenant, &data["conversionId"]).await;
    assert_eq!(detail["status"], "Success");
    assert_eq!(detail["conversionEvents"][0]["status"], "Success");
    assert_eq!(detail["conversionEvents"][0]["pendingUntil"], json!(null));
    assert_eq!(app.engine.approve_due(app.engine.now()).await.unwrap(), 0);
    assert_eq!(offer_spent(&app, "brownboots", offer).await, Money::whole(2));
}

#[tokio::test]
async fn manual_rewarding_waits_for_a_person_and_overrides_keep_the_budget_in_step() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let mut spec = game_offer("Adjust", "https://app.adjust.com/abc");
    spec["manualRewarding"] = json!(true);
    let offer = create_offer(&app, "brownboots", spec, None).await;
    let click = click_id(&app, "brownboots", offer, "m1").await;
    let (_, install) =
        mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(click, "Install", None)).await;
    let (_, level) =
        mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(click, "s2s_level 200", None)).await;
    assert_eq!(
        (install["status"].as_str(), level["status"].as_str()),
        (Some("Pending"), Some("Pending"))
    );
    app.clock.advance(Duration::days(400));
    app.engine.approve_due(app.engine.now()).await.unwrap();
    let id = install["conversionId"].as_str().unwrap();
    assert_eq!(
        conversion_detail(&app, &tenant, &install["conversionId"]).await["status"],
        "Pending"
    );

    // Approve one event by hand.
    let event = install["conversionEventId"].as_str().unwrap();
    let (status, body) =
        tenant.patch(&app, &format!("{BASE}/{id}/{event}/status?status=Success")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(event_status(&body["data"], "Install"), ("Success".into(), None));
    assert_eq!(body["data"]["status"], "Success");

    // Reject the whole conversion with a reason in a JSON body: the budget is given back.
    assert_eq!(offer_spent(&app, "brownboots", offer).await, Money::parse("3.5").unwrap());
    let response = app
        .request(
            reqwest::Method::PATCH,
            "brownboots",
            &format!("{BASE}/{id}/status?status=Rejected"),
        )
        .header("Authorization", format!("ApiToken {}", tenant.token))
        .json(&json!({ "reason": "Fraudulent device" }))
        .send()
        .await
        .unwrap();
    let (status, body) = common::read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "Rejected");
    assert_eq!(
        event_status(&body["data"], "s2s_level 200"),
        ("Rejected".into(), Some("Fraudulent device".into()))
    );
    assert_eq!(offer_spent(&app, "brownboots", offer).await, Money::ZERO);

    // And back to Success (any direction).
    let (status, body) =
        tenant.patch(&app, &format!("{BASE}/{id}/status?status=Success&reason=appeal")).await;
    assert_eq!((status, body["data"]["status"].as_str()), (StatusCode::OK, Some("Success")));
    assert_eq!(offer_spent(&app, "brownboots", offer).await, Money::parse("3.5").unwrap());

    // Bad overrides are 400 or 404, never more.
    let random = uuid::Uuid::new_v4();
    for (path, expected) in [
        (format!("{BASE}/{id}/status"), StatusCode::BAD_REQUEST),
        (format!("{BASE}/{id}/status?status=Maybe"), StatusCode::BAD_REQUEST),
        (format!("{BASE}/{id}/status?status=Rejected"), StatusCode::BAD_REQUEST),
        (format!("{BASE}/{id}/status?status=Pending"), StatusCode::BAD_REQUEST),
        (format!("{BASE}/{random}/status?status=Success"), StatusCode::NOT_FOUND),
        (format!("{BASE}/nope/status?status=Success"), StatusCode::NOT_FOUND),
        (format!("{BASE}/{id}/{random}/status?status=Success"), StatusCode::NOT_FOUND),
    ] {
        let (status, body) = tenant.patch(&app, &path).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    // Another tenant sees nothing.
    let other = app.tenant("othertenant").await;
    assert_eq!(other.get(&app, &format!("{BASE}/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        other.patch(&app, &format!("{BASE}/{id}/status?status=Success")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_override_releases_held_events() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let offer =
        create_offer(&app, "brownboots", game_offer("Adjust", "https://app.adjust.com/abc"), None)
            .await;
    let click = click_id(&app, "brownboots", offer, "m1").await;
    let mut fraud = conversion(click, "Install", None);
    fraud.rejected_reason = Some("ctit_anomalies".into());
    let (_, install) = mmp_postback(&app, &tenant, Mmp::AppsFlyer, &fraud).await;
    assert_eq!(install["rejectionReason"], "ctit_anomalies");
    let (_, level) =
        mmp_postback(&app, &tenant, Mmp::AppsFlyer, &conversion(click, "s2s_level 200", None))
            .await;
    assert_eq!(level["rejectionReason"], "PreviousEventRejected");
    let (_, top) =
        mmp_postback(&app, &tenant, Mmp::AppsFlyer, &conversion(click, "s2s_level 400", None))
            .await;
    assert_eq!(top["rejectionReason"], "PreviousEventRejected");

    // Level 200 is approved by hand while the install stays rejected: 400 still cannot count.
    let id = install["conversionId"].as_str().unwrap();
    let level_id = level["conversionEventId"].as_str().unwrap();
    let (status, body) =
        tenant.patch(&app, &format!("{BASE}/{id}/{level_id}/status?status=Success")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["status"], "Success");
}

#[tokio::test]
async fn revshare_pays_a_share_of_the_amount() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let spec = single_offer(json!({
        "conversionType": "RevShare", "revenue": null, "reward": null,
        "revenuePercent": 30, "rewardPercent": 12.5
    }));
    let offer = create_offer(&app, "brownboots", spec, None).await;
    let click = click_id(&app, "brownboots", offer, "m1").await;
    let (_, data) =
        mmp_postback(&app, &tenant, Mmp::AppsFlyer, &conversion(click, "purchase", Some("9.99")))
            .await;
    assert_eq!(data["status"], "Success", "{data}");
    let detail = conversion_detail(&app, &tenant, &data["conversionId"]).await;
    let event = &detail["conversionEvents"][0];
    assert_eq!(event["revenue"], json!(2.997));
    assert_eq!(event["reward"], json!(1.2488));
    assert_eq!(event["cnvAmount"], json!(9.99));
    assert_eq!(event["eventId"], "");
    assert_eq!(event["eventName"], "Sign up");
}

#[tokio::test]
async fn the_list_needs_a_range_of_at_most_three_months_and_filters() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let first = create_offer(&app, "brownboots", single_offer(json!({})), None).await;
    let second =
        create_offer(&app, "brownboots", single_offer(json!({ "dailyCap": 0 })), None).await;
    for (offer, member) in [(first, "alice"), (first, "bob"), (second, "carol")] {
        let click = click_id(&app, "brownboots", offer, member).await;
        mmp_postback(&app, &tenant, Mmp::Adjust, &conversion(click, "Install", None)).await;
    }
    let range = "user_completed_at_from=2026-11-01T00:00:00Z&user_completed_at_to=2026-11-30";
    let (status, body) = tenant.get(&app, &format!("{BASE}?{range}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["totalCount"], 3);
    let item = &body["data"]["items"][0];
    assert_eq!(item["offerName"], "Sign up");
    assert!(item.get("conversionEvents").is_none());
    // The list reads the page's events in one go: each item sums them as its detail does.
    for item in body["data"]["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap();
        let (_, detail) = tenant.get(&app, &format!("{BASE}/{id}")).await;
        assert_eq!(item["revenue"], detail["data"]["revenue"], "{item}");
        if item["status"] == "Success" {
            assert_ne!(item["revenue"], json!(0), "{item}");
        }
        assert_eq!(item["offerName"], detail["data"]["offerName"]);
    }

    let query = |filter: &str| format!("{BASE}?{range}&{filter}");
    let (_, body) = tenant.get(&app, &query(&format!("filter.offer_id={first}"))).await;
    assert_eq!(body["data"]["totalCount"], 2);
    let (_, body) = tenant.get(&app, &query("filter.status=Rejected")).await;
    assert_eq!(body["data"]["totalCount"], 1);
    assert_eq!(body["data"]["items"][0]["rejectionReason"], "CapReached");
    let (_, body) = tenant.get(&app, &query("filter.search=ALI")).await;
    assert_eq!(body["data"]["totalCount"], 1);
    let click = body["data"]["items"][0]["clickId"].as_str().unwrap().to_owned();
    let (_, body) = tenant.get(&app, &query(&format!("filter.search={click}"))).await;
    assert_eq!(body["data"]["items"][0]["pubMemberId"], "alice");
    let (_, body) = tenant.get(&app, &query("filter.search=%25_%5C")).await;
    assert_eq!(body["data"]["totalCount"], 0);
    let (_, body) = tenant.get(&app, &query("page=1&page_size=2")).await;
    assert_eq!(body["data"]["items"].as_array().unwrap().len(), 1);

    for bad in [
        String::new(),
        "user_completed_at_from=2026-11-01".into(),
        "user_completed_at_from=2026-01-01&user_completed_at_to=2026-11-30".into(),
        "user_completed_at_from=2026-11-30&user_completed_at_to=2026-11-01".into(),
        "user_completed_at_from=last week&user_completed_at_to=2026-11-30".into(),
        format!("{range}&filter.status=Lost"),
        format!("{range}&filter.offer_id=42"),
    ] {
        let (status, body) = tenant.get(&app, &format!("{BASE}?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    // Outside the range, nothing.
    let (_, body) = tenant
        .get(
            &app,
            &format!("{BASE}?user_completed_at_from=2026-10-01&user_completed_at_to=2026-10-31"),
        )
        .await;
    assert_eq!(body["data"]["totalCount"], 0);
}
