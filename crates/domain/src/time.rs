//! Time helpers: the product's ISO 8601 form and the storage's integer form.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// `2026-11-22T10:15:00Z` (sub-seconds only when present).
pub fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Microseconds since the Unix epoch: how timestamps are stored, identically on both backends.
pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub fn from_micros(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}
