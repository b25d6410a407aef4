//! Offers (PRODUCT.md §4), clone and share (§5) and the partner's view.

mod common;

use common::{messages, TestApp, TestTenant};
use gokart_engine::offers::merge_patch;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const OFFERS: &str = "/api/v1/sdk-offer-management/aff-network/offers";
const MANAGE: &str = "/api/v1/sdk-offer-management/offers";
const PARTNER: &str = "/api/v1/sdk-offer-management/partner";
const BACK_OFFICE: &str = "/api/v1/sdk-back-office-management";

async fn advertiser(app: &TestApp, tenant: &TestTenant, name: &str) -> String {
    let (status, body) =
        tenant.post(app, &format!("{BACK_OFFICE}/advertisers"), json!({ "name": name })).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&body));
    body["data"]["id"].as_str().unwrap().to_owned()
}

/// A partner's id and Partner API token.
async fn partner(app: &TestApp, tenant: &TestTenant, name: &str) -> (String, String) {
    let email = format!("{}@partners.test", name.to_lowercase().replace(' ', "-"));
    let body = json!({ "name": name, "email": email });
    let (status, body) = tenant.post(app, &format!("{BACK_OFFICE}/partners"), body).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&body));
    let data = &body["data"];
    (data["id"].as_str().unwrap().to_owned(), data["apiToken"].as_str().unwrap().to_owned())
}

/// The Adjust guide's offer.
fn pet_the_dogs(advertiser_id: &str) -> Value {
    json!({
        "name": "Pet the Dogs iOS",
        "advertiserId": advertiser_id,
        "advertiserCampaignName": "Game_iOS_GoKart",
        "offerType": "MultiEvent",
        "trackingSystem": "Adjust",
        "trackingSystemLink": "https://app.adjust.com/abc123?campaign=Game_iOS_GoKart",
        "headline": "Pet the dogs, earn coins",
        "shortDescription": "Reach level 400",
        "categories": ["Games", "Casual"],
        "creatives": [{"order": 1, "url": "https://cdn.brownboots.test/pet.png"}],
        "platform": "IOS",
        "targeting": {"genders": [], "ageFrom": 18, "ageTo": null, "countries": ["US", "ZAF", "036"]},
        "budget": {"total": 5000, "daily": null},
        "launchDate": "2026-11-22",
        "epc": 1,
        "events": [
            {"eventId": "Install", "name": "Install", "sequenceNumber": 1, "revenue": 1.50, "reward": 150},
            {"eventId": "s2s_level 200", "name": "Reach Level 200", "sequenceNumber": 2, "revenue": 2, "reward": 200},
            {"eventId": "s2s_level 400", "name": "Reach Level 400", "sequenceNumber": 3, "revenue": 3, "reward": 300}
        ]
    })
}

/// The AppsFlyer guide's offer, with an Independent purchase event.
fn golfin(advertiser_id: &str) -> Value {
    json!({
        "name": "Golfin iOS",
        "advertiserId": advertiser_id,
        "offerType": "MultiEvent",
        "trackingSystem": "AppsFlyer",
        "trackingSystemLink": "https://app.appsflyer.com/id123456?pid=gokart_int&c=golfin",
        "categories": ["Golf", "Sports"],
        "platform": "IOS",
        "targeting": {"ageFrom": 18, "countries": ["US", "ZA", "AU"]},
        "budget": {"total": 2500},
        "events": [
            {"eventId": "Install", "name": "Install", "sequenceNumber": 1, "revenue": 0.5, "reward": 50},
            {"eventId": "level_10", "name": "Reach Level 10", "sequenceNumber": 2, "revenue": 1, "reward": 100},
            {"eventId": "af_purchase", "name": "Purchase", "sequenceNumber": null, "pendingTime": 7,
             "revenue": 4.25, "reward": 425, "allowRepetitions": true}
        ]
    })
}

async fn create(app: &TestApp, tenant: &TestTenant, body: Value) -> Value {
    let (status, answer) = tenant.post(app, OFFERS, body).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&answer));
    answer["data"].clone()
}

fn id_of(offer: &Value) -> String {
    offer["id"].as_str().unwrap().to_owned()
}

async fn partner_get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    app.call(Method::GET, "brownboots", token, path, None).await
}

