// What a write transaction keeps in memory until it settles. The rows the postback path inserts
// (conversions, their events, deliveries, log entries, spent budget) are written together with
// one multi-row statement per table; what it reads again and again (the locked offer, the
// tenant's credentials and delivery settings) is read once; and a group commit's clicks,
// conversions, events and counted members are read ahead for the whole batch (`prefetch`). A
// batch of postbacks then costs a handful of round trips instead of a dozen per postback.
//
// The rule that keeps it invisible: the storage methods of the postback path read through these
// buffers, and every other method settles first (writes the buffers and forgets what was read),
// so it sees the database exactly as if each write had gone out at once. Commit settles too. A
// conflict in the buffered rows surfaces at the settle instead of at the insert, and fails the
// whole transaction: the engine then writes each postback in a transaction of its own.

use std::collections::HashSet;

#[derive(Default)]
struct Pending {
    conversions: Vec<ConversionRecord>,
    events: Vec<ConversionEventRecord>,
    deliveries: Vec<DeliveryRecord>,
    log: Vec<PostbackLogEntry>,
    /// Budget spent per (tenant, offer), in money units.
    spent: std::collections::HashMap<(Uuid, Uuid), i64>,
    /// Offers locked in this transaction, with `spent` kept current.
    locked_offers: std::collections::HashMap<(Uuid, Uuid), OfferRecord>,
    credentials: std::collections::HashMap<Uuid, Vec<PostbackCredential>>,
    partner_postbacks: std::collections::HashMap<(Uuid, Uuid), Option<PartnerPostbackSettings>>,
    callback_settings: std::collections::HashMap<Uuid, Option<CallbackSettings>>,
    directory: std::collections::HashMap<(Uuid, DirectoryKind, Uuid), Option<DirectoryItem>>,
    /// Read ahead by `prefetch_clicks`, as stored; an entry goes when this transaction changes a
    /// stored row it depends on, and the next read asks the database again.
    clicks: std::collections::HashMap<(Uuid, Uuid), ClickRecord>,
    conversion_of_click: std::collections::HashMap<(Uuid, Uuid), Option<ConversionRecord>>,
    stored_events: std::collections::HashMap<(Uuid, Uuid), Vec<ConversionEventRecord>>,
    counted_members: Option<CountedMembers>,
}

/// The counted events (offer, member, click) of some (offer, member) pairs, as stored.
struct CountedMembers {
    tenant_id: Uuid,
    /// The pairs whose counted events are all in `counted`.
    pairs: HashSet<(Uuid, String)>,
    counted: Vec<(Uuid, String, Uuid)>,
}

/// What `prefetch`'s reads found besides the records it keeps in `Pending`: the clicks found,
/// their offers and partners, which the second read asks about, the tenant's credentials, and
/// the counted members, kept once both reads are done.
struct ReadAhead {
    clicks: Vec<String>,
    offers: std::collections::BTreeSet<Uuid>,
    partners: std::collections::BTreeSet<Uuid>,
    credentials: Vec<PostbackCredential>,
    members: CountedMembers,
}

impl Pending {
    fn is_clear(&self) -> bool {
        self.conversions.is_empty()
            && self.events.is_empty()
            && self.deliveries.is_empty()
            && self.log.is_empty()
            && self.spent.is_empty()
            && self.locked_offers.is_empty()
            && self.credentials.is_empty()
            && self.partner_postbacks.is_empty()
            && self.callback_settings.is_empty()
            && self.directory.is_empty()
            && self.clicks.is_empty()
            && self.conversion_of_click.is_empty()
            && self.stored_events.is_empty()
            && self.counted_members.is_none()
    }

    /// A stored conversion changed: what was read ahead about it is stale.
    fn forget_conversion(&mut self, conversion: &ConversionRecord) {
        self.conversion_of_click.remove(&(conversion.tenant_id, conversion.click_id));
    }

    /// A stored event changed: its conversion's events and the member counts are stale.
    fn forget_event(&mut self, event: &ConversionEventRecord) {
        self.stored_events.remove(&(event.tenant_id, event.conversion_id));
        self.counted_members = None;
    }
}

impl SqlTx {
    fn new(tx: DbTx) -> Self {
        SqlTx { tx, pending: Pending::default() }
    }

