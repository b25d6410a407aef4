//! The rows the storage traits read and write.

use chrono::{DateTime, Utc};
use gokart_domain::{offer::Offer, tenant::TenantKind, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    pub id: Uuid,
    pub slug: String,
    pub kind: TenantKind,
    pub name: String,
    pub currency: String,
    /// Standard Webhooks secret (`whsec_...`) that signs the tenant's conversion callbacks.
    pub callback_signing_secret: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenScope {
    Management,
    Partner,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Management => "Management",
            TokenScope::Partner => "Partner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Management" => Some(TokenScope::Management),
            "Partner" => Some(TokenScope::Partner),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiTokenRecord {
    /// SHA-256 of the token, hex. The token itself is never stored.
    pub token_hash: String,
    pub tenant_id: Uuid,
    pub scope: TokenScope,
    /// Set for Partner tokens.
    pub partner_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PostbackCredential {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// `<a>/<b>/<c>` without slashes around it.
    pub segment: String,
    pub signature: String,
    pub created_at: DateTime<Utc>,
    /// `None` while current; the end of the grace period once rotated.
    pub valid_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRole {
    /// A tenant's own staff.
    Admin,
    /// A partner's portal login.
    Partner,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "Admin",
            UserRole::Partner => "Partner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Admin" => Some(UserRole::Admin),
            "Partner" => Some(UserRole::Partner),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub role: UserRole,
    pub partner_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub token_hash: String,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// The back office's lists. They share one shape: an id, a name and a JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectoryKind {
    Advertisers,
    Partners,
    Categories,
    Placements,
    AgeRanges,
    Genders,
}

impl DirectoryKind {
    pub const ALL: [DirectoryKind; 6] = [
        DirectoryKind::Advertisers,
        DirectoryKind::Partners,
        DirectoryKind::Categories,
        DirectoryKind::Placements,
        DirectoryKind::AgeRanges,
        DirectoryKind::Genders,
    ];

    /// The path segment under `/api/v1/sdk-back-office-management/`.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryKind::Advertisers => "advertisers",
            DirectoryKind::Partners => "partners",
            DirectoryKind::Categories => "categories",
            DirectoryKind::Placements => "placements",
            DirectoryKind::AgeRanges => "age-ranges",
            DirectoryKind::Genders => "genders",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryItem {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: DirectoryKind,
    pub name: String,
    /// Every field as the API shows it (camelCase), `id` and `name` included.
    pub body: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored offer with what only storage tracks.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferRecord {
    pub offer: Offer,
    /// Revenue reserved or paid by counted conversion events (all time).
    pub spent: Money,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OfferFilter {
    pub status: Option<String>,
    pub offer_type: Option<String>,
    pub tracking_system: Option<String>,
    /// Case-insensitive substring of the name.
    pub search: Option<String>,
    /// Only the offers shared with this partner.
    pub partner_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    #[serde(skip)]
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    #[serde(skip)]
    pub offer_id: Uuid,
    #[serde(serialize_with = "iso")]
    pub at: DateTime<Utc>,
    pub actor: String,
    pub field: String,
    pub old_value: serde_json::Value,
    pub new_value: serde_json::Value,
}

fn iso<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&gokart_domain::time::iso(*at))
}

/// `page` is 0-based; `size` 1–100 (checked by the HTTP layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub index: u32,
    pub size: u32,
}

impl PageRequest {
    pub const ALL: PageRequest = PageRequest { index: 0, size: 10_000 };

    pub fn offset(self) -> i64 {
        i64::from(self.index) * i64::from(self.size)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub request: PageRequest,
    pub total: u64,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            request: self.request,
            total: self.total,
        }
    }
}
