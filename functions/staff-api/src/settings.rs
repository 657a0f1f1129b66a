//! Connection, notification-credential and AI settings (admin only), kept in Secrets Manager.
//!
//! | route | |
//! |---|---|
//! | `GET`/`PUT /api/v1/settings/connection` | inbox Meta connection (`MetaSecret`) |
//! | `POST /api/v1/settings/connection/test` | calls Meta with the stored (or given) values |
//! | `GET`/`PUT /api/v1/settings/notifications-connection` | notification credentials (`NotifySecret`) |
//! | `GET /api/v1/settings/notifications-connection/effective` | which set notifications use |
//! | `POST /api/v1/settings/notifications-connection/test` | calls Meta with the effective set |
//! | `GET`/`PUT /api/v1/settings/ai` | AI provider, model, mode, key (`AiSecret`) |
//!
//! A `PUT` merges: a field absent or `null` keeps its value, `""` clears it, and a secret sent
//! back exactly as its mask keeps its value too. Secrets are answered masked
//! ([`Redacted::masked`]) and never logged (only the names of changed fields are).
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use shared::activity::redact;
use shared::credentials::{
    AI_PROVIDERS, FieldUpdate, NotifySecrets, SecretStore, appsecret_proof, check_graph_id,
    check_secret_text, effective_notify_credentials, merge_fields,
};
use shared::meta::graph::{ErrorClass, GraphClient, GraphError};
use shared::secrets::{MetaSecrets, Redacted};
use utoipa::ToSchema;

use crate::{ApiError, Authed, StaffApp};

/// Where the settings live and how to write them.
pub struct SettingsBackend {
    pub secrets: Arc<dyn SecretStore>,
    /// `MetaSecret` (the inbox connection).
    pub meta_secret_id: String,
    /// `NotifySecret`; `None` disables the notification-credential routes.
    pub notify_secret_id: Option<String>,
    /// `AiSecret`; `None` disables the AI routes.
    pub ai_secret_id: Option<String>,
}

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![
        get_connection,
        put_connection,
        test_connection,
        get_notify,
        put_notify,
        get_effective,
        test_notify,
        get_ai,
        put_ai,
    ]
}

// ---------------------------------------------------------------------------------------------
// Field specifications
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Kind {
    /// A Meta id, shown in clear.
    Id,
    /// A secret of at most this many characters, shown masked.
    Secret(usize),
}

struct Field {
    name: &'static str,
    kind: Kind,
}

const fn id(name: &'static str) -> Field {
    Field {
        name,
        kind: Kind::Id,
    }
}
const fn secret(name: &'static str, max: usize) -> Field {
    Field {
        name,
        kind: Kind::Secret(max),
    }
}

/// The keys of `MetaSecret` ([`MetaSecrets`]).
const CONNECTION: [Field; 6] = [
    id("business_id"),
    id("waba_id"),
    id("app_id"),
    secret("access_token", 2048),
    secret("app_secret", 256),
    secret("verify_token", 256),
];

/// The keys of `NotifySecret` ([`NotifySecrets`]).
const NOTIFY: [Field; 6] = [
    id("business_id"),
    id("waba_id"),
    id("app_id"),
    id("phone_number_id"),
    secret("access_token", 2048),
    secret("app_secret", 256),
];

const MASK_CHAR: char = '•';

fn text_of(m: &Map<String, Value>, k: &str) -> String {
    match m.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn meta_of(m: &Map<String, Value>) -> MetaSecrets {
    MetaSecrets {
        access_token: Redacted::new(text_of(m, "access_token")),
        app_secret: Redacted::new(text_of(m, "app_secret")),
        verify_token: Redacted::new(text_of(m, "verify_token")),
        waba_id: text_of(m, "waba_id"),
        app_id: text_of(m, "app_id"),
        business_id: text_of(m, "business_id"),
    }
}

fn notify_of(m: &Map<String, Value>) -> NotifySecrets {
    NotifySecrets {
        access_token: Redacted::new(text_of(m, "access_token")),
        app_secret: Redacted::new(text_of(m, "app_secret")),
        waba_id: text_of(m, "waba_id"),
        app_id: text_of(m, "app_id"),
        business_id: text_of(m, "business_id"),
        phone_number_id: text_of(m, "phone_number_id"),
    }
}

/// A body that must be a JSON object; serde's messages about values are not echoed.
fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::bad_request("body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "invalid JSON body at line {} column {}",
            e.line(),
            e.column()
        ))),
    }
}

fn field_names(fields: &[Field]) -> String {
    fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// Validated updates of a credential body against the stored object.
fn credential_updates(
    body: &Map<String, Value>,
    fields: &'static [Field],
    stored: &Map<String, Value>,
) -> Result<Vec<(&'static str, FieldUpdate)>, ApiError> {
    for k in body.keys() {
        if !fields.iter().any(|f| f.name == k) {
            return Err(ApiError::bad_request(format!(
                "unknown field {k:?}; expected {}",
                field_names(fields)
            )));
        }
    }
    let mut out = Vec::new();
    for f in fields {
        let v = match body.get(f.name) {
            None | Some(Value::Null) => {
                out.push((f.name, FieldUpdate::Keep));
                continue;
            }
            Some(Value::String(s)) => s.trim(),
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "{} must be a string (or null to keep it)",
                    f.name
                )));
            }
        };
        match f.kind {
            Kind::Id => {
                check_graph_id(v)
                    .map_err(|why| ApiError::bad_request(format!("{} {why}", f.name)))?;
            }
            Kind::Secret(max) => {
                let current = Redacted::new(text_of(stored, f.name));
                if !v.is_empty() && v == current.masked() {
                    out.push((f.name, FieldUpdate::Keep));
                    continue;
                }
                if v.contains(MASK_CHAR) {
                    return Err(ApiError::bad_request(format!(
                        "{} looks like a masked value; send the new value in clear, or omit the field to keep it",
                        f.name
                    )));
                }
                check_secret_text(v, max)
                    .map_err(|why| ApiError::bad_request(format!("{} {why}", f.name)))?;
            }
        }
        out.push((f.name, FieldUpdate::Set(Value::String(v.to_owned()))));
    }
    Ok(out)
}

