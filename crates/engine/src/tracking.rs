//! Clicks on partner tracking links (PRODUCT.md §6): checks, the durable click record, and the
//! MMP link the user is sent on to.

use gokart_domain::{
    availability::{check_availability, Unavailable},
    macros::{append_query_param, expand_known, template_macros, LINK_MACROS},
    offer::{Offer, OfferType},
    targeting::{check_click, ClickTargeting, TargetingMismatch},
    Money,
};
use gokart_storage::{ClickRecord, CountedScope, OfferRecord, TenantRecord, Tx};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    conversions::{day_start, storable},
    offer_cache::ClickOffer,
    Engine, EngineError,
};

/// Most `pub_*` parameters kept per click, and the longest value kept.
const MAX_PUB_PARAMS: usize = 64;
const MAX_PUB_VALUE: usize = 1024;

/// A click as the tracking link received it.
#[derive(Debug, Clone, Default)]
pub struct ClickRequest<'a> {
    /// The query string as received, without its `?`. Its `pub_*` parameters are decoded from
    /// it (the first non-empty one of each name wins); the others are not copied at all.
    pub query: &'a str,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A recorded click and where to send the user.
#[derive(Debug, Clone)]
pub struct ClickRedirect {
    pub click_id: Uuid,
    pub location: String,
}

/// Why a click is refused; `Display` is the page the user sees.
#[derive(Debug, thiserror::Error)]
pub enum ClickRefused {
    #[error("This offer does not exist.")]
    UnknownOffer,
    #[error("{0}")]
    Unavailable(Unavailable),
    #[error("This link is incomplete: it needs pub_member_id or pub_click_id.")]
    MissingMember,
    #[error("{0}")]
    Targeting(TargetingMismatch),
    #[error("The click could not be recorded; please try again.")]
    Storage(EngineError),
}

impl ClickRefused {
    /// The HTTP status of the refusal page.
    pub fn http_status(&self) -> u16 {
        match self {
            ClickRefused::UnknownOffer => 404,
            ClickRefused::Unavailable(Unavailable::Expired) => 410,
            ClickRefused::Unavailable(_) | ClickRefused::Targeting(_) => 403,
            ClickRefused::MissingMember => 400,
            ClickRefused::Storage(_) => 503,
        }
    }
}

impl From<gokart_storage::StorageError> for ClickRefused {
    fn from(error: gokart_storage::StorageError) -> Self {
        ClickRefused::Storage(error.into())
    }
}

impl Engine {
    /// Checks a click and, when the offer takes it, records it durably and answers the MMP link
    /// with its macros filled. With `record` false (HEAD) the checks run but nothing is stored.
    pub async fn track_click(
        &self,
        tenant: &TenantRecord,
        offer_id: Uuid,
        request: &ClickRequest<'_>,
        record: bool,
    ) -> Result<ClickRedirect, ClickRefused> {
        let now = self.now();
        let pub_params = pub_params(request.query);
        let offer = self.click_offer(tenant, offer_id, now).await?;
        check_availability(&offer.record.offer, now.date_naive())
            .map_err(ClickRefused::Unavailable)?;
        if offer.out_of_budget {
            return Err(ClickRefused::Unavailable(Unavailable::OutOfBudget));
        }
        let offer = &offer.record.offer;
        let text = |name: &str| pub_params.get(name).and_then(Value::as_str).map(str::to_owned);
        let pub_click_id = text("pub_click_id");
        let member = text("pub_member_id").or_else(|| pub_click_id.clone());
        let member = member.ok_or(ClickRefused::MissingMember)?;
        let targeting = ClickTargeting {
            gender: pub_params.get("pub_gender").and_then(Value::as_str),
            age: pub_params.get("pub_age").and_then(Value::as_str),
            country: pub_params.get("pub_geo_country").and_then(Value::as_str),
        };
        check_click(&offer.spec.targeting, &targeting).map_err(ClickRefused::Targeting)?;
        let click = ClickRecord {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            offer_id,
            partner_id: offer.partner_id,
            pub_member_id: member,
            pub_click_id,
            pub_params: pub_params.into(),
            ip: request.ip.clone(),
            user_agent: request.user_agent.as_deref().map(|ua| storable(bounded(ua)).into_owned()),
            created_at: now,
        };
        let location = tracking_link(offer, &click, &tenant.currency);
        let click_id = click.id;
        if record {
            self.write_click(click).await.map_err(ClickRefused::Storage)?;
        }
        Ok(ClickRedirect { click_id, location })
    }

