//! Meta Graph API client for the WhatsApp Cloud API (reqwest with rustls).
//!
//! Calls: [`GraphClient::send`], [`GraphClient::mark_read`], [`GraphClient::upload_media`],
//! [`GraphClient::media_info`], [`GraphClient::download_media`] (and [`GraphClient::fetch_media`]
//! which does both and checks the sha256), [`GraphClient::templates`] (every page),
//! [`GraphClient::get_object`] (account reads: `/me`, the WABA, its numbers; connection test).
//!
//! **Errors** are classified by Meta's `error.code` only ([`classify`]), never by the HTTP
//! status: Meta sends rate limits as HTTP 400.
//!
//! **Retries** (exponential backoff with full jitter, at most [`GraphConfig::max_attempts`]
//! attempts in all) happen only where nothing can have been sent twice:
//! - [`GraphError::NotSent`]: the connection failed before the request was written;
//! - a Meta error of class [`ErrorClass::RateLimited`] or [`ErrorClass::Temporary`]: Meta
//!   answered with an error, so it did not accept the request.
//!
//! A timeout or a connection lost after the request was written is [`GraphError::Unknown`]
//! and is never retried here: for a send, Meta may have accepted the message, and there is no
//! idempotency key. The caller marks the message `unknown` and settles it from its statuses.
//! The same holds for a 5xx without a Graph error body, or a 2xx without a `wamid`.
//!
//! **Secrets**: the access token is passed per call, sent only as a sensitive `Authorization`
//! header, never stored, logged or put in an error. Media is downloaded only over https from
//! Meta's hosts ([`GraphConfig::media_hosts`]); any other URL is refused before a connection is
//! made, and redirects are followed only to those hosts.
//!
//! Every call is bounded by [`GraphConfig::timeout`] (media downloads by
//! [`GraphConfig::download_timeout`]) and every response body by a size cap.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Url};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use super::outbound::{OutboundMessage, ValidationError};

/// Meta's media CDN host suffixes: the only hosts media is downloaded from.
pub const DEFAULT_MEDIA_HOSTS: [&str; 4] =
    ["fbcdn.net", "fbsbx.com", "facebook.com", "whatsapp.net"];

/// Fields asked of `GET /{waba_id}/message_templates`.
pub const TEMPLATE_FIELDS: &str = "id,name,language,status,category,parameter_format,components";
/// Page size asked of `GET /{waba_id}/message_templates`.
pub const TEMPLATE_PAGE_SIZE: u32 = 100;
/// Bound on pages followed, against a server that pages forever.
pub const MAX_TEMPLATE_PAGES: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphConfig {
    /// `https://graph.facebook.com` (no trailing slash needed).
    pub base_url: String,
    /// Pinned Graph API version, e.g. `v25.0`.
    pub version: String,
    /// Bound on each attempt of every API call (connect, request and response body).
    pub timeout: Duration,
    /// Bound on establishing a connection (kept below `timeout`, so a slow connect is reported
    /// as [`GraphError::NotSent`] rather than [`GraphError::Unknown`]).
    pub connect_timeout: Duration,
    /// Bound on each attempt of a media download (media can be up to 100 MB).
    pub download_timeout: Duration,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// First backoff ceiling; doubled after each attempt, up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Host suffixes media may be downloaded from (`fbcdn.net` allows `x.fbcdn.net`).
    pub media_hosts: Vec<String>,
    /// Tests only: one `host:port` also allowed for downloads, over http too.
    pub allow_insecure_test_host: Option<String>,
    /// Bound on a JSON response body.
    pub max_response_bytes: usize,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            base_url: "https://graph.facebook.com".into(),
            version: "v25.0".into(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            download_timeout: Duration::from_secs(60),
            max_attempts: 4,
            retry_base: Duration::from_millis(250),
            retry_cap: Duration::from_secs(4),
            media_hosts: DEFAULT_MEDIA_HOSTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            allow_insecure_test_host: None,
            max_response_bytes: 8 * 1024 * 1024,
        }
    }
}

impl GraphConfig {
    /// Defaults with the base URL and version of the application configuration.
    pub fn from_app_config(cfg: &crate::config::Config) -> Self {
        Self {
            base_url: cfg.graph_api_base_url.clone(),
            version: cfg.graph_api_version.clone(),
            timeout: Duration::from_millis(cfg.graph_timeout_ms),
            connect_timeout: Duration::from_millis(cfg.graph_timeout_ms.min(3_000)),
            download_timeout: Duration::from_millis(cfg.media_download_timeout_ms),
            ..Self::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What a Meta error code means for us (SYSTEM.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// 130429 throughput, 131056 pair rate, 4 and 80007 rate limits: back off and retry.
    RateLimited,
    /// 131000, 131016, 1, 2: temporary; retried, since an error answer means not accepted.
    Temporary,
    /// 131026: message undeliverable to this recipient.
    RecipientInvalid,
    /// 131047: more than 24 hours since the customer's last message; send a template.
    NeedsTemplate,
    /// 131049: marketing cap for this user; retry after 24 hours, not invalid.
    MarketingCapped,
    /// 131050: the user opted out of marketing; never send marketing again.
    OptedOut,
    /// 131048 spam rate limit, 132015 / 132016 template paused / disabled: pause the campaign.
    TemplatePaused,
    /// 132000 / 132001 / 132012: template parameters or language; re-sync and fix.
    TemplateParams,
    /// 133010 number not registered, 131031 and 368 blocked, 131042 payment: stop the number.
    NumberOrAccount,
    /// 190, 0, 3, 10, 200-299: token or permission; stop, alert, rotate.
    Auth,
    /// Any other code: failed, surfaced with Meta's text.
    Unknown,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Temporary => "temporary",
            Self::RecipientInvalid => "recipient_invalid",
            Self::NeedsTemplate => "needs_template",
            Self::MarketingCapped => "marketing_capped",
            Self::OptedOut => "opted_out",
            Self::TemplatePaused => "template_paused",
            Self::TemplateParams => "template_params",
            Self::NumberOrAccount => "number_or_account",
            Self::Auth => "auth",
            Self::Unknown => "unknown",
        }
    }

    /// Retried automatically by the client.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Temporary)
    }

