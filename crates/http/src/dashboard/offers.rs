//! Offer Management: the list (status, partner, pause/resume, clone, the share icon, tracking
//! link, change history) and the Create Offer wizard, also used to edit.

use std::collections::HashMap;

use axum::{
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect},
    routing::{get, post},
    Router,
};
use gokart_domain::{
    offer::{ConversionType, Offer, OfferSpec, OfferStatus, TrackingSystem},
    Money,
};
use gokart_storage::{DirectoryKind, OfferFilter, PageRequest, TenantRecord};
use minijinja::context;
use serde::Serialize;
use uuid::Uuid;

use super::{
    creatives,
    page::{render, render_status, PageError, PageResult},
    session::{Posted, SignedIn, Staff},
    wizard::{self, Draft, Errors, LAST_STEP, STEPS},
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/offers", get(list))
        .route("/offers/new", get(new_offer).post(wizard_step))
        .route("/offers/{id}/edit", get(edit_offer).post(wizard_step_edit))
        .route("/offers/{id}/pause", post(pause))
        .route("/offers/{id}/resume", post(resume))
        .route("/offers/{id}/clone", post(clone))
        .route("/offers/{id}/share", get(share_page).post(share))
        .route("/offers/{id}/history", get(history))
}

fn offer_id(text: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(text).map_err(|_| PageError::NotFound)
}

/// The names of the tenant's back-office items of `kind`, by id.
pub async fn names(
    state: &AppState,
    tenant: &TenantRecord,
    kind: DirectoryKind,
) -> Result<Vec<(Uuid, String)>, PageError> {
    let page = state.engine.list_items(tenant, kind, PageRequest::ALL).await?;
    Ok(page.items.into_iter().map(|item| (item.id, item.name)).collect())
}

#[derive(Serialize)]
struct OfferRow {
    id: String,
    name: String,
    status: &'static str,
    offer_type: String,
    tracking_system: &'static str,
    partner: Option<String>,
    shared_at: Option<String>,
    tracking_link: String,
    events: usize,
}

#[derive(serde::Deserialize)]
struct NoticeQuery {
    #[serde(default)]
    cloned: Option<String>,
}

/// Offers per page of Offer Management.
const OFFERS_PER_PAGE: u32 = 50;

/// Offer Management's filters, as typed (kept when invalid).
#[derive(Debug, Default, serde::Deserialize)]
struct OfferListQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: Option<u32>,
    /// What was just done (`Done`) to `offer`: the notice is written here from the offer itself,
    /// so a link cannot put words of its own on the page.
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    offer: Option<String>,
}

impl OfferListQuery {
    /// `/offers` with these filters and page `index`.
    fn link(&self, index: u32) -> String {
        let mut url = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [("search", &self.search), ("status", &self.status)] {
            if !value.is_empty() {
                url.append_pair(key, value);
            }
        }
        url.append_pair("page", &index.to_string());
        format!("/offers?{}", url.finish())
    }
}

