//! Back office directory items: advertisers, partners, categories, placements, age ranges, genders.
//!
//! Every kind is stored the same way (a name and a JSON body); what differs is which fields a kind
//! has and which it requires, described by one table of [`FieldRule`]s per kind. Creating a partner
//! also issues its Partner API token and its dashboard (portal) login, both shown once.

use gokart_domain::FieldError;
use gokart_storage::{
    DirectoryItem, DirectoryKind, Page, PageRequest, TenantRecord, Tx, UserRecord, UserRole,
};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    secrets::{hash_password, random_token},
    Engine, EngineError, EngineResult,
};

/// Longest name of any item.
pub const NAME_MAX_CHARS: usize = 200;
/// Longest value of any other text field.
pub const TEXT_MAX_CHARS: usize = 2_000;
/// Ages that an age range may name.
pub const AGE_MAX: i64 = 150;

/// A created item with what is shown only once: for a partner, its credentials.
#[derive(Debug, Clone)]
pub struct CreatedItem {
    pub item: DirectoryItem,
    pub partner_credentials: Option<PartnerCredentials>,
}

/// A new partner's Partner API token and portal login; neither can be shown again.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerCredentials {
    pub api_token: String,
    pub portal_email: String,
    pub portal_password: String,
    pub portal_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Text,
    Email,
    Url,
    Age,
}

struct FieldRule {
    name: &'static str,
    field_type: FieldType,
    required: bool,
}

const fn required(name: &'static str, field_type: FieldType) -> FieldRule {
    FieldRule { name, field_type, required: true }
}

const fn optional(name: &'static str, field_type: FieldType) -> FieldRule {
    FieldRule { name, field_type, required: false }
}

const ADVERTISER_FIELDS: &[FieldRule] = &[
    required("name", FieldType::Text),
    optional("contactName", FieldType::Text),
    optional("email", FieldType::Email),
    optional("phone", FieldType::Text),
    optional("website", FieldType::Url),
    optional("address", FieldType::Text),
    optional("country", FieldType::Text),
    optional("billingName", FieldType::Text),
    optional("billingEmail", FieldType::Email),
    optional("billingAddress", FieldType::Text),
    optional("taxId", FieldType::Text),
    optional("paymentTerms", FieldType::Text),
    optional("notes", FieldType::Text),
];

const PARTNER_FIELDS: &[FieldRule] = &[
    required("name", FieldType::Text),
    required("email", FieldType::Email),
    optional("contactName", FieldType::Text),
    optional("company", FieldType::Text),
    optional("phone", FieldType::Text),
    optional("website", FieldType::Url),
    optional("notes", FieldType::Text),
];

const NAME_ONLY: &[FieldRule] = &[required("name", FieldType::Text)];

/// `valueTo` may be left out for an open range ("18+").
const AGE_RANGE_FIELDS: &[FieldRule] =
    &[required("valueFrom", FieldType::Age), optional("valueTo", FieldType::Age)];

fn rules(kind: DirectoryKind) -> &'static [FieldRule] {
    match kind {
        DirectoryKind::Advertisers => ADVERTISER_FIELDS,
        DirectoryKind::Partners => PARTNER_FIELDS,
        DirectoryKind::Categories | DirectoryKind::Placements | DirectoryKind::Genders => NAME_ONLY,
        DirectoryKind::AgeRanges => AGE_RANGE_FIELDS,
    }
}

/// The item's JSON as the API shows it: its fields, `id`, `name`, `createdAt`, `updatedAt`.
pub fn item_json(item: &DirectoryItem) -> Value {
    let mut body = item.body.as_object().cloned().unwrap_or_default();
    body.insert("id".into(), item.id.to_string().into());
    body.insert("name".into(), item.name.clone().into());
    body.insert("createdAt".into(), gokart_domain::time::iso(item.created_at).into());
    body.insert("updatedAt".into(), gokart_domain::time::iso(item.updated_at).into());
    Value::Object(body)
}

