//! Storage traits of gokart. The engine and the HTTP layer see only these; the SQLite and
//! PostgreSQL implementations live in `gokart-storage-sql`.
//!
//! Work happens in transactions: [`Store::read`] opens one for reading, [`Store::write`] one that
//! may write. Every method of the area traits takes the tenant id where the data belongs to a
//! tenant: tenant isolation is part of every query, not an afterthought of the caller.

mod delivery;
mod records;
mod tracking;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use delivery::*;
pub use records::*;
pub use tracking::*;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique constraint refused the write (a taken slug, a duplicate conversion event, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not do what was asked (connection lost, disk full, busy, ...).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    /// Runs the embedded migrations.
    async fn migrate(&self) -> Result<()>;
    /// A transaction for reading.
    async fn read(&self) -> Result<Box<dyn Tx>>;
    /// A transaction that may write. On SQLite writers are serialised; on PostgreSQL, rows that
    /// decide money (an offer under a conversion) are locked explicitly (`lock_offer`).
    async fn write(&self) -> Result<Box<dyn Tx>>;
    /// Stores clicks atomically, outside any transaction (the click path's group commit): on
    /// return they are committed. Either all of them are stored or, on error, none.
    async fn insert_clicks(&self, clicks: &[&ClickRecord]) -> Result<()>;
    /// This store as a runtime of its own uses it (the group-commit writer's): where the
    /// database is reached over sockets, the returned store opens up to `connections` of its
    /// own there, so their answers wake that runtime's tasks without waiting their turn among
    /// another runtime's. Call it inside the runtime that will use the result.
    fn on_this_runtime(self: std::sync::Arc<Self>, connections: u32) -> std::sync::Arc<dyn Store>;
}

/// One transaction. Dropping it without `commit` rolls it back.
#[async_trait]
pub trait Tx: TenantTx + CatalogTx + TrackingTx + DeliveryTx + Send {
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// Tenants, credentials, users and sessions.
#[async_trait]
pub trait TenantTx: Send {
    async fn insert_tenant(&mut self, tenant: &TenantRecord) -> Result<()>;
    async fn tenant_by_slug(&mut self, slug: &str) -> Result<Option<TenantRecord>>;
    async fn tenant_by_id(&mut self, id: Uuid) -> Result<Option<TenantRecord>>;

    async fn insert_api_token(&mut self, token: &ApiTokenRecord) -> Result<()>;
    /// Looks a token up by its SHA-256 hash (hex). The caller compares in constant time.
    async fn api_token(&mut self, token_hash: &str) -> Result<Option<ApiTokenRecord>>;

    async fn insert_postback_credential(&mut self, credential: &PostbackCredential) -> Result<()>;
    /// The tenant's credentials still valid at `now`: the current one first, then those in grace.
    async fn postback_credentials(
        &mut self,
        tenant_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<PostbackCredential>>;
    /// Ends the grace of every current credential at `valid_until` (rotation).
    async fn retire_postback_credentials(
        &mut self,
        tenant_id: Uuid,
        valid_until: DateTime<Utc>,
    ) -> Result<()>;

    async fn insert_user(&mut self, user: &UserRecord) -> Result<()>;
    async fn user_by_email(&mut self, tenant_id: Uuid, email: &str) -> Result<Option<UserRecord>>;
    async fn user_by_id(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<UserRecord>>;

    async fn insert_session(&mut self, session: &SessionRecord) -> Result<()>;
    async fn session(&mut self, token_hash: &str) -> Result<Option<SessionRecord>>;
    async fn delete_session(&mut self, token_hash: &str) -> Result<()>;
}

/// Back office directory items, offers and their change history.
#[async_trait]
pub trait CatalogTx: Send {
    async fn insert_directory_item(&mut self, item: &DirectoryItem) -> Result<()>;
    async fn update_directory_item(&mut self, item: &DirectoryItem) -> Result<bool>;
    async fn directory_item(
        &mut self,
        tenant_id: Uuid,
        kind: DirectoryKind,
        id: Uuid,
    ) -> Result<Option<DirectoryItem>>;
    async fn list_directory_items(
        &mut self,
        tenant_id: Uuid,
        kind: DirectoryKind,
        page: PageRequest,
    ) -> Result<Page<DirectoryItem>>;

    async fn insert_offer(&mut self, tenant_id: Uuid, offer: &OfferRecord) -> Result<()>;
    /// Replaces status, sharing and spec; `false` when the offer is not the tenant's.
    async fn update_offer(&mut self, tenant_id: Uuid, offer: &OfferRecord) -> Result<bool>;
    async fn offer(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<OfferRecord>>;
    /// Reads the offer and locks it for the rest of the transaction (PostgreSQL `FOR UPDATE`;
    /// SQLite's single writer already serialises), so budget and caps are decided one at a time.
    async fn lock_offer(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<OfferRecord>>;
    async fn list_offers(
        &mut self,
        tenant_id: Uuid,
        filter: &OfferFilter,
        page: PageRequest,
    ) -> Result<Page<OfferRecord>>;

    async fn insert_history(&mut self, entries: &[HistoryEntry]) -> Result<()>;
    async fn offer_history(
        &mut self,
        tenant_id: Uuid,
        offer_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<HistoryEntry>>;
}