    /// Writes what is buffered (parents before children, as they were decided; the hot tables
    /// declare no foreign keys since migration 0008) and forgets what was read.
    async fn settle(&mut self) -> Result<()> {
        self.settle_statements().execute(&mut self.tx).await
    }

    /// The statements that write what is buffered; what was read is forgotten.
    fn settle_statements(&mut self) -> Statements {
        let mut statements = Statements::writes();
        if self.pending.is_clear() {
            return statements;
        }
        let pending = std::mem::take(&mut self.pending);
        write_conversions(&mut statements, pending.conversions);
        write_conversion_events(&mut statements, pending.events);
        write_deliveries(&mut statements, pending.deliveries);
        write_postback_log(&mut statements, pending.log);
        for ((tenant_id, offer_id), units) in pending.spent {
            statements.statement(
                &["UPDATE offers SET spent = spent + ", " WHERE tenant_id = ", " AND id = "],
                vec![units.into(), tenant_id.into(), offer_id.into()],
            );
        }
        statements
    }
}

use crate::{Batching, Prepared, Value};

/// Statements that go to the database together: a transaction's settle (`writes`), a batch's
/// read-ahead (`reads`), batched as the backend allows (`Batching`), so that a few round trips
/// serve many statements.
struct Statements {
    requests: Vec<Request>,
    batching: Batching,
    parts: usize,
}

enum Request {
    /// Built with its values, for sqlx to send.
    Built(sqlx::QueryBuilder<'static, Db>),
    /// Run once per row of values, straight on the connection (`Batching::Prepared`).
    Prepared(Prepared),
}

impl Statements {
    fn reads() -> Self {
        Statements { requests: Vec::new(), batching: READS, parts: 0 }
    }

    fn writes() -> Self {
        Statements { requests: Vec::new(), batching: WRITES, parts: 0 }
    }

    /// Starts the next statement with `sql`, to be continued by the caller.
    fn next(&mut self, sql: &str) -> &mut sqlx::QueryBuilder<'static, Db> {
        let part = self.parts;
        self.parts += 1;
        match (self.batching, self.requests.last_mut()) {
            (Batching::OneStatement, Some(Request::Built(request))) => {
                request.push(format!("), s{part} AS (")).push(sql);
            }
            (Batching::OneStatement, _) => {
                let mut request = sqlx::QueryBuilder::new("WITH s0 AS (");
                request.push(sql);
                self.requests.push(Request::Built(request));
            }
            _ => self.requests.push(Request::Built(sqlx::QueryBuilder::new(sql))),
        }
        match self.requests.last_mut() {
            Some(Request::Built(request)) => request,
            _ => unreachable!("a built request was just pushed"),
        }
    }

    /// The statement made of `parts` with `values` between them (`parts[i]` comes before
    /// `values[i]`; a last part may follow the last value).
    fn statement(&mut self, parts: &[&str], values: Vec<Value>) {
        if self.batching == Batching::Prepared {
            return self.requests.push(Request::Prepared(Prepared::statement(parts, values)));
        }
        let query = self.next(parts[0]);
        for (i, value) in values.into_iter().enumerate() {
            match value {
                Value::Text(text) => drop(query.push_bind(text)),
                Value::Int(number) => drop(query.push_bind(number)),
                Value::Bool(flag) => drop(query.push_bind(flag)),
                Value::List(list) => push_in_list(query, &list),
                Value::Array(list) => push_array(query, list),
            }
            query.push(parts.get(i + 1).copied().unwrap_or_default());
        }
    }

    /// `insert` (`INSERT INTO <table> (<columns>) `) of every row in `rows`.
    fn insert(&mut self, insert: &str, rows: impl IntoIterator<Item = Vec<Value>>) {
        push_rows(self, insert, rows);
    }

    /// The requests, each ready to build.
    fn finished(mut self) -> Vec<Request> {
        if let (Batching::OneStatement, Some(Request::Built(request))) =
            (self.batching, self.requests.last_mut())
        {
            request.push(") SELECT 1");
        }
        self.requests
    }

