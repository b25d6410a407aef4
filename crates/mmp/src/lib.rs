//! Adjust and AppsFlyer as gokart meets them: the postback templates a tenant pastes into the
//! MMP's partner setup, and simulated postbacks that look like the MMPs' real traffic
//! (`../reference/mmp.md` §5) for `gokart simulate`. Reading postbacks is
//! [`gokart_domain::params`]'s job; nothing here does IO.

mod adjust;
mod appsflyer;

use std::fmt;
use std::str::FromStr;

use gokart_domain::macros::{append_query, append_query_param};
use gokart_domain::offer::TrackingSystem;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The measurement partners gokart has ready-made templates and simulated traffic for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mmp {
    Adjust,
    AppsFlyer,
}

impl Mmp {
    pub const ALL: [Mmp; 2] = [Mmp::Adjust, Mmp::AppsFlyer];

    pub fn as_str(self) -> &'static str {
        match self {
            Mmp::Adjust => "adjust",
            Mmp::AppsFlyer => "appsflyer",
        }
    }

    pub fn tracking_system(self) -> TrackingSystem {
        match self {
            Mmp::Adjust => TrackingSystem::Adjust,
            Mmp::AppsFlyer => TrackingSystem::AppsFlyer,
        }
    }
}

impl fmt::Display for Mmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMmp(pub String);

impl fmt::Display for UnknownMmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown MMP {:?}: expected adjust or appsflyer", self.0)
    }
}

impl std::error::Error for UnknownMmp {}

impl FromStr for Mmp {
    type Err = UnknownMmp;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        Mmp::ALL
            .into_iter()
            .find(|mmp| mmp.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownMmp(text.to_owned()))
    }
}

/// One conversion as an MMP would report it, for `gokart simulate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedConversion {
    pub click_id: Uuid,
    /// The GoKart event id the advertiser mapped the MMP's event to (`Install` for installs).
    pub event_id: String,
    pub is_install: bool,
    /// As the MMP writes it, e.g. `4.99`. Install postbacks carry no revenue, so it is only sent
    /// for events, like `currency`.
    pub amount: Option<String>,
    /// ISO 4217.
    pub currency: Option<String>,
    /// Sent as `cnv_conversion_id` when not empty.
    pub conversion_id: String,
    /// `Some` when the MMP's fraud tools rejected the install or event, with their reason.
    pub rejected_reason: Option<String>,
}

/// The decoded parameters the MMP would send for `input`, in order, duplicates and noise
/// included: the gokart parameters of [`postback_template`] plus the MMP's own.
pub fn postback_params(mmp: Mmp, input: &SimulatedConversion) -> Vec<(String, String)> {
    let device = Device::of(input);
    let pairs = match mmp {
        Mmp::Adjust => adjust::postback_params(input, &device),
        Mmp::AppsFlyer => appsflyer::postback_params(input, &device),
    };
    pairs.into_iter().map(|(key, value)| (key.to_owned(), value)).collect()
}

/// The postback URL the MMP would call for `input`: [`postback_params`] appended, encoded, to the
/// tenant's secure postback URL.
pub fn postback_url(mmp: Mmp, postback_base_url: &str, input: &SimulatedConversion) -> String {
    postback_params(mmp, input).iter().fold(postback_base_url.to_owned(), |url, (key, value)| {
        append_query_param(&url, key, value)
    })
}

/// The in-app event postback template to paste into the MMP's partner setup. `postback_base_url`
/// is the tenant's secure postback URL with its `signature` and without other parameters.
///
/// Adjust: the `event_callback` URL (also the global callback); AppsFlyer: the In-App Events
/// postback. Installs use [`install_postback_template`].
pub fn postback_template(mmp: Mmp, postback_base_url: &str) -> String {
    let pairs = match mmp {
        Mmp::Adjust => adjust::EVENT_TEMPLATE,
        Mmp::AppsFlyer => appsflyer::EVENT_TEMPLATE,
    };
    with_template(postback_base_url, pairs)
}

/// The install postback template, sending the event id `Install` the seeds require (Adjust:
/// `install_callback` and `rejected_install_callback`; AppsFlyer: the Install postback).
pub fn install_postback_template(mmp: Mmp, postback_base_url: &str) -> String {
    let pairs = match mmp {
        Mmp::Adjust => adjust::INSTALL_TEMPLATE,
        Mmp::AppsFlyer => appsflyer::INSTALL_TEMPLATE,
    };
    with_template(postback_base_url, pairs)
}

/// Macros stay literal: the MMP fills them, so they must not be encoded here.
fn with_template(base: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs.iter().map(|(key, value)| format!("{key}={value}")).collect();
    append_query(base, &query.join("&"))
}

