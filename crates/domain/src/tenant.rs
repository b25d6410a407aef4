//! Tenants and their kinds (the `{product}` path segment).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TenantKind {
    #[serde(rename = "advertiser")]
    Advertiser,
    #[serde(rename = "aff-network")]
    AffNetwork,
    #[serde(rename = "publisher")]
    Publisher,
}

impl TenantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantKind::Advertiser => "advertiser",
            TenantKind::AffNetwork => "aff-network",
            TenantKind::Publisher => "publisher",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "advertiser" => Some(TenantKind::Advertiser),
            "aff-network" => Some(TenantKind::AffNetwork),
            "publisher" => Some(TenantKind::Publisher),
            _ => None,
        }
    }
}

/// A tenant slug: 3–40 of `a-z0-9-`.
pub fn valid_slug(slug: &str) -> bool {
    (3..=40).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Names that would collide with hosts gokart serves itself.
pub fn reserved_slug(slug: &str) -> bool {
    matches!(slug, "www" | "api" | "app" | "admin")
}
