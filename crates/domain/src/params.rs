//! MMP postback parameters, read leniently (PRODUCT.md §7, mmp.md §5).
//!
//! Adjust and AppsFlyer send whatever the partner template says, filled as well as they can: empty
//! values, duplicate keys, values in quotes and macros nobody replaced all occur in real traffic.
//! [`PostbackParams`] merges the query string and the body and answers with clean values; nothing
//! here may panic or refuse a request, because a refused postback is a lost conversion.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::percent_decode_str;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{json::JsonObject, money::Money};

/// Longest value kept per parameter in [`PostbackParams::raw`].
pub const MAX_RAW_VALUE: usize = 2 * 1024;
/// Most parameters kept in [`PostbackParams::raw`].
pub const MAX_RAW_KEYS: usize = 200;
/// Longest unreadable body kept under [`RAW_BODY_KEY`].
pub const MAX_RAW_BODY: usize = 4 * 1024;
/// Where an unreadable body's text goes in [`PostbackParams::raw`].
pub const RAW_BODY_KEY: &str = "_body";
/// Keys longer than this are cut in [`PostbackParams::raw`].
const MAX_RAW_KEY: usize = 256;
/// Rejection reasons come from the MMP; they are stored, so they are bounded.
const MAX_REASON: usize = 255;
/// Nobody double-encodes more than this; the bound keeps the macro check cheap.
const MAX_DECODE_ROUNDS: usize = 3;

/// The parameters of one postback, merged from the query string and the body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PostbackParams {
    /// First usable value per key, cleaned.
    values: BTreeMap<String, String>,
    /// First occurrence per key as received (decoded), bounded, for the event log.
    /// Its text is written when the postback is read (in the request's handler), once for the log
    /// entry and the event that store it.
    raw: JsonObject,
    problems: Vec<ParamProblem>,
}

/// Something in a postback gokart could not use, kept so the log can say why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamProblem {
    /// `gk_click_id` is present but is not a UUID.
    InvalidClickId(String),
    /// `cnv_amount` is present but is not a non-negative amount with at most 4 decimals.
    InvalidAmount(String),
    /// The body is neither a form nor a JSON object; its text is kept under [`RAW_BODY_KEY`].
    UnreadableBody,
    /// More parameters than [`MAX_RAW_KEYS`]; the rest are usable but not logged.
    TooManyParameters,
    /// A gokart parameter (`gk_*`, `cnv_*`) came again with another value; the first one is used.
    ConflictingValues(String),
}

impl fmt::Display for ParamProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamProblem::InvalidClickId(value) => write!(f, "gk_click_id is not a UUID: {value}"),
            ParamProblem::InvalidAmount(value) => write!(f, "cnv_amount is not an amount: {value}"),
            ParamProblem::UnreadableBody => f.write_str("body is neither a form nor a JSON object"),
            ParamProblem::TooManyParameters => {
                write!(f, "more than {MAX_RAW_KEYS} parameters; the rest were not logged")
            }
            ParamProblem::ConflictingValues(key) => {
                write!(f, "{key} sent again with another value; the first one is used")
            }
        }
    }
}

/// What the postback says about `gk_click_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickIdParam<'a> {
    /// Missing, empty or an unreplaced macro: organic "send all" traffic.
    Absent,
    /// Present but not a UUID.
    Invalid(&'a str),
    Valid(Uuid),
}

impl ClickIdParam<'_> {
    pub fn uuid(self) -> Option<Uuid> {
        match self {
            ClickIdParam::Valid(id) => Some(id),
            _ => None,
        }
    }
}

/// An MMP's own verdict that the install or event is fraudulent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FraudSignal {
    /// Protect360 / validation rules: `is_rejected=true` with `blocked_reason` and its details.
    AppsFlyer { reason: String, reason_value: Option<String>, sub_reason: Option<String> },
    /// Fraud Prevention Suite: `activity_kind=rejected_install|rejected_reattribution`.
    Adjust { activity_kind: String, reason: String },
}

