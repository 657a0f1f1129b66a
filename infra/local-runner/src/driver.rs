//! Drives an SQS queue into a handler the way Lambda's event source mapping does: batches of up
//! to `batch_size`, an `SqsEvent` with the system attributes (e.g. `MessageGroupId`), partial
//! batch failures honoured (failed records stay on the queue and come back; after
//! `maxReceiveCount` receives the queue's redrive policy moves them to the DLQ).
//!
//! What makes a whole batch fail on AWS makes it fail here too: the function's timeout (from
//! `template.yaml`) running out, a panic, or a batch response naming a record that is not in the
//! batch (or an empty id). Several pollers run per queue, so records of different FIFO message
//! groups (SQS never hands out a group that is in flight) and of a standard queue are processed
//! concurrently, as Lambda's concurrent invocations would.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName,
};
use futures::future::BoxFuture;
use shared::sqs_batch::Deadline;

pub type BatchHandler =
    Arc<dyn Fn(SqsEvent, Deadline) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>;

pub struct SqsDriver {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
    /// Lambda leaves a failed record invisible for the queue's visibility timeout (180 s here);
    /// locally we bring it back sooner so retries can be watched.
    pub retry_after: Duration,
    /// The function's `Timeout` in `template.yaml`: an invocation still running then is ended
    /// and its whole batch retried.
    pub timeout: Duration,
    /// Invocations running at once (Lambda's concurrent invocations for this event source).
    pub concurrency: usize,
    pub handler: BatchHandler,
}

/// How one invocation ended, as Lambda sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// The batch response: these record ids failed.
    Answered(HashSet<String>),
    /// The whole batch failed (timeout, panic, invalid batch response).
    Failed(String),
}

/// Runs the handler as Lambda would run one invocation of the batch.
pub async fn invoke(
    handler: &BatchHandler,
    event: SqsEvent,
    timeout: Duration,
    report_batch_item_failures: bool,
) -> Invocation {
    let ids: HashSet<String> = event
        .records
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect();
    // A task of its own: a panic is caught as Lambda catches a crashed runtime.
    let run = tokio::spawn((handler)(event, Deadline::after(timeout)));
    let abort = run.abort_handle();
    let resp = match tokio::time::timeout(timeout, run).await {
        Err(_) => {
            abort.abort();
            return Invocation::Failed(format!("Task timed out after {} s", timeout.as_secs_f64()));
        }
        Ok(Err(e)) if e.is_panic() => {
            return Invocation::Failed("the function panicked (Runtime.ExitError)".into());
        }
        Ok(Err(e)) => return Invocation::Failed(format!("the invocation was cancelled: {e}")),
        Ok(Ok(resp)) => resp,
    };
    if !report_batch_item_failures {
        // Without ReportBatchItemFailures any reported failure fails the whole batch.
        return if resp.batch_item_failures.is_empty() {
            Invocation::Answered(HashSet::new())
        } else {
            Invocation::Failed("the function reported failures".into())
        };
    }
    let mut failed = HashSet::new();
    for f in &resp.batch_item_failures {
        if f.item_identifier.is_empty() || !ids.contains(&f.item_identifier) {
            return Invocation::Failed(format!(
                "the batch response names {:?}, which is not a record of the batch",
                f.item_identifier
            ));
        }
        failed.insert(f.item_identifier.clone());
    }
    Invocation::Answered(failed)
}

