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

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use shared::activity::redact;
use shared::credentials::{
    AI_PROVIDERS, FieldUpdate, NotifySecrets, SecretStore, appsecret_proof, check_graph_id,
    check_secret_text, effective_notify_credentials, merge_fields,
};
use shared::meta::graph::{ErrorClass, GraphClient, GraphError};
use shared::secrets::{MetaSecrets, Redacted};

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

pub fn routes() -> Router<Arc<StaffApp>> {
    Router::new()
        .route(
            "/api/v1/settings/connection",
            get(get_connection).put(put_connection),
        )
        .route("/api/v1/settings/connection/test", post(test_connection))
        .route(
            "/api/v1/settings/notifications-connection",
            get(get_notify).put(put_notify),
        )
        .route(
            "/api/v1/settings/notifications-connection/effective",
            get(get_effective),
        )
        .route(
            "/api/v1/settings/notifications-connection/test",
            post(test_notify),
        )
        .route("/api/v1/settings/ai", get(get_ai).put(put_ai))
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

/// Ids in clear, secrets masked, and which secrets are set.
fn masked_view(stored: &Map<String, Value>, fields: &[Field]) -> Map<String, Value> {
    let mut out = Map::new();
    let mut set = Map::new();
    let mut missing = Vec::new();
    for f in fields {
        let v = text_of(stored, f.name);
        if v.is_empty() {
            missing.push(f.name);
        }
        match f.kind {
            Kind::Id => {
                out.insert(f.name.into(), Value::String(v));
            }
            Kind::Secret(_) => {
                set.insert(f.name.into(), Value::Bool(!v.is_empty()));
                out.insert(f.name.into(), Value::String(Redacted::new(v).masked()));
            }
        }
    }
    out.insert("set".into(), Value::Object(set));
    out.insert("missing".into(), json!(missing));
    out
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

async fn read(b: &SettingsBackend, id: &str) -> Result<Map<String, Value>, ApiError> {
    b.secrets.read_object(id).await.map_err(secret_failure)
}

async fn write(b: &SettingsBackend, id: &str, v: &Map<String, Value>) -> Result<(), ApiError> {
    b.secrets.write_object(id, v).await.map_err(secret_failure)
}

// ---------------------------------------------------------------------------------------------
// Inbox connection
// ---------------------------------------------------------------------------------------------

async fn get_connection(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let stored = read(b, &b.meta_secret_id).await?;
    Ok(axum::Json(masked_view(&stored, &CONNECTION)).into_response())
}

async fn put_connection(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
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
    Ok(axum::Json(masked_view(&merged, &CONNECTION)).into_response())
}

async fn test_connection(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
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
    Ok(axum::Json(report.to_json("inbox")).into_response())
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

async fn get_notify(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let stored = read(b, notify_id(b)?).await?;
    Ok(axum::Json(masked_view(&stored, &NOTIFY)).into_response())
}

async fn put_notify(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let id = notify_id(b)?;
    let body = body_object(&body)?;
    let stored = read(b, id).await?;
    let updates = credential_updates(&body, &NOTIFY, &stored)?;
    let merged = merge_fields(stored, &updates);
    write(b, id, &merged).await?;
    tracing::info!(staff_id = %who.staff_id, changed = ?changed(&updates), "notification credentials changed");
    Ok(axum::Json(masked_view(&merged, &NOTIFY)).into_response())
}

async fn effective(
    b: &SettingsBackend,
) -> Result<shared::credentials::EffectiveCredentials, ApiError> {
    let notify = notify_of(&read(b, notify_id(b)?).await?);
    let inbox = meta_of(&read(b, &b.meta_secret_id).await?);
    Ok(effective_notify_credentials(&notify, &inbox))
}

async fn get_effective(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let e = effective(app.settings_backend()?).await?;
    Ok(axum::Json(json!({
        "source": e.source.as_str(),
        "reason": e.reason,
        "missing": e.missing,
        "business_id": e.business_id,
        "waba_id": e.waba_id,
        "app_id": e.app_id,
        "phone_number_id": e.phone_number_id,
        "access_token": e.access_token.masked(),
        "app_secret": e.app_secret.masked(),
    }))
    .into_response())
}

async fn test_notify(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Response, ApiError> {
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
    Ok(axum::Json(report.to_json(e.source.as_str())).into_response())
}

// ---------------------------------------------------------------------------------------------
// AI settings
// ---------------------------------------------------------------------------------------------

const AI_FIELDS: [&str; 5] = ["enabled", "provider", "model", "mode", "api_key"];

fn ai_id(b: &SettingsBackend) -> Result<&str, ApiError> {
    secret_id(&b.ai_secret_id, "AI settings", "AI_SECRET_ARN")
}

fn ai_view(m: &Map<String, Value>) -> Value {
    let key = Redacted::new(text_of(m, "api_key"));
    let mode = match text_of(m, "mode").as_str() {
        "auto" => "auto",
        _ => "manual",
    };
    json!({
        "enabled": m.get("enabled").and_then(Value::as_bool).unwrap_or(false),
        "provider": text_of(m, "provider"),
        "model": text_of(m, "model"),
        "mode": mode,
        "api_key": key.masked(),
        "api_key_set": !key.is_empty(),
    })
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

async fn get_ai(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let b = app.settings_backend()?;
    let stored = read(b, ai_id(b)?).await?;
    Ok(axum::Json(ai_view(&stored)).into_response())
}

async fn put_ai(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
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
    Ok(axum::Json(ai_view(&merged)).into_response())
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
    checks: Vec<Value>,
}

impl Report {
    /// Every check that ran passed (skipped ones have `ok: null`).
    fn ok(&self) -> bool {
        self.checks.iter().all(|c| c["ok"] != Value::Bool(false))
            && self.checks.iter().any(|c| c["ok"] == Value::Bool(true))
    }

    fn to_json(&self, source: &str) -> Value {
        json!({"ok": self.ok(), "credentials": source, "checks": self.checks})
    }
}

fn check_ok(name: &str, detail: impl Into<String>) -> Value {
    json!({"name": name, "ok": true, "detail": detail.into()})
}

fn check_fail(name: &str, detail: impl Into<String>) -> Value {
    json!({"name": name, "ok": false, "detail": detail.into()})
}

fn check_skipped(name: &str, why: &str) -> Value {
    json!({"name": name, "ok": null, "detail": format!("skipped: {why}")})
}

/// A failed call as a check: Meta's code, class and message (redacted of the credentials).
fn check_error(name: &str, what: &str, e: &GraphError, known: &[&str]) -> Value {
    let error = match e {
        GraphError::Meta {
            http_status,
            code,
            subcode,
            message,
            class,
            fbtrace_id,
            ..
        } => json!({
            "http_status": http_status,
            "code": code,
            "subcode": subcode,
            "class": class.as_str(),
            "message": redact(message, known),
            "fbtrace_id": fbtrace_id,
        }),
        other => json!({"class": "unreachable", "message": redact(&other.to_string(), known)}),
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
    json!({"name": name, "ok": false, "detail": detail, "error": error})
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
            let numbers: Vec<Value> = v
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|n| {
                    json!({
                        "id": n.get("id").cloned().unwrap_or(Value::Null),
                        "display_phone_number": n.get("display_phone_number").cloned().unwrap_or(Value::Null),
                        "verified_name": n.get("verified_name").cloned().unwrap_or(Value::Null),
                        "quality_rating": n.get("quality_rating").cloned().unwrap_or(Value::Null),
                    })
                })
                .collect();
            let mut check = if numbers.is_empty() {
                check_fail("phone_numbers", "the WABA has no phone number")
            } else {
                check_ok("phone_numbers", format!("{} number(s)", numbers.len()))
            };
            if let Some(pnid) = c.phone_number_id {
                let found = numbers.iter().any(|n| n["id"].as_str() == Some(pnid));
                if !found {
                    check = check_fail(
                        "phone_numbers",
                        format!("phone_number_id {pnid} is not a number of this WABA"),
                    );
                }
            }
            check["numbers"] = Value::Array(numbers);
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
        let v = Value::Object(masked_view(&stored, &CONNECTION));
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
        let ai = ai_view(&obj(
            json!({"api_key": "sk-very-secret-key", "mode": "auto", "enabled": true}),
        ));
        assert!(!ai.to_string().contains("very-secret"));
        assert_eq!(
            (ai["mode"].as_str(), ai["api_key_set"].as_bool()),
            (Some("auto"), Some(true))
        );
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
        let u = ai_updates(&obj(json!({"provider": "anthropic", "model": "claude-sonnet-4-5", "mode": "auto", "api_key": "sk-ant-1"})), &stored).unwrap();
        assert_eq!(u.len(), 5);
    }
}
