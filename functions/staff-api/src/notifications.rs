//! `/api/v1/notifications`: CRM event notifications (admin only, as the seed keeps the whole
//! `whatsapp_api` module to admins). Mappings of CRM hooks to approved templates of the
//! notification WABA, validated on save against the stored template (the error naming the
//! field); a preview of the exact Graph API body for a sample event; a test send; the log.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::meta::outbound::{
    OutboundContent, OutboundMessage, TemplateComponent, TemplateMessage, TemplateParameter,
};
use shared::notifications::render::{EventFields, check_text};
use shared::notifications::{CATEGORIES, HOOKS, Occurrence, SendTo, answers, occurrences};
use shared::store::crud::new_id;
use shared::store::notifications::{
    MAPPINGS_PK, NotificationLog, NotificationMapping, NotifyStatus,
};
use utoipa::{IntoParams, ToSchema};

use crate::admin_crud::{PageAsked, path_id};
use crate::conversations::Page;
use crate::{ApiError, Authed, StaffApp, parse_json};

const LOG_SCOPE: &str = "notification-log";

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![list, create, read, update, remove, preview, test_send, log]
}

/// A mapping as saved: a CRM hook → an approved template → a person.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingBody {
    /// 1 to 100 characters.
    #[schema(example = "Welcome new leads")]
    pub name: String,
    /// `leads`, `contacts`, `invoice`, `task`, `project`, `proposal`, `payment`, `ticket` or
    /// `reminders` (for `after_cron_run`: the category of the reminders it sends).
    #[schema(example = "leads")]
    pub category: String,
    /// The hooks it answers: `lead_created`, `web_to_lead_form_submitted`, `contact_created`,
    /// `after_invoice_added`, `after_add_task`, `after_add_project`, `proposal_created`,
    /// `after_payment_added`, `ticket_created`, `after_cron_run`.
    #[schema(example = json!(["lead_created"]))]
    pub hooks: Vec<String>,
    /// `contact` (the customer's primary contact), `lead` or `staff` (the assigned staff member).
    pub send_to: SendTo,
    /// An APPROVED template of the notification WABA. Text parameters may use placeholders
    /// over the event: `{invoice.number}`, `{lead.name:first|there}`, formats `money`, `date`,
    /// `datetime`, `first`, a fallback after `|`.
    pub template: TemplateMessage,
    /// The sender; absent: the notification credentials' number (or the default number).
    #[serde(default)]
    pub phone_number_id: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// A mapping as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct MappingView {
    pub id: String,
    pub name: String,
    pub category: String,
    pub hooks: Vec<String>,
    pub send_to: SendTo,
    pub template: TemplateMessage,
    /// `MARKETING`, `UTILITY`, … (opted-out customers get no marketing template).
    pub template_category: Option<String>,
    pub phone_number_id: Option<String>,
    pub active: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Send it back unchanged with an update (optimistic locking).
    pub version: i64,
}

impl From<&NotificationMapping> for MappingView {
    fn from(m: &NotificationMapping) -> Self {
        Self {
            id: m.id.clone(),
            name: m.name.clone(),
            category: m.category.clone(),
            hooks: m.hooks.clone(),
            send_to: m.send_to,
            template: m.template.clone(),
            template_category: m.template_category.clone(),
            phone_number_id: m.phone_number_id.clone(),
            active: m.active,
            created_by: m.created_by.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

/// Every mapping.
#[derive(Serialize, ToSchema)]
pub struct MappingList {
    pub data: Vec<MappingView>,
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// The text parameters of a template, with their field paths.
fn text_params(t: &TemplateMessage) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for (ci, c) in t.components.iter().enumerate() {
        let params = match c {
            TemplateComponent::Header { parameters }
            | TemplateComponent::Body { parameters }
            | TemplateComponent::Button { parameters, .. } => parameters,
        };
        for (pi, p) in params.iter().enumerate() {
            if let TemplateParameter::Text { text, .. } = p {
                out.push((
                    format!("template.components[{ci}].parameters[{pi}].text"),
                    text.as_str(),
                ));
            }
        }
    }
    out
}

/// The WABA whose templates notifications use (the effective credentials').
async fn notify_waba(app: &StaffApp) -> Result<String, ApiError> {
    let e = crate::settings::effective(app.settings_backend()?).await?;
    let w = e.waba_id.trim().to_string();
    if w.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_connected",
            format!(
                "the {} credentials have no waba_id: set the notification or inbox connection first",
                e.source.as_str()
            ),
        ));
    }
    Ok(w)
}

