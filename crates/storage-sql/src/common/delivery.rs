// The delivery queue, attempts, partner postback and callback settings.

fn delivery_from_row(row: &impl RowLike) -> Result<DeliveryRecord> {
    let optional_uuid =
        |name: &str| -> Result<Option<Uuid>> { Ok(col::<Option<String>>(row, name)?.map(|id| parse_uuid(&id))) };
    let headers: Vec<(String, String)> =
        serde_json::from_str(&col::<String>(row, "headers")?).unwrap_or_default();
    Ok(DeliveryRecord {
        id: parse_uuid(&col::<String>(row, "id")?),
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        kind: DeliveryKind::parse(&col::<String>(row, "kind")?)
            .ok_or_else(|| StorageError::Unavailable("corrupt delivery kind".into()))?,
        conversion_id: optional_uuid("conversion_id")?,
        conversion_event_id: optional_uuid("conversion_event_id")?,
        transaction_id: optional_uuid("transaction_id")?,
        url: col(row, "url")?,
        method: col(row, "method")?,
        headers,
        body: col(row, "body")?,
        status: DeliveryStatus::parse(&col::<String>(row, "status")?)
            .ok_or_else(|| StorageError::Unavailable("corrupt delivery status".into()))?,
        failure_reason: col(row, "failure_reason")?,
        attempt_count: u32::try_from(col::<i64>(row, "attempt_count")?).unwrap_or(u32::MAX),
        next_attempt_at: col::<Option<i64>>(row, "next_attempt_at")?.map(at),
        locked_until: col::<Option<i64>>(row, "locked_until")?.map(at),
        lease_owner: col(row, "lease_owner")?,
        first_attempt_at: col::<Option<i64>>(row, "first_attempt_at")?.map(at),
        created_at: at(col(row, "created_at")?),
        updated_at: at(col(row, "updated_at")?),
    })
}

fn attempt_from_row(row: &impl RowLike) -> Result<DeliveryAttemptRecord> {
    Ok(DeliveryAttemptRecord {
        id: parse_uuid(&col::<String>(row, "id")?),
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        delivery_id: parse_uuid(&col::<String>(row, "delivery_id")?),
        at: at(col(row, "at")?),
        http_status: col::<Option<i64>>(row, "http_status")?.and_then(|s| u16::try_from(s).ok()),
        latency_ms: u64::try_from(col::<i64>(row, "latency_ms")?).unwrap_or(0),
        error: col(row, "error")?,
        response_snippet: col(row, "response_snippet")?,
    })
}

