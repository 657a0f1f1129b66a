//! Activity log of the Graph API calls (`whatsapp_log_activity` view / clear_log).
//!
//! - `GET /api/v1/activity-log?kind=&number=&recipient=&status=ok|error&from=&to=&limit=&cursor=`:
//!   newest first; `from` / `to` are RFC 3339 instants, `YYYY-MM-DD` days (UTC, inclusive) or
//!   unix milliseconds; the range is bounded by the log's TTL (30 days). The cursor is signed
//!   and bound to the query's filters.
//! - `DELETE /api/v1/activity-log?from=&to=`: deletes the entries (at most [`MAX_CLEAR`] per
//!   call: repeat while `more` is true) and records who cleared it.
//!
//! The entries are written by [`shared::activity::ActivityLog`], the Graph client's observer;
//! [`flush_after`] makes a Lambda write them before it answers.
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shared::activity::{
    ActivityEntry, ActivityLog, DEFAULT_TTL, KIND_LOG_CLEARED, Outcome, PendingEntry,
};
use shared::auth::{Action, Permission, Resource};
use shared::store::activity::{ActivityFilter, LogPosition, LoggedEntry, oldest_kept_ms};
use utoipa::{IntoParams, ToSchema};

use crate::conversations::Page;
use crate::{ApiError, Authed, StaffApp};

pub const LOG_VIEW: Permission = Permission {
    resource: Resource::WhatsappLogActivity,
    action: Action::View,
};
pub const LOG_CLEAR: Permission = Permission {
    resource: Resource::WhatsappLogActivity,
    action: Action::ClearLog,
};

/// Entries deleted by one `DELETE` at most (the Lambda has 29 s).
pub const MAX_CLEAR: usize = 2000;
/// Bound on the wait for the log's writer after a request.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![list, clear]
}

/// `router` with the activity log flushed after every request: a Lambda is frozen once it has
/// answered, so what its calls logged must be written before. Waits at most
/// [`FLUSH_TIMEOUT`]; a failure is logged by the writer and never changes the answer.
pub fn flush_after(router: Router, log: ActivityLog) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let log = log.clone();
            async move {
                let resp = next.run(req).await;
                if tokio::time::timeout(FLUSH_TIMEOUT, log.flush())
                    .await
                    .is_err()
                {
                    tracing::warn!("activity log flush timed out");
                }
                resp
            }
        },
    ))
}

/// Filters and paging of the activity log. The cursor only continues the same filters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogQuery {
    /// Call kind: `send`, `mark_read`, `upload_media`, `media_info`, `download_media`,
    /// `templates`, `account`, `log_cleared`, … (lowercase letters and `_`, at most 40).
    kind: Option<String>,
    /// Business phone number id, WABA id or media id the call was about (at most 64).
    number: Option<String>,
    /// Recipient phone number (any format) or WhatsApp user id.
    recipient: Option<String>,
    /// `ok` or `error`.
    status: Option<String>,
    /// Oldest instant: RFC 3339, a day `YYYY-MM-DD` (UTC, from its start) or unix ms; at most
    /// 30 days back (the log's retention).
    from: Option<String>,
    /// Newest instant: RFC 3339, a day `YYYY-MM-DD` (UTC, to its end) or unix ms.
    to: Option<String>,
    /// Page size, 1–200 (default 50).
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Meta's error of a failed call.
#[derive(Serialize, ToSchema)]
pub struct ActivityError {
    /// `meta`, `not_sent`, `unknown`, `bad_response`, `refused`, `validation` or `config`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Meta's `error.code`.
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    /// What the code means (`auth`, `rate_limited`, `recipient_invalid`, …).
    pub class: Option<String>,
    /// Redacted of credentials.
    pub message: Option<String>,
    pub fbtrace_id: Option<String>,
}

/// One attempt of one Graph API call (or a log event such as a clear).
#[derive(Serialize, ToSchema)]
pub struct ActivityEntryView {
    pub id: String,
    /// Start of the attempt, unix ms.
    pub at: i64,
    /// `at` as RFC 3339 (UTC, milliseconds).
    pub at_iso: Option<String>,
    /// Call kind (`send`, `mark_read`, …) or `log_cleared`.
    pub kind: String,
    /// Attempt number of the call (retries count up).
    pub attempt: u32,
    /// Business phone number id, WABA id or media id the call was about.
    pub number: Option<String>,
    pub recipient: Option<String>,
    /// `ok` or `error`.
    pub status: String,
    pub http_status: Option<u16>,
    pub duration_ms: u64,
    /// The client retries this call.
    pub will_retry: bool,
    /// Present when `status` is `error`.
    pub error: Option<ActivityError>,
    /// Function that made the call (`staff-api`, …).
    pub source: String,
    /// Staff member behind a log event (e.g. who cleared the log).
    pub actor: Option<String>,
    pub note: Option<String>,
}

/// What a clear deleted.
#[derive(Serialize, ToSchema)]
pub struct ActivityClearReport {
    /// Entries deleted by this call.
    pub deleted: usize,
    /// Entries of the range remain: call again.
    pub more: bool,
}

fn bad(field: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("{field} {why}"))
}

