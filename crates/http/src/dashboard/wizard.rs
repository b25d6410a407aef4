//! The Create Offer wizard's state: every field as typed, carried from step to step in hidden
//! fields, turned into an [`OfferSpec`] and checked with the domain's own offer rules so that
//! each step shows the problems of its own fields, next to them, with the input kept.

use std::{collections::BTreeMap, str::FromStr};

use chrono::NaiveDate;
use gokart_domain::{
    offer::{ConversionType, Creative, OfferEvent, OfferSpec, OfferType, Platform, TrackingSystem},
    validate::validate_offer,
    FieldError, Money,
};
use uuid::Uuid;

use super::session::FormData;

/// The seeds' steps, in order.
pub const STEPS: [&str; 6] = [
    "Offer Type",
    "Offer Details",
    "Description & Creative",
    "Targeting & Budget",
    "Event Mapping",
    "Review",
];
pub const LAST_STEP: usize = STEPS.len() - 1;
/// Enough rows for any real offer; bounds what one form may make the server do.
pub const MAX_EVENTS: usize = 50;

/// Field names → typed values, as posted; errors by the same names.
pub type Draft = BTreeMap<String, String>;
pub type Errors = BTreeMap<String, String>;

/// The draft's keys that belong to `step` (the rest travels in hidden fields).
pub fn step_of_key(key: &str) -> usize {
    match key {
        "offer_type" | "tracking_system" => 0,
        "advertiser_id" | "campaign_name" | "name" | "link" => 1,
        "headline" | "description" | "categories" | "creatives" | "creative" => 2,
        "budget" | "launch_date" | "expiry_date" | "genders" | "age_from" | "age_to"
        | "platform" | "countries" | "epc" | "conversion_type" => 3,
        key if CAPS.contains(&key) => 3,
        "revenue" | "reward" | "pending_time" | "event_count" | "events" => 4,
        key if key.starts_with("ev_") => 4,
        _ => 0,
    }
}

/// The offer-level conversion caps (SingleEvent offers), on the Targeting & Budget step.
pub const CAPS: [&str; 4] = ["daily_cap", "weekly_cap", "monthly_cap", "all_time_cap"];

/// Whether the draft pays a share of the MMP's amount: then the Revenue and Reward fields of the
/// Event Mapping step hold percentages (`revenuePercent`, `rewardPercent`).
pub fn is_revshare(draft: &Draft) -> bool {
    draft.get("conversion_type").is_some_and(|t| t == "RevShare")
}

/// A fresh draft: the seeds' choices preselected, one Install row ready.
pub fn new_draft() -> Draft {
    let mut draft = Draft::new();
    for (key, value) in [
        ("offer_type", "MultiEvent"),
        ("tracking_system", "Adjust"),
        ("conversion_type", "FlatRate"),
        ("platform", "All"),
        ("epc", "1"),
        ("pending_time", "0"),
        ("event_count", "1"),
        ("ev_id_0", "Install"),
        ("ev_name_0", "Install"),
        ("ev_kind_0", "Sequence"),
        ("ev_seq_0", "1"),
        ("ev_pending_0", "0"),
    ] {
        draft.insert(key.into(), value.into());
    }
    draft
}