/// Checks a body and builds the mapping to store.
async fn valid_mapping(
    app: &StaffApp,
    id: String,
    b: MappingBody,
    who: &str,
    created_at: i64,
) -> Result<NotificationMapping, ApiError> {
    let name = b.name.trim();
    if !(1..=100).contains(&name.chars().count()) {
        return Err(bad("name: 1 to 100 characters"));
    }
    if !CATEGORIES.contains(&b.category.as_str()) {
        return Err(bad(format!("category: one of {}", CATEGORIES.join(", "))));
    }
    if b.hooks.is_empty() {
        return Err(bad("hooks: name at least one hook"));
    }
    let mut hooks = Vec::new();
    for (i, h) in b.hooks.iter().enumerate() {
        if !HOOKS.contains(&h.as_str()) {
            return Err(bad(format!(
                "hooks[{i}]: {h:?} is not a hook; use {}",
                HOOKS.join(", ")
            )));
        }
        if !hooks.contains(h) {
            hooks.push(h.clone());
        }
    }
    for (field, text) in text_params(&b.template) {
        check_text(text).map_err(|why| bad(format!("{field}: {why}")))?;
    }
    if let Some(p) = &b.phone_number_id
        && !((1..=32).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err(bad(
            "phone_number_id: Meta's id of the number, 1 to 32 digits",
        ));
    }
    let waba = notify_waba(app).await?;
    let stored = crate::templates::check_send_in(app, &waba, &b.template).await?;
    let now = (app.now_ms)();
    Ok(NotificationMapping {
        pk: MAPPINGS_PK.into(),
        sk: id.clone(),
        id,
        name: name.to_string(),
        category: b.category,
        hooks,
        send_to: b.send_to,
        template: b.template,
        template_category: stored.category,
        phone_number_id: b.phone_number_id,
        active: b.active,
        created_by: who.to_string(),
        created_at,
        updated_at: now,
        version: 0,
    })
}

async fn load(app: &StaffApp, id: &str) -> Result<NotificationMapping, ApiError> {
    app.store
        .notification_mapping(path_id(id, "mapping")?)
        .await?
        .ok_or_else(|| ApiError::not_found("mapping"))
}

