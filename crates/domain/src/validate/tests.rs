use celes::Country;
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn spec(value: serde_json::Value) -> OfferSpec {
    serde_json::from_value(value).expect("fixture deserialises")
}

/// The first seed offer.
fn pet_the_dogs() -> OfferSpec {
    spec(json!({
        "name": "Pet the Dogs iOS",
        "advertiserCampaignName": "Game_iOS_GoKart",
        "offerType": "MultiEvent",
        "trackingSystem": "Adjust",
        "trackingSystemLink": "https://app.adjust.com/abc123?campaign=x",
        "platform": "IOS",
        "targeting": {"genders": [], "ageFrom": 18, "ageTo": null, "countries": ["US", "ZA", "AU"]},
        "budget": {"total": 5000, "daily": null},
        "epc": 1,
        "events": [
            {"eventId": "Install", "name": "Install the app", "sequenceNumber": 1,
             "displayOrder": 1, "revenue": 0.5, "reward": 50},
            {"eventId": "s2s_level 200", "name": "Reach Level 200", "sequenceNumber": 2,
             "displayOrder": 2, "revenue": 2, "reward": 200},
            {"eventId": "s2s_level 400", "name": "Reach Level 400", "sequenceNumber": 3,
             "displayOrder": 3, "pendingTime": 7, "revenue": 5, "reward": 500}
        ]
    }))
}

/// The second seed offer.
fn golfin() -> OfferSpec {
    spec(json!({
        "name": "Golfin iOS",
        "offerType": "MultiEvent",
        "trackingSystem": "AppsFlyer",
        "trackingSystemLink": "https://app.appsflyer.com/id123?pid=gokart_int&c=golfin",
        "platform": "IOS",
        "epc": 1,
        "events": [
            {"eventId": "Install", "name": "Install Golfin", "sequenceNumber": 1, "revenue": 0.4},
            {"eventId": "level_10", "name": "Reach level 10", "sequenceNumber": 2, "revenue": 3},
            {"eventId": "af_purchase", "name": "Make a purchase", "sequenceNumber": null,
             "revenue": 1, "allowRepetitions": true}
        ]
    }))
}

fn single_event() -> OfferSpec {
    spec(json!({
        "name": "Sign up",
        "offerType": "SingleEvent",
        "trackingSystem": "TUNE",
        "trackingSystemLink": "https://example.go2cloud.org/aff_c?offer_id=1",
        "revenue": 2,
        "reward": 200,
        "dailyCap": 10
    }))
}

fn with(mut spec: OfferSpec, change: impl FnOnce(&mut OfferSpec)) -> OfferSpec {
    change(&mut spec);
    spec
}

fn problems(mut spec: OfferSpec) -> Vec<FieldError> {
    validate_offer(&mut spec).err().unwrap_or_default()
}

/// Asserts that `spec` has exactly one problem, on `field`, and returns its message.
#[track_caller]
fn only_problem(spec: OfferSpec, field: &str) -> String {
    let problems = problems(spec);
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, [field], "{problems:?}");
    problems[0].message.clone()
}

#[track_caller]
fn assert_valid(mut spec: OfferSpec) {
    assert_eq!(validate_offer(&mut spec), Ok(()));
}

fn money(text: &str) -> Option<Money> {
    Some(Money::parse(text).unwrap())
}

#[test]
fn seed_offers_are_valid() {
    assert_valid(pet_the_dogs());
    assert_valid(golfin());
    assert_valid(single_event());
}

#[test]
fn name_is_required() {
    let blank = with(single_event(), |s| s.name = "   ".into());
    assert_eq!(only_problem(blank, "name"), "is required");
}

#[test]
fn name_has_at_most_200_characters() {
    assert_valid(with(single_event(), |s| s.name = "é".repeat(200)));
    only_problem(with(single_event(), |s| s.name = "é".repeat(201)), "name");
}

