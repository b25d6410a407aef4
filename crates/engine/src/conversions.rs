//! The conversion engine (PRODUCT.md §8): deciding conversion events, pending approval, and
//! status overrides. Every decision happens inside one write transaction that first locks the
//! offer, so budgets and caps are decided one at a time and never overspent.

use std::{collections::HashMap, future::Future, sync::Arc};

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};
use gokart_domain::{
    offer::{ConversionType, Offer, OfferEvent, OfferType},
    params::PostbackParams,
    Money,
};
use gokart_storage::{
    ClickRecord, ConversionEventRecord, ConversionRecord, ConversionStatus, CountedScope,
    OfferRecord, TenantRecord, Tx,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{outbox::StatusChange, Engine, EngineError, EngineResult};

/// Rejection and hold reasons gokart writes itself (MMP fraud reasons are passed through).
pub mod reasons {
    pub const UNKNOWN_EVENT: &str = "UnknownEvent";
    pub const ALREADY_COMPLETED: &str = "AlreadyCompleted";
    pub const AWAITING_PREVIOUS_EVENT: &str = "AwaitingPreviousEvent";
    pub const PREVIOUS_EVENT_REJECTED: &str = "PreviousEventRejected";
    pub const CAP_REACHED: &str = "CapReached";
    pub const BUDGET_EXHAUSTED: &str = "BudgetExhausted";
}

/// How often the server looks for Pending events whose pending time is over.
pub const APPROVAL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// What a postback for a known click came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `Success`, `Pending`, `Rejected` or `Duplicate`.
    pub status: &'static str,
    pub rejection_reason: Option<String>,
    pub conversion_id: Uuid,
    pub conversion_event_id: Uuid,
    /// Whether the decision spent budget of an offer that has one (clicks check it).
    pub budget_spent: bool,
}

/// The terms of the offer event a postback matched (the offer itself for SingleEvent offers).
struct EventTerms {
    event_id: String,
    name: String,
    sequence: Option<u32>,
    pending_time: u32,
    revenue: Money,
    reward: Money,
    /// Daily, weekly, monthly, all time.
    caps: [Option<u32>; 4],
    /// Caps count this event only (MultiEvent) or every event of the offer (SingleEvent).
    per_event_caps: bool,
    repeatable: bool,
}

impl EventTerms {
    fn single(offer: &Offer, amount: Option<Money>) -> EventTerms {
        let spec = &offer.spec;
        let (revenue, reward) = payouts(
            spec.conversion_type,
            amount,
            [spec.revenue, spec.reward, spec.revenue_percent, spec.reward_percent],
        );
        EventTerms {
            event_id: String::new(),
            name: spec.name.clone(),
            sequence: None,
            pending_time: spec.pending_time,
            revenue,
            reward,
            caps: [spec.daily_cap, spec.weekly_cap, spec.monthly_cap, spec.all_time_cap],
            per_event_caps: false,
            repeatable: false,
        }
    }

    fn multi(offer: &Offer, event: &OfferEvent, amount: Option<Money>) -> EventTerms {
        let (revenue, reward) = payouts(
            offer.spec.conversion_type,
            amount,
            [event.revenue, event.reward, event.revenue_percent, event.reward_percent],
        );
        EventTerms {
            event_id: event.event_id.clone(),
            name: event.name.clone(),
            sequence: event.sequence_number,
            pending_time: event.pending_time,
            revenue,
            reward,
            caps: [event.daily_cap, event.weekly_cap, event.monthly_cap, event.all_time_cap],
            per_event_caps: true,
            repeatable: event.allow_repetitions,
        }
    }
}