/// A time bound: RFC 3339, `YYYY-MM-DD` (start of day for `from`, end for `to`) or unix ms.
pub(crate) fn parse_instant(field: &str, v: &str, end_of_day: bool) -> Result<i64, ApiError> {
    let v = v.trim();
    if let Ok(ms) = v.parse::<i64>() {
        return if (0..=253_402_300_799_999).contains(&ms) {
            Ok(ms)
        } else {
            Err(bad(field, "must be a unix time in milliseconds"))
        };
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let start = d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis();
        return Ok(if end_of_day {
            start + 24 * 3600 * 1000 - 1
        } else {
            start
        });
    }
    Err(bad(
        field,
        "must be an RFC 3339 time (2025-06-08T10:00:00Z), a day (2025-06-08) or unix milliseconds",
    ))
}

/// The time range of a request, clamped to what the log can hold.
fn range(q: &LogQuery, now_ms: i64) -> Result<(i64, i64), ApiError> {
    let oldest = oldest_kept_ms(now_ms, DEFAULT_TTL);
    let from = match q.from.as_deref().filter(|s| !s.is_empty()) {
        Some(f) => parse_instant("from", f, false)?.max(oldest),
        None => oldest,
    };
    let to = match q.to.as_deref().filter(|s| !s.is_empty()) {
        Some(t) => parse_instant("to", t, true)?,
        None => now_ms + 60_000,
    }
    .min(now_ms + 24 * 3600 * 1000);
    if from > to {
        return Err(bad("from", "must not be after to"));
    }
    Ok((from, to))
}

fn filter_of(q: &LogQuery) -> Result<ActivityFilter, ApiError> {
    fn nonempty(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
    let mut f = ActivityFilter::default();
    if let Some(k) = nonempty(&q.kind) {
        if k.len() > 40 || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(bad(
                "kind",
                "must be a call kind such as send, mark_read, upload_media, media_info, download_media, templates, account or log_cleared",
            ));
        }
        f.kind = Some(k.to_owned());
    }
    if let Some(n) = nonempty(&q.number) {
        if n.len() > 64
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad(
                "number",
                "must be a phone number id, WABA id or media id",
            ));
        }
        f.number = Some(n.to_owned());
    }
    if let Some(r) = nonempty(&q.recipient) {
        let compact: String = r
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
            f.recipients = vec![digits.to_owned(), format!("+{digits}")];
        } else if compact.len() <= 128
            && compact
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        {
            f.recipients = vec![compact];
        } else {
            return Err(bad(
                "recipient",
                "must be a phone number or a WhatsApp user id",
            ));
        }
    }
    if let Some(s) = nonempty(&q.status) {
        f.outcome = Some(Outcome::parse(s).ok_or_else(|| bad("status", "must be ok or error"))?);
    }
    Ok(f)
}