impl FraudSignal {
    /// The reason gokart rejects the conversion with.
    pub fn reason(&self) -> &str {
        match self {
            FraudSignal::AppsFlyer { reason, .. } | FraudSignal::Adjust { reason, .. } => reason,
        }
    }
}

impl PostbackParams {
    /// Merges the query string (with or without its `?`) and the body. Earlier occurrences win:
    /// the query before the body, and within each, in order.
    pub fn from_parts(query: &[u8], body: &[u8], content_type: Option<&str>) -> PostbackParams {
        let mut reading = Reading::default();
        let query = query.strip_prefix(b"?").unwrap_or(query);
        for (key, value) in form_pairs(query) {
            reading.push(&key, &value);
        }
        reading.push_body(body, content_type);
        let mut params = PostbackParams {
            values: reading.values,
            raw: JsonObject::new(reading.raw),
            problems: reading.problems,
        };
        params.check_typed_values();
        params
    }

    /// The cleaned value: trimmed, unquoted, and `None` when empty or an unreplaced macro.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every usable parameter, cleaned, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// Every parameter as received after decoding (first occurrence each, empty ones included),
    /// for the event log. Bounded by [`MAX_RAW_KEYS`] and [`MAX_RAW_VALUE`]; `signature` is
    /// redacted because the log must not hold the tenant's credentials.
    pub fn raw(&self) -> JsonObject {
        self.raw.clone()
    }

    /// What could not be used, for the event log.
    pub fn problems(&self) -> &[ParamProblem] {
        &self.problems
    }

    pub fn gk_click_id(&self) -> ClickIdParam<'_> {
        match self.get("gk_click_id") {
            None => ClickIdParam::Absent,
            Some(text) => {
                Uuid::try_parse(text).map_or(ClickIdParam::Invalid(text), ClickIdParam::Valid)
            }
        }
    }

    pub fn cnv_event_id(&self) -> Option<&str> {
        self.get("cnv_event_id")
    }

    /// The exact amount; `None` when absent or invalid (invalid ones are in [`Self::problems`]).
    pub fn cnv_amount(&self) -> Option<Money> {
        self.get("cnv_amount").and_then(parse_amount)
    }

    /// As sent: Adjust sends lower case (`eur`).
    pub fn cnv_currency(&self) -> Option<&str> {
        self.get("cnv_currency")
    }

    pub fn cnv_conversion_id(&self) -> Option<&str> {
        self.get("cnv_conversion_id")
    }

    pub fn cnv_conversion_ip_address(&self) -> Option<&str> {
        self.get("cnv_conversion_ip_address")
    }

    pub fn cnv_email(&self) -> Option<&str> {
        self.get("cnv_email")
    }

    pub fn cnv_user_id(&self) -> Option<&str> {
        self.get("cnv_user_id")
    }

    /// `cnv_sub_1` … `cnv_sub_5`; `None` for any other `n`.
    pub fn cnv_sub(&self, n: usize) -> Option<&str> {
        const KEYS: [&str; 5] = ["cnv_sub_1", "cnv_sub_2", "cnv_sub_3", "cnv_sub_4", "cnv_sub_5"];
        KEYS.get(n.checked_sub(1)?).and_then(|key| self.get(key))
    }

    pub fn cnv_subs(&self) -> [Option<&str>; 5] {
        [1, 2, 3, 4, 5].map(|n| self.cnv_sub(n))
    }

    pub fn fraud_signal(&self) -> Option<FraudSignal> {
        self.appsflyer_rejection().or_else(|| self.adjust_rejection())
    }

    /// The MMP's reason when it flagged the install or event as fraud.
    pub fn fraud_rejection(&self) -> Option<String> {
        self.fraud_signal().map(|signal| signal.reason().to_owned())
    }

    fn appsflyer_rejection(&self) -> Option<FraudSignal> {
        let flag = self.first_of(&["is_rejected", "is-rejected"])?;
        if !(flag.eq_ignore_ascii_case("true") || flag == "1") {
            return None;
        }
        // AppsFlyer's own documentation also writes `reject_reason`/`reject_reason_value`.
        let sub_reason = self.first_of(&["blocked_sub_reason", "blocked-sub-reason"]);
        let reason = self
            .first_of(&["blocked_reason", "blocked-reason", "reject_reason"])
            .or(sub_reason)
            .unwrap_or("rejected_by_mmp");
        let reason_value =
            self.first_of(&["blocked_reason_value", "blocked-reason-value", "reject_reason_value"]);
        Some(FraudSignal::AppsFlyer {
            reason: bounded(reason, MAX_REASON).to_owned(),
            reason_value: reason_value.map(|value| bounded(value, MAX_REASON).to_owned()),
            sub_reason: sub_reason.map(|value| bounded(value, MAX_REASON).to_owned()),
        })
    }

    fn adjust_rejection(&self) -> Option<FraudSignal> {
        let kind = self.get("activity_kind")?.to_ascii_lowercase();
        if kind != "rejected_install" && kind != "rejected_reattribution" {
            return None;
        }
        let reason = self.get("rejection_reason").unwrap_or(&kind);
        Some(FraudSignal::Adjust {
            reason: bounded(reason, MAX_REASON).to_owned(),
            activity_kind: kind,
        })
    }

    fn first_of(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|key| self.get(key))
    }

    fn check_typed_values(&mut self) {
        if let ClickIdParam::Invalid(text) = self.gk_click_id() {
            let problem = ParamProblem::InvalidClickId(bounded(text, MAX_REASON).to_owned());
            self.problems.push(problem);
        }
        if let Some(text) = self.get("cnv_amount").filter(|text| parse_amount(text).is_none()) {
            let problem = ParamProblem::InvalidAmount(bounded(text, MAX_REASON).to_owned());
            self.problems.push(problem);
        }
    }
}