#[utoipa::path(
    get,
    path = "/api/v1/notifications/mappings",
    tag = "notifications",
    summary = "Event notification mappings",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "Every mapping, in creation order", body = MappingList))
)]
async fn list(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<MappingList>, ApiError> {
    who.require_admin()?;
    let all = app.store.notification_mappings().await?;
    Ok(Json(MappingList {
        data: all.iter().map(MappingView::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/notifications/mappings",
    tag = "notifications",
    summary = "Map a CRM hook to an approved template",
    description = "The template must be APPROVED among the notification WABA's templates (404 `template_not_found`, 422 `template_invalid`); placeholders are checked.",
    security(("bearer" = ["admin"])),
    request_body = MappingBody,
    responses((status = 201, description = "Created", body = MappingView))
)]
async fn create(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<MappingView>), ApiError> {
    who.require_admin()?;
    let b: MappingBody = parse_json(&body)?;
    let now = (app.now_ms)();
    let mut m = valid_mapping(&app, new_id(now), b, &who.staff_id, now).await?;
    m.version = 1;
    app.store.create_notification_mapping(&m).await?;
    tracing::info!(staff_id = %who.staff_id, mapping_id = %m.id, "notification mapping created");
    Ok((StatusCode::CREATED, Json(MappingView::from(&m))))
}

#[utoipa::path(
    get,
    path = "/api/v1/notifications/mappings/{id}",
    tag = "notifications",
    summary = "One mapping",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Mapping id")),
    responses((status = 200, description = "The mapping", body = MappingView))
)]
async fn read(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<MappingView>, ApiError> {
    who.require_admin()?;
    Ok(Json(MappingView::from(&load(&app, &id).await?)))
}

#[utoipa::path(
    put,
    path = "/api/v1/notifications/mappings/{id}",
    tag = "notifications",
    summary = "Replace a mapping",
    description = "The whole mapping is replaced and checked as on create. Senders see the change within a minute.",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Mapping id")),
    request_body = MappingBody,
    responses((status = 200, description = "The mapping now", body = MappingView))
)]
async fn update(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<MappingView>, ApiError> {
    who.require_admin()?;
    let b: MappingBody = parse_json(&body)?;
    let old = load(&app, &id).await?;
    let mut new = valid_mapping(&app, old.id.clone(), b, &old.created_by, old.created_at).await?;
    new.created_by = old.created_by.clone();
    let saved = app.store.update_notification_mapping(&old, &new).await?;
    tracing::info!(staff_id = %who.staff_id, mapping_id = %saved.id, "notification mapping changed");
    Ok(Json(MappingView::from(&saved)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/notifications/mappings/{id}",
    tag = "notifications",
    summary = "Delete a mapping",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Mapping id")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require_admin()?;
    app.store
        .delete_notification_mapping(path_id(&id, "mapping")?)
        .await?;
    tracing::info!(staff_id = %who.staff_id, mapping_id = %id, "notification mapping deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A sample event: its `detail` as the CRM would publish it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// The event's detail-type (absent: the mapping's first hook).
    #[serde(default)]
    pub hook: Option<String>,
    /// The event's `detail` (see `schemas/crm/`).
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// Who a mapping would reach.
#[derive(Serialize, ToSchema)]
pub struct PreviewRecipient {
    pub send_to: SendTo,
    pub id: Option<String>,
    pub name: Option<String>,
    /// E.164, when the event gives a usable number.
    pub phone: Option<String>,
}

/// What a mapping would send for the sample event.
#[derive(Serialize, ToSchema)]
pub struct Preview {
    pub recipient: PreviewRecipient,
    /// The Graph API request body of `POST /{phone_number_id}/messages`, exactly as sent
    /// (`biz_opaque_callback_data`, which names the stored message, aside).
    #[schema(value_type = Object)]
    pub body: Value,
}

/// The first occurrence of a sample event that the mapping answers.
fn occurrence<'a>(
    m: &NotificationMapping,
    hook: Option<&'a str>,
    detail: &'a Value,
) -> Result<Occurrence<'a>, ApiError> {
    let hook = match hook {
        Some(h) if HOOKS.contains(&h) => h,
        Some(h) => return Err(bad(format!("hook: {h:?} is not a hook"))),
        None => HOOKS
            .iter()
            .copied()
            .find(|h| m.hooks.iter().any(|x| x == h))
            .unwrap_or(HOOKS[0]),
    };
    occurrences(hook, "sample", detail)
        .into_iter()
        .find(|o| answers(true, &m.hooks, &m.category, o))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_answered",
                format!(
                    "the mapping does not answer this sample: it answers {} (and, for after_cron_run, reminders of category {})",
                    m.hooks.join(", "),
                    m.category
                ),
            )
        })
}

fn rendered(m: &NotificationMapping, o: &Occurrence<'_>) -> Result<TemplateMessage, ApiError> {
    let fields = EventFields::new(o.detail, o.record_root);
    shared::campaigns::params::render(&m.template, &fields).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "parameter_missing",
            e.to_string(),
        )
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/notifications/mappings/{id}/preview",
    tag = "notifications",
    summary = "Render a mapping for a sample event, without sending",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Mapping id")),
    request_body = PreviewBody,
    responses((status = 200, description = "The recipient and the Graph API body", body = Preview))
)]
async fn preview(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Preview>, ApiError> {
    who.require_admin()?;
    let b: PreviewBody = parse_json(&body)?;
    let m = load(&app, &id).await?;
    let o = occurrence(&m, b.hook.as_deref(), &b.detail)?;
    let person = shared::notifications::recipient(o.detail, o.record_root, m.send_to);
    let phone = person
        .as_ref()
        .and_then(|p| p.phone.as_deref())
        .and_then(|p| app.phones.to_e164(p).ok());
    let msg = OutboundMessage {
        to: phone
            .as_deref()
            .map(shared::phone::PhoneNormalizer::digits)
            .unwrap_or_default(),
        reply_to: None,
        biz_opaque_callback_data: None,
        content: OutboundContent::Template(rendered(&m, &o)?),
    };
    Ok(Json(Preview {
        recipient: PreviewRecipient {
            send_to: m.send_to,
            id: person.as_ref().and_then(|p| p.id.clone()),
            name: person.as_ref().and_then(|p| p.name.clone()),
            phone,
        },
        body: msg.to_graph_json(),
    }))
}

/// A test send of a mapping to a given number.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    /// The number to send to (E.164 or national of the default country).
    #[schema(example = "+16505550101")]
    pub to: String,
    /// The sample event's detail-type (absent: the mapping's first hook).
    #[serde(default)]
    pub hook: Option<String>,
    /// A sample event's `detail` for the parameters (absent: `{}`, the fallbacks are used).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
}

