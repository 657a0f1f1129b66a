//! Activity log of the Graph API calls (issue 3 part 8): every attempt of every call — when,
//! what kind, business number, recipient, HTTP status, Meta's error code and message, duration —
//! kept for [`DEFAULT_TTL`] (DynamoDB TTL attribute `ttl`).
//!
//! The [`GraphClient`](crate::meta::graph::GraphClient)'s observer is synchronous, so
//! [`ActivityLog`] only pushes each record into a bounded channel (`try_send`: a full channel
//! drops the record and counts it, it never blocks or fails a send). A background task drains
//! the channel and batch-writes the records through an [`ActivitySink`] (the DynamoDB store:
//! `BatchWriteItem`, `UnprocessedItems` retried): when 25 are pending, on a timer, and on
//! [`ActivityLog::flush`], which a Lambda awaits before returning its answer (a frozen Lambda
//! runs no background task). Write errors are logged, never returned to the caller of the API.
//!
//! **Secrets**: a [`CallRecord`] holds none by design; every text is still passed through
//! [`redact`] (token-like patterns) and, before each write, scrubbed of the current values of
//! the known secrets ([`KnownSecrets`], e.g. the cached Meta credentials).
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::credentials::NotifySecrets;
use crate::meta::graph::{CallObserver, CallRecord, GraphError};
use crate::secrets::{CachedSecret, MetaSecrets, SecretSource};

/// How long an entry is kept (DynamoDB TTL).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest stored error message.
pub const MAX_MESSAGE_CHARS: usize = 1000;
/// Kind of the entry written when the log is cleared.
pub const KIND_LOG_CLEARED: &str = "log_cleared";

const REDACTED: &str = "[redacted]";

