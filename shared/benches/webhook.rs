//! CPU cost of the hot paths, without AWS:
//! - `webhook_cpu`: what the webhook does with a POST before queuing (signature check, parse,
//!   split into envelopes), for Meta's 1-message sample and for a 1000-message batch (Meta's maximum);
//! - `inbound_prepare`: what the inbound consumer does with one envelope before DynamoDB
//!   (envelope, message, phone keys, identification, the message item in DynamoDB's format).
//!
//! `make bench`, or quickly: `cargo bench -p shared --bench webhook -- --quick`.
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shared::envelope::{self, Envelope};
use shared::identify::{self, Identity};
use shared::meta::signature;
use shared::meta::webhook::{RawMessage, parse_notification};
use shared::phone::PhoneNormalizer;
use shared::store::keys;
use shared::store::model::{Direction, MessageItem, PhoneIndex};

const SAMPLE: &str = include_str!("../../events/webhook-text.json");
const APP_SECRET: &[u8] = b"dev-app-secret";
const NOW_MS: i64 = 1_749_416_384_000;

/// One entry, one change, `n` text messages from `n` different customers (distinct wamids),
/// with their `n` contacts, as Meta batches them.
fn batch(n: usize) -> String {
    let mut contacts = Vec::with_capacity(n);
    let mut messages = Vec::with_capacity(n);
    for i in 0..n {
        let wa_id = format!("1650555{i:04}");
        contacts.push(
            serde_json::json!({"profile": {"name": format!("Customer {i}")}, "wa_id": wa_id}),
        );
        messages.push(serde_json::json!({
            "from": wa_id,
            "id": format!("wamid.HBgLMTY1MDU1NTAwMDAVAgASGBQzQTRBNjU5OUFFRTAzODEw{i:06}A="),
            "timestamp": (1_749_416_383 + i as i64).to_string(),
            "type": "text",
            "text": {"body": format!("Message number {i}: does it come in another color?")}
        }));
    }
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                    "contacts": contacts,
                    "messages": messages
                }
            }]
        }]
    })
    .to_string()
}

/// The webhook's CPU work for one POST; returns the number of envelopes.
fn webhook_cpu(body: &[u8], sig: &str) -> usize {
    signature::verify(APP_SECRET, body, Some(sig)).expect("signed");
    let n = parse_notification(body).expect("parses");
    let text = std::str::from_utf8(body).expect("utf-8");
    let split = envelope::split(&n, text, NOW_MS);
    debug_assert!(split.unparsed.is_empty());
    split.queued.len()
}

fn bench_webhook(c: &mut Criterion) {
    let mut g = c.benchmark_group("webhook_cpu");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    for (label, body) in [
        ("1_message", SAMPLE.to_string()),
        ("1000_messages", batch(1000)),
    ] {
        let sig = signature::sign(APP_SECRET, body.as_bytes());
        let expected = if label == "1_message" { 1 } else { 1000 };
        assert_eq!(webhook_cpu(body.as_bytes(), &sig), expected);
        g.throughput(Throughput::Elements(expected as u64));
        g.bench_with_input(BenchmarkId::from_parameter(label), &body, |b, body| {
            b.iter(|| webhook_cpu(black_box(body.as_bytes()), black_box(&sig)))
        });
    }
    g.finish();

    // Where the time of the big batch goes, stage by stage.
    let body = batch(1000);
    let bytes = body.as_bytes();
    let sig = signature::sign(APP_SECRET, bytes);
    let parsed = parse_notification(bytes).unwrap();
    let mut g = c.benchmark_group("webhook_cpu_stages_1000");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    g.bench_function("verify", |b| {
        b.iter(|| signature::verify(APP_SECRET, black_box(bytes), Some(black_box(&sig))))
    });
    g.bench_function("parse", |b| {
        b.iter(|| parse_notification(black_box(bytes)).unwrap())
    });
    g.bench_function("split", |b| {
        b.iter(|| envelope::split(black_box(&parsed), black_box(&body), NOW_MS))
    });
    g.finish();
}

fn directory_entries(key: &str) -> Vec<PhoneIndex> {
    let e = |kind: &str, id: &str, converted: bool| PhoneIndex {
        pk: keys::phone_pk(key),
        sk: format!("{kind}#{id}"),
        kind: kind.into(),
        id: id.into(),
        name: Some(format!("{kind} {id}")),
        converted,
    };
    vec![
        e("staff", "3", false),
        e("lead", "12", true),
        e("contact", "42", false),
        e("lead", "17", false),
    ]
}

/// The inbound consumer's CPU work for one message envelope, up to the DynamoDB item.
fn inbound_prepare(body: &str, directory: &[PhoneIndex]) -> HashMap<String, AttributeValue> {
    let env = Envelope::from_body(body).expect("envelope");
    let pnid = env.phone_number_id.as_deref().expect("phone_number_id");
    let m = RawMessage(env.item.clone()).parse().expect("message");
    let wa_id = m.from.as_deref().expect("from");
    let e164 = PhoneNormalizer::from_wa_id(wa_id).expect("wa_id");
    let key = PhoneNormalizer::canonical_key(&e164);
    let identity = identify::choose(directory);
    debug_assert!(matches!(identity, Identity::Known { .. }));
    let customer_id = keys::customer_id_for(&key);
    let ts = m.timestamp * 1000;
    let item = MessageItem {
        pk: keys::conversation_pk(pnid, &customer_id),
        sk: keys::message_sk(ts, &m.id),
        wamid: m.id.clone(),
        conversation_id: keys::conversation_id(pnid, &customer_id),
        direction: Direction::Inbound,
        kind: m.kind.clone(),
        timestamp: ts,
        summary: shared::store::dynamo::truncate(&m.content.summary(), 1000),
        raw: env.item.get().to_string(),
        source: "inbound".into(),
        context_wamid: m.context.as_ref().and_then(|c| c.id.clone()),
        staff_id: None,
        stored_at: NOW_MS,
        media_id: None,
        media_state: None,
        media_error: None,
    };
    serde_dynamo::to_item(&item).expect("item serialises")
}

fn bench_inbound(c: &mut Criterion) {
    let n = parse_notification(SAMPLE.as_bytes()).unwrap();
    let split = envelope::split(&n, SAMPLE, NOW_MS);
    let body = split.queued[0].body.clone();
    let directory = directory_entries("+16505551234");
    let item = inbound_prepare(&body, &directory);
    assert!(item.contains_key("pk") && item.contains_key("raw"));

    let mut g = c.benchmark_group("inbound_prepare");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_message", |b| {
        b.iter(|| inbound_prepare(black_box(&body), black_box(&directory)))
    });
    g.finish();
}

criterion_group!(benches, bench_webhook, bench_inbound);
criterion_main!(benches);
