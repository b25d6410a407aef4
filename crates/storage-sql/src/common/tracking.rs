// Clicks, conversions, conversion events and the postback log.

use gokart_domain::json::JsonObject;

fn optional_uuid(row: &impl RowLike, name: &str) -> Result<Option<Uuid>> {
    Ok(col::<Option<String>>(row, name)?.map(|id| parse_uuid(&id)))
}

fn status_of(row: &impl RowLike) -> Result<ConversionStatus> {
    let text: String = col(row, "status")?;
    Ok(ConversionStatus::parse(&text).unwrap_or(ConversionStatus::Pending))
}

fn click_from_row(row: &impl RowLike) -> Result<ClickRecord> {
    Ok(ClickRecord {
        id: parse_uuid(&col::<String>(row, "id")?),
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        offer_id: parse_uuid(&col::<String>(row, "offer_id")?),
        partner_id: optional_uuid(row, "partner_id")?,
        pub_member_id: col(row, "pub_member_id")?,
        pub_click_id: col(row, "pub_click_id")?,
        pub_params: JsonObject::from_text(col(row, "pub_params")?),
        ip: col(row, "ip")?,
        user_agent: col(row, "user_agent")?,
        created_at: at(col(row, "created_at")?),
    })
}

fn conversion_from_row(row: &impl RowLike) -> Result<ConversionRecord> {
    Ok(ConversionRecord {
        id: parse_uuid(&col::<String>(row, "id")?),
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        offer_id: parse_uuid(&col::<String>(row, "offer_id")?),
        click_id: parse_uuid(&col::<String>(row, "click_id")?),
        partner_id: optional_uuid(row, "partner_id")?,
        pub_member_id: col(row, "pub_member_id")?,
        status: status_of(row)?,
        rejection_reason: col(row, "rejection_reason")?,
        created_at: at(col(row, "created_at")?),
        updated_at: at(col(row, "updated_at")?),
    })
}

fn conversion_event_from_row(row: &impl RowLike) -> Result<ConversionEventRecord> {
    use gokart_domain::Money;
    Ok(ConversionEventRecord {
        id: parse_uuid(&col::<String>(row, "id")?),
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        conversion_id: parse_uuid(&col::<String>(row, "conversion_id")?),
        offer_id: parse_uuid(&col::<String>(row, "offer_id")?),
        click_id: parse_uuid(&col::<String>(row, "click_id")?),
        partner_id: optional_uuid(row, "partner_id")?,
        pub_member_id: col(row, "pub_member_id")?,
        event_id: col(row, "event_id")?,
        event_name: col(row, "event_name")?,
        sequence_number: col::<Option<i64>>(row, "sequence_number")?
            .and_then(|n| u32::try_from(n).ok()),
        dedup_key: col(row, "dedup_key")?,
        status: status_of(row)?,
        rejection_reason: col(row, "rejection_reason")?,
        counted: col(row, "counted")?,
        revenue: Money::from_units(col(row, "revenue")?),
        reward: Money::from_units(col(row, "reward")?),
        amount: col::<Option<i64>>(row, "amount")?.map(Money::from_units),
        currency: col(row, "currency")?,
        transaction_id: parse_uuid(&col::<String>(row, "transaction_id")?),
        params: JsonObject::from_text(col(row, "params")?),
        completed_at: at(col(row, "completed_at")?),
        pending_until: col::<Option<i64>>(row, "pending_until")?.map(at),
        created_at: at(col(row, "created_at")?),
        updated_at: at(col(row, "updated_at")?),
    })
}

fn postback_log_from_row(row: &impl RowLike) -> Result<PostbackLogEntry> {
    Ok(PostbackLogEntry {
        id: parse_uuid(&col::<String>(row, "id")?),
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        received_at: at(col(row, "received_at")?),
        method: col(row, "method")?,
        params: JsonObject::from_text(col(row, "params")?),
        http_status: u16::try_from(col::<i64>(row, "http_status")?).unwrap_or(0),
        status: col(row, "status")?,
        rejection_reason: col(row, "rejection_reason")?,
        click_id: col(row, "click_id")?,
        conversion_id: optional_uuid(row, "conversion_id")?,
        conversion_event_id: optional_uuid(row, "conversion_event_id")?,
    })
}