/// The draft of an existing offer, for editing through the same steps.
pub fn draft_of(spec: &OfferSpec) -> Draft {
    let mut draft = Draft::new();
    let mut set = |key: &str, value: String| {
        draft.insert(key.to_owned(), value);
    };
    let money = |value: Option<Money>| value.map(|m| m.to_string()).unwrap_or_default();
    let count = |value: Option<u32>| value.map(|n| n.to_string()).unwrap_or_default();
    // RevShare offers show their percentages in the Revenue and Reward fields.
    let revshare = spec.conversion_type == ConversionType::RevShare;
    let pay =
        |flat: Option<Money>, percent: Option<Money>| money(if revshare { percent } else { flat });
    set("offer_type", enum_text(&spec.offer_type));
    set("conversion_type", enum_text(&spec.conversion_type));
    for (key, cap) in
        CAPS.iter().zip([spec.daily_cap, spec.weekly_cap, spec.monthly_cap, spec.all_time_cap])
    {
        set(key, count(cap));
    }
    set("tracking_system", spec.tracking_system.as_str().into());
    set("advertiser_id", spec.advertiser_id.map(|id| id.to_string()).unwrap_or_default());
    set("campaign_name", spec.advertiser_campaign_name.clone().unwrap_or_default());
    set("name", spec.name.clone());
    set("link", spec.tracking_system_link.clone());
    set("headline", spec.headline.clone().unwrap_or_default());
    set("description", spec.short_description.clone().unwrap_or_default());
    set("categories", spec.categories.join(", "));
    set("creatives", spec.creatives.iter().map(|c| c.url.as_str()).collect::<Vec<_>>().join("\n"));
    set("budget", money(spec.budget.total));
    set("launch_date", spec.launch_date.map(|d| d.to_string()).unwrap_or_default());
    set("expiry_date", spec.expiry_date.map(|d| d.to_string()).unwrap_or_default());
    set("genders", spec.targeting.genders.join(","));
    set("age_from", spec.targeting.age_from.map(|a| a.to_string()).unwrap_or_default());
    set("age_to", spec.targeting.age_to.map(|a| a.to_string()).unwrap_or_default());
    set("platform", enum_text(&spec.platform));
    set(
        "countries",
        spec.targeting.countries.iter().map(|c| country_name(c)).collect::<Vec<_>>().join(", "),
    );
    set("epc", spec.epc.to_string());
    set("revenue", pay(spec.revenue, spec.revenue_percent));
    set("reward", pay(spec.reward, spec.reward_percent));
    set("pending_time", spec.pending_time.to_string());
    set("event_count", spec.events.len().to_string());
    for (index, event) in spec.events.iter().enumerate() {
        set(&format!("ev_id_{index}"), event.event_id.clone());
        set(&format!("ev_name_{index}"), event.name.clone());
        let kind = if event.sequence_number.is_some() { "Sequence" } else { "Independent" };
        set(&format!("ev_kind_{index}"), kind.into());
        set(
            &format!("ev_seq_{index}"),
            event.sequence_number.map(|n| n.to_string()).unwrap_or_default(),
        );
        set(&format!("ev_pending_{index}"), event.pending_time.to_string());
        set(&format!("ev_revenue_{index}"), pay(event.revenue, event.revenue_percent));
        set(&format!("ev_reward_{index}"), pay(event.reward, event.reward_percent));
    }
    draft
}

/// Reads the posted draft: every field but the form's own controls. The targeting step's gender
/// checkboxes arrive as repeated `gender` fields and become one `genders` value.
pub fn draft_from_form(form: &FormData, step: usize) -> Draft {
    let mut draft = Draft::new();
    for (key, value) in &form.fields {
        if matches!(key.as_str(), "_csrf" | "step" | "go" | "gender") {
            continue;
        }
        draft.entry(key.clone()).or_insert_with(|| value.trim().to_owned());
    }
    if step == 3 {
        let genders = form.all("gender");
        let all = genders.iter().any(|g| g == "*");
        draft.insert("genders".into(), if all { String::new() } else { genders.join(",") });
    }
    draft
}

pub fn event_count(draft: &Draft) -> usize {
    draft.get("event_count").and_then(|n| n.parse().ok()).unwrap_or(0).min(MAX_EVENTS)
}

/// Adds an empty event row, numbered after the last sequence.
pub fn add_event(draft: &mut Draft) {
    let count = event_count(draft);
    if count >= MAX_EVENTS {
        return;
    }
    let next_sequence = (0..count)
        .filter_map(|i| draft.get(&format!("ev_seq_{i}")).and_then(|s| s.parse::<u32>().ok()))
        .max()
        .unwrap_or(0)
        + 1;
    draft.insert(format!("ev_kind_{count}"), "Sequence".into());
    draft.insert(format!("ev_seq_{count}"), next_sequence.to_string());
    draft.insert(format!("ev_pending_{count}"), "0".into());
    draft.insert("event_count".into(), (count + 1).to_string());
}

