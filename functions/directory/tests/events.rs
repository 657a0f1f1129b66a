//! The directory Lambda's input, `events/directory-sqs.json`, read as the Lambda runtime and the
//! function read it: SQS event → EventBridge envelope → validated `DirectoryChange`. Applying the
//! change needs DynamoDB and is covered by the integration tests.
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use directory::BusEnvelope;
use serde_json::Value;
use shared::crm_events::{CRM_SOURCE, DirectoryChange, DirectoryKind, DirectoryOp};
use shared::phone::PhoneNormalizer;

const DIRECTORY_EVENT: &str = include_str!("../../../events/directory-sqs.json");
const DETAIL: &str = include_str!("../../../events/crm-contact-created-detail.json");
const META_BODY: &str = include_str!("../../../events/webhook-text.json");

fn body() -> String {
    let ev: SqsEvent = serde_json::from_str(DIRECTORY_EVENT).expect("sample is an SQS event");
    assert_eq!(ev.records.len(), 1);
    let r = &ev.records[0];
    assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
    assert!(r.message_id.is_some());
    r.body.clone().expect("record has a body")
}

#[test]
fn body_is_an_eventbridge_envelope_from_the_crm() {
    let body = body();
    let eb: EventBridgeEvent<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(eb.detail_type, "contact_created");
    assert_eq!(eb.source, CRM_SOURCE);
    assert_eq!(eb.region.as_deref(), Some("us-east-1"));

    let env: BusEnvelope = serde_json::from_str(&body).unwrap();
    assert_eq!(env.source, CRM_SOURCE);
    assert_eq!(env.detail_type, "contact_created");
    assert!(env.id.is_some());
    let detail: Value = serde_json::from_str(DETAIL).unwrap();
    assert_eq!(
        env.detail, detail,
        "detail is events/crm-contact-created-detail.json"
    );
}

#[test]
fn detail_parses_as_a_directory_change() {
    let env: BusEnvelope = serde_json::from_str(&body()).unwrap();
    let c = DirectoryChange::parse(&env.detail_type, &env.detail).unwrap();
    assert_eq!(c.kind, DirectoryKind::Contact);
    assert_eq!(c.op, DirectoryOp::Upsert);
    assert_eq!(c.event_id, "crm:contact_created:42:1749412800");
    assert_eq!(c.updated_at_ms, 1_749_412_800_000);
    assert_eq!(c.record.id, "42");
    assert_eq!(c.record.name.as_deref(), Some("Sheena Nelson"));
    assert_eq!(c.record.phone.as_deref(), Some("+1 650-555-1234"));
    assert_eq!(c.record.correlation_id, None);
}

/// The samples tell one story: the CRM contact is the sender of `events/webhook-text.json`.
#[test]
fn contact_matches_the_webhook_sample_sender() {
    let env: BusEnvelope = serde_json::from_str(&body()).unwrap();
    let c = DirectoryChange::parse(&env.detail_type, &env.detail).unwrap();
    let crm = PhoneNormalizer::new("US")
        .unwrap()
        .to_e164(c.record.phone.as_deref().unwrap())
        .unwrap();
    let meta: Value = serde_json::from_str(META_BODY).unwrap();
    let wa_id = meta["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
        .as_str()
        .unwrap();
    let sender = PhoneNormalizer::from_wa_id(wa_id).unwrap();
    assert_eq!(crm, sender);
    assert_eq!(
        PhoneNormalizer::canonical_key(&crm),
        PhoneNormalizer::canonical_key(&sender)
    );
}
