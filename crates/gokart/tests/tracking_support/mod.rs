//! Helpers shared by the tracking, intake and conversion tests: offers and partners written
//! straight to storage (the offers API is another module's), clicks and MMP-shaped postbacks.

#![allow(dead_code)]

use chrono::Utc;
use gokart_domain::offer::{Offer, OfferSpec, OfferStatus};
use gokart_mmp::{Mmp, SimulatedConversion};
use gokart_storage::{DirectoryItem, DirectoryKind, OfferRecord};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{read, TestApp, TestTenant};

pub async fn tenant_id(app: &TestApp, slug: &str) -> Uuid {
    app.engine.tenant(slug).await.unwrap().unwrap().id
}

pub async fn create_partner(app: &TestApp, slug: &str) -> Uuid {
    let tenant_id = tenant_id(app, slug).await;
    let id = Uuid::new_v4();
    let now = Utc::now();
    let mut tx = app.engine.store.write().await.unwrap();
    tx.insert_directory_item(&DirectoryItem {
        id,
        tenant_id,
        kind: DirectoryKind::Partners,
        name: "Reward Wall".into(),
        body: json!({ "id": id, "name": "Reward Wall", "email": "wall@example.test" }),
        created_at: now,
        updated_at: now,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

/// Writes an offer with `spec` (GoKart's JSON), shared with `partner` when given.
pub async fn create_offer(app: &TestApp, slug: &str, spec: Value, partner: Option<Uuid>) -> Uuid {
    let tenant_id = tenant_id(app, slug).await;
    let spec: OfferSpec = serde_json::from_value(spec).unwrap();
    let now = app.engine.now();
    let offer = Offer {
        id: Uuid::new_v4(),
        status: OfferStatus::Active,
        partner_id: partner,
        shared_at: partner.map(|_| now),
        created_at: now,
        updated_at: now,
        spec,
    };
    let mut tx = app.engine.store.write().await.unwrap();
    tx.insert_offer(tenant_id, &OfferRecord { offer: offer.clone(), spent: Default::default() })
        .await
        .unwrap();
    tx.commit().await.unwrap();
    offer.id
}

pub async fn set_offer_status(app: &TestApp, slug: &str, offer_id: Uuid, status: OfferStatus) {
    let tenant_id = tenant_id(app, slug).await;
    let mut tx = app.engine.store.write().await.unwrap();
    let mut record = tx.offer(tenant_id, offer_id).await.unwrap().unwrap();
    record.offer.status = status;
    tx.update_offer(tenant_id, &record).await.unwrap();
    tx.commit().await.unwrap();
    app.engine.forget_cached_offers();
}

pub async fn offer_spent(app: &TestApp, slug: &str, offer_id: Uuid) -> gokart_domain::Money {
    let tenant_id = tenant_id(app, slug).await;
    let mut tx = app.engine.store.read().await.unwrap();
    tx.offer(tenant_id, offer_id).await.unwrap().unwrap().spent
}

/// The seeds' Adjust/AppsFlyer multi-event game offer: install, level 200, level 400 in
/// sequence, and an independent repeatable purchase.
pub fn game_offer(system: &str, link: &str) -> Value {
    json!({
        "name": "Pet the Dogs iOS",
        "offerType": "MultiEvent",
        "trackingSystem": system,
        "trackingSystemLink": link,
        "events": [
            { "eventId": "Install", "name": "Install the game", "sequenceNumber": 1,
              "revenue": 0.5, "reward": 50 },
            { "eventId": "s2s_level 200", "name": "Reach Level 200", "sequenceNumber": 2,
              "revenue": 3, "reward": 300 },
            { "eventId": "s2s_level 400", "name": "Reach Level 400", "sequenceNumber": 3,
              "revenue": 6, "reward": 600 },
            { "eventId": "purchase", "name": "Make a purchase", "sequenceNumber": null,
              "revenue": 1.25, "reward": 125, "allowRepetitions": true }
        ]
    })
}

pub fn single_offer(extra: Value) -> Value {
    let mut spec = json!({
        "name": "Sign up",
        "offerType": "SingleEvent",
        "trackingSystem": "Adjust",
        "trackingSystemLink": "https://app.adjust.com/abc123?campaign={gk_offer_name}",
        "revenue": 2,
        "reward": 200,
    });
    for (key, value) in extra.as_object().unwrap() {
        spec[key] = value.clone();
    }
    spec
}

/// Clicks the tracking link; answers the status and the Location header.
pub async fn click(
    app: &TestApp,
    slug: &str,
    offer_id: Uuid,
    query: &str,
) -> (StatusCode, Option<String>) {
    let path = format!("/api/v1/offer-link/redirect/{offer_id}?{query}");
    let response = app.request(Method::GET, slug, &path).send().await.unwrap();
    let location =
        response.headers().get("location").map(|value| value.to_str().unwrap().to_owned());
    (response.status(), location)
}

/// Clicks and returns the minted click id, read from `parameter` in the redirect.
pub async fn click_id(app: &TestApp, slug: &str, offer_id: Uuid, member: &str) -> Uuid {
    let (status, location) =
        click(app, slug, offer_id, &format!("pub_member_id={member}&pub_click_id=c-{member}"))
            .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = url::Url::parse(&location.unwrap()).unwrap();
    let value = location
        .query_pairs()
        .find(|(key, _)| key == "gk_click_id" || key == "clickid")
        .map(|(_, value)| value.into_owned())
        .expect("click id in the redirect");
    value.parse().unwrap()
}

/// The path and query of the tenant's postback URL (with its signature).
pub fn postback_path(tenant: &TestTenant) -> String {
    let url = url::Url::parse(&tenant.postback_url).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

/// Sends `pairs` to the tenant's postback URL with GET.
pub async fn postback(
    app: &TestApp,
    tenant: &TestTenant,
    pairs: &[(String, String)],
) -> (StatusCode, Value) {
    let mut path = postback_path(tenant);
    for (key, value) in pairs {
        path = gokart_domain::macros::append_query_param(&path, key, value);
    }
    read(app.request(Method::GET, &tenant.slug, &path).send().await.unwrap()).await
}

pub fn conversion(click_id: Uuid, event_id: &str, amount: Option<&str>) -> SimulatedConversion {
    SimulatedConversion {
        click_id,
        event_id: event_id.into(),
        is_install: event_id == "Install",
        amount: amount.map(str::to_owned),
        currency: amount.map(|_| "USD".to_owned()),
        conversion_id: String::new(),
        rejected_reason: None,
    }
}

/// Sends one MMP-shaped postback and returns status and `data`.
pub async fn mmp_postback(
    app: &TestApp,
    tenant: &TestTenant,
    mmp: Mmp,
    input: &SimulatedConversion,
) -> (StatusCode, Value) {
    let (status, body) = postback(app, tenant, &gokart_mmp::postback_params(mmp, input)).await;
    (status, body["data"].clone())
}

/// The conversion as `GET .../conversions/{id}` shows it.
pub async fn conversion_detail(app: &TestApp, tenant: &TestTenant, id: &Value) -> Value {
    let id = id.as_str().unwrap();
    let (status, body) =
        tenant.get(app, &format!("/api/v1/sdk-conversion-system/conversions/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

/// The status of the conversion event with `event_id` in a conversion detail.
pub fn event_status(detail: &Value, event_id: &str) -> (String, Option<String>) {
    let event = detail["conversionEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventId"] == event_id)
        .unwrap_or_else(|| panic!("no {event_id} in {detail}"));
    (
        event["status"].as_str().unwrap().to_owned(),
        event["rejectionReason"].as_str().map(str::to_owned),
    )
}