/// Made-up but stable device data for a simulated click, derived from the click id so that a
/// retried conversion sends the same postback.
struct Device {
    ios: bool,
    /// IDFA on iOS, GAID on Android.
    advertising_id: String,
    /// Adjust's device id: 32 hex digits.
    adid: String,
    /// AppsFlyer's device id: `<13-digit ms>-<19 digits>`.
    appsflyer_id: String,
    ip: String,
    installed_at: i64,
    /// When this conversion happened (the install itself for installs).
    created_at: i64,
}

/// When the click id carries no time (not a v7 UUID): mmp.md's example click.
const FALLBACK_CLICK_TIME: i64 = 1_741_976_451;

impl Device {
    fn of(input: &SimulatedConversion) -> Device {
        let bytes = input.click_id.as_bytes();
        let mut reversed = *bytes;
        reversed.reverse();
        let other_id = Uuid::from_bytes(reversed);
        let ios = bytes[15] & 1 == 1;
        let click_time = input
            .click_id
            .get_timestamp()
            .and_then(|time| i64::try_from(time.to_unix().0).ok())
            .unwrap_or(FALLBACK_CLICK_TIME);
        let installed_at = click_time + 60 + i64::from(bytes[13] % 120);
        let created_at = if input.is_install {
            installed_at
        } else {
            installed_at + 600 + spread(&input.event_id) % 86_400
        };
        let device_number = u64::from_be_bytes(reversed[..8].try_into().unwrap_or_default());
        Device {
            ios,
            advertising_id: if ios {
                other_id.hyphenated().to_string().to_uppercase()
            } else {
                other_id.hyphenated().to_string()
            },
            adid: other_id.simple().to_string(),
            appsflyer_id: format!(
                "{}-{:019}",
                installed_at.saturating_mul(1000) - 7,
                device_number % 10_u64.pow(19)
            ),
            ip: format!("203.0.113.{}", bytes[14]),
            installed_at,
            created_at,
        }
    }

    fn os_name(&self) -> &'static str {
        if self.ios {
            "ios"
        } else {
            "android"
        }
    }

    /// AppsFlyer's `event_time` form: `2025-03-14 19:02:44.118`.
    fn created_at_text(&self) -> String {
        let micros = self.created_at.saturating_mul(1_000_000).saturating_add(118_000);
        gokart_domain::time::from_micros(micros).format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    }
}

