//! The partner portal: the offers shared with the signed-in partner, each with its tracking link
//! and a "Customize URL" form that builds the link with the partner's own values.

use axum::{
    extract::{Path, State},
    routing::get,
    Router,
};
use gokart_domain::macros::{append_query, append_query_param};
use gokart_storage::PageRequest;
use minijinja::context;
use uuid::Uuid;

use super::{
    offers::history_rows,
    page::{render, PageError, PageResult},
    session::{FormData, PartnerUser, Posted, SignedIn},
    wizard,
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal", get(offers))
        .route("/portal/offers/{id}", get(offer).post(customize))
}

/// The parameters the Customize URL form offers, in the tracking link's order.
const CUSTOM_PARAMS: [(&str, &str); 5] = [
    ("pub_click_id", "pub_click_id (your click id)"),
    ("pub_member_id", "pub_member_id (your user id)"),
    ("pub_sub_1", "pub_sub_1"),
    ("pub_sub_2", "pub_sub_2"),
    ("pub_sub_3", "pub_sub_3"),
];

async fn offers(
    State(state): State<AppState>,
    PartnerUser(signed, partner): PartnerUser,
) -> PageResult {
    let page = state.engine.partner_offers(&signed.tenant, partner, PageRequest::ALL).await?;
    let rows: Vec<_> = page
        .items
        .iter()
        .map(|offer| {
            context! {
                id => offer.id.to_string(),
                name => offer.spec.name,
                status => offer.status.as_str(),
                headline => offer.spec.headline,
                tracking_link => state.engine.urls.tracking_link(&signed.tenant.slug, offer.id),
            }
        })
        .collect();
    Ok(render("portal_offers.html", Some(&signed.chrome("portal")), context! { offers => rows }))
}

async fn offer(
    State(state): State<AppState>,
    PartnerUser(signed, partner): PartnerUser,
    Path(id): Path<String>,
) -> PageResult {
    offer_page(&state, &signed, partner, &id, &FormData::default()).await
}

async fn customize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    let partner = posted.signed.partner_id()?;
    offer_page(&state, &posted.signed, partner, &id, &posted.form).await
}

async fn offer_page(
    state: &AppState,
    signed: &SignedIn,
    partner: Uuid,
    id: &str,
    form: &FormData,
) -> PageResult {
    let id = Uuid::parse_str(id).map_err(|_| PageError::NotFound)?;
    let tenant = &signed.tenant;
    let offer = state.engine.partner_offer(tenant, partner, id).await?;
    // Built from the spec, not from the API's JSON: amounts are exact text here.
    let money = |m: Option<gokart_domain::Money>| m.map(|m| m.to_string());
    let spec = &offer.spec;
    let events: Vec<_> = spec
        .events
        .iter()
        .map(|e| {
            context! {
                event_id => e.event_id, name => e.name, sequence => e.sequence_number,
                payout => money(e.revenue), reward => money(e.reward), pending_time => e.pending_time,
            }
        })
        .collect();
    let view = context! {
        id => offer.id.to_string(),
        name => spec.name,
        status => offer.status.as_str(),
        headline => spec.headline,
        description => spec.short_description,
        platform => wizard::enum_text(&spec.platform),
        epc => spec.epc.to_string(),
        creatives => spec.creatives.iter().map(|c| c.url.clone()).collect::<Vec<_>>(),
        payout => money(spec.revenue),
        reward => money(spec.reward),
        events => events,
    };
    let history = state.engine.partner_offer_history(tenant, partner, id, PageRequest::ALL).await?;
    let link = state.engine.urls.tracking_link(&tenant.slug, offer.id);
    let customized = (!form.fields.is_empty()).then(|| customized_link(&link, form));
    let params: Vec<_> = CUSTOM_PARAMS
        .iter()
        .map(|(name, label)| context! { name => name, label => label, value => form.get(name) })
        .collect();
    let countries: Vec<String> =
        offer.spec.targeting.countries.iter().map(|c| wizard::country_name(c)).collect();
    Ok(render(
        "portal_offer.html",
        Some(&signed.chrome("portal")),
        context! {
            offer => view,
            countries => countries,
            tracking_link => link,
            customized => customized,
            params => params,
            history => history_rows(&history.items),
        },
    ))
}

/// The tracking link with the given values. A value written as the partner's own macro
/// (`{click_id}`, `[uid]`) stays literal so its platform can fill it; others are URL-encoded.
pub fn customized_link(link: &str, form: &FormData) -> String {
    CUSTOM_PARAMS.iter().fold(link.to_owned(), |url, (name, _)| {
        let value = form.get(name);
        if value.is_empty() {
            return url;
        }
        let is_macro = (value.starts_with('{') && value.ends_with('}'))
            || (value.starts_with('[') && value.ends_with(']'));
        if is_macro && !value.contains(['&', '#', ' ', '=']) {
            append_query(&url, &format!("{name}={value}"))
        } else {
            append_query_param(&url, name, &value)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customized_links_keep_partner_macros() {
        let form = FormData {
            fields: vec![
                ("pub_click_id".into(), "{click_id}".into()),
                ("pub_member_id".into(), "user 42&x".into()),
            ],
            files: Vec::new(),
        };
        let link = customized_link("http://api.t.localhost/api/v1/offer-link/redirect/abc", &form);
        assert_eq!(
            link,
            "http://api.t.localhost/api/v1/offer-link/redirect/abc?pub_click_id={click_id}&pub_member_id=user%2042%26x"
        );
    }
}
