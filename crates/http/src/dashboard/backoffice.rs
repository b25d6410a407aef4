//! Back Office: advertisers, partners (with their portal login, shown once), categories, genders,
//! age ranges and placements; one page shape for every kind.

use axum::{
    extract::{Path, State},
    routing::get,
    Router,
};
use gokart_engine::EngineError;
use gokart_storage::{DirectoryKind, PageRequest};
use minijinja::context;
use serde_json::{Map, Value};

use super::{
    page::{render_status, PageError, PageResult},
    session::{FormData, Posted, SignedIn, Staff},
    wizard::Errors,
};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/back-office",
            get(|| async { axum::response::Redirect::to("/back-office/advertisers") }),
        )
        .route("/back-office/{kind}", get(page).post(create))
}

/// A field of a kind's form: JSON name, label, input type, required.
struct Field(&'static str, &'static str, &'static str, bool);

fn fields(kind: DirectoryKind) -> &'static [Field] {
    match kind {
        DirectoryKind::Advertisers => &[
            Field("name", "Advertiser name", "text", true),
            Field("contactName", "Contact name", "text", false),
            Field("email", "Email", "email", false),
            Field("website", "Website", "url", false),
        ],
        DirectoryKind::Partners => &[
            Field("name", "Publisher name", "text", true),
            Field("email", "Email (portal login)", "email", true),
            Field("contactName", "Contact name", "text", false),
            Field("company", "Company", "text", false),
        ],
        DirectoryKind::AgeRanges => &[
            Field("valueFrom", "From age", "number", true),
            Field("valueTo", "To age (empty for no upper limit)", "number", false),
        ],
        DirectoryKind::Categories | DirectoryKind::Genders | DirectoryKind::Placements => {
            &[Field("name", "Name", "text", true)]
        }
    }
}

fn title(kind: DirectoryKind) -> &'static str {
    match kind {
        DirectoryKind::Advertisers => "Advertisers",
        DirectoryKind::Partners => "Partners",
        DirectoryKind::Categories => "Categories",
        DirectoryKind::Genders => "Genders",
        DirectoryKind::AgeRanges => "Age Ranges",
        DirectoryKind::Placements => "Placements",
    }
}

fn kind_of(text: &str) -> Result<DirectoryKind, PageError> {
    DirectoryKind::parse(text).ok_or(PageError::NotFound)
}

async fn page(
    State(state): State<AppState>,
    Staff(signed): Staff,
    Path(kind): Path<String>,
) -> PageResult {
    let kind = kind_of(&kind)?;
    render_kind(&state, &signed, kind, &Map::new(), &Errors::new(), None).await
}

async fn render_kind(
    state: &AppState,
    signed: &SignedIn,
    kind: DirectoryKind,
    values: &Map<String, Value>,
    errors: &Errors,
    created: Option<minijinja::Value>,
) -> PageResult {
    let items = state.engine.list_items(&signed.tenant, kind, PageRequest::ALL).await?;
    let form_fields: Vec<_> = fields(kind)
        .iter()
        .map(|Field(name, label, input, required)| {
            let value = match values.get(*name) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            context! { name => name, label => label, input => input, required => required, value => value }
        })
        .collect();
    let columns: Vec<_> =
        fields(kind).iter().map(|f| context! { name => f.0, label => f.1 }).collect();
    let rows: Vec<_> = items
        .items
        .iter()
        .map(|item| {
            let cells: Vec<String> = fields(kind)
                .iter()
                .map(|f| match item.body.get(f.0) {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                })
                .collect();
            context! { id => item.id.to_string(), name => item.name, cells => cells }
        })
        .collect();
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::BAD_REQUEST
    };
    Ok(render_status(
        status,
        "backoffice.html",
        Some(&signed.chrome("back-office")),
        context! {
            kind => kind.as_str(),
            title => title(kind),
            kinds => DirectoryKind::ALL.iter().map(|k| context! { slug => k.as_str(), title => title(*k) }).collect::<Vec<_>>(),
            fields => form_fields,
            columns => columns,
            rows => rows,
            errors => errors,
            created => created,
        },
    ))
}

/// The form as the API's JSON body: ages as numbers, empty fields left out.
fn body_of(kind: DirectoryKind, form: &FormData, errors: &mut Errors) -> Map<String, Value> {
    let mut body = Map::new();
    for Field(name, _, input, _) in fields(kind) {
        let text = form.get(name);
        if text.is_empty() {
            continue;
        }
        if *input == "number" {
            match text.parse::<i64>() {
                Ok(number) => {
                    body.insert((*name).into(), number.into());
                }
                Err(_) => {
                    errors.insert((*name).into(), "Enter a whole number.".into());
                    body.insert((*name).into(), text.into());
                }
            }
        } else {
            body.insert((*name).into(), text.into());
        }
    }
    body
}

async fn create(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    posted: Posted,
) -> PageResult {
    posted.signed.staff()?;
    let kind = kind_of(&kind)?;
    let signed = &posted.signed;
    let mut errors = Errors::new();
    let body = body_of(kind, &posted.form, &mut errors);
    if !errors.is_empty() {
        return render_kind(&state, signed, kind, &body, &errors, None).await;
    }
    match state.engine.create_item(&signed.tenant, kind, &Value::Object(body.clone())).await {
        Ok(created) => {
            let shown_once = created.partner_credentials.map(|credentials| {
                context! {
                    name => created.item.name,
                    portal_url => credentials.portal_url,
                    portal_email => credentials.portal_email,
                    portal_password => credentials.portal_password,
                    api_token => credentials.api_token,
                }
            });
            let shown_once = shown_once.or_else(|| Some(context! { name => created.item.name }));
            render_kind(&state, signed, kind, &Map::new(), &Errors::new(), shown_once).await
        }
        Err(EngineError::Invalid(problems)) => {
            for problem in problems {
                errors.insert(problem.field.clone(), capitalised(&problem.message));
            }
            render_kind(&state, signed, kind, &body, &errors, None).await
        }
        Err(EngineError::Conflict(message)) => {
            errors.insert(fields(kind)[0].0.into(), capitalised(&message));
            render_kind(&state, signed, kind, &body, &errors, None).await
        }
        Err(other) => Err(other.into()),
    }
}

fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}