/// Revenue and reward: fixed amounts, or for RevShare `cnv_amount` × percent / 100.
fn payouts(
    kind: ConversionType,
    amount: Option<Money>,
    [revenue, reward, revenue_percent, reward_percent]: [Option<Money>; 4],
) -> (Money, Money) {
    match kind {
        ConversionType::FlatRate => (revenue.unwrap_or(Money::ZERO), reward.unwrap_or(Money::ZERO)),
        ConversionType::RevShare => {
            let amount = amount.unwrap_or(Money::ZERO);
            let share = |percent: Option<Money>| amount.percent(percent.unwrap_or(Money::ZERO));
            (share(revenue_percent), share(reward_percent))
        }
    }
}

/// The offer event `cnv_event_id` names: exact match, else the only case-insensitive match.
pub fn match_event<'a>(offer: &'a Offer, event_id: Option<&str>) -> Option<&'a OfferEvent> {
    let event_id = event_id?;
    offer.event(event_id).or_else(|| {
        let mut matches =
            offer.spec.events.iter().filter(|event| event.event_id.eq_ignore_ascii_case(event_id));
        match (matches.next(), matches.next()) {
            (Some(event), None) => Some(event),
            _ => None,
        }
    })
}

/// What identifies a repeat of a repeatable event: the MMP's conversion id, or else a
/// fingerprint of the request's parameters (so only an identical retry is a duplicate).
fn dedup_key(params: &PostbackParams) -> String {
    if let Some(id) = params.cnv_conversion_id() {
        return format!("id:{}", storable(id));
    }
    let mut hash = Sha256::new();
    for (key, value) in params.iter().filter(|(key, _)| *key != "signature") {
        hash.update(key.as_bytes());
        hash.update([0]);
        hash.update(value.as_bytes());
        hash.update([0]);
    }
    format!("fp:{}", hex::encode(hash.finalize()))
}

/// Text from outside as it can be stored: PostgreSQL's TEXT refuses NUL characters.
pub(crate) fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', ""))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

pub(crate) fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_time(NaiveTime::MIN).and_utc()
}

/// The starts of the UTC day, ISO week, month, and all time, in the order of `EventTerms::caps`.
fn period_starts(at: DateTime<Utc>) -> [Option<DateTime<Utc>>; 4] {
    let day = day_start(at);
    let week = day - Duration::days(i64::from(at.weekday().num_days_from_monday()));
    let month = day - Duration::days(i64::from(at.day0()));
    [Some(day), Some(week), Some(month), None]
}

/// A conversion's status follows its events: Success if any is Success, Rejected if all are,
/// else Pending.
fn conversion_status(events: &[ConversionEventRecord]) -> (ConversionStatus, Option<String>) {
    if events.iter().any(|e| e.status == ConversionStatus::Success) {
        return (ConversionStatus::Success, None);
    }
    if !events.is_empty() && events.iter().all(|e| e.status == ConversionStatus::Rejected) {
        let reason =
            events.iter().max_by_key(|e| e.updated_at).and_then(|e| e.rejection_reason.clone());
        return (ConversionStatus::Rejected, reason);
    }
    (ConversionStatus::Pending, None)
}

fn is_held(event: &ConversionEventRecord) -> bool {
    event.status == ConversionStatus::Pending
        && !event.counted
        && event.rejection_reason.as_deref() == Some(reasons::AWAITING_PREVIOUS_EVENT)
}

/// Where the events before sequence `k` of one click stand.
enum Predecessors {
    AllCounted,
    /// Some predecessor has only rejected events: it can no longer count.
    Rejected,
    Waiting,
}

fn predecessors(events: &[ConversionEventRecord], k: u32) -> Predecessors {
    let mut waiting = false;
    for j in 1..k {
        let of_j: Vec<_> = events.iter().filter(|e| e.sequence_number == Some(j)).collect();
        if of_j.iter().any(|e| e.counted) {
            continue;
        }
        if !of_j.is_empty() && of_j.iter().all(|e| e.status == ConversionStatus::Rejected) {
            return Predecessors::Rejected;
        }
        waiting = true;
    }
    if waiting {
        Predecessors::Waiting
    } else {
        Predecessors::AllCounted
    }
}