/// The WHERE clause and its text values for the counted events of `scope`.
fn counted_condition(tenant_id: Uuid, scope: &CountedScope<'_>) -> (String, Vec<String>, i64) {
    let mut condition =
        "tenant_id = $1 AND offer_id = $2 AND counted = $3 AND completed_at >= $4".to_owned();
    let mut values = vec![tenant_id.to_string(), scope.offer_id.to_string()];
    if let Some(event_id) = scope.event_id {
        condition.push_str(" AND event_id = $5");
        values.push(event_id.to_owned());
    }
    (condition, values, scope.since.map_or(i64::MIN, micros))
}


const CLICK_INSERT: &str = "INSERT INTO clicks (id, tenant_id, offer_id, partner_id, pub_member_id,
                   pub_click_id, pub_params, ip, user_agent, created_at) ";

fn click_values(click: &ClickRecord) -> Vec<Value> {
    vec![
        click.id.into(),
        click.tenant_id.into(),
        click.offer_id.into(),
        click.partner_id.into(),
        click.pub_member_id.clone().into(),
        click.pub_click_id.clone().into(),
        click.pub_params.text().into(),
        click.ip.clone().into(),
        click.user_agent.clone().into(),
        click.created_at.into(),
    ]
}

fn write_clicks(statements: &mut Statements, clicks: &[&ClickRecord]) {
    write_rows(statements, CLICK_INSERT, clicks.iter().copied(), click_values);
}

/// A conversions query: the tenant, the range, then the filters' values.
fn conversion_query<'q>(
    sql: &'q str,
    values: &'q [String],
    from: i64,
    to: i64,
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>> {
    let mut query = sqlx::query(sql).bind(&values[0]).bind(from).bind(to);
    for value in &values[1..] {
        query = query.bind(value);
    }
    query
}

#[async_trait]
impl TrackingTx for SqlTx {
    async fn insert_clicks(&mut self, clicks: &[&ClickRecord]) -> Result<()> {
        let mut statements = Statements::writes();
        write_clicks(&mut statements, clicks);
        statements.execute(&mut self.tx).await
    }

