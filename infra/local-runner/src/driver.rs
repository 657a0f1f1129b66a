//! Drives an SQS queue into a handler the way Lambda's event source mapping does: batches of up
//! to `batch_size`, an `SqsEvent` with the system attributes (e.g. `MessageGroupId`), partial
//! batch failures honoured (failed records stay on the queue and come back; after
//! `maxReceiveCount` receives the queue's redrive policy moves them to the DLQ).
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName,
};
use futures::future::BoxFuture;

pub type BatchHandler = Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>;

pub struct SqsDriver {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
    /// Lambda leaves a failed record invisible for the queue's visibility timeout (180 s here);
    /// locally we bring it back sooner so retries can be watched.
    pub retry_after: Duration,
    pub handler: BatchHandler,
}

impl SqsDriver {
    /// Receives one batch and runs it; returns how many records it handled.
    pub async fn poll_once(&self, wait: Duration) -> Result<usize, String> {
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
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
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
        let resp = (self.handler)(event).await;
        let failed: std::collections::HashSet<String> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        let all_fail = !self.report_batch_item_failures && !failed.is_empty();
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
        Ok(messages.len())
    }

    /// Polls forever (until the task is aborted).
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.poll_once(Duration::from_secs(1)).await {
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(queue = %self.queue_url, error = %e, "queue driver error");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        })
    }
}
