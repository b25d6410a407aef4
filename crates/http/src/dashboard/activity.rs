//! What happened after the clicks: Conversions (with status overrides), the Postback Log (every
//! postback received, as received) and Deliveries (outgoing partner postbacks and callbacks, with
//! their attempts and a Resend button).

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect},
    routing::{get, post},
    Router,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use gokart_engine::{conversions::ConversionQuery, intake::log_entry_json, EngineError};
use gokart_storage::{
    ConversionStatus, DeliveryFilter, DeliveryKind, DeliveryStatus, OfferFilter, Page, PageRequest,
};
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    page::{json_value, render_status, PageError, PageResult},
    session::{Posted, SignedIn, Staff},
    wizard::Errors,
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/conversions", get(conversions))
        .route("/conversions/{id}/override", post(override_status))
        .route("/postback-log", get(postback_log))
        .route("/deliveries", get(deliveries))
        .route("/deliveries/{id}/resend", post(resend))
}

/// Rows per page of every list here.
const PAGE_SIZE: u32 = 25;

/// The default range: the 30 days up to today (the engine clock's UTC date).
const DEFAULT_DAYS: i64 = 30;

/// The filters of the Conversions and Postback Log pages, as typed (kept when invalid).
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    offer: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    search: String,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    notice: Option<String>,
}

impl ListQuery {
    fn page(&self) -> PageRequest {
        PageRequest { index: self.page.unwrap_or(0), size: PAGE_SIZE }
    }
}

/// The date range of `query`, defaulting to the last 30 days: `from` at 00:00 UTC, `to` through
/// the end of its day. Unreadable dates are reported next to their field.
fn date_range(
    query: &mut ListQuery,
    now: DateTime<Utc>,
    errors: &mut Errors,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let today = now.date_naive();
    if query.to.trim().is_empty() {
        query.to = today.to_string();
    }
    if query.from.trim().is_empty() {
        query.from = (today - Duration::days(DEFAULT_DAYS)).to_string();
    }
    let mut parse =
        |name: &str, text: &str| match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
            Ok(date) => Some(date.and_time(chrono::NaiveTime::MIN).and_utc()),
            Err(_) => {
                errors.insert(name.into(), "Enter a date as YYYY-MM-DD.".into());
                None
            }
        };
    let from = parse("from", &query.from);
    let to = parse("to", &query.to).map(|day| day + Duration::days(1) - Duration::microseconds(1));
    (from, to)
}

/// Previous/next links that keep the filters.
fn pager<T>(page: &Page<T>, query: &ListQuery, path: &str) -> minijinja::Value {
    let link = |index: u32| {
        let mut url = filters(query);
        url.append_pair("page", &index.to_string());
        format!("{path}?{}", url.finish())
    };
    let index = page.request.index;
    let shown_to = u64::from(index + 1) * u64::from(page.request.size);
    context! {
        total => page.total,
        number => index + 1,
        previous => (index > 0).then(|| link(index - 1)),
        next => (shown_to < page.total).then(|| link(index + 1)),
    }
}

fn options(values: &[&str], any: &str) -> Vec<minijinja::Value> {
    std::iter::once(context! { value => "", label => any })
        .chain(values.iter().map(|v| context! { value => v, label => v }))
        .collect()
}

// ---- Conversions ----

async fn conversions(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Query(query): Query<ListQuery>,
) -> PageResult {
    conversions_page(&state, &signed, query, Errors::new()).await
}