/// Newest first, a page at a time, filtered by name and status.
async fn list(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Query(query): Query<OfferListQuery>,
) -> PageResult {
    let tenant = &signed.tenant;
    let mut errors = Errors::new();
    let status = match query.status.trim() {
        "" => None,
        text => match OfferStatus::parse(text) {
            Some(status) => Some(status.as_str().to_owned()),
            None => {
                errors.insert("status".into(), "Choose a status from the list.".into());
                None
            }
        },
    };
    let search = Some(query.search.trim().to_owned()).filter(|s| !s.is_empty());
    let filtered = status.is_some() || search.is_some();
    let request = PageRequest { index: query.page.unwrap_or(0), size: OFFERS_PER_PAGE };
    let (rows, pages) = if errors.is_empty() {
        let partners: HashMap<Uuid, String> =
            names(&state, tenant, DirectoryKind::Partners).await?.into_iter().collect();
        let filter = OfferFilter { status, search, ..Default::default() };
        let offers = state.engine.list_offers(tenant, &filter, request).await?;
        let rows: Vec<OfferRow> = offers
            .items
            .iter()
            .map(|offer| OfferRow {
                id: offer.id.to_string(),
                name: offer.spec.name.clone(),
                status: offer.status.as_str(),
                offer_type: wizard::enum_text(&offer.spec.offer_type),
                tracking_system: offer.spec.tracking_system.as_str(),
                partner: offer
                    .partner_id
                    .map(|id| partners.get(&id).cloned().unwrap_or_else(|| id.to_string())),
                shared_at: offer.shared_at.map(gokart_domain::time::iso),
                tracking_link: state.engine.urls.tracking_link(&tenant.slug, offer.id),
                events: offer.spec.events.len(),
            })
            .collect();
        let shown_to = u64::from(request.index + 1) * u64::from(request.size);
        let pages = context! {
            total => offers.total,
            number => request.index + 1,
            previous => (request.index > 0).then(|| query.link(request.index - 1)),
            next => (shown_to < offers.total).then(|| query.link(request.index + 1)),
        };
        (rows, Some(pages))
    } else {
        (Vec::new(), None)
    };
    let code = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::BAD_REQUEST
    };
    let statuses: Vec<minijinja::Value> = [("", "All statuses"), ("Active", "Active")]
        .into_iter()
        .chain([("Pending", "Paused"), ("Expired", "Expired")])
        .map(|(value, label)| context! { value => value, label => label })
        .collect();
    let notice = notice_of(&state, tenant, &query).await;
    Ok(render_status(
        code,
        "offers.html",
        Some(&signed.chrome("offers")),
        context! {
            offers => rows,
            pages => pages,
            filtered => filtered,
            query => context! { search => query.search, status => query.status },
            statuses => statuses,
            errors => errors,
            notice => notice,
        },
    ))
}

/// What an action on an offer did, told on the list it returns to.
#[derive(Clone, Copy)]
enum Done {
    Created,
    Saved,
    Paused,
    Resumed,
    Shared,
}

impl Done {
    const ALL: [Done; 5] = [Done::Created, Done::Saved, Done::Paused, Done::Resumed, Done::Shared];

    fn code(self) -> &'static str {
        match self {
            Done::Created => "created",
            Done::Saved => "saved",
            Done::Paused => "paused",
            Done::Resumed => "resumed",
            Done::Shared => "shared",
        }
    }
}

/// The notice for `?done=<code>&offer=<id>`; nothing for anything else.
async fn notice_of(
    state: &AppState,
    tenant: &gokart_storage::TenantRecord,
    query: &OfferListQuery,
) -> Option<String> {
    let done = Done::ALL.into_iter().find(|done| Some(done.code()) == query.done.as_deref())?;
    let id = Uuid::parse_str(query.offer.as_deref()?).ok()?;
    let offer = state.engine.get_offer(tenant, id).await.ok()?;
    Some(match done {
        Done::Shared => format!(
            "Offer shared. Tracking link: {}",
            state.engine.urls.tracking_link(&tenant.slug, offer.id)
        ),
        other => format!("Offer “{}” {}.", offer.spec.name, other.code()),
    })
}

async fn new_offer(State(state): State<AppState>, Staff(signed): Staff) -> PageResult {
    wizard_page(&state, &signed, None, &wizard::new_draft(), 0, &Errors::new()).await
}

/// Editing walks the same steps; a fresh clone opens here to be customized for a publisher.
async fn edit_offer(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let offer = state.engine.get_offer(&signed.tenant, offer_id(&id)?).await?;
    let notice = query.cloned.is_some().then_some(
        "Offer cloned. Customize it for the publisher (name, payouts, link, …), save it, then \
         share it with the share icon.",
    );
    let draft = wizard::draft_of(&offer.spec);
    render_wizard(&state, &signed, Some(&offer), &draft, 0, &Errors::new(), notice).await
}

async fn wizard_step(State(state): State<AppState>, posted: Posted) -> PageResult {
    posted.signed.staff()?;
    advance(&state, posted, None).await
}