/// Removes row `index`, moving the later rows up.
pub fn remove_event(draft: &mut Draft, index: usize) {
    let count = event_count(draft);
    if index >= count {
        return;
    }
    for i in index..count {
        for field in EVENT_FIELDS {
            let next = draft.remove(&format!("ev_{field}_{}", i + 1));
            let key = format!("ev_{field}_{i}");
            match next {
                Some(value) if i + 1 < count => draft.insert(key, value),
                _ => draft.remove(&key),
            };
        }
    }
    draft.insert("event_count".into(), (count - 1).to_string());
}

const EVENT_FIELDS: [&str; 7] = ["id", "name", "kind", "seq", "pending", "revenue", "reward"];

/// The draft as an offer spec on top of `base` (the edited offer's, so that fields the wizard
/// does not show are kept), with the values that could not be read as errors by field name.
pub fn build_spec(draft: &Draft, base: Option<&OfferSpec>) -> (OfferSpec, Errors) {
    let mut errors = Errors::new();
    let text = |key: &str| draft.get(key).map(|v| v.trim().to_owned()).unwrap_or_default();
    let optional = |key: &str| Some(text(key)).filter(|v| !v.is_empty());
    let mut spec = base.cloned().unwrap_or_else(empty_spec);

    spec.offer_type = if text("offer_type") == "SingleEvent" {
        OfferType::SingleEvent
    } else {
        OfferType::MultiEvent
    };
    spec.conversion_type = match text("conversion_type").as_str() {
        "" | "FlatRate" => ConversionType::FlatRate,
        "RevShare" => ConversionType::RevShare,
        _ => {
            errors.insert("conversion_type".into(), "choose Flat rate or RevShare".into());
            ConversionType::FlatRate
        }
    };
    let revshare = spec.conversion_type == ConversionType::RevShare;
    match TrackingSystem::parse(&text("tracking_system")) {
        Some(system) => spec.tracking_system = system,
        None => {
            errors.insert("tracking_system".into(), "choose the Integration System".into());
        }
    }
    spec.advertiser_id = match optional("advertiser_id") {
        None => None,
        Some(id) => Uuid::parse_str(&id).ok().or_else(|| {
            errors.insert("advertiser_id".into(), "choose an advertiser from the list".into());
            None
        }),
    };
    spec.advertiser_campaign_name = optional("campaign_name");
    spec.name = text("name");
    spec.tracking_system_link = text("link");
    spec.headline = optional("headline");
    spec.short_description = optional("description");
    spec.categories = split_list(&text("categories"));
    spec.creatives = text("creatives")
        .lines()
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .enumerate()
        .map(|(i, url)| Creative { order: i as u32 + 1, url: url.to_owned() })
        .collect();
    spec.budget.total = money_field(draft, "budget", &mut errors);
    spec.launch_date = date_field(draft, "launch_date", &mut errors);
    spec.expiry_date = date_field(draft, "expiry_date", &mut errors);
    spec.targeting.genders = split_list(&text("genders").replace(',', ", "));
    spec.targeting.age_from = number_field(draft, "age_from", &mut errors);
    spec.targeting.age_to = number_field(draft, "age_to", &mut errors);
    spec.platform = parse_enum(&text("platform")).unwrap_or_default();
    spec.targeting.countries = countries_field(&text("countries"), &mut errors);
    match optional("epc").map(|epc| Money::parse(&epc)) {
        None => {
            errors.insert("epc".into(), "enter the EPC, e.g. 1".into());
        }
        Some(Ok(epc)) => spec.epc = epc,
        Some(Err(_)) => {
            errors.insert("epc".into(), "enter an amount such as 1 or 0.25".into());
        }
    }
    let [daily, weekly, monthly, all_time] = CAPS.map(|key| number_field(draft, key, &mut errors));
    if spec.offer_type == OfferType::SingleEvent {
        let revenue = money_field(draft, "revenue", &mut errors);
        let reward = money_field(draft, "reward", &mut errors);
        [spec.revenue, spec.reward, spec.revenue_percent, spec.reward_percent] =
            payout(revshare, revenue, reward);
        spec.pending_time = number_field(draft, "pending_time", &mut errors).unwrap_or(0);
        (spec.daily_cap, spec.weekly_cap, spec.monthly_cap, spec.all_time_cap) =
            (daily, weekly, monthly, all_time);
        spec.events.clear();
    } else {
        // A MultiEvent offer's terms are on its events (the domain refuses offer-level ones).
        [spec.revenue, spec.reward, spec.revenue_percent, spec.reward_percent] = [None; 4];
        (spec.daily_cap, spec.weekly_cap, spec.monthly_cap, spec.all_time_cap) =
            (None, None, None, None);
        spec.pending_time = 0;
        let old_events = std::mem::take(&mut spec.events);
        spec.events = (0..event_count(draft))
            .map(|i| event_of(draft, i, old_events.get(i), revshare, &mut errors))
            .collect();
    }
    (spec, errors)
}

