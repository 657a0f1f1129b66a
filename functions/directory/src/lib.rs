//! Directory function: CRM directory events (EventBridge rule → SQS) applied to the directory.
//!
//! The queue is a standard queue (EventBridge does not keep order anyway): each record stands
//! alone, last-writer-wins on `updated_at`, deduped on `event_id`. An event that can never be
//! applied (not an EventBridge envelope, unknown detail-type, invalid detail) is parked in S3
//! and acknowledged; a storage failure is reported as a batch item failure and retried.
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use shared::archive::RawArchive;
use shared::crm_events::DirectoryChange;
use shared::directory;
use shared::phone::PhoneNormalizer;
use shared::sqs_batch::{self, BatchPolicy, Deadline, Ordering, RecordError, RecordHandler};
use shared::store::Store;

/// A standard queue: each event stands alone; 1 s is kept to answer.
pub const BATCH_POLICY: BatchPolicy = BatchPolicy {
    ordering: Ordering::Independent,
    reserve: std::time::Duration::from_secs(1),
};

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
            .map_err(|e| {
                if e.is_permanent() {
                    Failure::Park(e.to_string())
                } else {
                    Failure::Retry(e.to_string())
                }
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
        deadline: Deadline,
    ) -> SqsBatchResponse {
        sqs_batch::process(event, BATCH_POLICY, deadline, archive, self).await
    }
}

#[async_trait::async_trait]
impl RecordHandler for DirectoryApp {
    async fn handle(&self, record: &SqsMessage) -> Result<(), RecordError> {
        self.apply_body(record.body.as_deref().unwrap_or_default())
            .await
            .map_err(|f| match f {
                Failure::Retry(m) => RecordError::Retry(m),
                Failure::Park(m) => RecordError::Park(m),
            })
    }
}
