//! Durable hand-off to SQS: batches of 10, bounded concurrency, every per-entry failure retried.
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::StreamExt;

use crate::envelope::QueuedEnvelope;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("{failed} of {total} envelopes could not be queued: {reason}")]
    Partial {
        failed: usize,
        total: usize,
        reason: String,
    },
}

/// Port: where the webhook puts envelopes.
#[async_trait::async_trait]
pub trait EnvelopeSink: Send + Sync {
    /// Returns only when every envelope is durably queued.
    async fn send_all(&self, envelopes: &[QueuedEnvelope]) -> Result<(), QueueError>;
}

pub struct SqsSink {
    client: Client,
    queue_url: String,
    fifo: bool,
    attempts: u32,
    concurrency: usize,
}

impl SqsSink {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        let queue_url = queue_url.into();
        Self {
            client,
            fifo: queue_url.ends_with(".fifo"),
            queue_url,
            attempts: 5,
            concurrency: 8,
        }
    }

    async fn send_chunk(&self, chunk: &[QueuedEnvelope]) -> Result<(), QueueError> {
        // Entry ids are positions in the chunk; only the failed ones are sent again.
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut last_reason = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let entries: Vec<SendMessageBatchRequestEntry> = pending
                .iter()
                .map(|&i| {
                    let e = &chunk[i];
                    let mut b = SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&e.body);
                    if self.fifo {
                        b = b
                            .message_group_id(&e.group_id)
                            .message_deduplication_id(&e.dedupe_id);
                    }
                    b.build().expect("entry has id and body")
                })
                .collect();
            let out = match self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    last_reason = DisplayErrorContext(&e).to_string();
                    tracing::warn!(attempt, error = %last_reason, "SendMessageBatch failed");
                    continue;
                }
            };
            let failed = out.failed();
            if failed.is_empty() {
                return Ok(());
            }
            // Our own fault (e.g. a body over the size limit) will not heal by retrying.
            if let Some(f) = failed.iter().find(|f| f.sender_fault()) {
                return Err(QueueError::Partial {
                    failed: failed.len(),
                    total: chunk.len(),
                    reason: format!("{}: {}", f.code(), f.message().unwrap_or_default()),
                });
            }
            last_reason = failed
                .iter()
                .map(|f| f.code().to_string())
                .collect::<Vec<_>>()
                .join(",");
            tracing::warn!(attempt, failed = failed.len(), codes = %last_reason, "SendMessageBatch partial failure, retrying");
            pending = failed.iter().filter_map(|f| f.id().parse().ok()).collect();
        }
        Err(QueueError::Partial {
            failed: pending.len(),
            total: chunk.len(),
            reason: last_reason,
        })
    }
}

/// Exponential backoff with full jitter, capped at 2 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 50u64.saturating_mul(1 << attempt.min(6)).min(2000);
    Duration::from_millis(rand::random_range(cap / 2..=cap))
}

#[async_trait::async_trait]
impl EnvelopeSink for SqsSink {
    async fn send_all(&self, envelopes: &[QueuedEnvelope]) -> Result<(), QueueError> {
        let sends: Vec<_> = envelopes.chunks(10).map(|c| self.send_chunk(c)).collect();
        let results: Vec<Result<(), QueueError>> = futures::stream::iter(sends)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for a in 0..20 {
            let d = backoff(a);
            assert!(d <= Duration::from_secs(2));
            assert!(d >= Duration::from_millis(25));
        }
        assert!(backoff(10) >= Duration::from_millis(1000));
    }
}