/// The outcome the rules give an event.
enum Verdict {
    Success,
    Pending(Option<DateTime<Utc>>),
    Held,
    Rejected(String),
}

/// One conversion being decided: the locked offer, the click, and the click's events.
struct Case<'a> {
    tenant: &'a TenantRecord,
    offer: OfferRecord,
    click: &'a ClickRecord,
    conversion: ConversionRecord,
    /// `false` until the conversion row is written.
    conversion_stored: bool,
    events: Vec<ConversionEventRecord>,
    /// Indexes of events created or changed, with their status before (`None` = new).
    changes: Vec<(usize, Option<ConversionStatus>)>,
    /// Whether budget of an offer that has one was spent.
    budget_spent: bool,
}

impl Engine {
    /// Decides one postback for a known click inside `tx` (the caller logs and commits).
    pub async fn decide_postback(
        &self,
        tx: &mut dyn Tx,
        tenant: &TenantRecord,
        click: &ClickRecord,
        params: &PostbackParams,
    ) -> EngineResult<Decision> {
        let mut case = self.open_case(tx, tenant, click).await?;
        let amount = params.cnv_amount();
        let offer = &case.offer.offer;
        let offer_id = offer.id;
        let terms = match offer.spec.offer_type {
            OfferType::SingleEvent => Some(EventTerms::single(offer, amount)),
            OfferType::MultiEvent => match_event(offer, params.cnv_event_id())
                .map(|e| EventTerms::multi(offer, e, amount)),
        };
        let event_id = match &terms {
            Some(terms) => terms.event_id.clone(),
            None => storable(params.cnv_event_id().unwrap_or_default()).into_owned(),
        };
        let key = if terms.as_ref().is_some_and(|t| t.repeatable) {
            dedup_key(params)
        } else {
            String::new()
        };
        if let Some(existing) =
            case.events.iter().find(|e| e.event_id == event_id && e.dedup_key == key)
        {
            return Ok(Decision {
                status: "Duplicate",
                rejection_reason: None,
                conversion_id: case.conversion.id,
                conversion_event_id: existing.id,
                budget_spent: false,
            });
        }

        let now = self.now();
        let verdict = match &terms {
            _ if params.fraud_rejection().is_some() => {
                Verdict::Rejected(params.fraud_rejection().unwrap_or_default())
            }
            None => Verdict::Rejected(reasons::UNKNOWN_EVENT.into()),
            Some(terms) => self.judge_arrival(tx, &mut case, terms, now).await?,
        };
        let terms = terms.unwrap_or(EventTerms {
            event_id: event_id.clone(),
            name: String::new(),
            sequence: None,
            pending_time: 0,
            revenue: Money::ZERO,
            reward: Money::ZERO,
            caps: [None; 4],
            per_event_caps: true,
            repeatable: false,
        });
        let mut record = ConversionEventRecord {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            conversion_id: case.conversion.id,
            offer_id,
            click_id: click.id,
            partner_id: click.partner_id,
            pub_member_id: click.pub_member_id.clone(),
            event_id,
            event_name: terms.name,
            sequence_number: terms.sequence,
            dedup_key: key,
            status: ConversionStatus::Pending,
            rejection_reason: None,
            counted: false,
            revenue: terms.revenue,
            reward: terms.reward,
            amount,
            currency: params.cnv_currency().map(|currency| storable(currency).into_owned()),
            transaction_id: Uuid::new_v4(),
            params: params.raw(),
            completed_at: now,
            pending_until: None,
            created_at: now,
            updated_at: now,
        };
        apply_verdict(&mut record, verdict);
        if !case.conversion_stored {
            tx.insert_conversion(&case.conversion).await?;
            case.conversion_stored = true;
        }
        tx.insert_conversion_event(&record).await?;
        if record.counted {
            self.spend(tx, &mut case, record.revenue).await?;
        }
        case.events.push(record);
        let index = case.events.len() - 1;
        case.changes.push((index, None));
        self.settle_held(tx, &mut case, now).await?;
        let event = &case.events[index];
        let decision = Decision {
            status: event.status.as_str(),
            rejection_reason: event.rejection_reason.clone(),
            conversion_id: case.conversion.id,
            conversion_event_id: event.id,
            budget_spent: case.budget_spent,
        };
        self.close_case(tx, case, now).await?;
        Ok(decision)
    }

