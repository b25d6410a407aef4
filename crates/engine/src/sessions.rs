//! Dashboard sign-in: email and password (argon2id) for a tenant's staff and its partners'
//! portal logins, a random session token stored only as its hash, and one CSRF token per session.

use std::sync::OnceLock;

use chrono::Duration;
use gokart_storage::{SessionRecord, TenantRecord, UserRecord};

use crate::{
    secrets::{constant_time_eq, hash_password, random_token, token_hash, verify_password},
    Engine, EngineError, EngineResult,
};

/// How long a dashboard session lasts from sign-in.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// A new session: the token goes into the cookie and is never stored as such.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub user: UserRecord,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A valid session and the user it belongs to.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub session: SessionRecord,
    pub user: UserRecord,
}

impl ActiveSession {
    /// Whether `submitted` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, submitted: &str) -> bool {
        !submitted.is_empty() && constant_time_eq(&self.session.csrf_token, submitted)
    }
}

impl Engine {
    /// Signs a user of `tenant` in. A wrong email and a wrong password answer the same
    /// `Unauthorized`, after the same argon2 work, so neither reveals which accounts exist.
    pub async fn sign_in(
        &self,
        tenant: &TenantRecord,
        email: &str,
        password: &str,
    ) -> EngineResult<NewSession> {
        let email = email.trim().to_lowercase();
        let user = {
            let mut tx = self.store.read().await?;
            tx.user_by_email(tenant.id, &email).await?
        };
        let phc =
            user.as_ref().map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
        let password = password.to_owned();
        let verified = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
            .await
            .unwrap_or(false);
        let user = match user {
            Some(user) if verified => user,
            _ => return Err(EngineError::Unauthorized),
        };
        let now = self.now();
        let token = random_token(32);
        let session = SessionRecord {
            token_hash: token_hash(&token),
            user_id: user.id,
            tenant_id: tenant.id,
            csrf_token: random_token(32),
            expires_at: now + SESSION_LIFETIME,
            created_at: now,
        };
        let mut tx = self.store.write().await?;
        tx.insert_session(&session).await?;
        tx.commit().await?;
        Ok(NewSession {
            token,
            csrf_token: session.csrf_token,
            user,
            expires_at: session.expires_at,
        })
    }

    /// The session a cookie names, if it belongs to `tenant` and has not expired.
    pub async fn active_session(
        &self,
        tenant: &TenantRecord,
        token: &str,
    ) -> EngineResult<Option<ActiveSession>> {
        let hash = token_hash(token);
        let mut tx = self.store.read().await?;
        let Some(session) = tx.session(&hash).await? else { return Ok(None) };
        if session.tenant_id != tenant.id
            || !constant_time_eq(&session.token_hash, &hash)
            || session.expires_at <= self.now()
        {
            return Ok(None);
        }
        let user = tx.user_by_id(tenant.id, session.user_id).await?;
        Ok(user.map(|user| ActiveSession { session, user }))
    }

    /// Ends the session a cookie names; unknown tokens are ignored (signing out twice is fine).
    pub async fn sign_out(&self, token: &str) -> EngineResult<()> {
        let mut tx = self.store.write().await?;
        tx.delete_session(&token_hash(token)).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A valid argon2id hash of nothing anyone knows, verified when the email is unknown.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_token(16)))
}