#[test]
fn texts_are_trimmed_in_place() {
    let mut spec = with(pet_the_dogs(), |s| {
        s.name = "  Pet the Dogs iOS \n".into();
        s.tracking_system_link = " https://app.adjust.com/abc123 ".into();
        s.events[0].event_id = " Install ".into();
        s.events[1].name = "\tReach Level 200 ".into();
    });
    assert_eq!(validate_offer(&mut spec), Ok(()));
    assert_eq!(spec.name, "Pet the Dogs iOS");
    assert_eq!(spec.tracking_system_link, "https://app.adjust.com/abc123");
    assert_eq!(spec.events[0].event_id, "Install");
    assert_eq!(spec.events[1].name, "Reach Level 200");
}

#[test]
fn tracking_link_is_an_absolute_http_url() {
    for link in ["", "/offers/1?x=1", "app.adjust.com/abc", "ftp://app.adjust.com/abc", "https://"]
    {
        only_problem(
            with(pet_the_dogs(), |s| s.tracking_system_link = link.into()),
            "trackingSystemLink",
        );
    }
    assert_valid(with(pet_the_dogs(), |s| {
        s.tracking_system_link = "http://app.adjust.com/abc".into()
    }));
}

#[test]
fn tracking_link_without_automatic_click_id_needs_the_macro() {
    let branch = with(pet_the_dogs(), |s| s.tracking_system = TrackingSystem::Branch);
    let message = only_problem(branch.clone(), "trackingSystemLink");
    assert!(message.contains("{gk_click_id}"), "{message}");
    assert_valid(with(branch, |s| {
        s.tracking_system_link = "https://gokart.app.link/abc?~click_id={gk_click_id}".into()
    }));
}

#[test]
fn install_event_id_is_exactly_install() {
    for id in ["install", "INSTALL", "iNsTaLl"] {
        let message = only_problem(
            with(pet_the_dogs(), |s| s.events[0].event_id = id.into()),
            "events[0].eventId",
        );
        assert!(message.contains("must be exactly \"Install\""), "{message}");
    }
}

#[test]
fn event_ids_are_required() {
    let blank = with(pet_the_dogs(), |s| s.events[1].event_id = "  ".into());
    assert_eq!(only_problem(blank, "events[1].eventId"), "is required");
}

#[test]
fn event_ids_are_unique() {
    let repeated = with(golfin(), |s| s.events[2].event_id = "level_10".into());
    let message = only_problem(repeated, "events[2].eventId");
    assert!(message.contains("events[1]"), "{message}");
    // Matched exactly, so ids differing in case are different events.
    assert_valid(with(golfin(), |s| s.events[2].event_id = "LEVEL_10".into()));
}

#[test]
fn event_names_are_required() {
    only_problem(with(golfin(), |s| s.events[1].name = String::new()), "events[1].name");
}

#[test]
fn sequence_starts_at_1() {
    let zero = with(pet_the_dogs(), |s| {
        s.events[1].sequence_number = Some(0);
        s.events[2].sequence_number = Some(2);
    });
    only_problem(zero, "events[1].sequenceNumber");
}

#[test]
fn sequence_has_no_gaps() {
    let gap = with(pet_the_dogs(), |s| s.events[2].sequence_number = Some(4));
    let message = only_problem(gap, "events[2].sequenceNumber");
    assert!(message.contains("3 is missing"), "{message}");
    let no_first = with(golfin(), |s| {
        s.events.remove(0);
        s.events[0].sequence_number = Some(2);
    });
    only_problem(no_first, "events[0].sequenceNumber");
}

#[test]
fn sequence_has_no_duplicates() {
    let repeated = with(pet_the_dogs(), |s| s.events[2].sequence_number = Some(2));
    let message = only_problem(repeated, "events[2].sequenceNumber");
    assert!(message.contains("events[1]"), "{message}");
}

#[test]
fn independent_events_sit_anywhere() {
    assert_valid(with(golfin(), |s| s.events.rotate_right(1)));
    assert_valid(with(golfin(), |s| {
        s.events.retain(|event| event.event_id != "Install");
        s.events[0].sequence_number = Some(1);
    }));
}

#[test]
fn install_event_has_sequence_1() {
    let second = with(pet_the_dogs(), |s| {
        s.events[0].sequence_number = Some(2);
        s.events[1].sequence_number = Some(1);
    });
    only_problem(second, "events[0].sequenceNumber");
    let independent = with(golfin(), |s| {
        s.events[0].sequence_number = None;
        s.events[1].sequence_number = Some(1);
    });
    only_problem(independent, "events[0].sequenceNumber");
}

