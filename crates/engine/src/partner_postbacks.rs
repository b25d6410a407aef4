//! Partner postbacks (PRODUCT.md §9): a partner's global and event-level GET templates, how they
//! are saved (checked macros, http(s) only, offers shared with that partner) and what a status
//! change makes of them.

use gokart_domain::{
    macros::{check_template, expand_known, template_macros, PARTNER_POSTBACK_MACROS},
    offer::OfferType,
    FieldError,
};
use gokart_storage::{
    ConversionStatus, DeliveryKind, EventPostback, PartnerPostbackSettings, TenantRecord, Tx,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{outbox::QueuedRequest, outbox::StatusChange, Engine, EngineError, EngineResult};

/// The body of `PUT /api/v1/partner/postbacks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerPostbacksInput {
    #[serde(default)]
    pub global_url: Option<String>,
    #[serde(default)]
    pub event_postbacks: Vec<EventPostbackInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPostbackInput {
    pub offer_id: Uuid,
    #[serde(default)]
    pub event_id: Option<String>,
    pub url: String,
}

/// What `GET /api/v1/partner/postbacks` answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerPostbacksView {
    pub global_url: Option<String>,
    pub event_postbacks: Vec<EventPostback>,
    /// The macros a template may use.
    pub macros: Vec<String>,
}

impl PartnerPostbacksView {
    fn of(settings: Option<PartnerPostbackSettings>) -> Self {
        let (global_url, event_postbacks) =
            settings.map(|s| (s.global_url, s.event_postbacks)).unwrap_or_default();
        PartnerPostbacksView {
            global_url,
            event_postbacks,
            macros: PARTNER_POSTBACK_MACROS.iter().map(|m| format!("{{{m}}}")).collect(),
        }
    }
}

impl Engine {
    pub async fn partner_postbacks(
        &self,
        tenant: &TenantRecord,
        partner_id: Uuid,
    ) -> EngineResult<PartnerPostbacksView> {
        let mut tx = self.store.read().await?;
        Ok(PartnerPostbacksView::of(tx.partner_postbacks(tenant.id, partner_id).await?))
    }

    /// Replaces the partner's postback templates after checking every one of them.
    pub async fn save_partner_postbacks(
        &self,
        tenant: &TenantRecord,
        partner_id: Uuid,
        input: PartnerPostbacksInput,
    ) -> EngineResult<PartnerPostbacksView> {
        let mut tx = self.store.write().await?;
        let mut problems = Vec::new();
        let global_url =
            input.global_url.map(|url| url.trim().to_owned()).filter(|u| !u.is_empty());
        if let Some(url) = &global_url {
            problems.extend(template_problems("globalUrl", url));
        }
        let mut event_postbacks: Vec<EventPostback> = Vec::new();
        for (index, entry) in input.event_postbacks.into_iter().enumerate() {
            let field = format!("eventPostbacks[{index}]");
            match event_postback(&mut *tx, tenant.id, partner_id, &field, entry).await? {
                Ok(postback) => {
                    let duplicate = event_postbacks.iter().any(|p| {
                        p.offer_id == postback.offer_id && p.event_id == postback.event_id
                    });
                    if duplicate {
                        problems.push(FieldError::new(
                            format!("{field}.eventId"),
                            "this offer and event already have a postback above",
                        ));
                    }
                    event_postbacks.push(postback);
                }
                Err(more) => problems.extend(more),
            }
        }
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        let settings = PartnerPostbackSettings {
            tenant_id: tenant.id,
            partner_id,
            global_url,
            event_postbacks,
            updated_at: self.now(),
        };
        tx.save_partner_postbacks(&settings).await?;
        tx.commit().await?;
        Ok(PartnerPostbacksView::of(Some(settings)))
    }
}

