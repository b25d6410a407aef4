//! Offers: create, update, pause, resume, clone, share, change history, the partner view.
//!
//! A shared offer belongs to one partner for good: it cannot be shared again nor unshared (PRODUCT.md
//! §5). From the moment it is shared, every change to it is written to its history, which the
//! tenant and the partner can both read.

use std::collections::BTreeSet;

use gokart_domain::{
    offer::{Offer, OfferEvent, OfferSpec, OfferStatus},
    validate::validate_offer,
    FieldError,
};
use gokart_storage::{
    DirectoryKind, HistoryEntry, OfferFilter, OfferRecord, Page, PageRequest, TenantRecord, Tx,
};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use gokart_domain::Money;

use crate::{Engine, EngineError, EngineResult};

/// The history field written when an offer is shared.
pub const SHARED_WITH_FIELD: &str = "sharedWith";

/// The answer to a share.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedOffer {
    pub offer_id: Uuid,
    pub partner_id: Uuid,
    pub shared_at: String,
    pub tracking_link: String,
}

impl Engine {
    /// Saves a new, unshared, Active offer.
    pub async fn create_offer(
        &self,
        tenant: &TenantRecord,
        mut spec: OfferSpec,
    ) -> EngineResult<Offer> {
        let mut tx = self.store.write().await?;
        check_spec(&mut *tx, tenant, &mut spec).await?;
        let now = self.now();
        let offer = Offer {
            // Time-ordered, so offers made at the same instant still list newest first.
            id: Uuid::now_v7(),
            status: OfferStatus::Active,
            partner_id: None,
            shared_at: None,
            created_at: now,
            updated_at: now,
            spec,
        };
        tx.insert_offer(tenant.id, &OfferRecord { offer: offer.clone(), spent: Money::ZERO })
            .await?;
        tx.commit().await?;
        Ok(offer)
    }

    pub async fn get_offer(&self, tenant: &TenantRecord, id: Uuid) -> EngineResult<Offer> {
        let mut tx = self.store.read().await?;
        let record = tx.offer(tenant.id, id).await?.ok_or(EngineError::NotFound)?;
        Ok(record.offer)
    }

    /// The tenant's offers, newest first.
    pub async fn list_offers(
        &self,
        tenant: &TenantRecord,
        filter: &OfferFilter,
        page: PageRequest,
    ) -> EngineResult<Page<Offer>> {
        let mut tx = self.store.read().await?;
        let page = tx.list_offers(tenant.id, filter, page).await?;
        Ok(page.map(|record| record.offer))
    }

    /// Replaces the offer's spec (a full update). Status and sharing stay as they are.
    pub async fn update_offer(
        &self,
        tenant: &TenantRecord,
        id: Uuid,
        mut spec: OfferSpec,
        actor: &str,
    ) -> EngineResult<Offer> {
        let mut tx = self.store.write().await?;
        check_spec(&mut *tx, tenant, &mut spec).await?;
        let mut record = tx.lock_offer(tenant.id, id).await?.ok_or(EngineError::NotFound)?;
        let before = record.offer.clone();
        record.offer.spec = spec;
        record.offer.updated_at = self.now();
        self.save_with_history(&mut *tx, tenant, &before, &record, actor).await?;
        tx.commit().await?;
        self.click_offers.forget(tenant.id, id);
        Ok(record.offer)
    }

    /// Pauses (status `Pending`) or resumes (`Active`) an offer; doing it twice changes nothing.
    pub async fn set_offer_paused(
        &self,
        tenant: &TenantRecord,
        id: Uuid,
        paused: bool,
        actor: &str,
    ) -> EngineResult<Offer> {
        let status = if paused { OfferStatus::Pending } else { OfferStatus::Active };
        let mut tx = self.store.write().await?;
        let mut record = tx.lock_offer(tenant.id, id).await?.ok_or(EngineError::NotFound)?;
        if record.offer.status == status {
            return Ok(record.offer);
        }
        let before = record.offer.clone();
        record.offer.status = status;
        record.offer.updated_at = self.now();
        self.save_with_history(&mut *tx, tenant, &before, &record, actor).await?;
        tx.commit().await?;
        self.click_offers.forget(tenant.id, id);
        Ok(record.offer)
    }

