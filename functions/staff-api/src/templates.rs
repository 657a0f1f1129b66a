//! Message templates (`whatsapp_template` view / load_template):
//! - `GET /api/v1/templates?status=&language=&name=&category=&sendable=&include_gone=&limit=&cursor=`
//! - `GET /api/v1/templates/{name}/{language}`
//! - `POST /api/v1/templates/load`: runs the same sync as the hourly template-sync function
//!   ([`shared::templates::sync`]) and reports what it did.
//!
//! Also the check of a template send against the stored template ([`check_send`]), used by
//! the replies of the inbox before anything is recorded or sent.
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::auth::{Action, Permission, Resource};
use shared::meta::graph::GraphError;
use shared::meta::outbound::TemplateMessage;
use shared::store::templates::{StoredTemplate, TemplateFilter};
use shared::templates::{SyncError, check_template_send, template_shape};

use crate::inbox::Messaging;
use crate::{ApiError, Authed, StaffApp, parse_limit};

pub(crate) const TEMPLATE_VIEW: Permission = Permission {
    resource: Resource::WhatsappTemplate,
    action: Action::View,
};
pub(crate) const TEMPLATE_LOAD: Permission = Permission {
    resource: Resource::WhatsappTemplate,
    action: Action::LoadTemplate,
};

pub fn routes() -> Router<Arc<StaffApp>> {
    Router::new()
        .route("/api/v1/templates", get(list_templates))
        .route("/api/v1/templates/load", post(load_templates))
        .route("/api/v1/templates/{name}/{language}", get(get_template))
}

/// The WABA whose templates are served: the one of the Meta secret.
async fn waba_id(m: &Messaging) -> Result<String, ApiError> {
    let s = m.meta_secrets.get().await.map_err(|e| {
        tracing::error!(error = %e, "Meta credentials unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secrets_unavailable",
            "Meta credentials are unavailable",
        )
    })?;
    let w = s.waba_id.trim();
    if w.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_connected",
            "no WABA id is configured (connection settings): there are no templates",
        ));
    }
    Ok(w.to_string())
}

pub(crate) fn template_json(t: &StoredTemplate) -> Value {
    let components = t.components_json();
    json!({
        "id": t.template_id,
        "name": t.name,
        "language": t.language,
        "category": t.category,
        "status": t.status,
        "reason": t.reason,
        "status_at": t.status_at,
        "parameter_format": if t.is_named() { "NAMED" } else { "POSITIONAL" },
        "components": components,
        "parameters": template_shape(&components),
        "sendable": t.is_sendable(),
        "gone": t.gone,
        "gone_at": t.gone_at,
        "synced_at": t.synced_at,
        "updated_at": t.updated_at,
        "quality": t.quality_score.as_ref().map(|q| json!({
            "score": q,
            "previous": t.quality_previous.as_deref().filter(|p| !p.is_empty()),
            "at": t.quality_at,
        })),
        "category_previous": t.category_previous.as_deref().filter(|p| !p.is_empty()),
        "category_change": t.category_pending.as_ref().map(|c| json!({
            "to": c,
            "effective_at": t.category_pending_at,
        })),
        "components_at": t.components_at,
    })
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    language: Option<String>,
    name: Option<String>,
    category: Option<String>,
    sendable: Option<String>,
    include_gone: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn flag(v: Option<&str>, field: &str) -> Result<bool, ApiError> {
    match v {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::bad_request(format!(
            "{field} must be true or false"
        ))),
    }
}

/// A filter value made of `allowed` characters, at most `max` long; empty means none.
fn filter_value(
    v: Option<String>,
    field: &str,
    max: usize,
    allowed: fn(u8) -> bool,
    example: &str,
) -> Result<Option<String>, ApiError> {
    match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.len() <= max && s.bytes().all(allowed) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!(
            "{field} must be {example} (at most {max} characters)"
        ))),
    }
}

