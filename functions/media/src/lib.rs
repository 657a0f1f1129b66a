//! Media function: copies inbound media from Meta to S3, off the message path.
//!
//! The inbound function stores a media message with `media_state = pending` and hands a
//! [`MediaJob`] to this function's queue (a standard queue: copies are independent of each other
//! and of their conversation's order). Each job is copied once (idempotent on the media id),
//! streamed from Meta to S3 in parts so memory stays bounded whatever the size (documents reach
//! 100 MB), and the message's `media_state` settled:
//! - `copied` once the object and its `MEDIA#` item exist;
//! - `failed` (with the reason) when the media can never be fetched (a host that is not Meta's,
//!   gone at Meta, too large, not matching its sha256), or when the last attempt failed;
//! - still `pending`, with the last error, while a failure that may heal (Meta 5xx / rate limit,
//!   S3 or DynamoDB unavailable, an expired token) is retried through the queue.
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::archive::RawArchive;
use shared::media::{InboundMedia, MediaBucket, MediaError, MediaJob, MediaState};
use shared::meta::graph::{GraphClient, GraphError};
use shared::secrets::{CachedSecret, MetaSecrets};
use shared::sqs_batch::{self, BatchPolicy, Deadline, Ordering, RecordError, RecordHandler};
use shared::store::{Store, StoreError};

/// Copies are independent; 2 s are kept to answer and flush the activity log.
pub const BATCH_POLICY: BatchPolicy = BatchPolicy {
    ordering: Ordering::Independent,
    reserve: std::time::Duration::from_secs(2),
};

/// Attempts before a media whose failures may heal is given up as `failed` (below the queue's
/// `maxReceiveCount`, so the job is settled rather than left to the DLQ).
pub const MAX_ATTEMPTS: u32 = 4;

pub struct MediaApp {
    pub store: Store,
    pub bucket: MediaBucket,
    pub graph: Arc<GraphClient>,
    pub meta_secrets: Arc<CachedSecret<MetaSecrets>>,
    pub now_ms: fn() -> i64,
    pub max_attempts: u32,
}

/// Whether a failed copy may succeed if tried again.
pub fn may_heal(e: &MediaError) -> bool {
    match e {
        MediaError::Graph(g) => !matches!(
            g,
            GraphError::Refused(_)
                | GraphError::Validation(_)
                | GraphError::BadResponse(_)
                | GraphError::Meta { code: 100, .. }
                | GraphError::Meta {
                    http_status: 404,
                    ..
                }
        ),
        MediaError::Storage(_) => true,
        MediaError::Store(e) => !e.is_permanent(),
    }
}

fn store_failure(e: StoreError) -> RecordError {
    if e.is_permanent() {
        RecordError::Park(e.to_string())
    } else {
        RecordError::Retry(e.to_string())
    }
}

impl MediaApp {
    pub async fn handle_batch(
        &self,
        archive: &dyn RawArchive,
        event: SqsEvent,
        deadline: Deadline,
    ) -> SqsBatchResponse {
        sqs_batch::process(event, BATCH_POLICY, deadline, archive, self).await
    }
}

#[async_trait::async_trait]
impl RecordHandler for MediaApp {
    async fn handle(&self, record: &SqsMessage) -> Result<(), RecordError> {
        let job = MediaJob::from_body(record.body.as_deref().unwrap_or_default())
            .map_err(RecordError::Park)?;
        let attempt: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let result = self.copy(&job).await;
        let (state, error, outcome) = match result {
            Ok(size) => {
                tracing::info!(media_id = %job.media_id, bytes = size, "media copied to S3");
                (MediaState::Copied, None, Ok(()))
            }
            Err(e) if may_heal(&e) && attempt < self.max_attempts => {
                tracing::warn!(media_id = %job.media_id, attempt, error = %e, "media copy failed; it will be retried");
                let reason = e.to_string();
                (
                    MediaState::Pending,
                    Some(reason.clone()),
                    Err(RecordError::Retry(reason)),
                )
            }
            Err(e) => {
                let reason = if may_heal(&e) {
                    format!("gave up after {attempt} attempts: {e}")
                } else {
                    e.to_string()
                };
                tracing::error!(media_id = %job.media_id, reason = %reason, "media copy failed");
                (MediaState::Failed, Some(reason), Ok(()))
            }
        };
        let recorded = self
            .store
            .set_media_state(&job.msg_pk, &job.msg_sk, state, error.as_deref())
            .await;
        match (recorded, outcome) {
            (Ok(_), outcome) => outcome,
            // The copy's outcome must be recorded before the job is acknowledged.
            (Err(e), Ok(())) => Err(store_failure(e)),
            (Err(_), Err(retry)) => Err(retry),
        }
    }
}

impl MediaApp {
    /// Copies the job's media; returns its size.
    async fn copy(&self, job: &MediaJob) -> Result<u64, MediaError> {
        let secrets = self
            .meta_secrets
            .get()
            .await
            .map_err(|e| MediaError::Storage(format!("Meta credentials: {e}")))?;
        let item = shared::media::copy_inbound(
            &self.store,
            &self.bucket,
            &self.graph,
            secrets.access_token.expose(),
            &InboundMedia {
                media_id: &job.media_id,
                phone_number_id: &job.phone_number_id,
                customer_id: &job.customer_id,
                wamid: &job.wamid,
                filename: job.filename.as_deref(),
                now_ms: (self.now_ms)(),
            },
        )
        .await?;
        Ok(item.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_that_cannot_heal_are_final() {
        let meta = |http_status, code| {
            MediaError::Graph(GraphError::Meta {
                http_status,
                code,
                subcode: None,
                message: String::new(),
                details: None,
                class: shared::meta::graph::classify(code),
                fbtrace_id: None,
            })
        };
        assert!(!may_heal(&meta(400, 100)));
        assert!(!may_heal(&meta(404, 131000)));
        assert!(!may_heal(&MediaError::Graph(GraphError::Refused(
            "x".into()
        ))));
        assert!(!may_heal(&MediaError::Graph(GraphError::BadResponse(
            "sha256".into()
        ))));
        assert!(may_heal(&meta(500, 131000)));
        assert!(may_heal(&meta(400, 130429)));
        assert!(may_heal(&meta(401, 190)));
        assert!(may_heal(&MediaError::Graph(GraphError::NotSent(
            "x".into()
        ))));
        assert!(may_heal(&MediaError::Storage("s3".into())));
    }
}