    async fn execute(self, tx: &mut DbTx) -> Result<()> {
        let mut prepared = Vec::new();
        for request in self.finished() {
            match request {
                Request::Prepared(statement) => prepared.push(statement),
                Request::Built(mut request) => {
                    run_prepared(tx, std::mem::take(&mut prepared)).await?;
                    request.build().execute(&mut **tx).await.map_err(map_error)?;
                }
            }
        }
        run_prepared(tx, prepared).await
    }

    /// The rows of every statement, in order, each as a `T`.
    async fn fetch_all<T: FromRow + Send>(self, tx: &mut DbTx) -> Result<Vec<T>> {
        let (mut found, mut prepared) = (Vec::new(), Vec::new());
        for request in self.finished() {
            match request {
                Request::Prepared(statement) => prepared.push(statement),
                Request::Built(mut request) => {
                    found.extend(query_prepared(tx, std::mem::take(&mut prepared)).await?);
                    for row in request.build().fetch_all(&mut **tx).await.map_err(map_error)? {
                        found.push(T::from_row(&row)?);
                    }
                }
            }
        }
        found.extend(query_prepared(tx, prepared).await?);
        Ok(found)
    }
}

impl SqlTx {
    /// Reads the clicks and the tenant's callback settings and postback credentials; then the
    /// clicks' partners' postback settings, locks the clicks' offers, and reads the clicks'
    /// conversions and events and their members' counted events, for the postback path to find
    /// in memory. The second read names the partners and offers the first one found, so each
    /// click is looked up once rather than once per statement that needs its offer or partner.
    /// The statements go in the order PostgreSQL needs (offers locked, in id order, before
    /// anything a decision depends on is read, so another batch's decisions on them are
    /// committed and visible); SQLite, whose single writer makes the locks moot, runs each read
    /// in one call on the writer (`Statements`). Each row says which statement it came from.
    async fn prefetch(&mut self, tenant_id: Uuid, click_ids: &[Uuid]) -> Result<()> {
        let tenant = uuid_text(tenant_id);
        let mut ids: Vec<String> = click_ids.iter().copied().map(uuid_text).collect();
        ids.sort_unstable();
        ids.dedup();
        let read_callback = !self.pending.callback_settings.contains_key(&tenant_id);
        let read_credentials = !self.pending.credentials.contains_key(&tenant_id);
        // Sized once for the batch: grown row by row, each map rehashed several times.
        self.pending.clicks.reserve(click_ids.len());
        self.pending.conversion_of_click.reserve(click_ids.len());
        for id in click_ids {
            self.pending.conversion_of_click.insert((tenant_id, *id), None);
        }
        let mut ahead = ReadAhead {
            clicks: Vec::new(),
            offers: Default::default(),
            partners: Default::default(),
            credentials: Vec::new(),
            members: CountedMembers { tenant_id, pairs: HashSet::new(), counted: Vec::new() },
        };
        let first = read_clicks(&tenant, &ids, read_callback, read_credentials);
        self.keep_read_ahead(tenant_id, &tenant, first, &mut ahead).await?;
        // What was asked and not found does not exist: known now, not asked again.
        self.pending.callback_settings.entry(tenant_id).or_insert(None);
        if read_credentials {
            // All of them, expired ones too: `postback_credentials` keeps the valid ones.
            self.pending.credentials.insert(tenant_id, std::mem::take(&mut ahead.credentials));
        }
        if !ahead.offers.is_empty() {
            let partners: Vec<String> = ahead.partners.iter().copied().map(uuid_text).collect();
            let offers: Vec<String> = ahead.offers.iter().copied().map(uuid_text).collect();
            let then = read_after_clicks(&tenant, &partners, &offers, &ahead);
            self.keep_read_ahead(tenant_id, &tenant, then, &mut ahead).await?;
        }
        for partner_id in &ahead.partners {
            self.pending.partner_postbacks.entry((tenant_id, *partner_id)).or_insert(None);
        }
        self.pending.counted_members = Some(ahead.members);
        Ok(())
    }