fn uuid_list(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

/// `$first, $first+1, ...`: one placeholder per value.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

#[async_trait]
impl DeliveryTx for SqlTx {
    async fn insert_delivery(&mut self, d: &DeliveryRecord) -> Result<()> {
        self.pending.deliveries.push(d.clone());
        Ok(())
    }

    async fn delivery(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<DeliveryRecord>> {
        self.settle().await?;
        let row = sqlx::query("SELECT * FROM deliveries WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    async fn list_deliveries(
        &mut self,
        tenant_id: Uuid,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliveryRecord>> {
        self.settle().await?;
        let mut conditions = vec!["tenant_id = $1".to_owned()];
        let mut values = vec![tenant_id.to_string()];
        let mut add = |column: &str, value: String| {
            values.push(value);
            conditions.push(format!("{column} = ${}", values.len()));
        };
        if let Some(status) = filter.status {
            add("status", status.as_str().to_owned());
        }
        if let Some(kind) = filter.kind {
            add("kind", kind.as_str().to_owned());
        }
        if let Some(conversion_id) = filter.conversion_id {
            add("conversion_id", conversion_id.to_string());
        }
        let condition = conditions.join(" AND ");
        let total = count_where(&mut self.tx, "deliveries", &condition, &values).await?;
        let list_sql = format!(
            "SELECT * FROM deliveries WHERE {condition}
             ORDER BY created_at DESC, id LIMIT {} OFFSET {}",
            page.size,
            page.offset()
        );
        let mut list = sqlx::query(&list_sql);
        for value in &values {
            list = list.bind(value);
        }
        let rows = list.fetch_all(&mut *self.tx).await.map_err(map_error)?;
        let items = rows.iter().map(delivery_from_row).collect::<Result<_>>()?;
        Ok(page_of(items, page, total))
    }

    async fn delivery_attempts(
        &mut self,
        tenant_id: Uuid,
        delivery_ids: &[Uuid],
    ) -> Result<Vec<DeliveryAttemptRecord>> {
        self.settle().await?;
        if delivery_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM delivery_attempts WHERE tenant_id = $1 AND delivery_id IN ({})
             ORDER BY at, id",
            placeholders(2, delivery_ids.len())
        );
        let mut query = sqlx::query(&sql).bind(tenant_id.to_string());
        for id in uuid_list(delivery_ids) {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&mut *self.tx).await.map_err(map_error)?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn claim_deliveries(
        &mut self,
        owner: &str,
        now: chrono::DateTime<chrono::Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        self.settle().await?;
        // One statement picks and leases, so the pick is atomic: PostgreSQL skips rows another
        // claim has locked; SQLite runs one writer at a time.
        let sql = format!(
            "UPDATE deliveries SET locked_until = $1, lease_owner = $2
             WHERE id IN (SELECT id FROM deliveries
                          WHERE status IN ('Pending', 'Retrying') AND next_attempt_at <= $3
                            AND (locked_until IS NULL OR locked_until <= $3)
                          ORDER BY next_attempt_at LIMIT $4{CLAIM_LOCK})
             RETURNING *"
        );
        let rows = sqlx::query(&sql)
            .bind(micros(now + lease))
            .bind(owner)
            .bind(micros(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *self.tx)
            .await
            .map_err(map_error)?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn complete_delivery(&mut self, owner: &str, outcome: &DeliveryOutcome) -> Result<bool> {
        self.settle().await?;
        let attempt = &outcome.attempt;
        sqlx::query(
            "INSERT INTO delivery_attempts (id, tenant_id, delivery_id, at, http_status,
                 latency_ms, error, response_snippet)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(attempt.id.to_string())
        .bind(attempt.tenant_id.to_string())
        .bind(attempt.delivery_id.to_string())
        .bind(micros(attempt.at))
        .bind(attempt.http_status.map(i64::from))
        .bind(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
        .bind(&attempt.error)
        .bind(&attempt.response_snippet)
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        let done = sqlx::query(
            "UPDATE deliveries SET status = $3, failure_reason = $4, next_attempt_at = $5,
                 attempt_count = attempt_count + 1,
                 first_attempt_at = COALESCE(first_attempt_at, $6),
                 locked_until = NULL, lease_owner = NULL, updated_at = $6
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(attempt.delivery_id.to_string())
        .bind(owner)
        .bind(outcome.status.as_str())
        .bind(&outcome.failure_reason)
        .bind(outcome.next_attempt_at.map(micros))
        .bind(micros(attempt.at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_deliveries(&mut self, owner: &str, ids: &[Uuid]) -> Result<()> {
        self.settle().await?;
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE deliveries SET locked_until = NULL, lease_owner = NULL
             WHERE lease_owner = $1 AND id IN ({})",
            placeholders(2, ids.len())
        );
        let mut query = sqlx::query(&sql).bind(owner);
        for id in uuid_list(ids) {
            query = query.bind(id);
        }
        query.execute(&mut *self.tx).await.map_err(map_error)?;
        Ok(())
    }

    async fn requeue_delivery(
        &mut self,
        tenant_id: Uuid,
        id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        self.settle().await?;
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'Pending', failure_reason = NULL, next_attempt_at = $3,
                 attempt_count = 0, first_attempt_at = NULL, locked_until = NULL,
                 lease_owner = NULL, updated_at = $3
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id.to_string())
        .bind(id.to_string())
        .bind(micros(now))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn partner_postbacks(
        &mut self,
        tenant_id: Uuid,
        partner_id: Uuid,
    ) -> Result<Option<PartnerPostbackSettings>> {
        if let Some(settings) = self.pending.partner_postbacks.get(&(tenant_id, partner_id)) {
            return Ok(settings.clone());
        }
        let settings = self.load_partner_postbacks(tenant_id, partner_id).await?;
        self.pending.partner_postbacks.insert((tenant_id, partner_id), settings.clone());
        Ok(settings)
    }

    async fn save_partner_postbacks(&mut self, s: &PartnerPostbackSettings) -> Result<()> {
        self.settle().await?;
        sqlx::query(
            "INSERT INTO partner_postbacks (tenant_id, partner_id, global_url, event_postbacks,
                 updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, partner_id) DO UPDATE SET global_url = excluded.global_url,
                 event_postbacks = excluded.event_postbacks, updated_at = excluded.updated_at",
        )
        .bind(s.tenant_id.to_string())
        .bind(s.partner_id.to_string())
        .bind(&s.global_url)
        .bind(serde_json::to_string(&s.event_postbacks).unwrap_or_else(|_| "[]".into()))
        .bind(micros(s.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn callback_settings(&mut self, tenant_id: Uuid) -> Result<Option<CallbackSettings>> {
        if let Some(settings) = self.pending.callback_settings.get(&tenant_id) {
            return Ok(settings.clone());
        }
        let settings = self.load_callback_settings(tenant_id).await?;
        self.pending.callback_settings.insert(tenant_id, settings.clone());
        Ok(settings)
    }

    async fn save_callback_settings(&mut self, s: &CallbackSettings) -> Result<()> {
        self.settle().await?;
        sqlx::query(
            "INSERT INTO callback_settings (tenant_id, url, header_name, header_value,
                 send_pending, send_rejected, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url,
                 header_name = excluded.header_name, header_value = excluded.header_value,
                 send_pending = excluded.send_pending, send_rejected = excluded.send_rejected,
                 updated_at = excluded.updated_at",
        )
        .bind(s.tenant_id.to_string())
        .bind(&s.url)
        .bind(&s.header_name)
        .bind(&s.header_value)
        .bind(s.send_pending)
        .bind(s.send_rejected)
        .bind(micros(s.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }
}

/// The database reads behind the memos of `pending.rs`.
impl SqlTx {
    async fn load_partner_postbacks(
        &mut self,
        tenant_id: Uuid,
        partner_id: Uuid,
    ) -> Result<Option<PartnerPostbackSettings>> {
        let row =
            sqlx::query("SELECT * FROM partner_postbacks WHERE tenant_id = $1 AND partner_id = $2")
                .bind(tenant_id.to_string())
                .bind(partner_id.to_string())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(map_error)?;
        row.as_ref().map(partner_postbacks_from_row).transpose()
    }

    async fn load_callback_settings(&mut self, tenant_id: Uuid) -> Result<Option<CallbackSettings>> {
        let row = sqlx::query("SELECT * FROM callback_settings WHERE tenant_id = $1")
            .bind(tenant_id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(callback_settings_from_row).transpose()
    }
}

fn partner_postbacks_from_row(row: &impl RowLike) -> Result<PartnerPostbackSettings> {
    Ok(PartnerPostbackSettings {
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        partner_id: parse_uuid(&col::<String>(row, "partner_id")?),
        global_url: col(row, "global_url")?,
        event_postbacks: serde_json::from_str(&col::<String>(row, "event_postbacks")?)
            .unwrap_or_default(),
        updated_at: at(col(row, "updated_at")?),
    })
}

fn callback_settings_from_row(row: &impl RowLike) -> Result<CallbackSettings> {
    Ok(CallbackSettings {
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        url: col(row, "url")?,
        header_name: col(row, "header_name")?,
        header_value: col(row, "header_value")?,
        send_pending: col(row, "send_pending")?,
        send_rejected: col(row, "send_rejected")?,
        updated_at: at(col(row, "updated_at")?),
    })
}
