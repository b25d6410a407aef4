//! Partner tracking links (PRODUCT.md §6): the click is recorded before the 302, macros are
//! filled, and refused clicks get a plain 4xx page.

mod common;
mod tracking_support;

use common::TestApp;
use gokart_domain::{offer::OfferStatus, Money};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tracking_support::*;
use uuid::Uuid;

async fn stored_click(app: &TestApp, slug: &str, id: Uuid) -> Option<gokart_storage::ClickRecord> {
    let tenant_id = tenant_id(app, slug).await;
    let mut tx = app.engine.store.read().await.unwrap();
    tx.click(tenant_id, id).await.unwrap()
}

fn query_value(location: &str, key: &str) -> Option<String> {
    let url = url::Url::parse(location).unwrap();
    let found = url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    found
}

#[tokio::test]
async fn a_click_is_recorded_and_redirected_with_macros_filled() {
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let partner = create_partner(&app, "brownboots").await;
    let link = "https://app.adjust.com/abc123?campaign={gk_offer_name}&cost_type={cost_type}\
                &cost_amount={cost_amount}&cost_currency={cost_currency}&sub={pub_sub_1}\
                &partner={gk_partner_id}&member={pub_member_id}&other={idfa}";
    let offer = create_offer(&app, "brownboots", game_offer("Adjust", link), Some(partner)).await;

    let response = app
        .request(
            Method::GET,
            "brownboots",
            &format!(
                "/api/v1/offer-link/redirect/{offer}?pub_member_id=m%201&pub_click_id=pc-9\
                 &pub_sub_1=a%26b&pub_geo_state=CA&utm=ignored"
            ),
        )
        .header("User-Agent", "Mozilla/5.0 (iPhone)")
        .header("X-Forwarded-For", "198.51.100.7, 10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://app.adjust.com/abc123?campaign=Pet%20the%20Dogs%20iOS&"));
    assert_eq!(query_value(&location, "cost_type").as_deref(), Some("cpi"));
    assert_eq!(query_value(&location, "cost_amount").as_deref(), Some("0.5"));
    assert_eq!(query_value(&location, "cost_currency").as_deref(), Some("USD"));
    assert_eq!(query_value(&location, "sub").as_deref(), Some("a&b"));
    assert_eq!(query_value(&location, "member").as_deref(), Some("m 1"));
    assert_eq!(query_value(&location, "partner"), Some(partner.to_string()));
    assert!(location.contains("other={idfa}"), "the MMP's own macros stay: {location}");
    let click_id: Uuid = query_value(&location, "gk_click_id").unwrap().parse().unwrap();

    let click = stored_click(&app, "brownboots", click_id).await.expect("recorded");
    assert_eq!(click.offer_id, offer);
    assert_eq!(click.partner_id, Some(partner));
    assert_eq!(click.pub_member_id, "m 1");
    assert_eq!(click.pub_click_id.as_deref(), Some("pc-9"));
    assert_eq!(click.pub_param("pub_sub_1"), Some("a&b"));
    assert_eq!(click.pub_param("pub_geo_state"), Some("CA"));
    assert_eq!(click.pub_param("utm"), None);
    assert_eq!(click.ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(click.user_agent.as_deref(), Some("Mozilla/5.0 (iPhone)"));
    assert_eq!(click.created_at, app.engine.now());
}

#[tokio::test]
async fn the_click_id_goes_where_the_tracking_system_expects_it() {
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let appsflyer = "https://app.appsflyer.com/id123?pid=gokart_int&c={gk_offer_name}";
    let offer = create_offer(&app, "brownboots", game_offer("AppsFlyer", appsflyer), None).await;
    let (status, location) = click(&app, "brownboots", offer, "pub_click_id=x").await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    let id: Uuid = query_value(&location, "clickid").unwrap().parse().unwrap();
    assert_eq!(query_value(&location, "gk_click_id"), None);

    // An unshared offer's click belongs to no partner; the member falls back to the click id.
    let stored = stored_click(&app, "brownboots", id).await.unwrap();
    assert_eq!(stored.partner_id, None);
    assert_eq!(stored.pub_member_id, "x");

    let custom = "https://track.example.com/c?sub={gk_click_id}";
    let mut spec = game_offer("CustomTracking", custom);
    spec["trackingSystem"] = json!("CustomTracking");
    let offer = create_offer(&app, "brownboots", spec, None).await;
    let (_, location) = click(&app, "brownboots", offer, "pub_member_id=m").await;
    let location = location.unwrap();
    let id: Uuid = query_value(&location, "sub").unwrap().parse().unwrap();
    assert!(stored_click(&app, "brownboots", id).await.is_some());
    assert_eq!(location.matches(&id.to_string()).count(), 1, "not appended twice: {location}");
}