    /// When a later retry by the caller makes sense (the client does not wait this long).
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            Self::MarketingCapped => Some(Duration::from_secs(24 * 3600)),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classify a Meta error by its `error.code` (never by the HTTP status).
pub fn classify(code: i64) -> ErrorClass {
    match code {
        130429 | 131056 | 4 | 80007 => ErrorClass::RateLimited,
        131000 | 131016 | 1 | 2 => ErrorClass::Temporary,
        131026 => ErrorClass::RecipientInvalid,
        131047 => ErrorClass::NeedsTemplate,
        131049 => ErrorClass::MarketingCapped,
        131050 => ErrorClass::OptedOut,
        131048 | 132015 | 132016 => ErrorClass::TemplatePaused,
        132000 | 132001 | 132012 => ErrorClass::TemplateParams,
        133010 | 131031 | 368 | 131042 => ErrorClass::NumberOrAccount,
        190 | 0 | 3 | 10 | 200..=299 => ErrorClass::Auth,
        _ => ErrorClass::Unknown,
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// Refused before anything was sent: the message (or an argument) breaks a rule.
    #[error("invalid request: {0}")]
    Validation(#[from] ValidationError),
    /// Meta answered with an error: the request was not accepted.
    #[error("Meta error {code} ({class}, HTTP {http_status}): {message}")]
    Meta {
        http_status: u16,
        code: i64,
        subcode: Option<i64>,
        message: String,
        /// `error.error_data.details`, Meta's longer explanation, when given.
        details: Option<String>,
        class: ErrorClass,
        fbtrace_id: Option<String>,
    },
    /// Connection refused, DNS or TLS failure before the request was written: safe to retry.
    #[error("not sent: {0}")]
    NotSent(String),
    /// Timeout or connection lost after the request may have reached Meta: a send may have
    /// been accepted. Never retried automatically.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// Meta's answer could not be understood (and cannot have accepted a send).
    #[error("bad response: {0}")]
    BadResponse(String),
    /// A media URL that is not https on one of Meta's hosts: nothing was fetched.
    #[error("refused: {0}")]
    Refused(String),
    /// The client could not be built from its configuration.
    #[error("configuration: {0}")]
    Config(String),
}

impl GraphError {
    /// Retried automatically by the client (and safe for a caller to retry later).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Meta { class, .. } => class.is_retryable(),
            Self::NotSent(_) => true,
            _ => false,
        }
    }

    /// The class of a Meta error; `None` for errors that are not Meta's answer.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            Self::Meta { class, .. } => Some(*class),
            _ => None,
        }
    }

    /// Meta's `error.code`, if Meta answered with one.
    pub fn meta_code(&self) -> Option<i64> {
        match self {
            Self::Meta { code, .. } => Some(*code),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// A send Meta accepted (not yet delivered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub wamid: String,
    /// Meta's normalised `wa_id` of the recipient (may differ from the input, e.g. Brazil's
    /// ninth digit); absent for sends to a business-scoped user id.
    pub wa_id: Option<String>,
    /// Business-scoped user id, when Meta returns one.
    pub user_id: Option<String>,
    /// `messages[0].message_status` (e.g. `accepted`, `held_for_quality_assessment`).
    pub message_status: Option<String>,
}

/// `GET /{version}/{media-id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaInfo {
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    /// Short-lived download URL on Meta's CDN; needs the access token.
    pub url: String,
    pub mime_type: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default, deserialize_with = "de_u64_lenient")]
    pub file_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
}

/// A media download in progress ([`GraphClient::open_download`]): read it chunk by chunk; the
/// size cap is enforced and the sha256 computed as it goes.
pub struct MediaDownload {
    resp: reqwest::Response,
    limit: usize,
    read: usize,
    hasher: Sha256,
}