/// One event-level postback checked against the offers shared with the partner.
async fn event_postback(
    tx: &mut dyn Tx,
    tenant_id: Uuid,
    partner_id: Uuid,
    field: &str,
    entry: EventPostbackInput,
) -> EngineResult<Result<EventPostback, Vec<FieldError>>> {
    let url = entry.url.trim().to_owned();
    let mut problems = template_problems(&format!("{field}.url"), &url);
    let event_id = entry.event_id.map(|e| e.trim().to_owned()).unwrap_or_default();
    let offer = tx.offer(tenant_id, entry.offer_id).await?.map(|record| record.offer);
    match offer.filter(|offer| offer.partner_id == Some(partner_id)) {
        None => problems.push(FieldError::new(
            format!("{field}.offerId"),
            "no offer with this id is shared with you",
        )),
        Some(offer) => match offer.spec.offer_type {
            OfferType::SingleEvent if !event_id.is_empty() => problems.push(FieldError::new(
                format!("{field}.eventId"),
                "a SingleEvent offer has no events: leave eventId empty",
            )),
            OfferType::MultiEvent if offer.event(&event_id).is_none() => {
                problems.push(FieldError::new(
                    format!("{field}.eventId"),
                    format!("the offer has no event {event_id:?}"),
                ))
            }
            _ => {}
        },
    }
    Ok(if problems.is_empty() {
        Ok(EventPostback { offer_id: entry.offer_id, event_id, url })
    } else {
        Err(problems)
    })
}

/// Unknown macros, and anything but an absolute http(s) URL once the macros are filled.
fn template_problems(field: &str, template: &str) -> Vec<FieldError> {
    if let Err(unknown) = check_template(template, PARTNER_POSTBACK_MACROS) {
        let names: Vec<String> = unknown.iter().map(|name| format!("{{{name}}}")).collect();
        return vec![FieldError::new(
            field,
            format!("unknown macro {}; known: {}", names.join(", "), known_macros()),
        )];
    }
    let sample = expand_known(template, PARTNER_POSTBACK_MACROS, |_| Some("0".into()));
    match url::Url::parse(&sample) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Vec::new(),
        _ => vec![FieldError::new(field, "an absolute http:// or https:// URL is required")],
    }
}

fn known_macros() -> String {
    PARTNER_POSTBACK_MACROS.iter().map(|m| format!("{{{m}}}")).collect::<Vec<_>>().join(" ")
}

/// The partner postbacks a status change fires: every template when the event becomes
/// `Success`; only those that show `{status}` when a `Success` is reversed to `Rejected`.
pub(crate) async fn requests_for(
    tx: &mut dyn Tx,
    change: &StatusChange<'_>,
) -> EngineResult<Vec<QueuedRequest>> {
    let Some(partner_id) = change.click.partner_id.or(change.event.partner_id) else {
        return Ok(Vec::new());
    };
    let status = change.event.status;
    let reversal =
        status == ConversionStatus::Rejected && change.previous == Some(ConversionStatus::Success);
    if status != ConversionStatus::Success && !reversal {
        return Ok(Vec::new());
    }
    let Some(settings) = tx.partner_postbacks(change.tenant.id, partner_id).await? else {
        return Ok(Vec::new());
    };
    let event_level = settings.event_postbacks.iter().filter(|postback| {
        postback.offer_id == change.offer.id && postback.event_id == change.event.event_id
    });
    let templates = settings.global_url.iter().chain(event_level.map(|postback| &postback.url));
    Ok(templates
        .filter(|template| !reversal || template_macros(template).contains(&"status"))
        .map(|template| QueuedRequest {
            kind: DeliveryKind::PartnerPostback,
            method: "GET",
            url: expand_known(template, PARTNER_POSTBACK_MACROS, |name| macro_value(change, name)),
            headers: Vec::new(),
            body: None,
        })
        .collect())
}

/// The value of one partner postback macro for this conversion event.
fn macro_value(change: &StatusChange<'_>, name: &str) -> Option<String> {
    let (click, event) = (change.click, change.event);
    Some(match name {
        "pub_click_id" => click.pub_click_id.clone()?,
        "pub_member_id" => click.pub_member_id.clone(),
        "gk_click_id" => click.id.to_string(),
        "gk_offer_id" => change.offer.id.to_string(),
        "gk_offer_name" => change.offer.spec.name.clone(),
        "cnv_event_id" => event.event_id.clone(),
        "cnv_event_name" => event.event_name.clone(),
        "payout" => event.revenue.to_string(),
        "reward" => event.reward.to_string(),
        "cnv_amount" => event.amount?.to_string(),
        "currency" => change.tenant.currency.clone(),
        "conversion_id" => change.conversion.id.to_string(),
        "transaction_id" => event.transaction_id.to_string(),
        "status" => event.status.as_str().to_owned(),
        "timestamp" => event.completed_at.timestamp().to_string(),
        sub if sub.starts_with("pub_sub_") => click.pub_param(sub)?.to_owned(),
        _ => return None,
    })
}
