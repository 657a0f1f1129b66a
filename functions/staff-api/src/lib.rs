//! Staff API (`/api/v1/…`, JWT): inbox, history, auto-lead settings, directory bulk import.
//!
//! Every route authenticates the bearer token (asymmetric, pinned algorithm, `kid` rotation)
//! and checks one permission; errors are `{"error":{"code","message"}}`; page cursors are
//! opaque and signed.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::auth::{Action, AuthError, JwtVerifier, Permission, Principal, Resource};
use shared::crm_events::{
    CrmRecord, DirectoryChange, DirectoryKind, DirectoryOp, parse_timestamp_ms,
};
use shared::cursor::CursorSigner;
use shared::phone::PhoneNormalizer;
use shared::secrets::{ApiSecrets, CachedSecret};
use shared::store::dynamo::{DirectoryOutcome, WINDOW_MS};
use shared::store::model::{AutoLeadSettings, Conversation, Delivery, MessageItem, RelType};
use shared::store::{Store, StoreError, keys};
use tokio::sync::RwLock;

pub mod lambda;

pub mod activity;
pub mod settings;

pub mod admin_crud;
pub mod customers;
pub mod inbox;
pub mod media;
pub mod openapi;
pub mod templates;
pub mod visibility;
pub const API_PREFIX: &str = "/api/v1";
const MAX_IMPORT: usize = 1000;

pub struct StaffApp {
    pub store: Store,
    pub phones: PhoneNormalizer,
    pub secrets: Arc<CachedSecret<ApiSecrets>>,
    pub issuer: String,
    pub audience: String,
    pub now_ms: fn() -> i64,
    keys: RwLock<Option<(Arc<ApiSecrets>, Arc<Keys>)>>,
    /// The inbox-visibility setting, cached briefly ([`visibility`]).
    pub(crate) visibility_cache: RwLock<Option<(std::time::Instant, visibility::Mode)>>,
    messaging: Option<inbox::Messaging>,
    media_bucket: Option<shared::media::MediaBucket>,
    settings: Option<settings::SettingsBackend>,
    /// Overall time a send may take (pacing wait + every Graph API attempt), below API
    /// Gateway's 29 s: past it the caller gets a clear answer, never a gateway timeout.
    pub send_budget: std::time::Duration,
}

/// Default [`StaffApp::send_budget`].
pub const SEND_BUDGET: std::time::Duration = std::time::Duration::from_secs(24);

pub(crate) struct Keys {
    verifier: JwtVerifier,
    cursors: CursorSigner,
}

impl StaffApp {
    pub fn new(
        store: Store,
        phones: PhoneNormalizer,
        secrets: Arc<CachedSecret<ApiSecrets>>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        now_ms: fn() -> i64,
    ) -> Self {
        Self {
            store,
            phones,
            secrets,
            issuer: issuer.into(),
            audience: audience.into(),
            now_ms,
            keys: RwLock::new(None),
            visibility_cache: RwLock::new(None),
            messaging: None,
            media_bucket: None,
            settings: None,
            send_budget: SEND_BUDGET,
        }
    }

    /// A shorter (or longer) overall send budget than [`SEND_BUDGET`].
    pub fn with_send_budget(mut self, budget: std::time::Duration) -> Self {
        self.send_budget = budget;
        self
    }

    /// Enables the routes that talk to Meta and the CRM bus (replies, read receipts,
    /// assignment and ticket events).
    pub fn with_messaging(mut self, m: inbox::Messaging) -> Self {
        self.messaging = Some(m);
        self
    }

    /// Enables the media routes (presigned links and uploads).
    pub fn with_media(mut self, bucket: shared::media::MediaBucket) -> Self {
        self.media_bucket = Some(bucket);
        self
    }

    /// Enables the connection / notification / AI settings routes (Secrets Manager).
    pub fn with_settings(mut self, s: settings::SettingsBackend) -> Self {
        self.settings = Some(s);
        self
    }