/// `[revenue, reward, revenuePercent, rewardPercent]` from the two typed values: amounts for a
/// Flat rate offer, percentages for a RevShare one.
fn payout(revshare: bool, revenue: Option<Money>, reward: Option<Money>) -> [Option<Money>; 4] {
    if revshare {
        [None, None, revenue, reward]
    } else {
        [revenue, reward, None, None]
    }
}

fn event_of(
    draft: &Draft,
    i: usize,
    base: Option<&OfferEvent>,
    revshare: bool,
    errors: &mut Errors,
) -> OfferEvent {
    let key = |field: &str| format!("ev_{field}_{i}");
    let text =
        |field: &str| draft.get(&key(field)).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut event = base.cloned().unwrap_or_else(|| OfferEvent {
        event_id: String::new(),
        name: String::new(),
        sequence_number: None,
        display_order: None,
        pending_time: 0,
        revenue: None,
        reward: None,
        revenue_percent: None,
        reward_percent: None,
        daily_cap: None,
        weekly_cap: None,
        monthly_cap: None,
        all_time_cap: None,
        allow_repetitions: false,
    });
    event.event_id = text("id");
    event.name = text("name");
    event.display_order = Some(i as u32 + 1);
    event.sequence_number = if text("kind") == "Independent" {
        None
    } else {
        match number_field(draft, &key("seq"), errors) {
            Some(n) => Some(n),
            None => {
                errors
                    .entry(key("seq"))
                    .or_insert_with(|| "enter the sequence number, or choose Independent".into());
                None
            }
        }
    };
    event.pending_time = number_field(draft, &key("pending"), errors).unwrap_or(0);
    let revenue = money_field(draft, &key("revenue"), errors);
    let reward = money_field(draft, &key("reward"), errors);
    [event.revenue, event.reward, event.revenue_percent, event.reward_percent] =
        payout(revshare, revenue, reward);
    event
}

/// The domain's offer rules on the draft; every problem as `field name → message`.
pub fn check(draft: &Draft, base: Option<&OfferSpec>) -> (OfferSpec, Errors) {
    let (mut spec, mut errors) = build_spec(draft, base);
    if let Err(problems) = validate_offer(&mut spec) {
        for problem in problems {
            let key = key_of_field(&problem.field);
            errors.entry(key).or_insert_with(|| sentence(&problem));
        }
    }
    (spec, errors)
}