    /// Runs one read of `prefetch` and keeps what it found: records in the pending maps, the
    /// rest in `ahead`. Rows of another tenant are left out.
    async fn keep_read_ahead(
        &mut self,
        tenant_id: Uuid,
        tenant: &str,
        statements: Statements,
        ahead: &mut ReadAhead,
    ) -> Result<()> {
        for row in statements.fetch_all::<AheadRow>(&mut self.tx).await? {
            if row.tenant_id != tenant {
                continue;
            }
            match row.ahead {
                Ahead::Click(click) => {
                    ahead.clicks.push(uuid_text(click.id));
                    ahead.members.pairs.insert((click.offer_id, click.pub_member_id.clone()));
                    ahead.offers.insert(click.offer_id);
                    ahead.partners.extend(click.partner_id);
                    self.pending.clicks.insert((tenant_id, click.id), click);
                }
                Ahead::Offer(offer) => {
                    self.keep_locked_offer(tenant_id, *offer);
                }
                Ahead::Conversion(conversion) => {
                    let key = (tenant_id, conversion.click_id);
                    self.pending.stored_events.insert((tenant_id, conversion.id), Vec::new());
                    self.pending.conversion_of_click.insert(key, Some(conversion));
                }
                Ahead::Event(event) => {
                    let key = (tenant_id, event.conversion_id);
                    self.pending.stored_events.entry(key).or_default().push(event);
                }
                Ahead::Counted { offer_id, pub_member_id, click_id } => {
                    ahead.members.counted.push((offer_id, pub_member_id, click_id));
                }
                Ahead::PartnerPostbacks(settings) => {
                    let key = (tenant_id, settings.partner_id);
                    self.pending.partner_postbacks.entry(key).or_insert(Some(settings));
                }
                Ahead::Credential(credential) => ahead.credentials.push(credential),
                Ahead::Callback(settings) => {
                    self.pending.callback_settings.insert(tenant_id, Some(settings));
                }
            }
        }
        Ok(())
    }

    /// Keeps an offer read under lock as `lock_offer` answers it: with the budget this
    /// transaction has spent so far. An offer already kept stays as it is.
    fn keep_locked_offer(&mut self, tenant_id: Uuid, mut offer: OfferRecord) -> OfferRecord {
        let key = (tenant_id, offer.offer.id);
        if let Some(kept) = self.pending.locked_offers.get(&key) {
            return kept.clone();
        }
        if let Some(units) = self.pending.spent.get(&key) {
            offer.spent = offer.spent.saturating_add(gokart_domain::Money::from_units(*units));
        }
        self.pending.locked_offers.insert(key, offer.clone());
        offer
    }
}

/// A row of the read-ahead (`read_clicks`, `read_after_clicks`), by the statement (`part`) it
/// came from.
struct AheadRow {
    tenant_id: String,
    ahead: Ahead,
}

enum Ahead {
    Click(ClickRecord),
    Offer(Box<OfferRecord>),
    Conversion(ConversionRecord),
    Event(ConversionEventRecord),
    Counted { offer_id: Uuid, pub_member_id: String, click_id: Uuid },
    PartnerPostbacks(PartnerPostbackSettings),
    Credential(PostbackCredential),
    Callback(CallbackSettings),
}

impl FromRow for AheadRow {
    fn from_row(row: &impl RowLike) -> Result<Self> {
        let ahead = match col::<String>(row, "part")?.as_str() {
            "click" => Ahead::Click(click_from_row(row)?),
            "offer" => Ahead::Offer(Box::new(offer_from_row(row)?)),
            "conversion" => Ahead::Conversion(conversion_from_row(row)?),
            "event" => Ahead::Event(conversion_event_from_row(row)?),
            "counted" => Ahead::Counted {
                offer_id: parse_uuid(&col::<String>(row, "offer_id")?),
                pub_member_id: col(row, "pub_member_id")?,
                click_id: parse_uuid(&col::<String>(row, "click_id")?),
            },
            "partner_postbacks" => Ahead::PartnerPostbacks(partner_postbacks_from_row(row)?),
            "credential" => Ahead::Credential(credential_from_row(row)?),
            _ => Ahead::Callback(callback_settings_from_row(row)?),
        };
        Ok(AheadRow { tenant_id: col(row, "tenant_id")?, ahead })
    }
}