    pub(crate) fn messaging(&self) -> Result<&inbox::Messaging, ApiError> {
        self.messaging.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                "messaging is not configured",
            )
        })
    }

    /// Verifier and cursor signer, rebuilt only when the secret changes (rotation).
    async fn keys(&self) -> Result<Arc<Keys>, ApiError> {
        let secrets = self.secrets.get().await.map_err(|e| {
            tracing::error!(error = %e, "API secret unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "secrets_unavailable",
                "authentication keys are unavailable",
            )
        })?;
        if let Some((s, k)) = self.keys.read().await.as_ref()
            && Arc::ptr_eq(s, &secrets)
        {
            return Ok(k.clone());
        }
        let verifier =
            JwtVerifier::new(&secrets.jwt_keys, &self.issuer, &self.audience).map_err(|e| {
                tracing::error!(error = %e, "JWT keys misconfigured");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "auth_misconfigured",
                    "authentication is not configured",
                )
            })?;
        let k = Arc::new(Keys {
            verifier,
            cursors: cursor_signer(secrets.cursor_key.expose())?,
        });
        *self.keys.write().await = Some((secrets, k.clone()));
        Ok(k)
    }
}

/// Shortest `cursor_key` accepted: an HMAC key of fewer bytes would make page cursors forgeable
/// by guessing.
pub const MIN_CURSOR_KEY_BYTES: usize = 32;

fn cursor_signer(key: &str) -> Result<CursorSigner, ApiError> {
    if key.len() < MIN_CURSOR_KEY_BYTES {
        tracing::error!(
            bytes = key.len(),
            "ApiSecret.cursor_key is shorter than {MIN_CURSOR_KEY_BYTES} bytes"
        );
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_misconfigured",
            "authentication is not configured",
        ));
    }
    Ok(CursorSigner::new(key.as_bytes()))
}

// ---------- errors ----------

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let message = match &e {
            AuthError::Forbidden(what) => format!("permission {what} is required"),
            other => other.to_string(),
        };
        Self::new(status, e.code(), message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage error");
        if matches!(e, StoreError::Refused(_)) {
            // Retrying the same request cannot help (e.g. over DynamoDB's 400 KB item size).
            return Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_storable",
                "the request cannot be stored (too large or invalid)",
            );
        }
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "storage is unavailable, retry later",
        )
    }
}

// ---------- auth extractor ----------

/// The authenticated caller (401 before the handler runs when the token is missing or bad).
pub struct Authed(pub Principal, pub(crate) Arc<Keys>);

impl FromRequestParts<Arc<StaffApp>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<StaffApp>,
    ) -> Result<Self, Self::Rejection> {
        let keys = app.keys().await?;
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = keys.verifier.verify_header(header)?;
        Ok(Authed(principal, keys))
    }
}

pub(crate) const CHAT_VIEW: Permission = Permission {
    resource: Resource::WhatsappChat,
    action: Action::View,
};

// ---------- routes ----------

pub fn router(app: Arc<StaffApp>) -> Router {
    Router::new()
        .route("/api/v1/conversations", get(list_conversations))
        .route("/api/v1/conversations/unread", get(unread_counts))
        .route("/api/v1/messages", post(inbox::start_conversation))
        .route("/api/v1/conversations/{id}", get(get_conversation))
        .route(
            "/api/v1/conversations/{id}/messages",
            get(list_messages).post(inbox::send_message),
        )
        .route("/api/v1/conversations/{id}/read", post(inbox::mark_read))
        .route(
            "/api/v1/conversations/{id}/assignee",
            axum::routing::put(inbox::assign),
        )
        .route(
            "/api/v1/conversations/{id}/tickets",
            post(inbox::create_ticket),
        )
        .route(
            "/api/v1/settings/auto-lead",
            get(get_auto_lead).put(put_auto_lead),
        )
        .route("/api/v1/directory/import", post(import_directory))
        .merge(media::routes())
        .merge(openapi::routes())
        .merge(admin_crud::routes())
        .merge(templates::routes())
        .merge(activity::routes())
        .merge(settings::routes())
        .merge(visibility::routes())
        .merge(customers::routes())
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(app)
}

#[derive(Deserialize)]
struct PageQuery {
    rel_type: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
    /// Conversations assigned to this staff id (`none`: unassigned).
    assignee: Option<String>,
    /// Text search on the customer's name or number.
    q: Option<String>,
}

/// Filters of the inbox list beyond `rel_type`.
struct InboxFilter {
    assignee: Option<String>,
    text: Option<String>,
    digits: Option<String>,
}

