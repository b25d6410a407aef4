// Tenants, API tokens, postback credentials, users and sessions.

fn tenant_from_row(row: &impl RowLike) -> Result<TenantRecord> {
    let kind: String = col(row, "kind")?;
    Ok(TenantRecord {
        id: parse_uuid(&col::<String>(row, "id")?),
        slug: col(row, "slug")?,
        kind: gokart_domain::tenant::TenantKind::parse(&kind)
            .unwrap_or(gokart_domain::tenant::TenantKind::Advertiser),
        name: col(row, "name")?,
        currency: col(row, "currency")?,
        callback_signing_secret: col(row, "callback_signing_secret")?,
        created_at: at(col(row, "created_at")?),
    })
}

fn credential_from_row(row: &impl RowLike) -> Result<PostbackCredential> {
    Ok(PostbackCredential {
        id: parse_uuid(&col::<String>(row, "id")?),
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        segment: col(row, "segment")?,
        signature: col(row, "signature")?,
        created_at: at(col(row, "created_at")?),
        valid_until: col::<Option<i64>>(row, "valid_until")?.map(at),
    })
}

fn user_from_row(row: &impl RowLike) -> Result<UserRecord> {
    Ok(UserRecord {
        id: parse_uuid(&col::<String>(row, "id")?),
        tenant_id: parse_uuid(&col::<String>(row, "tenant_id")?),
        email: col(row, "email")?,
        password_hash: col(row, "password_hash")?,
        role: UserRole::parse(&col::<String>(row, "role")?).unwrap_or(UserRole::Partner),
        partner_id: col::<Option<String>>(row, "partner_id")?.map(|id| parse_uuid(&id)),
        created_at: at(col(row, "created_at")?),
    })
}

#[async_trait]
impl TenantTx for SqlTx {
    async fn insert_tenant(&mut self, tenant: &TenantRecord) -> Result<()> {
        self.settle().await?;
        sqlx::query(
            "INSERT INTO tenants (id, slug, kind, name, currency, callback_signing_secret, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.id.to_string())
        .bind(&tenant.slug)
        .bind(tenant.kind.as_str())
        .bind(&tenant.name)
        .bind(&tenant.currency)
        .bind(&tenant.callback_signing_secret)
        .bind(micros(tenant.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn tenant_by_slug(&mut self, slug: &str) -> Result<Option<TenantRecord>> {
        self.settle().await?;
        let row = sqlx::query("SELECT * FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn tenant_by_id(&mut self, id: Uuid) -> Result<Option<TenantRecord>> {
        self.settle().await?;
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn insert_api_token(&mut self, token: &ApiTokenRecord) -> Result<()> {
        self.settle().await?;
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, tenant_id, scope, partner_id, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.token_hash)
        .bind(token.tenant_id.to_string())
        .bind(token.scope.as_str())
        .bind(token.partner_id.map(|id| id.to_string()))
        .bind(micros(token.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn api_token(&mut self, token_hash: &str) -> Result<Option<ApiTokenRecord>> {
        self.settle().await?;
        let row = sqlx::query("SELECT * FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        let Some(row) = row else { return Ok(None) };
        let Some(scope) = TokenScope::parse(&col::<String>(&row, "scope")?) else {
            return Ok(None);
        };
        Ok(Some(ApiTokenRecord {
            token_hash: col(&row, "token_hash")?,
            tenant_id: parse_uuid(&col::<String>(&row, "tenant_id")?),
            scope,
            partner_id: col::<Option<String>>(&row, "partner_id")?.map(|id| parse_uuid(&id)),
            created_at: at(col(&row, "created_at")?),
        }))
    }

    async fn insert_postback_credential(&mut self, credential: &PostbackCredential) -> Result<()> {
        self.settle().await?;
        sqlx::query(
            "INSERT INTO postback_credentials (id, tenant_id, segment, signature, created_at, valid_until)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(credential.id.to_string())
        .bind(credential.tenant_id.to_string())
        .bind(&credential.segment)
        .bind(&credential.signature)
        .bind(micros(credential.created_at))
        .bind(credential.valid_until.map(micros))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn postback_credentials(
        &mut self,
        tenant_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<PostbackCredential>> {
        if let Some(credentials) = self.pending.credentials.get(&tenant_id) {
            // Read earlier in this transaction: only fewer can be valid now.
            let valid = |c: &&PostbackCredential| c.valid_until.is_none_or(|until| until > now);
            return Ok(credentials.iter().filter(valid).cloned().collect());
        }
        let credentials = self.load_postback_credentials(tenant_id, now).await?;
        self.pending.credentials.insert(tenant_id, credentials.clone());
        Ok(credentials)
    }

    async fn retire_postback_credentials(
        &mut self,
        tenant_id: Uuid,
        valid_until: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        self.settle().await?;
        sqlx::query(
            "UPDATE postback_credentials SET valid_until = $2
             WHERE tenant_id = $1 AND valid_until IS NULL",
        )
        .bind(tenant_id.to_string())
        .bind(micros(valid_until))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn insert_user(&mut self, user: &UserRecord) -> Result<()> {
        self.settle().await?;
        sqlx::query(
            "INSERT INTO users (id, tenant_id, email, password_hash, role, partner_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.id.to_string())
        .bind(user.tenant_id.to_string())
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(user.partner_id.map(|id| id.to_string()))
        .bind(micros(user.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn user_by_email(&mut self, tenant_id: Uuid, email: &str) -> Result<Option<UserRecord>> {
        self.settle().await?;
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND email = $2")
            .bind(tenant_id.to_string())
            .bind(email)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_id(&mut self, tenant_id: Uuid, id: Uuid) -> Result<Option<UserRecord>> {
        self.settle().await?;
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn insert_session(&mut self, session: &SessionRecord) -> Result<()> {
        self.settle().await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, tenant_id, csrf_token, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&session.token_hash)
        .bind(session.user_id.to_string())
        .bind(session.tenant_id.to_string())
        .bind(&session.csrf_token)
        .bind(micros(session.expires_at))
        .bind(micros(session.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(map_error)?;
        Ok(())
    }

    async fn session(&mut self, token_hash: &str) -> Result<Option<SessionRecord>> {
        self.settle().await?;
        let row = sqlx::query("SELECT * FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(map_error)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            token_hash: col(&row, "token_hash")?,
            user_id: parse_uuid(&col::<String>(&row, "user_id")?),
            tenant_id: parse_uuid(&col::<String>(&row, "tenant_id")?),
            csrf_token: col(&row, "csrf_token")?,
            expires_at: at(col(&row, "expires_at")?),
            created_at: at(col(&row, "created_at")?),
        }))
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<()> {
        self.settle().await?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *self.tx)
            .await
            .map_err(map_error)?;
        Ok(())
    }
}

/// The database reads behind the memos of `pending.rs`.
impl SqlTx {
    async fn load_postback_credentials(
        &mut self,
        tenant_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<PostbackCredential>> {
        let rows = sqlx::query(
            "SELECT * FROM postback_credentials
             WHERE tenant_id = $1 AND (valid_until IS NULL OR valid_until > $2)
             ORDER BY valid_until IS NOT NULL, created_at DESC",
        )
        .bind(tenant_id.to_string())
        .bind(micros(now))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(map_error)?;
        rows.iter().map(credential_from_row).collect()
    }
}