/// The first read of `prefetch`: the clicks (`ids`), each statement tagged with a `part`; with
/// `read_callback` and `read_credentials`, the tenant's callback settings and postback
/// credentials too. Settings come before the offers are locked (`read_after_clicks`): on
/// PostgreSQL everything after the lock waits for, and holds up, other batches of the same
/// offers.
/// Statements select by the unique ids alone and leave the tenant check to the caller: with
/// `tenant_id` in the statement, SQLite's planner may prefer the tenant's index and scan all of
/// its clicks.
fn read_clicks(
    tenant_id: &str,
    ids: &[String],
    read_callback: bool,
    read_credentials: bool,
) -> Statements {
    let mut statements = Statements::reads();
    let tenant = || Value::from(tenant_id);
    statements.statement(
        &["SELECT 'click' AS part, * FROM clicks WHERE id"],
        vec![Value::List(ids.to_vec())],
    );
    if read_callback {
        let sql = "SELECT 'callback' AS part, * FROM callback_settings WHERE tenant_id = ";
        statements.statement(&[sql], vec![tenant()]);
    }
    if read_credentials {
        statements.statement(
            &[
                "SELECT 'credential' AS part, * FROM postback_credentials WHERE tenant_id = ",
                " ORDER BY valid_until IS NOT NULL, created_at DESC",
            ],
            vec![tenant()],
        );
    }
    statements
}

/// The second read of `prefetch`, once the clicks are known: their partners' postback settings
/// (`partners`), their offers (`offers`, locked), then what `AFTER_LOCK_READS` reads of the
/// clicks the first read found and their (offer, member) pairs (`ahead`).
fn read_after_clicks(
    tenant_id: &str,
    partners: &[String],
    offers: &[String],
    ahead: &ReadAhead,
) -> Statements {
    let mut statements = Statements::reads();
    if !partners.is_empty() {
        statements.statement(
            &[
                "SELECT 'partner_postbacks' AS part, * FROM partner_postbacks WHERE tenant_id = ",
                " AND partner_id",
            ],
            vec![Value::from(tenant_id), Value::List(partners.to_vec())],
        );
    }
    statements.statement(
        &["SELECT 'offer' AS part, * FROM offers WHERE id", &format!(" ORDER BY id{FOR_UPDATE}")],
        vec![Value::List(offers.to_vec())],
    );
    // Each backend's own texts: the plans that find each click's rows differ, and so does
    // what a statement costs (see there).
    let (pair_offers, pair_members): (Vec<String>, Vec<String>) = ahead
        .members
        .pairs
        .iter()
        .map(|(offer_id, member)| (uuid_text(*offer_id), member.clone()))
        .unzip();
    for (parts, arrays) in AFTER_LOCK_READS {
        let values = arrays.iter().map(|array| {
            Value::Array(match array {
                BatchArray::Clicks => ahead.clicks.clone(),
                BatchArray::PairOffers => pair_offers.clone(),
                BatchArray::PairMembers => pair_members.clone(),
            })
        });
        statements.statement(parts, values.collect());
    }
    statements
}

/// What a value of an `AFTER_LOCK_READS` statement lists, bound as one `Value::Array`: the
/// clicks the batch's first read found, or the offers or the members of their distinct
/// (offer, member) pairs, the two in one order.
#[derive(Clone, Copy)]
#[allow(dead_code)] // SQLite's statements list the clicks alone.
enum BatchArray {
    Clicks,
    PairOffers,
    PairMembers,
}

