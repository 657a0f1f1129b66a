//! The inbound Lambda fed with `events/inbound-sqs.json` as the Lambda runtime would deliver it,
//! with an in-memory processor and archive: no AWS involved. The sample's body is also checked
//! against what the webhook really queues for `events/webhook-text.json`, so it cannot go stale.
use std::sync::Mutex;

use aws_lambda_events::event::sqs::SqsEvent;
use inbound::{ProcessError, Processor, handle_batch};
use shared::archive::{ArchiveError, RawArchive};
use shared::envelope::{self, Envelope, EnvelopeKind};
use shared::meta::webhook::{MessageContent, RawMessage, parse_notification};
use shared::sqs_batch::Deadline;
use std::time::Duration;

const INBOUND_EVENT: &str = include_str!("../../../events/inbound-sqs.json");
const META_BODY: &str = include_str!("../../../events/webhook-text.json");
const WAMID: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
/// `received_at_ms` of the sample envelope.
const RECEIVED_AT_MS: i64 = 1_749_416_384_000;

#[derive(Default)]
struct RecordingProcessor(Mutex<Vec<Envelope>>);

#[async_trait::async_trait]
impl Processor for RecordingProcessor {
    async fn process(&self, envelope: &Envelope) -> Result<(), ProcessError> {
        self.0.lock().unwrap().push(envelope.clone());
        Ok(())
    }
}

#[derive(Default)]
struct RecordingArchive(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl RawArchive for RecordingArchive {
    async fn archive(
        &self,
        prefix: &str,
        reason: &str,
        _body: &[u8],
    ) -> Result<String, ArchiveError> {
        self.0.lock().unwrap().push(format!("{prefix}: {reason}"));
        Ok(format!("{prefix}/key"))
    }
}

fn event() -> SqsEvent {
    serde_json::from_str(INBOUND_EVENT).expect("sample is an SQS event")
}

#[test]
fn sample_is_a_fifo_sqs_event() {
    let ev = event();
    assert_eq!(ev.records.len(), 1);
    let r = &ev.records[0];
    assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
    assert!(r.event_source_arn.as_deref().unwrap().ends_with(".fifo"));
    assert_eq!(r.aws_region.as_deref(), Some("us-east-1"));
    for attr in [
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SequenceNumber",
        "MessageGroupId",
        "SenderId",
        "MessageDeduplicationId",
        "ApproximateFirstReceiveTimestamp",
    ] {
        assert!(r.attributes.contains_key(attr), "missing attribute {attr}");
    }
}

#[test]
fn sample_is_what_the_webhook_queues() {
    let n = parse_notification(META_BODY.as_bytes()).unwrap();
    let split = envelope::split(&n, META_BODY, RECEIVED_AT_MS);
    assert!(split.unparsed.is_empty());
    assert_eq!(split.queued.len(), 1);
    let q = &split.queued[0];
    let ev = event();
    let r = &ev.records[0];
    assert_eq!(r.body.as_deref(), Some(q.body.as_str()), "body");
    assert_eq!(r.attributes["MessageGroupId"], q.group_id);
    assert_eq!(r.attributes["MessageDeduplicationId"], q.dedupe_id);
    // What SQS computes for the body.
    assert_eq!(r.md5_of_body.as_deref().map(str::len), Some(32));
}

#[tokio::test]
async fn batch_is_processed_without_failures() {
    let processor = RecordingProcessor::default();
    let archive = RecordingArchive::default();
    let resp = handle_batch(
        &processor,
        &archive,
        event(),
        Deadline::after(Duration::from_secs(30)),
    )
    .await;
    assert!(resp.batch_item_failures.is_empty());
    assert!(archive.0.lock().unwrap().is_empty(), "nothing parked");

    let seen = processor.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let env = &seen[0];
    assert_eq!(env.kind, EnvelopeKind::Message);
    assert_eq!(env.waba_id, "102290129340398");
    assert_eq!(env.phone_number_id.as_deref(), Some("106540352242922"));
    assert_eq!(env.display_phone_number.as_deref(), Some("15550783881"));
    assert_eq!(env.received_at_ms, RECEIVED_AT_MS);
    let contact = env.contact.as_ref().expect("sender's contact");
    assert_eq!(contact.wa_id.as_deref(), Some("16505551234"));
    assert_eq!(
        contact.profile.as_ref().and_then(|p| p.name.as_deref()),
        Some("Sheena Nelson")
    );
    let m = RawMessage(env.item.clone()).parse().unwrap();
    assert_eq!(m.id, WAMID);
    assert_eq!(m.from.as_deref(), Some("16505551234"));
    assert_eq!(m.timestamp, 1_749_416_383);
    assert!(
        matches!(m.content, MessageContent::Text { .. }),
        "{:?}",
        m.content
    );
}

#[tokio::test]
async fn an_unreadable_body_is_parked_not_retried() {
    let mut ev = event();
    ev.records[0].body = Some("not an envelope".into());
    let processor = RecordingProcessor::default();
    let archive = RecordingArchive::default();
    let resp = handle_batch(
        &processor,
        &archive,
        ev,
        Deadline::after(Duration::from_secs(30)),
    )
    .await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(archive.0.lock().unwrap().len(), 1);
    assert!(processor.0.lock().unwrap().is_empty());
}