/// `ok` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Self::Ok),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// One activity-log entry (one attempt of one Graph API call, or a log event such as a
/// clear). Flat, so each field is one DynamoDB attribute that filters can use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityEntry {
    /// Start of the attempt, unix ms.
    pub at: i64,
    /// [`CallKind`](crate::meta::graph::CallKind) name (`send`, `mark_read`, …) or
    /// [`KIND_LOG_CLEARED`].
    pub kind: String,
    #[serde(default)]
    pub attempt: u32,
    /// Business phone number id, WABA id or media id the call was about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    pub outcome: Outcome,
    /// `meta`, `not_sent`, `unknown`, `bad_response`, `refused`, `validation`, `config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Meta's `error.code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    /// [`ErrorClass`](crate::meta::graph::ErrorClass) name of a Meta error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    /// Redacted, at most [`MAX_MESSAGE_CHARS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default)]
    pub will_retry: bool,
    /// Function that made the call (`staff-api`, …).
    #[serde(default)]
    pub source: String,
    /// Staff member behind a log event (e.g. who cleared the log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ActivityEntry {
    /// The entry of one observed attempt; `now_ms` is when the attempt ended.
    pub fn from_call(r: &CallRecord<'_>, now_ms: i64, source: &str) -> Self {
        let duration_ms = u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX);
        let mut e = Self {
            at: now_ms.saturating_sub(i64::try_from(duration_ms).unwrap_or(i64::MAX)),
            kind: r.kind.as_str().to_owned(),
            attempt: r.attempt,
            number: r.subject.map(str::to_owned),
            recipient: r.recipient.map(str::to_owned),
            http_status: r.http_status,
            outcome: if r.error.is_some() {
                Outcome::Error
            } else {
                Outcome::Ok
            },
            error_type: None,
            error_code: None,
            error_subcode: None,
            error_class: None,
            error_message: None,
            fbtrace_id: None,
            duration_ms,
            will_retry: r.will_retry,
            source: source.to_owned(),
            actor: None,
            note: None,
        };
        if let Some(err) = r.error {
            let (kind, message) = match err {
                GraphError::Meta {
                    code,
                    subcode,
                    message,
                    details,
                    class,
                    fbtrace_id,
                    ..
                } => {
                    e.error_code = Some(*code);
                    e.error_subcode = *subcode;
                    e.error_class = Some(class.as_str().to_owned());
                    e.fbtrace_id = fbtrace_id.clone();
                    let text = match details.as_deref().filter(|d| !d.is_empty()) {
                        Some(d) if d != message => format!("{message} ({d})"),
                        _ => message.clone(),
                    };
                    ("meta", text)
                }
                GraphError::Validation(v) => ("validation", v.to_string()),
                GraphError::NotSent(m) => ("not_sent", m.clone()),
                GraphError::Unknown(m) => ("unknown", m.clone()),
                GraphError::BadResponse(m) => ("bad_response", m.clone()),
                GraphError::Refused(m) => ("refused", m.clone()),
                GraphError::Config(m) => ("config", m.clone()),
            };
            e.error_type = Some(kind.to_owned());
            e.error_message = Some(redact(&message, &[]));
        }
        e
    }

    /// Scrubs every text field of the given secret values and of token-like patterns.
    pub fn scrub(&mut self, known: &[&str]) {
        for field in [
            &mut self.number,
            &mut self.recipient,
            &mut self.error_message,
            &mut self.fbtrace_id,
            &mut self.note,
            &mut self.actor,
        ] {
            if let Some(v) = field.as_mut() {
                *v = redact(v, known);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------------

/// Query / form keys whose value is a credential.
const SECRET_KEYS: [&str; 7] = [
    "access_token=",
    "input_token=",
    "appsecret_proof=",
    "client_secret=",
    "fb_exchange_token=",
    "app_secret=",
    "verify_token=",
];
/// Authorization schemes whose next word is a credential.
const SCHEMES: [&str; 2] = ["bearer ", "oauth "];
/// Prose before a quoted token (Meta: "Malformed access token EAAG…"): the next word is
/// redacted when it is long enough to be a credential.
const PROSE: [&str; 1] = ["access token "];

fn is_value_char(c: char) -> bool {
    !(c.is_whitespace()
        || matches!(
            c,
            '&' | '"' | '\'' | '<' | '>' | ',' | ';' | ')' | ']' | '}'
        ))
}

/// Replaces the value (at least `min_len` bytes) after each (ASCII case-insensitive) `marker`
/// with `[redacted]`.
fn redact_after(text: &str, marker: &str, min_len: usize) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(pos) = lower[i..].find(marker) {
        let start = i + pos + marker.len();
        out.push_str(&text[i..start]);
        let rest = &text[start..];
        let len: usize = rest
            .chars()
            .take_while(|c| is_value_char(*c))
            .map(char::len_utf8)
            .sum();
        if len >= min_len.max(1) {
            out.push_str(REDACTED);
            i = start + len;
        } else {
            i = start;
        }
    }
    out.push_str(&text[i..]);
    out
}

/// Meta user / system-user access tokens start with `EAA` and are long alphanumeric runs.
fn redact_meta_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() >= 32 && word.starts_with("EAA") {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Text safe to store: every occurrence of a `known` secret value (6 characters or more),
/// the values of credential query keys (`access_token=…`), `Bearer …` / `OAuth …` credentials
/// and Meta token-like words (`EAA…`) replaced by `[redacted]`; control characters removed and
/// the result cut at [`MAX_MESSAGE_CHARS`].
pub fn redact(text: &str, known: &[&str]) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for k in known {
        if k.chars().count() >= 6 && s.contains(k) {
            s = s.replace(k, REDACTED);
        }
    }
    let markers = SECRET_KEYS
        .iter()
        .map(|m| (*m, 1))
        .chain(SCHEMES.iter().map(|m| (*m, 12)))
        .chain(PROSE.iter().map(|m| (*m, 16)));
    for (m, min_len) in markers {
        if s.to_ascii_lowercase().contains(m) {
            s = redact_after(&s, m, min_len);
        }
    }
    s = redact_meta_tokens(&s);
    if s.chars().count() > MAX_MESSAGE_CHARS {
        s = s.chars().take(MAX_MESSAGE_CHARS).collect();
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Known secrets
// ---------------------------------------------------------------------------------------------

/// Current values of secrets that must never be stored in the log.
#[async_trait::async_trait]
pub trait KnownSecrets: Send + Sync {
    /// The values (empty when unavailable: pattern redaction still applies).
    async fn secret_values(&self) -> Vec<String>;
}

#[async_trait::async_trait]
impl KnownSecrets for CachedSecret<MetaSecrets> {
    async fn secret_values(&self) -> Vec<String> {
        match self.get().await {
            Ok(s) => [&s.access_token, &s.app_secret, &s.verify_token]
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(|v| v.expose().to_owned())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "activity log: Meta secret unavailable for scrubbing");
                Vec::new()
            }
        }
    }
}

#[async_trait::async_trait]
impl KnownSecrets for CachedSecret<NotifySecrets> {
    async fn secret_values(&self) -> Vec<String> {
        match self.get().await {
            Ok(s) => [&s.access_token, &s.app_secret]
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(|v| v.expose().to_owned())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "activity log: notification secret unavailable for scrubbing");
                Vec::new()
            }
        }
    }
}