/// `<head> IN (<values>)<tail>`, the list bound as one value (`push_in_list`), keeping the
/// tenant's rows. The ids are unique across tenants; leaving `tenant_id` out of the SQL keeps
/// SQLite's planner on the id's index (with it, it may prefer the tenant's index and scan all of
/// its rows).
async fn select_in(
    tx: &mut DbTx,
    head: &str,
    values: &[String],
    tail: &str,
    tenant_id: &str,
) -> Result<Vec<DbRow>> {
    let mut query = sqlx::QueryBuilder::<Db>::new(head);
    push_in_list(&mut query, values);
    query.push(tail);
    let mut rows = Vec::new();
    for row in query.build().fetch_all(&mut **tx).await.map_err(map_error)? {
        if col::<String>(&row, "tenant_id")? == tenant_id {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The INSERT (`sql`: the table and its columns) of `rows`, each row's values in column order.
/// A list is one value on both backends (one array per column on PostgreSQL; on SQLite chunks
/// of `Prepared::CHUNK_ROWS` rows, the rest one at a time), so no number of rows meets a bind
/// limit.
fn write_rows<T>(
    statements: &mut Statements,
    sql: &str,
    rows: impl IntoIterator<Item = T, IntoIter: ExactSizeIterator>,
    values: impl FnMut(T) -> Vec<Value>,
) {
    let rows = rows.into_iter();
    if rows.len() > 0 {
        statements.insert(sql, rows.map(values));
    }
}

fn write_conversions(statements: &mut Statements, rows: Vec<ConversionRecord>) {
    let sql = "INSERT INTO conversions (id, tenant_id, offer_id, click_id, partner_id,
                   pub_member_id, status, rejection_reason, created_at, updated_at) ";
    write_rows(statements, sql, rows, |conversion| {
        vec![
            conversion.id.into(),
            conversion.tenant_id.into(),
            conversion.offer_id.into(),
            conversion.click_id.into(),
            conversion.partner_id.into(),
            conversion.pub_member_id.into(),
            conversion.status.as_str().into(),
            conversion.rejection_reason.into(),
            conversion.created_at.into(),
            conversion.updated_at.into(),
        ]
    });
}

fn write_conversion_events(statements: &mut Statements, rows: Vec<ConversionEventRecord>) {
    let sql = "INSERT INTO conversion_events (id, tenant_id, conversion_id, offer_id, click_id,
                   partner_id, pub_member_id, event_id, event_name, sequence_number, dedup_key,
                   status, rejection_reason, counted, revenue, reward, amount, currency,
                   transaction_id, params, completed_at, pending_until, created_at, updated_at) ";
    write_rows(statements, sql, rows, |event| {
        vec![
            event.id.into(),
            event.tenant_id.into(),
            event.conversion_id.into(),
            event.offer_id.into(),
            event.click_id.into(),
            event.partner_id.into(),
            event.pub_member_id.into(),
            event.event_id.into(),
            event.event_name.into(),
            event.sequence_number.map(i64::from).into(),
            event.dedup_key.into(),
            event.status.as_str().into(),
            event.rejection_reason.into(),
            event.counted.into(),
            event.revenue.units().into(),
            event.reward.units().into(),
            event.amount.map(|amount| amount.units()).into(),
            event.currency.into(),
            event.transaction_id.into(),
            event.params.text().into(),
            event.completed_at.into(),
            event.pending_until.into(),
            event.created_at.into(),
            event.updated_at.into(),
        ]
    });
}

fn write_deliveries(statements: &mut Statements, rows: Vec<DeliveryRecord>) {
    let sql = "INSERT INTO deliveries (id, tenant_id, kind, conversion_id, conversion_event_id,
                   transaction_id, url, method, headers, body, status, failure_reason,
                   attempt_count, next_attempt_at, locked_until, lease_owner, first_attempt_at,
                   created_at, updated_at) ";
    write_rows(statements, sql, rows, |d| {
        vec![
            d.id.into(),
            d.tenant_id.into(),
            d.kind.as_str().into(),
            d.conversion_id.into(),
            d.conversion_event_id.into(),
            d.transaction_id.into(),
            d.url.into(),
            d.method.into(),
            serde_json::to_string(&d.headers).unwrap_or_else(|_| "[]".into()).into(),
            d.body.into(),
            d.status.as_str().into(),
            d.failure_reason.into(),
            i64::from(d.attempt_count).into(),
            d.next_attempt_at.into(),
            d.locked_until.into(),
            d.lease_owner.into(),
            d.first_attempt_at.into(),
            d.created_at.into(),
            d.updated_at.into(),
        ]
    });
}

fn write_postback_log(statements: &mut Statements, rows: Vec<PostbackLogEntry>) {
    let sql = "INSERT INTO postback_log (id, tenant_id, received_at, method, params, http_status,
                   status, rejection_reason, click_id, conversion_id, conversion_event_id) ";
    write_rows(statements, sql, rows, |entry| {
        vec![
            entry.id.into(),
            entry.tenant_id.into(),
            entry.received_at.into(),
            entry.method.into(),
            entry.params.text().into(),
            i64::from(entry.http_status).into(),
            entry.status.into(),
            entry.rejection_reason.into(),
            entry.click_id.into(),
            entry.conversion_id.into(),
            entry.conversion_event_id.into(),
        ]
    });
}