#[test]
fn multi_event_offer_needs_an_event() {
    only_problem(with(pet_the_dogs(), |s| s.events.clear()), "events");
}

#[test]
fn single_event_offer_has_no_events() {
    let events = pet_the_dogs().events;
    only_problem(with(single_event(), |s| s.events = events), "events");
}

#[test]
fn multi_event_offer_has_no_offer_level_terms() {
    type Change = fn(&mut OfferSpec);
    let cases: [(&str, Change); 9] = [
        ("dailyCap", |s| s.daily_cap = Some(5)),
        ("weeklyCap", |s| s.weekly_cap = Some(5)),
        ("monthlyCap", |s| s.monthly_cap = Some(5)),
        ("allTimeCap", |s| s.all_time_cap = Some(5)),
        ("revenue", |s| s.revenue = Some(Money::whole(1))),
        ("reward", |s| s.reward = Some(Money::ZERO)),
        ("revenuePercent", |s| s.revenue_percent = Some(Money::whole(1))),
        ("rewardPercent", |s| s.reward_percent = Some(Money::whole(1))),
        ("pendingTime", |s| s.pending_time = 3),
    ];
    for (field, change) in cases {
        only_problem(with(pet_the_dogs(), change), field);
    }
}

#[test]
fn pending_time_is_at_most_365_days() {
    assert_valid(with(single_event(), |s| s.pending_time = 365));
    only_problem(with(single_event(), |s| s.pending_time = 366), "pendingTime");
    only_problem(
        with(pet_the_dogs(), |s| s.events[1].pending_time = 1000),
        "events[1].pendingTime",
    );
}

#[test]
fn amounts_are_not_negative() {
    assert_valid(with(single_event(), |s| s.revenue = Some(Money::ZERO)));
    only_problem(with(single_event(), |s| s.revenue = money("-0.0001")), "revenue");
    only_problem(with(single_event(), |s| s.reward = money("-1")), "reward");
    only_problem(with(pet_the_dogs(), |s| s.events[2].reward = money("-5")), "events[2].reward");
    only_problem(with(golfin(), |s| s.events[0].revenue = money("-0.4")), "events[0].revenue");
}

#[test]
fn percentages_are_between_0_and_100() {
    let rev_share = with(single_event(), |s| {
        s.conversion_type = ConversionType::RevShare;
        s.revenue_percent = money("30");
    });
    assert_valid(with(rev_share.clone(), |s| s.reward_percent = money("100")));
    only_problem(
        with(rev_share.clone(), |s| s.revenue_percent = money("100.0001")),
        "revenuePercent",
    );
    only_problem(with(rev_share, |s| s.reward_percent = money("-1")), "rewardPercent");
}

#[test]
fn rev_share_needs_revenue_percent() {
    let single = with(single_event(), |s| s.conversion_type = ConversionType::RevShare);
    only_problem(single, "revenuePercent");
    let multi = with(golfin(), |s| {
        s.conversion_type = ConversionType::RevShare;
        for event in &mut s.events {
            event.revenue_percent = money("20");
        }
        s.events[1].revenue_percent = None;
    });
    only_problem(multi, "events[1].revenuePercent");
}

#[test]
fn flat_rate_has_no_percentages() {
    only_problem(with(single_event(), |s| s.reward_percent = money("10")), "rewardPercent");
    only_problem(
        with(golfin(), |s| s.events[2].revenue_percent = money("10")),
        "events[2].revenuePercent",
    );
}

#[test]
fn caps_are_at_least_1() {
    assert_valid(with(single_event(), |s| s.weekly_cap = Some(1)));
    only_problem(with(single_event(), |s| s.weekly_cap = Some(0)), "weeklyCap");
    only_problem(with(golfin(), |s| s.events[0].all_time_cap = Some(0)), "events[0].allTimeCap");
}

#[test]
fn budget_is_not_negative() {
    assert_valid(with(single_event(), |s| s.budget.total = Some(Money::ZERO)));
    only_problem(with(single_event(), |s| s.budget.total = money("-1")), "budget.total");
    only_problem(with(single_event(), |s| s.budget.daily = money("-1")), "budget.daily");
}

