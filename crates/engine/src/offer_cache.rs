//! The offers the click path reads, kept in memory so a click costs no database read.
//!
//! An entry is dropped when this process changes the offer (an edit, or a postback that spends
//! its budget) and is reloaded at the latest after [`FRESH_FOR`], so a change made by another
//! process on the same database (a second `serve`) reaches every process within that time. The
//! budget check at click time is a courtesy to users: the postback decision enforces the budget
//! under the offer lock, so a click let through in that window never overspends.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

use chrono::NaiveDate;
use gokart_storage::OfferRecord;
use uuid::Uuid;

/// How long an entry is used without looking at the database again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Entries kept at most; past that the cache starts again empty (a rare, cheap event).
const MAX_ENTRIES: usize = 20_000;

/// An offer as the click path needs it.
#[derive(Debug, Clone)]
pub struct ClickOffer {
    pub record: Arc<OfferRecord>,
    /// Whether the total or the daily budget was used up when loaded.
    pub out_of_budget: bool,
    /// The UTC day `out_of_budget` was computed for (a daily budget starts again each day).
    pub day: NaiveDate,
    loaded_at: Instant,
}

impl ClickOffer {
    pub fn new(record: OfferRecord, out_of_budget: bool, day: NaiveDate) -> Self {
        ClickOffer { record: Arc::new(record), out_of_budget, day, loaded_at: Instant::now() }
    }
}

#[derive(Default)]
pub struct OfferCache {
    entries: RwLock<HashMap<(Uuid, Uuid), ClickOffer>>,
    /// Counts forgets, so a load that raced with a change does not put back what it read before.
    generation: AtomicU64,
}

impl OfferCache {
    /// The cached offer, if it is fresh and was computed for `day`.
    pub fn get(&self, tenant_id: Uuid, offer_id: Uuid, day: NaiveDate) -> Option<ClickOffer> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(&(tenant_id, offer_id))?;
        (entry.day == day && entry.loaded_at.elapsed() < FRESH_FOR).then(|| entry.clone())
    }

    /// Take this before reading the offer from the database, and hand it to [`Self::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `entry` unless something was forgotten since `generation` was taken.
    pub fn put(&self, tenant_id: Uuid, entry: ClickOffer, generation: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert((tenant_id, entry.record.offer.id), entry);
    }

    pub fn forget(&self, tenant_id: Uuid, offer_id: Uuid) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(&(tenant_id, offer_id));
    }

    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}
