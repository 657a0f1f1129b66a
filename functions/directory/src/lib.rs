//! Directory function: CRM directory events (EventBridge rule → SQS) applied to the directory.
//!
//! The queue is a standard queue (EventBridge does not keep order anyway): each record stands
//! alone, last-writer-wins on `updated_at`, deduped on `event_id`. An event that can never be
//! applied (not an EventBridge envelope, unknown detail-type, invalid detail) is parked in S3
//! and acknowledged; a storage failure is reported as a batch item failure and retried.
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::Deserialize;
use shared::archive::RawArchive;
use shared::crm_events::DirectoryChange;
use shared::directory;
use shared::phone::PhoneNormalizer;
use shared::store::{Store, StoreError};

/// The EventBridge envelope as delivered to an SQS target.
#[derive(Debug, Deserialize)]
pub struct BusEnvelope {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: serde_json::Value,
}

pub struct DirectoryApp {
    pub store: Store,
    pub phones: PhoneNormalizer,
    pub now_ms: fn() -> i64,
}

pub enum Failure {
    Retry(String),
    Park(String),
}

impl DirectoryApp {
    pub async fn apply_body(&self, body: &str) -> Result<(), Failure> {
        let env: BusEnvelope = serde_json::from_str(body)
            .map_err(|e| Failure::Park(format!("not an EventBridge envelope: {e}")))?;
        if env.source != shared::crm_events::CRM_SOURCE {
            return Err(Failure::Park(format!(
                "source {:?} is not the CRM",
                env.source
            )));
        }
        let change = DirectoryChange::parse(&env.detail_type, &env.detail)
            .map_err(|e| Failure::Park(e.to_string()))?;
        let outcome = directory::apply(&self.store, &self.phones, &change, (self.now_ms)())
            .await
            .map_err(|e| match e {
                StoreError::Dynamo(m) => Failure::Retry(m),
                StoreError::Corrupt(m) => Failure::Park(m),
            })?;
        tracing::info!(
            event_id = %change.event_id,
            kind = change.kind.as_str(),
            id = %change.record.id,
            outcome = ?outcome,
            "directory event"
        );
        Ok(())
    }

    pub async fn handle_batch(
        &self,
        archive: &dyn RawArchive,
        event: SqsEvent,
    ) -> SqsBatchResponse {
        let mut failures = Vec::new();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let body = record.body.unwrap_or_default();
            let retry = match self.apply_body(&body).await {
                Ok(()) => false,
                Err(Failure::Retry(reason)) => {
                    tracing::warn!(message_id = %id, reason = %reason, "directory event will be retried");
                    true
                }
                Err(Failure::Park(reason)) => {
                    let parked =
                        serde_json::json!({"message_id": id, "reason": reason, "body": body});
                    match archive
                        .archive("parked", &reason, parked.to_string().as_bytes())
                        .await
                    {
                        Ok(key) => {
                            tracing::error!(message_id = %id, key = %key, reason = %reason, "directory event parked");
                            false
                        }
                        Err(e) => {
                            tracing::error!(message_id = %id, error = %e, "could not park; retrying");
                            true
                        }
                    }
                }
            };
            if retry {
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
                failures.push(f);
            }
        }
        let mut resp = SqsBatchResponse::default();
        resp.batch_item_failures = failures;
        resp
    }
}
