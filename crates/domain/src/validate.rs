//! The rules an offer must satisfy before it is saved (PRODUCT.md §4).
//!
//! Every problem is reported, each as one [`FieldError`] naming the camelCase JSON path of the
//! field, so the API can answer one 400 listing them all.

use std::collections::{btree_map, hash_map, BTreeMap, HashMap, HashSet};

use url::Url;

use crate::error::FieldError;
use crate::money::Money;
use crate::offer::{ConversionType, OfferEvent, OfferSpec, OfferType, Targeting, TrackingSystem};
use crate::targeting::country_alpha2;

pub const NAME_MAX_CHARS: usize = 200;
pub const PENDING_TIME_MAX_DAYS: u32 = 365;
/// The id the install event must carry, exactly.
pub const INSTALL_EVENT_ID: &str = "Install";
/// The macro gokart replaces with the click id it mints.
pub const CLICK_ID_MACRO: &str = "{gk_click_id}";

/// Checks `spec` against every rule of PRODUCT.md §4.
///
/// Normalises in place, whether or not the spec turns out valid: trims the name, the link
/// and the events' ids and names, and rewrites target countries as upper-case alpha-2 codes
/// (dropping repeats once all of them are known).
pub fn validate_offer(spec: &mut OfferSpec) -> Result<(), Vec<FieldError>> {
    trim_texts(spec);
    let mut problems = Problems::default();
    check_name(&spec.name, &mut problems);
    check_link(spec.tracking_system, &spec.tracking_system_link, &mut problems);
    check_offer_terms(spec, &mut problems);
    check_events(spec, &mut problems);
    normalise_countries(&mut spec.targeting.countries, &mut problems);
    check_ages(&spec.targeting, &mut problems);
    check_budget(spec, &mut problems);
    check_dates(spec, &mut problems);
    if spec.epc <= Money::ZERO {
        problems.add("epc", "must be greater than 0");
    }
    for (index, creative) in spec.creatives.iter().enumerate() {
        if let Err(message) = check_http_url(&creative.url) {
            problems.add(format!("creatives[{index}].url"), message);
        }
    }
    problems.into_result()
}

#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    fn into_result(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

fn event_field(index: usize, name: &str) -> String {
    format!("events[{index}].{name}")
}

fn trim_texts(spec: &mut OfferSpec) {
    trim(&mut spec.name);
    trim(&mut spec.tracking_system_link);
    for event in &mut spec.events {
        trim(&mut event.event_id);
        trim(&mut event.name);
    }
}

fn trim(text: &mut String) {
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        *text = trimmed.to_owned();
    }
}

fn check_name(name: &str, problems: &mut Problems) {
    if name.is_empty() {
        problems.add("name", "is required");
    } else if name.chars().count() > NAME_MAX_CHARS {
        problems.add("name", format!("must be at most {NAME_MAX_CHARS} characters"));
    }
}

fn check_link(system: TrackingSystem, link: &str, problems: &mut Problems) {
    const FIELD: &str = "trackingSystemLink";
    if link.is_empty() {
        problems.add(FIELD, "is required");
    } else if let Err(message) = check_http_url(link) {
        problems.add(FIELD, message);
    } else if system.click_id_parameter().is_none() && !link.contains(CLICK_ID_MACRO) {
        problems.add(
            FIELD,
            format!(
                "must contain {CLICK_ID_MACRO}: gokart cannot add the click id to a {} link by itself",
                system.as_str()
            ),
        );
    }
}

fn check_http_url(text: &str) -> Result<(), &'static str> {
    let url = Url::parse(text).map_err(|_| "must be an absolute http(s) URL")?;
    match url.scheme() {
        "http" | "https" => Ok(()),
        _ => Err("must be an http or https URL"),
    }
}