impl Engine {
    /// Creates an item of `kind` from its JSON body (camelCase; unknown fields are ignored).
    pub async fn create_item(
        &self,
        tenant: &TenantRecord,
        kind: DirectoryKind,
        body: &Value,
    ) -> EngineResult<CreatedItem> {
        let (name, fields) = checked_body(kind, body)?;
        let now = self.now();
        // Time-ordered, so items made at the same instant still list in the order they were made.
        let id = Uuid::now_v7();
        let item = DirectoryItem {
            id,
            tenant_id: tenant.id,
            kind,
            name,
            body: with_identity(fields, id),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.store.write().await?;
        check_unique(&mut *tx, &item).await?;
        tx.insert_directory_item(&item).await?;
        let partner_credentials = match kind {
            DirectoryKind::Partners => {
                Some(self.partner_credentials(&mut *tx, tenant, &item).await?)
            }
            _ => None,
        };
        tx.commit().await?;
        Ok(CreatedItem { item, partner_credentials })
    }

    /// Replaces an item's fields (a full update, as `PUT`). A partner keeps its token and login.
    pub async fn update_item(
        &self,
        tenant: &TenantRecord,
        kind: DirectoryKind,
        id: Uuid,
        body: &Value,
    ) -> EngineResult<DirectoryItem> {
        let (name, fields) = checked_body(kind, body)?;
        let mut tx = self.store.write().await?;
        let existing =
            tx.directory_item(tenant.id, kind, id).await?.ok_or(EngineError::NotFound)?;
        let item = DirectoryItem {
            name,
            body: with_identity(fields, id),
            updated_at: self.now(),
            ..existing
        };
        check_unique(&mut *tx, &item).await?;
        if !tx.update_directory_item(&item).await? {
            return Err(EngineError::NotFound);
        }
        tx.commit().await?;
        Ok(item)
    }

    pub async fn get_item(
        &self,
        tenant: &TenantRecord,
        kind: DirectoryKind,
        id: Uuid,
    ) -> EngineResult<DirectoryItem> {
        let mut tx = self.store.read().await?;
        tx.directory_item(tenant.id, kind, id).await?.ok_or(EngineError::NotFound)
    }

    pub async fn list_items(
        &self,
        tenant: &TenantRecord,
        kind: DirectoryKind,
        page: PageRequest,
    ) -> EngineResult<Page<DirectoryItem>> {
        let mut tx = self.store.read().await?;
        Ok(tx.list_directory_items(tenant.id, kind, page).await?)
    }

    /// The partner's Partner API token and a portal login (role Partner) with a fresh password.
    async fn partner_credentials(
        &self,
        tx: &mut dyn Tx,
        tenant: &TenantRecord,
        partner: &DirectoryItem,
    ) -> EngineResult<PartnerCredentials> {
        let email = partner.body["email"].as_str().unwrap_or_default().to_owned();
        if tx.user_by_email(tenant.id, &email).await?.is_some() {
            return Err(EngineError::Conflict(format!("the email {email} already has a login")));
        }
        let password = random_token(12);
        tx.insert_user(&UserRecord {
            id: Uuid::new_v4(),
            tenant_id: tenant.id,
            email: email.clone(),
            password_hash: hash_password(&password),
            role: UserRole::Partner,
            partner_id: Some(partner.id),
            created_at: self.now(),
        })
        .await?;
        let api_token = self.issue_partner_token(tx, tenant.id, partner.id).await?;
        Ok(PartnerCredentials {
            api_token,
            portal_email: email,
            portal_password: password,
            portal_url: format!("{}/", self.urls.app_origin(&tenant.slug)),
        })
    }
}

fn with_identity(mut fields: Map<String, Value>, id: Uuid) -> Value {
    fields.insert("id".into(), id.to_string().into());
    Value::Object(fields)
}

/// Checks `body` against the kind's rules; answers the item's name and its normalised fields
/// (texts trimmed, emails lower-cased, empty optional fields left out, unknown fields dropped).
fn checked_body(kind: DirectoryKind, body: &Value) -> EngineResult<(String, Map<String, Value>)> {
    let object = body
        .as_object()
        .ok_or_else(|| EngineError::invalid("body", "a JSON object is required"))?;
    let mut problems = Vec::new();
    let mut fields = Map::new();
    for rule in rules(kind) {
        match checked_field(rule, object.get(rule.name)) {
            Ok(Some(value)) => {
                fields.insert(rule.name.to_owned(), value);
            }
            Ok(None) if rule.required => problems.push(FieldError::new(rule.name, "is required")),
            Ok(None) => {}
            Err(message) => problems.push(FieldError::new(rule.name, message)),
        }
    }
    if kind == DirectoryKind::AgeRanges {
        check_age_range(&mut fields, &mut problems);
    }
    if !problems.is_empty() {
        return Err(EngineError::Invalid(problems));
    }
    let name = fields.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok((name, fields))
}

/// `Ok(None)` for a missing, null or blank value.
fn checked_field(rule: &FieldRule, value: Option<&Value>) -> Result<Option<Value>, String> {
    let value = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    if rule.field_type == FieldType::Age {
        let age = value.as_i64().ok_or("must be a whole number")?;
        if !(0..=AGE_MAX).contains(&age) {
            return Err(format!("must be between 0 and {AGE_MAX}"));
        }
        return Ok(Some(age.into()));
    }
    let text = value.as_str().ok_or("must be a string")?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let limit = if rule.name == "name" { NAME_MAX_CHARS } else { TEXT_MAX_CHARS };
    if text.chars().count() > limit {
        return Err(format!("must be at most {limit} characters"));
    }
    let text = match rule.field_type {
        FieldType::Email => {
            let email = text.to_lowercase();
            let valid = email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
            if !valid || email.contains(char::is_whitespace) {
                return Err("must be an email address".into());
            }
            email
        }
        FieldType::Url => {
            let url = url::Url::parse(text).map_err(|_| "must be an absolute http(s) URL")?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err("must be an http or https URL".into());
            }
            text.to_owned()
        }
        FieldType::Text | FieldType::Age => text.to_owned(),
    };
    Ok(Some(text.into()))
}