impl InboxFilter {
    fn new(assignee: Option<String>, q: Option<String>) -> Result<Self, ApiError> {
        let assignee = assignee
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty());
        let text = q.map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty());
        if text.as_ref().is_some_and(|t| t.chars().count() > 100) {
            return Err(ApiError::bad_request("q must be at most 100 characters"));
        }
        let digits = text
            .as_ref()
            .map(|t| t.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|d| d.len() >= 3);
        Ok(Self {
            assignee,
            text,
            digits,
        })
    }

    fn is_empty(&self) -> bool {
        self.assignee.is_none() && self.text.is_none()
    }

    fn matches(&self, c: &Conversation) -> bool {
        let assignee_ok = match self.assignee.as_deref() {
            None => true,
            Some("none") => c.assignee.is_none(),
            Some(a) => c.assignee.as_deref() == Some(a),
        };
        let text_ok = match &self.text {
            None => true,
            Some(t) => {
                c.customer_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(t.as_str()))
                    || self.digits.as_deref().is_some_and(|d| {
                        [c.customer_phone.as_deref(), c.wa_id.as_deref()]
                            .into_iter()
                            .flatten()
                            .any(|p| p.contains(d))
                    })
            }
        };
        assignee_ok && text_ok
    }

    /// Part of the cursor scope: a cursor only continues the same filtered list.
    fn scope(&self) -> String {
        format!(
            "{}|{}",
            self.assignee.as_deref().unwrap_or(""),
            self.text.as_deref().unwrap_or("")
        )
    }
}

/// Pages of the index examined at most per filtered request.
const MAX_FILTER_PAGES: usize = 20;

/// Decodes the optional signed cursor of the list `scope`; a bad one is 400 `invalid_cursor`
/// with `message`.
pub(crate) fn decode_cursor_as<T: serde::de::DeserializeOwned>(
    keys: &Keys,
    scope: &str,
    cursor: Option<&str>,
    message: &'static str,
) -> Result<Option<T>, ApiError> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => keys
            .cursors
            .decode(scope, c)
            .map(Some)
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", message)),
    }
}

fn parse_limit(v: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be a number from 1 to {max}"))
            }),
    }
}

#[derive(Serialize)]
struct Page<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

pub(crate) fn conversation_json(c: &Conversation, now_ms: i64) -> Value {
    json!({
        "id": c.conversation_id,
        "phone_number_id": c.phone_number_id,
        "customer": {
            "id": c.customer_id,
            "name": c.customer_name,
            "phone": c.customer_phone,
            "wa_id": c.wa_id,
            "bsuid": c.bsuid,
        },
        "rel_type": c.rel_type,
        "rel_id": c.rel_id,
        "unread": c.unread,
        "message_count": c.message_count,
        "last_message_at": c.last_message_at,
        "last_message_preview": c.last_message_preview,
        "last_inbound_at": c.last_inbound_at,
        "window_expires_at": c.window_expires_at,
        "window_open": c.window_expires_at.is_some_and(|e| e > now_ms),
        "session_started_at": c.session_started_at,
        "assignee": c.assignee,
        "tickets": c.tickets,
        "created_at": c.created_at,
    })
}

fn message_json(m: &MessageItem, d: Option<&Delivery>) -> Value {
    let raw: Value = serde_json::from_str(&m.raw).unwrap_or(Value::Null);
    let delivery = d.map(|d| {
        json!({
            "status": d.status,
            "sent_at": d.sent_at,
            "delivered_at": d.delivered_at,
            "read_at": d.read_at,
            "failed_at": d.failed_at,
            "errors": d.errors.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()),
            "pricing": d.pricing.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()),
        })
    });
    json!({
        "id": m.wamid,
        "conversation_id": m.conversation_id,
        "direction": m.direction,
        "type": m.kind,
        "timestamp": m.timestamp,
        "summary": m.summary,
        "source": m.source,
        "context_id": m.context_wamid,
        "staff_id": m.staff_id,
        "delivery": delivery,
        "media": m.media_id.as_ref().map(|id| json!({
            "id": id,
            "state": m.media_state.map(|s| s.as_str()),
            "error": m.media_error,
        })),
        "message": raw,
    })
}