    /// A new, unshared, Active offer with the source's settings and events, or with `spec` when
    /// the caller customised it (the API merges its overrides onto [`Offer::spec`] first).
    pub async fn clone_offer(
        &self,
        tenant: &TenantRecord,
        id: Uuid,
        spec: Option<OfferSpec>,
    ) -> EngineResult<Offer> {
        let source = self.get_offer(tenant, id).await?;
        self.create_offer(tenant, spec.unwrap_or(source.spec)).await
    }

    /// Binds an unshared offer to one partner of the tenant's back office, for good.
    pub async fn share_offer(
        &self,
        tenant: &TenantRecord,
        id: Uuid,
        partner_id: Uuid,
        actor: &str,
    ) -> EngineResult<SharedOffer> {
        let mut tx = self.store.write().await?;
        let mut record = tx.lock_offer(tenant.id, id).await?.ok_or(EngineError::NotFound)?;
        if record.offer.partner_id.is_some() {
            return Err(EngineError::Conflict(
                "this offer is already shared and cannot be shared again; clone it and share the clone instead"
                    .into(),
            ));
        }
        if tx.directory_item(tenant.id, DirectoryKind::Partners, partner_id).await?.is_none() {
            return Err(EngineError::invalid(
                "partnerId",
                "no partner with this id in the back office",
            ));
        }
        let now = self.now();
        record.offer.partner_id = Some(partner_id);
        record.offer.shared_at = Some(now);
        record.offer.updated_at = now;
        if !tx.update_offer(tenant.id, &record).await? {
            return Err(EngineError::NotFound);
        }
        let entry = self.history_entry(
            tenant,
            id,
            actor,
            SHARED_WITH_FIELD.into(),
            Value::Null,
            partner_id.to_string().into(),
        );
        tx.insert_history(&[entry]).await?;
        tx.commit().await?;
        self.click_offers.forget(tenant.id, id);
        Ok(SharedOffer {
            offer_id: id,
            partner_id,
            shared_at: gokart_domain::time::iso(now),
            tracking_link: self.urls.tracking_link(&tenant.slug, id),
        })
    }

    /// Sharing is for good: unsharing is always refused (404 for an offer that does not exist).
    pub async fn unshare_offer(&self, tenant: &TenantRecord, id: Uuid) -> EngineResult<()> {
        let offer = self.get_offer(tenant, id).await?;
        let message = if offer.partner_id.is_some() {
            "a shared offer cannot be unshared; pause it or clone it"
        } else {
            "this offer is not shared, so there is nothing to unshare"
        };
        Err(EngineError::Conflict(message.into()))
    }

    /// The offer's change history, newest first.
    pub async fn offer_history(
        &self,
        tenant: &TenantRecord,
        id: Uuid,
        page: PageRequest,
    ) -> EngineResult<Page<HistoryEntry>> {
        let mut tx = self.store.read().await?;
        tx.offer(tenant.id, id).await?.ok_or(EngineError::NotFound)?;
        Ok(tx.offer_history(tenant.id, id, page).await?)
    }

    /// The offers shared with one partner, newest first.
    pub async fn partner_offers(
        &self,
        tenant: &TenantRecord,
        partner_id: Uuid,
        page: PageRequest,
    ) -> EngineResult<Page<Offer>> {
        let filter = OfferFilter { partner_id: Some(partner_id), ..OfferFilter::default() };
        self.list_offers(tenant, &filter, page).await
    }

    /// One offer shared with `partner_id`; any other offer is not found.
    pub async fn partner_offer(
        &self,
        tenant: &TenantRecord,
        partner_id: Uuid,
        id: Uuid,
    ) -> EngineResult<Offer> {
        let offer = self.get_offer(tenant, id).await?;
        if offer.partner_id != Some(partner_id) {
            return Err(EngineError::NotFound);
        }
        Ok(offer)
    }