/// `valueFrom` ≤ `valueTo`; the range's name is derived: "18-24", or "18+" without an upper end.
fn check_age_range(fields: &mut Map<String, Value>, problems: &mut Vec<FieldError>) {
    let from = fields.get("valueFrom").and_then(Value::as_i64);
    let to = fields.get("valueTo").and_then(Value::as_i64);
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            problems.push(FieldError::new("valueTo", "must not be less than valueFrom"));
        }
    }
    let name = match (from, to) {
        (Some(from), Some(to)) => format!("{from}-{to}"),
        (Some(from), None) => format!("{from}+"),
        _ => return,
    };
    fields.insert("name".into(), name.into());
}

/// Names of categories, placements, genders and age ranges are unique within a tenant (compared
/// without case); so are partners' emails. Advertisers may share a name.
async fn check_unique(tx: &mut dyn Tx, item: &DirectoryItem) -> EngineResult<()> {
    let (field, value) = match item.kind {
        DirectoryKind::Advertisers => return Ok(()),
        DirectoryKind::Partners => ("email", item.body["email"].as_str().unwrap_or_default()),
        _ => ("name", item.name.as_str()),
    };
    let others = tx.list_directory_items(item.tenant_id, item.kind, PageRequest::ALL).await?;
    let taken = others.items.iter().any(|other| {
        other.id != item.id
            && other.body[field].as_str().is_some_and(|v| v.eq_ignore_ascii_case(value))
    });
    if taken {
        return Err(EngineError::Conflict(format!(
            "another item of {} already has the {field} {value:?}",
            item.kind.as_str()
        )));
    }
    Ok(())
}