async fn wizard_step_edit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    posted.signed.staff()?;
    let offer = state.engine.get_offer(&posted.signed.tenant, offer_id(&id)?).await?;
    advance(&state, posted, Some(offer)).await
}

/// One press of a wizard button: Proceed / Next / Save move on when the step's own fields are
/// right; Back never checks; Add event and Remove change the rows; Create Offer saves.
async fn advance(state: &AppState, posted: Posted, offer: Option<Offer>) -> PageResult {
    let Posted { signed, form } = posted;
    let step: usize = form.get("step").parse().unwrap_or(0).min(LAST_STEP);
    let go = form.get("go");
    let mut draft = wizard::draft_from_form(&form, step);
    let mut errors = Errors::new();
    if let Some(upload) = form.file("creative") {
        match creatives::store(state, &signed.tenant, upload).await {
            Ok(url) => {
                let mut urls = draft.get("creatives").cloned().unwrap_or_default();
                if !urls.is_empty() {
                    urls.push('\n');
                }
                urls.push_str(&url);
                draft.insert("creatives".into(), urls);
            }
            Err(message) => {
                errors.insert("creative".into(), message);
            }
        }
    }
    let base = offer.as_ref().map(|o| &o.spec);
    let offer = offer.as_ref();
    macro_rules! page {
        ($draft:expr, $step:expr, $errors:expr) => {
            wizard_page(state, &signed, offer, $draft, $step, $errors)
        };
    }
    match go.as_str() {
        "back" => return page!(&draft, step.saturating_sub(1), &Errors::new()).await,
        "add_event" => {
            wizard::add_event(&mut draft);
            return page!(&draft, step, &errors).await;
        }
        remove if remove.starts_with("remove_") => {
            if let Ok(index) = remove["remove_".len()..].parse() {
                wizard::remove_event(&mut draft, index);
            }
            return page!(&draft, step, &errors).await;
        }
        _ => {}
    }
    let (spec, all_errors) = wizard::check(&draft, base);
    if step < LAST_STEP {
        errors.extend(wizard::errors_of_step(&all_errors, step));
        let next = if errors.is_empty() { step + 1 } else { step };
        return page!(&draft, next, &errors).await;
    }
    // The last step saves: any problem sends the user to the first step that has one.
    if let Some(first) =
        (0..LAST_STEP).find(|s| !wizard::errors_of_step(&all_errors, *s).is_empty())
    {
        return page!(&draft, first, &wizard::errors_of_step(&all_errors, first)).await;
    }
    save(state, &signed, offer, spec, &draft).await
}

async fn save(
    state: &AppState,
    signed: &SignedIn,
    offer: Option<&Offer>,
    spec: OfferSpec,
    draft: &Draft,
) -> PageResult {
    let tenant = &signed.tenant;
    let saved = match offer {
        None => state.engine.create_offer(tenant, spec).await,
        Some(offer) => {
            state.engine.update_offer(tenant, offer.id, spec, &signed.active.user.email).await
        }
    };
    match saved {
        Ok(saved) => {
            let done = if offer.is_some() { Done::Saved } else { Done::Created };
            list_with_notice(done, saved.id)
        }
        Err(gokart_engine::EngineError::Invalid(problems)) => {
            let mut errors = Errors::new();
            for problem in &problems {
                errors.insert(wizard::key_of_field(&problem.field), problem.message.clone());
            }
            let first = errors.keys().map(|k| wizard::step_of_key(k)).min().unwrap_or(0);
            wizard_page(state, signed, offer, draft, first, &wizard::errors_of_step(&errors, first))
                .await
        }
        Err(other) => Err(other.into()),
    }
}

fn list_with_notice(done: Done, offer_id: Uuid) -> PageResult {
    Ok(Redirect::to(&format!("/offers?done={}&offer={offer_id}", done.code())).into_response())
}

#[derive(Serialize)]
struct EventRow {
    index: usize,
    id: String,
    name: String,
    kind: String,
    seq: String,
    pending: String,
    revenue: String,
    reward: String,
}