    pub async fn partner_offer_history(
        &self,
        tenant: &TenantRecord,
        partner_id: Uuid,
        id: Uuid,
        page: PageRequest,
    ) -> EngineResult<Page<HistoryEntry>> {
        self.partner_offer(tenant, partner_id, id).await?;
        self.offer_history(tenant, id, page).await
    }

    /// The tenant's view of an offer: [`Offer::to_json`] plus its absolute `trackingLink`.
    pub fn offer_json(&self, tenant: &TenantRecord, offer: &Offer) -> Value {
        let mut value = offer.to_json();
        value["trackingLink"] = self.urls.tracking_link(&tenant.slug, offer.id).into();
        value
    }

    /// The partner's view: what it promotes and earns. Never the advertiser's MMP link, budget
    /// or spend, nor anything about other partners.
    pub fn partner_offer_json(&self, tenant: &TenantRecord, offer: &Offer) -> Value {
        let spec = &offer.spec;
        let mut value = json!({
            "id": offer.id,
            "name": spec.name,
            "status": offer.status.as_str(),
            "offerType": spec.offer_type,
            "conversionType": spec.conversion_type,
            "headline": spec.headline,
            "shortDescription": spec.short_description,
            "keyPoints": spec.key_points,
            "offerDetails": spec.offer_details,
            "termsAndDisclaimers": spec.terms_and_disclaimers,
            "categories": spec.categories,
            "creatives": spec.creatives,
            "platform": spec.platform,
            "targeting": spec.targeting,
            "launchDate": spec.launch_date,
            "expiryDate": spec.expiry_date,
            "epc": spec.epc,
            "allowRepeatConversions": spec.allow_repeat_conversions,
            "sharedAt": offer.shared_at.map(gokart_domain::time::iso),
            "trackingLink": self.urls.tracking_link(&tenant.slug, offer.id),
            "events": spec.events.iter().map(partner_event_json).collect::<Vec<_>>(),
        });
        if spec.offer_type == gokart_domain::offer::OfferType::SingleEvent {
            let terms = json!({
                "payout": spec.revenue,
                "reward": spec.reward,
                "payoutPercent": spec.revenue_percent,
                "rewardPercent": spec.reward_percent,
                "pendingTime": spec.pending_time,
                "dailyCap": spec.daily_cap,
                "weeklyCap": spec.weekly_cap,
                "monthlyCap": spec.monthly_cap,
                "allTimeCap": spec.all_time_cap,
            });
            if let (Some(object), Value::Object(terms)) = (value.as_object_mut(), terms) {
                object.extend(terms);
            }
        }
        value
    }

    /// Saves `record` and, when the offer is shared, one history entry per changed field.
    async fn save_with_history(
        &self,
        tx: &mut dyn Tx,
        tenant: &TenantRecord,
        before: &Offer,
        record: &OfferRecord,
        actor: &str,
    ) -> EngineResult<()> {
        if !tx.update_offer(tenant.id, record).await? {
            return Err(EngineError::NotFound);
        }
        if before.partner_id.is_none() {
            return Ok(());
        }
        let entries: Vec<HistoryEntry> = changes(before, &record.offer)
            .into_iter()
            .map(|(field, old, new)| self.history_entry(tenant, before.id, actor, field, old, new))
            .collect();
        tx.insert_history(&entries).await?;
        Ok(())
    }

    fn history_entry(
        &self,
        tenant: &TenantRecord,
        offer_id: Uuid,
        actor: &str,
        field: String,
        old_value: Value,
        new_value: Value,
    ) -> HistoryEntry {
        HistoryEntry {
            // Time-ordered ids keep entries written at the same instant in their order.
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            offer_id,
            at: self.now(),
            actor: actor.to_owned(),
            field,
            old_value,
            new_value,
        }
    }
}

