//! What a conversion status change triggers: partner postbacks and the tenant callback, enqueued
//! in the same transaction as the decision, so a committed decision always has its deliveries.

use gokart_domain::offer::Offer;
use gokart_storage::{
    ClickRecord, ConversionEventRecord, ConversionRecord, ConversionStatus, TenantRecord, Tx,
};

use crate::{Engine, EngineResult};

/// A conversion event that was just created or changed status.
pub struct StatusChange<'a> {
    pub tenant: &'a TenantRecord,
    pub offer: &'a Offer,
    pub click: &'a ClickRecord,
    pub conversion: &'a ConversionRecord,
    /// The event with its new status.
    pub event: &'a ConversionEventRecord,
    /// `None` when the event is new.
    pub previous: Option<ConversionStatus>,
}

impl Engine {
    /// Enqueues the deliveries a status change triggers, inside the caller's transaction.
    pub async fn enqueue_deliveries(
        &self,
        _tx: &mut dyn Tx,
        _change: &StatusChange<'_>,
    ) -> EngineResult<()> {
        Ok(())
    }
}
