//! Staff API (`/api/v1/…`, JWT). One module per capability, each owning its routes and its
//! typed request and response bodies (from which the OpenAPI document is generated); this file
//! composes them and holds what they share: the app state, authentication, errors, cursors.
//!
//! Every route authenticates the bearer token (asymmetric, pinned algorithm, `kid` rotation)
//! and checks one permission; errors are `{"error":{"code","message"}}`; page cursors are
//! opaque and signed.
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shared::auth::{Action, AuthError, JwtVerifier, Permission, Principal, Resource};
use shared::cursor::CursorSigner;
use shared::phone::PhoneNormalizer;
use shared::secrets::{ApiSecrets, CachedSecret};
use shared::store::dynamo::WINDOW_MS;
use shared::store::model::Conversation;
use shared::store::{Store, StoreError, keys};
use tokio::sync::RwLock;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub mod lambda;
pub mod routing;

pub mod activity;
pub mod settings;
pub mod suggestions;

pub mod admin_crud;
pub mod bots;
pub mod campaigns;
pub mod conversations;
pub mod customers;
pub mod directory;
pub mod inbox;
pub mod lifecycle;
pub mod media;
pub mod notifications;
pub mod openapi;
pub mod templates;
pub mod visibility;
pub mod widget;
pub const API_PREFIX: &str = "/api/v1";

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
    /// The bots function's queue (a closed conversation's rating request).
    pub(crate) bot_jobs: Option<Arc<dyn shared::queue::EnvelopeSink>>,
    /// Where campaign runs are scheduled (EventBridge Scheduler).
    pub(crate) campaign_schedules: Option<Arc<dyn shared::campaigns::schedules::RunSchedules>>,
    /// Overall time a send may take (pacing wait + every Graph API attempt), below API
    /// Gateway's 29 s: past it the caller gets a clear answer, never a gateway timeout.
    pub send_budget: std::time::Duration,
    /// Largest CSV answered in the response itself; a longer one is written to S3 and answered
    /// with a link (a Lambda response carries at most 6 MB).
    pub csv_inline_bytes: usize,
}

/// Default [`StaffApp::send_budget`].
pub const SEND_BUDGET: std::time::Duration = std::time::Duration::from_secs(24);

/// Default [`StaffApp::csv_inline_bytes`]: below Lambda's 6 MB response limit with room for
/// the headers.
pub const CSV_INLINE_BYTES: usize = 5 * 1024 * 1024;

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
            bot_jobs: None,
            campaign_schedules: None,
            send_budget: SEND_BUDGET,
            csv_inline_bytes: CSV_INLINE_BYTES,
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

    /// Hands conversation events (closed) to the bots function's queue.
    pub fn with_bot_jobs(mut self, jobs: Arc<dyn shared::queue::EnvelopeSink>) -> Self {
        self.bot_jobs = Some(jobs);
        self
    }

    /// Enables the campaign routes' scheduling of runs.
    pub fn with_campaign_schedules(
        mut self,
        s: Arc<dyn shared::campaigns::schedules::RunSchedules>,
    ) -> Self {
        self.campaign_schedules = Some(s);
        self
    }

    /// Another largest inline CSV than [`CSV_INLINE_BYTES`] (tests reach the S3 export with a
    /// few recipients).
    pub fn with_csv_inline_bytes(mut self, bytes: usize) -> Self {
        self.csv_inline_bytes = bytes;
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

/// Every capability's routes, composed.
fn capabilities() -> routing::Routes {
    openapi::routes()
        .merge(conversations::routes())
        .merge(inbox::routes())
        .merge(lifecycle::routes())
        .merge(suggestions::routes())
        .merge(bots::routes())
        .merge(campaigns::routes())
        .merge(notifications::routes())
        .merge(media::routes())
        .merge(directory::routes())
        .merge(customers::routes())
        .merge(admin_crud::routes())
        .merge(templates::routes())
        .merge(activity::routes())
        .merge(settings::routes())
        .merge(visibility::routes())
        .merge(widget::routes())
}

/// Every route with its OpenAPI description (what the document is made of).
pub fn api_router() -> OpenApiRouter<Arc<StaffApp>> {
    capabilities().describe(OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()))
}

/// The API as served: every route, none of its description (built on demand, [`openapi`]).
pub fn router(app: Arc<StaffApp>) -> Router {
    capabilities()
        .into_router()
        .route_layer(axum::middleware::from_fn(shared::http_edge::access_log))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(app)
}

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

pub(crate) fn parse_limit(v: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
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

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
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