async fn list_conversations(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    who.require(CHAT_VIEW)?;
    let rel_types: Vec<RelType> = match q.rel_type.as_deref() {
        None | Some("") | Some("all") => RelType::ALL.to_vec(),
        Some(r) => vec![RelType::parse(r).ok_or_else(|| {
            ApiError::bad_request("rel_type must be one of leads, contacts, staff, general")
        })?],
    };
    let filter = InboxFilter::new(q.assignee.clone(), q.q.clone())?;
    let visible = visibility::of(&app, &who).await?;
    let scope = format!(
        "conversations:{}:{}",
        q.rel_type.as_deref().unwrap_or("all"),
        filter.scope()
    );
    let before: Option<String> = decode_cursor_as(
        &keys,
        &scope,
        q.cursor.as_deref(),
        "cursor is invalid for this list",
    )?;
    let limit = parse_limit(q.limit.as_deref(), 25, 100)?;
    // Filters apply to the index pages in order; the cursor is the last conversation examined.
    let batch = if filter.is_empty() && !visible.restricted() {
        limit
    } else {
        100
    };
    let mut rows = Vec::new();
    let mut cursor = before;
    let mut next = None;
    'pages: for _ in 0..MAX_FILTER_PAGES {
        let (page, more) = app
            .store
            .inbox(&rel_types, cursor.as_deref(), batch)
            .await?;
        for c in page {
            if rows.len() == limit {
                next = cursor.clone();
                break 'pages;
            }
            cursor = c.gsi1sk.clone();
            if filter.matches(&c) && visible.sees(&c) {
                rows.push(c);
            }
        }
        if more.is_none() {
            next = None;
            break;
        }
        next = cursor.clone();
        if rows.len() == limit {
            break;
        }
    }
    let now = (app.now_ms)();
    let page = Page {
        data: rows.iter().map(|c| conversation_json(c, now)).collect(),
        next_cursor: next.map(|n| keys.cursors.encode(&scope, &n)),
    };
    Ok(axum::Json(page).into_response())
}