async fn conversions_page(
    state: &AppState,
    signed: &SignedIn,
    mut query: ListQuery,
    mut errors: Errors,
) -> PageResult {
    let tenant = &signed.tenant;
    let (from, to) = date_range(&mut query, state.engine.now(), &mut errors);
    let offers = offer_choice(state, signed).await?;
    let offer_id = match query.offer.trim() {
        "" => None,
        text => match offers.resolve(state, signed, text).await? {
            Ok(id) => Some(id),
            Err(message) => {
                errors.insert("offer".into(), message);
                None
            }
        },
    };
    let status = match query.status.trim() {
        "" => None,
        text => {
            let parsed = ConversionStatus::parse(text);
            if parsed.is_none() {
                errors.insert("status".into(), "Choose a status from the list.".into());
            }
            parsed
        }
    };
    let search = Some(query.search.trim().to_owned()).filter(|s| !s.is_empty());
    let filter_failed = ["from", "to", "offer", "status"].iter().any(|f| errors.contains_key(*f));
    let mut page = None;
    if !filter_failed {
        let count_limit = Some(COUNT_CAP);
        let wanted = ConversionQuery { from, to, offer_id, status, search, count_limit };
        match state.engine.list_conversions(tenant, wanted, query.page()).await {
            Ok(found) => page = Some(found),
            Err(EngineError::Invalid(problems)) => {
                for problem in problems {
                    let field = if problem.field.ends_with("_from") { "from" } else { "to" };
                    errors.insert(field.into(), capitalised(&problem.message));
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    let offer_options: Option<Vec<_>> = match &offers {
        OfferChoice::List(items) => Some(
            std::iter::once(context! { value => "", label => "All offers" })
                .chain(
                    items
                        .iter()
                        .map(|(id, name)| context! { value => id.to_string(), label => name }),
                )
                .collect(),
        ),
        OfferChoice::Typed => None,
    };
    let rows: Vec<_> = page
        .as_ref()
        .map(|page| page.items.iter().map(conversion_view).collect())
        .unwrap_or_default();
    let pages = page.as_ref().map(|page| pager(page, &query, "/conversions"));

    let status_code = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render_status(
        status_code,
        "conversions.html",
        Some(&signed.chrome("conversions")),
        context! {
            query => context! {
                from => query.from, to => query.to, offer => query.offer,
                status => query.status, search => query.search,
            },
            back => back_query(&query),
            offers => offer_options,
            count => page.as_ref().map(conversion_count),
            statuses => options(&["Pending", "Success", "Rejected"], "All statuses"),
            conversions => rows,
            pages => pages,
            errors => errors,
            notice => notice_text(query.notice.as_deref()),
        },
    ))
}

/// At most this many offers are listed in the Offer filter; with more, the filter is a text field
/// (name or ID), since a select of thousands of offers is neither quick to render nor to use.
const OFFER_SELECT_MAX: u32 = 100;

/// How far past the shown page conversions are counted: a larger total means "more than".
const COUNT_CAP: u64 = 10_000;

/// How the Conversions page offers its Offer filter.
enum OfferChoice {
    /// Few offers: a select of (id, name).
    List(Vec<(Uuid, String)>),
    /// Many offers: typed as a name (or part of one) or an ID.
    Typed,
}

async fn offer_choice(state: &AppState, signed: &SignedIn) -> Result<OfferChoice, PageError> {
    let first = PageRequest { index: 0, size: OFFER_SELECT_MAX };
    let offers = state.engine.list_offers(&signed.tenant, &Default::default(), first).await?;
    Ok(if offers.total <= u64::from(OFFER_SELECT_MAX) {
        OfferChoice::List(offers.items.into_iter().map(|o| (o.id, o.spec.name)).collect())
    } else {
        OfferChoice::Typed
    })
}

impl OfferChoice {
    /// The offer `text` names, or the message to show next to the field.
    async fn resolve(
        &self,
        state: &AppState,
        signed: &SignedIn,
        text: &str,
    ) -> Result<Result<Uuid, String>, PageError> {
        if let Ok(id) = Uuid::parse_str(text) {
            return Ok(Ok(id));
        }
        if let OfferChoice::List(_) = self {
            return Ok(Err("Choose an offer from the list.".into()));
        }
        let filter = OfferFilter { search: Some(text.to_owned()), ..Default::default() };
        let found = state
            .engine
            .list_offers(&signed.tenant, &filter, PageRequest { index: 0, size: 20 })
            .await?;
        let exact: Vec<_> = found
            .items
            .iter()
            .filter(|o| o.spec.name.eq_ignore_ascii_case(text))
            .cloned()
            .collect();
        Ok(match (found.items.as_slice(), exact.as_slice()) {
            ([only], _) | (_, [only]) => Ok(only.id),
            ([], _) => Err(format!("No offer name contains “{text}”.")),
            _ => Err(format!(
                "{} offers match “{text}”: type more of the name, or paste the offer ID.",
                found.total
            )),
        })
    }
}

/// "1 conversion", "1,234 conversions", "More than 10,000 conversions" (a capped count).
fn conversion_count<T>(page: &Page<T>) -> String {
    let past = u64::try_from(page.request.offset()).unwrap_or(0) + COUNT_CAP;
    match page.total {
        1 => "1 conversion".into(),
        total if total > past => format!("More than {} conversions", thousands(past)),
        total => format!("{} conversions", thousands(total)),
    }
}

/// 1234567 → "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|group| std::str::from_utf8(group).unwrap_or_default())
        .collect();
    groups.join(",")
}

fn conversion_view(detail: &gokart_engine::conversions::ConversionDetail) -> minijinja::Value {
    let json = detail.to_json(false);
    let c = &detail.conversion;
    let events: Vec<_> = detail
        .events
        .iter()
        .map(|e| {
            context! {
                id => e.id.to_string(),
                event_id => e.event_id,
                name => e.event_name,
                sequence => e.sequence_number,
                status => e.status.as_str(),
                reason => e.rejection_reason,
                revenue => e.revenue.to_string(),
                reward => e.reward.to_string(),
                completed_at => gokart_domain::time::iso(e.completed_at),
            }
        })
        .collect();
    context! {
        id => c.id.to_string(),
        click_id => c.click_id.to_string(),
        offer_name => detail.offer_name,
        member => c.pub_member_id,
        status => c.status.as_str(),
        reason => c.rejection_reason,
        revenue => json["revenue"].to_string(),
        reward => json["reward"].to_string(),
        created_at => gokart_domain::time::iso(c.created_at),
        events => events,
    }
}

/// The list's filters that are set, as query pairs (the pager and the override forms add to them).
fn filters(query: &ListQuery) -> form_urlencoded::Serializer<'static, String> {
    let mut url = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("from", &query.from),
        ("to", &query.to),
        ("offer", &query.offer),
        ("status", &query.status),
        ("kind", &query.kind),
        ("search", &query.search),
    ] {
        if !value.is_empty() {
            url.append_pair(key, value);
        }
    }
    url
}