/// The name-value pairs of a query string or form body, exactly as `form_urlencoded::parse`
/// reads them. A pair with no `%` and no `+` decodes to itself: it is borrowed as it is,
/// found by `memchr` and one UTF-8 check instead of `form_urlencoded`'s passes over each byte
/// (every click's and postback's query is read on the hot paths; callgrind counted 6-7 k
/// instructions a request in those passes). Any other pair is decoded by `form_urlencoded`.
pub fn form_pairs(input: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    input.split(|byte| *byte == b'&').filter(|pair| !pair.is_empty()).map(|pair| {
        if memchr::memchr2(b'%', b'+', pair).is_none() {
            if let Ok(text) = std::str::from_utf8(pair) {
                let (name, value) = text.split_once('=').unwrap_or((text, ""));
                return (Cow::Borrowed(name), Cow::Borrowed(value));
            }
        }
        form_urlencoded::parse(pair).next().unwrap_or_default()
    })
}

/// A postback's parameters while they are read: the log's map is turned into its
/// [`JsonObject`] (and its text written) once, when all of them are in.
#[derive(Default)]
struct Reading {
    values: BTreeMap<String, String>,
    raw: Map<String, Value>,
    problems: Vec<ParamProblem>,
}

impl Reading {
    fn push(&mut self, key: &str, value: &str) {
        let key = key.trim();
        if key.is_empty() {
            return;
        }
        let logged = if key == "signature" { "<redacted>" } else { bounded(value, MAX_RAW_VALUE) };
        self.push_raw(key, logged);
        let Some(clean) = clean_value(value) else {
            return;
        };
        match self.values.get(key) {
            None => {
                self.values.insert(key.to_owned(), clean.to_owned());
            }
            Some(kept) if kept != clean && is_gokart_key(key) => {
                let problem = ParamProblem::ConflictingValues(key.to_owned());
                if !self.problems.contains(&problem) {
                    self.problems.push(problem);
                }
            }
            Some(_) => {}
        }
    }