#[test]
fn age_from_is_at_most_age_to() {
    assert_valid(with(pet_the_dogs(), |s| s.targeting.age_to = Some(18)));
    only_problem(with(pet_the_dogs(), |s| s.targeting.age_to = Some(17)), "targeting.ageTo");
}

#[test]
fn expiry_is_not_before_launch() {
    let launch = "2026-11-22".parse().ok();
    let same_day = with(single_event(), |s| {
        s.launch_date = launch;
        s.expiry_date = launch;
    });
    assert_valid(same_day.clone());
    let before = with(same_day, |s| s.expiry_date = "2026-11-21".parse().ok());
    only_problem(before, "expiryDate");
}

#[test]
fn epc_is_positive() {
    only_problem(with(single_event(), |s| s.epc = Money::ZERO), "epc");
    only_problem(with(single_event(), |s| s.epc = Money::whole(-1)), "epc");
}

#[test]
fn creative_urls_are_absolute_http() {
    let creatives = with(single_event(), |s| {
        s.creatives = serde_json::from_value(json!([
            {"order": 1, "url": "https://cdn.example.com/a.png"},
            {"order": 2, "url": "images/b.png"},
        ]))
        .unwrap();
    });
    only_problem(creatives, "creatives[1].url");
}

#[test]
fn countries_are_normalised_to_alpha2() {
    let mut spec = with(pet_the_dogs(), |s| {
        s.targeting.countries = ["usa", "840", "za", "AUS", "036", " gb "].map(String::from).into();
    });
    assert_eq!(validate_offer(&mut spec), Ok(()));
    assert_eq!(spec.targeting.countries, ["US", "ZA", "AU", "GB"]);
}

#[test]
fn unknown_countries_are_refused() {
    let unknown = with(pet_the_dogs(), |s| {
        s.targeting.countries = ["US", "UK", "XYZ", "999"].map(String::from).into();
    });
    let fields: Vec<String> = problems(unknown).into_iter().map(|p| p.field).collect();
    assert_eq!(
        fields,
        ["targeting.countries[1]", "targeting.countries[2]", "targeting.countries[3]"]
    );
}

#[test]
fn every_problem_is_reported() {
    let broken = with(golfin(), |s| {
        s.name = String::new();
        s.epc = Money::ZERO;
        s.events[0].event_id = "install".into();
        s.events[1].sequence_number = Some(3);
        s.daily_cap = Some(1);
    });
    let fields: Vec<String> = problems(broken).into_iter().map(|p| p.field).collect();
    assert_eq!(
        fields,
        ["name", "dailyCap", "events[0].eventId", "events[1].sequenceNumber", "epc"]
    );
}

// Properties.

fn any_money() -> impl Strategy<Value = Option<Money>> {
    proptest::option::of(prop_oneof![
        (-1_000_000i64..2_000_000).prop_map(Money::from_units),
        any::<i64>().prop_map(Money::from_units),
    ])
}

fn any_event() -> impl Strategy<Value = OfferEvent> {
    let id =
        prop_oneof!["[A-Za-z_ ]{0,12}", Just("Install".to_owned()), Just("install".to_owned())];
    let terms = (any_money(), any_money(), any_money(), any_money());
    let caps = proptest::array::uniform4(proptest::option::of(0u32..3));
    (id, "\\PC{0,8}", proptest::option::of(0u32..6), 0u32..400, terms, caps, any::<bool>())
        .prop_map(
            |(event_id, name, sequence_number, pending_time, terms, caps, allow_repetitions)| {
                OfferEvent {
                    event_id,
                    name,
                    sequence_number,
                    display_order: None,
                    pending_time,
                    revenue: terms.0,
                    reward: terms.1,
                    revenue_percent: terms.2,
                    reward_percent: terms.3,
                    daily_cap: caps[0],
                    weekly_cap: caps[1],
                    monthly_cap: caps[2],
                    all_time_cap: caps[3],
                    allow_repetitions,
                }
            },
        )
}

