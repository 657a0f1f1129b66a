//! Privacy: a forgotten customer leaves nothing behind that any route can read back.
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::fake_graph::FakeGraph;
use integration_tests::*;
use serde_json::{Value, json};
use shared::store::keys::AliasKind;

const PNID: &str = "106540352242922";

fn image_payload(from: &str, wamid: &str, media_id: &str, ts: i64) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": "Fay"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": ts.to_string(), "type": "image",
            "image": {"id": media_id, "mime_type": "image/jpeg", "sha256": "x"}}]}}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forgotten_customer_cannot_be_read_back_through_any_route() {
    let graph = FakeGraph::start().await;
    let t = start_with(options_with_graph(&graph, 2000)).await;
    let tap = t.tap_our_events().await;
    let ts = chrono::Utc::now().timestamp();
    graph.set_media("7701", "image/jpeg", b"a private photo", None);
    t.post_signed(&text_payload(
        PNID,
        "15559870001",
        "Fay",
        "wamid.f1",
        ts,
        "my address is ...",
    ))
    .await;
    t.post_signed(&image_payload("15559870001", "wamid.f2", "7701", ts + 1))
        .await;
    // Someone else, who must be left alone.
    t.post_signed(&text_payload(
        PNID,
        "15559870002",
        "Gus",
        "wamid.g1",
        ts,
        "hello",
    ))
    .await;
    let chat = t.token(&["whatsapp_chat:view"]);
    let conv = t.conversation_of("15559870001").await;
    let conv_id = conv["id"].as_str().unwrap().to_string();
    let customer_id = conv["customer"]["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(20), || async {
        (t.api("GET", "/api/v1/media/7701", Some(&chat), None)
            .await
            .0
            == 200)
            .then_some(())
    })
    .await
    .expect("media copied");
    // A reply of ours, with its send intent.
    let (s, sent) = t
        .api(
            "POST",
            &format!("/api/v1/conversations/{conv_id}/messages"),
            Some(&chat),
            Some(json!({"content": {"type": "text", "body": "thanks Fay"}})),
        )
        .await;
    assert_eq!(s, 201, "{sent}");
    let intent_id = sent["id"].as_str().unwrap().to_string();
    let media_key = format!("media/{PNID}/{customer_id}/7701");

    // Only an admin may erase.
    let (s, _) = t
        .api(
            "POST",
            "/api/v1/customers/+1 555 987 0001/forget",
            Some(&chat),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 403);
    let (s, report) = t
        .api(
            "POST",
            "/api/v1/customers/+1 555 987 0001/forget",
            Some(&t.admin_token()),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["customer_id"], customer_id);
    assert_eq!(report["conversations"], json!([conv_id]));
    assert!(report["messages"].as_u64().unwrap() >= 3);
    assert_eq!(report["media"], 1);

    // Nothing of it through any route …
    assert!(
        t.conversations()
            .await
            .iter()
            .all(|c| c["customer"]["id"] != customer_id.as_str()),
        "not listed"
    );
    for path in [
        format!("/api/v1/conversations/{conv_id}"),
        format!("/api/v1/conversations/{conv_id}/messages"),
        "/api/v1/media/7701".to_string(),
    ] {
        let (s, v) = t.api("GET", &path, Some(&chat), None).await;
        assert_eq!(s, 404, "{path}: {v}");
    }
    let (_, unread) = t
        .api("GET", "/api/v1/conversations/unread", Some(&chat), None)
        .await;
    assert!(!unread.to_string().contains(&customer_id));
    // … nor in the table or the bucket.
    let store = t.store();
    assert!(store.customer(&customer_id).await.unwrap().is_none());
    for (kind, v) in [
        (AliasKind::WaId, "15559870001"),
        (AliasKind::E164, "+15559870001"),
    ] {
        assert!(store.customer_by_alias(kind, v).await.unwrap().is_none());
    }
    assert!(store.delivery("wamid.f1").await.unwrap().is_none());
    assert!(store.intent(&intent_id).await.unwrap().is_none());
    assert!(store.media("7701").await.unwrap().is_none());
    let head = t
        .s3()
        .head_object()
        .bucket(&t.info().resource("MediaBucket").name)
        .key(&media_key)
        .send()
        .await;
    assert!(head.is_err(), "the S3 object is gone");
    // The other customer is untouched.
    assert_eq!(t.conversation_of("15559870002").await["message_count"], 1);
    // The CRM is told, in the documented shape.
    let events = t.drain(&tap, Duration::from_secs(4)).await;
    let forgotten: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "customer.forgotten")
        .collect();
    assert_eq!(forgotten.len(), 1, "{events:?}");
    let schema: Value =
        serde_json::from_str(include_str!("../schemas/whatsapp/customer.forgotten.json")).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    assert!(
        v.is_valid(&forgotten[0]["detail"]),
        "{}",
        forgotten[0]["detail"]
    );
    // Asked again: nothing left to erase.
    let (s, _) = t
        .api(
            "POST",
            &format!("/api/v1/customers/{customer_id}/forget"),
            Some(&t.admin_token()),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 404);
}

