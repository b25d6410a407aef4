//! Adjust callbacks (mmp.md §2, examples E9–E11).
//!
//! Adjust drops a placeholder it cannot fill, so a simulated callback leaves such keys out.

use gokart_domain::Money;

use crate::{spread, Device, SimulatedConversion};

/// `{revenue}` is in cents; gokart wants whole units, which is `{revenue_float}`. `{event_name}`
/// is the name the advertiser mapped, which the seeds make the GoKart Event ID.
pub(crate) const EVENT_TEMPLATE: &[(&str, &str)] = &[
    ("gk_click_id", "{gk_click_id}"),
    ("cnv_event_id", "{event_name}"),
    ("cnv_amount", "{revenue_float}"),
    ("cnv_currency", "{currency}"),
    ("cnv_conversion_id", "{adid}_{event}_{created_at}"),
    ("cnv_conversion_ip_address", "{ip_address}"),
    ("activity_kind", "{activity_kind}"),
    ("rejection_reason", "{rejection_reason}"),
    ("event", "{event}"),
    ("revenue", "{revenue}"),
    ("adid", "{adid}"),
    ("tracker", "{tracker}"),
    ("tracker_name", "{tracker_name}"),
    ("os_name", "{os_name}"),
    ("idfa", "{idfa}"),
    ("idfv", "{idfv}"),
    ("gps_adid", "{gps_adid}"),
    ("created_at", "{created_at}"),
    ("installed_at", "{installed_at}"),
];

/// Also the `rejected_install_callback`: `{rejection_reason}` is only filled there.
pub(crate) const INSTALL_TEMPLATE: &[(&str, &str)] = &[
    ("gk_click_id", "{gk_click_id}"),
    ("cnv_event_id", "Install"),
    ("cnv_conversion_id", "{adid}"),
    ("cnv_conversion_ip_address", "{ip_address}"),
    ("activity_kind", "{activity_kind}"),
    ("rejection_reason", "{rejection_reason}"),
    ("adid", "{adid}"),
    ("tracker", "{tracker}"),
    ("tracker_name", "{tracker_name}"),
    ("os_name", "{os_name}"),
    ("idfa", "{idfa}"),
    ("idfv", "{idfv}"),
    ("gps_adid", "{gps_adid}"),
    ("created_at", "{created_at}"),
    ("installed_at", "{installed_at}"),
];

pub(crate) fn postback_params(
    input: &SimulatedConversion,
    device: &Device,
) -> Vec<(&'static str, String)> {
    let mut pairs =
        vec![("gk_click_id", input.click_id.to_string()), ("cnv_event_id", input.event_id.clone())];
    if !input.is_install {
        pairs.extend(input.amount.clone().map(|amount| ("cnv_amount", amount)));
        // Adjust writes currencies in lower case.
        pairs.extend(
            input.currency.as_ref().map(|currency| ("cnv_currency", currency.to_lowercase())),
        );
    }
    if !input.conversion_id.is_empty() {
        pairs.push(("cnv_conversion_id", input.conversion_id.clone()));
    }
    pairs.push(("cnv_conversion_ip_address", device.ip.clone()));
    pairs.push(("activity_kind", activity_kind(input).to_owned()));
    pairs.extend(input.rejected_reason.clone().map(|reason| ("rejection_reason", reason)));
    if !input.is_install {
        pairs.push(("event", event_token(&input.event_id)));
        pairs.extend(revenue_cents(input).map(|cents| ("revenue", cents.to_string())));
    }
    pairs.extend([
        ("adid", device.adid.clone()),
        ("tracker", "1a2b3c4".to_owned()),
        ("tracker_name", "GoKart::gokart_offer::pub_1042::offerwall_tile".to_owned()),
        ("os_name", device.os_name().to_owned()),
        (if device.ios { "idfa" } else { "gps_adid" }, device.advertising_id.clone()),
        // Seen in production logs: a placeholder that reached gokart unreplaced.
        ("idfv", "{idfv}".to_owned()),
        ("created_at", device.created_at.to_string()),
        ("installed_at", device.installed_at.to_string()),
    ]);
    pairs
}

fn activity_kind(input: &SimulatedConversion) -> &'static str {
    match (input.rejected_reason.is_some(), input.is_install) {
        (false, true) => "install",
        (false, false) => "event",
        (true, true) => "rejected_install",
        (true, false) => "rejected_reattribution",
    }
}

/// Adjust event tokens are six lower-case alphanumerics, fixed per event.
fn event_token(event_id: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut seed = spread(event_id).unsigned_abs();
    (0..6)
        .map(|_| {
            let index = usize::try_from(seed % 36).unwrap_or_default();
            seed /= 36;
            char::from(ALPHABET[index])
        })
        .collect()
}

fn revenue_cents(input: &SimulatedConversion) -> Option<i64> {
    let amount = Money::parse(input.amount.as_deref()?).ok()?;
    Some(amount.units() / 100)
}
