//! `gokart demo`: the `brownboots` tenant of the seed guides, created once, with its advertiser,
//! a partner, and the Adjust guide's multi-event offer shared with that partner.

use gokart_domain::offer::{Offer, OfferSpec};
use gokart_engine::Engine;
use gokart_storage::{DirectoryItem, DirectoryKind, OfferFilter, PageRequest, TenantRecord};
use serde_json::json;
use uuid::Uuid;

use crate::{cli::describe, Server};

pub const DEMO_TENANT: &str = "brownboots";
pub const DEMO_EMAIL: &str = "ops@brownboots.test";
pub const DEMO_PASSWORD: &str = "brownboots-demo";
pub const DEMO_ADVERTISER: &str = "Brown Boots Games";
pub const DEMO_PARTNER: &str = "Reward Hub";
pub const DEMO_PARTNER_EMAIL: &str = "partners@rewardhub.test";
pub const DEMO_OFFER: &str = "Pet the Dogs iOS";
const DEMO_ACTOR: &str = "demo";

pub async fn prepare(server: &Server) -> anyhow::Result<()> {
    let engine = &server.engine;
    if engine.tenant(DEMO_TENANT).await.map_err(describe)?.is_none() {
        let created = engine
            .create_tenant(gokart_engine::tenants::NewTenant {
                slug: DEMO_TENANT.into(),
                kind: gokart_domain::tenant::TenantKind::AffNetwork,
                name: "Brown Boots".into(),
                admin_email: DEMO_EMAIL.into(),
                admin_password: DEMO_PASSWORD.into(),
            })
            .await
            .map_err(describe)?;
        println!("Management API token (shown once): {}", created.management_api_token);
    }
    let tenant = engine.tenant(DEMO_TENANT).await.map_err(describe)?;
    let tenant = tenant.ok_or_else(|| anyhow::anyhow!("demo tenant missing"))?;
    let postback = engine.postback_credentials(&tenant).await.map_err(describe)?;
    println!("Dashboard:        {}/", engine.urls.app_origin(DEMO_TENANT));
    println!("Login:            {DEMO_EMAIL} / {DEMO_PASSWORD}");
    println!("Domain:           {}", postback.domain);
    println!("Security Segment: {}", postback.security_segment);
    println!("Signature:        {}", postback.signature);
    println!("Postback URL:     {}", postback.url);
    prepare_catalog(engine, &tenant).await.map_err(describe)
}

/// The advertiser, the partner and the shared offer; each only when it is not there yet.
async fn prepare_catalog(
    engine: &Engine,
    tenant: &TenantRecord,
) -> Result<(), gokart_engine::EngineError> {
    let advertiser =
        match find_item(engine, tenant, DirectoryKind::Advertisers, DEMO_ADVERTISER).await? {
            Some(advertiser) => advertiser,
            None => {
                let body = json!({ "name": DEMO_ADVERTISER, "website": "https://brownboots.test" });
                engine.create_item(tenant, DirectoryKind::Advertisers, &body).await?.item
            }
        };
    let partner = match find_item(engine, tenant, DirectoryKind::Partners, DEMO_PARTNER).await? {
        Some(partner) => {
            println!("Partner:          {DEMO_PARTNER} (token and portal login were shown when it was created)");
            partner
        }
        None => {
            let body = json!({ "name": DEMO_PARTNER, "email": DEMO_PARTNER_EMAIL });
            let created = engine.create_item(tenant, DirectoryKind::Partners, &body).await?;
            if let Some(credentials) = &created.partner_credentials {
                println!("Partner:          {DEMO_PARTNER}");
                println!("Partner API token (shown once): {}", credentials.api_token);
                println!(
                    "Partner portal (shown once): {} / {} at {}",
                    credentials.portal_email, credentials.portal_password, credentials.portal_url
                );
            }
            created.item
        }
    };
    let offer = match find_offer(engine, tenant, DEMO_OFFER).await? {
        Some(offer) => offer,
        None => {
            let offer = engine.create_offer(tenant, pet_the_dogs(advertiser.id)).await?;
            engine.share_offer(tenant, offer.id, partner.id, DEMO_ACTOR).await?;
            offer
        }
    };
    println!("Offer:            {DEMO_OFFER} ({})", offer.id);
    println!("Tracking link:    {}", engine.urls.tracking_link(&tenant.slug, offer.id));
    Ok(())
}

async fn find_item(
    engine: &Engine,
    tenant: &TenantRecord,
    kind: DirectoryKind,
    name: &str,
) -> Result<Option<DirectoryItem>, gokart_engine::EngineError> {
    let items = engine.list_items(tenant, kind, PageRequest::ALL).await?;
    Ok(items.items.into_iter().find(|item| item.name == name))
}

async fn find_offer(
    engine: &Engine,
    tenant: &TenantRecord,
    name: &str,
) -> Result<Option<Offer>, gokart_engine::EngineError> {
    let filter = OfferFilter { search: Some(name.into()), ..OfferFilter::default() };
    let offers = engine.list_offers(tenant, &filter, PageRequest::ALL).await?;
    Ok(offers.items.into_iter().find(|offer| offer.spec.name == name))
}

/// The Adjust guide's offer: Install, then Reach Level 200, then Reach Level 400.
pub fn pet_the_dogs(advertiser_id: Uuid) -> OfferSpec {
    // JSON text, so the amounts are read exactly as written.
    let text = format!(
        r#"{{
        "name": "{DEMO_OFFER}",
        "advertiserId": "{advertiser_id}",
        "advertiserCampaignName": "Game_iOS_GoKart",
        "offerType": "MultiEvent",
        "trackingSystem": "Adjust",
        "trackingSystemLink": "https://app.adjust.com/abc123?campaign=Game_iOS_GoKart",
        "headline": "Pet the dogs, earn coins",
        "shortDescription": "Install Pet the Dogs and reach level 400.",
        "categories": ["Games", "Casual"],
        "platform": "IOS",
        "targeting": {{"genders": [], "ageFrom": 18, "ageTo": null, "countries": ["US", "ZA", "AU"]}},
        "budget": {{"total": 5000, "daily": null}},
        "epc": 1,
        "events": [
            {{"eventId": "Install", "name": "Install", "sequenceNumber": 1, "revenue": 1.50, "reward": 150}},
            {{"eventId": "s2s_level 200", "name": "Reach Level 200", "sequenceNumber": 2, "revenue": 2, "reward": 200}},
            {{"eventId": "s2s_level 400", "name": "Reach Level 400", "sequenceNumber": 3, "revenue": 3, "reward": 300}}
        ]
    }}"#
    );
    serde_json::from_str(&text).expect("the demo offer is valid JSON")
}
