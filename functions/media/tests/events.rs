//! The sample event `events/media-sqs.json` is what the inbound function hands to the media
//! queue for an image message of the sender of `events/webhook-text.json`, delivered as Lambda's
//! SQS event; a job the media function cannot read is parked, never retried.
use std::sync::Mutex;

use aws_lambda_events::event::sqs::SqsEvent;
use shared::archive::{ArchiveError, RawArchive};
use shared::media::{MEDIA_JOB_VERSION, MediaJob};
use shared::store::keys;

const MEDIA_EVENT: &str = include_str!("../../../events/media-sqs.json");

#[test]
fn the_sample_is_an_sqs_event_carrying_a_media_job() {
    let event: SqsEvent = serde_json::from_str(MEDIA_EVENT).expect("an SQS event");
    assert_eq!(event.records.len(), 1);
    let r = &event.records[0];
    assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
    let job = MediaJob::from_body(r.body.as_deref().unwrap()).expect("a media job");
    assert_eq!(job.v, MEDIA_JOB_VERSION);
    let customer = keys::customer_id_for("wa:16505551234");
    assert_eq!(job.customer_id, customer);
    assert_eq!(
        job.msg_pk,
        keys::conversation_pk(&job.phone_number_id, &customer)
    );
    assert_eq!(job.msg_sk, keys::message_sk(1_749_416_383_000, &job.wamid));
    // What the inbound function writes is what the media function reads.
    assert_eq!(MediaJob::from_body(&job.to_body()).unwrap(), job);
}

#[test]
fn jobs_of_another_version_or_shape_are_refused_with_the_reason() {
    assert!(
        MediaJob::from_body(r#"{"v":2,"media_id":"1"}"#)
            .unwrap_err()
            .contains("not a media job")
    );
    let mut job = MediaJob::from_body(
        &serde_json::from_str::<SqsEvent>(MEDIA_EVENT)
            .unwrap()
            .records[0]
            .body
            .clone()
            .unwrap(),
    )
    .unwrap();
    job.v = 9;
    assert!(
        MediaJob::from_body(&job.to_body())
            .unwrap_err()
            .contains("version 9")
    );
}

#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl RawArchive for Recording {
    async fn archive(&self, prefix: &str, reason: &str, _b: &[u8]) -> Result<String, ArchiveError> {
        self.0.lock().unwrap().push(format!("{prefix}:{reason}"));
        Ok(prefix.into())
    }
}

struct NoSecrets;

#[async_trait::async_trait]
impl shared::secrets::SecretSource for NoSecrets {
    async fn secret_string(&self, id: &str) -> Result<String, shared::secrets::SecretError> {
        Err(shared::secrets::SecretError::Unavailable {
            id: id.into(),
            reason: "not in this test".into(),
        })
    }
}

/// A media function whose clients are never reached (nothing listens on their endpoint).
fn offline_app() -> media::MediaApp {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    media::MediaApp {
        store: shared::store::Store::new(ddb, "table", 4),
        bucket: shared::media::MediaBucket::new(s3, "bucket"),
        graph: std::sync::Arc::new(
            shared::meta::graph::GraphClient::new(shared::meta::graph::GraphConfig::default())
                .unwrap(),
        ),
        meta_secrets: std::sync::Arc::new(shared::secrets::CachedSecret::new(
            std::sync::Arc::new(NoSecrets),
            "meta",
            std::time::Duration::from_secs(60),
        )),
        now_ms: || 0,
        max_attempts: media::MAX_ATTEMPTS,
    }
}

#[tokio::test]
async fn an_unreadable_job_is_parked_and_acknowledged() {
    let mut event: SqsEvent = serde_json::from_str(MEDIA_EVENT).unwrap();
    event.records[0].body = Some("not a job".into());
    let archive = Recording::default();
    let resp = offline_app()
        .handle_batch(
            &archive,
            event,
            shared::sqs_batch::Deadline::after(std::time::Duration::from_secs(30)),
        )
        .await;
    assert!(resp.batch_item_failures.is_empty());
    let parked = archive.0.lock().unwrap().clone();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].starts_with("parked:not a media job"),
        "{parked:?}"
    );
}