impl ActivityEntryView {
    fn new(e: &LoggedEntry) -> Self {
        let x = &e.entry;
        let at_iso = DateTime::<Utc>::from_timestamp_millis(x.at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        let error = (x.outcome == Outcome::Error).then(|| ActivityError {
            kind: x.error_type.clone(),
            code: x.error_code,
            subcode: x.error_subcode,
            class: x.error_class.clone(),
            message: x.error_message.clone(),
            fbtrace_id: x.fbtrace_id.clone(),
        });
        Self {
            id: e.id.clone(),
            at: x.at,
            at_iso,
            kind: x.kind.clone(),
            attempt: x.attempt,
            number: x.number.clone(),
            recipient: x.recipient.clone(),
            status: x.outcome.as_str().to_string(),
            http_status: x.http_status,
            duration_ms: x.duration_ms,
            will_retry: x.will_retry,
            error,
            source: x.source.clone(),
            actor: x.actor.clone(),
            note: x.note.clone(),
        }
    }
}

/// The cursor is bound to the filters as the caller wrote them.
fn scope_of(q: &LogQuery) -> String {
    let p = |v: &Option<String>| v.clone().unwrap_or_default();
    let parts = [
        p(&q.kind),
        p(&q.number),
        p(&q.recipient),
        p(&q.status),
        p(&q.from),
        p(&q.to),
    ];
    format!(
        "activity-log:{}",
        serde_json::to_string(&parts).unwrap_or_default()
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/activity-log",
    tag = "activity-log",
    summary = "Graph API calls (?kind=&number=&recipient=&status=&from=&to=&limit=&cursor=)",
    description = "Newest first; kept 30 days.",
    security(("bearer" = ["whatsapp_log_activity:view"])),
    params(LogQuery),
    responses((status = 200, description = "One page of entries", body = Page<ActivityEntryView>))
)]
async fn list(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<LogQuery>,
) -> Result<Json<Page<ActivityEntryView>>, ApiError> {
    who.require(LOG_VIEW)?;
    let now = (app.now_ms)();
    let filter = filter_of(&q)?;
    let (from, to) = range(&q, now)?;
    let limit = crate::parse_limit(q.limit.as_deref(), 50, 200)?;
    let scope = scope_of(&q);
    let position: Option<LogPosition> = crate::decode_cursor_as(
        &keys,
        &scope,
        q.cursor.as_deref(),
        "cursor is invalid for this list (it was issued for other filters)",
    )?;
    let (rows, next) = app
        .store
        .activity_page(&filter, from, to, position.as_ref(), limit, now)
        .await?;
    Ok(Json(Page {
        data: rows.iter().map(ActivityEntryView::new).collect(),
        next_cursor: next.map(|p| keys.cursors.encode(&scope, &p)),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/activity-log",
    tag = "activity-log",
    summary = "Clear the activity log",
    description = "Deletes the entries of the range, at most 2000 per call: repeat while `more` is true. Who cleared it is logged as a `log_cleared` entry.",
    security(("bearer" = ["whatsapp_log_activity:clear_log"])),
    params(
        ("from" = Option<String>, Query, description = "Oldest instant to delete: RFC 3339, a day `YYYY-MM-DD` (UTC) or unix ms (default: the oldest kept)"),
        ("to" = Option<String>, Query, description = "Newest instant to delete: RFC 3339, a day `YYYY-MM-DD` (UTC, to its end) or unix ms (default: now)")
    ),
    responses((status = 200, description = "What was deleted", body = ActivityClearReport))
)]
async fn clear(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Query(q): Query<LogQuery>,
) -> Result<Json<ActivityClearReport>, ApiError> {
    who.require(LOG_CLEAR)?;
    let now = (app.now_ms)();
    let (from, to) = range(
        &LogQuery {
            to: q.to.clone().or_else(|| Some(now.to_string())),
            ..q
        },
        now,
    )?;
    let (deleted, more) = app.store.clear_activity(from, to, MAX_CLEAR).await?;
    tracing::info!(staff_id = %who.staff_id, deleted, more, "activity log cleared");
    // Who cleared it stays visible.
    let audit = ActivityEntry {
        at: now,
        kind: KIND_LOG_CLEARED.into(),
        attempt: 0,
        number: None,
        recipient: None,
        http_status: None,
        outcome: Outcome::Ok,
        error_type: None,
        error_code: None,
        error_subcode: None,
        error_class: None,
        error_message: None,
        fbtrace_id: None,
        duration_ms: 0,
        will_retry: false,
        source: "staff-api".into(),
        actor: Some(who.staff_id.clone()),
        note: Some(format!("{deleted} entries deleted")),
    };
    let ttl = i64::try_from(DEFAULT_TTL.as_secs()).unwrap_or(i64::MAX);
    let seq = uuid::Uuid::new_v4().simple().to_string();
    app.store
        .put_activity(&[PendingEntry { seq, entry: audit }], ttl)
        .await?;
    Ok(Json(ActivityClearReport { deleted, more }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> LogQuery {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(a, _)| *a == k)
                .map(|(_, v)| v.to_string())
        };
        LogQuery {
            kind: get("kind"),
            number: get("number"),
            recipient: get("recipient"),
            status: get("status"),
            from: get("from"),
            to: get("to"),
            limit: None,
            cursor: None,
        }
    }

    #[test]
    fn instants() {
        assert_eq!(parse_instant("from", "1000", false).unwrap(), 1000);
        assert_eq!(
            parse_instant("from", "2025-06-08", false).unwrap(),
            1_749_340_800_000
        );
        assert_eq!(
            parse_instant("to", "2025-06-08", true).unwrap(),
            1_749_340_800_000 + 86_399_999
        );
        assert_eq!(
            parse_instant("from", "2025-06-08T00:00:01+00:00", false).unwrap(),
            1_749_340_801_000
        );
        let e = parse_instant("from", "yesterday", false).unwrap_err();
        assert!(e.message.starts_with("from "), "{}", e.message);
    }

    #[test]
    fn ranges_are_clamped_and_ordered() {
        let now = 1_749_340_800_000;
        let (from, to) = range(&q(&[]), now).unwrap();
        assert!(from < now - 30 * 86_400_000 && from >= now - 32 * 86_400_000);
        assert_eq!(to, now + 60_000);
        let (from, _) = range(&q(&[("from", "2000-01-01")]), now).unwrap();
        assert!(from > now - 32 * 86_400_000);
        assert!(range(&q(&[("from", "2025-06-08"), ("to", "2025-06-07")]), now).is_err());
    }

    #[test]
    fn filters() {
        let f = filter_of(&q(&[("recipient", "+1 555-010-1010"), ("status", "error")])).unwrap();
        assert_eq!(f.recipients, vec!["15550101010", "+15550101010"]);
        assert_eq!(f.outcome, Some(Outcome::Error));
        assert!(
            filter_of(&q(&[("status", "bad")]))
                .unwrap_err()
                .message
                .starts_with("status")
        );
        assert!(
            filter_of(&q(&[("kind", "Send!")]))
                .unwrap_err()
                .message
                .starts_with("kind")
        );
        assert!(
            filter_of(&q(&[("number", "../x")]))
                .unwrap_err()
                .message
                .starts_with("number")
        );
        assert!(filter_of(&q(&[("recipient", "a b\"")])).is_err());
        assert_ne!(scope_of(&q(&[("kind", "send")])), scope_of(&q(&[])));
    }
}
