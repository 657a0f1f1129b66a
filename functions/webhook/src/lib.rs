//! Webhook function: Meta's verification GET and signed POSTs.
//!
//! A POST is answered 200 only after every message, status and change in it is durably queued
//! (or archived raw when it cannot be understood); any failure to do so answers 5xx so that
//! Meta retries. Nothing is queued for a request whose signature does not verify.
use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shared::archive::RawArchive;
use shared::envelope;
use shared::meta::signature::{self, SIGNATURE_HEADER};
use shared::meta::webhook::{WebhookError, parse_notification};
use shared::queue::{EnvelopeSink, QueueError};
use shared::secrets::{CachedSecret, MetaSecrets};
use subtle::ConstantTimeEq;

pub mod lambda;

pub const WEBHOOK_PATH: &str = "/whatsapp/webhook/getdata";
/// Meta sends at most 3 MB; anything over 4 MB is refused with 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub struct WebhookApp {
    pub secrets: Arc<CachedSecret<MetaSecrets>>,
    pub sink: Arc<dyn EnvelopeSink>,
    pub archive: Arc<dyn RawArchive>,
}

/// A request that fails verification may re-read the Meta secret (an admin may just have rotated
/// it), at most this often: unauthenticated requests never drive Secrets Manager calls.
pub const FORCED_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The routes, for Lambda (`lambda_http::run`) and for the local runner alike.
pub fn router(app: Arc<WebhookApp>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, get(verify).post(receive))
        .with_state(app)
        // We enforce our own limit (413) below; axum's default 2 MB must not pre-empt it.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// `GET ?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C` → `C` when `T` matches.
async fn verify(
    State(app): State<Arc<WebhookApp>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let secrets = match app.secrets.get().await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "verify token unavailable");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "secrets_unavailable",
                "verify token is unavailable",
            );
        }
    };
    let decide = |expected: &str| {
        verification(
            q.get("hub.mode").map(String::as_str),
            q.get("hub.verify_token").map(String::as_str),
            q.get("hub.challenge").map(String::as_str),
            expected,
        )
    };
    let mut decision = decide(secrets.verify_token.expose());
    if decision == Err(TOKEN_MISMATCH) {
        // An admin may just have changed the token (settings API): re-read before refusing, at
        // most once a minute whatever anyone sends.
        if let Ok(fresh) = app.secrets.refresh_at_most_every(FORCED_REFRESH).await {
            decision = decide(fresh.verify_token.expose());
        }
    }
    match decision {
        Ok(challenge) => {
            tracing::info!("webhook verification accepted");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain")],
                challenge.to_string(),
            )
                .into_response()
        }
        Err(reason) => {
            tracing::warn!(reason, "webhook verification refused");
            error(StatusCode::FORBIDDEN, "verification_failed", reason)
        }
    }
}

const TOKEN_MISMATCH: &str = "hub.verify_token does not match";

/// Pure decision of the verification GET.
pub fn verification<'a>(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
    expected: &str,
) -> Result<&'a str, &'static str> {
    if mode != Some("subscribe") {
        return Err("hub.mode must be subscribe");
    }
    let token = token.ok_or("hub.verify_token is missing")?;
    if expected.is_empty() || !bool::from(token.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(TOKEN_MISMATCH);
    }
    challenge
        .filter(|c| !c.is_empty())
        .ok_or("hub.challenge is missing")
}

async fn receive(State(app): State<Arc<WebhookApp>>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match read_limited(body).await {
        Ok(b) => b,
        Err(StatusCode::PAYLOAD_TOO_LARGE) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "body is over 4 MB",
            );
        }
        Err(status) => return error(status, "bad_body", "the request body could not be read"),
    };
    let sig = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let (status, code, message) = app
        .handle_post(&bytes, sig, chrono::Utc::now().timestamp_millis())
        .await;
    shared::metrics::count("WebhookRequests", 1)
        .dim("Outcome", if code.is_empty() { "accepted" } else { code })
        .emit();
    if status == StatusCode::OK {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            "EVENT_RECEIVED",
        )
            .into_response()
    } else {
        error(status, code, &message)
    }
}