    /// Locks the offer, then reads the click's conversion and events.
    async fn open_case<'a>(
        &self,
        tx: &mut dyn Tx,
        tenant: &'a TenantRecord,
        click: &'a ClickRecord,
    ) -> EngineResult<Case<'a>> {
        let offer = tx.lock_offer(tenant.id, click.offer_id).await?.ok_or(EngineError::NotFound)?;
        let existing = tx.conversion_for_click(tenant.id, click.id).await?;
        let events = match &existing {
            Some(conversion) => tx.conversion_events(tenant.id, conversion.id).await?,
            None => Vec::new(),
        };
        let now = self.now();
        let conversion_stored = existing.is_some();
        let conversion = existing.unwrap_or_else(|| ConversionRecord {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            offer_id: click.offer_id,
            click_id: click.id,
            partner_id: click.partner_id,
            pub_member_id: click.pub_member_id.clone(),
            status: ConversionStatus::Pending,
            rejection_reason: None,
            created_at: now,
            updated_at: now,
        });
        Ok(Case {
            tenant,
            offer,
            click,
            conversion,
            conversion_stored,
            events,
            changes: Vec::new(),
            budget_spent: false,
        })
    }

    /// Writes the conversion's status and enqueues the deliveries of every change.
    async fn close_case(
        &self,
        tx: &mut dyn Tx,
        mut case: Case<'_>,
        now: DateTime<Utc>,
    ) -> EngineResult<()> {
        let (status, reason) = conversion_status(&case.events);
        if status != case.conversion.status || reason != case.conversion.rejection_reason {
            case.conversion.status = status;
            case.conversion.rejection_reason = reason;
            case.conversion.updated_at = now;
            tx.update_conversion(&case.conversion).await?;
        }
        for (index, previous) in &case.changes {
            let change = StatusChange {
                tenant: case.tenant,
                offer: &case.offer.offer,
                click: case.click,
                conversion: &case.conversion,
                event: &case.events[*index],
                previous: *previous,
            };
            self.enqueue_deliveries(tx, &change).await?;
        }
        Ok(())
    }

    /// The rules for an event that arrives for a known offer event: repeat member, sequence,
    /// then caps and budget.
    async fn judge_arrival(
        &self,
        tx: &mut dyn Tx,
        case: &mut Case<'_>,
        terms: &EventTerms,
        now: DateTime<Utc>,
    ) -> EngineResult<Verdict> {
        let offer = &case.offer.offer;
        if !offer.spec.allow_repeat_conversions
            && tx
                .member_counted_elsewhere(
                    case.tenant.id,
                    offer.id,
                    &case.click.pub_member_id,
                    case.click.id,
                )
                .await?
        {
            return Ok(Verdict::Rejected(reasons::ALREADY_COMPLETED.into()));
        }
        if let Some(k) = terms.sequence.filter(|k| *k > 1) {
            match predecessors(&case.events, k) {
                Predecessors::AllCounted => {}
                Predecessors::Rejected => {
                    return Ok(Verdict::Rejected(reasons::PREVIOUS_EVENT_REJECTED.into()))
                }
                Predecessors::Waiting => return Ok(Verdict::Held),
            }
        }
        self.admit(tx, case, terms, now).await
    }

    /// Caps, budget, then pending time and manual rewarding.
    async fn admit(
        &self,
        tx: &mut dyn Tx,
        case: &Case<'_>,
        terms: &EventTerms,
        completed_at: DateTime<Utc>,
    ) -> EngineResult<Verdict> {
        let offer = &case.offer.offer;
        let tenant_id = case.tenant.id;
        let event_id = terms.per_event_caps.then_some(terms.event_id.as_str());
        for (cap, since) in terms.caps.iter().zip(period_starts(completed_at)) {
            let Some(cap) = cap else { continue };
            let scope = CountedScope { offer_id: offer.id, event_id, since };
            if tx.count_counted_events(tenant_id, scope).await? >= u64::from(*cap) {
                return Ok(Verdict::Rejected(reasons::CAP_REACHED.into()));
            }
        }
        let budget = &offer.spec.budget;
        if let Some(total) = budget.total {
            if case.offer.spent.saturating_add(terms.revenue) > total {
                return Ok(Verdict::Rejected(reasons::BUDGET_EXHAUSTED.into()));
            }
        }
        if let Some(daily) = budget.daily {
            let since = Some(day_start(completed_at));
            let scope = CountedScope { offer_id: offer.id, event_id: None, since };
            if tx.counted_revenue(tenant_id, scope).await?.saturating_add(terms.revenue) > daily {
                return Ok(Verdict::Rejected(reasons::BUDGET_EXHAUSTED.into()));
            }
        }
        Ok(if offer.spec.manual_rewarding {
            Verdict::Pending(None)
        } else if terms.pending_time > 0 {
            Verdict::Pending(Some(completed_at + Duration::days(i64::from(terms.pending_time))))
        } else {
            Verdict::Success
        })
    }

    /// Keeps `offers.spent` (and the locked copy the rules read) in step. An offer with a
    /// budget leaves the click path's cache now, and again once the caller has committed.
    async fn spend(&self, tx: &mut dyn Tx, case: &mut Case<'_>, delta: Money) -> EngineResult<()> {
        if delta != Money::ZERO {
            let offer = &case.offer.offer;
            tx.add_offer_spent(case.tenant.id, offer.id, delta).await?;
            case.offer.spent = case.offer.spent.saturating_add(delta);
            if offer.spec.budget.total.is_some() || offer.spec.budget.daily.is_some() {
                case.budget_spent = true;
                self.click_offers.forget(case.tenant.id, offer.id);
            }
        }
        Ok(())
    }

    /// Decides held events whose predecessors have now counted (or can no longer count), in
    /// sequence order, until nothing changes: one decision can release the next.
    async fn settle_held(
        &self,
        tx: &mut dyn Tx,
        case: &mut Case<'_>,
        now: DateTime<Utc>,
    ) -> EngineResult<()> {
        loop {
            let mut held: Vec<usize> =
                (0..case.events.len()).filter(|i| is_held(&case.events[*i])).collect();
            held.sort_by_key(|i| case.events[*i].sequence_number);
            let mut changed = false;
            for index in held {
                let k = case.events[index].sequence_number.unwrap_or(0);
                let verdict = match predecessors(&case.events, k) {
                    Predecessors::Waiting => continue,
                    Predecessors::Rejected => {
                        Verdict::Rejected(reasons::PREVIOUS_EVENT_REJECTED.into())
                    }
                    Predecessors::AllCounted => {
                        let terms = self.terms_of(case, &case.events[index]);
                        let completed_at = case.events[index].completed_at;
                        self.admit(tx, case, &terms, completed_at).await?
                    }
                };
                let event = &mut case.events[index];
                apply_verdict(event, verdict);
                event.updated_at = now;
                tx.update_conversion_event(event).await?;
                let revenue = event.revenue;
                if event.counted {
                    self.spend(tx, case, revenue).await?;
                }
                case.changes.push((index, Some(ConversionStatus::Pending)));
                changed = true;
            }
            if !changed {
                return Ok(());
            }
        }
    }

    /// The terms a stored event was decided under (its payouts as recorded).
    fn terms_of(&self, case: &Case<'_>, event: &ConversionEventRecord) -> EventTerms {
        let offer = &case.offer.offer;
        let mut terms = match offer.event(&event.event_id) {
            Some(offer_event) => EventTerms::multi(offer, offer_event, event.amount),
            None => EventTerms::single(offer, event.amount),
        };
        terms.revenue = event.revenue;
        terms.reward = event.reward;
        terms
    }

    /// Turns every Pending event whose pending time is over into Success; answers how many.
    pub async fn approve_due(&self, now: DateTime<Utc>) -> EngineResult<usize> {
        let due = {
            let mut tx = self.store.read().await?;
            tx.due_pending_events(now, 1000).await?
        };
        let mut approved = 0;
        for event in due {
            let mut tx = self.store.write().await?;
            let Some(tenant) = tx.tenant_by_id(event.tenant_id).await? else { continue };
            let Some(click) = tx.click(tenant.id, event.click_id).await? else { continue };
            let mut case = self.open_case(tx.as_mut(), &tenant, &click).await?;
            let Some(index) = case.events.iter().position(|e| e.id == event.id) else { continue };
            let current = &mut case.events[index];
            let due = current.status == ConversionStatus::Pending
                && current.pending_until.is_some_and(|until| until <= now);
            if !due {
                continue;
            }
            current.status = ConversionStatus::Success;
            current.pending_until = None;
            current.updated_at = now;
            tx.update_conversion_event(current).await?;
            case.changes.push((index, Some(ConversionStatus::Pending)));
            self.close_case(tx.as_mut(), case, now).await?;
            tx.commit().await?;
            approved += 1;
        }
        Ok(approved)
    }

    /// Runs [`Engine::approve_due`] every [`APPROVAL_INTERVAL`] until `shutdown` resolves.
    pub async fn run_approvals(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + APPROVAL_INTERVAL,
            APPROVAL_INTERVAL,
        );
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {
                    if let Err(error) = self.approve_due(self.now()).await {
                        tracing::warn!(%error, "pending approvals failed; will retry");
                    }
                }
            }
        }
    }

    /// Sets the status of one event (`Some`) or of every event of a conversion (`None`) by hand.
    /// Overrides bypass caps and budget (a person decided) but keep `spent` in step, release or
    /// reject held successors, and trigger deliveries like any status change.
    pub async fn override_status(
        &self,
        tenant: &TenantRecord,
        conversion_id: Uuid,
        event_id: Option<Uuid>,
        status: ConversionStatus,
        reason: Option<String>,
    ) -> EngineResult<ConversionDetail> {
        if status == ConversionStatus::Pending {
            return Err(EngineError::invalid("status", "must be Success or Rejected"));
        }
        let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
        if status == ConversionStatus::Rejected && reason.is_none() {
            return Err(EngineError::invalid("reason", "a reason is required to reject"));
        }
        let now = self.now();
        let mut tx = self.store.write().await?;
        let conversion =
            tx.conversion(tenant.id, conversion_id).await?.ok_or(EngineError::NotFound)?;
        let click = tx.click(tenant.id, conversion.click_id).await?.ok_or(EngineError::NotFound)?;
        let mut case = self.open_case(tx.as_mut(), tenant, &click).await?;
        let targets: Vec<usize> = match event_id {
            Some(id) => {
                vec![case.events.iter().position(|e| e.id == id).ok_or(EngineError::NotFound)?]
            }
            None => (0..case.events.len()).collect(),
        };
        for index in targets {
            let event = &mut case.events[index];
            let previous = event.status;
            let was_counted = event.counted;
            let new_reason =
                if status == ConversionStatus::Rejected { reason.clone() } else { None };
            if previous == status && event.rejection_reason == new_reason {
                continue;
            }
            event.status = status;
            event.rejection_reason = new_reason;
            event.counted = status == ConversionStatus::Success;
            event.pending_until = None;
            event.updated_at = now;
            tx.update_conversion_event(event).await?;
            let revenue = event.revenue;
            match (was_counted, status == ConversionStatus::Success) {
                (false, true) => self.spend(tx.as_mut(), &mut case, revenue).await?,
                (true, false) => {
                    let refund = Money::from_units(revenue.units().saturating_neg());
                    self.spend(tx.as_mut(), &mut case, refund).await?;
                }
                _ => {}
            }
            if previous != status {
                case.changes.push((index, Some(previous)));
            }
        }
        self.settle_held(tx.as_mut(), &mut case, now).await?;
        self.close_case(tx.as_mut(), case, now).await?;
        tx.commit().await?;
        self.conversion_detail(tenant, conversion_id).await
    }
}

