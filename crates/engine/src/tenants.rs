//! Tenants: creation with their first credentials, API-token authentication, and the secure
//! postback credentials with rotation.

use chrono::Duration;
use gokart_domain::{
    tenant::{reserved_slug, valid_slug, TenantKind},
    FieldError,
};
use gokart_storage::{
    ApiTokenRecord, DirectoryItem, DirectoryKind, PostbackCredential, TenantRecord, TokenScope,
    UserRecord, UserRole,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    secrets::{constant_time_eq, hash_password, random_token, token_hash, webhook_secret},
    Engine, EngineError, EngineResult,
};

/// How long rotated postback credentials keep working.
pub const POSTBACK_GRACE: Duration = Duration::days(7);

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub kind: TenantKind,
    pub name: String,
    pub admin_email: String,
    pub admin_password: String,
}

/// What `gokart tenant create --json` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedTenant {
    pub tenant: String,
    pub kind: TenantKind,
    pub management_api_token: String,
    pub admin: AdminInfo,
    pub postback: PostbackInfo,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdminInfo {
    pub email: String,
}

/// The tenant's secure postback, as the dashboard and `GET /api/v1/profile/postback` show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostbackInfo {
    pub domain: String,
    /// `<a>/<b>/<c>/`
    pub security_segment: String,
    pub signature: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<Option<String>>,
}

/// Who an API token speaks for.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantRecord,
    pub scope: TokenScope,
    pub partner_id: Option<Uuid>,
}

impl Engine {
    pub async fn create_tenant(&self, input: NewTenant) -> EngineResult<CreatedTenant> {
        validate_new_tenant(&input)?;
        let now = self.now();
        let tenant = TenantRecord {
            id: Uuid::new_v4(),
            slug: input.slug.clone(),
            kind: input.kind,
            name: input.name.trim().to_owned(),
            currency: "USD".into(),
            callback_signing_secret: webhook_secret(),
            created_at: now,
        };
        let management_token = random_token(32);
        let credential = new_postback_credential(tenant.id, now);
        let mut tx = self.store.write().await?;
        if tx.tenant_by_slug(&tenant.slug).await?.is_some() {
            return Err(EngineError::Conflict(format!("the slug {:?} is taken", tenant.slug)));
        }
        tx.insert_tenant(&tenant).await?;
        tx.insert_api_token(&ApiTokenRecord {
            token_hash: token_hash(&management_token),
            tenant_id: tenant.id,
            scope: TokenScope::Management,
            partner_id: None,
            created_at: now,
        })
        .await?;
        tx.insert_postback_credential(&credential).await?;
        tx.insert_user(&UserRecord {
            id: Uuid::new_v4(),
            tenant_id: tenant.id,
            email: input.admin_email.trim().to_lowercase(),
            password_hash: hash_password(&input.admin_password),
            role: UserRole::Admin,
            partner_id: None,
            created_at: now,
        })
        .await?;
        for gender in ["male", "female"] {
            tx.insert_directory_item(&DirectoryItem {
                id: Uuid::new_v4(),
                tenant_id: tenant.id,
                kind: DirectoryKind::Genders,
                name: gender.into(),
                body: serde_json::json!({ "name": gender }),
                created_at: now,
                updated_at: now,
            })
            .await?;
        }
        tx.commit().await?;
        Ok(CreatedTenant {
            tenant: tenant.slug.clone(),
            kind: tenant.kind,
            management_api_token: management_token,
            admin: AdminInfo { email: input.admin_email.trim().to_lowercase() },
            postback: self.postback_info(&tenant, &credential, None),
        })
    }

    /// Authenticates `Authorization: ApiToken <token>` for the tenant the host names.
    pub async fn authenticate(
        &self,
        tenant: &TenantRecord,
        token: &str,
    ) -> EngineResult<Principal> {
        let hash = token_hash(token);
        let mut tx = self.store.read().await?;
        let record = tx.api_token(&hash).await?.ok_or(EngineError::Unauthorized)?;
        // The lookup is by hash; the comparison that decides is constant-time.
        if !constant_time_eq(&record.token_hash, &hash) || record.tenant_id != tenant.id {
            return Err(EngineError::Unauthorized);
        }
        Ok(Principal { tenant: tenant.clone(), scope: record.scope, partner_id: record.partner_id })
    }