    fn push_raw(&mut self, key: &str, value: &str) {
        let key = bounded(key, MAX_RAW_KEY);
        if self.raw.contains_key(key) {
            return;
        }
        if self.raw.len() >= MAX_RAW_KEYS {
            if !self.problems.contains(&ParamProblem::TooManyParameters) {
                self.problems.push(ParamProblem::TooManyParameters);
            }
            return;
        }
        self.raw.insert(key.to_owned(), Value::String(value.to_owned()));
    }

    fn push_body(&mut self, body: &[u8], content_type: Option<&str>) {
        let text = String::from_utf8_lossy(body);
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            return;
        }
        let kind = BodyKind::of(content_type);
        if kind == BodyKind::Json || text.starts_with('{') {
            if let Some(pairs) = json_object_pairs(text) {
                for (key, value) in pairs {
                    self.push(&key, &json_value_text(value));
                }
                return;
            }
        }
        if kind == BodyKind::Form || looks_like_form(text) {
            for (key, value) in form_pairs(text.as_bytes()) {
                self.push(&key, &value);
            }
            return;
        }
        self.problems.push(ParamProblem::UnreadableBody);
        self.push_raw(RAW_BODY_KEY, bounded(text, MAX_RAW_BODY));
    }
}

fn is_gokart_key(key: &str) -> bool {
    key.starts_with("gk_") || key.starts_with("cnv_")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Other,
}

impl BodyKind {
    fn of(content_type: Option<&str>) -> BodyKind {
        let media_type = content_type
            .and_then(|value| value.split(';').next())
            .map(|value| value.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if media_type == "application/json" || media_type.ends_with("+json") {
            BodyKind::Json
        } else if media_type == "application/x-www-form-urlencoded" {
            BodyKind::Form
        } else {
            BodyKind::Other
        }
    }
}

/// An undeclared body is read as a form when it could only be one: `k=v` pairs, no spaces.
fn looks_like_form(text: &str) -> bool {
    text.contains('=') && text.bytes().all(|byte| byte.is_ascii_graphic())
}

/// The members of a JSON object in order, duplicates included (a `Map` would keep only the last).
fn json_object_pairs(text: &str) -> Option<Vec<(String, Value)>> {
    serde_json::from_str::<OrderedObject>(text).ok().map(|object| object.0)
}

struct OrderedObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = OrderedObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, Value>()? {
                    pairs.push(pair);
                }
                Ok(OrderedObject(pairs))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Scalars become their text (numbers keep theirs exactly); nested values stay JSON text.
fn json_value_text(value: Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text,
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        nested @ (Value::Array(_) | Value::Object(_)) => nested.to_string(),
    }
}

fn parse_amount(text: &str) -> Option<Money> {
    Money::parse(text).ok().filter(|amount| !amount.is_negative())
}

/// A value as gokart uses it: trimmed, one pair of surrounding quotes removed, and `None` when
/// nothing is left or what is left is a macro the sender did not replace.
pub fn clean_value(value: &str) -> Option<&str> {
    let value = unquote(value.trim()).trim();
    let absent = value.is_empty()
        || value.eq_ignore_ascii_case("null")
        || value.eq_ignore_ascii_case("undefined")
        || is_unreplaced_macro(value);
    (!absent).then_some(value)
}

fn unquote(value: &str) -> &str {
    ['"', '\'']
        .iter()
        .find_map(|&quote| value.strip_prefix(quote)?.strip_suffix(quote))
        .unwrap_or(value)
}

/// Whether the whole value is a macro in one of the notations MMPs and trackers use: `{idfa}`,
/// `{{idfa}}`, `${idfa}`, `(idfa)`, `[idfa]`, `[[idfa]]`, `$$sdk(idfa)` (any `$$…`), also
/// percent-encoded once or more (`%7Bidfa%7D`).
pub fn is_unreplaced_macro(value: &str) -> bool {
    let mut text = value.trim().to_owned();
    for _ in 0..=MAX_DECODE_ROUNDS {
        if is_macro_notation(&text) {
            return true;
        }
        if !text.contains('%') {
            return false;
        }
        let decoded = percent_decode_str(&text).decode_utf8_lossy().trim().to_owned();
        if decoded == text {
            return false;
        }
        text = decoded;
    }
    false
}