impl MediaDownload {
    /// The next chunk, `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, GraphError> {
        match self.resp.chunk().await {
            Ok(Some(c)) => {
                self.read += c.len();
                if self.read > self.limit {
                    return Err(GraphError::BadResponse(format!(
                        "media is over the {}-byte limit",
                        self.limit
                    )));
                }
                self.hasher.update(&c);
                Ok(Some(c))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(GraphError::NotSent(format!(
                "media download cut short after {} bytes: {}",
                self.read,
                describe(e)
            ))),
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> usize {
        self.read
    }

    /// Hex sha256 of what was read.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

/// One template of `GET /{waba_id}/message_templates`; fields we do not model are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageTemplate {
    #[serde(deserialize_with = "de_string_or_number")]
    pub id: String,
    pub name: String,
    pub language: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED` …
    pub status: String,
    #[serde(default)]
    pub category: Option<String>,
    /// `POSITIONAL` or `NAMED`.
    #[serde(default)]
    pub parameter_format: Option<String>,
    #[serde(default)]
    pub components: Vec<serde_json::Value>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

fn de_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string or number, got {other}"
        ))),
    }
}

fn de_u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom("file_size is not a non-negative integer")),
        serde_json::Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom("file_size is not a number")),
        serde_json::Value::Null => Ok(0),
        other => Err(serde::de::Error::custom(format!(
            "file_size: unexpected {other}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Observation (activity log, metrics, tests)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Send,
    MarkRead,
    UploadMedia,
    MediaInfo,
    DownloadMedia,
    Templates,
    /// Reads of the account (`/me`, the WABA, its phone numbers): the connection test.
    Account,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::MarkRead => "mark_read",
            Self::UploadMedia => "upload_media",
            Self::MediaInfo => "media_info",
            Self::DownloadMedia => "download_media",
            Self::Templates => "templates",
            Self::Account => "account",
        }
    }
}

/// One attempt of one call, as told to a [`CallObserver`]. Holds no secret.
#[derive(Debug)]
pub struct CallRecord<'a> {
    pub kind: CallKind,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Phone number id, WABA id or media id the call was about.
    pub subject: Option<&'a str>,
    /// Recipient of a send.
    pub recipient: Option<&'a str>,
    /// HTTP status, when a response came.
    pub http_status: Option<u16>,
    pub duration: Duration,
    /// `None` on success.
    pub error: Option<&'a GraphError>,
    /// Whether the client will try again after this attempt.
    pub will_retry: bool,
}

/// Told of every attempt (for the activity log of issue 3 part 8, metrics, tests).
pub trait CallObserver: Send + Sync {
    fn on_attempt(&self, record: &CallRecord<'_>);
}

impl<F> CallObserver for F
where
    F: Fn(&CallRecord<'_>) + Send + Sync,
{
    fn on_attempt(&self, record: &CallRecord<'_>) {
        self(record)
    }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// Which hosts media may be fetched from; also the redirect policy of the client.
#[derive(Debug, Clone)]
struct HostPolicy {
    suffixes: Vec<String>,
    test_host: Option<String>,
}

impl HostPolicy {
    fn check(&self, url: &Url) -> Result<(), String> {
        if !url.username().is_empty() || url.password().is_some() {
            return Err("media URL must not carry credentials".into());
        }
        let Some(host) = url.host_str() else {
            return Err("media URL has no host".into());
        };
        if let Some(test) = &self.test_host {
            let authority = match url.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_owned(),
            };
            if authority.eq_ignore_ascii_case(test) && matches!(url.scheme(), "http" | "https") {
                return Ok(());
            }
        }
        if url.scheme() != "https" {
            return Err(format!("media URL scheme {:?} is not https", url.scheme()));
        }
        // Only registered names: an IP literal is never one of Meta's CDN hosts.
        if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
            return Err(format!("media host {host} is not one of Meta's hosts"));
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let allowed = self.suffixes.iter().any(|s| {
            let s = s.trim_start_matches('.').to_ascii_lowercase();
            !s.is_empty()
                && (host == s
                    || (host.len() > s.len()
                        && host.ends_with(s.as_str())
                        && host.as_bytes()[host.len() - s.len() - 1] == b'.'))
        });
        if allowed {
            Ok(())
        } else {
            Err(format!("media host {host} is not one of Meta's hosts"))
        }
    }
}

/// Meta Graph API client. Cheap to clone; build one per process and reuse it (connection
/// pool). The access token is an argument of each call and is never kept.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    cfg: Arc<GraphConfig>,
    /// `{base_url}/{version}`.
    api_base: Arc<str>,
    hosts: Arc<HostPolicy>,
    observer: Option<Arc<dyn CallObserver>>,
    retry_gate: Option<Arc<dyn RetryGate>>,
}

/// Asked before each retry of a message send (not before the first attempt, whose permit the
/// caller takes): the number's pacer, so every attempt that reaches Meta has its own permit.
#[async_trait::async_trait]
pub trait RetryGate: Send + Sync {
    /// `Ok` to go on; `Err(why)` stops the retries and the last error is answered.
    async fn before_retry(&self, phone_number_id: &str) -> Result<(), String>;
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("api_base", &self.api_base)
            .field("max_attempts", &self.cfg.max_attempts)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    contacts: Vec<SendContact>,
    #[serde(default)]
    messages: Vec<SendMessageId>,
}

#[derive(Deserialize)]
struct SendContact {
    #[serde(default)]
    wa_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct SendMessageId {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    message_status: Option<String>,
}

#[derive(Deserialize)]
struct SuccessResponse {
    #[serde(default)]
    success: bool,
}

#[derive(Deserialize)]
struct UploadResponse {
    #[serde(deserialize_with = "de_string_or_number")]
    id: String,
}

#[derive(Deserialize)]
struct TemplatePage {
    #[serde(default)]
    data: Vec<MessageTemplate>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    cursors: Option<Cursors>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(deserialize_with = "de_i64_lenient")]
    code: i64,
    #[serde(default, deserialize_with = "de_opt_i64_lenient")]
    error_subcode: Option<i64>,
    #[serde(default)]
    fbtrace_id: Option<String>,
    #[serde(default)]
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

fn de_i64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    de_opt_i64_lenient(d)?.ok_or_else(|| serde::de::Error::custom("error.code is missing"))
}

fn de_opt_i64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Path segments we put in URLs (phone number ids, WABA ids, media ids): digits mostly.
fn path_segment<'a>(field: &str, s: &'a str) -> Result<&'a str, GraphError> {
    if !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(s)
    } else {
        Err(ValidationError::new(
            field,
            "must be a Graph API id (letters, digits, '_' or '-')",
        )
        .into())
    }
}

fn token_ok(token: &str) -> Result<(), GraphError> {
    // A header-safe, non-empty token; its value is never echoed.
    if token.is_empty() || HeaderValue::from_str(token).is_err() || token.contains(' ') {
        return Err(ValidationError::new("token", "access token is empty or malformed").into());
    }
    Ok(())
}

/// Error text without URLs (a media URL is a short-lived credential) and with its causes.
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut out = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Map a transport error: only a failure to connect proves the request was not written.
fn transport_error(err: reqwest::Error) -> GraphError {
    if err.is_connect() {
        GraphError::NotSent(describe(err))
    } else if err.is_builder() {
        GraphError::Config(describe(err))
    } else if err.is_timeout() {
        GraphError::Unknown(format!("timed out: {}", describe(err)))
    } else {
        GraphError::Unknown(describe(err))
    }
}

/// Reads Meta's answer to an accepted send (a 2xx body). A 2xx without `messages[0].id` is
/// `Unknown`: Meta may have accepted it.
pub fn parse_send_response(body: &[u8]) -> Result<Accepted, GraphError> {
    let r: SendResponse = serde_json::from_slice(body).map_err(|e| {
        GraphError::Unknown(format!(
            "Meta answered 2xx but the body is not a send result ({e})"
        ))
    })?;
    let first = r.messages.into_iter().next();
    let (wamid, message_status) = match first {
        Some(SendMessageId {
            id: Some(id),
            message_status,
        }) if !id.is_empty() => (id, message_status),
        _ => {
            return Err(GraphError::Unknown(
                "Meta answered 2xx without messages[0].id".into(),
            ));
        }
    };
    let contact = r.contacts.into_iter().next();
    Ok(Accepted {
        wamid,
        wa_id: contact.as_ref().and_then(|c| c.wa_id.clone()),
        user_id: contact.and_then(|c| c.user_id),
        message_status,
    })
}

/// Ceiling of the backoff before attempt `attempt + 1`: `base * 2^(attempt-1)`, capped.
pub fn backoff_ceiling(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(20);
    base.saturating_mul(factor).min(cap)
}

/// Multipart boundary characters never occur in a body we build except as boundaries.
fn multipart_body(boundary: &str, mime: &str, filename: &str, data: &[u8]) -> Bytes {
    let (head, tail) = multipart_frame(boundary, mime, filename);
    let mut out = Vec::with_capacity(head.len() + data.len() + tail.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(data);
    out.extend_from_slice(&tail);
    Bytes::from(out)
}

/// A multipart boundary no file realistically contains.
fn multipart_boundary() -> String {
    format!(
        "----wacrm{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn mime_ok(mime: &str) -> Result<(), GraphError> {
    if is_mime(mime) {
        Ok(())
    } else {
        Err(ValidationError::new("type", "must be a MIME type such as image/jpeg").into())
    }
}

/// What goes before and after the file's bytes in the upload's multipart body.
fn multipart_frame(boundary: &str, mime: &str, filename: &str) -> (Bytes, Bytes) {
    let mut out = Vec::with_capacity(400);
    let mut part = |name: &str, value: &str| {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\"\r\n\r\n");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    part("messaging_product", "whatsapp");
    part("type", mime);
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"");
    out.extend_from_slice(filename.as_bytes());
    out.extend_from_slice(b"\"\r\nContent-Type: ");
    out.extend_from_slice(mime.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    let tail = format!("\r\n--{boundary}--\r\n");
    (Bytes::from(out), Bytes::from(tail.into_bytes()))
}

/// `type/subtype` with token characters only.
fn is_mime(s: &str) -> bool {
    let tok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match s.split_once('/') {
        Some((a, b)) => s.len() <= 255 && tok(a) && tok(b),
        None => false,
    }
}

/// A filename safe inside a quoted header parameter.
fn safe_filename(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '"' | '\\' | '/') {
                '_'
            } else {
                c
            }
        })
        .take(240)
        .collect();
    if cleaned.trim().is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

/// Per-call facts for the retry loop and the observer.
#[derive(Clone, Copy)]
struct Call<'a> {
    kind: CallKind,
    subject: Option<&'a str>,
    recipient: Option<&'a str>,
    /// Cap on the response body.
    limit: usize,
    /// When the whole call (every attempt and backoff) must be over.
    deadline: Option<Instant>,
}

impl GraphClient {
    pub fn new(cfg: GraphConfig) -> Result<Self, GraphError> {
        let base = Url::parse(cfg.base_url.trim_end_matches('/'))
            .map_err(|e| GraphError::Config(format!("base_url: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(GraphError::Config("base_url must be an http(s) URL".into()));
        }
        if path_segment("version", &cfg.version.replace('.', "_")).is_err() {
            return Err(GraphError::Config(format!(
                "version {:?} is not like v25.0",
                cfg.version
            )));
        }
        let hosts = Arc::new(HostPolicy {
            suffixes: cfg.media_hosts.clone(),
            test_host: cfg.allow_insecure_test_host.clone(),
        });
        let redirect_hosts = hosts.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 3 || redirect_hosts.check(attempt.url()).is_err() {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let connect_timeout = cfg.connect_timeout.min(cfg.timeout);
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(connect_timeout)
            .redirect(policy)
            .user_agent(concat!("whatsapp-crm/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(50))
            .tls_backend_preconfigured(crate::tls::client_config().map_err(GraphError::Config)?)
            .build()
            .map_err(|e| GraphError::Config(describe(e)))?;
        let api_base: Arc<str> = format!(
            "{}/{}",
            cfg.base_url.trim_end_matches('/'),
            cfg.version.trim_matches('/')
        )
        .into();
        Ok(Self {
            http,
            cfg: Arc::new(cfg),
            api_base,
            hosts,
            observer: None,
            retry_gate: None,
        })
    }

    /// Be told of every attempt (activity log, metrics).
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Make each retry of a message send take a permit from `gate` first.
    pub fn with_retry_gate(mut self, gate: Arc<dyn RetryGate>) -> Self {
        self.retry_gate = Some(gate);
        self
    }

    pub fn config(&self) -> &GraphConfig {
        &self.cfg
    }

    /// Send a message; it is validated first. `Ok` means Meta accepted it (wamid), not that it
    /// was delivered.
    pub async fn send(
        &self,
        phone_number_id: &str,
        token: &str,
        msg: &OutboundMessage,
    ) -> Result<Accepted, GraphError> {
        self.send_call(phone_number_id, token, msg, None).await
    }

    /// [`Self::send`] bounded by `deadline`: each attempt's timeout is cut to the time left, and
    /// no further attempt starts when it could not finish in time (the last error is answered:
    /// a send that never left is `NotSent`/rate-limited, retryable by the caller; one whose
    /// answer did not come in time is `Unknown`).
    pub async fn send_within(
        &self,
        phone_number_id: &str,
        token: &str,
        msg: &OutboundMessage,
        deadline: Instant,
    ) -> Result<Accepted, GraphError> {
        self.send_call(phone_number_id, token, msg, Some(deadline))
            .await
    }

    async fn send_call(
        &self,
        phone_number_id: &str,
        token: &str,
        msg: &OutboundMessage,
        deadline: Option<Instant>,
    ) -> Result<Accepted, GraphError> {
        let pnid = path_segment("phone_number_id", phone_number_id)?;
        token_ok(token)?;
        msg.validate()?;
        let url = format!("{}/{pnid}/messages", self.api_base);
        let body = Bytes::from(msg.to_graph_bytes());
        let call = Call {
            kind: CallKind::Send,
            subject: Some(pnid),
            recipient: Some(&msg.to),
            limit: 64 * 1024,
            deadline,
        };
        self.call(
            call,
            || self.json_post(&url, token, body.clone()),
            parse_send_response,
        )
        .await
    }

    /// Mark an inbound message (and the earlier ones) as read: blue ticks for the customer.
    pub async fn mark_read(
        &self,
        phone_number_id: &str,
        token: &str,
        wamid: &str,
    ) -> Result<(), GraphError> {
        let pnid = path_segment("phone_number_id", phone_number_id)?;
        token_ok(token)?;
        if wamid.trim().is_empty() || wamid.len() > 256 {
            return Err(ValidationError::new("message_id", "must be a wamid").into());
        }
        let url = format!("{}/{pnid}/messages", self.api_base);
        let body = Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "messaging_product": "whatsapp",
                "status": "read",
                "message_id": wamid,
            }))
            .unwrap_or_default(),
        );
        let call = Call {
            kind: CallKind::MarkRead,
            subject: Some(pnid),
            recipient: None,
            limit: 64 * 1024,
            deadline: None,
        };
        self.call(
            call,
            || self.json_post(&url, token, body.clone()),
            |body| match serde_json::from_slice::<SuccessResponse>(body) {
                Ok(SuccessResponse { success: true }) => Ok(()),
                Ok(_) => Err(GraphError::BadResponse(
                    "mark as read answered without success: true".into(),
                )),
                Err(e) => Err(GraphError::BadResponse(format!(
                    "mark as read answer is not JSON ({e})"
                ))),
            },
        )
        .await
    }

    /// Upload media (multipart: `messaging_product`, `type`, `file`); returns the media id.
    pub async fn upload_media(
        &self,
        phone_number_id: &str,
        token: &str,
        data: &[u8],
        mime: &str,
        filename: &str,
    ) -> Result<String, GraphError> {
        let pnid = path_segment("phone_number_id", phone_number_id)?;
        token_ok(token)?;
        mime_ok(mime)?;
        if data.is_empty() {
            return Err(ValidationError::new("file", "must not be empty").into());
        }
        let boundary = multipart_boundary();
        let body = multipart_body(&boundary, mime, &safe_filename(filename), data);
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let url = format!("{}/{pnid}/media", self.api_base);
        let call = Call {
            kind: CallKind::UploadMedia,
            subject: Some(pnid),
            recipient: None,
            limit: 64 * 1024,
            deadline: None,
        };
        self.call(
            call,
            || {
                self.http
                    .request(Method::POST, &url)
                    .bearer_auth(token)
                    .header(CONTENT_TYPE, content_type.as_str())
                    .body(body.clone())
            },
            |body| {
                serde_json::from_slice::<UploadResponse>(body)
                    .map(|r| r.id)
                    .map_err(|e| GraphError::BadResponse(format!("upload answer has no id ({e})")))
            },
        )
        .await
    }

    /// [`Self::upload_media`] for a file read as it is sent (`size` bytes from `file`): memory
    /// stays bounded whatever the size. One attempt (a stream cannot be sent twice); the caller
    /// retries the whole request.
    pub async fn upload_media_stream<S>(
        &self,
        phone_number_id: &str,
        token: &str,
        mime: &str,
        filename: &str,
        size: u64,
        file: S,
    ) -> Result<String, GraphError>
    where
        S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        use futures::StreamExt;
        let pnid = path_segment("phone_number_id", phone_number_id)?;
        token_ok(token)?;
        mime_ok(mime)?;
        if size == 0 {
            return Err(ValidationError::new("file", "must not be empty").into());
        }
        let boundary = multipart_boundary();
        let (head, tail) = multipart_frame(&boundary, mime, &safe_filename(filename));
        let length = head.len() as u64 + size + tail.len() as u64;
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(head) })
            .chain(file)
            .chain(futures::stream::once(async move { Ok(tail) }));
        let url = format!("{}/{pnid}/media", self.api_base);
        let call = Call {
            kind: CallKind::UploadMedia,
            subject: Some(pnid),
            recipient: None,
            limit: 64 * 1024,
            deadline: None,
        };
        let started = Instant::now();
        let req = self
            .http
            .request(Method::POST, &url)
            .bearer_auth(token)
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header(reqwest::header::CONTENT_LENGTH, length)
            .timeout(self.cfg.download_timeout)
            .body(reqwest::Body::wrap_stream(body));
        let (status, result) = match self.once(call, req).await {
            Ok((status, body)) => (
                Some(status),
                self.interpret(call, status, &body, &|b: &[u8]| {
                    serde_json::from_slice::<UploadResponse>(b)
                        .map(|r| r.id)
                        .map_err(|e| {
                            GraphError::BadResponse(format!("upload answer has no id ({e})"))
                        })
                }),
            ),
            Err(e) => (None, Err(e)),
        };
        self.observe(call, 1, status, started.elapsed(), &result, false);
        result
    }

    /// `GET /{version}/{media-id}`: the short-lived URL, type, sha256 and size of a media.
    pub async fn media_info(&self, media_id: &str, token: &str) -> Result<MediaInfo, GraphError> {
        let id = path_segment("media_id", media_id)?;
        token_ok(token)?;
        let url = format!("{}/{id}", self.api_base);
        let call = Call {
            kind: CallKind::MediaInfo,
            subject: Some(id),
            recipient: None,
            limit: 64 * 1024,
            deadline: None,
        };
        self.call(
            call,
            || self.http.get(&url).bearer_auth(token),
            |body| {
                serde_json::from_slice::<MediaInfo>(body)
                    .map_err(|e| GraphError::BadResponse(format!("media info: {e}")))
            },
        )
        .await
    }

    /// Download media from a URL given by [`Self::media_info`]. Refuses, without connecting,
    /// any URL that is not https on one of [`GraphConfig::media_hosts`]: the token goes nowhere
    /// else. Bodies over `max_bytes` are abandoned.
    pub async fn download_media(
        &self,
        url: &str,
        token: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, GraphError> {
        let (parsed, call) = self.media_download_call(url, token, max_bytes)?;
        let timeout = self.cfg.download_timeout;
        self.call(
            call,
            || {
                self.http
                    .get(parsed.clone())
                    .bearer_auth(token)
                    .timeout(timeout)
            },
            |body| Ok(body.to_vec()),
        )
        .await
    }

    /// The checks of a media download (https on Meta's hosts, a usable token), before any
    /// connection, and the call's facts.
    fn media_download_call(
        &self,
        url: &str,
        token: &str,
        max_bytes: usize,
    ) -> Result<(Url, Call<'static>), GraphError> {
        let parsed = Url::parse(url)
            .map_err(|e| GraphError::Refused(format!("media URL is invalid: {e}")))?;
        self.hosts.check(&parsed).map_err(GraphError::Refused)?;
        token_ok(token)?;
        let call = Call {
            kind: CallKind::DownloadMedia,
            subject: None,
            recipient: None,
            limit: max_bytes,
            deadline: None,
        };
        Ok((parsed, call))
    }

    /// Opens a media download for reading chunk by chunk (bounded memory, for copying large
    /// media to S3 as it arrives). The same host policy as [`Self::download_media`]: https on
    /// Meta's hosts only, checked before connecting. One attempt (the caller's queue retries);
    /// [`GraphConfig::download_timeout`] bounds the whole transfer.
    pub async fn open_download(
        &self,
        url: &str,
        token: &str,
        max_bytes: usize,
    ) -> Result<MediaDownload, GraphError> {
        let (parsed, call) = self.media_download_call(url, token, max_bytes)?;
        let started = Instant::now();
        let (status, result) = self.start_download(call, parsed, token, max_bytes).await;
        self.observe(call, 1, status, started.elapsed(), &result, false);
        result.map(|resp| MediaDownload {
            resp,
            limit: max_bytes,
            read: 0,
            hasher: Sha256::new(),
        })
    }

    /// The request and its headers (an error answer read and classified); the HTTP status if
    /// one came.
    async fn start_download(
        &self,
        call: Call<'_>,
        url: Url,
        token: &str,
        max_bytes: usize,
    ) -> (Option<u16>, Result<reqwest::Response, GraphError>) {
        let resp = match self
            .http
            .get(url)
            .bearer_auth(token)
            .timeout(self.cfg.download_timeout)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return (None, Err(transport_error(e))),
        };
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            // An error body is small: read it (bounded) and classify it as any call's.
            let err = match self.read_bounded(call, resp).await {
                Ok((status, body)) => self
                    .interpret(call, status, &body, &|_| Ok(()))
                    .err()
                    .unwrap_or_else(|| GraphError::BadResponse(format!("HTTP {status}"))),
                Err(e) => e,
            };
            return (Some(status), Err(err));
        }
        if let Some(len) = resp.content_length()
            && len > max_bytes as u64
        {
            return (
                Some(status),
                Err(GraphError::BadResponse(format!(
                    "media of {len} bytes is over the {max_bytes}-byte limit"
                ))),
            );
        }
        (Some(status), Ok(resp))
    }

    /// [`Self::media_info`] then [`Self::download_media`], checking size and sha256.
    pub async fn fetch_media(
        &self,
        media_id: &str,
        token: &str,
        max_bytes: usize,
    ) -> Result<(MediaInfo, Vec<u8>), GraphError> {
        let info = self.media_info(media_id, token).await?;
        if info.file_size > max_bytes as u64 {
            return Err(GraphError::BadResponse(format!(
                "media is {} bytes, over the {max_bytes}-byte limit",
                info.file_size
            )));
        }
        let data = self.download_media(&info.url, token, max_bytes).await?;
        if !info.sha256.is_empty() {
            let got = hex::encode(Sha256::digest(&data));
            if !got.eq_ignore_ascii_case(info.sha256.trim()) {
                return Err(GraphError::BadResponse(
                    "downloaded media does not match its sha256".into(),
                ));
            }
        }
        Ok((info, data))
    }

    /// Every message template of a WABA, following `paging.cursors.after` while Meta gives a
    /// `paging.next`. The `next` URL itself is never fetched: requests (and the token) only go
    /// to the configured base URL.
    pub async fn templates(
        &self,
        waba_id: &str,
        token: &str,
    ) -> Result<Vec<MessageTemplate>, GraphError> {
        let waba = path_segment("waba_id", waba_id)?;
        token_ok(token)?;
        let url = format!("{}/{waba}/message_templates", self.api_base);
        let limit = TEMPLATE_PAGE_SIZE.to_string();
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > MAX_TEMPLATE_PAGES {
                return Err(GraphError::BadResponse(format!(
                    "template paging goes past {MAX_TEMPLATE_PAGES} pages"
                )));
            }
            let call = Call {
                kind: CallKind::Templates,
                subject: Some(waba),
                recipient: None,
                limit: self.cfg.max_response_bytes,
                deadline: None,
            };
            let page: TemplatePage = self
                .call(
                    call,
                    || {
                        let mut q: Vec<(&str, &str)> =
                            vec![("fields", TEMPLATE_FIELDS), ("limit", &limit)];
                        if let Some(a) = &after {
                            q.push(("after", a));
                        }
                        self.http.get(&url).bearer_auth(token).query(&q)
                    },
                    |body| {
                        serde_json::from_slice::<TemplatePage>(body)
                            .map_err(|e| GraphError::BadResponse(format!("template page: {e}")))
                    },
                )
                .await?;
            out.extend(page.data);
            let Some(paging) = page.paging else { break };
            if paging.next.is_none() {
                break;
            }
            match paging.cursors.and_then(|c| c.after) {
                Some(a) if after.as_deref() != Some(a.as_str()) => after = Some(a),
                Some(_) => {
                    return Err(GraphError::BadResponse(
                        "template paging repeated its cursor".into(),
                    ));
                }
                None => {
                    return Err(GraphError::BadResponse(
                        "template paging has next but no cursors.after".into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Meta's Embedded Signup: exchanges the `code` the signup flow handed the browser for a
    /// business token (`GET /oauth/access_token?client_id&client_secret&code`). The app secret
    /// travels in the query as Meta requires; errors never quote the URL. A code is single-use:
    /// only an attempt that certainly never reached Meta is retried.
    pub async fn exchange_code(
        &self,
        app_id: &str,
        app_secret: &str,
        code: &str,
    ) -> Result<String, GraphError> {
        if app_id.trim().is_empty() || app_secret.is_empty() {
            return Err(GraphError::Config(
                "the app id and app secret are needed to exchange a signup code".into(),
            ));
        }
        if code.trim().is_empty() || code.len() > 4096 || code.chars().any(char::is_control) {
            return Err(ValidationError::new("code", "must be the signup flow's code").into());
        }
        let url = format!("{}/oauth/access_token", self.api_base);
        let call = Call {
            kind: CallKind::Account,
            subject: None,
            recipient: None,
            limit: 64 * 1024,
            deadline: None,
        };
        self.call(
            call,
            || {
                self.http.get(&url).query(&[
                    ("client_id", app_id),
                    ("client_secret", app_secret),
                    ("code", code),
                ])
            },
            |body| {
                #[derive(Deserialize)]
                struct Token {
                    access_token: String,
                }
                match serde_json::from_slice::<Token>(body) {
                    Ok(t) if !t.access_token.is_empty() => Ok(t.access_token),
                    _ => Err(GraphError::BadResponse(
                        "the code exchange answered no access_token".into(),
                    )),
                }
            },
        )
        .await
    }

    /// Subscribes the app to a WABA's webhooks (`POST /{waba_id}/subscribed_apps`).
    pub async fn subscribe_app(&self, waba_id: &str, token: &str) -> Result<(), GraphError> {
        let waba = path_segment("waba_id", waba_id)?;
        token_ok(token)?;
        let url = format!("{}/{waba}/subscribed_apps", self.api_base);
        let call = Call {
            kind: CallKind::Account,
            subject: Some(waba),
            recipient: None,
            limit: 64 * 1024,
            deadline: None,
        };
        self.call(
            call,
            || self.http.post(&url).bearer_auth(token),
            |body| match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(v) if v.get("success") == Some(&serde_json::Value::Bool(true)) => Ok(()),
                _ => Err(GraphError::BadResponse(
                    "subscribed_apps did not answer success".into(),
                )),
            },
        )
        .await
    }

    /// `GET /{version}/{segments…}?{query}` answered with a JSON object (account reads such as
    /// `/me`, a WABA or its `phone_numbers`). Each segment must be a Graph id or edge name; the
    /// request goes only to the configured base URL.
    pub async fn get_object(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        token: &str,
    ) -> Result<serde_json::Value, GraphError> {
        if segments.is_empty() {
            return Err(ValidationError::new("path", "must name a Graph object").into());
        }
        for s in segments {
            path_segment("path", s)?;
        }
        token_ok(token)?;
        let url = format!("{}/{}", self.api_base, segments.join("/"));
        let call = Call {
            kind: CallKind::Account,
            subject: segments.first().copied().filter(|s| *s != "me"),
            recipient: None,
            limit: self.cfg.max_response_bytes,
            deadline: None,
        };
        self.call(
            call,
            || self.http.get(&url).bearer_auth(token).query(query),
            |body| match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(v @ serde_json::Value::Object(_)) => Ok(v),
                Ok(_) => Err(GraphError::BadResponse(
                    "answer is not a JSON object".into(),
                )),
                Err(e) => Err(GraphError::BadResponse(format!("answer is not JSON ({e})"))),
            },
        )
        .await
    }

    // ----- plumbing ----------------------------------------------------------------------

    fn json_post(&self, url: &str, token: &str, body: Bytes) -> reqwest::RequestBuilder {
        self.http
            .post(url)
            .bearer_auth(token)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = backoff_ceiling(self.cfg.retry_base, self.cfg.retry_cap, attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// Run one call with the retry policy. `build` makes a fresh request per attempt; `parse`
    /// reads a 2xx body.
    async fn call<T>(
        &self,
        call: Call<'_>,
        build: impl Fn() -> reqwest::RequestBuilder,
        parse: impl Fn(&[u8]) -> Result<T, GraphError>,
    ) -> Result<T, GraphError> {
        let max = self.cfg.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let mut req = build();
            if let Some(d) = call.deadline {
                let left = d.saturating_duration_since(started);
                if left.is_zero() {
                    return Err(GraphError::NotSent(
                        "the call's time budget ran out before it was sent".into(),
                    ));
                }
                req = req.timeout(left.min(self.cfg.timeout));
            }
            let (status, result) = match self.once(call, req).await {
                Ok((status, body)) => (Some(status), self.interpret(call, status, &body, &parse)),
                Err(e) => (None, Err(e)),
            };
            let backoff = self.backoff(attempt);
            // Another attempt only if it can start, and get a reasonable share of time, before
            // the deadline.
            let in_time = call.deadline.is_none_or(|d| {
                Instant::now() + backoff + self.cfg.connect_timeout.min(self.cfg.timeout) < d
            });
            let will_retry =
                matches!(&result, Err(e) if e.is_retryable()) && attempt < max && in_time;
            self.observe(
                call,
                attempt,
                status,
                started.elapsed(),
                &result,
                will_retry,
            );
            match result {
                Err(_) if will_retry => {
                    tokio::time::sleep(backoff).await;
                    if let (CallKind::Send, Some(gate), Some(pnid)) =
                        (call.kind, &self.retry_gate, call.subject)
                        && let Err(why) = gate.before_retry(pnid).await
                    {
                        tracing::info!(
                            phone_number_id = pnid,
                            attempt,
                            why,
                            "send not retried: no permit"
                        );
                        return result;
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once(
        &self,
        call: Call<'_>,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), GraphError> {
        let resp = req.send().await.map_err(transport_error)?;
        self.read_bounded(call, resp).await
    }

    /// Reads a response body under the call's size cap.
    async fn read_bounded(
        &self,
        call: Call<'_>,
        mut resp: reqwest::Response,
    ) -> Result<(u16, Vec<u8>), GraphError> {
        let status = resp.status().as_u16();
        let success = resp.status().is_success();
        // Error bodies are small; success bodies are bounded by the call's limit.
        let limit = if success {
            call.limit
        } else {
            call.limit.clamp(64 * 1024, 256 * 1024)
        };
        if let Some(len) = resp.content_length()
            && len > limit as u64
        {
            return Err(GraphError::BadResponse(format!(
                "response of {len} bytes is over the {limit}-byte limit"
            )));
        }
        let mut body = Vec::with_capacity(resp.content_length().map_or(1024, |l| l as usize));
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(GraphError::BadResponse(format!(
                            "response is over the {limit}-byte limit"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    // The status came but the body did not: the outcome of a send is unknown.
                    return Err(GraphError::Unknown(format!(
                        "HTTP {status} answer cut short: {}",
                        describe(e)
                    )));
                }
            }
        }
        Ok((status, body))
    }

    fn interpret<T>(
        &self,
        call: Call<'_>,
        status: u16,
        body: &[u8],
        parse: &impl Fn(&[u8]) -> Result<T, GraphError>,
    ) -> Result<T, GraphError> {
        if (200..300).contains(&status) {
            return parse(body);
        }
        if let Ok(env) = serde_json::from_slice::<ErrorEnvelope>(body) {
            let e = env.error;
            return Err(GraphError::Meta {
                http_status: status,
                code: e.code,
                subcode: e.error_subcode,
                message: e.message,
                details: e.error_data.and_then(|d| d.details),
                class: classify(e.code),
                fbtrace_id: e.fbtrace_id,
            });
        }
        let snippet: String = String::from_utf8_lossy(&body[..body.len().min(200)])
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        if call.kind == CallKind::Send && status >= 500 {
            // A gateway error without Meta's error body: Meta may have accepted the message.
            return Err(GraphError::Unknown(format!(
                "HTTP {status} without a Graph error: {snippet}"
            )));
        }
        Err(GraphError::BadResponse(format!(
            "HTTP {status} without a Graph error: {snippet}"
        )))
    }

    fn observe<T>(
        &self,
        call: Call<'_>,
        attempt: u32,
        http_status: Option<u16>,
        duration: Duration,
        result: &Result<T, GraphError>,
        will_retry: bool,
    ) {
        let error = result.as_ref().err();
        tracing::debug!(
            kind = call.kind.as_str(),
            attempt,
            http_status,
            duration_ms = duration.as_millis() as u64,
            meta_code = error.and_then(GraphError::meta_code),
            error = error.map(tracing::field::display),
            will_retry,
            "graph api call"
        );
        let outcome = match error {
            None => "ok",
            Some(GraphError::Meta { class, .. }) => class.as_str(),
            Some(GraphError::Validation(_)) => "invalid_request",
            Some(GraphError::NotSent(_)) => "not_sent",
            Some(GraphError::Unknown(_)) => "unknown",
            Some(GraphError::BadResponse(_)) => "bad_response",
            Some(GraphError::Refused(_)) => "refused",
            Some(GraphError::Config(_)) => "config",
        };
        let mut metric = crate::metrics::count("GraphCalls", 1)
            .millis("GraphLatency", duration)
            .dim("Kind", call.kind.as_str())
            .dim("Outcome", outcome);
        if let (CallKind::Send, Some(pnid)) = (call.kind, call.subject) {
            metric = metric.dim("PhoneNumberId", pnid);
        }
        metric.emit();
        if let Some(code) = error.and_then(GraphError::meta_code) {
            crate::metrics::count("MetaErrors", 1)
                .dim_stack_wide("MetaErrorCode", code.to_string())
                .emit();
        }
        if let Some(obs) = &self.observer {
            obs.on_attempt(&CallRecord {
                kind: call.kind,
                attempt,
                subject: call.subject,
                recipient: call.recipient,
                http_status,
                duration,
                error,
                will_retry,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_is_by_code() {
        for c in [130429, 131056, 4, 80007] {
            assert_eq!(classify(c), ErrorClass::RateLimited, "{c}");
        }
        for c in [131000, 131016, 1, 2] {
            assert_eq!(classify(c), ErrorClass::Temporary, "{c}");
        }
        assert_eq!(classify(131026), ErrorClass::RecipientInvalid);
        assert_eq!(classify(131047), ErrorClass::NeedsTemplate);
        assert_eq!(classify(131049), ErrorClass::MarketingCapped);
        assert_eq!(classify(131050), ErrorClass::OptedOut);
        for c in [131048, 132015, 132016] {
            assert_eq!(classify(c), ErrorClass::TemplatePaused, "{c}");
        }
        for c in [132000, 132001, 132012] {
            assert_eq!(classify(c), ErrorClass::TemplateParams, "{c}");
        }
        for c in [133010, 131031, 368, 131042] {
            assert_eq!(classify(c), ErrorClass::NumberOrAccount, "{c}");
        }
        for c in [190, 0, 3, 10, 200, 250, 299] {
            assert_eq!(classify(c), ErrorClass::Auth, "{c}");
        }
        for c in [100, 131009, 300, 199, -1] {
            assert_eq!(classify(c), ErrorClass::Unknown, "{c}");
        }
        assert_eq!(
            ErrorClass::MarketingCapped.retry_after(),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn retryable_errors() {
        let meta = |code| GraphError::Meta {
            http_status: 400,
            code,
            subcode: None,
            message: String::new(),
            details: None,
            class: classify(code),
            fbtrace_id: None,
        };
        assert!(meta(130429).is_retryable());
        assert!(meta(131000).is_retryable());
        assert!(!meta(131026).is_retryable());
        assert!(!meta(190).is_retryable());
        assert!(GraphError::NotSent("x".into()).is_retryable());
        assert!(!GraphError::Unknown("x".into()).is_retryable());
        assert!(!GraphError::Refused("x".into()).is_retryable());
        assert_eq!(meta(131047).class(), Some(ErrorClass::NeedsTemplate));
        assert_eq!(GraphError::Unknown("x".into()).class(), None);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        assert_eq!(backoff_ceiling(b, cap, 1), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(b, cap, 2), Duration::from_millis(200));
        assert_eq!(backoff_ceiling(b, cap, 4), Duration::from_millis(800));
        assert_eq!(backoff_ceiling(b, cap, 5), cap);
        assert_eq!(backoff_ceiling(b, cap, 200), cap);
        let client = GraphClient::new(GraphConfig {
            retry_base: b,
            retry_cap: cap,
            ..GraphConfig::default()
        })
        .unwrap();
        for attempt in 1..10 {
            assert!(client.backoff(attempt) <= backoff_ceiling(b, cap, attempt));
        }
    }

    #[test]
    fn media_host_policy() {
        let p = HostPolicy {
            suffixes: DEFAULT_MEDIA_HOSTS.iter().map(|s| s.to_string()).collect(),
            test_host: None,
        };
        let ok = |u: &str| p.check(&Url::parse(u).unwrap()).is_ok();
        assert!(ok(
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
        ));
        assert!(ok("https://scontent.xx.fbcdn.net/v/t61"));
        assert!(ok("https://mmg.whatsapp.net/x"));
        assert!(ok("https://facebook.com/x"));
        assert!(ok("https://LOOKASIDE.FBSBX.COM./x"));
        assert!(!ok("http://lookaside.fbsbx.com/x"));
        assert!(!ok("https://evilfbsbx.com/x"));
        assert!(!ok("https://fbsbx.com.evil.com/x"));
        assert!(!ok("https://user:pw@lookaside.fbsbx.com/x"));
        assert!(!ok("https://127.0.0.1/x"));
        assert!(!ok("ftp://lookaside.fbsbx.com/x"));
        let t = HostPolicy {
            suffixes: vec![],
            test_host: Some("127.0.0.1:8080".into()),
        };
        assert!(
            t.check(&Url::parse("http://127.0.0.1:8080/m").unwrap())
                .is_ok()
        );
        assert!(
            t.check(&Url::parse("http://127.0.0.1:8081/m").unwrap())
                .is_err()
        );
        assert!(
            t.check(&Url::parse("http://localhost:8080/m").unwrap())
                .is_err()
        );
    }

    #[test]
    fn ids_and_tokens_are_checked() {
        assert!(path_segment("x", "106540352242922").is_ok());
        assert!(path_segment("x", "../me").is_err());
        assert!(path_segment("x", "").is_err());
        assert!(path_segment("x", "1/2").is_err());
        assert!(token_ok("EAAJB").is_ok());
        assert!(token_ok("").is_err());
        assert!(token_ok("a\nb").is_err());
    }

    #[test]
    fn multipart_layout() {
        let b = multipart_body("BND", "image/png", "a.png", b"\x89PNG");
        let s = String::from_utf8_lossy(&b);
        assert!(s.starts_with("--BND\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n"));
        assert!(s.contains("name=\"type\"\r\n\r\nimage/png\r\n"));
        assert!(s.contains("name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"));
        assert!(s.ends_with("\r\n--BND--\r\n"));
        assert_eq!(safe_filename("a\"b\r\n/c.pdf"), "a_b___c.pdf");
        assert_eq!(safe_filename("  "), "file");
        assert!(is_mime(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        ));
        assert!(!is_mime("image/png\r\nX: y"));
        assert!(!is_mime("png"));
    }

    #[test]
    fn error_body_parsing_is_lenient() {
        let body = br#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":"130429","error_subcode":2494055,"fbtrace_id":"Az","error_data":{"messaging_product":"whatsapp","details":"too many"}}}"#;
        let client = GraphClient::new(GraphConfig::default()).unwrap();
        let call = Call {
            kind: CallKind::Send,
            subject: None,
            recipient: None,
            limit: 1024,
            deadline: None,
        };
        let e = client
            .interpret(call, 400, body, &|_| Ok::<(), GraphError>(()))
            .unwrap_err();
        assert_eq!(
            e,
            GraphError::Meta {
                http_status: 400,
                code: 130429,
                subcode: Some(2494055),
                message: "(#130429) Rate limit hit".into(),
                details: Some("too many".into()),
                class: ErrorClass::RateLimited,
                fbtrace_id: Some("Az".into()),
            }
        );
        // A gateway page on a send: maybe accepted, so unknown.
        let e = client
            .interpret(call, 502, b"<html>bad gateway</html>", &|_| {
                Ok::<(), GraphError>(())
            })
            .unwrap_err();
        assert!(matches!(e, GraphError::Unknown(_)), "{e}");
        let e = client
            .interpret(
                Call {
                    kind: CallKind::MediaInfo,
                    ..call
                },
                502,
                b"<html>",
                &|_| Ok::<(), GraphError>(()),
            )
            .unwrap_err();
        assert!(matches!(e, GraphError::BadResponse(_)), "{e}");
    }

    #[test]
    fn media_info_reads_string_or_number_sizes() {
        let a: MediaInfo = serde_json::from_str(
            r#"{"messaging_product":"whatsapp","url":"https://lookaside.fbsbx.com/x","mime_type":"image/jpeg","sha256":"ab","file_size":"303833","id":"1037543291543636"}"#,
        )
        .unwrap();
        assert_eq!(a.file_size, 303_833);
        let b: MediaInfo = serde_json::from_str(
            r#"{"url":"https://lookaside.fbsbx.com/x","mime_type":"image/jpeg","sha256":"ab","file_size":12,"id":1}"#,
        )
        .unwrap();
        assert_eq!((b.file_size, b.id.as_str()), (12, "1"));
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = GraphClient::new(GraphConfig::default()).unwrap();
        let d = format!("{c:?}");
        assert!(d.contains("graph.facebook.com/v25.0"), "{d}");
    }
}