#[tokio::test]
async fn refused_clicks_get_a_plain_page_and_no_redirect() {
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let link = "https://app.adjust.com/abc123";
    let mut spec = game_offer("Adjust", link);
    spec["targeting"] =
        json!({ "genders": ["female"], "ageFrom": 18, "ageTo": 35, "countries": ["US", "ZA"] });
    let offer = create_offer(&app, "brownboots", spec, None).await;

    let cases = [
        (Uuid::new_v4().to_string(), "pub_member_id=m", StatusCode::NOT_FOUND, "does not exist"),
        ("not-a-uuid".to_owned(), "pub_member_id=m", StatusCode::NOT_FOUND, "does not exist"),
        (offer.to_string(), "pub_sub_1=x", StatusCode::BAD_REQUEST, "pub_member_id"),
        (offer.to_string(), "pub_member_id=", StatusCode::BAD_REQUEST, "pub_member_id"),
        (offer.to_string(), "pub_member_id=m&pub_gender=male", StatusCode::FORBIDDEN, "gender"),
        (offer.to_string(), "pub_member_id=m&pub_age=17", StatusCode::FORBIDDEN, "age"),
        (offer.to_string(), "pub_member_id=m&pub_age=abc", StatusCode::FORBIDDEN, "age"),
        (
            offer.to_string(),
            "pub_member_id=m&pub_geo_country=FRA",
            StatusCode::FORBIDDEN,
            "country",
        ),
    ];
    for (id, query, expected, words) in cases {
        let path = format!("/api/v1/offer-link/redirect/{id}?{query}");
        let response = app.request(Method::GET, "brownboots", &path).send().await.unwrap();
        assert_eq!(response.status(), expected, "{path}");
        assert!(response.headers().get("location").is_none());
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = response.text().await.unwrap();
        assert!(text.contains(words), "{path}: {text}");
    }
    // Matching targeting values pass (alpha-3 and any case).
    let (status, _) = click(
        &app,
        "brownboots",
        offer,
        "pub_member_id=m&pub_gender=Female&pub_age=20&pub_geo_country=zaf",
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);

    set_offer_status(&app, "brownboots", offer, OfferStatus::Pending).await;
    let (status, location) = click(&app, "brownboots", offer, "pub_member_id=m").await;
    assert_eq!((status, location), (StatusCode::FORBIDDEN, None));
    set_offer_status(&app, "brownboots", offer, OfferStatus::Expired).await;
    assert_eq!(click(&app, "brownboots", offer, "pub_member_id=m").await.0, StatusCode::GONE);

    let mut dated = game_offer("Adjust", link);
    dated["launchDate"] = json!("2026-12-01");
    let dated = create_offer(&app, "brownboots", dated, None).await;
    assert_eq!(click(&app, "brownboots", dated, "pub_member_id=m").await.0, StatusCode::FORBIDDEN);
    app.clock.advance(chrono::Duration::days(9));
    assert_eq!(click(&app, "brownboots", dated, "pub_member_id=m").await.0, StatusCode::FOUND);

    // Another tenant's offer does not exist here.
    app.tenant("othertenant").await;
    assert_eq!(click(&app, "othertenant", dated, "pub_member_id=m").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_offer_out_of_budget_takes_no_clicks() {
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let mut spec = game_offer("Adjust", "https://app.adjust.com/abc123");
    spec["budget"] = json!({ "total": 10 });
    let offer = create_offer(&app, "brownboots", spec, None).await;
    assert_eq!(click(&app, "brownboots", offer, "pub_member_id=m").await.0, StatusCode::FOUND);

    let tenant_id = tenant_id(&app, "brownboots").await;
    let mut tx = app.engine.store.write().await.unwrap();
    tx.add_offer_spent(tenant_id, offer, Money::whole(10)).await.unwrap();
    tx.commit().await.unwrap();
    app.engine.forget_cached_offers();
    let response = app
        .request(
            Method::GET,
            "brownboots",
            &format!("/api/v1/offer-link/redirect/{offer}?pub_member_id=m"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("budget"));
}

#[tokio::test]
async fn head_checks_the_link_but_records_nothing() {
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let offer =
        create_offer(&app, "brownboots", game_offer("Adjust", "https://app.adjust.com/a"), None)
            .await;
    let path = format!("/api/v1/offer-link/redirect/{offer}?pub_member_id=m");
    let response = app.request(Method::HEAD, "brownboots", &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("location").is_none());
    assert_eq!(response.headers()["cache-control"], "no-store");
    let path = format!("/api/v1/offer-link/redirect/{offer}");
    let response = app.request(Method::HEAD, "brownboots", &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