/// What Meta answered.
#[derive(Serialize, ToSchema)]
pub struct TestResult {
    pub wamid: String,
    pub phone_number_id: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/notifications/mappings/{id}/test",
    tag = "notifications",
    summary = "Send a mapping's template to a number now",
    description = "Sent with the notification credentials (or the inbox's, as `effective` reports) from the mapping's sender; not logged as a notification.",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "Mapping id")),
    request_body = TestBody,
    responses((status = 200, description = "Accepted by Meta", body = TestResult))
)]
async fn test_send(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<TestResult>, ApiError> {
    who.require_admin()?;
    let b: TestBody = parse_json(&body)?;
    let m = load(&app, &id).await?;
    let to = app
        .phones
        .to_e164(&b.to)
        .map_err(|e| bad(format!("to: {e}")))?;
    let detail = b.detail.unwrap_or(Value::Object(Default::default()));
    let template = match occurrence(&m, b.hook.as_deref(), &detail) {
        Ok(o) => rendered(&m, &o)?,
        // No sample (or one this mapping does not answer): the placeholders' fallbacks.
        Err(_) => rendered(
            &m,
            &Occurrence {
                id: "test".into(),
                hook: "test",
                category: None,
                detail: &detail,
                record_root: None,
            },
        )?,
    };
    let creds = crate::settings::effective(app.settings_backend()?).await?;
    if !creds.missing.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_connected",
            format!(
                "the {} credentials lack {}",
                creds.source.as_str(),
                creds.missing.join(", ")
            ),
        ));
    }
    let sender = match m.phone_number_id.clone().or(creds.phone_number_id.clone()) {
        Some(s) => s,
        None => app.store.default_number_id().await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_connected",
                "phone_number_id not set: no sender in the mapping, the notification credentials or the numbers",
            )
        })?,
    };
    let msg = OutboundMessage {
        to: shared::phone::PhoneNormalizer::digits(&to),
        reply_to: None,
        biz_opaque_callback_data: None,
        content: OutboundContent::Template(template),
    };
    let messaging = app.messaging()?;
    messaging
        .pacer
        .acquire(&sender, None)
        .await
        .map_err(|e| ApiError::new(StatusCode::TOO_MANY_REQUESTS, "paced", e.to_string()))?;
    let accepted = messaging
        .graph
        .send(&sender, creds.access_token.expose(), &msg)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "meta_refused",
                format!("Meta: {e}"),
            )
        })?;
    tracing::info!(staff_id = %who.staff_id, mapping_id = %m.id, "notification test sent");
    Ok(Json(TestResult {
        wamid: accepted.wamid,
        phone_number_id: sender,
    }))
}

