//! gokart's use cases. Each takes its input already parsed, applies the domain rules inside one
//! storage transaction, and returns what happened; HTTP, the CLI and the worker call these.

pub mod callback;
pub mod catalog;
pub mod clock;
pub mod conversions;
pub mod deliveries;
pub mod error;
mod group_commit;
pub mod intake;
pub mod offer_cache;
pub mod offers;
pub mod outbox;
pub mod partner_postbacks;
pub mod secrets;
pub mod sessions;
pub mod tenants;
pub mod tracking;
pub mod urls;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock, Weak},
};

use gokart_storage::{Store, TenantRecord};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{EngineError, EngineResult};
pub use urls::PublicUrls;

/// The use cases over one store, one clock and one public address.
pub struct Engine {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub urls: PublicUrls,
    /// Tenants by slug: read on every request, written only by `tenant create`.
    tenants: RwLock<HashMap<String, TenantRecord>>,
    /// Wakes delivery workers when deliveries are enqueued (`outbox.rs`).
    deliveries_enqueued: tokio::sync::Notify,
    /// Offers as the click path reads them (`offer_cache.rs`).
    click_offers: offer_cache::OfferCache,
    /// Clicks and postbacks waiting for their group commit (`group_commit.rs`).
    writes: group_commit::WriteQueue,
    /// This engine, for the writer task it starts.
    me: Weak<Engine>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, urls: PublicUrls) -> Arc<Self> {
        Arc::new_cyclic(|me| Engine {
            store,
            clock,
            urls,
            tenants: RwLock::default(),
            deliveries_enqueued: tokio::sync::Notify::new(),
            click_offers: offer_cache::OfferCache::default(),
            writes: group_commit::WriteQueue::default(),
            me: me.clone(),
        })
    }

    /// Drops every offer the click path holds in memory. Only needed after the database was
    /// changed behind the engine's back (tests, manual SQL); edits made through the engine do
    /// this themselves, and other processes' edits show within `offer_cache::FRESH_FOR`.
    pub fn forget_cached_offers(&self) {
        self.click_offers.clear();
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The tenant a host names, `None` for an unknown slug.
    pub async fn tenant(&self, slug: &str) -> EngineResult<Option<TenantRecord>> {
        if let Some(tenant) = self.tenants.read().unwrap_or_else(|e| e.into_inner()).get(slug) {
            return Ok(Some(tenant.clone()));
        }
        let mut tx = self.store.read().await?;
        let tenant = tx.tenant_by_slug(slug).await?;
        if let Some(tenant) = &tenant {
            self.tenants
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(slug.to_owned(), tenant.clone());
        }
        Ok(tenant)
    }
}
