//! Offers and their events, as the API and the storage see them (PRODUCT.md §4).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// Everything a tenant writes about an offer: the body of create and full update.
///
/// Unknown JSON fields are ignored. Kept free of `#[serde(flatten)]`: flatten buffers numbers and
/// would defeat the exact (arbitrary precision) reading of amounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferSpec {
    pub name: String,
    #[serde(default)]
    pub advertiser_id: Option<Uuid>,
    #[serde(default)]
    pub advertiser_campaign_name: Option<String>,
    pub offer_type: OfferType,
    #[serde(default)]
    pub conversion_type: ConversionType,
    pub tracking_system: TrackingSystem,
    pub tracking_system_link: String,
    #[serde(default)]
    pub headline: Option<String>,
    #[serde(default)]
    pub short_description: Option<String>,
    #[serde(default)]
    pub key_points: Option<String>,
    #[serde(default)]
    pub offer_details: Option<String>,
    #[serde(default)]
    pub terms_and_disclaimers: Option<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub creatives: Vec<Creative>,
    #[serde(default)]
    pub platform: Platform,
    #[serde(default)]
    pub targeting: Targeting,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub launch_date: Option<NaiveDate>,
    #[serde(default)]
    pub expiry_date: Option<NaiveDate>,
    #[serde(default = "default_epc")]
    pub epc: Money,
    #[serde(default)]
    pub lock_epc: bool,
    #[serde(default)]
    pub manual_rewarding: bool,
    #[serde(default)]
    pub allow_repeat_conversions: bool,
    #[serde(default)]
    pub daily_cap: Option<u32>,
    #[serde(default)]
    pub weekly_cap: Option<u32>,
    #[serde(default)]
    pub monthly_cap: Option<u32>,
    #[serde(default)]
    pub all_time_cap: Option<u32>,
    #[serde(default)]
    pub revenue: Option<Money>,
    #[serde(default)]
    pub reward: Option<Money>,
    #[serde(default)]
    pub revenue_percent: Option<Money>,
    #[serde(default)]
    pub reward_percent: Option<Money>,
    #[serde(default)]
    pub pending_time: u32,
    #[serde(default)]
    pub events: Vec<OfferEvent>,
}

fn default_epc() -> Money {
    Money::whole(1)
}

/// One event of a MultiEvent offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferEvent {
    /// What the MMP sends in `cnv_event_id`, matched exactly.
    pub event_id: String,
    /// What users see ("Reach Level 200").
    pub name: String,
    /// 1, 2, 3, ... or `None` for an Independent event.
    #[serde(default)]
    pub sequence_number: Option<u32>,
    #[serde(default)]
    pub display_order: Option<u32>,
    /// Whole days; 0 = instant.
    #[serde(default)]
    pub pending_time: u32,
    #[serde(default)]
    pub revenue: Option<Money>,
    #[serde(default)]
    pub reward: Option<Money>,
    #[serde(default)]
    pub revenue_percent: Option<Money>,
    #[serde(default)]
    pub reward_percent: Option<Money>,
    #[serde(default)]
    pub daily_cap: Option<u32>,
    #[serde(default)]
    pub weekly_cap: Option<u32>,
    #[serde(default)]
    pub monthly_cap: Option<u32>,
    #[serde(default)]
    pub all_time_cap: Option<u32>,
    #[serde(default)]
    pub allow_repetitions: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Creative {
    pub order: u32,
    pub url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Targeting {
    #[serde(default)]
    pub genders: Vec<String>,
    #[serde(default)]
    pub age_from: Option<u32>,
    #[serde(default)]
    pub age_to: Option<u32>,
    /// Stored as ISO alpha-2; input may be alpha-2, alpha-3 or numeric.
    #[serde(default)]
    pub countries: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    #[serde(default)]
    pub total: Option<Money>,
    #[serde(default)]
    pub daily: Option<Money>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OfferType {
    SingleEvent,
    MultiEvent,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConversionType {
    #[default]
    FlatRate,
    RevShare,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Platform {
    #[serde(rename = "IOS")]
    Ios,
    Android,
    MacOS,
    Browser,
    #[default]
    All,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OfferStatus {
    #[default]
    Active,
    /// Paused.
    Pending,
    Expired,
}

impl OfferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferStatus::Active => "Active",
            OfferStatus::Pending => "Pending",
            OfferStatus::Expired => "Expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }
}

macro_rules! tracking_systems {
    ($($name:ident),* $(,)?) => {
        /// The attribution providers GoKart knows (its `trackingSystem` enumeration).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum TrackingSystem { $($name),* }

        impl TrackingSystem {
            pub const ALL: &'static [TrackingSystem] = &[$(TrackingSystem::$name),*];

            pub fn as_str(self) -> &'static str {
                match self { $(TrackingSystem::$name => stringify!($name)),* }
            }
        }
    };
}

tracking_systems!(
    AppsFlyer,
    Singular,
    Impact,
    Adjust,
    CJAffiliate,
    TUNE,
    CAKE,
    Everflow,
    PerformCB,
    MAF,
    Lootably,
    Sharesale,
    AdAction,
    AdGateMedia,
    RevenueUniverse,
    HangMyAds,
    Torox,
    AyeTstudios,
    Besitos,
    Rakuten,
    AdGateReward,
    AdJoe,
    AdMantum,
    AdscendMedia,
    AdworkMedia,
    Bitlabs,
    Cpalead,
    JustTrack,
    KashKick,
    Kiwiwall,
    MyChips,
    Notik,
    Personaly,
    RevenueHut,
    Tapjoy,
    Tenjin,
    TimeWall,
    Wannads,
    Branch,
    Kochava,
    CustomTracking,
    AWIN,
    AppSamurai,
    GoKart,
    AdGem,
);

impl TrackingSystem {
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|system| system.as_str() == text)
    }

    /// The parameter under which gokart appends the click id to a link that has no
    /// `{gk_click_id}` macro; `None` for systems whose links must carry the macro.
    pub fn click_id_parameter(self) -> Option<&'static str> {
        match self {
            TrackingSystem::AppsFlyer => Some("clickid"),
            TrackingSystem::Adjust => Some("gk_click_id"),
            TrackingSystem::TUNE => Some("aff_click_id"),
            TrackingSystem::Impact => Some("subId1"),
            TrackingSystem::AdGem => Some("c1"),
            _ => None,
        }
    }
}

/// A stored offer: the tenant's spec plus what gokart assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub id: Uuid,
    pub status: OfferStatus,
    pub partner_id: Option<Uuid>,
    pub shared_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub spec: OfferSpec,
}

impl Offer {
    pub fn event(&self, event_id: &str) -> Option<&OfferEvent> {
        self.spec.events.iter().find(|event| event.event_id == event_id)
    }

    /// The JSON the API answers with: the spec's fields plus the assigned ones.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.spec).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("id".into(), self.id.to_string().into());
            object.insert("status".into(), self.status.as_str().into());
            object.insert("partnerId".into(), self.partner_id.map(|id| id.to_string()).into());
            object.insert("sharedAt".into(), self.shared_at.map(crate::time::iso).into());
            object.insert("createdAt".into(), crate::time::iso(self.created_at).into());
            object.insert("updatedAt".into(), crate::time::iso(self.updated_at).into());
        }
        value
    }
}