/// Names (never values) of the fields an update sets, for the log.
fn changed(updates: &[(&'static str, FieldUpdate)]) -> Vec<&'static str> {
    updates
        .iter()
        .filter(|(_, u)| matches!(u, FieldUpdate::Set(_)))
        .map(|(k, _)| *k)
        .collect()
}

/// A stored secret as answered: a fixed mask when set, `""` when not.
fn masked(stored: &Map<String, Value>, k: &str) -> String {
    Redacted::new(text_of(stored, k)).masked()
}

fn is_set(stored: &Map<String, Value>, k: &str) -> bool {
    !text_of(stored, k).is_empty()
}

/// The fields of `fields` with no value, in their order.
fn missing(stored: &Map<String, Value>, fields: &[Field]) -> Vec<String> {
    fields
        .iter()
        .filter(|f| text_of(stored, f.name).is_empty())
        .map(|f| f.name.to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Request and response bodies
// ---------------------------------------------------------------------------------------------

/// The inbox's Meta connection (`MetaSecret`). Every field is optional: absent or `null` keeps
/// the stored value, `""` clears it. Secrets are write-only: answers show them masked, and a
/// mask sent back unchanged keeps the stored value. No other field is accepted.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct ConnectionSettingsBody {
    /// Meta business id (digits, letters, `_` or `-`; at most 64).
    business_id: Option<String>,
    /// WhatsApp Business Account id (digits, letters, `_` or `-`; at most 64).
    waba_id: Option<String>,
    /// Meta app id (digits, letters, `_` or `-`; at most 64).
    app_id: Option<String>,
    /// System-user access token: printable ASCII without spaces, at most 2048 characters.
    #[schema(write_only)]
    access_token: Option<String>,
    /// The app's secret (checks webhook signatures): printable ASCII without spaces, at most
    /// 256 characters.
    #[schema(write_only)]
    app_secret: Option<String>,
    /// Token Meta sends when the webhook is verified: printable ASCII without spaces, at most
    /// 256 characters.
    #[schema(write_only)]
    verify_token: Option<String>,
}

/// Which secrets of the inbox connection are set.
#[derive(Serialize, ToSchema)]
pub struct ConnectionSecretsSet {
    pub access_token: bool,
    pub app_secret: bool,
    pub verify_token: bool,
}

/// The inbox's Meta connection: ids in clear, secrets masked (`""` when not set).
#[derive(Serialize, ToSchema)]
pub struct ConnectionSettingsView {
    pub business_id: String,
    pub waba_id: String,
    pub app_id: String,
    /// Masked.
    pub access_token: String,
    /// Masked.
    pub app_secret: String,
    /// Masked.
    pub verify_token: String,
    pub set: ConnectionSecretsSet,
    /// Fields with no value.
    pub missing: Vec<String>,
}

impl ConnectionSettingsView {
    fn new(stored: &Map<String, Value>) -> Self {
        Self {
            business_id: text_of(stored, "business_id"),
            waba_id: text_of(stored, "waba_id"),
            app_id: text_of(stored, "app_id"),
            access_token: masked(stored, "access_token"),
            app_secret: masked(stored, "app_secret"),
            verify_token: masked(stored, "verify_token"),
            set: ConnectionSecretsSet {
                access_token: is_set(stored, "access_token"),
                app_secret: is_set(stored, "app_secret"),
                verify_token: is_set(stored, "verify_token"),
            },
            missing: missing(stored, &CONNECTION),
        }
    }
}

/// The event-notification credentials (`NotifySecret`). Every field is optional: absent or
/// `null` keeps the stored value, `""` clears it. Secrets are write-only: answers show them
/// masked, and a mask sent back unchanged keeps the stored value. No other field is accepted.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct NotifySettingsBody {
    /// Meta business id (digits, letters, `_` or `-`; at most 64).
    business_id: Option<String>,
    /// WhatsApp Business Account id (digits, letters, `_` or `-`; at most 64).
    waba_id: Option<String>,
    /// Meta app id (digits, letters, `_` or `-`; at most 64).
    app_id: Option<String>,
    /// The business number notifications are sent from; it must belong to `waba_id`
    /// (digits, letters, `_` or `-`; at most 64).
    phone_number_id: Option<String>,
    /// Access token: printable ASCII without spaces, at most 2048 characters. While it is
    /// empty, notifications use the inbox's connection.
    #[schema(write_only)]
    access_token: Option<String>,
    /// The app's secret (not needed to send): printable ASCII without spaces, at most 256
    /// characters.
    #[schema(write_only)]
    app_secret: Option<String>,
}

/// Which secrets of the notification credentials are set.
#[derive(Serialize, ToSchema)]
pub struct NotifySecretsSet {
    pub access_token: bool,
    pub app_secret: bool,
}

/// The event-notification credentials: ids in clear, secrets masked (`""` when not set).
#[derive(Serialize, ToSchema)]
pub struct NotifySettingsView {
    pub business_id: String,
    pub waba_id: String,
    pub app_id: String,
    pub phone_number_id: String,
    /// Masked.
    pub access_token: String,
    /// Masked.
    pub app_secret: String,
    pub set: NotifySecretsSet,
    /// Fields with no value.
    pub missing: Vec<String>,
}

impl NotifySettingsView {
    fn new(stored: &Map<String, Value>) -> Self {
        Self {
            business_id: text_of(stored, "business_id"),
            waba_id: text_of(stored, "waba_id"),
            app_id: text_of(stored, "app_id"),
            phone_number_id: text_of(stored, "phone_number_id"),
            access_token: masked(stored, "access_token"),
            app_secret: masked(stored, "app_secret"),
            set: NotifySecretsSet {
                access_token: is_set(stored, "access_token"),
                app_secret: is_set(stored, "app_secret"),
            },
            missing: missing(stored, &NOTIFY),
        }
    }
}

/// The credential set event notifications use (never mixed field by field), secrets masked.
#[derive(Serialize, ToSchema)]
pub struct EffectiveNotifyCredentials {
    /// `notifications` (their own set, as soon as it has an access token) or `inbox`.
    pub source: String,
    /// Why this set is used.
    pub reason: String,
    /// Fields the chosen set needs but lacks.
    pub missing: Vec<String>,
    pub business_id: String,
    pub waba_id: String,
    pub app_id: String,
    /// Sender number of the notification set; `null` with the inbox set (its default number).
    pub phone_number_id: Option<String>,
    /// Masked.
    pub access_token: String,
    /// Masked.
    pub app_secret: String,
}

/// AI settings (`AiSecret`). Every field is optional: absent or `null` keeps the stored value.
/// `enabled: true` needs `provider`, `model` and `api_key`. The key is write-only: answers
/// show it masked, and the mask sent back unchanged keeps the stored key. No other field is
/// accepted.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct AiSettingsBody {
    enabled: Option<bool>,
    /// `openai` (Chat Completions) or `gemini` (`google` is taken as `gemini`; `""` clears
    /// it).
    provider: Option<String>,
    /// A model name such as `gpt-4o-mini`: letters, digits, `. _ : / - @`; at most 100.
    model: Option<String>,
    /// `auto` (the AI replies) or `manual` (the AI drafts, staff send).
    mode: Option<String>,
    /// The provider's API key: printable ASCII without spaces, at most 512 characters (`""`
    /// clears it).
    #[schema(write_only)]
    api_key: Option<String>,
    /// Instructions given to the AI with every conversation (what the business does, tone,
    /// what not to promise); at most 4000 characters.
    system_prompt: Option<String>,
    /// Sent to the customer when the AI fails in `auto` mode (a default text when empty); at
    /// most 1000 characters.
    fallback_text: Option<String>,
}

/// AI settings, the key masked.
#[derive(Serialize, ToSchema)]
pub struct AiSettingsView {
    pub enabled: bool,
    /// `""` when not set.
    pub provider: String,
    pub model: String,
    /// `auto` or `manual`.
    pub mode: String,
    /// Masked (`""` when not set).
    pub api_key: String,
    pub api_key_set: bool,
    pub system_prompt: String,
    /// `""`: the default text is sent.
    pub fallback_text: String,
}

/// Meta's error of a failed check (its message redacted of the credentials). Meta's fields are
/// absent when Meta could not be reached (`class` is then `unreachable`).
#[derive(Serialize, ToSchema)]
pub struct ConnectionCheckError {
    /// HTTP status of Meta's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub http_status: Option<u16>,
    /// Meta's `error.code`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub code: Option<i64>,
    /// Meta's `error.error_subcode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub subcode: Option<i64>,
    /// What the code means (`auth`, `rate_limited`, …, or `unreachable`).
    pub class: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fbtrace_id: Option<String>,
}

/// A phone number of the WABA, as Meta lists it.
#[derive(Serialize, ToSchema)]
pub struct WabaPhoneNumber {
    #[schema(value_type = Option<String>)]
    pub id: Value,
    #[schema(value_type = Option<String>)]
    pub display_phone_number: Value,
    #[schema(value_type = Option<String>)]
    pub verified_name: Value,
    #[schema(value_type = Option<String>)]
    pub quality_rating: Value,
}

/// One check of a connection test.
#[derive(Serialize, ToSchema)]
pub struct ConnectionCheck {
    /// `access_token`, `app_secret`, `waba`, `phone_numbers`, `webhook_subscription` or
    /// `verify_token`.
    pub name: String,
    /// `null` when the check was skipped.
    pub ok: Option<bool>,
    pub detail: String,
    /// Present when a call to Meta failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<ConnectionCheckError>,
    /// The WABA's numbers (the `phone_numbers` check, when they could be listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub numbers: Option<Vec<WabaPhoneNumber>>,
}

/// What a connection test found.
#[derive(Serialize, ToSchema)]
pub struct ConnectionTestReport {
    /// Every check that ran passed.
    pub ok: bool,
    /// The credential set tested: `inbox` or `notifications`.
    pub credentials: String,
    pub checks: Vec<ConnectionCheck>,
}

// ---------------------------------------------------------------------------------------------
// Backend access
// ---------------------------------------------------------------------------------------------

impl StaffApp {
    pub(crate) fn settings_backend(&self) -> Result<&SettingsBackend, ApiError> {
        self.settings.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                "settings storage is not configured",
            )
        })
    }
}