async fn wizard_page(
    state: &AppState,
    signed: &SignedIn,
    offer: Option<&Offer>,
    draft: &Draft,
    step: usize,
    errors: &Errors,
) -> PageResult {
    render_wizard(state, signed, offer, draft, step, errors, None).await
}

async fn render_wizard(
    state: &AppState,
    signed: &SignedIn,
    offer: Option<&Offer>,
    draft: &Draft,
    step: usize,
    errors: &Errors,
    notice: Option<&str>,
) -> PageResult {
    let tenant = &signed.tenant;
    let get = |key: &str| draft.get(key).cloned().unwrap_or_default();
    let hidden: Vec<(&String, &String)> = draft
        .iter()
        .filter(|(key, _)| wizard::step_of_key(key) != step || step == LAST_STEP)
        .collect();
    let events: Vec<EventRow> = (0..wizard::event_count(draft))
        .map(|index| {
            let field = |name: &str| get(&format!("ev_{name}_{index}"));
            EventRow {
                index,
                id: field("id"),
                name: field("name"),
                kind: field("kind"),
                seq: field("seq"),
                pending: field("pending"),
                revenue: field("revenue"),
                reward: field("reward"),
            }
        })
        .collect();
    let advertisers = names(state, tenant, DirectoryKind::Advertisers).await?;
    let categories = names(state, tenant, DirectoryKind::Categories).await?;
    let genders = names(state, tenant, DirectoryKind::Genders).await?;
    let chosen_genders: Vec<String> =
        get("genders").split(',').filter(|g| !g.is_empty()).map(str::to_owned).collect();
    let (spec, _) = wizard::build_spec(draft, offer.map(|o| &o.spec));
    let action = match offer {
        Some(offer) => format!("/offers/{}/edit", offer.id),
        None => "/offers/new".into(),
    };
    Ok(render(
        "offer_wizard.html",
        Some(&signed.chrome("offers")),
        context! {
            action => action,
            editing => offer.is_some(),
            offer_name => offer.map(|o| o.spec.name.clone()),
            step => step,
            steps => STEPS,
            draft => draft,
            hidden => hidden,
            errors => errors,
            events => events,
            single => get("offer_type") == "SingleEvent",
            revshare => wizard::is_revshare(draft),
            conversion_types => [("FlatRate", "Flat rate"), ("RevShare", "RevShare")]
                .map(|(value, label)| context! { value => value, label => label }),
            tracking_systems => TrackingSystem::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            advertisers => options("Choose an advertiser…", &advertisers),
            categories => categories.iter().map(|(_, name)| name.clone()).collect::<Vec<_>>(),
            genders => genders.iter().map(|(_, name)| name.clone()).collect::<Vec<_>>(),
            chosen_genders => chosen_genders,
            platforms => wizard::platforms().into_iter().map(|(value, label)| context! { value => value, label => label }).collect::<Vec<_>>(),
            creatives => spec.creatives.iter().map(|c| c.url.clone()).collect::<Vec<_>>(),
            summary => summary(&spec, &advertisers),
            max_events => wizard::MAX_EVENTS,
            notice => notice,
        },
    ))
}

/// `<select>` options with an empty first choice.
fn options(placeholder: &str, items: &[(Uuid, String)]) -> Vec<minijinja::Value> {
    std::iter::once(context! { value => "", label => placeholder })
        .chain(items.iter().map(|(id, name)| context! { value => id.to_string(), label => name }))
        .collect()
}