/// Only the errors of `step`'s own fields.
pub fn errors_of_step(errors: &Errors, step: usize) -> Errors {
    errors
        .iter()
        .filter(|(key, _)| step_of_key(key) == step)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Maps the API's field paths (`events[1].sequenceNumber`) to the wizard's field names.
pub fn key_of_field(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("events[") {
        if let Some((index, name)) = rest.split_once("].") {
            let short = match name {
                "eventId" => "id",
                "name" => "name",
                "sequenceNumber" => "seq",
                "pendingTime" => "pending",
                "revenue" | "revenuePercent" => "revenue",
                "reward" | "rewardPercent" => "reward",
                _ => "id",
            };
            return format!("ev_{short}_{index}");
        }
    }
    let key = match field.split(['[', '.']).next().unwrap_or(field) {
        "name" => "name",
        "trackingSystemLink" => "link",
        "trackingSystem" => "tracking_system",
        "advertiserId" => "advertiser_id",
        "advertiserCampaignName" => "campaign_name",
        "headline" => "headline",
        "shortDescription" => "description",
        "categories" => "categories",
        "creatives" => "creatives",
        "budget" => "budget",
        "launchDate" => "launch_date",
        "expiryDate" => "expiry_date",
        "epc" => "epc",
        "platform" => "platform",
        "revenue" | "revenuePercent" => "revenue",
        "reward" | "rewardPercent" => "reward",
        "pendingTime" => "pending_time",
        "conversionType" => "conversion_type",
        "dailyCap" => "daily_cap",
        "weeklyCap" => "weekly_cap",
        "monthlyCap" => "monthly_cap",
        "allTimeCap" => "all_time_cap",
        "events" => "events",
        "targeting" => match field {
            f if f.contains("ageFrom") => "age_from",
            f if f.contains("ageTo") => "age_to",
            f if f.contains("genders") => "genders",
            _ => "countries",
        },
        _ => "offer_type",
    };
    key.to_owned()
}

/// "is required" → "Offer name is required": the message reads on its own next to the field.
fn sentence(problem: &FieldError) -> String {
    let mut message = problem.message.clone();
    if let Some(first) = message.get(..1) {
        message = first.to_uppercase() + &message[1..];
    }
    if problem.message.starts_with("is ") || problem.message.starts_with("must ") {
        format!("This {}", problem.message)
    } else {
        message
    }
}

fn empty_spec() -> OfferSpec {
    serde_json::from_value(serde_json::json!({
        "name": "",
        "offerType": "MultiEvent",
        "trackingSystem": "Adjust",
        "trackingSystemLink": "",
    }))
    .expect("the minimal offer spec parses")
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn money_field(draft: &Draft, key: &str, errors: &mut Errors) -> Option<Money> {
    let text = draft.get(key).map(|v| v.trim().trim_start_matches('$')).unwrap_or_default();
    if text.is_empty() {
        return None;
    }
    match Money::parse(text) {
        Ok(value) => Some(value),
        Err(_) => {
            errors.insert(
                key.into(),
                "enter an amount such as 5000 or 0.25 (at most 4 decimals)".into(),
            );
            None
        }
    }
}

fn number_field(draft: &Draft, key: &str, errors: &mut Errors) -> Option<u32> {
    let text = draft.get(key).map(|v| v.trim().trim_end_matches('+')).unwrap_or_default();
    if text.is_empty() {
        return None;
    }
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            errors.insert(key.into(), "enter a whole number".into());
            None
        }
    }
}

fn date_field(draft: &Draft, key: &str, errors: &mut Errors) -> Option<NaiveDate> {
    let text = draft.get(key).map(|v| v.trim()).unwrap_or_default();
    if text.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => Some(date),
        Err(_) => {
            errors.insert(key.into(), "enter a date as YYYY-MM-DD".into());
            None
        }
    }
}

/// "United States, South Africa, Australia" (names, alpha-2, alpha-3 or numeric) → alpha-2.
fn countries_field(text: &str, errors: &mut Errors) -> Vec<String> {
    let mut codes = Vec::new();
    let mut unknown = Vec::new();
    for entry in split_list(text) {
        match country_code(&entry) {
            Some(code) => {
                if !codes.iter().any(|c| c == code) {
                    codes.push(code.to_owned());
                }
            }
            None => unknown.push(entry),
        }
    }
    if !unknown.is_empty() {
        errors.insert("countries".into(), format!("unknown country: {}", unknown.join(", ")));
    }
    codes
}

