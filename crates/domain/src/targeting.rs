//! Whether a click's `pub_*` targeting values fit an offer's targeting (PRODUCT.md §4, §6).

use celes::Country;

use crate::offer::Targeting;

/// The raw `pub_gender`, `pub_age` and `pub_geo_country` values of a click URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClickTargeting<'a> {
    pub gender: Option<&'a str>,
    pub age: Option<&'a str>,
    pub country: Option<&'a str>,
}

/// Why a click does not fit the offer's targeting; `Display` is meant for the end user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetingMismatch {
    #[error("This offer is not available for your gender.")]
    Gender,
    #[error("This offer is not available for your age.")]
    Age,
    #[error("This offer is not available in your country.")]
    Country,
}

/// Checks the targeting values a partner passed with a click.
///
/// A value that is absent or blank always passes, and so does any value for a dimension the offer
/// does not target (empty list, no age bounds). Platform is left out: it cannot be judged without
/// the user agent.
pub fn check_click(targeting: &Targeting, input: &ClickTargeting) -> Result<(), TargetingMismatch> {
    if let Some(gender) = given(input.gender) {
        check_gender(&targeting.genders, gender)?;
    }
    if let Some(age) = given(input.age) {
        check_age(targeting.age_from, targeting.age_to, age)?;
    }
    if let Some(country) = given(input.country) {
        check_country(&targeting.countries, country)?;
    }
    Ok(())
}

/// The upper-case ISO 3166 alpha-2 code of an alpha-2, alpha-3 or numeric code given in any case
/// ("us", "USA", "840" → "US"); `None` for anything else.
pub fn country_alpha2(code: &str) -> Option<&'static str> {
    let code = code.trim();
    let country = if code.bytes().all(|b| b.is_ascii_digit()) {
        // Numeric codes are three digits, but "36" for "036" is a common way to write them.
        if code.is_empty() || code.len() > 3 {
            return None;
        }
        Country::from_value(code.parse().ok()?)
    } else {
        match code.len() {
            2 => Country::from_alpha2(code),
            3 => Country::from_alpha3(code),
            _ => return None,
        }
    };
    country.ok().map(|country| country.alpha2)
}

fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

fn check_gender(genders: &[String], gender: &str) -> Result<(), TargetingMismatch> {
    let fits = genders.is_empty()
        || genders.iter().any(|allowed| allowed.trim().eq_ignore_ascii_case(gender));
    fits.then_some(()).ok_or(TargetingMismatch::Gender)
}

fn check_age(from: Option<u32>, to: Option<u32>, age: &str) -> Result<(), TargetingMismatch> {
    if from.is_none() && to.is_none() {
        return Ok(());
    }
    let age: u32 = age.parse().map_err(|_| TargetingMismatch::Age)?;
    let fits = from.is_none_or(|from| age >= from) && to.is_none_or(|to| age <= to);
    fits.then_some(()).ok_or(TargetingMismatch::Age)
}

fn check_country(countries: &[String], country: &str) -> Result<(), TargetingMismatch> {
    if countries.is_empty() {
        return Ok(());
    }
    let country = country_alpha2(country).ok_or(TargetingMismatch::Country)?;
    // Stored countries are alpha-2 already, but an offer saved before validation normalised them
    // should still match.
    let fits = countries.iter().any(|allowed| country_alpha2(allowed) == Some(country));
    fits.then_some(()).ok_or(TargetingMismatch::Country)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targeting() -> Targeting {
        Targeting {
            genders: vec!["female".into()],
            age_from: Some(18),
            age_to: Some(35),
            countries: vec!["US".into(), "ZA".into(), "AU".into()],
        }
    }

    fn click<'a>(
        gender: Option<&'a str>,
        age: Option<&'a str>,
        country: Option<&'a str>,
    ) -> ClickTargeting<'a> {
        ClickTargeting { gender, age, country }
    }

    #[test]
    fn absent_or_blank_values_pass() {
        assert_eq!(check_click(&targeting(), &ClickTargeting::default()), Ok(()));
        assert_eq!(check_click(&targeting(), &click(Some(""), Some(" "), Some(""))), Ok(()));
    }

    #[test]
    fn gender_matches_case_insensitively() {
        assert_eq!(check_click(&targeting(), &click(Some("Female"), None, None)), Ok(()));
        assert_eq!(
            check_click(&targeting(), &click(Some("male"), None, None)),
            Err(TargetingMismatch::Gender)
        );
    }

    #[test]
    fn age_is_inclusive_and_must_be_a_number() {
        for age in ["18", "35"] {
            assert_eq!(check_click(&targeting(), &click(None, Some(age), None)), Ok(()));
        }
        for age in ["17", "36", "abc", "-20", "20.5"] {
            assert_eq!(
                check_click(&targeting(), &click(None, Some(age), None)),
                Err(TargetingMismatch::Age),
                "{age}"
            );
        }
    }

    #[test]
    fn open_ended_age_range() {
        let only_adults = Targeting { age_from: Some(18), ..Targeting::default() };
        assert_eq!(check_click(&only_adults, &click(None, Some("99"), None)), Ok(()));
        assert_eq!(
            check_click(&only_adults, &click(None, Some("12"), None)),
            Err(TargetingMismatch::Age)
        );
    }

    #[test]
    fn country_accepts_every_code_form() {
        for country in ["US", "us", "USA", "usa", "840", "zaf", "36"] {
            assert_eq!(
                check_click(&targeting(), &click(None, None, Some(country))),
                Ok(()),
                "{country}"
            );
        }
        for country in ["GB", "GBR", "826", "XX", "United States"] {
            assert_eq!(
                check_click(&targeting(), &click(None, None, Some(country))),
                Err(TargetingMismatch::Country),
                "{country}"
            );
        }
    }

    #[test]
    fn untargeted_dimensions_accept_anything() {
        let everyone = Targeting::default();
        let anything = click(Some("other"), Some("not a number"), Some("nowhere"));
        assert_eq!(check_click(&everyone, &anything), Ok(()));
    }

    #[test]
    fn messages_are_plain_sentences() {
        assert_eq!(
            TargetingMismatch::Country.to_string(),
            "This offer is not available in your country."
        );
    }

    #[test]
    fn country_codes_normalise_to_alpha2() {
        assert_eq!(country_alpha2("usa"), Some("US"));
        assert_eq!(country_alpha2("840"), Some("US"));
        assert_eq!(country_alpha2("036"), Some("AU"));
        assert_eq!(country_alpha2(" za "), Some("ZA"));
        for code in ["", "0", "0840", "U", "USAA", "UK", "ÉÉ"] {
            assert_eq!(country_alpha2(code), None, "{code}");
        }
    }
}