fn apply_verdict(event: &mut ConversionEventRecord, verdict: Verdict) {
    let (status, reason, counted, until) = match verdict {
        Verdict::Success => (ConversionStatus::Success, None, true, None),
        Verdict::Pending(until) => (ConversionStatus::Pending, None, true, until),
        Verdict::Held => (
            ConversionStatus::Pending,
            Some(reasons::AWAITING_PREVIOUS_EVENT.to_owned()),
            false,
            None,
        ),
        Verdict::Rejected(reason) => (ConversionStatus::Rejected, Some(reason), false, None),
    };
    event.status = status;
    event.rejection_reason = reason;
    event.counted = counted;
    event.pending_until = until;
}

/// One conversion with its events, as the conversions API shows it.
#[derive(Debug, Clone)]
pub struct ConversionDetail {
    pub conversion: ConversionRecord,
    pub offer_name: String,
    pub events: Vec<ConversionEventRecord>,
}

/// What the conversions list asks for; `from`/`to` are required and at most 3 months apart.
#[derive(Debug, Clone, Default)]
pub struct ConversionQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub offer_id: Option<Uuid>,
    pub status: Option<ConversionStatus>,
    pub search: Option<String>,
    /// See [`gokart_storage::ConversionFilter::count_limit`].
    pub count_limit: Option<u64>,
}