fn secret_id<'a>(v: &'a Option<String>, what: &str, var: &str) -> Result<&'a str, ApiError> {
    v.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            format!("{what} are not configured ({var} is not set)"),
        )
    })
}

/// The error names no secret (its ARN carries the account id and names): the log has it.
fn secret_failure(e: shared::secrets::SecretError) -> ApiError {
    tracing::error!(error = %e, "settings secret unavailable");
    let what = match e {
        shared::secrets::SecretError::Unavailable { .. } => "could not be read or written",
        shared::secrets::SecretError::Invalid { .. } => "is not the expected JSON",
    };
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "secrets_unavailable",
        format!("the settings secret {what}; retry later (details in the logs)"),
    )
}

/// Stores connection fields (Embedded Signup), merged into the inbox's secret.
pub(crate) async fn store_connection(
    b: &SettingsBackend,
    fields: &[(&str, String)],
) -> Result<(), ApiError> {
    let stored = read(b, &b.meta_secret_id).await?;
    let updates: Vec<(&str, FieldUpdate)> = fields
        .iter()
        .map(|(k, v)| (*k, FieldUpdate::Set(Value::String(v.clone()))))
        .collect();
    write(b, &b.meta_secret_id, &merge_fields(stored, &updates)).await
}

/// The inbox connection as stored.
pub(crate) async fn connection(b: &SettingsBackend) -> Result<MetaSecrets, ApiError> {
    Ok(meta_of(&read(b, &b.meta_secret_id).await?))
}

