//! SQS batches as Lambda's event source mapping delivers them, with the semantics every consumer
//! of this system shares (SYSTEM.md §5):
//! - partial batch failures: a record that may succeed later is reported as failed and comes back;
//! - a record that can never succeed is parked (stored raw in the archive) and acknowledged;
//!   if even parking fails it is retried;
//! - FIFO order: once a record of a message group fails, every later record of that group in the
//!   batch is reported as failed too, so nothing overtakes it;
//! - the deadline: no record is started when less than the reserve remains, and a record still
//!   running at that point is abandoned and reported as failed, so a slow record is retried alone
//!   instead of the whole batch timing out (processing is idempotent by data, so an abandoned
//!   record is safe to run again).
use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::time::Instant;

use crate::archive::RawArchive;

/// Why one record was not processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// May succeed later (AWS unavailable, throttled, deadline reached …): retried.
    #[error("retryable: {0}")]
    Retry(String),
    /// Can never succeed (unparseable, invalid …): parked and acknowledged.
    #[error("permanent: {0}")]
    Park(String),
}

/// How failures of one record affect the others of its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// FIFO queue: a failed record fails the later records of its message group.
    PerGroup,
    /// Standard queue: each record stands alone.
    Independent,
}

/// When the invocation must have answered (Lambda's `context.deadline`).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline (a test, or a caller that bounds the work itself).
    pub fn none() -> Self {
        Self(None)
    }

    /// `d` from now.
    pub fn after(d: Duration) -> Self {
        Self(Some(Instant::now() + d))
    }

    /// From Lambda's context deadline (milliseconds since the Unix epoch).
    pub fn from_epoch_ms(deadline_ms: u64) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    /// Time left, if there is a deadline.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The instant by which work must stop to keep `reserve` for answering.
    fn cutoff(&self, reserve: Duration) -> Option<Instant> {
        self.0
            .map(|at| at.checked_sub(reserve).unwrap_or_else(Instant::now))
    }
}

/// What a consumer decides about its batches.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    pub ordering: Ordering,
    /// Time kept before the deadline for answering (and flushing logs): no record runs into it.
    pub reserve: Duration,
}

/// The message group of a record (FIFO), if any.
pub fn message_group(record: &SqsMessage) -> Option<&str> {
    record
        .attributes
        .get("MessageGroupId")
        .map(String::as_str)
        .filter(|g| !g.is_empty())
}

/// Port: what a consumer does with one record.
#[async_trait::async_trait]
pub trait RecordHandler: Send + Sync {
    async fn handle(&self, record: &SqsMessage) -> Result<(), RecordError>;
}

