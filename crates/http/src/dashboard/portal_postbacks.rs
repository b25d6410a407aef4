//! Partner portal → Postback Settings: the partner's global postback URL and event-level rows
//! (one offer shared with it, one of that offer's events, a URL), checked by the engine.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect},
    routing::get,
    Router,
};
use gokart_domain::{macros::PARTNER_POSTBACK_MACROS, offer::Offer};
use gokart_engine::{
    partner_postbacks::{EventPostbackInput, PartnerPostbacksInput},
    EngineError,
};
use gokart_storage::PageRequest;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    page::{render_status, PageResult},
    session::{FormData, PartnerUser, Posted, SignedIn},
    wizard::Errors,
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/portal/postbacks", get(page).post(save))
}

/// One event-level row as typed.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct Row {
    offer: String,
    event: String,
    url: String,
}

impl Row {
    fn is_blank(&self) -> bool {
        self.offer.is_empty() && self.event.is_empty() && self.url.is_empty()
    }
}

#[derive(Deserialize)]
struct SavedQuery {
    #[serde(default)]
    saved: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    PartnerUser(signed, partner): PartnerUser,
    Query(query): Query<SavedQuery>,
) -> PageResult {
    let view = state.engine.partner_postbacks(&signed.tenant, partner).await?;
    let rows: Vec<Row> = view
        .event_postbacks
        .iter()
        .map(|p| Row {
            offer: p.offer_id.to_string(),
            event: p.event_id.clone(),
            url: p.url.clone(),
        })
        .collect();
    let notice = query.saved.is_some().then_some("Postback settings saved.");
    let global = view.global_url.unwrap_or_default();
    render_settings(&state, &signed, partner, &global, rows, &Errors::new(), notice).await
}

/// The rows posted as `ep_offer_N`, `ep_event_N`, `ep_url_N` for N below `rows`.
fn posted_rows(form: &FormData) -> Vec<Row> {
    let count: usize = form.get("rows").parse().unwrap_or(0).min(100);
    (0..count)
        .map(|i| Row {
            offer: form.get(&format!("ep_offer_{i}")),
            event: form.get(&format!("ep_event_{i}")),
            url: form.get(&format!("ep_url_{i}")),
        })
        .collect()
}

async fn save(State(state): State<AppState>, posted: Posted) -> PageResult {
    let partner = posted.signed.partner_id()?;
    let signed = &posted.signed;
    let global = posted.form.get("global_url");
    let mut rows = posted_rows(&posted.form);
    let mut errors = Errors::new();
    if !posted.form.get("add").is_empty() {
        rows.push(Row::default());
        return render_settings(&state, signed, partner, &global, rows, &errors, None).await;
    }
    // The engine numbers the rows it was given; `sent[k]` is the form row of its k-th. A row
    // without an offer goes too (as the nil id, which no offer has), so that every problem of
    // the form is reported at once.
    let sent: Vec<usize> = (0..rows.len()).filter(|i| !rows[*i].is_blank()).collect();
    let inputs = sent
        .iter()
        .map(|i| EventPostbackInput {
            offer_id: Uuid::parse_str(&rows[*i].offer).unwrap_or(Uuid::nil()),
            event_id: Some(rows[*i].event.clone()),
            url: rows[*i].url.clone(),
        })
        .collect();
    let input = PartnerPostbacksInput { global_url: Some(global.clone()), event_postbacks: inputs };
    match state.engine.save_partner_postbacks(&signed.tenant, partner, input).await {
        Ok(_) => return Ok(Redirect::to("/portal/postbacks?saved=1").into_response()),
        Err(EngineError::Invalid(problems)) => {
            for problem in problems {
                errors.insert(form_field(&problem.field, &sent), capitalised(&problem.message));
            }
        }
        Err(other) => return Err(other.into()),
    }
    for (index, row) in rows.iter().enumerate() {
        if !row.is_blank() && row.offer.is_empty() {
            errors.insert(format!("ep_offer_{index}"), "Choose one of your offers.".into());
        }
    }
    render_settings(&state, signed, partner, &global, rows, &errors, None).await
}

/// `globalUrl` → `global_url`; `eventPostbacks[k].url` → `ep_url_<form row of k>`.
fn form_field(field: &str, sent: &[usize]) -> String {
    let Some(rest) = field.strip_prefix("eventPostbacks[") else {
        return "global_url".into();
    };
    let (index, name) = rest.split_once("].").unwrap_or((rest, "url"));
    let row = index.parse::<usize>().ok().and_then(|k| sent.get(k).copied()).unwrap_or(0);
    let name = match name {
        "offerId" => "offer",
        "eventId" => "event",
        _ => "url",
    };
    format!("ep_{name}_{row}")
}

fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

async fn render_settings(
    state: &AppState,
    signed: &SignedIn,
    partner: Uuid,
    global: &str,
    mut rows: Vec<Row>,
    errors: &Errors,
    notice: Option<&str>,
) -> PageResult {
    if rows.last().is_none_or(|row| !row.is_blank()) {
        rows.push(Row::default());
    }
    let offers = state.engine.partner_offers(&signed.tenant, partner, PageRequest::ALL).await?;
    let offer_options: Vec<_> =
        std::iter::once(context! { value => "", label => "Choose an offer" })
            .chain(offers.items.iter().map(offer_option))
            .collect();
    let event_ids: Vec<String> = offers
        .items
        .iter()
        .flat_map(|o| o.spec.events.iter().map(|e| e.event_id.clone()))
        .collect();
    let macros: Vec<String> = PARTNER_POSTBACK_MACROS.iter().map(|m| format!("{{{m}}}")).collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render_status(
        status,
        "portal_postbacks.html",
        Some(&signed.chrome("portal-postbacks")),
        context! {
            global_url => global,
            rows => rows,
            offers => offer_options,
            event_ids => event_ids,
            macros => macros,
            errors => errors,
            notice => notice,
        },
    ))
}

fn offer_option(offer: &Offer) -> minijinja::Value {
    let events: Vec<&str> = offer.spec.events.iter().map(|e| e.event_id.as_str()).collect();
    let label = if events.is_empty() {
        offer.spec.name.clone()
    } else {
        format!("{} (events: {})", offer.spec.name, events.join(", "))
    };
    context! { value => offer.id.to_string(), label => label }
}