fn partner_event_json(event: &OfferEvent) -> Value {
    json!({
        "eventId": event.event_id,
        "name": event.name,
        "sequenceNumber": event.sequence_number,
        "displayOrder": event.display_order,
        "pendingTime": event.pending_time,
        "payout": event.revenue,
        "reward": event.reward,
        "payoutPercent": event.revenue_percent,
        "rewardPercent": event.reward_percent,
        "dailyCap": event.daily_cap,
        "weeklyCap": event.weekly_cap,
        "monthlyCap": event.monthly_cap,
        "allTimeCap": event.all_time_cap,
        "allowRepetitions": event.allow_repetitions,
    })
}

/// The domain rules, then what only the store knows: the advertiser is in the back office.
async fn check_spec(
    tx: &mut dyn Tx,
    tenant: &TenantRecord,
    spec: &mut OfferSpec,
) -> EngineResult<()> {
    let mut problems = validate_offer(spec).err().unwrap_or_default();
    if let Some(advertiser) = spec.advertiser_id {
        if tx.directory_item(tenant.id, DirectoryKind::Advertisers, advertiser).await?.is_none() {
            problems.push(FieldError::new(
                "advertiserId",
                "no advertiser with this id in the back office",
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Invalid(problems))
    }
}

/// `(field, old, new)` for every changed top-level field of the offer, with events compared one
/// by one by their `eventId` (`events[Install].revenue`).
pub fn changes(before: &Offer, after: &Offer) -> Vec<(String, Value, Value)> {
    let mut found = Vec::new();
    if before.status != after.status {
        found.push(("status".into(), before.status.as_str().into(), after.status.as_str().into()));
    }
    let old = spec_object(&before.spec);
    let new = spec_object(&after.spec);
    for key in old.keys().chain(new.keys()).collect::<BTreeSet<_>>() {
        if key == "events" {
            continue;
        }
        let (old_value, new_value) = (field(&old, key), field(&new, key));
        if old_value != new_value {
            found.push((key.clone(), old_value, new_value));
        }
    }
    found.extend(event_changes(&before.spec.events, &after.spec.events));
    found
}

fn event_changes(before: &[OfferEvent], after: &[OfferEvent]) -> Vec<(String, Value, Value)> {
    let by_id = |events: &[OfferEvent]| -> Map<String, Value> {
        events
            .iter()
            .map(|event| (event.event_id.clone(), serde_json::to_value(event).unwrap_or_default()))
            .collect()
    };
    let (old, new) = (by_id(before), by_id(after));
    let mut found = Vec::new();
    for id in old.keys().chain(new.keys()).collect::<BTreeSet<_>>() {
        match (old.get(id), new.get(id)) {
            (Some(Value::Object(old_event)), Some(Value::Object(new_event))) => {
                for key in old_event.keys().chain(new_event.keys()).collect::<BTreeSet<_>>() {
                    let (old_value, new_value) = (field(old_event, key), field(new_event, key));
                    if old_value != new_value {
                        found.push((format!("events[{id}].{key}"), old_value, new_value));
                    }
                }
            }
            (old_event, new_event) => {
                let (old_value, new_value) = (
                    old_event.cloned().unwrap_or_default(),
                    new_event.cloned().unwrap_or_default(),
                );
                if old_value != new_value {
                    found.push((format!("events[{id}]"), old_value, new_value));
                }
            }
        }
    }
    found
}

fn spec_object(spec: &OfferSpec) -> Map<String, Value> {
    match serde_json::to_value(spec) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    }
}

fn field(object: &Map<String, Value>, key: &str) -> Value {
    object.get(key).cloned().unwrap_or_default()
}

/// JSON Merge Patch (RFC 7396): objects merge key by key, `null` removes a key (back to its
/// default), anything else replaces. How a clone's overrides apply to the source offer.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": 1, "t": {"x": 1, "y": 2}, "list": [1, 2]});
        merge_patch(&mut target, &json!({"a": null, "t": {"y": 3}, "list": [9]}));
        assert_eq!(target, json!({"t": {"x": 1, "y": 3}, "list": [9]}));
    }
}
