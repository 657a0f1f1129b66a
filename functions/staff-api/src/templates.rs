//! Message templates (`whatsapp_template` view / load_template):
//! - `GET /api/v1/templates?status=&language=&name=&category=&sendable=&include_gone=&limit=&cursor=`
//! - `GET /api/v1/templates/{name}/{language}`
//! - `POST /api/v1/templates/load`: runs the same sync as the hourly template-sync function
//!   ([`shared::templates::sync`]) and reports what it did.
//!
//! Also the check of a template send against the stored template ([`check_send`]), used by
//! the replies of the inbox before anything is recorded or sent.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::auth::{Action, Permission, Resource};
use shared::meta::graph::GraphError;
use shared::meta::outbound::TemplateMessage;
use shared::store::templates::{StoredTemplate, TemplateFilter, TemplateSyncRecord};
use shared::templates::{
    SyncError, SyncReport, TemplateShape, check_template_send, template_shape,
};
use utoipa::{IntoParams, ToSchema};

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

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![list_templates, load_templates, get_template]
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
            StatusCode::CONFLICT,
            "not_connected",
            "no WABA id is configured (connection settings): there are no templates",
        ));
    }
    Ok(w.to_string())
}

/// Meta's quality rating of a template.
#[derive(Serialize, ToSchema)]
pub struct TemplateQuality {
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    pub score: String,
    /// The rating before it.
    pub previous: Option<String>,
    /// When it changed (epoch ms).
    pub at: Option<i64>,
}

/// A category change Meta announced.
#[derive(Serialize, ToSchema)]
pub struct TemplateCategoryChange {
    /// The category the template gets.
    pub to: String,
    /// When (epoch ms).
    pub effective_at: Option<i64>,
}

/// A stored message template.
#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    /// Meta's template id.
    pub id: Option<String>,
    pub name: String,
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: Option<String>,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, … (`DELETED` once gone).
    pub status: Option<String>,
    /// Reason Meta gave with the last status change.
    pub reason: Option<String>,
    /// When the status was true (epoch ms).
    pub status_at: Option<i64>,
    /// `POSITIONAL` or `NAMED`.
    #[schema(example = "POSITIONAL")]
    pub parameter_format: String,
    /// Meta's `components` array (empty until a load has seen the template).
    #[schema(value_type = Vec<Object>)]
    pub components: Vec<Value>,
    /// What a send of the template must fill.
    pub parameters: TemplateShape,
    /// Approved, still listed by Meta and loaded: it can be sent.
    pub sendable: bool,
    /// Meta no longer lists it.
    pub gone: bool,
    pub gone_at: Option<i64>,
    /// Last load that listed it (epoch ms).
    pub synced_at: Option<i64>,
    /// Last change (epoch ms).
    pub updated_at: Option<i64>,
    pub quality: Option<TemplateQuality>,
    /// The category before the last category change.
    pub category_previous: Option<String>,
    pub category_change: Option<TemplateCategoryChange>,
    /// When the components last changed (epoch ms).
    pub components_at: Option<i64>,
}

impl TemplateView {
    pub(crate) fn new(t: &StoredTemplate) -> Self {
        let components = t.components_json();
        let parameters = template_shape(&components);
        Self {
            id: t.template_id.clone(),
            name: t.name.clone(),
            language: t.language.clone(),
            category: t.category.clone(),
            status: t.status.clone(),
            reason: t.reason.clone(),
            status_at: t.status_at,
            parameter_format: if t.is_named() { "NAMED" } else { "POSITIONAL" }.to_string(),
            components,
            parameters,
            sendable: t.is_sendable(),
            gone: t.gone,
            gone_at: t.gone_at,
            synced_at: t.synced_at,
            updated_at: t.updated_at,
            quality: t.quality_score.as_ref().map(|q| TemplateQuality {
                score: q.clone(),
                previous: t.quality_previous.clone().filter(|p| !p.is_empty()),
                at: t.quality_at,
            }),
            category_previous: t.category_previous.clone().filter(|p| !p.is_empty()),
            category_change: t.category_pending.as_ref().map(|c| TemplateCategoryChange {
                to: c.clone(),
                effective_at: t.category_pending_at,
            }),
            components_at: t.components_at,
        }
    }
}

/// The last template load of the WABA.
#[derive(Serialize, ToSchema)]
pub struct TemplateSyncView {
    /// Epoch milliseconds.
    pub started_at: i64,
    /// Epoch milliseconds.
    pub finished_at: i64,
    /// Templates Meta listed.
    pub loaded: u64,
    pub created: u64,
    pub updated: u64,
    /// Flagged gone (no longer listed).
    pub gone: u64,
}

impl TemplateSyncView {
    fn new(s: &TemplateSyncRecord) -> Self {
        Self {
            started_at: s.started_at,
            finished_at: s.finished_at,
            loaded: s.loaded,
            created: s.created,
            updated: s.updated,
            gone: s.gone,
        }
    }
}

/// A page of templates and the last load.
#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    pub data: Vec<TemplateView>,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
    /// Absent when the templates were never loaded.
    pub last_sync: Option<TemplateSyncView>,
}