async fn read(b: &SettingsBackend, id: &str) -> Result<Map<String, Value>, ApiError> {
    b.secrets.read_object(id).await.map_err(secret_failure)
}

async fn write(b: &SettingsBackend, id: &str, v: &Map<String, Value>) -> Result<(), ApiError> {
    b.secrets.write_object(id, v).await.map_err(secret_failure)
}

// ---------------------------------------------------------------------------------------------
// Inbox connection
// ---------------------------------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/api/v1/settings/connection",
    tag = "settings",
    summary = "Meta connection (secrets masked)",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The inbox's connection", body = ConnectionSettingsView))
)]
async fn get_connection(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<ConnectionSettingsView>, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let stored = read(b, &b.meta_secret_id).await?;
    Ok(Json(ConnectionSettingsView::new(&stored)))
}

#[utoipa::path(
    put,
    path = "/api/v1/settings/connection",
    tag = "settings",
    summary = "Store Meta credentials in Secrets Manager",
    description = "Merges into the stored connection: a field absent or `null` keeps its value, `\"\"` clears it, a secret sent back as its mask keeps it.",
    security(("bearer" = ["admin"])),
    request_body = ConnectionSettingsBody,
    responses((status = 200, description = "The connection saved", body = ConnectionSettingsView))
)]
async fn put_connection(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Json<ConnectionSettingsView>, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let body = body_object(&body)?;
    let stored = read(b, &b.meta_secret_id).await?;
    let updates = credential_updates(&body, &CONNECTION, &stored)?;
    let merged = merge_fields(stored, &updates);
    write(b, &b.meta_secret_id, &merged).await?;
    // This function's cached copy; other functions re-read on a mismatch or within their TTL.
    if let Some(m) = app.messaging.as_ref() {
        m.meta_secrets.invalidate().await;
    }
    tracing::info!(staff_id = %who.staff_id, changed = ?changed(&updates), "connection settings changed");
    Ok(Json(ConnectionSettingsView::new(&merged)))
}

#[utoipa::path(
    post,
    path = "/api/v1/settings/connection/test",
    tag = "settings",
    summary = "Call Meta and report what works",
    description = "Tests the stored connection; fields given in the body (optional, same rules as the `PUT`) are tested in place of the stored ones without being saved. A failed check is reported in the answer (still 200).",
    security(("bearer" = ["admin"])),
    request_body(content = ConnectionSettingsBody, description = "Values to test instead of the stored ones (`{}`: the stored connection)"),
    responses((status = 200, description = "One result per check", body = ConnectionTestReport))
)]
async fn test_connection(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Json<ConnectionTestReport>, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let graph = app.messaging()?.graph.clone();
    let body = body_object(&body)?;
    let stored = read(b, &b.meta_secret_id).await?;
    // Values given in the body are tested without being saved.
    let updates = credential_updates(&body, &CONNECTION, &stored)?;
    let s = meta_of(&merge_fields(stored, &updates));
    let creds = Creds {
        access_token: s.access_token.expose(),
        app_secret: s.app_secret.expose(),
        waba_id: &s.waba_id,
        app_id: &s.app_id,
        phone_number_id: None,
        needs_app_secret: true,
    };
    let mut report = run_checks(&graph, &creds).await;
    let verify = if s.verify_token.is_empty() {
        check_fail(
            "verify_token",
            "verify_token is not set: Meta cannot verify the webhook",
        )
    } else {
        check_ok(
            "verify_token",
            "set; Meta sends it when the webhook is verified (it cannot be checked from here)",
        )
    };
    report.checks.push(verify);
    tracing::info!(staff_id = %who.staff_id, ok = report.ok(), "connection test");
    Ok(Json(report.into_view("inbox")))
}

// ---------------------------------------------------------------------------------------------
// Notification credentials
// ---------------------------------------------------------------------------------------------

fn notify_id(b: &SettingsBackend) -> Result<&str, ApiError> {
    secret_id(
        &b.notify_secret_id,
        "notification credentials",
        "NOTIFY_SECRET_ARN",
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/settings/notifications-connection",
    tag = "settings",
    summary = "Event-notification credentials (masked)",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The notification credentials", body = NotifySettingsView))
)]
async fn get_notify(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<NotifySettingsView>, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let stored = read(b, notify_id(b)?).await?;
    Ok(Json(NotifySettingsView::new(&stored)))
}

