//! Who is asking: the tenant from the `app.<tenant>.<base>` host, the signed-in user from the
//! session cookie, and posted forms whose CSRF token has been checked.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap},
};
use gokart_engine::{sessions::ActiveSession, Engine};
use gokart_storage::{TenantRecord, UserRole};
use uuid::Uuid;

use super::page::{Chrome, PageError};
use crate::{host::Face, AppState};

/// Browsers accept a `__Host-` cookie only with `Secure`, which they refuse to store over plain
/// http; so the prefixed name is used only when gokart is reached over https.
pub fn session_cookie_name(engine: &Engine) -> &'static str {
    if engine.urls.is_https() {
        "__Host-gokart_session"
    } else {
        "gokart_session"
    }
}

/// The pre-session CSRF cookie of the login form (double submit).
pub const LOGIN_CSRF_COOKIE: &str = "gokart_login_csrf";

/// `Set-Cookie` for `name=value`, host-only, `Path=/`, `HttpOnly`, `SameSite=Lax`, `Secure` over
/// https; `max_age` 0 deletes it.
pub fn set_cookie(engine: &Engine, name: &str, value: &str, max_age_seconds: i64) -> String {
    let secure = if engine.urls.is_https() { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}")
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// The tenant of an `app.<tenant>.<base>` request; any other host is a 404 page.
pub struct AppTenant(pub TenantRecord);

impl FromRequestParts<AppState> for AppTenant {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        crate::host::tenant_for(parts, state, Face::App).await.map(AppTenant).map_err(Into::into)
    }
}

/// A request with a valid session cookie of this tenant; otherwise a redirect to `/login`.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub tenant: TenantRecord,
    pub active: ActiveSession,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let AppTenant(tenant) = AppTenant::from_request_parts(parts, state).await?;
        let token =
            cookie(&parts.headers, session_cookie_name(&state.engine)).ok_or(PageError::SignIn)?;
        let active =
            state.engine.active_session(&tenant, &token).await?.ok_or(PageError::SignIn)?;
        Ok(SignedIn { tenant, active })
    }
}

impl SignedIn {
    pub fn is_partner(&self) -> bool {
        self.active.user.role == UserRole::Partner
    }

    /// The header and navigation of a page in `section`.
    pub fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            tenant_name: self.tenant.name.clone(),
            email: self.active.user.email.clone(),
            partner: self.is_partner(),
            csrf: self.active.session.csrf_token.clone(),
            section,
        }
    }

    /// The tenant's own staff only: partners get a 403 page.
    pub fn staff(&self) -> Result<(), PageError> {
        if self.is_partner() {
            Err(PageError::Forbidden("This page is for the tenant's staff.".into()))
        } else {
            Ok(())
        }
    }

    /// The partner a portal login speaks for; staff get a 403 page.
    pub fn partner_id(&self) -> Result<Uuid, PageError> {
        match (self.active.user.role, self.active.user.partner_id) {
            (UserRole::Partner, Some(id)) => Ok(id),
            _ => Err(PageError::Forbidden("This page is for partner logins.".into())),
        }
    }
}

/// A staff member's request.
pub struct Staff(pub SignedIn);

impl FromRequestParts<AppState> for Staff {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let signed = SignedIn::from_request_parts(parts, state).await?;
        signed.staff()?;
        Ok(Staff(signed))
    }
}

/// A partner portal login's request, with the partner it speaks for.
pub struct PartnerUser(pub SignedIn, pub Uuid);

impl FromRequestParts<AppState> for PartnerUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let signed = SignedIn::from_request_parts(parts, state).await?;
        let partner = signed.partner_id()?;
        Ok(PartnerUser(signed, partner))
    }
}

/// An uploaded file of a multipart form.
#[derive(Debug, Clone)]
pub struct Upload {
    pub field: String,
    pub file_name: String,
    pub bytes: Bytes,
}

/// A posted form's fields in order (repeated names kept) and its files.
#[derive(Debug, Clone, Default)]
pub struct FormData {
    pub fields: Vec<(String, String)>,
    pub files: Vec<Upload>,
}

impl FormData {
    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> String {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_default()
    }

    /// The first value of `name` as posted (passwords are not trimmed).
    pub fn raw(&self, name: &str) -> String {
        self.fields.iter().find(|(key, _)| key == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }

    /// Every value of `name` (checkbox groups, multi-selects).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// The non-empty file posted under `field`.
    pub fn file(&self, field: &str) -> Option<&Upload> {
        self.files.iter().find(|f| f.field == field && !f.bytes.is_empty())
    }
}

/// The most a dashboard form may post: a 3 MB creative plus the rest of the form.
pub const MAX_FORM_BYTES: usize = 4 * 1024 * 1024;

/// A form posted by a signed-in user whose `_csrf` field matched the session's token; a missing
/// or wrong token is a 403 page and the handler never runs.
pub struct Posted {
    pub signed: SignedIn,
    pub form: FormData,
}

impl FromRequest<AppState> for Posted {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let signed = SignedIn::from_request_parts(&mut parts, state).await?;
        let form = read_form(&parts.headers, body).await?;
        if !signed.active.csrf_matches(&form.get("_csrf")) {
            return Err(PageError::Csrf);
        }
        Ok(Posted { signed, form })
    }
}

/// Reads an `application/x-www-form-urlencoded` or `multipart/form-data` body.
pub async fn read_form(headers: &HeaderMap, body: axum::body::Body) -> Result<FormData, PageError> {
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|_| {
        PageError::TooLarge("The form is larger than 4 MB; a creative may be at most 3 MB.".into())
    })?;
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match multer::parse_boundary(content_type) {
        Ok(boundary) => read_multipart(bytes, boundary).await,
        Err(_) => Ok(FormData {
            fields: form_urlencoded::parse(&bytes).into_owned().collect(),
            files: Vec::new(),
        }),
    }
}

async fn read_multipart(bytes: Bytes, boundary: String) -> Result<FormData, PageError> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = FormData::default();
    let malformed = |_| PageError::BadRequest("The form could not be read; try again.".into());
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                let bytes = field.bytes().await.map_err(malformed)?;
                form.files.push(Upload { field: name, file_name, bytes });
            }
            None => form.fields.push((name, field.text().await.map_err(malformed)?)),
        }
    }
    Ok(form)
}

/// Reads a login form (no session yet) and checks its double-submit CSRF token.
pub struct LoginForm {
    pub tenant: TenantRecord,
    pub form: FormData,
}

impl FromRequest<AppState> for LoginForm {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = request.into_parts();
        let AppTenant(tenant) = AppTenant::from_request_parts(&mut parts, state).await?;
        let expected = cookie(&parts.headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
        let form = read_form(&parts.headers, body).await?;
        let submitted = form.get("_csrf");
        if expected.is_empty() || !gokart_engine::secrets::constant_time_eq(&expected, &submitted) {
            return Err(PageError::Csrf);
        }
        Ok(LoginForm { tenant, form })
    }
}
