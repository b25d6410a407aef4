//! Tenants, hosts, API tokens and the secure postback credentials.

mod common;

use common::{messages, TestApp};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn unknown_tenant_and_missing_token() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;

    let (status, _) =
        app.call(Method::GET, "nobody", &tenant.token, "/api/v1/profile/postback", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let response =
        app.request(Method::GET, "brownboots", "/api/v1/profile/postback").send().await.unwrap();
    let (status, body) = common::read(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["isSuccessful"], false);

    let (status, _) =
        app.call(Method::GET, "brownboots", "wrong", "/api/v1/profile/postback", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_works_only_for_its_own_tenant() {
    let app = TestApp::spawn().await;
    let a = app.tenant("tenant-a").await;
    let _b = app.tenant("tenant-b").await;
    let (status, _) =
        app.call(Method::GET, "tenant-b", &a.token, "/api/v1/profile/postback", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn postback_credentials_rotate_with_a_grace_period() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;

    let (status, body) = tenant.get(&app, "/api/v1/profile/postback").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    assert_eq!(data["domain"], "brownboots");
    let segment = data["securitySegment"].as_str().unwrap();
    assert_eq!(segment.matches('/').count(), 3, "{segment}");
    assert!(segment.ends_with('/'));
    assert!(data["signature"].as_str().unwrap().len() >= 43);
    let url = data["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "http://api.brownboots.localhost:{}/api/v1/{segment}?signature=",
            app.addr.port()
        )),
        "{url}"
    );

    let (status, rotated) =
        tenant.post(&app, "/api/v1/profile/postback/rotate", serde_json::json!({})).await;
    assert_eq!(status, StatusCode::OK, "{}", messages(&rotated));
    assert_ne!(rotated["data"]["signature"], data["signature"]);
    assert_eq!(rotated["data"]["previousValidUntil"], "2026-11-29T10:00:00Z");

    let engine = &app.engine;
    let record = engine.tenant("brownboots").await.unwrap().unwrap();
    let old_segment = segment.trim_end_matches('/');
    let old_signature = data["signature"].as_str().unwrap();
    assert!(engine.verify_postback_credentials(&record, old_segment, old_signature).await.unwrap());
    app.clock.advance(chrono::Duration::days(8));
    assert!(!engine
        .verify_postback_credentials(&record, old_segment, old_signature)
        .await
        .unwrap());
    let new_segment = rotated["data"]["securitySegment"].as_str().unwrap().trim_end_matches('/');
    let new_signature = rotated["data"]["signature"].as_str().unwrap();
    assert!(engine.verify_postback_credentials(&record, new_segment, new_signature).await.unwrap());
}

#[tokio::test]
async fn slugs_are_checked_and_unique() {
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let again = app
        .engine
        .create_tenant(gokart_engine::tenants::NewTenant {
            slug: "brownboots".into(),
            kind: gokart_domain::tenant::TenantKind::Advertiser,
            name: "Again".into(),
            admin_email: "a@b.test".into(),
            admin_password: "password-123".into(),
        })
        .await;
    assert!(matches!(again, Err(gokart_engine::EngineError::Conflict(_))));
    let bad = app
        .engine
        .create_tenant(gokart_engine::tenants::NewTenant {
            slug: "No_Caps".into(),
            kind: gokart_domain::tenant::TenantKind::Advertiser,
            name: "x".into(),
            admin_email: "a@b.test".into(),
            admin_password: "password-123".into(),
        })
        .await;
    assert!(matches!(bad, Err(gokart_engine::EngineError::Invalid(_))));
}