#[tokio::test]
async fn the_seed_offers_are_created_as_the_guides_describe() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let advertiser_id = advertiser(&app, &tenant, "Brown Boots Games").await;

    let pet = create(&app, &tenant, pet_the_dogs(&advertiser_id)).await;
    assert_eq!(pet["status"], "Active");
    assert_eq!(pet["partnerId"], Value::Null);
    assert_eq!(pet["conversionType"], "FlatRate");
    assert_eq!(pet["advertiserId"], advertiser_id.as_str());
    assert_eq!(pet["targeting"]["countries"], json!(["US", "ZA", "AU"]));
    assert_eq!(pet["categories"], json!(["Games", "Casual"]));
    assert_eq!(pet["epc"], json!(1));
    assert_eq!(pet["events"][0]["revenue"], json!(1.5));
    assert_eq!(pet["events"][2]["eventId"], "s2s_level 400");
    assert_eq!(pet["events"][2]["reward"], json!(300));
    let link = format!(
        "http://api.brownboots.localhost:{}/api/v1/offer-link/redirect/{}",
        app.addr.port(),
        id_of(&pet)
    );
    assert_eq!(pet["trackingLink"], link);

    let golf = create(&app, &tenant, golfin(&advertiser_id)).await;
    assert_eq!(golf["trackingSystem"], "AppsFlyer");
    assert_eq!(golf["events"][2]["sequenceNumber"], Value::Null);
    assert_eq!(golf["events"][2]["revenue"], json!(4.25));
    assert_eq!(golf["events"][2]["pendingTime"], 7);

    let (status, read) = tenant.get(&app, &format!("{OFFERS}/{}", id_of(&golf))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["data"], golf);

    let (_, all) = tenant.get(&app, OFFERS).await;
    assert_eq!(all["data"]["totalCount"], 2);
    assert_eq!(all["data"]["items"][0]["name"], "Golfin iOS", "newest first");
    for (query, expected) in [
        ("filter.tracking_system=AppsFlyer", vec!["Golfin iOS"]),
        ("filter.tracking_system=Adjust", vec!["Pet the Dogs iOS"]),
        ("filter.search=DOGS", vec!["Pet the Dogs iOS"]),
        ("filter.search=%25", vec![]),
        ("filter.offer_type=SingleEvent", vec![]),
        (
            "filter.offer_type=MultiEvent&filter.status=Active",
            vec!["Golfin iOS", "Pet the Dogs iOS"],
        ),
        ("filter.status=Pending", vec![]),
        ("page=1&page_size=1", vec!["Pet the Dogs iOS"]),
    ] {
        let (status, body) = tenant.get(&app, &format!("{OFFERS}?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {}", messages(&body));
        let names: Vec<&str> = body["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|offer| offer["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, expected, "{query}");
    }
    for query in ["filter.status=Paused", "filter.offer_type=Triple", "filter.tracking_system=Nope"]
    {
        let (status, body) = tenant.get(&app, &format!("{OFFERS}?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(messages(&body).contains(query.split('=').next().unwrap()), "{query}");
    }
}

#[tokio::test]
async fn every_offer_rule_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let advertiser_id = advertiser(&app, &tenant, "Brown Boots Games").await;
    let base = pet_the_dogs(&advertiser_id);
    let event =
        |id: &str, sequence: Value| json!({"eventId": id, "name": "E", "sequenceNumber": sequence});
    let cases = [
        (json!({"name": " "}), "name"),
        (json!({"advertiserId": uuid::Uuid::new_v4()}), "advertiserId"),
        (json!({"trackingSystemLink": "not a url"}), "trackingSystemLink"),
        (json!({"trackingSystemLink": "ftp://app.adjust.com/x"}), "trackingSystemLink"),
        (
            json!({"trackingSystem": "Singular", "trackingSystemLink": "https://singular.test/x"}),
            "trackingSystemLink",
        ),
        (json!({"events": [event("install", json!(1))]}), "events[0].eventId"),
        (
            json!({"events": [event("Install", json!(1)), event("lvl", json!(2)), event("lvl", json!(3))]}),
            "events[2].eventId",
        ),
        (
            json!({"events": [event("Install", json!(1)), event("lvl", json!(3))]}),
            "events[1].sequenceNumber",
        ),
        (
            json!({"events": [event("Install", json!(1)), event("lvl", json!(1))]}),
            "events[1].sequenceNumber",
        ),
        (
            json!({"events": [event("Install", json!(2)), event("lvl", json!(1))]}),
            "events[0].sequenceNumber",
        ),
        (json!({"events": [event("Install", json!(null))]}), "events[0].sequenceNumber"),
        (json!({"events": [event("lvl", json!(0))]}), "events[0].sequenceNumber"),
        (json!({"events": []}), "events"),
        (json!({"dailyCap": 10}), "dailyCap"),
        (json!({"revenue": 1}), "revenue"),
        (json!({"offerType": "SingleEvent"}), "events"),
        (
            json!({"events": [{"eventId": "Install", "name": "Install", "sequenceNumber": 1, "pendingTime": 366}]}),
            "events[0].pendingTime",
        ),
        (
            json!({"events": [{"eventId": "Install", "name": "Install", "sequenceNumber": 1, "revenue": -1}]}),
            "events[0].revenue",
        ),
        (
            json!({"events": [{"eventId": "Install", "name": "Install", "sequenceNumber": 1, "reward": -0.5}]}),
            "events[0].reward",
        ),
        (
            json!({"events": [{"eventId": "Install", "name": "", "sequenceNumber": 1}]}),
            "events[0].name",
        ),
        (
            json!({"conversionType": "RevShare", "events": [{"eventId": "Install", "name": "I", "sequenceNumber": 1, "revenuePercent": 101}]}),
            "events[0].revenuePercent",
        ),
        (
            json!({"events": [{"eventId": "Install", "name": "I", "sequenceNumber": 1, "rewardPercent": 10}]}),
            "events[0].rewardPercent",
        ),
        (json!({"targeting": {"ageFrom": 30, "ageTo": 18}}), "targeting.ageTo"),
        (json!({"targeting": {"countries": ["US", "Narnia"]}}), "targeting.countries[1]"),
        (json!({"launchDate": "2026-12-01", "expiryDate": "2026-11-30"}), "expiryDate"),
        (json!({"epc": 0}), "epc"),
        (json!({"budget": {"total": -5}}), "budget.total"),
        (json!({"creatives": [{"order": 1, "url": "javascript:alert(1)"}]}), "creatives[0].url"),
        (json!({"offerType": "SingleEvent", "events": null, "pendingTime": 400}), "pendingTime"),
        (json!({"offerType": "SingleEvent", "events": null, "dailyCap": 0}), "dailyCap"),
    ];
    for (patch, field) in cases {
        let mut body = base.clone();
        merge_patch(&mut body, &patch);
        let (status, answer) = tenant.post(&app, OFFERS, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}");
        let text = messages(&answer);
        assert!(text.split(" | ").any(|m| m.starts_with(&format!("{field}:"))), "{patch}: {text}");
    }
    // A valid SingleEvent offer for contrast: offer-level terms are its own.
    let mut single = base.clone();
    merge_patch(
        &mut single,
        &json!({"offerType": "SingleEvent", "events": null, "revenue": 2, "dailyCap": 10}),
    );
    create(&app, &tenant, single).await;
    let (_, all) = tenant.get(&app, OFFERS).await;
    assert_eq!(all["data"]["totalCount"], 1, "nothing invalid was saved");
}

#[tokio::test]
async fn bad_bodies_are_clear_4xx() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let base = pet_the_dogs(&advertiser(&app, &tenant, "Brown Boots Games").await);
    let send = |body: Vec<u8>| {
        app.request(Method::POST, "brownboots", OFFERS)
            .header("Authorization", format!("ApiToken {}", tenant.token))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    for (raw, field) in [("{\"name\": ", "name"), ("", "body"), ("[1, 2]", "[0]"), ("null", "body")]
    {
        let (status, answer) = common::read(send(raw.as_bytes().to_vec()).await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw:?}");
        assert!(messages(&answer).starts_with(field), "{raw:?}: {}", messages(&answer));
    }
    for (patch, field) in [
        (json!({"name": 5}), "name"),
        (json!({"offerType": "TripleEvent"}), "offerType"),
        (json!({"trackingSystem": "Nope"}), "trackingSystem"),
        (json!({"platform": "Windows"}), "platform"),
        (json!({"conversionType": "CPA"}), "conversionType"),
        (json!({"advertiserId": "not-a-uuid"}), "advertiserId"),
        (json!({"epc": "one"}), "epc"),
        (json!({"launchDate": "22/11/2026"}), "launchDate"),
        (json!({"targeting": {"ageFrom": -3}}), "targeting.ageFrom"),
        (
            json!({"events": [{"eventId": "Install", "name": "I", "sequenceNumber": 1, "revenue": "abc"}]}),
            "events[0].revenue",
        ),
        (
            json!({"events": [{"eventId": "Install", "name": "I", "sequenceNumber": 1, "revenue": 1.00001}]}),
            "events[0].revenue",
        ),
        (
            json!({"events": [{"eventId": "Install", "name": "I", "sequenceNumber": 1.5}]}),
            "events[0].sequenceNumber",
        ),
        (json!({"events": {"eventId": "Install"}}), "events"),
    ] {
        let mut body = base.clone();
        merge_patch(&mut body, &patch);
        let (status, answer) = tenant.post(&app, OFFERS, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch}");
        assert!(messages(&answer).starts_with(field), "{patch}: {}", messages(&answer));
    }
    // Required fields that are missing are named in the message.
    let mut body = base.clone();
    merge_patch(&mut body, &json!({"trackingSystem": null}));
    let (status, answer) = tenant.post(&app, OFFERS, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(messages(&answer).contains("trackingSystem"), "{}", messages(&answer));

    // 2 MB of copy.
    let mut huge = base.clone();
    huge["offerDetails"] = "x".repeat(2 * 1024 * 1024).into();
    let (status, _) = common::read(send(serde_json::to_vec(&huge).unwrap()).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Unknown fields are ignored.
    let mut extra = base.clone();
    extra["somethingNew"] = json!({"nested": true});
    create(&app, &tenant, extra).await;
}

#[tokio::test]
async fn the_product_segment_is_the_tenants_kind() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let base = pet_the_dogs(&advertiser(&app, &tenant, "Brown Boots Games").await);
    let offer = create(&app, &tenant, base.clone()).await;
    for product in ["advertiser", "publisher", "nonsense"] {
        let path = format!("/api/v1/sdk-offer-management/{product}/offers");
        let (status, _) = tenant.post(&app, &path, base.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{product}");
        let (status, _) = tenant.get(&app, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{product}");
        let (status, _) = tenant.get(&app, &format!("{path}/{}", id_of(&offer))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{product}");
    }
    let publisher =
        app.tenant_of_kind("rewardapp", gokart_domain::tenant::TenantKind::Publisher).await;
    let (status, _) = publisher.get(&app, "/api/v1/sdk-offer-management/publisher/offers").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = publisher.get(&app, OFFERS).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn another_tenants_offers_do_not_exist() {
    let app = TestApp::spawn().await;
    let a = app.tenant("tenant-a").await;
    let b = app.tenant("tenant-b").await;
    let offer_a = create(&app, &a, pet_the_dogs(&advertiser(&app, &a, "A Games").await)).await;
    let advertiser_b = advertiser(&app, &b, "B Games").await;
    let offer_b = create(&app, &b, pet_the_dogs(&advertiser_b)).await;
    let (partner_b, _) = partner(&app, &b, "B Partner").await;
    let id = id_of(&offer_a);

    let (status, _) = app.call(Method::GET, "tenant-b", &a.token, OFFERS, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = b.get(&app, &format!("{OFFERS}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = b.put(&app, &format!("{OFFERS}/{id}"), pet_the_dogs(&advertiser_b)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for action in ["pause", "resume"] {
        let (status, _) = b.patch(&app, &format!("{MANAGE}/{id}/{action}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}");
    }
    let (status, _) = b.post(&app, &format!("{MANAGE}/{id}/clone"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        b.post(&app, &format!("{MANAGE}/{id}/share"), json!({"partnerId": partner_b})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = b.get(&app, &format!("{MANAGE}/{id}/history")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = b.get(&app, OFFERS).await;
    assert_eq!(listed["data"]["totalCount"], 1);
    assert_eq!(listed["data"]["items"][0]["id"], offer_b["id"]);

    // A's advertiser is not B's: B cannot point an offer at it.
    let (status, answer) = b.post(&app, OFFERS, offer_a.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(messages(&answer).starts_with("advertiserId"));
    // Nor share with another tenant's partner.
    let (partner_a, _) = partner(&app, &a, "A Partner").await;
    let (status, answer) = b
        .post(&app, &format!("{MANAGE}/{}/share", id_of(&offer_b)), json!({"partnerId": partner_a}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(messages(&answer).starts_with("partnerId"));
}

#[tokio::test]
async fn pause_and_resume_are_idempotent() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let advertiser_id = advertiser(&app, &tenant, "Brown Boots Games").await;
    let pet = create(&app, &tenant, pet_the_dogs(&advertiser_id)).await;
    let golf = create(&app, &tenant, golfin(&advertiser_id)).await;
    let id = id_of(&pet);
    for _ in 0..2 {
        let (status, body) = tenant.patch(&app, &format!("{MANAGE}/{id}/pause")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (_, read) = tenant.get(&app, &format!("{OFFERS}/{id}")).await;
    assert_eq!(read["data"]["status"], "Pending");
    let (_, paused) = tenant.get(&app, &format!("{OFFERS}?filter.status=Pending")).await;
    assert_eq!(paused["data"]["items"][0]["id"], id.as_str());
    assert_eq!(paused["data"]["totalCount"], 1);
    let (_, active) = tenant.get(&app, &format!("{OFFERS}?filter.status=Active")).await;
    assert_eq!(active["data"]["items"][0]["id"], golf["id"]);
    assert_eq!(active["data"]["totalCount"], 1);

    // A full update keeps the status.
    let (status, updated) =
        tenant.put(&app, &format!("{OFFERS}/{id}"), pet_the_dogs(&advertiser_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["data"]["status"], "Pending");

    for _ in 0..2 {
        let (status, _) = tenant.patch(&app, &format!("{MANAGE}/{id}/resume")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (_, read) = tenant.get(&app, &format!("{OFFERS}/{id}")).await;
    assert_eq!(read["data"]["status"], "Active");
    let (status, _) = tenant.patch(&app, &format!("{MANAGE}/{}/pause", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = tenant.patch(&app, &format!("{MANAGE}/not-an-id/pause")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Unshared offers keep no history.
    let (_, history) = tenant.get(&app, &format!("{MANAGE}/{id}/history")).await;
    assert_eq!(history["data"]["totalCount"], 0);
}

#[tokio::test]
async fn a_shared_offer_is_for_one_partner_for_good_and_keeps_a_history() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let advertiser_id = advertiser(&app, &tenant, "Brown Boots Games").await;
    let (hub, _) = partner(&app, &tenant, "Reward Hub").await;
    let (other, _) = partner(&app, &tenant, "Coin Club").await;
    let offer = create(&app, &tenant, pet_the_dogs(&advertiser_id)).await;
    let id = id_of(&offer);

    // Unshare of an unshared offer: nothing to unshare.
    let (status, _) = tenant.post(&app, &format!("{MANAGE}/{id}/unshare"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    for (body, field) in [
        (json!({"partnerId": uuid::Uuid::new_v4()}), "partnerId"),
        (json!({"partnerId": "nope"}), "partnerId"),
        (json!({}), "body"),
        (json!({"partnerId": advertiser_id}), "partnerId"),
    ] {
        let (status, answer) =
            tenant.post(&app, &format!("{MANAGE}/{id}/share"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(messages(&answer).contains(field), "{body}: {}", messages(&answer));
    }

    let (status, shared) =
        tenant.post(&app, &format!("{MANAGE}/{id}/share"), json!({"partnerId": hub})).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&shared));
    assert_eq!(shared["data"]["offerId"], id.as_str());
    assert_eq!(shared["data"]["partnerId"], hub.as_str());
    assert_eq!(shared["data"]["sharedAt"], "2026-11-22T10:00:00Z");
    assert_eq!(shared["data"]["trackingLink"], offer["trackingLink"]);
    let (_, read) = tenant.get(&app, &format!("{OFFERS}/{id}")).await;
    assert_eq!(read["data"]["partnerId"], hub.as_str());
    assert_eq!(read["data"]["sharedAt"], "2026-11-22T10:00:00Z");

    // Never re-shared, never unshared.
    for partner_id in [&hub, &other] {
        let (status, answer) = tenant
            .post(&app, &format!("{MANAGE}/{id}/share"), json!({"partnerId": partner_id}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(messages(&answer).contains("clone"), "{}", messages(&answer));
    }
    let (status, answer) = tenant.post(&app, &format!("{MANAGE}/{id}/unshare"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(messages(&answer).contains("cannot be unshared"));
    let (status, _) = common::read(
        app.request(Method::DELETE, "brownboots", &format!("{MANAGE}/{id}/share"))
            .header("Authorization", format!("ApiToken {}", tenant.token))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Changes after sharing are kept, one entry per field.
    app.clock.advance(chrono::Duration::hours(1));
    let mut changed = pet_the_dogs(&advertiser_id);
    changed["name"] = "Pet the Dogs iOS (Reward Hub)".into();
    changed["events"][0]["revenue"] = json!(1.75);
    changed["events"][2]["reward"] = json!(350);
    let (status, updated) = tenant.put(&app, &format!("{OFFERS}/{id}"), changed.clone()).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&updated));
    assert_eq!(updated["data"]["partnerId"], hub.as_str(), "an update keeps the sharing");
    // The same update again changes nothing.
    tenant.put(&app, &format!("{OFFERS}/{id}"), changed).await;
    app.clock.advance(chrono::Duration::hours(1));
    for _ in 0..2 {
        tenant.patch(&app, &format!("{MANAGE}/{id}/pause")).await;
    }
    app.clock.advance(chrono::Duration::hours(1));
    tenant.patch(&app, &format!("{MANAGE}/{id}/resume")).await;

    let (status, history) = tenant.get(&app, &format!("{MANAGE}/{id}/history")).await;
    assert_eq!(status, StatusCode::OK);
    let items = history["data"]["items"].as_array().unwrap();
    let summary: Vec<(&str, String, String)> = items
        .iter()
        .map(|item| {
            (
                item["field"].as_str().unwrap(),
                item["oldValue"].to_string(),
                item["newValue"].to_string(),
            )
        })
        .collect();
    assert_eq!(summary[0], ("status", "\"Pending\"".into(), "\"Active\"".into()));
    assert_eq!(summary[1], ("status", "\"Active\"".into(), "\"Pending\"".into()));
    let mut edits: Vec<_> = summary[2..5].to_vec();
    edits.sort();
    assert_eq!(
        edits,
        [
            ("events[Install].revenue", "1.5".into(), "1.75".into()),
            ("events[s2s_level 400].reward", "300".into(), "350".into()),
            ("name", "\"Pet the Dogs iOS\"".into(), "\"Pet the Dogs iOS (Reward Hub)\"".into()),
        ]
    );
    assert_eq!(summary[5], ("sharedWith", "null".into(), format!("\"{hub}\"")));
    assert_eq!(history["data"]["totalCount"], 6);
    assert_eq!(items[0]["at"], "2026-11-22T13:00:00Z");
    assert_eq!(items[5]["at"], "2026-11-22T10:00:00Z");
    assert!(items.iter().all(|item| item["actor"] == "tenant:brownboots"));
    let (_, paged) = tenant.get(&app, &format!("{MANAGE}/{id}/history?page=1&page_size=4")).await;
    assert_eq!(paged["data"]["items"].as_array().unwrap().len(), 2);
    assert_eq!(paged["data"]["items"][1]["field"], "sharedWith");
}

#[tokio::test]
async fn a_clone_is_a_new_unshared_offer_that_can_go_to_another_partner() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let advertiser_id = advertiser(&app, &tenant, "Brown Boots Games").await;
    let (hub, _) = partner(&app, &tenant, "Reward Hub").await;
    let (club, _) = partner(&app, &tenant, "Coin Club").await;
    let offer = create(&app, &tenant, pet_the_dogs(&advertiser_id)).await;
    let id = id_of(&offer);
    tenant.post(&app, &format!("{MANAGE}/{id}/share"), json!({"partnerId": hub})).await;
    tenant.patch(&app, &format!("{MANAGE}/{id}/pause")).await;

    // Without a body: the same settings and events.
    let (status, copy) = tenant.post(&app, &format!("{MANAGE}/{id}/clone"), json!(null)).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&copy));
    let response = app
        .request(Method::POST, "brownboots", &format!("{MANAGE}/{id}/clone"))
        .header("Authorization", format!("ApiToken {}", tenant.token))
        .send()
        .await
        .unwrap();
    let (status, bare) = common::read(response).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&bare));
    let copy = &bare["data"];
    assert_ne!(copy["id"], offer["id"]);
    assert_eq!(copy["status"], "Active");
    assert_eq!(copy["partnerId"], Value::Null);
    assert_eq!(copy["sharedAt"], Value::Null);
    assert_eq!(copy["events"], offer["events"]);
    assert_eq!(copy["name"], offer["name"]);

    // With overrides: merged onto the source, then checked like a new offer.
    let overrides = json!({
        "name": "Pet the Dogs iOS (Coin Club)",
        "targeting": {"countries": ["USA"]},
        "events": [
            {"eventId": "Install", "name": "Install", "sequenceNumber": 1, "revenue": 1.25, "reward": 125}
        ]
    });
    let (status, custom) = tenant.post(&app, &format!("{MANAGE}/{id}/clone"), overrides).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&custom));
    let custom = &custom["data"];
    assert_eq!(custom["name"], "Pet the Dogs iOS (Coin Club)");
    assert_eq!(custom["targeting"]["countries"], json!(["US"]));
    assert_eq!(custom["targeting"]["ageFrom"], 18, "objects merge key by key");
    assert_eq!(custom["events"].as_array().unwrap().len(), 1);
    assert_eq!(custom["advertiserCampaignName"], "Game_iOS_GoKart");

    for (overrides, field) in [
        (json!({"epc": 0}), "epc"),
        (json!({"offerType": "Bad"}), "offerType"),
        (
            json!({"events": [{"eventId": "install", "name": "I", "sequenceNumber": 1}]}),
            "events[0].eventId",
        ),
        (json!(["name"]), "body"),
    ] {
        let (status, answer) =
            tenant.post(&app, &format!("{MANAGE}/{id}/clone"), overrides.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{overrides}");
        assert!(messages(&answer).starts_with(field), "{overrides}: {}", messages(&answer));
    }

    let custom_id = custom["id"].as_str().unwrap();
    let (status, shared) =
        tenant.post(&app, &format!("{MANAGE}/{custom_id}/share"), json!({"partnerId": club})).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&shared));
    let (_, shared_with_club) = tenant.get(&app, &format!("{OFFERS}/{custom_id}")).await;
    assert_eq!(shared_with_club["data"]["partnerId"], club.as_str());
    let (_, source) = tenant.get(&app, &format!("{OFFERS}/{id}")).await;
    assert_eq!(source["data"]["partnerId"], hub.as_str(), "the source stays with its partner");
    let (status, _) =
        tenant.post(&app, &format!("{MANAGE}/{}/clone", uuid::Uuid::new_v4()), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_partner_sees_only_the_offers_shared_with_it() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let advertiser_id = advertiser(&app, &tenant, "Brown Boots Games").await;
    let (hub, hub_token) = partner(&app, &tenant, "Reward Hub").await;
    let (club, club_token) = partner(&app, &tenant, "Coin Club").await;
    let pet = create(&app, &tenant, pet_the_dogs(&advertiser_id)).await;
    let golf = create(&app, &tenant, golfin(&advertiser_id)).await;
    let unshared = create(&app, &tenant, pet_the_dogs(&advertiser_id)).await;
    tenant.post(&app, &format!("{MANAGE}/{}/share", id_of(&pet)), json!({"partnerId": hub})).await;
    tenant
        .post(&app, &format!("{MANAGE}/{}/share", id_of(&golf)), json!({"partnerId": club}))
        .await;

    let (status, list) = partner_get(&app, &hub_token, PARTNER).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&list));
    assert_eq!(list["data"]["totalCount"], 1);
    assert_eq!(list["data"]["items"][0]["id"], pet["id"]);
    let (_, list) = partner_get(&app, &club_token, PARTNER).await;
    assert_eq!(list["data"]["totalCount"], 1);
    assert_eq!(list["data"]["items"][0]["id"], golf["id"]);

    let (status, view) = partner_get(&app, &hub_token, &format!("{PARTNER}/{}", id_of(&pet))).await;
    assert_eq!(status, StatusCode::OK);
    let view = &view["data"];
    assert_eq!(view["name"], "Pet the Dogs iOS");
    assert_eq!(view["trackingLink"], pet["trackingLink"]);
    assert_eq!(view["events"][0]["payout"], json!(1.5));
    assert_eq!(view["events"][0]["reward"], json!(150));
    assert_eq!(view["events"][1]["name"], "Reach Level 200");
    assert_eq!(view["targeting"]["countries"], json!(["US", "ZA", "AU"]));
    assert_eq!(view["creatives"][0]["url"], "https://cdn.brownboots.test/pet.png");
    let text = view.to_string();
    for hidden in
        ["adjust.com", "trackingSystemLink", "budget", "spent", "advertiserId", "partnerId", &club]
    {
        assert!(!text.contains(hidden), "{hidden} is not the partner's business: {text}");
    }

    // Other partners' offers and unshared offers do not exist for it.
    for id in [id_of(&golf), id_of(&unshared), uuid::Uuid::new_v4().to_string()] {
        let (status, _) = partner_get(&app, &hub_token, &format!("{PARTNER}/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = partner_get(&app, &hub_token, &format!("{PARTNER}/{id}/history")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // The partner reads the same history as the tenant.
    tenant.patch(&app, &format!("{MANAGE}/{}/pause", id_of(&pet))).await;
    let (status, history) =
        partner_get(&app, &hub_token, &format!("{PARTNER}/{}/history", id_of(&pet))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["data"]["totalCount"], 2);
    assert_eq!(history["data"]["items"][0]["field"], "status");
    let (_, view) = partner_get(&app, &hub_token, &format!("{PARTNER}/{}", id_of(&pet))).await;
    assert_eq!(view["data"]["status"], "Pending");

    // Scopes: a Management token on partner routes, a Partner token on management routes.
    let (status, _) = tenant.get(&app, PARTNER).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = tenant.get(&app, &format!("{PARTNER}/{}", id_of(&pet))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for path in [
        OFFERS.to_owned(),
        format!("{OFFERS}/{}", id_of(&pet)),
        format!("{MANAGE}/{}/history", id_of(&pet)),
    ] {
        let (status, _) = partner_get(&app, &hub_token, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, _) = app
        .call(
            Method::PATCH,
            "brownboots",
            &hub_token,
            &format!("{MANAGE}/{}/resume", id_of(&pet)),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A partner token of another tenant is unknown here.
    let other = app.tenant("elsewhere").await;
    let (_, other_token) = partner(&app, &other, "Reward Hub").await;
    let (status, _) = partner_get(&app, &other_token, PARTNER).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_demo_prepares_a_shared_offer_once() {
    let app = TestApp::spawn().await;
    let server = gokart::Server {
        engine: app.engine.clone(),
        allow_private_destinations: true,
        run_worker: false,
        worker_config: Default::default(),
    };
    gokart::demo::prepare(&server).await.unwrap();
    gokart::demo::prepare(&server).await.unwrap();

    let engine = &app.engine;
    let tenant = engine.tenant("brownboots").await.unwrap().unwrap();
    let all = gokart_storage::PageRequest::ALL;
    let partners =
        engine.list_items(&tenant, gokart_storage::DirectoryKind::Partners, all).await.unwrap();
    assert_eq!(partners.items.len(), 1);
    assert_eq!(partners.items[0].name, "Reward Hub");
    let advertisers =
        engine.list_items(&tenant, gokart_storage::DirectoryKind::Advertisers, all).await.unwrap();
    assert_eq!(advertisers.items.len(), 1);
    assert_eq!(advertisers.items[0].name, "Brown Boots Games");
    let offers = engine.list_offers(&tenant, &Default::default(), all).await.unwrap();
    assert_eq!(offers.items.len(), 1);
    let offer = &offers.items[0];
    assert_eq!(offer.spec.name, "Pet the Dogs iOS");
    assert_eq!(offer.partner_id, Some(partners.items[0].id));
    assert_eq!(offer.spec.advertiser_id, Some(advertisers.items[0].id));
    let events: Vec<_> = offer
        .spec
        .events
        .iter()
        .map(|e| {
            (
                e.event_id.as_str(),
                e.sequence_number,
                e.revenue.unwrap().to_string(),
                e.reward.unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("Install", Some(1), "1.5".to_owned(), "150".to_owned()),
            ("s2s_level 200", Some(2), "2".to_owned(), "200".to_owned()),
            ("s2s_level 400", Some(3), "3".to_owned(), "300".to_owned()),
        ]
    );
    assert_eq!(offer.spec.targeting.countries, ["US", "ZA", "AU"]);
    assert_eq!(offer.spec.targeting.age_from, Some(18));
}