impl ConversionDetail {
    pub fn to_json(&self, with_events: bool) -> serde_json::Value {
        let c = &self.conversion;
        let counted = self.events.iter().filter(|e| e.status != ConversionStatus::Rejected);
        let (revenue, reward) = counted.fold((Money::ZERO, Money::ZERO), |(revenue, reward), e| {
            (revenue.saturating_add(e.revenue), reward.saturating_add(e.reward))
        });
        let mut value = serde_json::json!({
            "id": c.id,
            "conversionId": c.id,
            "clickId": c.click_id,
            "offerId": c.offer_id,
            "offerName": self.offer_name,
            "partnerId": c.partner_id,
            "pubMemberId": c.pub_member_id,
            "status": c.status.as_str(),
            "rejectionReason": c.rejection_reason,
            "revenue": revenue,
            "reward": reward,
            "userCompletedAt": iso(c.created_at),
            "createdAt": iso(c.created_at),
            "modifiedAt": iso(c.updated_at),
        });
        if with_events {
            value["conversionEvents"] = self.events.iter().map(event_json).collect();
        }
        value
    }
}

fn iso(at: DateTime<Utc>) -> String {
    gokart_domain::time::iso(at)
}

pub fn event_json(event: &ConversionEventRecord) -> serde_json::Value {
    serde_json::json!({
        "id": event.id,
        "conversionEventId": event.id,
        "conversionId": event.conversion_id,
        "eventId": event.event_id,
        "eventName": event.event_name,
        "sequenceNumber": event.sequence_number,
        "status": event.status.as_str(),
        "rejectionReason": event.rejection_reason,
        "revenue": event.revenue,
        "reward": event.reward,
        "cnvAmount": event.amount,
        "currency": event.currency,
        "transactionId": event.transaction_id,
        "userCompletedAt": iso(event.completed_at),
        "pendingUntil": event.pending_until.map(iso),
        "createdAt": iso(event.created_at),
        "modifiedAt": iso(event.updated_at),
        "params": event.params,
    })
}

