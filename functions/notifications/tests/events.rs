//! The notifications Lambda's input, `events/notifications-sqs.json`, read as the Lambda runtime
//! and the function read it: SQS event → EventBridge envelope of a CRM hook → the occurrence a
//! mapping answers, its recipients and its rendered parameters. Sending needs DynamoDB and the
//! Graph API and is covered by `tests/notifications.rs`.
use ::notifications::{BusEnvelope, render};
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;
use shared::meta::outbound::{TemplateComponent, TemplateMessage, TemplateParameter};
use shared::notifications::{self as hooks, HOOKS, SendTo};
use shared::phone::PhoneNormalizer;

const EVENT: &str = include_str!("../../../events/notifications-sqs.json");
const DETAIL: &str = include_str!("../../../events/crm-after-invoice-added-detail.json");

fn envelope() -> BusEnvelope {
    let ev: SqsEvent = serde_json::from_str(EVENT).expect("sample is an SQS event");
    assert_eq!(ev.records.len(), 1);
    let body = ev.records[0].body.as_deref().expect("record has a body");
    serde_json::from_str(body).expect("an EventBridge envelope")
}

#[test]
fn body_is_a_crm_hook_event() {
    let env = envelope();
    assert_eq!(env.source, shared::crm_events::CRM_SOURCE);
    assert!(HOOKS.contains(&env.detail_type.as_str()));
    assert_eq!(env.time.as_deref(), Some("2026-12-01T12:00:00Z"));
    let detail: Value = serde_json::from_str(DETAIL).unwrap();
    assert_eq!(
        env.detail, detail,
        "detail is events/crm-after-invoice-added-detail.json"
    );
}

#[test]
fn the_invoice_reaches_its_contact_with_rendered_parameters() {
    let env = envelope();
    let o = &hooks::occurrences(&env.detail_type, "ev", &env.detail)[0];
    assert_eq!(o.record_root, Some("invoice"));
    let contact = hooks::recipient(o.detail, o.record_root, SendTo::Contact).unwrap();
    assert_eq!(contact.name.as_deref(), Some("Sheena Nelson"));
    let phones = PhoneNormalizer::new("US").unwrap();
    assert_eq!(
        phones.to_e164(contact.phone.as_deref().unwrap()).unwrap(),
        "+16505551234"
    );
    let t = TemplateMessage {
        name: "invoice_ready".into(),
        language: "en_US".into(),
        components: vec![TemplateComponent::Body {
            parameters: [
                "{contact.firstname}",
                "{invoice.number}",
                "{invoice.total:money}",
                "{invoice.duedate:date}",
            ]
            .into_iter()
            .map(|t| TemplateParameter::Text {
                text: t.into(),
                parameter_name: None,
            })
            .collect(),
        }],
    };
    let r = render(&t, o).unwrap();
    let TemplateComponent::Body { parameters } = &r.components[0] else {
        panic!("body")
    };
    let texts: Vec<String> = parameters
        .iter()
        .map(|p| match p {
            TemplateParameter::Text { text, .. } => text.clone(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(texts, ["Sheena", "INV-000118", "1,250.00", "31 Dec 2026"]);
}