/// The payout terms of a SingleEvent offer or of one event, with the path prefix of their fields.
struct Terms {
    prefix: String,
    revenue: Option<Money>,
    reward: Option<Money>,
    revenue_percent: Option<Money>,
    reward_percent: Option<Money>,
    pending_time: u32,
    caps: [(&'static str, Option<u32>); 4],
}

impl Terms {
    fn of_offer(spec: &OfferSpec) -> Self {
        Terms {
            prefix: String::new(),
            revenue: spec.revenue,
            reward: spec.reward,
            revenue_percent: spec.revenue_percent,
            reward_percent: spec.reward_percent,
            pending_time: spec.pending_time,
            caps: [
                ("dailyCap", spec.daily_cap),
                ("weeklyCap", spec.weekly_cap),
                ("monthlyCap", spec.monthly_cap),
                ("allTimeCap", spec.all_time_cap),
            ],
        }
    }

    fn of_event(index: usize, event: &OfferEvent) -> Self {
        Terms {
            prefix: format!("events[{index}]."),
            revenue: event.revenue,
            reward: event.reward,
            revenue_percent: event.revenue_percent,
            reward_percent: event.reward_percent,
            pending_time: event.pending_time,
            caps: [
                ("dailyCap", event.daily_cap),
                ("weeklyCap", event.weekly_cap),
                ("monthlyCap", event.monthly_cap),
                ("allTimeCap", event.all_time_cap),
            ],
        }
    }

    fn field(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn amounts(&self) -> [(&'static str, Option<Money>); 2] {
        [("revenue", self.revenue), ("reward", self.reward)]
    }

    fn percents(&self) -> [(&'static str, Option<Money>); 2] {
        [("revenuePercent", self.revenue_percent), ("rewardPercent", self.reward_percent)]
    }

    /// The names of the fields that hold a value (a pending time of 0 is the default, not a value).
    fn set_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        let money = self.amounts().into_iter().chain(self.percents());
        let money = money.filter(|(_, value)| value.is_some()).map(|(name, _)| name);
        let pending = (self.pending_time != 0).then_some("pendingTime");
        let caps = self.caps.iter().filter(|(_, cap)| cap.is_some());
        money.chain(pending).chain(caps.map(|(name, _)| *name))
    }
}

fn check_offer_terms(spec: &OfferSpec, problems: &mut Problems) {
    let terms = Terms::of_offer(spec);
    match spec.offer_type {
        OfferType::SingleEvent => check_terms(&terms, spec.conversion_type, problems),
        OfferType::MultiEvent => {
            for name in terms.set_fields() {
                problems.add(name, "is set on each event of a MultiEvent offer, not on the offer");
            }
        }
    }
}

fn check_terms(terms: &Terms, conversion: ConversionType, problems: &mut Problems) {
    if terms.pending_time > PENDING_TIME_MAX_DAYS {
        problems.add(
            terms.field("pendingTime"),
            format!("must be between 0 and {PENDING_TIME_MAX_DAYS} days"),
        );
    }
    for (name, amount) in terms.amounts() {
        if amount.is_some_and(Money::is_negative) {
            problems.add(terms.field(name), "must not be negative");
        }
    }
    for (name, percent) in terms.percents() {
        let Some(percent) = percent else { continue };
        if conversion == ConversionType::FlatRate {
            problems.add(terms.field(name), "is only for RevShare offers");
        } else if !(Money::ZERO..=Money::whole(100)).contains(&percent) {
            problems.add(terms.field(name), "must be between 0 and 100");
        }
    }
    if conversion == ConversionType::RevShare && terms.revenue_percent.is_none() {
        problems.add(terms.field("revenuePercent"), "is required for a RevShare offer");
    }
    for (name, cap) in terms.caps {
        if cap == Some(0) {
            problems.add(terms.field(name), "must be at least 1 when set");
        }
    }
}

fn check_events(spec: &OfferSpec, problems: &mut Problems) {
    match (spec.offer_type, spec.events.is_empty()) {
        (OfferType::MultiEvent, true) => {
            problems.add("events", "a MultiEvent offer needs at least one event");
        }
        // The events are refused as a whole; their details would only add noise.
        (OfferType::SingleEvent, false) => {
            problems.add("events", "a SingleEvent offer has no events");
        }
        (OfferType::MultiEvent, false) => {
            for (index, event) in spec.events.iter().enumerate() {
                check_event(index, event, spec.conversion_type, problems);
            }
            check_unique_ids(&spec.events, problems);
            check_sequence(&spec.events, problems);
        }
        (OfferType::SingleEvent, true) => {}
    }
}

fn check_event(
    index: usize,
    event: &OfferEvent,
    conversion: ConversionType,
    problems: &mut Problems,
) {
    let id = &event.event_id;
    if id.is_empty() {
        problems.add(event_field(index, "eventId"), "is required");
    } else if id != INSTALL_EVENT_ID && id.eq_ignore_ascii_case(INSTALL_EVENT_ID) {
        problems.add(
            event_field(index, "eventId"),
            format!("the install event's id must be exactly \"{INSTALL_EVENT_ID}\""),
        );
    }
    if event.name.is_empty() {
        problems.add(event_field(index, "name"), "is required");
    }
    check_terms(&Terms::of_event(index, event), conversion, problems);
}

/// Event ids are compared exactly, as the MMP's `cnv_event_id` is matched.
fn check_unique_ids(events: &[OfferEvent], problems: &mut Problems) {
    let mut first_with: HashMap<&str, usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if event.event_id.is_empty() {
            continue;
        }
        match first_with.entry(&event.event_id) {
            hash_map::Entry::Vacant(entry) => {
                entry.insert(index);
            }
            hash_map::Entry::Occupied(entry) => problems.add(
                event_field(index, "eventId"),
                format!("repeats the id of events[{}]; event ids must be unique", entry.get()),
            ),
        }
    }
}

/// Sequence numbers run 1, 2, 3, … without gaps or repeats, and `Install` comes first. Reports at
/// most one problem per event: the first rule it breaks.
fn check_sequence(events: &[OfferEvent], problems: &mut Problems) {
    let mut found: Vec<Option<String>> = vec![None; events.len()];
    let mut flag = |index: usize, message: String| {
        found[index].get_or_insert(message);
    };
    let mut first_with: BTreeMap<u32, usize> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        if event.event_id == INSTALL_EVENT_ID && event.sequence_number != Some(1) {
            flag(index, "the Install event must have sequence number 1".into());
        }
        match event.sequence_number {
            None => {}
            Some(0) => flag(index, "sequence numbers start at 1".into()),
            Some(number) => match first_with.entry(number) {
                btree_map::Entry::Vacant(entry) => {
                    entry.insert(index);
                }
                btree_map::Entry::Occupied(entry) => {
                    flag(index, format!("repeats the sequence number of events[{}]", entry.get()))
                }
            },
        }
    }
    let gap = (1..).zip(&first_with).find(|&(expected, (&number, _))| number != expected);
    if let Some((missing, (_, &index))) = gap {
        flag(index, format!("sequence numbers must have no gaps: {missing} is missing"));
    }
    for (index, message) in found.into_iter().enumerate() {
        if let Some(message) = message {
            problems.add(event_field(index, "sequenceNumber"), message);
        }
    }
}

fn normalise_countries(countries: &mut Vec<String>, problems: &mut Problems) {
    let mut all_known = true;
    for (index, code) in countries.iter_mut().enumerate() {
        match country_alpha2(code) {
            Some(alpha2) => alpha2.clone_into(code),
            None => {
                all_known = false;
                problems.add(
                    format!("targeting.countries[{index}]"),
                    format!(
                        "\"{code}\" is not an ISO 3166 alpha-2, alpha-3 or numeric country code"
                    ),
                );
            }
        }
    }
    // Dropping repeats would shift the indices the problems above name.
    if all_known {
        let mut seen = HashSet::new();
        countries.retain(|code| seen.insert(code.clone()));
    }
}

fn check_ages(targeting: &Targeting, problems: &mut Problems) {
    if let (Some(from), Some(to)) = (targeting.age_from, targeting.age_to) {
        if from > to {
            problems.add("targeting.ageTo", "must not be less than targeting.ageFrom");
        }
    }
}

fn check_budget(spec: &OfferSpec, problems: &mut Problems) {
    let budget = &spec.budget;
    for (field, amount) in [("budget.total", budget.total), ("budget.daily", budget.daily)] {
        if amount.is_some_and(Money::is_negative) {
            problems.add(field, "must not be negative");
        }
    }
}

fn check_dates(spec: &OfferSpec, problems: &mut Problems) {
    if let (Some(launch), Some(expiry)) = (spec.launch_date, spec.expiry_date) {
        if expiry < launch {
            problems.add("expiryDate", "must not be before launchDate");
        }
    }
}

#[cfg(test)]
mod tests;