/// Filters of the log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The UTC day (`2026-12-01`); today when absent.
    pub day: Option<String>,
    /// Only this hook.
    pub hook: Option<String>,
    /// `sent`, `unknown`, `failed`, `skipped`, `delivered` or `read`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200 (default 50); a filtered page may hold fewer.
    pub limit: Option<String>,
}

/// One notification.
#[derive(Serialize, ToSchema)]
pub struct LogEntry {
    pub key: String,
    pub event_id: String,
    pub hook: String,
    pub mapping_id: String,
    pub send_to: SendTo,
    pub recipient_id: Option<String>,
    pub phone: Option<String>,
    pub template: String,
    pub language: String,
    pub phone_number_id: Option<String>,
    pub status: NotifyStatus,
    pub wamid: Option<String>,
    pub error_code: Option<i64>,
    pub reason: Option<String>,
    /// The event's time (epoch ms).
    pub event_at: i64,
    pub updated_at: i64,
}

impl From<NotificationLog> for LogEntry {
    fn from(e: NotificationLog) -> Self {
        Self {
            key: e.key,
            event_id: e.event_id,
            hook: e.hook,
            mapping_id: e.mapping_id,
            send_to: e.send_to,
            recipient_id: e.recipient_id,
            phone: e.phone,
            template: e.template,
            language: e.language,
            phone_number_id: e.phone_number_id,
            status: e.status,
            wamid: e.wamid,
            error_code: e.error_code,
            reason: e.reason,
            event_at: e.event_at,
            updated_at: e.updated_at,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/notifications/log",
    tag = "notifications",
    summary = "What became of each notification, newest first",
    description = "One UTC day at a time (kept 90 days), filtered by hook and status.",
    security(("bearer" = ["admin"])),
    params(LogQuery),
    responses((status = 200, description = "One page of the day's notifications", body = Page<LogEntry>))
)]
async fn log(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<LogQuery>,
) -> Result<Json<Page<LogEntry>>, ApiError> {
    who.require_admin()?;
    let day = match q.day.as_deref() {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| bad("day: a date like 2026-12-01"))?,
        None => chrono::DateTime::from_timestamp_millis((app.now_ms)())
            .unwrap_or_default()
            .date_naive(),
    };
    if let Some(h) = &q.hook
        && !HOOKS.contains(&h.as_str())
    {
        return Err(bad(format!("hook: one of {}", HOOKS.join(", "))));
    }
    let status = match q.status.as_deref() {
        Some(s) => Some(
            NotifyStatus::parse(s)
                .ok_or_else(|| bad("status: sent, unknown, failed, skipped, delivered or read"))?,
        ),
        None => None,
    };
    let day = day.format("%Y-%m-%d");
    // A cursor belongs to its day: given with another `day` it is refused, not read there.
    let page = PageAsked::read(
        &keys,
        format!("{LOG_SCOPE}:{day}"),
        q.cursor.as_deref(),
        q.limit.as_deref(),
        (50, 200),
    )?;
    let pk = format!("NOTIFLOG#{day}");
    let (rows, next) = app
        .store
        .notification_log_day(&pk, page.after(), page.limit)
        .await?;
    let rows = rows
        .into_iter()
        .filter(|e| q.hook.as_ref().is_none_or(|h| &e.hook == h))
        .filter(|e| status.is_none_or(|s| e.status == s))
        .collect();
    Ok(page.answer((rows, next), LogEntry::from))
}
