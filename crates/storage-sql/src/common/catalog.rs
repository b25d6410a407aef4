// Back office directory items, offers and their change history.

fn directory_item_from_row(row: &impl RowLike) -> Result<DirectoryItem> {
    let kind: String = col(row, "kind")?;
    Ok(DirectoryItem {
        id: parse_uuid(&col::<String>(row, "id")?),
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        kind: DirectoryKind::parse(&kind).unwrap_or(DirectoryKind::Categories),
        name: col(row, "name")?,
        body: parse_json(&col::<String>(row, "body")?),
        created_at: at(col(row, "created_at")?),
        updated_at: at(col(row, "updated_at")?),
    })
}

fn offer_from_row(row: &impl RowLike) -> Result<OfferRecord> {
    use gokart_domain::offer::{Offer, OfferStatus};
    let spec_text: String = col(row, "spec")?;
    let spec = serde_json::from_str(&spec_text)
        .map_err(|e| StorageError::Unavailable(format!("corrupt offer spec: {e}")))?;
    Ok(OfferRecord {
        offer: Offer {
            id: parse_uuid(&col::<String>(row, "id")?),
            status: OfferStatus::parse(&col::<String>(row, "status")?).unwrap_or_default(),
            partner_id: col::<Option<String>>(row, "partner_id")?.map(|id| parse_uuid(&id)),
            shared_at: col::<Option<i64>>(row, "shared_at")?.map(at),
            created_at: at(col(row, "created_at")?),
            updated_at: at(col(row, "updated_at")?),
            spec,
        },
        spent: gokart_domain::Money::from_units(col(row, "spent")?),
    })
}

fn spec_json(offer: &gokart_domain::offer::Offer) -> String {
    serde_json::to_string(&offer.spec).unwrap_or_default()
}