    /// Issues a Partner API token for one partner of the tenant; the token is shown once.
    pub async fn issue_partner_token(
        &self,
        tx: &mut dyn gokart_storage::Tx,
        tenant_id: Uuid,
        partner_id: Uuid,
    ) -> EngineResult<String> {
        let token = random_token(32);
        tx.insert_api_token(&ApiTokenRecord {
            token_hash: token_hash(&token),
            tenant_id,
            scope: TokenScope::Partner,
            partner_id: Some(partner_id),
            created_at: self.now(),
        })
        .await?;
        Ok(token)
    }

    pub async fn postback_credentials(&self, tenant: &TenantRecord) -> EngineResult<PostbackInfo> {
        let mut tx = self.store.read().await?;
        let credentials = tx.postback_credentials(tenant.id, self.now()).await?;
        let current = credentials.iter().find(|c| c.valid_until.is_none()).ok_or_else(|| {
            EngineError::Unavailable("the tenant has no postback credential".into())
        })?;
        let previous = credentials.iter().filter_map(|c| c.valid_until).max();
        Ok(self.postback_info(tenant, current, Some(previous)))
    }

    /// New credentials; the old ones keep working for [`POSTBACK_GRACE`].
    pub async fn rotate_postback_credentials(
        &self,
        tenant: &TenantRecord,
    ) -> EngineResult<PostbackInfo> {
        let now = self.now();
        let credential = new_postback_credential(tenant.id, now);
        let mut tx = self.store.write().await?;
        tx.retire_postback_credentials(tenant.id, now + POSTBACK_GRACE).await?;
        tx.insert_postback_credential(&credential).await?;
        tx.commit().await?;
        Ok(self.postback_info(tenant, &credential, Some(Some(now + POSTBACK_GRACE))))
    }

    /// Whether `segment` (`a/b/c`, no outer slashes) and `signature` are one of the tenant's
    /// valid credential pairs. Every candidate is compared in full, in constant time.
    pub async fn verify_postback_credentials(
        &self,
        tenant: &TenantRecord,
        segment: &str,
        signature: &str,
    ) -> EngineResult<bool> {
        let mut tx = self.store.read().await?;
        self.credentials_match(tx.as_mut(), tenant, segment, signature).await
    }

    /// [`Self::verify_postback_credentials`] inside the caller's transaction.
    pub(crate) async fn credentials_match(
        &self,
        tx: &mut dyn gokart_storage::Tx,
        tenant: &TenantRecord,
        segment: &str,
        signature: &str,
    ) -> EngineResult<bool> {
        let credentials = tx.postback_credentials(tenant.id, self.now()).await?;
        let mut valid = false;
        for credential in &credentials {
            let pair = constant_time_eq(&credential.segment, segment)
                & constant_time_eq(&credential.signature, signature);
            valid |= pair;
        }
        Ok(valid)
    }

    fn postback_info(
        &self,
        tenant: &TenantRecord,
        credential: &PostbackCredential,
        previous_valid_until: Option<Option<chrono::DateTime<chrono::Utc>>>,
    ) -> PostbackInfo {
        PostbackInfo {
            domain: tenant.slug.clone(),
            security_segment: format!("{}/", credential.segment),
            signature: credential.signature.clone(),
            url: format!(
                "{}/api/v1/{}/?signature={}",
                self.urls.api_origin(&tenant.slug),
                credential.segment,
                credential.signature
            ),
            previous_valid_until: previous_valid_until
                .map(|until| until.map(gokart_domain::time::iso)),
        }
    }
}

fn new_postback_credential(
    tenant_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> PostbackCredential {
    PostbackCredential {
        id: Uuid::new_v4(),
        tenant_id,
        segment: [random_token(9), random_token(9), random_token(9)].join("/"),
        signature: random_token(32),
        created_at: now,
        valid_until: None,
    }
}

fn validate_new_tenant(input: &NewTenant) -> EngineResult<()> {
    let mut problems = Vec::new();
    if !valid_slug(&input.slug) {
        problems.push(FieldError::new("tenant", "a slug is 3 to 40 of a-z, 0-9 and -"));
    } else if reserved_slug(&input.slug) {
        problems.push(FieldError::new("tenant", "this slug is reserved"));
    }
    if input.name.trim().is_empty() {
        problems.push(FieldError::new("name", "the name is required"));
    }
    if !input.admin_email.contains('@') {
        problems.push(FieldError::new("adminEmail", "an email address is required"));
    }
    if input.admin_password.chars().count() < 8 {
        problems.push(FieldError::new("adminPassword", "the password needs at least 8 characters"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Invalid(problems))
    }
}