/// A stable small number from a text (FNV-1a), to vary simulated data without randomness.
fn spread(text: &str) -> i64 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::try_from(hash >> 33).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use gokart_domain::macros::template_macros;
    use gokart_domain::params::{ClickIdParam, PostbackParams};
    use gokart_domain::Money;

    use super::*;

    const BASE: &str =
        "https://api.brownboots.getgokart.ai/api/v1/ZM-A9KxR5TQ2/Zu4Wn-8PmFJ7BqC6tHDrN0V/\
                        L5EoG2SxM9pTQaU3W/?signature=7FqR9KxD2WmA5N0B1TgYJcZs8vL3X4UeP-MH6tQEkdS";

    fn conversions() -> Vec<SimulatedConversion> {
        let ids = [
            Uuid::parse_str("3f6c9a1e-7b2d-4c8e-9f10-2a5b7c9d1e34").unwrap(),
            Uuid::parse_str("01957b3c-2d4e-7f00-8a1b-2c3d4e5f6a71").unwrap(),
        ];
        let mut all = Vec::new();
        for click_id in ids {
            let base = SimulatedConversion {
                click_id,
                event_id: "Install".into(),
                is_install: true,
                amount: None,
                currency: None,
                conversion_id: String::new(),
                rejected_reason: None,
            };
            let purchase = SimulatedConversion {
                event_id: "af_purchase".into(),
                is_install: false,
                amount: Some("4.99".into()),
                currency: Some("EUR".into()),
                conversion_id: "A-88213".into(),
                ..base.clone()
            };
            let level = SimulatedConversion {
                event_id: "s2s_level 200".into(),
                is_install: false,
                ..base.clone()
            };
            let rejected_install = SimulatedConversion {
                rejected_reason: Some("ctit_anomalies".into()),
                ..base.clone()
            };
            let rejected_event = SimulatedConversion {
                rejected_reason: Some("too_many_engagements".into()),
                ..purchase.clone()
            };
            all.extend([base, purchase, level, rejected_install, rejected_event]);
        }
        all
    }

    fn query_of(pairs: &[(String, String)]) -> String {
        let url = pairs
            .iter()
            .fold(String::new(), |url, (key, value)| append_query_param(&url, key, value));
        url.trim_start_matches('?').to_owned()
    }

    fn json_of(pairs: &[(String, String)]) -> String {
        let members: Vec<String> = pairs
            .iter()
            .map(|(key, value)| format!("{}:{}", serde_json::json!(key), serde_json::json!(value)))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    fn check(mmp: Mmp, input: &SimulatedConversion, params: &PostbackParams) {
        let case = format!("{mmp} {input:?}");
        assert_eq!(params.gk_click_id(), ClickIdParam::Valid(input.click_id), "{case}");
        assert_eq!(params.cnv_event_id(), Some(input.event_id.as_str()), "{case}");
        let amount = input.amount.as_deref().map(|text| Money::parse(text).unwrap());
        assert_eq!(params.cnv_amount(), amount, "{case}");
        let currency = params.cnv_currency().map(str::to_uppercase);
        assert_eq!(currency, input.currency.clone(), "{case}");
        let conversion_id = Some(input.conversion_id.as_str()).filter(|id| !id.is_empty());
        assert_eq!(params.cnv_conversion_id(), conversion_id, "{case}");
        assert_eq!(params.fraud_rejection(), input.rejected_reason, "{case}");
        assert!(params.problems().is_empty(), "{case}: {:?}", params.problems());
    }

    #[test]
    fn simulated_postbacks_parse_back() {
        for mmp in Mmp::ALL {
            for input in conversions() {
                let pairs = postback_params(mmp, &input);
                let query = query_of(&pairs);
                check(mmp, &input, &PostbackParams::from_parts(query.as_bytes(), b"", None));
                let form = PostbackParams::from_parts(
                    b"",
                    query.as_bytes(),
                    Some("application/x-www-form-urlencoded"),
                );
                check(mmp, &input, &form);
                let json = PostbackParams::from_parts(
                    b"",
                    json_of(&pairs).as_bytes(),
                    Some("application/json"),
                );
                check(mmp, &input, &json);
            }
        }
    }

    #[test]
    fn simulated_postbacks_are_messy_and_stable() {
        for mmp in Mmp::ALL {
            for input in conversions() {
                let pairs = postback_params(mmp, &input);
                assert_eq!(pairs, postback_params(mmp, &input));
                let params = PostbackParams::from_parts(query_of(&pairs).as_bytes(), b"", None);
                let raw = params.raw();
                let noise = raw.keys().filter(|key| params.get(key).is_none()).count();
                assert!(noise >= 1, "{mmp}: no empty or unreplaced value in {pairs:?}");
                if mmp == Mmp::AppsFlyer {
                    assert!(pairs.iter().filter(|(key, _)| key == "af_siteid").count() == 2);
                    assert_eq!(params.get("af_siteid"), Some("pub_1042"));
                }
            }
        }
    }

    #[test]
    fn postback_url_carries_the_base() {
        let input = &conversions()[1];
        let url = postback_url(Mmp::Adjust, BASE, input);
        let (base, query) = url.split_once('?').unwrap();
        assert!(BASE.starts_with(base));
        let params = PostbackParams::from_parts(query.as_bytes(), b"", None);
        assert_eq!(params.get("signature"), Some("7FqR9KxD2WmA5N0B1TgYJcZs8vL3X4UeP-MH6tQEkdS"));
        check(Mmp::Adjust, input, &params);
    }

    #[test]
    fn templates_carry_what_the_simulation_sends() {
        for mmp in Mmp::ALL {
            for input in conversions() {
                let template = if input.is_install {
                    install_postback_template(mmp, BASE)
                } else {
                    postback_template(mmp, BASE)
                };
                assert!(template.starts_with(&format!("{BASE}&gk_click_id=")), "{template}");
                let keys: Vec<&str> = template
                    .split(['?', '&'])
                    .filter_map(|pair| pair.split_once('=').map(|(key, _)| key))
                    .collect();
                for (key, _) in postback_params(mmp, &input) {
                    assert!(keys.contains(&key.as_str()), "{mmp}: {key} missing from {template}");
                }
            }
        }
    }

    #[test]
    fn templates_use_the_mmps_macros() {
        let adjust = postback_template(Mmp::Adjust, BASE);
        let macros = template_macros(&adjust);
        for name in [
            "gk_click_id",
            "event_name",
            "revenue_float",
            "currency",
            "activity_kind",
            "rejection_reason",
        ] {
            assert!(macros.contains(&name), "adjust: {name}");
        }
        let appsflyer = postback_template(Mmp::AppsFlyer, BASE);
        let macros = template_macros(&appsflyer);
        for name in [
            "clickid",
            "partner_event_id",
            "event_name",
            "event_revenue",
            "event_revenue_currency",
            "is_rejected",
        ] {
            assert!(macros.contains(&name), "appsflyer: {name}");
        }
        for mmp in Mmp::ALL {
            assert!(install_postback_template(mmp, BASE).contains("&cnv_event_id=Install&"));
        }
    }

    #[test]
    fn parses_mmp_names() {
        assert_eq!("Adjust".parse(), Ok(Mmp::Adjust));
        assert_eq!(" APPSFLYER ".parse(), Ok(Mmp::AppsFlyer));
        assert_eq!("singular".parse::<Mmp>(), Err(UnknownMmp("singular".into())));
        assert_eq!(Mmp::AppsFlyer.to_string(), "appsflyer");
        assert_eq!(Mmp::Adjust.tracking_system().click_id_parameter(), Some("gk_click_id"));
    }
}