impl SqsDriver {
    /// Receives one batch (long polling up to `wait`); empty when nothing came.
    async fn receive(&self, wait: Duration) -> Result<Vec<aws_sdk_sqs::types::Message>, String> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size.clamp(1, 10))
            .wait_time_seconds(wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Runs one received batch as one invocation and settles its records (delete the
    /// processed, bring the failed back after `retry_after`).
    async fn run_batch(&self, messages: Vec<aws_sdk_sqs::types::Message>) -> Result<(), String> {
        let mut records = Vec::with_capacity(messages.len());
        for m in &messages {
            let mut r = SqsMessage::default();
            r.message_id = m.message_id.clone();
            r.receipt_handle = m.receipt_handle.clone();
            r.body = m.body.clone();
            r.md5_of_body = m.md5_of_body.clone();
            r.attributes = m
                .attributes
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect();
            r.event_source = Some("aws:sqs".into());
            r.event_source_arn = Some(self.queue_arn.clone());
            r.aws_region = Some(crate::provision::REGION.into());
            records.push(r);
        }
        let mut event = SqsEvent::default();
        event.records = records;
        let outcome = invoke(
            &self.handler,
            event,
            self.timeout,
            self.report_batch_item_failures,
        )
        .await;
        let (all_fail, failed) = match outcome {
            Invocation::Answered(failed) => (false, failed),
            Invocation::Failed(why) => {
                tracing::error!(queue = %self.queue_url, reason = %why, "invocation failed: the whole batch will be retried");
                (true, HashSet::new())
            }
        };
        let mut delete = Vec::new();
        let mut retry = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let id = m.message_id.clone().unwrap_or_default();
            let handle = m.receipt_handle.clone().unwrap_or_default();
            if all_fail || failed.contains(&id) {
                retry.push(
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(self.retry_after.as_secs() as i32)
                        .build()
                        .expect("entry"),
                );
            } else {
                delete.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                        .expect("entry"),
                );
            }
        }
        if !delete.is_empty() {
            self.client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(delete))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
        }
        if !retry.is_empty() {
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(retry))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
        }
        Ok(())
    }

    /// Polls forever (until aborted): one long poll at a time, and up to `concurrency`
    /// invocations running at once, as Lambda scales its concurrent invocations with the
    /// backlog. For a FIFO queue SQS never hands out a message group with a record in flight,
    /// so concurrent invocations always hold different groups.
    pub fn spawn(self) -> Vec<tokio::task::JoinHandle<()>> {
        let driver = Arc::new(self);
        let slots = Arc::new(tokio::sync::Semaphore::new(driver.concurrency.max(1)));
        vec![tokio::spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            loop {
                while running.try_join_next().is_some() {}
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                match driver.receive(Duration::from_secs(1)).await {
                    Ok(messages) if messages.is_empty() => drop(slot),
                    Ok(messages) => {
                        let d = driver.clone();
                        running.spawn(async move {
                            if let Err(e) = d.run_batch(messages).await {
                                tracing::error!(queue = %d.queue_url, error = %e, "queue driver error");
                            }
                            drop(slot);
                        });
                    }
                    Err(e) => {
                        drop(slot);
                        tracing::error!(queue = %driver.queue_url, error = %e, "queue driver error");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        })]
    }
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::sqs::BatchItemFailure;

    use super::*;

    fn event(ids: &[&str]) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = ids
            .iter()
            .map(|id| {
                let mut r = SqsMessage::default();
                r.message_id = Some(id.to_string());
                r
            })
            .collect();
        e
    }

    fn answering(ids: &'static [&'static str]) -> BatchHandler {
        Arc::new(move |_, _| {
            Box::pin(async move {
                let mut r = SqsBatchResponse::default();
                r.batch_item_failures = ids
                    .iter()
                    .map(|id| {
                        let mut f = BatchItemFailure::default();
                        f.item_identifier = id.to_string();
                        f
                    })
                    .collect();
                r
            })
        })
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn reported_failures_are_the_records_retried() {
        let out = invoke(&answering(&["b"]), event(&["a", "b"]), T, true).await;
        assert_eq!(out, Invocation::Answered(HashSet::from(["b".to_string()])));
    }

    #[tokio::test]
    async fn an_unknown_or_empty_item_id_fails_the_whole_batch() {
        for bad in [&["zzz"][..], &[""][..]] {
            let ids: &'static [&'static str] = Box::leak(bad.to_vec().into_boxed_slice());
            let out = invoke(&answering(ids), event(&["a", "b"]), T, true).await;
            assert!(matches!(out, Invocation::Failed(_)), "{bad:?}: {out:?}");
        }
    }

    #[tokio::test]
    async fn a_panic_fails_the_whole_batch_and_the_poller_lives_on() {
        let h: BatchHandler = Arc::new(|_, _| Box::pin(async { panic!("boom") }));
        let out = invoke(&h, event(&["a"]), T, true).await;
        assert!(matches!(out, Invocation::Failed(ref m) if m.contains("panicked")));
        // The same handler can be invoked again (a panic does not end the poller).
        let out = invoke(&answering(&[]), event(&["a"]), T, true).await;
        assert_eq!(out, Invocation::Answered(HashSet::new()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_function_timeout_fails_the_whole_batch_and_gives_the_handler_its_deadline() {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let s = seen.clone();
        let h: BatchHandler = Arc::new(move |_, deadline: Deadline| {
            *s.lock().unwrap() = deadline.remaining();
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                SqsBatchResponse::default()
            })
        });
        let out = invoke(&h, event(&["a"]), Duration::from_secs(30), true).await;
        assert!(matches!(out, Invocation::Failed(ref m) if m.contains("timed out")));
        assert_eq!(*seen.lock().unwrap(), Some(Duration::from_secs(30)));
    }

    #[tokio::test]
    async fn without_report_batch_item_failures_any_failure_fails_all() {
        let out = invoke(&answering(&["a"]), event(&["a", "b"]), T, false).await;
        assert!(matches!(out, Invocation::Failed(_)));
    }
}