/// What a function that calls the Graph API starts with: [`start_meta_calls`].
pub struct MetaCalls {
    /// The inbox's Meta credentials, cached.
    pub meta_secrets: Arc<CachedSecret<MetaSecrets>>,
    /// The notification module's credentials when `NotifySecret` is configured, cached (the
    /// same cache the activity log redacts from: one read serves both).
    pub notify_secrets: Option<Arc<CachedSecret<NotifySecrets>>>,
    /// The activity log of the function's Graph calls; the caller flushes it before each
    /// answer (a frozen Lambda runs no background task).
    pub activity: ActivityLog,
}

/// Meta's credentials (`meta_secret_id`, and `notify_secret_id` when configured, each cached
/// for `ttl`) and the activity log of the calls under `source`, which redacts them.
pub fn start_meta_calls(
    sink: Arc<dyn ActivitySink>,
    source: &str,
    secrets: Arc<dyn SecretSource>,
    meta_secret_id: &str,
    notify_secret_id: Option<&str>,
    ttl: Duration,
) -> MetaCalls {
    let meta_secrets = Arc::new(CachedSecret::new(secrets.clone(), meta_secret_id, ttl));
    let notify_secrets =
        notify_secret_id.map(|id| Arc::new(CachedSecret::new(secrets.clone(), id, ttl)));
    let mut known: Vec<Arc<dyn KnownSecrets>> = vec![meta_secrets.clone()];
    if let Some(n) = &notify_secrets {
        known.push(n.clone());
    }
    MetaCalls {
        meta_secrets,
        notify_secrets,
        activity: ActivityLog::start(sink, ActivityConfig::for_source(source), known),
    }
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// An entry with its unique id within its millisecond (`{instance}{counter}`).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    pub seq: String,
    pub entry: ActivityEntry,
}

/// Where entries are written (the DynamoDB store; a fake in unit tests).
#[async_trait::async_trait]
pub trait ActivitySink: Send + Sync {
    /// Writes all of them (retrying partial failures) or reports why not.
    async fn write_entries(&self, entries: &[PendingEntry], ttl_secs: i64) -> Result<(), String>;
}

#[derive(Debug, Clone)]
pub struct ActivityConfig {
    /// Function name stored with each entry.
    pub source: String,
    pub ttl: Duration,
    /// Bound of the channel; records beyond it are dropped (and counted).
    pub capacity: usize,
    /// Pending records are written at least this often.
    pub flush_interval: Duration,
    /// Records written per sink call.
    pub batch_size: usize,
}

impl ActivityConfig {
    pub fn for_source(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            ttl: DEFAULT_TTL,
            capacity: 2048,
            flush_interval: Duration::from_secs(1),
            batch_size: 25,
        }
    }
}

/// Totals of a writer since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ActivityStats {
    pub written: u64,
    /// Records the sink could not write (logged).
    pub failed: u64,
    /// Records dropped because the channel was full or closed.
    pub dropped: u64,
}

enum Msg {
    Entry(Box<PendingEntry>),
    Flush(oneshot::Sender<()>),
}

struct Shared {
    tx: mpsc::Sender<Msg>,
    source: String,
    instance: String,
    counter: AtomicU64,
    written: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    clock: fn() -> i64,
}