/// `GET /api/v1/templates`: stored templates, name / language order. `sendable=true` keeps
/// only approved templates Meta still lists and a sync has loaded (the ones that can be sent).
async fn list_templates(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(TEMPLATE_VIEW)?;
    let upper = |b: u8| b.is_ascii_uppercase() || b == b'_';
    let status = filter_value(
        q.status.map(|s| s.to_ascii_uppercase()),
        "status",
        32,
        upper,
        "a template status such as APPROVED",
    )?;
    let category = filter_value(
        q.category.map(|s| s.to_ascii_uppercase()),
        "category",
        32,
        upper,
        "MARKETING, UTILITY or AUTHENTICATION",
    )?;
    let language = filter_value(
        q.language,
        "language",
        16,
        |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
        "a language code such as en_US",
    )?;
    let name = filter_value(
        q.name.map(|s| s.to_ascii_lowercase()),
        "name",
        512,
        |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_',
        "part of a template name (letters, digits, underscores)",
    )?;
    let sendable = flag(q.sendable.as_deref(), "sendable")?;
    let include_gone = flag(q.include_gone.as_deref(), "include_gone")?;
    if sendable && status.as_deref().is_some_and(|s| s != "APPROVED") {
        return Err(ApiError::bad_request(
            "sendable=true lists APPROVED templates only; drop the status filter",
        ));
    }
    let filter = TemplateFilter {
        status: if sendable {
            Some("APPROVED".into())
        } else {
            status
        },
        language,
        category,
        name_contains: name,
        include_gone: include_gone && !sendable,
        loaded_only: sendable,
    };
    let limit = parse_limit(q.limit.as_deref(), 100, 200)?;
    let m = app.messaging()?;
    let waba = waba_id(m).await?;
    let scope = format!("templates:{waba}:{filter:?}");
    let after: Option<String> = crate::decode_cursor_as(
        &keys,
        &scope,
        q.cursor.as_deref(),
        "cursor is invalid for this list (filters must stay the same)",
    )?;
    let (rows, next) = app
        .store
        .template_page(&waba, &filter, after.as_deref(), limit)
        .await?;
    let last_sync = app.store.template_sync(&waba).await?.map(|s| {
        json!({"started_at": s.started_at, "finished_at": s.finished_at, "loaded": s.loaded,
               "created": s.created, "updated": s.updated, "gone": s.gone})
    });
    Ok(axum::Json(json!({
        "data": rows.iter().map(template_json).collect::<Vec<_>>(),
        "next_cursor": next.map(|n| keys.cursors.encode(&scope, &n)),
        "last_sync": last_sync,
    }))
    .into_response())
}

fn not_found(name: &str, language: &str, others: &[StoredTemplate]) -> ApiError {
    let message = if others.is_empty() {
        format!(
            "template {name} ({language}) is not known; if it was just created at Meta, load the templates (POST /api/v1/templates/load)"
        )
    } else {
        let langs: Vec<&str> = others.iter().map(|t| t.language.as_str()).collect();
        format!(
            "template {name} is not stored in {language}; it is in {}",
            langs.join(", ")
        )
    };
    ApiError::new(StatusCode::NOT_FOUND, "template_not_found", message)
}

/// `GET /api/v1/templates/{name}/{language}`.
async fn get_template(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path((name, language)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    who.require(TEMPLATE_VIEW)?;
    let m = app.messaging()?;
    let waba = waba_id(m).await?;
    if name.contains('#') || language.contains('#') {
        return Err(not_found(&name, &language, &[]));
    }
    match app.store.template(&waba, &name, &language).await? {
        Some(t) => Ok(axum::Json(template_json(&t)).into_response()),
        None => {
            let others = app.store.template_languages(&waba, &name).await?;
            Err(not_found(&name, &language, &others))
        }
    }
}

/// HTTP answer for a failed sync.
fn sync_refusal(e: SyncError) -> ApiError {
    match e {
        SyncError::Secrets(m) => {
            tracing::error!(error = %m, "Meta credentials unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "secrets_unavailable",
                "Meta credentials are unavailable",
            )
        }
        SyncError::NotConnected(m) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_connected", m)
        }
        SyncError::Store(e) => e.into(),
        SyncError::Graph(g) => {
            tracing::warn!(error = %g, "template list failed");
            match &g {
                GraphError::Meta {
                    code,
                    message,
                    class,
                    ..
                } => ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "meta_error",
                    format!(
                        "Meta refused the template list ({code}, {}): {message}; nothing was changed",
                        class.as_str()
                    ),
                ),
                GraphError::NotSent(m) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "meta_unreachable",
                    format!("Meta could not be reached: {m}; nothing was changed"),
                ),
                GraphError::Unknown(m) => ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "meta_timeout",
                    format!("Meta did not answer in time: {m}; nothing was changed"),
                ),
                GraphError::Validation(v) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_connected",
                    format!("the connection settings are not usable: {v}"),
                ),
                other => ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "meta_error",
                    format!("{other}; nothing was changed"),
                ),
            }
        }
    }
}

/// `POST /api/v1/templates/load`: loads every template from Meta now.
async fn load_templates(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Response, ApiError> {
    who.require(TEMPLATE_LOAD)?;
    let m = app.messaging()?;
    let report = shared::templates::sync(&app.store, &m.graph, &m.meta_secrets, app.now_ms)
        .await
        .map_err(sync_refusal)?;
    tracing::info!(staff_id = %who.staff_id, loaded = report.loaded, gone = report.gone, "templates loaded on demand");
    Ok(axum::Json(report).into_response())
}

/// Checks a template send against the stored template before anything is recorded or sent:
/// 404 `template_not_found` when it is not stored, 422 `template_invalid` when it is not
/// approved or its parameters do not match.
pub(crate) async fn check_send(
    app: &StaffApp,
    m: &Messaging,
    t: &TemplateMessage,
) -> Result<(), ApiError> {
    let waba = waba_id(m).await?;
    let Some(stored) = app.store.template(&waba, &t.name, &t.language).await? else {
        let others = app.store.template_languages(&waba, &t.name).await?;
        return Err(not_found(&t.name, &t.language, &others));
    };
    check_template_send(&stored, t).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template_invalid",
            e.to_string(),
        )
    })
}