#[utoipa::path(
    put,
    path = "/api/v1/settings/notifications-connection",
    tag = "settings",
    summary = "Store event-notification credentials",
    description = "Merges into the stored credentials: a field absent or `null` keeps its value, `\"\"` clears it, a secret sent back as its mask keeps it.",
    security(("bearer" = ["admin"])),
    request_body = NotifySettingsBody,
    responses((status = 200, description = "The credentials saved", body = NotifySettingsView))
)]
async fn put_notify(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Json<NotifySettingsView>, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let id = notify_id(b)?;
    let body = body_object(&body)?;
    let stored = read(b, id).await?;
    let updates = credential_updates(&body, &NOTIFY, &stored)?;
    let merged = merge_fields(stored, &updates);
    write(b, id, &merged).await?;
    tracing::info!(staff_id = %who.staff_id, changed = ?changed(&updates), "notification credentials changed");
    Ok(Json(NotifySettingsView::new(&merged)))
}

pub(crate) async fn effective(
    b: &SettingsBackend,
) -> Result<shared::credentials::EffectiveCredentials, ApiError> {
    let notify = notify_of(&read(b, notify_id(b)?).await?);
    let inbox = meta_of(&read(b, &b.meta_secret_id).await?);
    Ok(effective_notify_credentials(&notify, &inbox))
}

#[utoipa::path(
    get,
    path = "/api/v1/settings/notifications-connection/effective",
    tag = "settings",
    summary = "Which credential set notifications use",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The set used and why", body = EffectiveNotifyCredentials))
)]
async fn get_effective(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<EffectiveNotifyCredentials>, ApiError> {
    who.require_admin()?;
    let e = effective(app.settings_backend()?).await?;
    Ok(Json(EffectiveNotifyCredentials {
        source: e.source.as_str().to_string(),
        reason: e.reason,
        missing: e.missing.iter().map(|m| m.to_string()).collect(),
        business_id: e.business_id,
        waba_id: e.waba_id,
        app_id: e.app_id,
        phone_number_id: e.phone_number_id,
        access_token: e.access_token.masked(),
        app_secret: e.app_secret.masked(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/settings/notifications-connection/test",
    tag = "settings",
    summary = "Test the event-notification credentials",
    description = "Calls Meta with the set notifications use (see `…/effective`). No request body. A failed check is reported in the answer (still 200).",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "One result per check", body = ConnectionTestReport))
)]
async fn test_notify(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<ConnectionTestReport>, ApiError> {
    who.require_admin()?;
    let graph = app.messaging()?.graph.clone();
    let e = effective(app.settings_backend()?).await?;
    let creds = Creds {
        access_token: e.access_token.expose(),
        app_secret: e.app_secret.expose(),
        waba_id: &e.waba_id,
        app_id: &e.app_id,
        phone_number_id: e.phone_number_id.as_deref(),
        needs_app_secret: false,
    };
    let report = run_checks(&graph, &creds).await;
    tracing::info!(staff_id = %who.staff_id, ok = report.ok(), source = e.source.as_str(), "notification connection test");
    Ok(Json(report.into_view(e.source.as_str())))
}

// ---------------------------------------------------------------------------------------------
// AI settings
// ---------------------------------------------------------------------------------------------

const AI_FIELDS: [&str; 7] = [
    "enabled",
    "provider",
    "model",
    "mode",
    "api_key",
    "system_prompt",
    "fallback_text",
];

fn ai_id(b: &SettingsBackend) -> Result<&str, ApiError> {
    secret_id(&b.ai_secret_id, "AI settings", "AI_SECRET_ARN")
}

fn ai_view(m: &Map<String, Value>) -> AiSettingsView {
    let key = Redacted::new(text_of(m, "api_key"));
    let mode = match text_of(m, "mode").as_str() {
        "auto" => "auto",
        _ => "manual",
    };
    AiSettingsView {
        enabled: m.get("enabled").and_then(Value::as_bool).unwrap_or(false),
        provider: text_of(m, "provider"),
        model: text_of(m, "model"),
        mode: mode.to_string(),
        api_key: key.masked(),
        api_key_set: !key.is_empty(),
        system_prompt: text_of(m, "system_prompt"),
        fallback_text: text_of(m, "fallback_text"),
    }
}

fn ai_updates(
    body: &Map<String, Value>,
    stored: &Map<String, Value>,
) -> Result<Vec<(&'static str, FieldUpdate)>, ApiError> {
    for k in body.keys() {
        if !AI_FIELDS.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown field {k:?}; expected {}",
                AI_FIELDS.join(", ")
            )));
        }
    }
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
            Some(_) => Err(ApiError::bad_request(format!("{k} must be a string"))),
        }
    };
    let mut out = Vec::new();
    out.push((
        "enabled",
        match body.get("enabled") {
            None | Some(Value::Null) => FieldUpdate::Keep,
            Some(Value::Bool(b)) => FieldUpdate::Set(Value::Bool(*b)),
            Some(_) => return Err(ApiError::bad_request("enabled must be true or false")),
        },
    ));
    out.push((
        "provider",
        match text("provider")? {
            None => FieldUpdate::Keep,
            Some(p) if p == "google" => FieldUpdate::Set(Value::String("gemini".into())),
            Some(p) if p.is_empty() || AI_PROVIDERS.contains(&p.as_str()) => {
                FieldUpdate::Set(Value::String(p))
            }
            Some(_) => {
                return Err(ApiError::bad_request(format!(
                    "provider must be one of {}",
                    AI_PROVIDERS.join(", ")
                )));
            }
        },
    ));
    out.push((
        "model",
        match text("model")? {
            None => FieldUpdate::Keep,
            Some(m)
                if m.len() <= 100
                    && m
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._:/-@".contains(&b)) =>
            {
                FieldUpdate::Set(Value::String(m))
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "model must be a model name such as gpt-4o-mini (letters, digits, . _ : / - @; at most 100)",
                ));
            }
        },
    ));
    out.push((
        "mode",
        match text("mode")? {
            None => FieldUpdate::Keep,
            Some(m) if m == "auto" || m == "manual" => FieldUpdate::Set(Value::String(m)),
            Some(_) => return Err(ApiError::bad_request("mode must be auto or manual")),
        },
    ));
    for (field, max) in [("system_prompt", 4000), ("fallback_text", 1000)] {
        out.push((
            field,
            match text(field)? {
                None => FieldUpdate::Keep,
                Some(t) if t.chars().count() <= max => FieldUpdate::Set(Value::String(t)),
                Some(_) => {
                    return Err(ApiError::bad_request(format!(
                        "{field} must be at most {max} characters"
                    )));
                }
            },
        ));
    }
    out.push((
        "api_key",
        match text("api_key")? {
            None => FieldUpdate::Keep,
            Some(k) => {
                let current = Redacted::new(text_of(stored, "api_key"));
                if !k.is_empty() && k == current.masked() {
                    FieldUpdate::Keep
                } else if k.contains(MASK_CHAR) {
                    return Err(ApiError::bad_request(
                        "api_key looks like a masked value; send the new key in clear, or omit the field to keep it",
                    ));
                } else {
                    check_secret_text(&k, 512)
                        .map_err(|why| ApiError::bad_request(format!("api_key {why}")))?;
                    FieldUpdate::Set(Value::String(k))
                }
            }
        },
    ));
    Ok(out)
}