impl Engine {
    pub async fn conversion_detail(
        &self,
        tenant: &TenantRecord,
        conversion_id: Uuid,
    ) -> EngineResult<ConversionDetail> {
        let mut tx = self.store.read().await?;
        let conversion =
            tx.conversion(tenant.id, conversion_id).await?.ok_or(EngineError::NotFound)?;
        detail_of(tx.as_mut(), tenant, conversion).await
    }

    pub async fn list_conversions(
        &self,
        tenant: &TenantRecord,
        query: ConversionQuery,
        page: gokart_storage::PageRequest,
    ) -> EngineResult<gokart_storage::Page<ConversionDetail>> {
        let filter = conversion_filter(query)?;
        let mut tx = self.store.read().await?;
        let found = tx.list_conversions(tenant.id, &filter, page).await?;
        // The page's events in one read, and each offer's name once.
        let ids: Vec<Uuid> = found.items.iter().map(|conversion| conversion.id).collect();
        let mut events: HashMap<Uuid, Vec<ConversionEventRecord>> = HashMap::new();
        for event in tx.events_of_conversions(tenant.id, &ids).await? {
            events.entry(event.conversion_id).or_default().push(event);
        }
        let mut offer_names: HashMap<Uuid, String> = HashMap::new();
        let mut items = Vec::with_capacity(found.items.len());
        for conversion in found.items.iter().cloned() {
            let offer_name = match offer_names.get(&conversion.offer_id) {
                Some(name) => name.clone(),
                None => {
                    let name = offer_name(tx.as_mut(), tenant, conversion.offer_id).await?;
                    offer_names.insert(conversion.offer_id, name.clone());
                    name
                }
            };
            let events = events.remove(&conversion.id).unwrap_or_default();
            items.push(ConversionDetail { conversion, offer_name, events });
        }
        Ok(gokart_storage::Page { items, request: found.request, total: found.total })
    }
}

