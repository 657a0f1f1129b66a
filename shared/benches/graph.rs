//! Per-send CPU overhead of the Graph client: request body build (validation included) and
//! response parse. The network is not part of it.
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use shared::meta::graph::parse_send_response;
use shared::meta::outbound::{OutboundContent, OutboundMessage};

fn text() -> OutboundMessage {
    OutboundMessage {
        to: "16505551234".into(),
        reply_to: Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=".into()),
        biz_opaque_callback_data: Some("5c1f0e3a9b2d4c6e8f7a1b2c3d4e5f60".into()),
        content: OutboundContent::Text {
            body: "Yes, it also comes in blue and in green. Want a link?".into(),
            preview_url: false,
        },
    }
}

fn template() -> OutboundMessage {
    serde_json::from_value(serde_json::json!({
        "to": "16505551234",
        "biz_opaque_callback_data": "5c1f0e3a9b2d4c6e8f7a1b2c3d4e5f60",
        "content": {"type": "template", "name": "order_update", "language": "en_US", "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Order 4821"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Sheena"}, {"type": "text", "text": "4821"}, {"type": "text", "text": "Friday"}]},
            {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "TRACK-4821"}]}
        ]}
    }))
    .expect("template message")
}

const RESPONSE: &[u8] = br#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA","message_status":"accepted"}]}"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("graph_send_cpu");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    let t = text();
    g.bench_function("text: validate + build + parse", |b| {
        b.iter(|| {
            black_box(&t).validate().unwrap();
            let body = black_box(&t).to_graph_bytes();
            let a = parse_send_response(black_box(RESPONSE)).unwrap();
            black_box((body, a))
        })
    });
    let tpl = template();
    g.bench_function("template: validate + build + parse", |b| {
        b.iter(|| {
            black_box(&tpl).validate().unwrap();
            let body = black_box(&tpl).to_graph_bytes();
            let a = parse_send_response(black_box(RESPONSE)).unwrap();
            black_box((body, a))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