/// Reads the body up to [`MAX_BODY_BYTES`]. An oversized body is still drained (up to a hard
/// cap) so the client reads our 413 rather than a reset connection.
async fn read_limited(body: Body) -> Result<Bytes, StatusCode> {
    use futures::StreamExt;
    const DRAIN_CAP: usize = 64 * 1024 * 1024;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
        seen += chunk.len();
        if seen > DRAIN_CAP {
            break;
        }
        if seen <= MAX_BODY_BYTES {
            buf.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY_BYTES {
        Err(StatusCode::PAYLOAD_TOO_LARGE)
    } else {
        Ok(Bytes::from(buf))
    }
}

impl WebhookApp {
    /// The whole POST decision, independent of HTTP framing: (status, error code, message).
    pub async fn handle_post(
        &self,
        body: &[u8],
        signature_header: Option<&str>,
        now_ms: i64,
    ) -> (StatusCode, &'static str, String) {
        if body.len() > MAX_BODY_BYTES {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "body is over 4 MB".into(),
            );
        }
        let secrets = match self.secrets.get().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "app secret unavailable");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "secrets_unavailable",
                    "app secret is unavailable".into(),
                );
            }
        };
        if let Err(e) = signature::verify(
            secrets.app_secret.expose().as_bytes(),
            body,
            signature_header,
        ) {
            // The secret may have been rotated since it was cached: re-read once before refusing.
            let retried = match e {
                signature::SignatureError::Mismatch => {
                    match self.secrets.refresh_at_most_every(FORCED_REFRESH).await {
                        Ok(fresh) => signature::verify(
                            fresh.app_secret.expose().as_bytes(),
                            body,
                            signature_header,
                        )
                        .is_ok(),
                        Err(_) => false,
                    }
                }
                _ => false,
            };
            if !retried {
                tracing::warn!(reason = %e, bytes = body.len(), "webhook signature rejected");
                return (StatusCode::UNAUTHORIZED, "bad_signature", e.to_string());
            }
        }
        let text = match std::str::from_utf8(body) {
            Ok(t) => t,
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    "not_json",
                    "body is not UTF-8 JSON".into(),
                );
            }
        };
        let split = match parse_notification(body) {
            Ok(n) => envelope::split(&n, text, now_ms),
            Err(WebhookError::NotJson(m)) => {
                return (
                    StatusCode::BAD_REQUEST,
                    "not_json",
                    format!("body is not JSON: {m}"),
                );
            }
            // Valid JSON of a shape we do not know: keep it, acknowledge it.
            Err(e) => envelope::Split {
                queued: vec![],
                unparsed: vec![envelope::Unparsed {
                    reason: e.to_string(),
                    raw: text.to_string(),
                }],
            },
        };
        let archive = async {
            for u in &split.unparsed {
                let key = self
                    .archive
                    .archive("raw", &u.reason, u.raw.as_bytes())
                    .await?;
                tracing::warn!(reason = %u.reason, key = %key, "archived a webhook item that could not be understood");
            }
            Ok::<_, shared::archive::ArchiveError>(())
        };
        let queue = self.sink.send_all(&split.queued);
        let (archived, queued) = futures::join!(archive, queue);
        match queued {
            Ok(()) => {}
            // Every other envelope is queued; these never can be: kept raw, acknowledged (a
            // 5xx would make Meta retry a POST that can never succeed).
            Err(QueueError::Refused { refused }) => {
                for r in &refused {
                    let Some(q) = split.queued.get(r.index) else {
                        continue;
                    };
                    match self
                        .archive
                        .archive("raw", &r.reason, q.body.as_bytes())
                        .await
                    {
                        Ok(key) => {
                            tracing::error!(item = %q.label, reason = %r.reason, key = %key, "the queue refused an envelope; archived raw")
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "archiving a refused envelope failed; Meta will retry");
                            return (
                                StatusCode::SERVICE_UNAVAILABLE,
                                "archive_unavailable",
                                "could not archive the notification".into(),
                            );
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, envelopes = split.queued.len(), "queuing failed; Meta will retry");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_unavailable",
                    "could not queue the notification".into(),
                );
            }
        }
        if let Err(e) = archived {
            tracing::error!(error = %e, "archiving failed; Meta will retry");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "archive_unavailable",
                "could not archive the notification".into(),
            );
        }
        for q in &split.queued {
            tracing::debug!(item = %q.label, "queued");
        }
        tracing::info!(
            queued = split.queued.len(),
            archived = split.unparsed.len(),
            "webhook accepted"
        );
        shared::metrics::count("EnvelopesQueued", split.queued.len() as u64)
            .count("WebhookItemsArchived", split.unparsed.len() as u64)
            .emit();
        (StatusCode::OK, "", String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_decisions() {
        assert_eq!(
            verification(Some("subscribe"), Some("t"), Some("42"), "t"),
            Ok("42")
        );
        assert!(verification(Some("subscribe"), Some("x"), Some("42"), "t").is_err());
        assert!(verification(Some("unsubscribe"), Some("t"), Some("42"), "t").is_err());
        assert!(verification(None, Some("t"), Some("42"), "t").is_err());
        assert!(verification(Some("subscribe"), None, Some("42"), "t").is_err());
        assert!(verification(Some("subscribe"), Some("t"), None, "t").is_err());
        // An unset verify token never verifies anything.
        assert!(verification(Some("subscribe"), Some(""), Some("42"), "").is_err());
    }
}
