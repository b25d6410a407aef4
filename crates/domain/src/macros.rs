//! `{macro}` templates: tracking links (PRODUCT.md §6) and partner postbacks (§9).
//!
//! A macro is `{name}` with `name` made of ASCII letters, digits, `_`, `-` and `.`. Anything else
//! between braces (`{"a":1}`, `{ x }`) is plain text and is left as it is.

use std::ops::Range;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const NOT_UNRESERVED: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Macros filled in an offer's tracking link when a partner's user clicks (PRODUCT.md §6).
pub const LINK_MACROS: &[&str] = &[
    "gk_click_id",
    "gk_offer_id",
    "gk_offer_name",
    "gk_partner_id",
    "pub_member_id",
    "pub_click_id",
    "pub_sub_1",
    "pub_sub_2",
    "pub_sub_3",
    "pub_sub_4",
    "pub_sub_5",
    "pub_sub_6",
    "pub_sub_7",
    "pub_sub_8",
    "pub_sub_9",
    "pub_sub_10",
    "pub_sub_11",
    "pub_sub_12",
    "pub_sub_13",
    "pub_sub_14",
    "pub_sub_15",
    "cost_type",
    "cost_amount",
    "cost_currency",
];

/// Macros filled in a partner's postback templates (PRODUCT.md §9).
pub const PARTNER_POSTBACK_MACROS: &[&str] = &[
    "pub_click_id",
    "pub_member_id",
    "gk_click_id",
    "gk_offer_id",
    "gk_offer_name",
    "cnv_event_id",
    "cnv_event_name",
    "payout",
    "reward",
    "cnv_amount",
    "currency",
    "conversion_id",
    "transaction_id",
    "status",
    "pub_sub_1",
    "pub_sub_2",
    "pub_sub_3",
    "pub_sub_4",
    "pub_sub_5",
    "pub_sub_6",
    "pub_sub_7",
    "pub_sub_8",
    "pub_sub_9",
    "pub_sub_10",
    "pub_sub_11",
    "pub_sub_12",
    "pub_sub_13",
    "pub_sub_14",
    "pub_sub_15",
    "timestamp",
];

/// The macro names in `template`, each once, in order of first appearance.
pub fn template_macros(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for (_, name) in macro_spans(template) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// `Err` lists the macros of `template` that are not in `allowed`, each once, in order.
pub fn check_template(template: &str, allowed: &[&str]) -> Result<(), Vec<String>> {
    let unknown: Vec<String> = template_macros(template)
        .into_iter()
        .filter(|name| !allowed.contains(name))
        .map(str::to_owned)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(unknown)
    }
}

/// Replaces every macro `lookup` knows with its URL-encoded value.
///
/// `lookup` answers `None` for a name it does not know, and that macro is left as written (it may
/// be the MMP's own placeholder). For a known macro without a value it answers
/// `Some(String::new())`. [`expand_known`] does that mapping for a fixed list of names.
pub fn expand(template: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut copied = 0;
    for (span, name) in macro_spans(template) {
        if let Some(value) = lookup(name) {
            out.push_str(&template[copied..span.start]);
            out.push_str(&url_encode(&value));
            copied = span.end;
        }
    }
    out.push_str(&template[copied..]);
    out
}

/// Replaces every macro named in `known` with its URL-encoded value, empty when `lookup` has none,
/// and leaves other macros as written.
pub fn expand_known(
    template: &str,
    known: &[&str],
    lookup: impl Fn(&str) -> Option<String>,
) -> String {
    expand(template, |name| known.contains(&name).then(|| lookup(name).unwrap_or_default()))
}

/// Percent-encodes everything except the unreserved characters `A-Za-z0-9-._~`.
pub fn url_encode(value: &str) -> String {
    encoded(value).into_owned()
}

/// `value` percent-encoded as by [`url_encode`], borrowed when nothing needed encoding (ids,
/// most macro values): no copy, and no trip through `fmt` on a click's path.
fn encoded(value: &str) -> std::borrow::Cow<'_, str> {
    utf8_percent_encode(value, NOT_UNRESERVED).into()
}

/// Appends `key=value` (both encoded) to the query of `url`, before any fragment.
pub fn append_query_param(url: &str, key: &str, value: &str) -> String {
    let (key, value) = (encoded(key), encoded(value));
    let mut query = String::with_capacity(key.len() + 1 + value.len());
    query.push_str(&key);
    query.push('=');
    query.push_str(&value);
    append_query(url, &query)
}