/// The Review step: what will be saved, in the seeds' words.
fn summary(spec: &OfferSpec, advertisers: &[(Uuid, String)]) -> Vec<(String, String)> {
    let advertiser = spec
        .advertiser_id
        .and_then(|id| advertisers.iter().find(|(a, _)| *a == id).map(|(_, n)| n.clone()))
        .unwrap_or_else(|| "—".into());
    let or_dash =
        |value: Option<String>| value.filter(|v| !v.is_empty()).unwrap_or_else(|| "—".into());
    let mut rows = vec![
        (
            "Offer type".into(),
            if spec.offer_type == gokart_domain::offer::OfferType::MultiEvent {
                "Multi-Event".into()
            } else {
                "Single Event".into()
            },
        ),
        ("Integration System".into(), spec.tracking_system.as_str().into()),
        ("Advertiser".into(), advertiser),
        ("Campaign name".into(), or_dash(spec.advertiser_campaign_name.clone())),
        ("Offer name".into(), spec.name.clone()),
        ("Offer Link".into(), spec.tracking_system_link.clone()),
        ("Headline".into(), or_dash(spec.headline.clone())),
        ("Categories".into(), or_dash(Some(spec.categories.join(", ")))),
        ("Creatives".into(), spec.creatives.len().to_string()),
        ("Budget".into(), spec.budget.total.map_or("Unlimited".into(), |b| format!("${b}"))),
        ("Launch Date".into(), or_dash(spec.launch_date.map(|d| d.to_string()))),
        (
            "Gender".into(),
            if spec.targeting.genders.is_empty() {
                "All".into()
            } else {
                spec.targeting.genders.join(", ")
            },
        ),
        (
            "Age Range".into(),
            match (spec.targeting.age_from, spec.targeting.age_to) {
                (None, None) => "All".into(),
                (Some(from), None) => format!("{from}+"),
                (from, Some(to)) => format!("{}–{to}", from.unwrap_or(0)),
            },
        ),
        ("Platform".into(), wizard::enum_text(&spec.platform)),
        (
            "Countries".into(),
            if spec.targeting.countries.is_empty() {
                "All".into()
            } else {
                spec.targeting.countries.join(", ")
            },
        ),
        ("EPC".into(), format!("${}", spec.epc)),
    ];
    let revshare = spec.conversion_type == ConversionType::RevShare;
    rows.push((
        "Payout".into(),
        if revshare {
            "RevShare (a percentage of the amount the MMP reports)".into()
        } else {
            "Flat rate".into()
        },
    ));
    // "$2" for a Flat rate revenue, "30%" for a RevShare one; rewards are points or percentages.
    let revenue = |flat: Option<Money>, percent: Option<Money>| match (revshare, flat, percent) {
        (true, _, Some(p)) => format!("{p}%"),
        (false, Some(m), _) => format!("${m}"),
        _ => "—".into(),
    };
    let reward = |flat: Option<Money>, percent: Option<Money>| match (revshare, flat, percent) {
        (true, _, Some(p)) => format!("{p}%"),
        (false, Some(m), _) => m.to_string(),
        _ => "—".into(),
    };
    if spec.offer_type == gokart_domain::offer::OfferType::SingleEvent {
        rows.push(("Revenue".into(), revenue(spec.revenue, spec.revenue_percent)));
        rows.push(("Reward".into(), reward(spec.reward, spec.reward_percent)));
        let caps = [
            ("daily", spec.daily_cap),
            ("weekly", spec.weekly_cap),
            ("monthly", spec.monthly_cap),
            ("all-time", spec.all_time_cap),
        ];
        let set: Vec<String> =
            caps.iter().filter_map(|(name, cap)| cap.map(|n| format!("{n} {name}"))).collect();
        rows.push((
            "Conversion caps".into(),
            if set.is_empty() { "None".into() } else { set.join(" · ") },
        ));
    } else {
        for event in &spec.events {
            let sequence =
                event.sequence_number.map_or("Independent".into(), |n| format!("Sequence {n}"));
            rows.push((
                format!("Event {}", event.event_id),
                format!(
                    "{} · {sequence} · pending {} d · revenue {} · reward {}",
                    event.name,
                    event.pending_time,
                    revenue(event.revenue, event.revenue_percent),
                    reward(event.reward, event.reward_percent),
                ),
            ));
        }
    }
    rows
}

