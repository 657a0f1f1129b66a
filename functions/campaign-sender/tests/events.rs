//! `events/campaign-sender-sqs.json` is one recipient the campaign scheduler queued on
//! `CampaignSendQueue`, delivered as Lambda's SQS event (standard queue).
use aws_lambda_events::event::sqs::SqsEvent;
use shared::campaigns::SendJob;

const SEND_EVENT: &str = include_str!("../../../events/campaign-sender-sqs.json");

#[test]
fn the_sample_is_a_send_job() {
    let event: SqsEvent = serde_json::from_str(SEND_EVENT).expect("an SQS event");
    assert_eq!(event.records.len(), 1);
    let r = &event.records[0];
    assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
    assert!(
        !r.attributes.contains_key("MessageGroupId"),
        "a standard queue"
    );
    let job: SendJob = serde_json::from_str(r.body.as_deref().unwrap()).expect("a send job");
    assert_eq!(job.run, 1);
    assert_eq!(job.phone, "+16505551234");
    // The body is exactly what the scheduler queues for this job.
    assert_eq!(job.envelope().body, r.body.clone().unwrap());
}
