//! CPU per CRM event notification (budget: ≤ 10 µs on this machine): parse the EventBridge
//! envelope of an `after_invoice_added` as the queue delivers it, find the active mappings
//! that answer it among 50, render the template's parameters from the event (money and date
//! formats included) and build the Graph API request body.
//!
//! `cargo bench -p shared --bench notifications` (add `-- --quick` for a fast run).
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use shared::campaigns::params;
use shared::meta::outbound::{
    OutboundContent, OutboundMessage, TemplateComponent, TemplateMessage, TemplateParameter,
};
use shared::notifications::render::EventFields;
use shared::notifications::{self, HOOKS};

struct Mapping {
    active: bool,
    hooks: Vec<String>,
    category: String,
    template: TemplateMessage,
}

fn text(t: &str) -> TemplateParameter {
    TemplateParameter::Text {
        text: t.into(),
        parameter_name: None,
    }
}

fn mappings() -> Vec<Mapping> {
    (0..50)
        .map(|i| Mapping {
            active: i % 7 != 0,
            hooks: vec![HOOKS[i % HOOKS.len()].to_string()],
            category: "invoice".into(),
            template: TemplateMessage {
                name: format!("tpl_{i}"),
                language: "en_US".into(),
                components: vec![
                    TemplateComponent::Header {
                        parameters: vec![text("{invoice.number}")],
                    },
                    TemplateComponent::Body {
                        parameters: vec![
                            text("{contact.firstname|there}"),
                            text("{invoice.number}"),
                            text("{invoice.total:money}"),
                            text("{invoice.duedate:date}"),
                        ],
                    },
                ],
            },
        })
        .collect()
}

fn body() -> String {
    let detail = json!({"event_id": "crm:after_invoice_added:118:1764590400",
        "record": {"id": 118, "number": "INV-000118", "total": "1250.00", "currency": "USD", "duedate": "2026-12-31"},
        "contact": {"id": 42, "firstname": "Sheena", "lastname": "Nelson", "phonenumber": "+1 650-555-1234"},
        "staff": {"id": 3, "name": "Rui Costa", "phonenumber": "+351 912 345 678"}});
    json!({"version": "0", "id": "0d2c2a42-7a63-4d3e-9d7e-3f7d7f1f2a11", "detail-type": "after_invoice_added",
           "source": "crm", "account": "123456789012", "time": "2026-12-01T12:00:00Z", "region": "us-east-1",
           "resources": [], "detail": detail})
    .to_string()
}

/// One notification's CPU path; answers the request bodies built.
fn notify(body: &str, mappings: &[Mapping]) -> Vec<Vec<u8>> {
    let env: Value = serde_json::from_str(body).expect("envelope");
    let hook = env["detail-type"].as_str().expect("hook");
    let detail = &env["detail"];
    let event_id = detail["event_id"].as_str().expect("event id");
    let mut out = Vec::new();
    for o in notifications::occurrences(hook, event_id, detail) {
        for m in mappings
            .iter()
            .filter(|m| notifications::answers(m.active, &m.hooks, &m.category, &o))
        {
            let to =
                notifications::recipient(o.detail, o.record_root, notifications::SendTo::Contact)
                    .and_then(|p| p.phone)
                    .expect("phone");
            let t = params::render(&m.template, &EventFields::new(o.detail, o.record_root))
                .expect("rendered");
            let msg = OutboundMessage {
                to: to.chars().filter(char::is_ascii_digit).collect(),
                reply_to: None,
                biz_opaque_callback_data: Some("notif".into()),
                content: OutboundContent::Template(t),
            };
            out.push(msg.to_graph_bytes());
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let body = body();
    let mappings = mappings();
    let sent = notify(&body, &mappings);
    assert_eq!(sent.len(), 5, "the active invoice mappings answer");
    let first: Value = serde_json::from_slice(&sent[0]).unwrap();
    assert_eq!(
        first["template"]["components"][1]["parameters"][2]["text"],
        "1,250.00"
    );
    let mut g = c.benchmark_group("notifications");
    g.throughput(Throughput::Elements(sent.len() as u64));
    g.bench_function("event_to_5_request_bodies", |b| {
        b.iter(|| black_box(notify(black_box(&body), &mappings)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