/// Runs `handler` on each record of the batch under the policy and answers the batch response.
pub async fn process(
    event: SqsEvent,
    policy: BatchPolicy,
    deadline: Deadline,
    archive: &dyn RawArchive,
    handler: &dyn RecordHandler,
) -> SqsBatchResponse {
    let cutoff = deadline.cutoff(policy.reserve);
    let mut failed_groups: HashSet<String> = HashSet::new();
    let mut failures = Vec::new();
    let mut out_of_time = false;
    for record in &event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = match policy.ordering {
            Ordering::PerGroup => message_group(record),
            Ordering::Independent => None,
        };
        if out_of_time || cutoff.is_some_and(|c| Instant::now() >= c) {
            if !out_of_time {
                tracing::warn!(
                    message_id = %id,
                    "deadline near: this record and the rest of the batch are left for a retry"
                );
            }
            out_of_time = true;
            failures.push(item_failure(&id));
            continue;
        }
        if group.is_some_and(|g| failed_groups.contains(g)) {
            // Keep the group's order: a later record never overtakes a failed one.
            failures.push(item_failure(&id));
            continue;
        }
        let result = match cutoff {
            Some(c) => match tokio::time::timeout_at(c, handler.handle(record)).await {
                Ok(r) => r,
                Err(_) => {
                    out_of_time = true;
                    Err(RecordError::Retry(
                        "the function's deadline was reached while processing the record".into(),
                    ))
                }
            },
            None => handler.handle(record).await,
        };
        let retry = match result {
            Ok(()) => false,
            Err(RecordError::Retry(reason)) => {
                tracing::warn!(message_id = %id, reason = %reason, "record failed; it will be retried");
                true
            }
            Err(RecordError::Park(reason)) => !park(archive, record, group, &id, &reason).await,
        };
        if retry {
            if let Some(g) = group {
                failed_groups.insert(g.to_string());
            }
            failures.push(item_failure(&id));
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

/// [`process`] for a standard queue whose records wait on something slow (Meta's answer): up
/// to `concurrency` records run at once, with the same partial failures, parking and deadline
/// (a record not started by the cutoff, or still running at it, is reported as failed).
pub async fn process_concurrently(
    event: SqsEvent,
    reserve: Duration,
    deadline: Deadline,
    archive: &dyn RawArchive,
    handler: &dyn RecordHandler,
    concurrency: usize,
) -> SqsBatchResponse {
    let cutoff = deadline.cutoff(reserve);
    let mut failures = Vec::new();
    // `concurrency` records at a time (a Lambda batch is small: usually one round).
    for chunk in event.records.chunks(concurrency.max(1)) {
        let mut running = Vec::with_capacity(chunk.len());
        for record in chunk {
            running.push(one_record(record, cutoff, archive, handler));
        }
        failures.extend(
            futures::future::join_all(running)
                .await
                .into_iter()
                .flatten(),
        );
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

/// One record of [`process_concurrently`]: its failure, if it must come back.
async fn one_record(
    record: &SqsMessage,
    cutoff: Option<Instant>,
    archive: &dyn RawArchive,
    handler: &dyn RecordHandler,
) -> Option<BatchItemFailure> {
    let id = record.message_id.clone().unwrap_or_default();
    if cutoff.is_some_and(|c| Instant::now() >= c) {
        tracing::warn!(message_id = %id, "deadline near: the record is left for a retry");
        return Some(item_failure(&id));
    }
    let result = match cutoff {
        Some(c) => tokio::time::timeout_at(c, handler.handle(record))
            .await
            .unwrap_or_else(|_| {
                Err(RecordError::Retry(
                    "the function's deadline was reached while processing the record".into(),
                ))
            }),
        None => handler.handle(record).await,
    };
    let retry = match result {
        Ok(()) => false,
        Err(RecordError::Retry(reason)) => {
            tracing::warn!(message_id = %id, reason = %reason, "record failed; it will be retried");
            true
        }
        Err(RecordError::Park(reason)) => !park(archive, record, None, &id, &reason).await,
    };
    retry.then(|| item_failure(&id))
}

/// Stores the record raw under `parked/`; false when that failed (the record is then retried).
async fn park(
    archive: &dyn RawArchive,
    record: &SqsMessage,
    group: Option<&str>,
    id: &str,
    reason: &str,
) -> bool {
    let parked = serde_json::json!({
        "message_id": id,
        "group": group.unwrap_or(""),
        "reason": reason,
        "body": record.body.as_deref().unwrap_or(""),
    });
    match archive
        .archive("parked", reason, parked.to_string().as_bytes())
        .await
    {
        Ok(key) => {
            tracing::error!(message_id = %id, key = %key, reason = %reason, "record parked");
            crate::metrics::count("ParkedRecords", 1).emit();
            true
        }
        Err(e) => {
            tracing::error!(message_id = %id, error = %e, "record could not be parked; retrying");
            false
        }
    }
}

fn item_failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_string();
    f
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::archive::ArchiveError;

    #[derive(Default)]
    struct MemArchive {
        fail: bool,
        parked: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl RawArchive for MemArchive {
        async fn archive(&self, p: &str, _r: &str, body: &[u8]) -> Result<String, ArchiveError> {
            if self.fail {
                return Err(ArchiveError("down".into()));
            }
            let key = format!("{p}/{}", self.parked.lock().unwrap().len());
            self.parked
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(body).into_owned());
            Ok(key)
        }
    }

    fn record(id: &str, group: &str, body: &str) -> SqsMessage {
        let mut r = SqsMessage::default();
        r.message_id = Some(id.into());
        r.body = Some(body.into());
        if !group.is_empty() {
            r.attributes.insert("MessageGroupId".into(), group.into());
        }
        r
    }

    fn batch(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    fn failed(r: &SqsBatchResponse) -> Vec<&str> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    const FIFO: BatchPolicy = BatchPolicy {
        ordering: Ordering::PerGroup,
        reserve: Duration::from_millis(200),
    };

    /// Answers by the record's body, and remembers which records it started.
    #[derive(Default)]
    struct ByBody(Mutex<Vec<String>>);

    #[async_trait::async_trait]
    impl RecordHandler for ByBody {
        async fn handle(&self, r: &SqsMessage) -> Result<(), RecordError> {
            self.0.lock().unwrap().push(r.message_id.clone().unwrap());
            match r.body.as_deref() {
                Some("retry") => Err(RecordError::Retry("later".into())),
                Some("park") => Err(RecordError::Park("never".into())),
                Some("slow") => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }

    /// Counts the records running at once.
    #[derive(Default)]
    struct InFlight {
        now: std::sync::atomic::AtomicUsize,
        max: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl RecordHandler for InFlight {
        async fn handle(&self, r: &SqsMessage) -> Result<(), RecordError> {
            use std::sync::atomic::Ordering::SeqCst;
            let n = self.now.fetch_add(1, SeqCst) + 1;
            self.max.fetch_max(n, SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.now.fetch_sub(1, SeqCst);
            match r.body.as_deref() {
                Some("retry") => Err(RecordError::Retry("later".into())),
                Some("park") => Err(RecordError::Park("never".into())),
                _ => Ok(()),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_records_keep_partial_failures_and_parking() {
        let a = MemArchive::default();
        let h = InFlight::default();
        let records = (0..10)
            .map(|i| {
                let body = match i {
                    3 => "retry",
                    7 => "park",
                    _ => "ok",
                };
                record(&i.to_string(), "", body)
            })
            .collect();
        let r = process_concurrently(
            batch(records),
            Duration::from_millis(200),
            Deadline::none(),
            &a,
            &h,
            4,
        )
        .await;
        assert_eq!(failed(&r), vec!["3"]);
        assert_eq!(a.parked.lock().unwrap().len(), 1);
        assert_eq!(
            h.max.load(std::sync::atomic::Ordering::SeqCst),
            4,
            "4 at once, never more"
        );
    }

    #[tokio::test]
    async fn a_failed_record_holds_back_its_group_only() {
        let a = MemArchive::default();
        let r = process(
            batch(vec![
                record("1", "g1", "ok"),
                record("2", "g1", "retry"),
                record("3", "g2", "ok"),
                record("4", "g1", "ok"),
                record("5", "g2", "park"),
                record("6", "g2", "ok"),
            ]),
            FIFO,
            Deadline::none(),
            &a,
            &ByBody::default(),
        )
        .await;
        assert_eq!(failed(&r), vec!["2", "4"]);
        assert_eq!(a.parked.lock().unwrap().len(), 1);
        assert!(a.parked.lock().unwrap()[0].contains("\"reason\":\"never\""));
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_parked_is_retried_with_its_group() {
        let a = MemArchive {
            fail: true,
            ..Default::default()
        };
        let r = process(
            batch(vec![record("1", "g", "park"), record("2", "g", "ok")]),
            FIFO,
            Deadline::none(),
            &a,
            &ByBody::default(),
        )
        .await;
        assert_eq!(failed(&r), vec!["1", "2"]);
    }

    #[tokio::test]
    async fn independent_records_never_hold_each_other_back() {
        let r = process(
            batch(vec![record("1", "g", "retry"), record("2", "g", "ok")]),
            BatchPolicy {
                ordering: Ordering::Independent,
                reserve: Duration::ZERO,
            },
            Deadline::none(),
            &MemArchive::default(),
            &ByBody::default(),
        )
        .await;
        assert_eq!(failed(&r), vec!["1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_record_is_abandoned_at_the_deadline_and_the_rest_reported() {
        let seen = ByBody::default();
        let started = Instant::now();
        let r = process(
            batch(vec![
                record("1", "g1", "ok"),
                record("2", "g2", "slow"),
                record("3", "g3", "ok"),
            ]),
            FIFO,
            Deadline::after(Duration::from_secs(3)),
            &MemArchive::default(),
            &seen,
        )
        .await;
        assert_eq!(failed(&r), vec!["2", "3"]);
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec!["1", "2"],
            "3 was never started"
        );
        // Answered before the deadline, keeping the reserve.
        assert!(started.elapsed() <= Duration::from_millis(2_800));
    }

    #[tokio::test]
    async fn nothing_is_started_when_the_deadline_is_already_near() {
        let r = process(
            batch(vec![record("1", "g1", "ok"), record("2", "g2", "ok")]),
            FIFO,
            Deadline::after(Duration::from_millis(50)),
            &MemArchive::default(),
            &ByBody::default(),
        )
        .await;
        assert_eq!(failed(&r), vec!["1", "2"]);
    }

    #[test]
    fn a_deadline_from_lambda_context_counts_down_from_now() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = Deadline::from_epoch_ms(now_ms + 10_000)
            .remaining()
            .unwrap();
        assert!(d > Duration::from_secs(9) && d <= Duration::from_secs(10));
        assert_eq!(
            Deadline::from_epoch_ms(now_ms - 5).remaining(),
            Some(Duration::ZERO)
        );
    }
}