#[utoipa::path(
    get,
    path = "/api/v1/settings/ai",
    tag = "settings",
    summary = "AI settings (key masked)",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The AI settings", body = AiSettingsView))
)]
async fn get_ai(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<AiSettingsView>, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let stored = read(b, ai_id(b)?).await?;
    Ok(Json(ai_view(&stored)))
}

#[utoipa::path(
    put,
    path = "/api/v1/settings/ai",
    tag = "settings",
    summary = "Change AI settings",
    description = "Merges into the stored settings: a field absent or `null` keeps its value; the key sent back as its mask keeps it.",
    security(("bearer" = ["admin"])),
    request_body = AiSettingsBody,
    responses((status = 200, description = "The settings saved", body = AiSettingsView))
)]
async fn put_ai(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Json<AiSettingsView>, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let id = ai_id(b)?;
    let body = body_object(&body)?;
    let stored = read(b, id).await?;
    let updates = ai_updates(&body, &stored)?;
    let merged = merge_fields(stored, &updates);
    if merged.get("enabled").and_then(Value::as_bool) == Some(true) {
        let missing: Vec<&str> = ["provider", "model", "api_key"]
            .into_iter()
            .filter(|k| text_of(&merged, k).is_empty())
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::bad_request(format!(
                "enabled needs provider, model and api_key; missing: {}",
                missing.join(", ")
            )));
        }
    }
    write(b, id, &merged).await?;
    tracing::info!(staff_id = %who.staff_id, changed = ?changed(&updates), "AI settings changed");
    Ok(Json(ai_view(&merged)))
}

// ---------------------------------------------------------------------------------------------
// Connection test
// ---------------------------------------------------------------------------------------------

struct Creds<'a> {
    access_token: &'a str,
    app_secret: &'a str,
    waba_id: &'a str,
    app_id: &'a str,
    /// A sender number that must be among the WABA's numbers.
    phone_number_id: Option<&'a str>,
    /// The inbox needs the app secret (webhook signatures); notifications do not.
    needs_app_secret: bool,
}

struct Report {
    checks: Vec<ConnectionCheck>,
}

impl Report {
    /// Every check that ran passed (skipped ones have `ok: null`).
    fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok != Some(false))
            && self.checks.iter().any(|c| c.ok == Some(true))
    }

    fn into_view(self, source: &str) -> ConnectionTestReport {
        ConnectionTestReport {
            ok: self.ok(),
            credentials: source.to_string(),
            checks: self.checks,
        }
    }
}

fn check(name: &str, ok: Option<bool>, detail: String) -> ConnectionCheck {
    ConnectionCheck {
        name: name.to_string(),
        ok,
        detail,
        error: None,
        numbers: None,
    }
}

fn check_ok(name: &str, detail: impl Into<String>) -> ConnectionCheck {
    check(name, Some(true), detail.into())
}

fn check_fail(name: &str, detail: impl Into<String>) -> ConnectionCheck {
    check(name, Some(false), detail.into())
}

fn check_skipped(name: &str, why: &str) -> ConnectionCheck {
    check(name, None, format!("skipped: {why}"))
}

/// A failed call as a check: Meta's code, class and message (redacted of the credentials).
fn check_error(name: &str, what: &str, e: &GraphError, known: &[&str]) -> ConnectionCheck {
    let error = match e {
        GraphError::Meta {
            http_status,
            code,
            subcode,
            message,
            class,
            fbtrace_id,
            ..
        } => ConnectionCheckError {
            http_status: Some(*http_status),
            code: Some(*code),
            subcode: *subcode,
            class: class.as_str().to_string(),
            message: redact(message, known),
            fbtrace_id: fbtrace_id.clone(),
        },
        other => ConnectionCheckError {
            http_status: None,
            code: None,
            subcode: None,
            class: "unreachable".into(),
            message: redact(&other.to_string(), known),
            fbtrace_id: None,
        },
    };
    let detail = match e {
        GraphError::Meta {
            code,
            class: ErrorClass::Auth,
            ..
        } => format!(
            "{what}: Meta refused the credentials (code {code}): rotate or fix the access token"
        ),
        GraphError::Meta { code, .. } => format!("{what}: Meta answered with error {code}"),
        _ => format!("{what}: Meta could not be reached"),
    };
    ConnectionCheck {
        error: Some(error),
        ..check_fail(name, detail)
    }
}

fn str_at<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