/// An alpha-2, alpha-3 or numeric code of a real country, in upper or lower case.
fn known_country_code() -> impl Strategy<Value = String> {
    let countries = Country::get_countries();
    (0..countries.len(), 0..3usize, any::<bool>()).prop_map(move |(i, form, upper)| {
        let country = countries[i];
        let code = [country.alpha2, country.alpha3, country.code][form];
        if upper {
            code.to_uppercase()
        } else {
            code.to_lowercase()
        }
    })
}

fn any_country_code() -> impl Strategy<Value = String> {
    prop_oneof![3 => known_country_code(), 1 => "\\PC{0,4}"]
}

/// A valid MultiEvent offer: `sequenced` events numbered 1..=n in the given order, plus
/// `independent` events without a sequence number.
fn numbered_offer(order: &[u32], independent: usize) -> OfferSpec {
    with(golfin(), |s| {
        let template = s.events[1].clone();
        let sequenced = order.iter().map(|&n| (format!("step_{n}"), Some(n)));
        let others = (0..independent).map(|i| (format!("extra_{i}"), None));
        s.events = sequenced
            .chain(others)
            .map(|(event_id, sequence_number)| OfferEvent {
                name: format!("Do {event_id}"),
                event_id,
                sequence_number,
                ..template.clone()
            })
            .collect();
    })
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_events(
        events in proptest::collection::vec(any_event(), 0..8),
        multi in any::<bool>(),
        rev_share in any::<bool>(),
    ) {
        let mut spec = with(golfin(), |s| {
            s.events = events;
            s.offer_type = if multi { OfferType::MultiEvent } else { OfferType::SingleEvent };
            if rev_share {
                s.conversion_type = ConversionType::RevShare;
            }
        });
        if let Err(problems) = validate_offer(&mut spec) {
            prop_assert!(problems.iter().all(|p| !p.field.is_empty() && !p.message.is_empty()));
        }
    }

    #[test]
    fn validating_twice_changes_nothing(
        countries in proptest::collection::vec(known_country_code(), 0..6),
        padding in "[ \t]{0,2}",
    ) {
        let mut spec = with(pet_the_dogs(), |s| {
            s.targeting.countries = countries;
            s.name = format!("{padding}{}{padding}", s.name);
            s.events[1].event_id = format!("{padding}{}", s.events[1].event_id);
        });
        prop_assert_eq!(validate_offer(&mut spec), Ok(()));
        let mut again = spec.clone();
        prop_assert_eq!(validate_offer(&mut again), Ok(()));
        prop_assert_eq!(again, spec);
    }

    #[test]
    fn normalised_countries_are_two_upper_case_letters(
        codes in proptest::collection::vec(any_country_code(), 0..10),
    ) {
        let mut spec = with(pet_the_dogs(), |s| s.targeting.countries = codes.clone());
        let result = validate_offer(&mut spec);
        let bad: Vec<usize> = (0..codes.len()).filter(|&i| country_alpha2(&codes[i]).is_none()).collect();
        prop_assert_eq!(result.is_ok(), bad.is_empty());
        for (i, country) in spec.targeting.countries.iter().enumerate() {
            if !bad.contains(&i) {
                prop_assert!(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()), "{}", country);
            }
        }
    }

    #[test]
    fn any_order_of_a_valid_sequence_stays_valid(
        order in (1u32..8).prop_flat_map(|n| Just((1..=n).collect::<Vec<_>>()).prop_shuffle()),
        independent in 0usize..3,
    ) {
        assert_valid(numbered_offer(&order, independent));
    }

    #[test]
    fn a_missing_sequence_number_is_a_gap(n in 2u32..8, drop in 0u32..8) {
        let dropped = drop % (n - 1) + 1;
        let order: Vec<u32> = (1..=n).filter(|&k| k != dropped).collect();
        let problems = problems(numbered_offer(&order, 1));
        prop_assert_eq!(problems.len(), 1);
        prop_assert!(problems[0].field.ends_with(".sequenceNumber"));
    }

    #[test]
    fn seed_events_in_any_order_stay_valid(
        events in Just(pet_the_dogs().events).prop_shuffle(),
    ) {
        assert_valid(with(pet_the_dogs(), |s| s.events = events));
    }
}
