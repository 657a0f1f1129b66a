//! Durable hand-off to SQS: batches of 10, bounded concurrency, every per-entry failure retried.
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::StreamExt;

use crate::envelope::QueuedEnvelope;

/// SQS's message size limit (and `SendMessageBatch`'s total) on any queue configuration.
pub const MAX_MESSAGE_BYTES: usize = 262_144;

/// An envelope the queue can never take (its own fault, e.g. over the size limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its position in the slice given to [`EnvelopeSink::send_all`].
    pub index: usize,
    pub reason: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// Every other envelope was queued; these can never be (retrying cannot help): the caller
    /// keeps them elsewhere (the webhook archives them raw).
    #[error("{} envelope(s) refused by the queue: {}", .refused.len(), .refused.first().map(|r| r.reason.as_str()).unwrap_or(""))]
    Refused { refused: Vec<Refused> },
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

    /// Sends the envelopes at `indices` (one `SendMessageBatch`), retrying failed entries;
    /// answers the entries SQS refused as the sender's fault.
    async fn send_chunk(
        &self,
        all: &[QueuedEnvelope],
        indices: &[usize],
    ) -> Result<Vec<Refused>, QueueError> {
        // Entry ids are indices into `all`; only the failed ones are sent again.
        let mut pending: Vec<usize> = indices.to_vec();
        let mut refused = Vec::new();
        let mut last_reason = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let entries: Vec<SendMessageBatchRequestEntry> = pending
                .iter()
                .map(|&i| {
                    let e = &all[i];
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
            // Our own fault (e.g. an invalid body) will not heal by retrying: refused now.
            for f in failed.iter().filter(|f| f.sender_fault()) {
                if let Ok(i) = f.id().parse::<usize>() {
                    refused.push(Refused {
                        index: i,
                        reason: format!("{}: {}", f.code(), f.message().unwrap_or_default()),
                    });
                }
            }
            pending = failed
                .iter()
                .filter(|f| !f.sender_fault())
                .filter_map(|f| f.id().parse().ok())
                .collect();
            if pending.is_empty() {
                return Ok(refused);
            }
            last_reason = failed
                .iter()
                .map(|f| f.code().to_string())
                .collect::<Vec<_>>()
                .join(",");
            tracing::warn!(attempt, failed = pending.len(), codes = %last_reason, "SendMessageBatch partial failure, retrying");
        }
        Err(QueueError::Partial {
            failed: pending.len(),
            total: indices.len(),
            reason: last_reason,
        })
    }
}

/// Packs envelopes into `SendMessageBatch` calls: at most 10 entries and
/// [`MAX_MESSAGE_BYTES`] of bodies each. Envelopes over the limit are refused up front.
pub fn pack(envelopes: &[QueuedEnvelope]) -> (Vec<Vec<usize>>, Vec<Refused>) {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut refused = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for (i, e) in envelopes.iter().enumerate() {
        let size = e.body.len();
        if size > MAX_MESSAGE_BYTES {
            refused.push(Refused {
                index: i,
                reason: format!(
                    "envelope of {size} bytes is over SQS's {MAX_MESSAGE_BYTES}-byte message limit"
                ),
            });
            continue;
        }
        if current.len() == 10 || bytes + size > MAX_MESSAGE_BYTES {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, refused)
}

/// Exponential backoff with full jitter, capped at 2 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = 50u64.saturating_mul(1 << attempt.min(6)).min(2000);
    Duration::from_millis(rand::random_range(cap / 2..=cap))
}

#[async_trait::async_trait]
impl EnvelopeSink for SqsSink {
    async fn send_all(&self, envelopes: &[QueuedEnvelope]) -> Result<(), QueueError> {
        let (batches, mut refused) = pack(envelopes);
        let sends: Vec<_> = batches
            .iter()
            .map(|b| self.send_chunk(envelopes, b))
            .collect();
        let results: Vec<Result<Vec<Refused>, QueueError>> = futures::stream::iter(sends)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for r in results {
            refused.extend(r?);
        }
        if refused.is_empty() {
            Ok(())
        } else {
            refused.sort_by_key(|r| r.index);
            Err(QueueError::Refused { refused })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(bytes: usize) -> QueuedEnvelope {
        QueuedEnvelope {
            group_id: "g".into(),
            dedupe_id: "d".into(),
            body: "x".repeat(bytes),
            label: String::new(),
        }
    }

    #[test]
    fn batches_hold_ten_entries_and_fit_the_size_limit() {
        let small: Vec<_> = (0..23).map(|_| env(100)).collect();
        let (b, r) = pack(&small);
        assert!(r.is_empty());
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 3]);
        // Five 100 KB envelopes: never more than 256 KiB in one call.
        let big: Vec<_> = (0..5).map(|_| env(100_000)).collect();
        let (b, _) = pack(&big);
        assert_eq!(b, vec![vec![0, 1], vec![2, 3], vec![4]]);
        // An envelope over the limit is refused, the others packed.
        let mixed = vec![env(10), env(MAX_MESSAGE_BYTES + 1), env(10)];
        let (b, r) = pack(&mixed);
        assert_eq!(b, vec![vec![0, 2]]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].index, 1);
        assert!(r[0].reason.contains("over SQS's"));
    }

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