/// Appends `query`, taken as already encoded, to the query of `url`, before any fragment.
pub fn append_query(url: &str, query: &str) -> String {
    if query.is_empty() {
        return url.to_owned();
    }
    let (base, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with(['?', '&']) => "",
        Some(_) => "&",
    };
    let mut appended = String::with_capacity(url.len() + separator.len() + query.len());
    appended.push_str(base);
    appended.push_str(separator);
    appended.push_str(query);
    appended.push_str(fragment);
    appended
}

/// Each `{name}` of `template` with its byte range (braces included).
fn macro_spans(template: &str) -> impl Iterator<Item = (Range<usize>, &str)> {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(offset) = template[from..].find('{') {
            let open = from + offset;
            let close = open + 1 + template[open + 1..].find('}')?;
            let name = &template[open + 1..close];
            if is_macro_name(name) {
                from = close + 1;
                return Some((open..close + 1, name));
            }
            from = open + 1;
        }
        None
    })
}

fn is_macro_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn values(name: &str) -> Option<String> {
        match name {
            "gk_click_id" => Some("3f6c9a1e-7b2d-4c8e-9f10-2a5b7c9d1e34".into()),
            "gk_offer_name" => Some("Pet the Dogs iOS & more/ü".into()),
            _ => None,
        }
    }

    #[test]
    fn lists_macros() {
        let template = "https://x/?a={gk_click_id}&b={pub_sub_1}&c={gk_click_id}&j={\"a\":1}&s={ x }&e={}&{{idfa}}";
        assert_eq!(template_macros(template), ["gk_click_id", "pub_sub_1", "idfa"]);
        assert_eq!(template_macros("{unclosed"), Vec::<&str>::new());
    }

    #[test]
    fn checks_templates() {
        assert_eq!(
            check_template("https://x/?a={gk_click_id}&b={pub_sub_15}", LINK_MACROS),
            Ok(())
        );
        assert_eq!(
            check_template(
                "https://x/?p={payout}&q={bogus}&r={payout}&s={bogus}",
                PARTNER_POSTBACK_MACROS
            ),
            Err(vec!["bogus".to_owned()])
        );
        assert_eq!(
            check_template("https://x/?p={payout}", LINK_MACROS),
            Err(vec!["payout".to_owned()])
        );
    }

    #[test]
    fn expands_known_macros_encoded() {
        let template =
            "https://t/?click={gk_click_id}&name={gk_offer_name}&sub={pub_sub_1}&idfa={idfa}#f";
        assert_eq!(
            expand_known(template, LINK_MACROS, values),
            "https://t/?click=3f6c9a1e-7b2d-4c8e-9f10-2a5b7c9d1e34\
             &name=Pet%20the%20Dogs%20iOS%20%26%20more%2F%C3%BC&sub=&idfa={idfa}#f"
        );
        assert_eq!(expand("{a}{b}", |name| (name == "a").then(|| "~x y".into())), "~x%20y{b}");
        assert_eq!(expand("{{gk_click_id}}", |_| Some("v".into())), "{v}");
    }

    #[test]
    fn appends_query_parameters() {
        let cases = [
            ("https://a.b/p", "https://a.b/p?k=v%20w"),
            ("https://a.b/p?", "https://a.b/p?k=v%20w"),
            ("https://a.b/p?x=1", "https://a.b/p?x=1&k=v%20w"),
            ("https://a.b/p?x=1&", "https://a.b/p?x=1&k=v%20w"),
            ("https://a.b/p#frag?no", "https://a.b/p?k=v%20w#frag?no"),
            ("https://a.b/p?x=1#f", "https://a.b/p?x=1&k=v%20w#f"),
        ];
        for (url, expected) in cases {
            assert_eq!(append_query_param(url, "k", "v w"), expected);
        }
        assert_eq!(append_query("https://a.b/?x=1", ""), "https://a.b/?x=1");
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(PARTNER_POSTBACK_MACROS).prop_map(|name| format!("{{{name}}}")),
            "\\{[a-z_]{1,8}\\}",
            "[^{}]{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn expand_never_panics(template in any::<String>(), value in any::<String>()) {
            let _ = expand(&template, |_| Some(value.clone()));
            let _ = expand_known(&template, LINK_MACROS, |_| None);
            let _ = check_template(&template, LINK_MACROS);
        }

        #[test]
        fn expand_leaves_no_known_macro(
            parts in prop::collection::vec(fragment(), 0..12),
            value in prop::option::of(any::<String>()),
        ) {
            let template = parts.concat();
            let expanded = expand_known(&template, PARTNER_POSTBACK_MACROS, |_| value.clone());
            let left: Vec<&str> = template_macros(&expanded);
            let known_left = left.iter().any(|name| PARTNER_POSTBACK_MACROS.contains(name));
            prop_assert!(!known_left, "{}", expanded);
        }
    }
}