pub fn country_code(entry: &str) -> Option<&'static str> {
    let squashed: String =
        entry.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
    celes::Country::from_str(&squashed)
        .or_else(|_| celes::Country::from_alias(&squashed))
        .ok()
        .map(|country| country.alpha2)
}

/// The name users know a country by, for alpha-2 `code`.
pub fn country_name(code: &str) -> String {
    celes::Country::from_alpha2(code)
        .map(|c| c.long_name.to_owned())
        .unwrap_or_else(|_| code.to_owned())
}

/// A serde enum's JSON name (`IOS`, `MultiEvent`).
pub fn enum_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn parse_enum<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

pub fn platforms() -> Vec<(String, &'static str)> {
    [
        (Platform::All, "All"),
        (Platform::Ios, "iOS"),
        (Platform::Android, "Android"),
        (Platform::MacOS, "macOS"),
        (Platform::Browser, "Browser"),
    ]
    .into_iter()
    .map(|(platform, label)| (enum_text(&platform), label))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_values_make_a_valid_multi_event_offer() {
        let mut draft = new_draft();
        draft.insert("name".into(), "Pet the Dogs iOS".into());
        draft.insert("link".into(), "https://app.adjust.com/abc123".into());
        draft.insert("countries".into(), "United States, South Africa, Australia".into());
        draft.insert("age_from".into(), "18+".into());
        draft.insert("budget".into(), "5000".into());
        add_event(&mut draft);
        draft.insert("ev_id_1".into(), "s2s_level 200".into());
        draft.insert("ev_name_1".into(), "Reach Level 200".into());
        let (spec, errors) = check(&draft, None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(spec.targeting.countries, ["US", "ZA", "AU"]);
        assert_eq!(spec.targeting.age_from, Some(18));
        assert_eq!(spec.events[1].sequence_number, Some(2));
        assert_eq!(draft_of(&spec)["countries"].split(", ").count(), 3);
    }

    #[test]
    fn problems_land_on_their_step() {
        let mut draft = new_draft();
        draft.insert("ev_id_0".into(), "install".into());
        draft.insert("countries".into(), "Atlantis".into());
        let (_, errors) = check(&draft, None);
        assert!(errors_of_step(&errors, 1).contains_key("name"));
        assert!(errors_of_step(&errors, 1).contains_key("link"));
        assert!(errors_of_step(&errors, 3)["countries"].contains("Atlantis"));
        assert!(errors_of_step(&errors, 4).contains_key("ev_id_0"));
        assert!(errors_of_step(&errors, 0).is_empty(), "{errors:?}");
    }

    #[test]
    fn revshare_events_keep_their_percentages_and_caps_through_an_edit() {
        let mut draft = new_draft();
        draft.insert("name".into(), "Shop".into());
        draft.insert("link".into(), "https://app.adjust.com/abc123".into());
        draft.insert("conversion_type".into(), "RevShare".into());
        draft.insert("daily_cap".into(), "5".into());
        draft.insert("ev_revenue_0".into(), "40".into());
        let (mut spec, errors) = check(&draft, None);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(spec.events[0].revenue_percent, Some(Money::whole(40)));
        assert_eq!((spec.events[0].revenue, spec.daily_cap), (None, None), "no offer-level caps");
        spec.events[0].daily_cap = Some(3);
        let edited = draft_of(&spec);
        assert_eq!(
            (edited["conversion_type"].as_str(), edited["ev_revenue_0"].as_str()),
            ("RevShare", "40")
        );
        let (again, _) = check(&edited, Some(&spec));
        assert_eq!(again.events[0].daily_cap, Some(3), "an event's cap set through the API stays");
    }

    #[test]
    fn removing_a_row_moves_the_later_ones_up() {
        let mut draft = new_draft();
        add_event(&mut draft);
        add_event(&mut draft);
        draft.insert("ev_id_2".into(), "level_10".into());
        remove_event(&mut draft, 1);
        assert_eq!(event_count(&draft), 2);
        assert_eq!(draft["ev_id_1"], "level_10");
        assert!(!draft.contains_key("ev_id_2"));
    }
}