    async fn click(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<ClickRecord>> {
        if let Some(click) = self.pending.clicks.get(&(tenant_id, id)) {
            return Ok(Some(click.clone()));
        }
        let row = sqlx::query("SELECT * FROM clicks WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(click_from_row).transpose()
    }

    async fn prefetch_clicks(&mut self, tenant_id: Uuid, click_ids: &[Uuid]) -> Result<()> {
        self.prefetch(tenant_id, click_ids).await
    }

    async fn insert_conversion(&mut self, conversion: &ConversionRecord) -> Result<()> {
        self.pending.conversions.push(conversion.clone());
        Ok(())
    }

    async fn update_conversion(&mut self, conversion: &ConversionRecord) -> Result<()> {
        if let Some(row) = self.pending.conversions.iter_mut().find(|c| c.id == conversion.id) {
            *row = conversion.clone();
            return Ok(());
        }
        self.pending.forget_conversion(conversion);
        sqlx::query(
            "UPDATE conversions SET status = $3, rejection_reason = $4, updated_at = $5
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(conversion.tenant_id.to_string())
        .bind(conversion.id.to_string())
        .bind(conversion.status.as_str())
        .bind(&conversion.rejection_reason)
        .bind(micros(conversion.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn conversion(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<ConversionRecord>> {
        self.settle().await?;
        let row = sqlx::query("SELECT * FROM conversions WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(conversion_from_row).transpose()
    }

    async fn conversion_for_click(
        &mut self,
        tenant_id: Uuid,
        click_id: Uuid,
    ) -> Result<Option<ConversionRecord>> {
        let mut buffered = self.pending.conversions.iter();
        if let Some(found) = buffered.find(|c| c.tenant_id == tenant_id && c.click_id == click_id) {
            return Ok(Some(found.clone()));
        }
        if let Some(stored) = self.pending.conversion_of_click.get(&(tenant_id, click_id)) {
            return Ok(stored.clone());
        }
        let row = sqlx::query("SELECT * FROM conversions WHERE tenant_id = $1 AND click_id = $2")
            .bind(tenant_id.to_string())
            .bind(click_id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(conversion_from_row).transpose()
    }

    async fn list_conversions(
        &mut self,
        tenant_id: Uuid,
        filter: &ConversionFilter,
        page: PageRequest,
    ) -> Result<Page<ConversionRecord>> {
        self.settle().await?;
        let mut conditions =
            vec!["tenant_id = $1".to_owned(), "created_at >= $2".into(), "created_at <= $3".into()];
        // $1 is the tenant, $2 and $3 the range, then the filters' values in order.
        let mut values = vec![tenant_id.to_string()];
        let next = |values: &mut Vec<String>, value: String| {
            values.push(value);
            format!("${}", values.len() + 2)
        };
        if let Some(offer_id) = filter.offer_id {
            let p = next(&mut values, offer_id.to_string());
            conditions.push(format!("offer_id = {p}"));
        }
        if let Some(status) = filter.status {
            let p = next(&mut values, status.as_str().to_owned());
            conditions.push(format!("status = {p}"));
        }
        if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            let like = next(&mut values, like_pattern(search));
            let exact = next(&mut values, search.to_lowercase());
            conditions.push(format!(
                "(LOWER(pub_member_id) LIKE {like} ESCAPE '\\' OR click_id = {exact})"
            ));
        }
        let condition = conditions.join(" AND ");
        let (from, to) = (micros(filter.from), micros(filter.to));
        let bind_all = |sql| conversion_query(sql, &values, from, to);
        // The dashboard caps the count: counting a million rows takes longer than its whole page
        // may (issue 5). Whether a next page exists stays exact. docs/decisions/dashboard.md.
        let count_sql = match filter.count_limit {
            Some(limit) => format!(
                "SELECT COUNT(*) AS n FROM
                   (SELECT 1 FROM conversions WHERE {condition} LIMIT {}) AS capped",
                page.offset().saturating_add(i64::try_from(limit).unwrap_or(i64::MAX / 2)) + 1
            ),
            None => format!("SELECT COUNT(*) AS n FROM conversions WHERE {condition}"),
        };
        let total: i64 =
            col(&bind_all(&count_sql).fetch_one(&mut *self.tx).await.map_err(map_error)?, "n")?;
        // The page's ids come from the index alone (skipped rows are never read), then its rows.
        let list_sql = format!(
            "SELECT * FROM conversions WHERE id IN
               (SELECT id FROM conversions WHERE {condition}
                ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {})
             ORDER BY created_at DESC, id DESC",
            page.size,
            page.offset()
        );
        let rows = bind_all(&list_sql).fetch_all(&mut *self.tx).await.map_err(map_error)?;
        let items = rows.iter().map(conversion_from_row).collect::<Result<_>>()?;
        Ok(page_of(items, page, total))
    }

    async fn insert_conversion_event(&mut self, event: &ConversionEventRecord) -> Result<()> {
        self.pending.events.push(event.clone());
        Ok(())
    }

    async fn update_conversion_event(&mut self, event: &ConversionEventRecord) -> Result<()> {
        if let Some(row) = self.pending.events.iter_mut().find(|e| e.id == event.id) {
            *row = event.clone();
            return Ok(());
        }
        self.pending.forget_event(event);
        sqlx::query(
            "UPDATE conversion_events SET status = $3, rejection_reason = $4, counted = $5,
                    pending_until = $6, updated_at = $7
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(event.tenant_id.to_string())
        .bind(event.id.to_string())
        .bind(event.status.as_str())
        .bind(&event.rejection_reason)
        .bind(event.counted)
        .bind(event.pending_until.map(micros))
        .bind(micros(event.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn conversion_event(
        &mut self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<ConversionEventRecord>> {
        self.settle().await?;
        let row = sqlx::query("SELECT * FROM conversion_events WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(conversion_event_from_row).transpose()
    }

    async fn conversion_events(
        &mut self,
        tenant_id: Uuid,
        conversion_id: Uuid,
    ) -> Result<Vec<ConversionEventRecord>> {
        // Stored rows are current (updates of stored rows go out at once); buffered ones are
        // newer than any of them.
        let mut events = if self.pending.conversions.iter().any(|c| c.id == conversion_id) {
            Vec::new()
        } else if let Some(stored) = self.pending.stored_events.get(&(tenant_id, conversion_id)) {
            stored.clone()
        } else {
            self.load_conversion_events(tenant_id, conversion_id).await?
        };
        events.extend(
            self.pending
                .events
                .iter()
                .filter(|e| e.tenant_id == tenant_id && e.conversion_id == conversion_id)
                .cloned(),
        );
        Ok(events)
    }

    async fn events_of_conversions(
        &mut self,
        tenant_id: Uuid,
        conversion_ids: &[Uuid],
    ) -> Result<Vec<ConversionEventRecord>> {
        self.settle().await?;
        let ids: Vec<String> = conversion_ids.iter().map(Uuid::to_string).collect();
        // Through the conversions' clicks: events are indexed by click (migration 0007).
        let head = "SELECT * FROM conversion_events
                    WHERE click_id IN (SELECT click_id FROM conversions WHERE id";
        let tail = ") ORDER BY created_at, id";
        let rows = select_in(&mut self.tx, head, &ids, tail, &tenant_id.to_string()).await?;
        rows.iter().map(conversion_event_from_row).collect()
    }

    async fn count_counted_events(
        &mut self,
        tenant_id: Uuid,
        scope: CountedScope<'_>,
    ) -> Result<u64> {
        self.settle().await?;
        let (condition, values, since) = counted_condition(tenant_id, &scope);
        let sql = format!("SELECT COUNT(*) AS n FROM conversion_events WHERE {condition}");
        let mut query = sqlx::query(&sql).bind(&values[0]).bind(&values[1]).bind(true).bind(since);
        if let Some(event_id) = values.get(2) {
            query = query.bind(event_id);
        }
        let row = query.fetch_one(&mut *self.tx).await.map_err(map_error)?;
        Ok(u64::try_from(col::<i64>(&row, "n")?).unwrap_or(0))
    }

    async fn counted_revenue(
        &mut self,
        tenant_id: Uuid,
        scope: CountedScope<'_>,
    ) -> Result<gokart_domain::Money> {
        self.settle().await?;
        let (condition, values, since) = counted_condition(tenant_id, &scope);
        // PostgreSQL's SUM of BIGINT is NUMERIC: cast back so both backends answer an integer.
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(revenue), 0) AS BIGINT) AS total
             FROM conversion_events WHERE {condition}"
        );
        let mut query = sqlx::query(&sql).bind(&values[0]).bind(&values[1]).bind(true).bind(since);
        if let Some(event_id) = values.get(2) {
            query = query.bind(event_id);
        }
        let row = query.fetch_one(&mut *self.tx).await.map_err(map_error)?;
        Ok(gokart_domain::Money::from_units(col(&row, "total")?))
    }

    async fn member_counted_elsewhere(
        &mut self,
        tenant_id: Uuid,
        offer_id: Uuid,
        pub_member_id: &str,
        click_id: Uuid,
    ) -> Result<bool> {
        let buffered = self.pending.events.iter().any(|e| {
            e.tenant_id == tenant_id
                && e.offer_id == offer_id
                && e.pub_member_id == pub_member_id
                && e.click_id != click_id
                && e.counted
        });
        if buffered {
            return Ok(true);
        }
        if let Some(memo) = &self.pending.counted_members {
            let covered = memo.pairs.contains(&(offer_id, pub_member_id.to_owned()));
            if memo.tenant_id == tenant_id && covered {
                let elsewhere = memo.counted.iter().any(|(offer, member, click)| {
                    *offer == offer_id && member == pub_member_id && *click != click_id
                });
                return Ok(elsewhere);
            }
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM conversion_events
             WHERE tenant_id = $1 AND offer_id = $2 AND pub_member_id = $3 AND click_id <> $4
               AND counted = $5",
        )
        .bind(tenant_id.to_string())
        .bind(offer_id.to_string())
        .bind(pub_member_id)
        .bind(click_id.to_string())
        .bind(true)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(col::<i64>(&row, "n")? > 0)
    }

    async fn add_offer_spent(
        &mut self,
        tenant_id: Uuid,
        offer_id: Uuid,
        delta: gokart_domain::Money,
    ) -> Result<()> {
        let units = self.pending.spent.entry((tenant_id, offer_id)).or_insert(0);
        *units = units.saturating_add(delta.units());
        if let Some(offer) = self.pending.locked_offers.get_mut(&(tenant_id, offer_id)) {
            offer.spent = offer.spent.saturating_add(delta);
        }
        Ok(())
    }

    async fn due_pending_events(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<ConversionEventRecord>> {
        self.settle().await?;
        let rows = sqlx::query(
            "SELECT * FROM conversion_events
             WHERE status = 'Pending' AND pending_until IS NOT NULL AND pending_until <= $1
             ORDER BY pending_until, id LIMIT $2",
        )
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_error)?;
        rows.iter().map(conversion_event_from_row).collect()
    }

    async fn insert_postback_log(&mut self, entry: PostbackLogEntry) -> Result<()> {
        self.pending.log.push(entry);
        Ok(())
    }

    async fn postback_log(
        &mut self,
        tenant_id: Uuid,
        from: Option<chrono::DateTime<chrono::Utc>>,
        to: Option<chrono::DateTime<chrono::Utc>>,
        page: PageRequest,
    ) -> Result<Page<PostbackLogEntry>> {
        self.settle().await?;
        let from = from.map_or(i64::MIN, micros);
        let to = to.map_or(i64::MAX, micros);
        let condition = "tenant_id = $1 AND received_at >= $2 AND received_at <= $3";
        let total: i64 = col(
            &sqlx::query(&format!("SELECT COUNT(*) AS n FROM postback_log WHERE {condition}"))
                .bind(tenant_id.to_string())
                .bind(from)
                .bind(to)
                .fetch_one(&mut *self.tx)
                .await
                .map_err(map_error)?,
            "n",
        )?;
        let rows = sqlx::query(&format!(
            "SELECT * FROM postback_log WHERE {condition}
             ORDER BY received_at DESC, id LIMIT $4 OFFSET $5"
        ))
        .bind(tenant_id.to_string())
        .bind(from)
        .bind(to)
        .bind(i64::from(page.size))
        .bind(page.offset())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_error)?;
        let items = rows.iter().map(postback_log_from_row).collect::<Result<_>>()?;
        Ok(page_of(items, page, total))
    }
}

/// The database reads behind the memos of `pending.rs`.
impl SqlTx {
    async fn load_conversion_events(
        &mut self,
        tenant_id: Uuid,
        conversion_id: Uuid,
    ) -> Result<Vec<ConversionEventRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM conversion_events WHERE tenant_id = $1 AND conversion_id = $2
               AND click_id = (SELECT click_id FROM conversions WHERE id = $2)
             ORDER BY created_at, id",
        )
        .bind(tenant_id.to_string())
        .bind(conversion_id.to_string())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_error)?;
        rows.iter().map(conversion_event_from_row).collect()
    }
}