/// Filters and paging of the template list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// A template status such as `APPROVED` (at most 32 characters).
    status: Option<String>,
    /// A language code such as `en_US` (at most 16 characters).
    language: Option<String>,
    /// Part of a template name: letters, digits, underscores (at most 512 characters).
    name: Option<String>,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    category: Option<String>,
    /// `true`: only the templates that can be sent (approved, still listed, loaded).
    sendable: Option<String>,
    /// `true`: also the templates Meta no longer lists.
    include_gone: Option<String>,
    /// Page size: 1–200, default 100.
    limit: Option<String>,
    /// `next_cursor` of the previous page (the filters must stay the same).
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
#[utoipa::path(
    get,
    path = "/api/v1/templates",
    tag = "templates",
    summary = "Message templates",
    description = "Stored templates in name / language order. `sendable=true` keeps only approved templates Meta still lists and a load has seen (the ones that can be sent).",
    security(("bearer" = ["whatsapp_template:view"])),
    params(ListQuery),
    responses((status = 200, description = "One page of templates and the last load", body = TemplateList))
)]
async fn list_templates(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Json<TemplateList>, ApiError> {
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
    let last_sync = app
        .store
        .template_sync(&waba)
        .await?
        .map(|s| TemplateSyncView::new(&s));
    Ok(Json(TemplateList {
        data: rows.iter().map(TemplateView::new).collect(),
        next_cursor: next.map(|n| keys.cursors.encode(&scope, &n)),
        last_sync,
    }))
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
#[utoipa::path(
    get,
    path = "/api/v1/templates/{name}/{language}",
    tag = "templates",
    summary = "One template",
    security(("bearer" = ["whatsapp_template:view"])),
    params(
        ("name" = String, Path, description = "Template name"),
        ("language" = String, Path, description = "Language code, e.g. `en_US`")
    ),
    responses((status = 200, description = "The template", body = TemplateView))
)]
async fn get_template(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path((name, language)): Path<(String, String)>,
) -> Result<Json<TemplateView>, ApiError> {
    who.require(TEMPLATE_VIEW)?;
    let m = app.messaging()?;
    let waba = waba_id(m).await?;
    if name.contains('#') || language.contains('#') {
        return Err(not_found(&name, &language, &[]));
    }
    match app.store.template(&waba, &name, &language).await? {
        Some(t) => Ok(Json(TemplateView::new(&t))),
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
        SyncError::NotConnected(m) => ApiError::new(StatusCode::CONFLICT, "not_connected", m),
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
                    StatusCode::CONFLICT,
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

/// Whose templates to load.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoadQuery {
    /// `inbox` (default: the connection's WABA) or `notifications` (the WABA event
    /// notifications use, as `/api/v1/settings/notifications-connection/effective` reports).
    pub source: Option<String>,
}

/// `POST /api/v1/templates/load`: loads every template from Meta now.
#[utoipa::path(
    post,
    path = "/api/v1/templates/load",
    tag = "templates",
    summary = "Load every template from Meta now",
    description = "Runs the same load as the hourly template sync and reports what it did. No request body is needed. `source=notifications` loads the notification WABA's templates (kept apart by WABA id).",
    security(("bearer" = ["whatsapp_template:load_template"])),
    params(LoadQuery),
    responses((status = 200, description = "What the load did", body = SyncReport))
)]
async fn load_templates(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Query(q): Query<LoadQuery>,
) -> Result<Json<SyncReport>, ApiError> {
    who.require(TEMPLATE_LOAD)?;
    let m = app.messaging()?;
    let report = match q.source.as_deref().unwrap_or("inbox") {
        "inbox" => shared::templates::sync(&app.store, &m.graph, &m.meta_secrets, app.now_ms)
            .await
            .map_err(sync_refusal)?,
        "notifications" => {
            let e = crate::settings::effective(app.settings_backend()?).await?;
            if e.waba_id.trim().is_empty() || e.access_token.is_empty() {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "not_connected",
                    format!(
                        "the {} credentials used by notifications lack an access token or a waba_id",
                        e.source.as_str()
                    ),
                ));
            }
            shared::templates::sync_waba(
                &app.store,
                &m.graph,
                e.waba_id.trim(),
                e.access_token.expose(),
                app.now_ms,
            )
            .await
            .map_err(sync_refusal)?
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "source: inbox or notifications, not {other:?}"
            )));
        }
    };
    tracing::info!(staff_id = %who.staff_id, waba_id = %report.waba_id, loaded = report.loaded, gone = report.gone, "templates loaded on demand");
    Ok(Json(report))
}

/// Checks a template send against the stored template before anything is recorded or sent:
/// 404 `template_not_found` when it is not stored, 422 `template_invalid` when it is not
/// approved or its parameters do not match.
pub(crate) async fn check_send(
    app: &StaffApp,
    m: &Messaging,
    t: &TemplateMessage,
) -> Result<StoredTemplate, ApiError> {
    check_send_in(app, &waba_id(m).await?, t).await
}

/// [`check_send`] against the templates of `waba` (the notification WABA, say).
pub(crate) async fn check_send_in(
    app: &StaffApp,
    waba: &str,
    t: &TemplateMessage,
) -> Result<StoredTemplate, ApiError> {
    let Some(stored) = app.store.template(waba, &t.name, &t.language).await? else {
        let others = app.store.template_languages(waba, &t.name).await?;
        return Err(not_found(&t.name, &t.language, &others));
    };
    check_template_send(&stored, t).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "template_invalid",
            e.to_string(),
        )
    })?;
    Ok(stored)
}