/// Handle of the activity-log writer; cheap to clone. Also the Graph client's observer.
#[derive(Clone)]
pub struct ActivityLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ActivityLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityLog")
            .field("source", &self.shared.source)
            .field("stats", &self.stats())
            .finish()
    }
}

fn system_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl ActivityLog {
    /// Starts the background writer (needs a Tokio runtime). It stops when every handle is
    /// dropped, after writing what is pending.
    pub fn start(
        sink: Arc<dyn ActivitySink>,
        cfg: ActivityConfig,
        known: Vec<Arc<dyn KnownSecrets>>,
    ) -> Self {
        Self::start_with_clock(sink, cfg, known, system_now_ms)
    }

    /// [`Self::start`] with an injected clock (tests).
    pub fn start_with_clock(
        sink: Arc<dyn ActivitySink>,
        cfg: ActivityConfig,
        known: Vec<Arc<dyn KnownSecrets>>,
        clock: fn() -> i64,
    ) -> Self {
        let (tx, rx) = mpsc::channel(cfg.capacity.max(1));
        let shared = Arc::new(Shared {
            tx,
            source: cfg.source.clone(),
            instance: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            counter: AtomicU64::new(0),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            clock,
        });
        let worker = Worker {
            sink,
            known,
            ttl_secs: i64::try_from(cfg.ttl.as_secs()).unwrap_or(i64::MAX),
            batch_size: cfg.batch_size.clamp(1, 25),
            shared: Arc::downgrade(&shared),
        };
        tokio::spawn(worker.run(rx, cfg.flush_interval));
        Self { shared }
    }

    /// Queues an entry without waiting; dropped (and counted) when the channel is full.
    pub fn record(&self, entry: ActivityEntry) {
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        let seq = format!("{}{n:08x}", self.shared.instance);
        let msg = Msg::Entry(Box::new(PendingEntry { seq, entry }));
        if self.shared.tx.try_send(msg).is_err() {
            let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One line per power of two: a flood does not flood the logs.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "activity log channel full: entries dropped");
            }
        }
    }

    /// Waits until everything queued before this call has been written (or failed, logged).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.shared.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    pub fn stats(&self) -> ActivityStats {
        ActivityStats {
            written: self.shared.written.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
        }
    }

    pub fn source(&self) -> &str {
        &self.shared.source
    }

    /// Now, by the writer's clock.
    pub fn now_ms(&self) -> i64 {
        (self.shared.clock)()
    }
}

impl CallObserver for ActivityLog {
    fn on_attempt(&self, record: &CallRecord<'_>) {
        let entry = ActivityEntry::from_call(record, self.now_ms(), &self.shared.source);
        self.record(entry);
    }
}