/// The list's filters as a query string, carried by each override form to come back to them.
fn back_query(query: &ListQuery) -> String {
    let mut url = filters(query);
    if let Some(page) = query.page {
        url.append_pair("page", &page.to_string());
    }
    url.finish()
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "overridden" => Some("Status changed. Deliveries for the change were queued."),
        "resent" => Some("The delivery is queued again and will be sent shortly."),
        _ => None,
    }
}

/// The override form of one conversion (`event` empty) or one of its events.
async fn override_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    posted.signed.staff()?;
    let form = &posted.form;
    let conversion_id = Uuid::parse_str(&id).map_err(|_| PageError::NotFound)?;
    let event = form.get("event");
    let event_id = match event.as_str() {
        "" => None,
        text => Some(Uuid::parse_str(text).map_err(|_| PageError::NotFound)?),
    };
    // Only ever back to this list: the filters are re-read, not followed as a URL.
    let back = form.get("back");
    let query: ListQuery = serde_urlencoded::from_str(&back).unwrap_or_default();
    let key = format!("{conversion_id}/{event}");
    let mut errors = Errors::new();
    let status = match ConversionStatus::parse(&form.get("status")) {
        Some(status @ (ConversionStatus::Success | ConversionStatus::Rejected)) => Some(status),
        _ => {
            errors.insert(format!("{key}/status"), "Choose Success or Rejected.".into());
            None
        }
    };
    if let Some(status) = status {
        let reason = Some(form.get("reason"));
        match state
            .engine
            .override_status(&posted.signed.tenant, conversion_id, event_id, status, reason)
            .await
        {
            Ok(_) => {
                let separator = if back.is_empty() { "" } else { "&" };
                let target =
                    format!("/conversions?{}{separator}notice=overridden", back_query(&query));
                return Ok(Redirect::to(&target).into_response());
            }
            Err(EngineError::Invalid(problems)) => {
                for problem in problems {
                    errors
                        .insert(format!("{key}/{}", problem.field), capitalised(&problem.message));
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
    conversions_page(&state, &posted.signed, query, errors).await
}

fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

// ---- Postback Log ----

async fn postback_log(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Query(mut query): Query<ListQuery>,
) -> PageResult {
    let mut errors = Errors::new();
    let (from, to) = date_range(&mut query, state.engine.now(), &mut errors);
    let (rows, pages) = if errors.is_empty() {
        let page = state.engine.postback_log(&signed.tenant, from, to, query.page()).await?;
        let rows: Vec<_> = page
            .items
            .iter()
            .map(|entry| {
                let json = log_entry_json(entry);
                let params = serde_json::to_string_pretty(&json["params"]).unwrap_or_default();
                context! { entry => json_value(&json), params => params }
            })
            .collect();
        (rows, Some(pager(&page, &query, "/postback-log")))
    } else {
        (Vec::new(), None)
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render_status(
        status,
        "postback_log.html",
        Some(&signed.chrome("postback-log")),
        context! {
            query => context! { from => query.from, to => query.to },
            entries => rows,
            pages => pages,
            errors => errors,
        },
    ))
}

// ---- Deliveries ----

async fn deliveries(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let mut errors = Errors::new();
    let status = match query.status.trim() {
        "" => None,
        text => DeliveryStatus::parse(text).or_else(|| {
            errors.insert("status".into(), "Choose a status from the list.".into());
            None
        }),
    };
    let kind = match query.kind.trim() {
        "" => None,
        text => DeliveryKind::parse(text).or_else(|| {
            errors.insert("kind".into(), "Choose a kind from the list.".into());
            None
        }),
    };
    let (rows, pages) = if errors.is_empty() {
        let filter = DeliveryFilter { status, kind, conversion_id: None };
        let page = state.engine.list_deliveries(&signed.tenant, &filter, query.page()).await?;
        let pages = pager(&page, &query, "/deliveries");
        (page.items.iter().map(json_value).collect::<Vec<_>>(), Some(pages))
    } else {
        (Vec::new(), None)
    };
    let code = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render_status(
        code,
        "deliveries.html",
        Some(&signed.chrome("deliveries")),
        context! {
            query => context! { status => query.status, kind => query.kind },
            statuses => options(&["Pending", "Retrying", "Delivered", "Failed"], "All statuses"),
            kinds => options(&["PartnerPostback", "Callback"], "All kinds"),
            deliveries => rows,
            pages => pages,
            errors => errors,
            notice => notice_text(query.notice.as_deref()),
        },
    ))
}

async fn resend(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    posted.signed.staff()?;
    let id = Uuid::parse_str(&id).map_err(|_| PageError::NotFound)?;
    state.engine.resend_delivery(&posted.signed.tenant, id).await?;
    Ok(Redirect::to("/deliveries?notice=resent").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(index: u32, total: u64) -> Page<()> {
        Page { items: Vec::new(), request: PageRequest { index, size: PAGE_SIZE }, total }
    }

    #[test]
    fn counts_read_as_words_and_a_capped_count_as_more_than() {
        assert_eq!(conversion_count(&page(0, 0)), "0 conversions");
        assert_eq!(conversion_count(&page(0, 1)), "1 conversion");
        assert_eq!(conversion_count(&page(0, 1_234)), "1,234 conversions");
        assert_eq!(conversion_count(&page(0, 10_000)), "10,000 conversions");
        // The storage stops counting 10,000 rows past the page: one more means "more than".
        assert_eq!(conversion_count(&page(0, 10_001)), "More than 10,000 conversions");
        assert_eq!(conversion_count(&page(4, 10_100)), "10,100 conversions");
        assert_eq!(conversion_count(&page(4, 10_101)), "More than 10,100 conversions");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