async fn set_paused(state: &AppState, posted: Posted, id: &str, paused: bool) -> PageResult {
    posted.signed.staff()?;
    let offer = state
        .engine
        .set_offer_paused(
            &posted.signed.tenant,
            offer_id(id)?,
            paused,
            &posted.signed.active.user.email,
        )
        .await?;
    let done = if offer.status == OfferStatus::Pending { Done::Paused } else { Done::Resumed };
    list_with_notice(done, offer.id)
}

async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    set_paused(&state, posted, &id, true).await
}

async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    set_paused(&state, posted, &id, false).await
}

/// Clones, then opens the clone in the wizard to customise it for a publisher.
async fn clone(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    posted.signed.staff()?;
    let tenant = &posted.signed.tenant;
    let source = state.engine.get_offer(tenant, offer_id(&id)?).await?;
    let mut spec = source.spec.clone();
    spec.name = format!("{} (copy)", spec.name);
    let clone = state.engine.clone_offer(tenant, source.id, Some(spec)).await?;
    Ok(Redirect::to(&format!("/offers/{}/edit?cloned=1", clone.id)).into_response())
}

async fn share_page(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Path(id): Path<String>,
) -> PageResult {
    share_form(&state, &signed, &id, None).await
}

async fn share_form(
    state: &AppState,
    signed: &SignedIn,
    id: &str,
    error: Option<String>,
) -> PageResult {
    let offer = state.engine.get_offer(&signed.tenant, offer_id(id)?).await?;
    let partners = names(state, &signed.tenant, DirectoryKind::Partners).await?;
    let shared_with = offer.partner_id.map(|p| {
        partners.iter().find(|(id, _)| *id == p).map_or(p.to_string(), |(_, n)| n.clone())
    });
    Ok(render(
        "offer_share.html",
        Some(&signed.chrome("offers")),
        context! {
            offer => context! { id => offer.id.to_string(), name => offer.spec.name },
            shared_with => shared_with,
            tracking_link => state.engine.urls.tracking_link(&signed.tenant.slug, offer.id),
            partners => options("Choose a publisher…", &partners),
            error => error,
        },
    ))
}

async fn share(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    posted.signed.staff()?;
    let signed = &posted.signed;
    let Ok(partner) = Uuid::parse_str(&posted.form.get("partner_id")) else {
        return share_form(&state, signed, &id, Some("Choose a publisher to share with.".into()))
            .await;
    };
    let offer = offer_id(&id)?;
    match state.engine.share_offer(&signed.tenant, offer, partner, &signed.active.user.email).await
    {
        Ok(shared) => list_with_notice(Done::Shared, shared.offer_id),
        Err(gokart_engine::EngineError::Conflict(message)) => {
            share_form(&state, signed, &id, Some(message)).await
        }
        Err(gokart_engine::EngineError::Invalid(problems)) => {
            let message = problems.iter().map(|p| p.message.clone()).collect::<Vec<_>>().join("; ");
            share_form(&state, signed, &id, Some(message)).await
        }
        Err(other) => Err(other.into()),
    }
}

async fn history(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Path(id): Path<String>,
) -> PageResult {
    let offer = state.engine.get_offer(&signed.tenant, offer_id(&id)?).await?;
    let entries = state.engine.offer_history(&signed.tenant, offer.id, PageRequest::ALL).await?;
    Ok(render(
        "offer_history.html",
        Some(&signed.chrome("offers")),
        context! {
            offer => context! { id => offer.id.to_string(), name => offer.spec.name },
            entries => history_rows(&entries.items),
        },
    ))
}

/// History entries with their values as short text.
pub fn history_rows(entries: &[gokart_storage::HistoryEntry]) -> Vec<minijinja::Value> {
    let show = |value: &serde_json::Value| match value {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    entries
        .iter()
        .map(|entry| {
            context! {
                at => gokart_domain::time::iso(entry.at),
                actor => entry.actor,
                field => entry.field,
                old_value => show(&entry.old_value),
                new_value => show(&entry.new_value),
            }
        })
        .collect()
}