struct Worker {
    sink: Arc<dyn ActivitySink>,
    known: Vec<Arc<dyn KnownSecrets>>,
    ttl_secs: i64,
    batch_size: usize,
    /// Weak: the channel closes when the last handle goes, which ends the worker.
    shared: std::sync::Weak<Shared>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Msg>, interval: Duration) {
        let mut pending: Vec<PendingEntry> = Vec::new();
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => {
                        self.write(&mut pending).await;
                        break;
                    }
                    Some(Msg::Entry(e)) => {
                        pending.push(*e);
                        if pending.len() >= self.batch_size {
                            self.write(&mut pending).await;
                        }
                    }
                    Some(Msg::Flush(done)) => {
                        self.write(&mut pending).await;
                        let _ = done.send(());
                    }
                },
                _ = tick.tick() => {
                    if !pending.is_empty() {
                        self.write(&mut pending).await;
                    }
                }
            }
        }
    }

    async fn write(&self, pending: &mut Vec<PendingEntry>) {
        if pending.is_empty() {
            return;
        }
        let mut batch = std::mem::take(pending);
        let mut known = Vec::new();
        for k in &self.known {
            known.extend(k.secret_values().await);
        }
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        for p in &mut batch {
            p.entry.scrub(&known);
        }
        let n = batch.len() as u64;
        for chunk in batch.chunks(self.batch_size) {
            let result = self.sink.write_entries(chunk, self.ttl_secs).await;
            let Some(shared) = self.shared.upgrade() else {
                continue;
            };
            match result {
                Ok(()) => {
                    shared
                        .written
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    shared
                        .failed
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    tracing::error!(error = %e, entries = chunk.len(), "activity log write failed");
                }
            }
        }
        tracing::debug!(entries = n, "activity log written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::graph::{CallKind, ErrorClass};
    use std::sync::Mutex;

    #[test]
    fn redaction_removes_credentials() {
        let token = "EAAGm0PX4ZCpsBAKZC8ZA1234567890abcdefghijkl";
        let text = format!(
            "GET /v25.0/me?access_token={token}&x=1 Authorization: Bearer {token} secret: s3cr3t-value, oauth abc.def.ghi.jkl"
        );
        let r = redact(&text, &["s3cr3t-value"]);
        assert!(!r.contains(token), "{r}");
        assert!(!r.contains("s3cr3t-value"), "{r}");
        assert!(!r.contains("abc.def"), "{r}");
        assert_eq!(redact("Bearer x", &[]), "Bearer x");
        assert!(r.contains("access_token=[redacted]&x=1"), "{r}");
        assert!(r.contains("Bearer [redacted]"), "{r}");
        // A bare Meta token is recognised by its shape.
        assert_eq!(redact(&format!("token {token}."), &[]), "token [redacted].");
        // Ordinary text is kept; short "known" values are not used (they would blank words).
        assert_eq!(
            redact("(#131026) Message undeliverable", &["abc"]),
            "(#131026) Message undeliverable"
        );
        assert_eq!(redact("a\nb\tc", &[]), "a b c");
        // Meta quotes a malformed token in prose; short words after the phrase are kept.
        assert_eq!(
            redact(
                "Malformed access token dev-access-token-not-a-real-one",
                &[]
            ),
            "Malformed access token [redacted]"
        );
        assert_eq!(
            redact(
                "Invalid OAuth access token - Cannot parse access token",
                &[]
            ),
            "Invalid OAuth access token - Cannot parse access token"
        );
        assert_eq!(
            redact(&"x".repeat(5000), &[]).chars().count(),
            MAX_MESSAGE_CHARS
        );
        // UTF-8 safe around markers.
        assert_eq!(
            redact("é access_token=é€ ü", &[]),
            "é access_token=[redacted] ü"
        );
    }

    fn meta_error(code: i64, message: &str) -> GraphError {
        GraphError::Meta {
            http_status: 400,
            code,
            subcode: Some(2494010),
            message: message.into(),
            details: Some("more".into()),
            class: crate::meta::graph::classify(code),
            fbtrace_id: Some("Afb".into()),
        }
    }

    #[test]
    fn entries_from_calls() {
        let err = meta_error(131026, "(#131026) Message undeliverable");
        let r = CallRecord {
            kind: CallKind::Send,
            attempt: 2,
            subject: Some("106540352242922"),
            recipient: Some("15550101010"),
            http_status: Some(400),
            duration: Duration::from_millis(120),
            error: Some(&err),
            will_retry: false,
        };
        let e = ActivityEntry::from_call(&r, 10_000, "staff-api");
        assert_eq!(e.at, 9_880);
        assert_eq!(e.kind, "send");
        assert_eq!(e.attempt, 2);
        assert_eq!(e.outcome, Outcome::Error);
        assert_eq!(e.error_type.as_deref(), Some("meta"));
        assert_eq!(e.error_code, Some(131026));
        assert_eq!(
            e.error_class.as_deref(),
            Some(ErrorClass::RecipientInvalid.as_str())
        );
        assert_eq!(
            e.error_message.as_deref(),
            Some("(#131026) Message undeliverable (more)")
        );
        assert_eq!(e.number.as_deref(), Some("106540352242922"));
        assert_eq!(e.duration_ms, 120);
        let ok = CallRecord {
            error: None,
            http_status: Some(200),
            ..r
        };
        let e = ActivityEntry::from_call(&ok, 10_000, "staff-api");
        assert_eq!(
            (e.outcome, e.error_code, e.error_message),
            (Outcome::Ok, None, None)
        );
        let lost = GraphError::Unknown("timed out".into());
        let e = ActivityEntry::from_call(
            &CallRecord {
                error: Some(&lost),
                http_status: None,
                ..r
            },
            10_000,
            "x",
        );
        assert_eq!(e.error_type.as_deref(), Some("unknown"));
        assert_eq!(e.http_status, None);
    }

    #[derive(Default)]
    struct FakeSink {
        written: Mutex<Vec<PendingEntry>>,
        calls: AtomicU64,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl ActivitySink for FakeSink {
        async fn write_entries(&self, e: &[PendingEntry], ttl: i64) -> Result<(), String> {
            assert_eq!(ttl, 30 * 24 * 3600);
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err("table unavailable".into());
            }
            self.written.lock().unwrap().extend_from_slice(e);
            Ok(())
        }
    }

    struct Known;
    #[async_trait::async_trait]
    impl KnownSecrets for Known {
        async fn secret_values(&self) -> Vec<String> {
            vec!["the-access-token-value".into()]
        }
    }

    fn entry(kind: &str, msg: Option<&str>) -> ActivityEntry {
        ActivityEntry {
            at: 1,
            kind: kind.into(),
            attempt: 1,
            number: None,
            recipient: None,
            http_status: None,
            outcome: Outcome::Ok,
            error_type: None,
            error_code: None,
            error_subcode: None,
            error_class: None,
            error_message: msg.map(str::to_owned),
            fbtrace_id: None,
            duration_ms: 0,
            will_retry: false,
            source: "t".into(),
            actor: None,
            note: None,
        }
    }

    #[tokio::test]
    async fn flush_writes_everything_queued_scrubbed_in_batches() {
        let sink = Arc::new(FakeSink::default());
        let mut cfg = ActivityConfig::for_source("t");
        cfg.flush_interval = Duration::from_secs(3600);
        let log = ActivityLog::start(sink.clone(), cfg, vec![Arc::new(Known)]);
        for i in 0..60 {
            log.record(entry(
                "send",
                Some(&format!("echo the-access-token-value #{i}")),
            ));
        }
        log.flush().await;
        let w = sink.written.lock().unwrap().clone();
        assert_eq!(w.len(), 60);
        assert!(w.iter().all(|p| {
            !p.entry
                .error_message
                .as_deref()
                .unwrap()
                .contains("the-access-token-value")
        }));
        // Unique ids, and batches of at most 25.
        let ids: std::collections::HashSet<_> = w.iter().map(|p| p.seq.clone()).collect();
        assert_eq!(ids.len(), 60);
        assert!(sink.calls.load(Ordering::SeqCst) >= 3);
        assert_eq!(log.stats().written, 60);
    }

    #[tokio::test]
    async fn timer_writes_without_flush_and_failures_are_counted_not_raised() {
        let sink = Arc::new(FakeSink::default());
        let mut cfg = ActivityConfig::for_source("t");
        cfg.flush_interval = Duration::from_millis(20);
        let log = ActivityLog::start(sink.clone(), cfg, vec![]);
        log.record(entry("mark_read", None));
        for _ in 0..100 {
            if !sink.written.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sink.written.lock().unwrap().len(), 1);
        sink.fail.store(true, Ordering::SeqCst);
        log.record(entry("send", None));
        log.flush().await;
        assert_eq!(log.stats().failed, 1);
    }

    #[tokio::test]
    async fn a_full_channel_drops_instead_of_blocking() {
        struct Stuck;
        #[async_trait::async_trait]
        impl ActivitySink for Stuck {
            async fn write_entries(&self, _: &[PendingEntry], _: i64) -> Result<(), String> {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
        }
        let mut cfg = ActivityConfig::for_source("t");
        cfg.capacity = 4;
        cfg.batch_size = 1;
        let log = ActivityLog::start(Arc::new(Stuck), cfg, vec![]);
        let started = std::time::Instant::now();
        for _ in 0..100 {
            log.record(entry("send", None));
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(log.stats().dropped >= 90, "{:?}", log.stats());
    }
}