/// `GET /api/v1/conversations/unread`: unread messages and conversations per `rel_type`.
async fn unread_counts(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Response, ApiError> {
    who.require(CHAT_VIEW)?;
    // Counts only what the caller may see.
    let visible = visibility::of(&app, &who).await?;
    let visible_to = visible.restricted().then_some(who.staff_id.as_str());
    let mut out = serde_json::Map::new();
    let (mut messages, mut conversations) = (0i64, 0i64);
    for r in RelType::ALL {
        let (m, c) = app.store.unread_counts(r, visible_to).await?;
        messages += m;
        conversations += c;
        out.insert(
            r.as_str().into(),
            json!({"messages": m, "conversations": c}),
        );
    }
    out.insert(
        "total".into(),
        json!({"messages": messages, "conversations": conversations}),
    );
    Ok(axum::Json(Value::Object(out)).into_response())
}

/// Whether a staff member may see a conversation: `whatsapp_chat:view` sees the inbox.
/// The conversation `id` if it exists (404) and the caller may see it (403): the check of
/// every conversation route.
pub(crate) async fn visible_conversation(
    app: &StaffApp,
    who: &Principal,
    id: &str,
) -> Result<Conversation, ApiError> {
    let (pnid, cid) = parse_conv_id(id)?;
    let conv = app
        .store
        .conversation(pnid, cid)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    visibility::require_visible(app, who, &conv).await?;
    Ok(conv)
}

pub(crate) fn parse_conv_id(id: &str) -> Result<(&str, &str), ApiError> {
    keys::parse_conversation_id(id).ok_or_else(|| ApiError::not_found("conversation"))
}

async fn get_conversation(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(CHAT_VIEW)?;
    let conv = visible_conversation(&app, &who, &id).await?;
    Ok(axum::Json(conversation_json(&conv, (app.now_ms)())).into_response())
}

async fn list_messages(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    who.require(CHAT_VIEW)?;
    let conv = visible_conversation(&app, &who, &id).await?;
    let (pnid, cid) = (conv.phone_number_id.as_str(), conv.customer_id.as_str());
    let scope = format!("messages:{id}");
    let after: Option<String> = decode_cursor_as(
        &keys,
        &scope,
        q.cursor.as_deref(),
        "cursor is invalid for this list",
    )?;
    let limit = parse_limit(q.limit.as_deref(), 50, 200)?;
    let (rows, next) = app
        .store
        .messages(pnid, cid, after.as_deref(), limit)
        .await?;
    let page = Page {
        data: rows
            .iter()
            .map(|(m, d)| message_json(m, d.as_ref()))
            .collect(),
        next_cursor: next.map(|n| keys.cursors.encode(&scope, &n)),
    };
    Ok(axum::Json(page).into_response())
}

async fn get_auto_lead(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    Ok(axum::Json(app.store.auto_lead_settings().await?).into_response())
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoLeadBody {
    enabled: bool,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
}

async fn put_auto_lead(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let b: AutoLeadBody = parse_json(&body)?;
    let clean = |v: Option<String>, field: &str| -> Result<Option<String>, ApiError> {
        match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
            Some(s) if s.chars().count() > 100 => Err(ApiError::bad_request(format!(
                "{field} is longer than 100 characters"
            ))),
            other => Ok(other),
        }
    };
    let settings = AutoLeadSettings {
        enabled: b.enabled,
        status: clean(b.status, "status")?,
        source: clean(b.source, "source")?,
        assignee: clean(b.assignee, "assignee")?,
    };
    app.store
        .put_auto_lead_settings(&settings, (app.now_ms)())
        .await?;
    tracing::info!(staff_id = %who.staff_id, enabled = settings.enabled, "auto-lead settings changed");
    Ok(axum::Json(settings).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    records: Vec<Value>,
}

#[derive(Deserialize)]
struct ImportRecord {
    kind: String,
    updated_at: Value,
    #[serde(default)]
    converted: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(flatten)]
    record: CrmRecord,
}

/// `POST /api/v1/directory/import` (admin): initial load of leads / contacts / staff.
async fn import_directory(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let b: ImportBody = parse_json(&body)?;
    if b.records.len() > MAX_IMPORT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_records",
            format!("at most {MAX_IMPORT} records per request"),
        ));
    }
    let mut counts: HashMap<&str, usize> =
        HashMap::from([("applied", 0), ("stale", 0), ("duplicate", 0)]);
    let mut errors = Vec::new();
    let mut warnings: Vec<Value> = Vec::new();
    let now = (app.now_ms)();
    for (index, raw) in b.records.into_iter().enumerate() {
        let r: ImportRecord = match serde_json::from_value(raw) {
            Ok(r) => r,
            Err(e) => {
                errors.push(json!({"index": index, "message": e.to_string()}));
                continue;
            }
        };
        let kind = match r.kind.as_str() {
            "lead" => DirectoryKind::Lead,
            "contact" => DirectoryKind::Contact,
            "staff" => DirectoryKind::Staff,
            other => {
                errors.push(json!({"index": index, "message": format!("kind {other:?} must be lead, contact or staff")}));
                continue;
            }
        };
        let updated_at_ms = match parse_timestamp_ms(&r.updated_at) {
            Ok(t) => t,
            Err(e) => {
                errors.push(json!({"index": index, "message": e.to_string()}));
                continue;
            }
        };
        let op = if r.deleted {
            DirectoryOp::Delete
        } else if r.converted {
            DirectoryOp::Convert
        } else {
            DirectoryOp::Upsert
        };
        let event_id = format!(
            "import:{}",
            shared::envelope::sha256_hex(&[
                kind.as_str(),
                &r.record.id,
                &updated_at_ms.to_string()
            ])
        );
        if let Some(p) = r.record.phone.as_deref().filter(|p| !p.trim().is_empty())
            && let Err(e) = app.phones.to_e164(p)
        {
            warnings.push(json!({
                "index": index,
                "message": format!("phone does not parse ({e}); the record will not match senders"),
            }));
        }
        let change = DirectoryChange {
            event_id,
            kind,
            op,
            updated_at_ms,
            record: r.record,
        };
        let outcome = shared::directory::apply(&app.store, &app.phones, &change, now).await?;
        let k = match outcome {
            DirectoryOutcome::Applied => "applied",
            DirectoryOutcome::Stale => "stale",
            DirectoryOutcome::Duplicate => "duplicate",
        };
        *counts.entry(k).or_default() += 1;
    }
    tracing::info!(staff_id = %who.staff_id, applied = counts["applied"], errors = errors.len(), "directory import");
    Ok(axum::Json(json!({
        "applied": counts["applied"],
        "stale": counts["stale"],
        "duplicate": counts["duplicate"],
        "errors": errors,
        "warnings": warnings,
    }))
    .into_response())
}

/// Secrets are re-read at most this often (rotation of JWT keys takes effect within it).
pub const SECRET_TTL: Duration = Duration::from_secs(300);

pub fn window_ms() -> i64 {
    WINDOW_MS
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn a_short_cursor_key_is_refused() {
        assert!(cursor_signer("short-key").is_err());
        assert!(cursor_signer(&"k".repeat(31)).is_err());
        assert!(cursor_signer(&"k".repeat(32)).is_ok());
    }
}