    /// The offer and its budget state, from memory when fresh, else from a read transaction (a
    /// click never waits for the writer to check).
    async fn click_offer(
        &self,
        tenant: &TenantRecord,
        offer_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<ClickOffer, ClickRefused> {
        let day = now.date_naive();
        if let Some(offer) = self.click_offers.get(tenant.id, offer_id, day) {
            return Ok(offer);
        }
        let generation = self.click_offers.generation();
        let mut tx = self.store.read().await?;
        let record = tx.offer(tenant.id, offer_id).await?.ok_or(ClickRefused::UnknownOffer)?;
        let out_of_budget = out_of_budget(tx.as_mut(), tenant, &record, now).await?;
        drop(tx);
        let offer = ClickOffer::new(record, out_of_budget, day);
        self.click_offers.put(tenant.id, offer.clone(), generation);
        Ok(offer)
    }
}

/// An offer stops taking clicks once its total or today's budget is used up.
async fn out_of_budget(
    tx: &mut dyn Tx,
    tenant: &TenantRecord,
    offer: &OfferRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, ClickRefused> {
    let budget = &offer.offer.spec.budget;
    if budget.total.is_some_and(|total| offer.spent >= total) {
        return Ok(true);
    }
    if let Some(daily) = budget.daily {
        let scope =
            CountedScope { offer_id: offer.offer.id, event_id: None, since: Some(day_start(now)) };
        return Ok(tx.counted_revenue(tenant.id, scope).await? >= daily);
    }
    Ok(false)
}

/// The first non-empty value of every `pub_*` parameter, bounded.
fn pub_params(query: &str) -> Map<String, Value> {
    let mut params = Map::new();
    for (key, value) in gokart_domain::params::form_pairs(query.as_bytes()) {
        let (key, value) = (storable(&key), storable(&value));
        let (key, value) = (&*key, value.trim());
        if !key.starts_with("pub_") || value.is_empty() || params.contains_key(key) {
            continue;
        }
        if params.len() >= MAX_PUB_PARAMS {
            break;
        }
        params.insert(bounded(key).to_owned(), Value::String(bounded(value).to_owned()));
    }
    params
}

fn bounded(text: &str) -> &str {
    if text.len() <= MAX_PUB_VALUE {
        return text;
    }
    let mut end = MAX_PUB_VALUE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The offer's tracking system link with the click's macros filled, and the click id appended
/// under the tracking system's parameter when the link has no `{gk_click_id}`.
pub fn tracking_link(offer: &Offer, click: &ClickRecord, currency: &str) -> String {
    let template = &offer.spec.tracking_system_link;
    let (cost_type, cost_amount) = cost_of(offer);
    let expanded = expand_known(template, LINK_MACROS, |name| match name {
        "gk_click_id" => Some(click.id.to_string()),
        "gk_offer_id" => Some(offer.id.to_string()),
        "gk_offer_name" => Some(offer.spec.name.clone()),
        "gk_partner_id" => click.partner_id.map(|id| id.to_string()),
        "pub_member_id" => Some(click.pub_member_id.clone()),
        "cost_type" => Some(cost_type.to_owned()),
        "cost_amount" => Some(cost_amount.to_string()),
        "cost_currency" => Some(currency.to_owned()),
        other => click.pub_param(other).map(str::to_owned),
    });
    if template_macros(template).contains(&"gk_click_id") {
        return expanded;
    }
    // Offer validation requires the macro for systems without a parameter of their own; an
    // older offer without it still gets the click id under gokart's own name.
    let parameter = offer.spec.tracking_system.click_id_parameter().unwrap_or("gk_click_id");
    append_query_param(&expanded, parameter, &click.id.to_string())
}

/// `cpi` when the first event is the install (a SingleEvent offer counts as one), else `cpa`;
/// the amount is the first event's revenue.
fn cost_of(offer: &Offer) -> (&'static str, Money) {
    let spec = &offer.spec;
    if spec.offer_type == OfferType::SingleEvent {
        return ("cpi", spec.revenue.unwrap_or(Money::ZERO));
    }
    let first = spec
        .events
        .iter()
        .find(|event| event.sequence_number == Some(1))
        .or_else(|| spec.events.first());
    match first {
        Some(event) => (
            if event.event_id == "Install" { "cpi" } else { "cpa" },
            event.revenue.unwrap_or(Money::ZERO),
        ),
        None => ("cpa", Money::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pub_params_keep_the_first_non_empty_value_of_each_pub_parameter() {
        let params = pub_params(
            "pub_sub_1=&pub_sub_1=%20wall%20&pub_sub_1=later&gk_x=1&pub_geo_country=US&\
             pub_sub_2=a%00b&pub_=x&other=y&pub_sub_3",
        );
        let kept: Vec<(&str, &str)> =
            params.iter().map(|(key, value)| (key.as_str(), value.as_str().unwrap())).collect();
        assert_eq!(
            kept,
            [("pub_", "x"), ("pub_geo_country", "US"), ("pub_sub_1", "wall"), ("pub_sub_2", "ab")]
        );
    }

    #[test]
    fn pub_params_are_bounded() {
        let long = "é".repeat(MAX_PUB_VALUE);
        let query: Vec<String> =
            (0..MAX_PUB_PARAMS + 10).map(|n| format!("pub_sub_{n}={long}")).collect();
        let params = pub_params(&query.join("&"));
        assert_eq!(params.len(), MAX_PUB_PARAMS);
        for value in params.values() {
            let value = value.as_str().unwrap();
            assert!(value.len() <= MAX_PUB_VALUE && long.starts_with(value));
        }
    }
}
