//! `gokart demo`: the `brownboots` tenant of the seed guides, created once.

use crate::Server;

pub const DEMO_TENANT: &str = "brownboots";
pub const DEMO_EMAIL: &str = "ops@brownboots.test";
pub const DEMO_PASSWORD: &str = "brownboots-demo";

pub async fn prepare(server: &Server) -> anyhow::Result<()> {
    let engine = &server.engine;
    if engine.tenant(DEMO_TENANT).await.map_err(crate::cli::describe)?.is_none() {
        let created = engine
            .create_tenant(gokart_engine::tenants::NewTenant {
                slug: DEMO_TENANT.into(),
                kind: gokart_domain::tenant::TenantKind::AffNetwork,
                name: "Brown Boots".into(),
                admin_email: DEMO_EMAIL.into(),
                admin_password: DEMO_PASSWORD.into(),
            })
            .await
            .map_err(crate::cli::describe)?;
        println!("Management API token (shown once): {}", created.management_api_token);
    }
    let tenant = engine.tenant(DEMO_TENANT).await.map_err(crate::cli::describe)?;
    let tenant = tenant.ok_or_else(|| anyhow::anyhow!("demo tenant missing"))?;
    let postback = engine.postback_credentials(&tenant).await.map_err(crate::cli::describe)?;
    println!("Dashboard:        {}/", engine.urls.app_origin(DEMO_TENANT));
    println!("Login:            {DEMO_EMAIL} / {DEMO_PASSWORD}");
    println!("Domain:           {}", postback.domain);
    println!("Security Segment: {}", postback.security_segment);
    println!("Signature:        {}", postback.signature);
    println!("Postback URL:     {}", postback.url);
    Ok(())
}