fn is_macro_notation(text: &str) -> bool {
    const WRAPPINGS: [(&str, &str); 6] =
        [("{{", "}}"), ("${", "}"), ("{", "}"), ("[[", "]]"), ("[", "]"), ("(", ")")];
    text.starts_with("$$")
        || WRAPPINGS
            .iter()
            .find_map(|(open, close)| text.strip_prefix(open)?.strip_suffix(close))
            .is_some_and(is_macro_name)
}

/// `idfa`, `install-unix-ts`, `event_revenue_USD`: an identifier, and not a UUID (`{…}` is also
/// how some systems write a UUID).
fn is_macro_name(inner: &str) -> bool {
    let name = inner.trim();
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_');
    starts_well
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        && Uuid::try_parse(name).is_err()
}

/// At most `max` bytes, cut on a character boundary.
fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CLICK: &str = "3f6c9a1e-7b2d-4c8e-9f10-2a5b7c9d1e34";

    fn query(text: &str) -> PostbackParams {
        PostbackParams::from_parts(text.as_bytes(), b"", None)
    }

    #[test]
    fn reads_the_contract_parameters() {
        let params = query(&format!(
            "?signature=abc&gk_click_id={CLICK}&cnv_event_id=FirstPurchase&cnv_amount=4.99\
             &cnv_currency=EUR&cnv_conversion_id=A-1&cnv_conversion_ip_address=203.0.113.45\
             &cnv_email=a%40b.c&cnv_user_id=u1&cnv_sub_1=s1&cnv_sub_5=s5"
        ));
        assert_eq!(params.gk_click_id(), ClickIdParam::Valid(CLICK.parse().unwrap()));
        assert_eq!(params.cnv_event_id(), Some("FirstPurchase"));
        assert_eq!(params.cnv_amount(), Some(Money::parse("4.99").unwrap()));
        assert_eq!(params.cnv_currency(), Some("EUR"));
        assert_eq!(params.cnv_conversion_id(), Some("A-1"));
        assert_eq!(params.cnv_conversion_ip_address(), Some("203.0.113.45"));
        assert_eq!(params.cnv_email(), Some("a@b.c"));
        assert_eq!(params.cnv_user_id(), Some("u1"));
        assert_eq!(params.cnv_subs(), [Some("s1"), None, None, None, Some("s5")]);
        assert_eq!(params.cnv_sub(0), None);
        assert_eq!(params.cnv_sub(6), None);
        assert!(params.problems().is_empty());
        assert_eq!(params.raw()["signature"], "<redacted>");
        assert_eq!(params.get("signature"), Some("abc"));
    }

    #[test]
    fn click_id_is_absent_or_invalid() {
        assert_eq!(query("").gk_click_id(), ClickIdParam::Absent);
        assert_eq!(query("gk_click_id=").gk_click_id(), ClickIdParam::Absent);
        assert_eq!(query("gk_click_id={clickid}").gk_click_id(), ClickIdParam::Absent);
        let invalid = query("gk_click_id=abc");
        assert_eq!(invalid.gk_click_id(), ClickIdParam::Invalid("abc"));
        assert_eq!(invalid.problems(), [ParamProblem::InvalidClickId("abc".into())]);
        let upper = query(&format!("gk_click_id=%22{}%22", CLICK.to_uppercase()));
        assert_eq!(upper.gk_click_id().uuid(), Some(CLICK.parse().unwrap()));
        let braced = query(&format!("gk_click_id=%7B{CLICK}%7D"));
        assert_eq!(braced.gk_click_id().uuid(), Some(CLICK.parse().unwrap()));
    }

    #[test]
    fn invalid_amounts_are_problems() {
        for text in ["4,99", "abc", "1.00001", "-3"] {
            let params = query(&format!("cnv_amount={text}"));
            assert_eq!(params.cnv_amount(), None, "{text}");
            assert_eq!(params.problems(), [ParamProblem::InvalidAmount(text.into())]);
        }
        assert_eq!(query("cnv_amount=%20%2710%27").cnv_amount(), Some(Money::whole(10)));
    }

    #[test]
    fn messy_values_from_real_traffic() {
        let params = query(
            "idfa={idfa}&sub4=(sub4)&a=%7Bidfa%7D&b=%257Bidfa%257D&c=$$sdk(idfa)&d=[idfa]\
             &e={{x}}&f=$$click(clickid)&g=(install-unix-ts)&h=%20%20&i=null&j=%22%22\
             &reject_reason_value=%221123456%22&k=+'quoted'+&l=%7B%7D&clickid=&clickid=abc&clickid=def",
        );
        for key in ["idfa", "sub4", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
            assert_eq!(params.get(key), None, "{key}");
        }
        assert_eq!(params.get("reject_reason_value"), Some("1123456"));
        assert_eq!(params.get("k"), Some("quoted"));
        assert_eq!(params.get("l"), Some("{}"));
        assert_eq!(params.get("clickid"), Some("abc"));
        assert_eq!(params.raw()["clickid"], "");
        assert_eq!(params.raw()["idfa"], "{idfa}");
        assert_eq!(params.raw()["b"], "%7Bidfa%7D");
    }

    #[test]
    fn json_values_keep_their_text() {
        let body = br#"{"gk_click_id":"3f6c9a1e-7b2d-4c8e-9f10-2a5b7c9d1e34","cnv_amount":12.3400,
            "is_rejected":true,"n":null,"nested":{"a":[1,2]},"cnv_event_id":"","cnv_event_id":"Lvl"}"#;
        let params = PostbackParams::from_parts(b"", body, Some("text/plain"));
        assert!(params.gk_click_id().uuid().is_some());
        assert_eq!(params.get("cnv_amount"), Some("12.3400"));
        assert_eq!(params.cnv_amount(), Some(Money::parse("12.34").unwrap()));
        assert_eq!(params.get("is_rejected"), Some("true"));
        assert_eq!(params.get("n"), None);
        assert_eq!(params.get("nested"), Some(r#"{"a":[1,2]}"#));
        assert_eq!(params.cnv_event_id(), Some("Lvl"));
    }

    #[test]
    fn query_wins_over_body_and_forms_merge() {
        let params = PostbackParams::from_parts(
            b"cnv_event_id=Install&cnv_amount=",
            b"cnv_event_id=Other&cnv_amount=2.5&cnv_sub_1=a+b",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
        );
        assert_eq!(params.cnv_event_id(), Some("Install"));
        assert_eq!(params.problems(), [ParamProblem::ConflictingValues("cnv_event_id".into())]);
        assert_eq!(params.cnv_amount(), Some(Money::parse("2.5").unwrap()));
        assert_eq!(params.cnv_sub(1), Some("a b"));
        let undeclared = PostbackParams::from_parts(b"", b"cnv_event_id=Lvl", None);
        assert_eq!(undeclared.cnv_event_id(), Some("Lvl"));
    }

    #[test]
    fn unreadable_bodies_are_kept_as_text() {
        let params =
            PostbackParams::from_parts(b"a=1", b"<xml>hello world</xml>", Some("text/xml"));
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.raw()[RAW_BODY_KEY], "<xml>hello world</xml>");
        assert_eq!(params.problems(), [ParamProblem::UnreadableBody]);
        let broken = PostbackParams::from_parts(b"", b"{\"a\": ", Some("application/json"));
        assert_eq!(broken.problems(), [ParamProblem::UnreadableBody]);
        let long = vec![b' '; 3].into_iter().chain(vec![0xff; 10_000]).collect::<Vec<_>>();
        let lossy = PostbackParams::from_parts(b"", &long, None);
        let kept = lossy.raw()[RAW_BODY_KEY].as_str().unwrap().len();
        assert!(kept > MAX_RAW_VALUE && kept <= MAX_RAW_BODY);
    }

    #[test]
    fn raw_is_bounded() {
        let many: String = (0..300).map(|n| format!("k{n}=v&")).collect();
        let params = query(&format!("{many}big={}", "é".repeat(2000)));
        assert_eq!(params.raw().len(), MAX_RAW_KEYS);
        assert_eq!(params.get("k299"), Some("v"));
        assert_eq!(params.problems(), [ParamProblem::TooManyParameters]);
        let big = query(&format!("big={}", "é".repeat(2000)));
        assert_eq!(big.raw()["big"].as_str().unwrap().len(), MAX_RAW_VALUE);
    }

    #[test]
    fn appsflyer_rejections() {
        let rejected = query(
            "is_rejected=TRUE&blocked_reason=ctit_anomalies&blocked_reason_value=4&blocked_sub_reason=",
        );
        assert_eq!(
            rejected.fraud_signal(),
            Some(FraudSignal::AppsFlyer {
                reason: "ctit_anomalies".into(),
                reason_value: Some("4".into()),
                sub_reason: None,
            })
        );
        assert_eq!(rejected.fraud_rejection().as_deref(), Some("ctit_anomalies"));
        let sub = query("is_rejected=1&blocked_reason=&blocked_sub_reason=bots_sub");
        assert_eq!(sub.fraud_rejection().as_deref(), Some("bots_sub"));
        let bare = query("is_rejected=1&blocked_reason={blocked_reason}");
        assert_eq!(bare.fraud_rejection().as_deref(), Some("rejected_by_mmp"));
        let documented =
            query("reject_reason=site_blacklist&reject_reason_value=\"1123456\"&is_rejected=1");
        assert_eq!(documented.fraud_rejection().as_deref(), Some("site_blacklist"));
        for flag in ["false", "0", "", "{is_rejected}"] {
            assert_eq!(query(&format!("is_rejected={flag}&blocked_reason=x")).fraud_signal(), None);
        }
    }

    #[test]
    fn adjust_rejections() {
        let rejected =
            query("activity_kind=rejected_install&rejection_reason=too_many_engagements");
        assert_eq!(rejected.fraud_rejection().as_deref(), Some("too_many_engagements"));
        let bare = query("activity_kind=Rejected_Reattribution");
        assert_eq!(
            bare.fraud_signal(),
            Some(FraudSignal::Adjust {
                activity_kind: "rejected_reattribution".into(),
                reason: "rejected_reattribution".into(),
            })
        );
        assert_eq!(query("activity_kind=install&rejection_reason=x").fraud_signal(), None);
    }

    fn macro_wrapped() -> impl Strategy<Value = String> {
        let name = "[a-zA-Z_][a-zA-Z0-9_.:-]{0,20}";
        let wrappers = prop::sample::select(vec![
            ("{", "}"),
            ("{{", "}}"),
            ("${", "}"),
            ("(", ")"),
            ("[", "]"),
            ("[[", "]]"),
            ("$$sdk(", ")"),
            ("$$click(", ")"),
            ("%7B", "%7D"),
            ("%7b", "%7d"),
            ("%257B", "%257D"),
            ("%28", "%29"),
        ]);
        let quotes = prop::sample::select(vec!["", "\"", "'"]);
        (name, wrappers, quotes, " {0,2}").prop_map(|(name, (open, close), quote, space)| {
            format!("{space}{quote}{open}{name}{close}{quote}{space}")
        })
    }

    const JSON_SHAPED: &str =
        r#"\{("[a-z_]{0,5}":("[^"]{0,8}"|[0-9.e-]{1,8}|true|null|\[\]|\{\}),?){0,6}\}?"#;
    const PLAIN_KEY: &str = "[a-z_][a-z0-9_]{0,12}";
    const PLAIN_VALUE: &str = "[a-zA-Z0-9é€@.:/+=&#%-][a-zA-Z0-9é€ @.:/+=&#%-]{0,20}[a-zA-Z0-9]";

    fn encoded(pairs: &[(String, String)]) -> String {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
    }

    proptest! {
        #[test]
        fn form_pairs_read_as_form_urlencoded_does(
            input in prop::collection::vec(
                prop_oneof![
                    Just(b'&'), Just(b'='), Just(b'%'), Just(b'+'), Just(b'2'), Just(b'F'),
                    Just(b'a'), Just(0xC3), Just(0xA9), Just(0xFF), any::<u8>()
                ],
                0..60,
            )
        ) {
            let ours: Vec<(String, String)> =
                form_pairs(&input).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            let theirs: Vec<(String, String)> =
                form_urlencoded::parse(&input).into_owned().collect();
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn never_panics(
            query in prop::collection::vec(any::<u8>(), 0..400),
            body in prop::collection::vec(any::<u8>(), 0..400),
            content_type in prop::option::of(prop::sample::select(vec![
                "application/json", "application/x-www-form-urlencoded", "text/plain", ";;", "",
            ])),
        ) {
            let params = PostbackParams::from_parts(&query, &body, content_type);
            let _ = (params.gk_click_id(), params.cnv_amount(), params.fraud_signal());
            prop_assert!(params.raw().len() <= MAX_RAW_KEYS);
        }

        #[test]
        fn never_panics_on_json_shaped_bodies(body in JSON_SHAPED) {
            let params = PostbackParams::from_parts(b"", body.as_bytes(), None);
            let _ = (params.cnv_amount(), params.fraud_signal());
        }

        #[test]
        fn macros_are_absent(value in macro_wrapped()) {
            prop_assert!(clean_value(&value).is_none(), "{value:?}");
            let params = PostbackParams::from_parts(format!("k={value}").as_bytes(), b"", None);
            prop_assert_eq!(params.get("k"), None);
        }

        #[test]
        fn first_usable_value_wins(
            values in prop::collection::vec(prop_oneof![
                Just(String::new()),
                Just("  ".to_owned()),
                macro_wrapped(),
                "[a-zA-Z0-9][a-zA-Z0-9 .-]{0,10}",
            ], 1..8),
        ) {
            let pairs: Vec<_> = values.iter().map(|value| ("k".to_owned(), value.clone()))
                .collect();
            let params = PostbackParams::from_parts(encoded(&pairs).as_bytes(), b"", None);
            let expected = values.iter().find_map(|value| clean_value(value));
            prop_assert_eq!(params.get("k"), expected);
            let raw = params.raw();
            prop_assert_eq!(raw["k"].as_str(), Some(values[0].as_str()));
        }

        #[test]
        fn plain_pairs_round_trip(
            pairs in prop::collection::btree_map(PLAIN_KEY, PLAIN_VALUE, 0..20),
        ) {
            let pairs: Vec<_> = pairs
                .into_iter()
                .filter(|(key, value)| {
                    key != "signature" && clean_value(value) == Some(value.as_str())
                })
                .collect();
            let query = encoded(&pairs);
            let params = PostbackParams::from_parts(query.as_bytes(), b"", None);
            let raw = params.raw();
            for (key, value) in &pairs {
                prop_assert_eq!(params.get(key), Some(value.as_str()));
                prop_assert_eq!(raw[key].as_str(), Some(value.as_str()));
            }
            let object: BTreeMap<_, _> = pairs.iter().cloned().collect();
            let json = serde_json::to_string(&object).unwrap();
            let from_json =
                PostbackParams::from_parts(b"", json.as_bytes(), Some("application/json"));
            prop_assert_eq!(from_json.raw(), params.raw());
        }
    }
}
