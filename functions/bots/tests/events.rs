//! The sample event `events/bots-sqs.json` is what the inbound function hands to the bots
//! queue for the message of `events/webhook-text.json`, delivered as Lambda's SQS FIFO event.
use aws_lambda_events::event::sqs::SqsEvent;
use shared::bots::job::{BOT_JOB_VERSION, BotEvent, BotJob};
use shared::store::keys;

const BOTS_EVENT: &str = include_str!("../../../events/bots-sqs.json");
const WEBHOOK_TEXT: &str = include_str!("../../../events/webhook-text.json");

#[test]
fn the_sample_is_the_bot_job_of_the_sample_message() {
    let event: SqsEvent = serde_json::from_str(BOTS_EVENT).expect("an SQS event");
    assert_eq!(event.records.len(), 1);
    let r = &event.records[0];
    assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
    let job = BotJob::from_body(r.body.as_deref().unwrap()).expect("a bot job");
    assert_eq!(job.v, BOT_JOB_VERSION);
    assert_eq!(job.customer_id, keys::customer_id_for("wa:16505551234"));
    let webhook: serde_json::Value = serde_json::from_str(WEBHOOK_TEXT).unwrap();
    let value = &webhook["entry"][0]["changes"][0]["value"];
    let m = &value["messages"][0];
    assert_eq!(
        job.phone_number_id,
        value["metadata"]["phone_number_id"].as_str().unwrap()
    );
    let BotEvent::Message {
        wamid,
        message_type,
        at_ms,
        text,
        ..
    } = &job.event
    else {
        panic!("a message job")
    };
    assert_eq!(wamid, m["id"].as_str().unwrap());
    assert_eq!(message_type, "text");
    assert_eq!(
        *at_ms,
        m["timestamp"].as_str().unwrap().parse::<i64>().unwrap() * 1000
    );
    assert_eq!(text.as_deref(), m["text"]["body"].as_str());
    // The FIFO attributes are the job's own: one group per conversation, one entry per message.
    let env = job.envelope();
    assert_eq!(r.attributes["MessageGroupId"], env.group_id);
    assert_eq!(r.attributes["MessageDeduplicationId"], env.dedupe_id);
}

#[test]
fn anything_else_is_refused_with_the_reason() {
    assert!(
        BotJob::from_body("{}")
            .unwrap_err()
            .contains("not a bot job")
    );
    let mut job = BotJob::from_body(
        serde_json::from_str::<SqsEvent>(BOTS_EVENT)
            .unwrap()
            .records[0]
            .body
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    job.v = 7;
    assert!(
        BotJob::from_body(&job.to_body())
            .unwrap_err()
            .contains("version 7")
    );
}