/// `%term%` for a case-insensitive LIKE, with LIKE's own wildcards escaped.
fn like_pattern(term: &str) -> String {
    let escaped = term
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[async_trait]
impl CatalogTx for SqlTx {
    async fn insert_directory_item(&mut self, item: &DirectoryItem) -> Result<()> {
        self.settle().await?;
        sqlx::query(
            "INSERT INTO directory_items (id, tenant_id, kind, name, body, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(item.id.to_string())
        .bind(item.tenant_id.to_string())
        .bind(item.kind.as_str())
        .bind(&item.name)
        .bind(item.body.to_string())
        .bind(micros(item.created_at))
        .bind(micros(item.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn update_directory_item(&mut self, item: &DirectoryItem) -> Result<bool> {
        self.settle().await?;
        let done = sqlx::query(
            "UPDATE directory_items SET name = $4, body = $5, updated_at = $6
             WHERE tenant_id = $1 AND kind = $2 AND id = $3",
        )
        .bind(item.tenant_id.to_string())
        .bind(item.kind.as_str())
        .bind(item.id.to_string())
        .bind(&item.name)
        .bind(item.body.to_string())
        .bind(micros(item.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn directory_item(
        &mut self,
        tenant_id: Uuid,
        kind: DirectoryKind,
        id: Uuid,
    ) -> Result<Option<DirectoryItem>> {
        if let Some(item) = self.pending.directory.get(&(tenant_id, kind, id)) {
            return Ok(item.clone());
        }
        let item = self.load_directory_item(tenant_id, kind, id).await?;
        self.pending.directory.insert((tenant_id, kind, id), item.clone());
        Ok(item)
    }

    async fn list_directory_items(
        &mut self,
        tenant_id: Uuid,
        kind: DirectoryKind,
        page: PageRequest,
    ) -> Result<Page<DirectoryItem>> {
        self.settle().await?;
        let rows = sqlx::query(
            "SELECT * FROM directory_items WHERE tenant_id = $1 AND kind = $2
             ORDER BY created_at, id LIMIT $3 OFFSET $4",
        )
        .bind(tenant_id.to_string())
        .bind(kind.as_str())
        .bind(i64::from(page.size))
        .bind(page.offset())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_error)?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM directory_items WHERE tenant_id = $1 AND kind = $2")
                .bind(tenant_id.to_string())
                .bind(kind.as_str())
                .fetch_one(&mut *self.tx)
                .await
                .map_err(map_error)?;
        let items = rows.iter().map(directory_item_from_row).collect::<Result<_>>()?;
        Ok(page_of(items, page, total))
    }

    async fn insert_offer(&mut self, tenant_id: Uuid, record: &OfferRecord) -> Result<()> {
        self.settle().await?;
        let offer = &record.offer;
        sqlx::query(
            "INSERT INTO offers (id, tenant_id, status, partner_id, shared_at, name, offer_type,
                                 tracking_system, spec, spent, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(offer.id.to_string())
        .bind(tenant_id.to_string())
        .bind(offer.status.as_str())
        .bind(offer.partner_id.map(|id| id.to_string()))
        .bind(offer.shared_at.map(micros))
        .bind(&offer.spec.name)
        .bind(format!("{:?}", offer.spec.offer_type))
        .bind(offer.spec.tracking_system.as_str())
        .bind(spec_json(offer))
        .bind(record.spent.units())
        .bind(micros(offer.created_at))
        .bind(micros(offer.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn update_offer(&mut self, tenant_id: Uuid, record: &OfferRecord) -> Result<bool> {
        self.settle().await?;
        let offer = &record.offer;
        let done = sqlx::query(
            "UPDATE offers SET status = $3, partner_id = $4, shared_at = $5, name = $6,
                    offer_type = $7, tracking_system = $8, spec = $9, spent = $10, updated_at = $11
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id.to_string())
        .bind(offer.id.to_string())
        .bind(offer.status.as_str())
        .bind(offer.partner_id.map(|id| id.to_string()))
        .bind(offer.shared_at.map(micros))
        .bind(&offer.spec.name)
        .bind(format!("{:?}", offer.spec.offer_type))
        .bind(offer.spec.tracking_system.as_str())
        .bind(spec_json(offer))
        .bind(record.spent.units())
        .bind(micros(offer.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn offer(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<OfferRecord>> {
        self.settle().await?;
        self.select_offer(tenant_id, id, "").await
    }

    async fn lock_offer(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<OfferRecord>> {
        if let Some(offer) = self.pending.locked_offers.get(&(tenant_id, id)) {
            return Ok(Some(offer.clone()));
        }
        let Some(offer) = self.load_lock_offer(tenant_id, id).await? else { return Ok(None) };
        Ok(Some(self.keep_locked_offer(tenant_id, offer)))
    }

    async fn list_offers(
        &mut self,
        tenant_id: Uuid,
        filter: &OfferFilter,
        page: PageRequest,
    ) -> Result<Page<OfferRecord>> {
        self.settle().await?;
        let mut conditions = vec!["tenant_id = $1".to_owned()];
        let mut values = vec![tenant_id.to_string()];
        let mut add = |condition: &str, value: String| {
            values.push(value);
            conditions.push(condition.replace('?', &format!("${}", values.len())));
        };
        if let Some(status) = &filter.status {
            add("status = ?", status.clone());
        }
        if let Some(offer_type) = &filter.offer_type {
            add("offer_type = ?", offer_type.clone());
        }
        if let Some(system) = &filter.tracking_system {
            add("tracking_system = ?", system.clone());
        }
        if let Some(search) = &filter.search {
            add("LOWER(name) LIKE ? ESCAPE '\\'", like_pattern(search));
        }
        if let Some(partner) = filter.partner_id {
            add("partner_id = ?", partner.to_string());
        }
        let condition = conditions.join(" AND ");
        let total = count_where(&mut self.tx, "offers", &condition, &values).await?;
        // The page's ids from the index alone (skipped offers are never read), then their rows.
        let list_sql = format!(
            "SELECT * FROM offers WHERE id IN
               (SELECT id FROM offers WHERE {condition}
                ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {})
             ORDER BY created_at DESC, id DESC",
            page.size,
            page.offset()
        );
        let mut list = sqlx::query(&list_sql);
        for value in &values {
            list = list.bind(value);
        }
        let rows = list.fetch_all(&mut *self.tx).await.map_err(map_error)?;
        let items = rows.iter().map(offer_from_row).collect::<Result<_>>()?;
        Ok(page_of(items, page, total))
    }

    async fn insert_history(&mut self, entries: &[HistoryEntry]) -> Result<()> {
        self.settle().await?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO offer_history (id, tenant_id, offer_id, at, actor, field, old_value, new_value)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(entry.id.to_string())
            .bind(entry.tenant_id.to_string())
            .bind(entry.offer_id.to_string())
            .bind(micros(entry.at))
            .bind(&entry.actor)
            .bind(&entry.field)
            .bind(entry.old_value.to_string())
            .bind(entry.new_value.to_string())
            .execute(&mut *self.tx)
            .await
            .map_err(map_error)?;
        }
        Ok(())
    }

    async fn offer_history(
        &mut self,
        tenant_id: Uuid,
        offer_id: Uuid,
        page: PageRequest,
    ) -> Result<Page<HistoryEntry>> {
        self.settle().await?;
        let rows = sqlx::query(
            "SELECT * FROM offer_history WHERE tenant_id = $1 AND offer_id = $2
             ORDER BY at DESC, id DESC LIMIT $3 OFFSET $4",
        )
        .bind(tenant_id.to_string())
        .bind(offer_id.to_string())
        .bind(i64::from(page.size))
        .bind(page.offset())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_error)?;
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM offer_history WHERE tenant_id = $1 AND offer_id = $2",
        )
        .bind(tenant_id.to_string())
        .bind(offer_id.to_string())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(map_error)?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(HistoryEntry {
                    id: parse_uuid(&col::<String>(row, "id")?),
                    tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
                    offer_id: parse_uuid(&col::<String>(row, "offer_id")?),
                    at: at(col(row, "at")?),
                    actor: col(row, "actor")?,
                    field: col(row, "field")?,
                    old_value: parse_json(&col::<String>(row, "old_value")?),
                    new_value: parse_json(&col::<String>(row, "new_value")?),
                })
            })
            .collect::<Result<_>>()?;
        Ok(page_of(items, page, total))
    }
}

/// The database reads behind the memos of `pending.rs`.
impl SqlTx {
    async fn load_directory_item(
        &mut self,
        tenant_id: Uuid,
        kind: DirectoryKind,
        id: Uuid,
    ) -> Result<Option<DirectoryItem>> {
        let row = sqlx::query(
            "SELECT * FROM directory_items WHERE tenant_id = $1 AND kind = $2 AND id = $3",
        )
        .bind(tenant_id.to_string())
        .bind(kind.as_str())
        .bind(id.to_string())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(map_error)?;
        row.as_ref().map(directory_item_from_row).transpose()
    }

    async fn load_lock_offer(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<OfferRecord>> {
        self.select_offer(tenant_id, id, FOR_UPDATE).await
    }

    async fn select_offer(
        &mut self,
        tenant_id: Uuid,
        id: Uuid,
        lock: &str,
    ) -> Result<Option<OfferRecord>> {
        let sql = format!("SELECT * FROM offers WHERE tenant_id = $1 AND id = $2{lock}");
        let row = sqlx::query(&sql)
            .bind(tenant_id.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(offer_from_row).transpose()
    }
}