/// The retention setting: with `MESSAGE_RETENTION_DAYS`, messages and their status records carry
/// a DynamoDB TTL that many days after Meta's timestamp (moto does not expire items: the
/// attribute is what AWS acts on).
#[tokio::test(flavor = "multi_thread")]
async fn messages_expire_after_the_retention_days() {
    let mut opts = local_runner::StackOptions::new(unique_prefix());
    opts.env_overrides
        .insert("MESSAGE_RETENTION_DAYS".into(), "30".into());
    let t = start_with(opts).await;
    let ts = chrono::Utc::now().timestamp();
    t.post_signed(&text_payload(
        PNID,
        "15559870003",
        "Ida",
        "wamid.r1",
        ts,
        "hi",
    ))
    .await;
    let conv = t.conversation_of("15559870003").await;
    let customer_id = conv["customer"]["id"].as_str().unwrap();
    let ttl_of = |pk: String, sk: String| {
        let t = &t;
        async move {
            t.stack_ddb()
                .get_item()
                .table_name(t.store().table())
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S(sk))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .and_then(|i| i.get("ttl").and_then(|v| v.as_n().ok()).cloned())
                .and_then(|n| n.parse::<i64>().ok())
        }
    };
    let expected = ts + 30 * 86_400;
    let msg_ttl = ttl_of(
        shared::store::keys::conversation_pk(PNID, customer_id),
        shared::store::keys::message_sk(ts * 1000, "wamid.r1"),
    )
    .await;
    assert_eq!(msg_ttl, Some(expected));
    // A customer's message has no status record; one the business sent (here an echo from the
    // business app) has, and it expires with its message.
    let wamid_item = |w: &'static str| {
        let t = &t;
        async move {
            t.stack_ddb()
                .get_item()
                .table_name(t.store().table())
                .key("pk", AttributeValue::S(shared::store::keys::wamid_pk(w)))
                .key(
                    "sk",
                    AttributeValue::S(shared::store::keys::WAMID_SK.into()),
                )
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
        }
    };
    assert!(wamid_item("wamid.r1").await.is_none());
    t.post_signed(&echo_payload(
        PNID,
        "wamid.e1",
        "15559870003",
        ts + 1,
        "hello",
    ))
    .await;
    let echo = eventually(Duration::from_secs(20), || wamid_item("wamid.e1"))
        .await
        .expect("the echo's status record");
    let msg_ttl = ttl_of(
        shared::store::keys::conversation_pk(PNID, customer_id),
        shared::store::keys::message_sk((ts + 1) * 1000, "wamid.e1"),
    )
    .await;
    assert_eq!(msg_ttl, Some(expected + 1));
    assert_eq!(
        echo.get("ttl").and_then(|v| v.as_n().ok()),
        Some(&(expected + 1).to_string())
    );
}
