//! AppsFlyer postbacks (mmp.md §1, examples E4–E6, E14).
//!
//! AppsFlyer sends a key with an empty value when it has no data for it.

use crate::{Device, SimulatedConversion};

/// `{partner_event_id}` is the partner event name the advertiser mapped the event to, which the
/// seeds make the GoKart Event ID; `{event_name}` is the SDK's own name, kept as raw data.
pub(crate) const EVENT_TEMPLATE: &[(&str, &str)] = &[
    ("gk_click_id", "{clickid}"),
    ("cnv_event_id", "{partner_event_id}"),
    ("cnv_amount", "{event_revenue}"),
    ("cnv_currency", "{event_revenue_currency}"),
    ("cnv_conversion_id", "{appsflyer_id}_{event_time}"),
    ("cnv_conversion_ip_address", "{ip}"),
    ("af_siteid", "{af_siteid}"),
    ("appsflyer_id", "{appsflyer_id}"),
    ("platform", "{platform}"),
    ("advertising_id", "{advertising_id}"),
    ("idfa", "{idfa}"),
    ("idfv", "{idfv}"),
    ("oaid", "{oaid}"),
    ("install_unix_ts", "{install_unix_ts}"),
    ("event_name", "{event_name}"),
    ("event_revenue", "{event_revenue}"),
    ("event_revenue_currency", "{event_revenue_currency}"),
    ("event_time", "{event_time}"),
    ("is_rejected", "{is_rejected}"),
    ("blocked_reason", "{blocked_reason}"),
    ("blocked_reason_value", "{blocked_reason_value}"),
    ("blocked_sub_reason", "{blocked_sub_reason}"),
];

pub(crate) const INSTALL_TEMPLATE: &[(&str, &str)] = &[
    ("gk_click_id", "{clickid}"),
    ("cnv_event_id", "Install"),
    ("cnv_conversion_id", "{appsflyer_id}"),
    ("cnv_conversion_ip_address", "{ip}"),
    ("af_siteid", "{af_siteid}"),
    ("appsflyer_id", "{appsflyer_id}"),
    ("platform", "{platform}"),
    ("advertising_id", "{advertising_id}"),
    ("idfa", "{idfa}"),
    ("idfv", "{idfv}"),
    ("oaid", "{oaid}"),
    ("install_unix_ts", "{install_unix_ts}"),
    ("is_rejected", "{is_rejected}"),
    ("blocked_reason", "{blocked_reason}"),
    ("blocked_reason_value", "{blocked_reason_value}"),
    ("blocked_sub_reason", "{blocked_sub_reason}"),
];

pub(crate) fn postback_params(
    input: &SimulatedConversion,
    device: &Device,
) -> Vec<(&'static str, String)> {
    let text = |value: Option<&String>| value.cloned().unwrap_or_default();
    let mut pairs =
        vec![("gk_click_id", input.click_id.to_string()), ("cnv_event_id", input.event_id.clone())];
    if !input.is_install {
        pairs.push(("cnv_amount", text(input.amount.as_ref())));
        pairs.push(("cnv_currency", text(input.currency.as_ref())));
    }
    if !input.conversion_id.is_empty() {
        pairs.push(("cnv_conversion_id", input.conversion_id.clone()));
    }
    let (advertising_id, idfa) = if device.ios {
        (String::new(), device.advertising_id.clone())
    } else {
        (device.advertising_id.clone(), String::new())
    };
    pairs.extend([
        ("cnv_conversion_ip_address", device.ip.clone()),
        // Duplicated below with its value: the first non-empty one must win.
        ("af_siteid", String::new()),
        ("appsflyer_id", device.appsflyer_id.clone()),
        ("platform", device.os_name().to_owned()),
        ("advertising_id", advertising_id),
        ("idfa", idfa),
        // AppsFlyer's legacy and internal notations, leaking unreplaced.
        ("idfv", if device.ios { "(idfv)" } else { "" }.to_owned()),
        ("oaid", "$$sdk(oaid)".to_owned()),
        ("install_unix_ts", device.installed_at.to_string()),
    ]);
    if !input.is_install {
        pairs.extend([
            ("event_name", input.event_id.clone()),
            ("event_revenue", text(input.amount.as_ref())),
            ("event_revenue_currency", text(input.currency.as_ref())),
            ("event_time", device.created_at_text()),
        ]);
    }
    pairs.extend(rejection(input));
    pairs.push(("af_siteid", "pub_1042".to_owned()));
    pairs
}

fn rejection(input: &SimulatedConversion) -> [(&'static str, String); 4] {
    let Some(reason) = &input.rejected_reason else {
        return [
            ("is_rejected", "false".to_owned()),
            ("blocked_reason", String::new()),
            ("blocked_reason_value", String::new()),
            ("blocked_sub_reason", String::new()),
        ];
    };
    // Both boolean formats occur (the partner picks one in AppsFlyer's UI), in any case.
    let flag = ["true", "1", "TRUE"][usize::from(input.click_id.as_bytes()[0] % 3)];
    [
        ("is_rejected", flag.to_owned()),
        ("blocked_reason", reason.clone()),
        // AppsFlyer's own example quotes this value.
        ("blocked_reason_value", "\"4\"".to_owned()),
        ("blocked_sub_reason", String::new()),
    ]
}