async fn run_checks(graph: &GraphClient, c: &Creds<'_>) -> Report {
    let known = [c.access_token, c.app_secret];
    let mut checks = Vec::new();
    let names = [
        "access_token",
        "app_secret",
        "waba",
        "phone_numbers",
        "webhook_subscription",
    ];
    if c.access_token.is_empty() {
        checks.push(check_fail("access_token", "access_token is not set"));
        for n in &names[1..] {
            checks.push(check_skipped(n, "no access token"));
        }
        return Report { checks };
    }
    // 1. The token itself.
    match graph
        .get_object(&["me"], &[("fields", "id,name")], c.access_token)
        .await
    {
        Ok(me) => checks.push(check_ok(
            "access_token",
            format!(
                "valid; it belongs to {} (id {})",
                str_at(&me, "name"),
                str_at(&me, "id")
            ),
        )),
        Err(e) => {
            checks.push(check_error(
                "access_token",
                "token check failed",
                &e,
                &known,
            ));
            if e.class() == Some(ErrorClass::Auth) || e.class().is_none() {
                let why = if e.class().is_none() {
                    "Meta could not be reached"
                } else {
                    "the access token is not valid"
                };
                for n in &names[1..] {
                    checks.push(check_skipped(n, why));
                }
                return Report { checks };
            }
        }
    }
    // 2. The app secret, through appsecret_proof (Meta refuses a proof that does not match).
    if c.app_secret.is_empty() && c.needs_app_secret {
        checks.push(check_fail(
            "app_secret",
            "app_secret is not set: webhook signatures cannot be checked",
        ));
    } else if c.app_secret.is_empty() {
        checks.push(check_skipped("app_secret", "not set (not needed to send)"));
    } else {
        let proof = appsecret_proof(c.access_token, c.app_secret);
        match graph
            .get_object(
                &["me"],
                &[("fields", "id"), ("appsecret_proof", &proof)],
                c.access_token,
            )
            .await
        {
            Ok(_) => checks.push(check_ok("app_secret", "matches the access token's app")),
            Err(e) => checks.push(check_error(
                "app_secret",
                "app secret check failed (it is not the secret of the token's app)",
                &e,
                &known,
            )),
        }
    }
    // 3. The WABA.
    if c.waba_id.is_empty() {
        checks.push(check_fail("waba", "waba_id is not set"));
        checks.push(check_skipped("phone_numbers", "no waba_id"));
        checks.push(check_skipped("webhook_subscription", "no waba_id"));
        return Report { checks };
    }
    match graph
        .get_object(
            &[c.waba_id],
            &[(
                "fields",
                "id,name,currency,timezone_id,message_template_namespace",
            )],
            c.access_token,
        )
        .await
    {
        Ok(w) => checks.push(check_ok(
            "waba",
            format!(
                "reachable: {} (id {})",
                str_at(&w, "name"),
                str_at(&w, "id")
            ),
        )),
        Err(e) => checks.push(check_error("waba", "the WABA is not reachable", &e, &known)),
    }
    // 4. Its phone numbers.
    match graph
        .get_object(
            &[c.waba_id, "phone_numbers"],
            &[(
                "fields",
                "id,display_phone_number,verified_name,quality_rating,code_verification_status",
            )],
            c.access_token,
        )
        .await
    {
        Ok(v) => {
            let field = |n: &Value, k: &str| n.get(k).cloned().unwrap_or(Value::Null);
            let numbers: Vec<WabaPhoneNumber> = v
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|n| WabaPhoneNumber {
                    id: field(&n, "id"),
                    display_phone_number: field(&n, "display_phone_number"),
                    verified_name: field(&n, "verified_name"),
                    quality_rating: field(&n, "quality_rating"),
                })
                .collect();
            let mut check = if numbers.is_empty() {
                check_fail("phone_numbers", "the WABA has no phone number")
            } else {
                check_ok("phone_numbers", format!("{} number(s)", numbers.len()))
            };
            if let Some(pnid) = c.phone_number_id {
                let found = numbers.iter().any(|n| n.id.as_str() == Some(pnid));
                if !found {
                    check = check_fail(
                        "phone_numbers",
                        format!("phone_number_id {pnid} is not a number of this WABA"),
                    );
                }
            }
            check.numbers = Some(numbers);
            checks.push(check);
        }
        Err(e) => checks.push(check_error(
            "phone_numbers",
            "the phone numbers could not be listed",
            &e,
            &known,
        )),
    }
    // 5. Webhook subscription of the app to the WABA.
    match graph
        .get_object(&[c.waba_id, "subscribed_apps"], &[], c.access_token)
        .await
    {
        Ok(v) => {
            let apps: Vec<(String, String)> = v
                .get("data")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|a| {
                    let d = a.get("whatsapp_business_api_data").unwrap_or(a);
                    (str_at(d, "id").to_owned(), str_at(d, "name").to_owned())
                })
                .collect();
            let check = if apps.is_empty() {
                check_fail(
                    "webhook_subscription",
                    "no app is subscribed to this WABA's webhooks (POST /{waba_id}/subscribed_apps)",
                )
            } else if !c.app_id.is_empty() && !apps.iter().any(|(id, _)| id == c.app_id) {
                check_fail(
                    "webhook_subscription",
                    format!("app {} is not subscribed to this WABA's webhooks", c.app_id),
                )
            } else {
                let list: Vec<String> = apps
                    .iter()
                    .map(|(id, name)| format!("{name} ({id})"))
                    .collect();
                check_ok(
                    "webhook_subscription",
                    format!("subscribed: {}", list.join(", ")),
                )
            };
            checks.push(check);
        }
        Err(e) => checks.push(check_error(
            "webhook_subscription",
            "the webhook subscriptions could not be read",
            &e,
            &known,
        )),
    }
    Report { checks }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn updates_validate_and_keep_masks() {
        let stored = obj(json!({"access_token": "EAAB-old-token-1234", "waba_id": "1"}));
        let body = obj(
            json!({"access_token": Redacted::new("EAAB-old-token-1234").masked(), "waba_id": "22", "app_id": null}),
        );
        let u = credential_updates(&body, &CONNECTION, &stored).unwrap();
        let get = |k: &str| u.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("access_token"), FieldUpdate::Keep);
        assert_eq!(get("waba_id"), FieldUpdate::Set(json!("22")));
        assert_eq!(get("app_id"), FieldUpdate::Keep);
        assert_eq!(get("verify_token"), FieldUpdate::Keep);
        let err = |b: Value| {
            credential_updates(&obj(b), &CONNECTION, &stored)
                .unwrap_err()
                .message
        };
        assert!(
            err(json!({"access_token": "••••••••abcd"}))
                .starts_with("access_token looks like a masked")
        );
        assert!(err(json!({"waba_id": "1/2"})).starts_with("waba_id "));
        assert!(err(json!({"access_token": "a b"})).starts_with("access_token "));
        assert!(err(json!({"access_token": 5})).starts_with("access_token must be a string"));
        assert!(err(json!({"phone_number_id": "1"})).contains("unknown field"));
        // The notification set knows phone_number_id and not verify_token.
        assert!(
            credential_updates(&obj(json!({"phone_number_id": "1"})), &NOTIFY, &stored).is_ok()
        );
        assert!(credential_updates(&obj(json!({"verify_token": "x"})), &NOTIFY, &stored).is_err());
    }

    #[test]
    fn views_mask_secrets() {
        let stored = obj(
            json!({"access_token": "EAAB-secret-token-1234", "waba_id": "1", "verify_token": ""}),
        );
        let v = serde_json::to_value(ConnectionSettingsView::new(&stored)).unwrap();
        assert!(!v.to_string().contains("EAAB-secret"), "{v}");
        assert_eq!(v["access_token"], "••••••••", "no character of it is shown");
        assert_eq!(v["waba_id"], "1");
        assert_eq!(v["set"]["access_token"], true);
        assert_eq!(v["set"]["verify_token"], false);
        assert!(
            v["missing"]
                .as_array()
                .unwrap()
                .contains(&json!("verify_token"))
        );
        let ai = serde_json::to_value(ai_view(&obj(
            json!({"api_key": "sk-very-secret-key", "mode": "auto", "enabled": true}),
        )))
        .unwrap();
        assert!(!ai.to_string().contains("very-secret"));
        assert_eq!(
            (ai["mode"].as_str(), ai["api_key_set"].as_bool()),
            (Some("auto"), Some(true))
        );
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn names(fields: &[Field], pick: impl Fn(&Field) -> bool) -> Vec<String> {
        let mut k: Vec<String> = fields
            .iter()
            .filter(|f| pick(f))
            .map(|f| f.name.to_string())
            .collect();
        k.sort();
        k
    }

    fn schema_properties<T: utoipa::PartialSchema>() -> Vec<String> {
        keys(&serde_json::to_value(T::schema()).unwrap()["properties"])
    }

    /// The typed views and documented bodies list exactly the fields of the specifications.
    #[test]
    fn views_and_documented_bodies_follow_the_field_specifications() {
        let secret = |f: &Field| matches!(f.kind, Kind::Secret(_));
        for (fields, view, body) in [
            (
                &CONNECTION[..],
                serde_json::to_value(ConnectionSettingsView::new(&Map::new())).unwrap(),
                schema_properties::<ConnectionSettingsBody>(),
            ),
            (
                &NOTIFY[..],
                serde_json::to_value(NotifySettingsView::new(&Map::new())).unwrap(),
                schema_properties::<NotifySettingsBody>(),
            ),
        ] {
            let mut expected = names(fields, |_| true);
            assert_eq!(body, expected);
            expected.extend(["missing".to_string(), "set".to_string()]);
            expected.sort();
            assert_eq!(keys(&view), expected);
            assert_eq!(keys(&view["set"]), names(fields, secret));
            assert_eq!(view["missing"], json!(names_in_order(fields)));
        }
        let mut ai: Vec<String> = AI_FIELDS.iter().map(|f| f.to_string()).collect();
        ai.sort();
        assert_eq!(schema_properties::<AiSettingsBody>(), ai);
    }

    fn names_in_order(fields: &[Field]) -> Vec<&'static str> {
        fields.iter().map(|f| f.name).collect()
    }

    #[test]
    fn ai_updates_validate() {
        let stored = Map::new();
        let err = |b: Value| ai_updates(&obj(b), &stored).unwrap_err().message;
        assert!(err(json!({"provider": "acme"})).starts_with("provider must be one of"));
        assert!(err(json!({"mode": "sometimes"})).starts_with("mode "));
        assert!(err(json!({"enabled": "yes"})).starts_with("enabled "));
        assert!(err(json!({"model": "a b"})).starts_with("model "));
        assert!(err(json!({"temperature": 1})).contains("unknown field"));
        assert!(err(json!({"provider": "anthropic"})).starts_with("provider must be one of"));
        assert!(err(json!({"system_prompt": "x".repeat(4001)})).starts_with("system_prompt "));
        assert!(err(json!({"fallback_text": 3})).starts_with("fallback_text "));
        let u = ai_updates(&obj(json!({"provider": "google", "model": "gemini-2.0-flash", "mode": "auto", "api_key": "AIza-1", "system_prompt": "We sell bikes."})), &stored).unwrap();
        assert_eq!(u.len(), 7);
        assert!(u.contains(&("provider", FieldUpdate::Set(json!("gemini")))));
    }
}