async fn offer_name(
    tx: &mut dyn Tx,
    tenant: &TenantRecord,
    offer_id: Uuid,
) -> EngineResult<String> {
    let offer = tx.offer(tenant.id, offer_id).await?;
    Ok(offer.map(|offer| offer.offer.spec.name).unwrap_or_default())
}

async fn detail_of(
    tx: &mut dyn Tx,
    tenant: &TenantRecord,
    conversion: ConversionRecord,
) -> EngineResult<ConversionDetail> {
    let events = tx.conversion_events(tenant.id, conversion.id).await?;
    let offer_name = offer_name(tx, tenant, conversion.offer_id).await?;
    Ok(ConversionDetail { conversion, offer_name, events })
}

/// The list's range is required and spans at most 3 months.
fn conversion_filter(query: ConversionQuery) -> EngineResult<gokart_storage::ConversionFilter> {
    let mut problems = Vec::new();
    if query.from.is_none() {
        problems.push(gokart_domain::FieldError::new("user_completed_at_from", "is required"));
    }
    if query.to.is_none() {
        problems.push(gokart_domain::FieldError::new("user_completed_at_to", "is required"));
    }
    let (Some(from), Some(to)) = (query.from, query.to) else {
        return Err(EngineError::Invalid(problems));
    };
    if to < from {
        return Err(EngineError::invalid(
            "user_completed_at_to",
            "must not be before user_completed_at_from",
        ));
    }
    let limit = from.checked_add_months(chrono::Months::new(3)).unwrap_or(from);
    if to > limit {
        return Err(EngineError::invalid(
            "user_completed_at_to",
            "the range may span at most 3 months",
        ));
    }
    Ok(gokart_storage::ConversionFilter {
        from,
        to,
        offer_id: query.offer_id,
        status: query.status,
        search: query.search,
        count_limit: query.count_limit,
    })
}
