//! Back office: advertisers, partners, categories, placements, age ranges, genders.

mod common;

use common::{messages, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

const BASE: &str = "/api/v1/sdk-back-office-management";

#[tokio::test]
async fn every_kind_is_created_read_listed_and_updated() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let cases = [
        (
            "advertisers",
            json!({"name": "Brown Boots Games", "email": "Ads@BrownBoots.test",
            "website": "https://brownboots.test", "billingAddress": "1 Main St", "unknown": 1}),
        ),
        ("categories", json!({"name": "Golf"})),
        ("placements", json!({"name": "Offerwall"})),
        ("age-ranges", json!({"valueFrom": 18, "valueTo": 24})),
        ("genders", json!({"name": "non-binary"})),
    ];
    for (kind, body) in cases {
        let (status, created) = tenant.post(&app, &format!("{BASE}/{kind}"), body).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {}", messages(&created));
        let id = created["data"]["id"].as_str().unwrap().to_owned();
        let (status, read) = tenant.get(&app, &format!("{BASE}/{kind}/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{kind}");
        assert_eq!(read["data"], created["data"], "{kind}");
        let (status, listed) = tenant.get(&app, &format!("{BASE}/{kind}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(listed["data"]["items"].as_array().unwrap().iter().any(|item| item["id"] == id));
    }

    let (_, advertisers) = tenant.get(&app, &format!("{BASE}/advertisers")).await;
    let advertiser = &advertisers["data"]["items"][0];
    assert_eq!(advertiser["email"], "ads@brownboots.test");
    assert_eq!(advertiser["billingAddress"], "1 Main St");
    assert!(advertiser.get("unknown").is_none());

    let (_, ranges) = tenant.get(&app, &format!("{BASE}/age-ranges")).await;
    assert_eq!(ranges["data"]["items"][0]["name"], "18-24");

    // Genders start with male and female.
    let (_, genders) = tenant.get(&app, &format!("{BASE}/genders")).await;
    let mut names: Vec<_> =
        genders["data"]["items"].as_array().unwrap().iter().map(|g| g["name"].clone()).collect();
    names.sort_by_key(ToString::to_string);
    assert_eq!(names, [json!("female"), json!("male"), json!("non-binary")]);

    let id = advertiser["id"].as_str().unwrap();
    let (status, updated) = tenant
        .put(
            &app,
            &format!("{BASE}/advertisers/{id}"),
            json!({"name": "Brain Games", "phone": "+1 555"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&updated));
    assert_eq!(updated["data"]["name"], "Brain Games");
    assert_eq!(updated["data"]["phone"], "+1 555");
    assert!(updated["data"].get("email").is_none(), "PUT replaces every field");
    let (_, read) = tenant.get(&app, &format!("{BASE}/advertisers/{id}")).await;
    assert_eq!(read["data"]["name"], "Brain Games");
}

#[tokio::test]
async fn lists_are_paged() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    for n in 0..12 {
        let (status, _) = tenant
            .post(&app, &format!("{BASE}/categories"), json!({"name": format!("Category {n:02}")}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, page) = tenant.get(&app, &format!("{BASE}/categories?page=1&page_size=5")).await;
    assert_eq!(status, StatusCode::OK);
    let data = &page["data"];
    assert_eq!(data["totalCount"], 12);
    assert_eq!(data["totalPages"], 3);
    assert_eq!(data["pageIndex"], 1);
    assert_eq!(data["hasPreviousPage"], true);
    assert_eq!(data["hasNextPage"], true);
    assert_eq!(data["items"][0]["name"], "Category 05");
    let (status, _) = tenant.get(&app, &format!("{BASE}/categories?page_size=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn each_kind_checks_its_fields() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let cases = [
        ("advertisers", json!({}), "name"),
        ("advertisers", json!({"name": "  "}), "name"),
        ("advertisers", json!({"name": 5}), "name"),
        ("advertisers", json!({"name": "A", "email": "not-an-email"}), "email"),
        ("advertisers", json!({"name": "A", "website": "ftp://x.test"}), "website"),
        ("partners", json!({"email": "p@x.test"}), "name"),
        ("partners", json!({"name": "Reward Hub"}), "email"),
        ("partners", json!({"name": "Reward Hub", "email": "nope"}), "email"),
        ("categories", json!({"title": "Golf"}), "name"),
        ("placements", json!({"name": ""}), "name"),
        ("genders", json!({"name": null}), "name"),
        ("age-ranges", json!({"valueTo": 30}), "valueFrom"),
        ("age-ranges", json!({"valueFrom": "18"}), "valueFrom"),
        ("age-ranges", json!({"valueFrom": 18.5}), "valueFrom"),
        ("age-ranges", json!({"valueFrom": 30, "valueTo": 18}), "valueTo"),
        ("age-ranges", json!({"valueFrom": -1}), "valueFrom"),
        ("categories", json!([1, 2]), "body"),
    ];
    for (kind, body, field) in cases {
        let (status, answer) = tenant.post(&app, &format!("{BASE}/{kind}"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{kind} {body}");
        assert!(
            messages(&answer).starts_with(&format!("{field}:")),
            "{kind} {body}: {}",
            messages(&answer)
        );
    }
    // The same rules on update.
    let (_, created) =
        tenant.post(&app, &format!("{BASE}/categories"), json!({"name": "Golf"})).await;
    let id = created["data"]["id"].as_str().unwrap();
    let (status, answer) =
        tenant.put(&app, &format!("{BASE}/categories/{id}"), json!({"name": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(messages(&answer).contains("name"));
    // An open age range is fine.
    let (status, open) =
        tenant.post(&app, &format!("{BASE}/age-ranges"), json!({"valueFrom": 18})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(open["data"]["name"], "18+");
    // Duplicate names of a list are refused.
    let (status, _) =
        tenant.post(&app, &format!("{BASE}/categories"), json!({"name": "golf"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Unknown kinds and ids.
    let (status, _) = tenant.get(&app, &format!("{BASE}/planets")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = tenant.get(&app, &format!("{BASE}/categories/not-a-uuid")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = tenant.get(&app, &format!("{BASE}/placements/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a category is not a placement");
    let (status, _) = tenant
        .put(&app, &format!("{BASE}/categories/{}", uuid::Uuid::new_v4()), json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_new_partner_gets_a_partner_token_and_a_portal_login_once() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let (status, created) = tenant
        .post(
            &app,
            &format!("{BASE}/partners"),
            json!({"name": "Reward Hub", "email": "Team@RewardHub.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&created));
    let data = &created["data"];
    let partner_id = data["id"].as_str().unwrap();
    let token = data["apiToken"].as_str().unwrap();
    let password = data["portalPassword"].as_str().unwrap();
    assert_eq!(data["portalEmail"], "team@rewardhub.test");
    assert!(token.len() >= 43 && password.len() >= 16);

    // Neither is shown again.
    let (_, read) = tenant.get(&app, &format!("{BASE}/partners/{partner_id}")).await;
    assert_eq!(read["data"]["email"], "team@rewardhub.test");
    assert!(read["data"].get("apiToken").is_none() && read["data"].get("portalPassword").is_none());

    // The portal login is a Partner user with an argon2 hash of the password.
    let record = app.engine.tenant("brownboots").await.unwrap().unwrap();
    let mut tx = app.engine.store.read().await.unwrap();
    let user = tx.user_by_email(record.id, "team@rewardhub.test").await.unwrap().unwrap();
    assert_eq!(user.role, gokart_storage::UserRole::Partner);
    assert_eq!(user.partner_id.unwrap().to_string(), partner_id);
    assert!(gokart_engine::secrets::verify_password(password, &user.password_hash));
    drop(tx);

    // The token is a Partner token: partner routes yes, management routes no.
    let (status, _) = app
        .call(Method::GET, "brownboots", token, "/api/v1/sdk-offer-management/partner", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        app.call(Method::GET, "brownboots", token, &format!("{BASE}/partners"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // One partner per email in a tenant (also against the tenant's own logins).
    let (status, answer) = tenant
        .post(
            &app,
            &format!("{BASE}/partners"),
            json!({"name": "Other", "email": "team@rewardhub.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{}", messages(&answer));
    let (status, _) = tenant
        .post(
            &app,
            &format!("{BASE}/partners"),
            json!({"name": "Ops", "email": "ops@brownboots.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Another tenant may have a partner with the same email.
    let other = app.tenant("goldengames").await;
    let (status, _) = other
        .post(
            &app,
            &format!("{BASE}/partners"),
            json!({"name": "Reward Hub", "email": "team@rewardhub.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn another_tenants_items_do_not_exist() {
    let app = TestApp::spawn().await;
    let a = app.tenant("tenant-a").await;
    let b = app.tenant("tenant-b").await;
    let (_, created) = a.post(&app, &format!("{BASE}/advertisers"), json!({"name": "Mine"})).await;
    let id = created["data"]["id"].as_str().unwrap();
    let (status, _) = b.get(&app, &format!("{BASE}/advertisers/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        b.put(&app, &format!("{BASE}/advertisers/{id}"), json!({"name": "Theirs"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = b.get(&app, &format!("{BASE}/advertisers")).await;
    assert_eq!(listed["data"]["totalCount"], 0);
    let (status, _) =
        app.call(Method::GET, "tenant-b", &a.token, &format!("{BASE}/advertisers"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
