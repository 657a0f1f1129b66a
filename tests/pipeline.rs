//! The inbound pipeline end to end: signed webhook → queue → inbound → DynamoDB → staff API.
use std::time::Duration;

use integration_tests::*;
use serde_json::{Value, json};

const PNID: &str = "106540352242922";

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_post_is_readable_through_the_staff_api() {
    let t = start().await;
    let (status, _) = t.post_signed(&fixture("text_message.json")).await;
    assert_eq!(status, 200);
    // The window is set by the activity update that follows the message's transaction.
    let conv = eventually(Duration::from_secs(60), || async {
        let c = t.conversation_of("16505551234").await;
        c["window_expires_at"].is_number().then_some(c)
    })
    .await
    .expect("conversation with its window");
    assert_eq!(conv["customer"]["name"], "Sheena Nelson");
    assert_eq!(conv["customer"]["phone"], "+16505551234");
    assert_eq!(conv["rel_type"], "general", "auto-lead is off by default");
    assert_eq!(conv["unread"], 1);
    assert_eq!(conv["phone_number_id"], PNID);
    // Meta's timestamp, not processing time.
    assert_eq!(conv["last_message_at"], 1_749_416_383_000i64);
    assert_eq!(
        conv["window_expires_at"],
        1_749_416_383_000i64 + 24 * 3600 * 1000
    );
    let msgs = t.messages(conv["id"].as_str().unwrap()).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0]["id"],
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );
    assert_eq!(msgs[0]["direction"], "inbound");
    assert_eq!(msgs[0]["type"], "text");
    assert_eq!(msgs[0]["summary"], "Does it come in another color?");
    assert_eq!(
        msgs[0]["message"]["text"]["body"],
        "Does it come in another color?"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_payload_three_times_is_stored_once() {
    let t = start().await;
    let body = text_payload(PNID, "447700900123", "Ann", "wamid.dup-1", now_s(), "hello");
    for _ in 0..3 {
        assert_eq!(t.post_signed(&body).await.0, 200);
    }
    // Meta's retries can come after SQS's 5-minute dedupe window: the same envelope queued
    // again with new dedupe ids reaches the store, whose data-level idempotency absorbs it.
    let envelope = t
        .drain_envelope_of(&body)
        .expect("the webhook's envelope for this payload");
    let url = t.info().resource("InboundQueue").url.clone().unwrap();
    for i in 0..2 {
        t.sqs()
            .send_message()
            .queue_url(&url)
            .message_body(&envelope.body)
            .message_group_id(&envelope.group_id)
            .message_deduplication_id(format!("{}-late-{i}", envelope.dedupe_id))
            .send()
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(60), || async {
        (t.queue_depth("InboundQueue").await == (0, 0)).then_some(())
    })
    .await
    .expect("redeliveries processed");
    let conv = t.conversation_of("447700900123").await;
    settle().await;
    let conv_after = t.conversation_of("447700900123").await;
    let msgs = t.messages(conv["id"].as_str().unwrap()).await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(conv_after["unread"], 1);
    assert_eq!(conv_after["message_count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_in_order_and_activity_never_moves_back() {
    let t = start().await;
    let ts = now_s();
    // Newer first, older second: history is ordered by Meta's timestamps; activity stays newest.
    t.post_signed(&text_payload(
        PNID,
        "447700900200",
        "Bo",
        "wamid.b2",
        ts,
        "second",
    ))
    .await;
    t.post_signed(&text_payload(
        PNID,
        "447700900200",
        "Bo",
        "wamid.b1",
        ts - 60,
        "first",
    ))
    .await;
    let conv = eventually(Duration::from_secs(60), || async {
        let c = t.conversation_of("447700900200").await;
        (c["message_count"] == 2).then_some(c)
    })
    .await
    .expect("two messages");
    assert_eq!(conv["last_message_at"], ts * 1000);
    assert_eq!(conv["last_message_preview"], "second");
    let msgs = t.messages(conv["id"].as_str().unwrap()).await;
    let ids: Vec<&str> = msgs.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["wamid.b1", "wamid.b2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn statuses_out_of_order_and_before_their_message_end_right() {
    let t = start().await;
    let ts = now_s();
    let wamid = "wamid.out-1";
    // read arrives first, then sent, then delivered; the message itself (an echo of a message
    // sent from the business app) arrives last.
    for (st, dt) in [("read", 30), ("sent", 0), ("delivered", 10)] {
        assert_eq!(
            t.post_signed(&status_payload(PNID, wamid, st, ts + dt, "447700900300"))
                .await
                .0,
            200
        );
    }
    assert_eq!(
        t.post_signed(&echo_payload(
            PNID,
            wamid,
            "447700900300",
            ts,
            "your order shipped"
        ))
        .await
        .0,
        200
    );
    let conv = t.conversation_of("447700900300").await;
    assert_eq!(conv["unread"], 0, "our own message is not unread");
    let msg = eventually(Duration::from_secs(60), || async {
        let m = t.messages(conv["id"].as_str().unwrap()).await;
        m.into_iter()
            .find(|m| m["delivery"]["delivered_at"].is_number())
    })
    .await
    .expect("echo with its delivery state");
    assert_eq!(msg["direction"], "outbound");
    assert_eq!(msg["source"], "smb_echo");
    let d = &msg["delivery"];
    assert_eq!(d["status"], "read", "{d}");
    assert_eq!(d["sent_at"], ts * 1000);
    assert_eq!(d["delivered_at"], (ts + 10) * 1000);
    assert_eq!(d["read_at"], (ts + 30) * 1000);
    assert_eq!(d["pricing"]["category"], "utility");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_status_keeps_its_error() {
    let t = start().await;
    assert_eq!(t.post_signed(&fixture("status_failed.json")).await.0, 200);
    let store = t.store();
    // Waits for the status itself: moto may answer a read while an update of the same item is
    // half applied (DynamoDB never does), so the item alone is not enough.
    let d = eventually(Duration::from_secs(60), || async {
        store
            .delivery("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA")
            .await
            .unwrap()
            .filter(|d| d.status.is_some() && d.errors.is_some())
    })
    .await
    .expect("placeholder delivery state");
    assert_eq!(d.status.as_deref(), Some("failed"));
    assert!(d.errors.as_deref().unwrap().contains("131049"));
    assert_eq!(d.failed_at, Some(1_751_142_888_000));
    // A late `sent` does not move a failed message back.
    t.post_signed(&status_payload(
        PNID,
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA",
        "sent",
        1_751_142_880,
        "16505551234",
    ))
    .await;
    settle().await;
    let d = store
        .delivery("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status.as_deref(), Some("failed"));
    assert_eq!(d.sent_at, Some(1_751_142_880_000));
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_lead_on_creates_one_lead_event_and_files_as_leads() {
    let t = start().await;
    let tap = t.tap_our_events().await;
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/settings/auto-lead",
            Some(&t.admin_token()),
            Some(json!({"enabled": true, "status": "2", "source": "4", "assignee": "3"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let ts = now_s();
    // Two messages (and a redelivery) from the same unknown number: one lead.
    t.post_signed(&text_payload(
        PNID,
        "919812345678",
        "Ravi",
        "wamid.al-1",
        ts,
        "price?",
    ))
    .await;
    t.post_signed(&text_payload(
        PNID,
        "919812345678",
        "Ravi",
        "wamid.al-1",
        ts,
        "price?",
    ))
    .await;
    t.post_signed(&text_payload(
        PNID,
        "919812345678",
        "Ravi",
        "wamid.al-2",
        ts + 5,
        "hello?",
    ))
    .await;
    let conv = eventually(Duration::from_secs(60), || async {
        let c = t.conversation_of("919812345678").await;
        (c["message_count"] == 2).then_some(c)
    })
    .await
    .expect("both messages");
    assert_eq!(conv["rel_type"], "leads");
    let events = t.drain(&tap, Duration::from_secs(4)).await;
    let leads: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "lead.created")
        .collect();
    assert_eq!(leads.len(), 1, "{events:?}");
    let d = &leads[0]["detail"];
    assert_eq!(leads[0]["source"], "whatsapp");
    assert_eq!(d["phone"], "+919812345678");
    assert_eq!(d["name"], "Ravi");
    assert_eq!(d["status"], "2");
    assert_eq!(d["source"], "4");
    assert_eq!(d["assignee"], "3");
    assert_eq!(d["conversation_id"], conv["id"]);
    let corr = d["correlation_id"].as_str().unwrap().to_string();
    assert_eq!(d["event_id"], format!("lead.created:{corr}"));
    assert_eq!(conv["rel_id"], format!("pending:{corr}"));

    // The CRM creates the lead and echoes our correlation id: the next message is linked to it.
    t.put_crm_event(
        "lead_created",
        json!({"event_id": "crm-1", "updated_at": ts + 10, "record": {"id": 501, "name": "Ravi", "phonenumber": "+91 98123 45678", "whatsapp_correlation_id": corr}}),
    )
    .await;
    // The conversation points at the CRM's lead at once, with no further message.
    let linked = eventually(Duration::from_secs(60), || async {
        let c = t.conversation_of("919812345678").await;
        (c["rel_id"] == "501").then_some(c)
    })
    .await
    .expect("linked to the CRM's lead");
    assert_eq!(linked["rel_type"], "leads");
    // And later messages keep it (identified through the directory now).
    t.post_signed(&text_payload(
        PNID,
        "919812345678",
        "Ravi",
        "wamid.al-3",
        now_s() + 20,
        "thanks",
    ))
    .await;
    let c = eventually(Duration::from_secs(60), || async {
        let c = t.conversation_of("919812345678").await;
        (c["message_count"] == 3).then_some(c)
    })
    .await
    .expect("third message");
    assert_eq!(c["rel_id"], "501");
    assert_eq!(c["rel_type"], "leads");
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_lead_off_files_as_general_and_emits_nothing() {
    let t = start().await;
    let tap = t.tap_our_events().await;
    t.post_signed(&text_payload(
        PNID,
        "919812345679",
        "Sam",
        "wamid.g-1",
        now_s(),
        "hi",
    ))
    .await;
    let conv = t.conversation_of("919812345679").await;
    assert_eq!(conv["rel_type"], "general");
    assert!(conv["rel_id"].is_null());
    assert!(t.drain(&tap, Duration::from_secs(2)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_contact_in_another_format_is_matched() {
    let t = start().await;
    // The CRM stores numbers as typed: national format for the default country (US).
    t.put_crm_event(
        "contact_created",
        json!({"event_id": "c-1", "updated_at": "2026-01-01 10:00:00", "record": {"id": "42", "name": "Sheena N.", "phonenumber": "(650) 555-1234"}}),
    )
    .await;
    let store = t.store();
    eventually(Duration::from_secs(60), || async {
        store.directory_record("contact", "42").await.unwrap()
    })
    .await
    .expect("directory applied the contact");
    t.post_signed(&fixture("text_message.json")).await;
    let conv = t.conversation_of("16505551234").await;
    assert_eq!(conv["rel_type"], "contacts");
    assert_eq!(conv["rel_id"], "42");
}

#[tokio::test(flavor = "multi_thread")]
async fn identification_order_and_brazil_ninth_digit() {
    let t = start().await;
    // Same number as a converted lead, a contact and staff: the contact wins (converted leads skip).
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/directory/import",
            Some(&t.admin_token()),
            Some(json!({"records": [
                {"kind": "lead", "id": "1", "name": "Old lead", "phone": "+55 11 98765-4321", "updated_at": 1700000000, "converted": true},
                {"kind": "contact", "id": "2", "name": "Contact", "phone": "5511987654321", "updated_at": 1700000000},
                {"kind": "staff", "id": "3", "name": "Staff", "phone": "+55 (11) 98765-4321", "updated_at": 1700000000},
                {"kind": "lead", "id": "9", "name": "Lead", "phone": "+44 7911 123456", "updated_at": 1700000000},
                {"kind": "staff", "id": "10", "name": "Staff too", "phone": "+44 7911 123456", "updated_at": 1700000000},
                {"kind": "robot", "id": "x", "updated_at": 1},
                {"kind": "contact", "id": "77", "phone": "12", "updated_at": 1}
            ]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["applied"], 6);
    assert_eq!(v["errors"][0]["index"], 5);
    assert_eq!(v["errors"].as_array().unwrap().len(), 1);
    assert_eq!(v["warnings"][0]["index"], 6, "{v}");
    // Brazilian wa_ids often lack the ninth digit.
    t.post_signed(&text_payload(
        PNID,
        "551187654321",
        "Br",
        "wamid.br-1",
        now_s(),
        "oi",
    ))
    .await;
    t.post_signed(&text_payload(
        PNID,
        "447911123456",
        "Uk",
        "wamid.uk-1",
        now_s(),
        "hi",
    ))
    .await;
    let br = t.conversation_of("551187654321").await;
    assert_eq!(
        (br["rel_type"].as_str(), br["rel_id"].as_str()),
        (Some("contacts"), Some("2"))
    );
    let uk = t.conversation_of("447911123456").await;
    assert_eq!(
        (uk["rel_type"].as_str(), uk["rel_id"].as_str()),
        (Some("leads"), Some("9"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_is_last_writer_wins_and_deduped() {
    let t = start().await;
    let store = t.store();
    t.put_crm_event("lead_updated", json!({"event_id": "e2", "updated_at": 2000, "record": {"id": "5", "name": "New", "phone": "+14155550100"}})).await;
    eventually(Duration::from_secs(60), || async {
        store.directory_record("lead", "5").await.unwrap()
    })
    .await
    .unwrap();
    // An older update arriving later, and a replay of the same event, change nothing.
    t.put_crm_event("lead_updated", json!({"event_id": "e1", "updated_at": 1000, "record": {"id": "5", "name": "Old", "phone": "+14155550199"}})).await;
    t.put_crm_event("lead_updated", json!({"event_id": "e2", "updated_at": 2000, "record": {"id": "5", "name": "New", "phone": "+14155550100"}})).await;
    settle().await;
    let r = store.directory_record("lead", "5").await.unwrap().unwrap();
    assert_eq!(r.name.as_deref(), Some("New"));
    assert_eq!(r.phone_key.as_deref(), Some("+14155550100"));
    assert!(
        store
            .directory_by_phone("+14155550199")
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting removes it from matching; a stale update cannot resurrect it.
    t.put_crm_event(
        "lead_deleted",
        json!({"event_id": "e3", "updated_at": 3000, "record": {"id": "5"}}),
    )
    .await;
    eventually(Duration::from_secs(60), || async {
        store
            .directory_record("lead", "5")
            .await
            .unwrap()
            .filter(|r| r.deleted)
    })
    .await
    .unwrap();
    assert!(
        store
            .directory_by_phone("+14155550100")
            .await
            .unwrap()
            .is_empty()
    );
    // A stale update (older than the delete, a new event id) arrives after it: still deleted,
    // still out of matching.
    t.put_crm_event("lead_updated", json!({"event_id": "e2b", "updated_at": 2500, "record": {"id": "5", "name": "Zombie", "phone": "+14155550100"}})).await;
    settle().await;
    let r = store.directory_record("lead", "5").await.unwrap().unwrap();
    assert!(
        r.deleted,
        "a stale update never resurrects a deleted record"
    );
    assert_eq!(r.event_id.as_deref(), Some("e3"));
    assert!(
        store
            .directory_by_phone("+14155550100")
            .await
            .unwrap()
            .is_empty()
    );
    // An invalid CRM event is parked, not retried forever.
    t.put_crm_event(
        "lead_updated",
        json!({"event_id": "", "updated_at": 1, "record": {"id": "6"}}),
    )
    .await;
    eventually(Duration::from_secs(60), || async {
        (!t.archived("parked/").await.is_empty()).then_some(())
    })
    .await
    .expect("parked");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_payload_is_accepted_and_nothing_is_parked() {
    let dir = format!("{}/fixtures/meta", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    // A fake Meta serves every media object the payloads mention (the inbound copies them).
    let graph = integration_tests::fake_graph::FakeGraph::start().await;
    for n in &names {
        let v: Value = serde_json::from_slice(&fixture(n)).unwrap();
        for e in v["entry"].as_array().into_iter().flatten() {
            for c in e["changes"].as_array().into_iter().flatten() {
                for m in c["value"]["messages"].as_array().into_iter().flatten() {
                    let kind = m["type"].as_str().unwrap_or_default();
                    if let Some(id) = m[kind]["id"].as_str() {
                        let mime = m[kind]["mime_type"]
                            .as_str()
                            .unwrap_or("application/octet-stream");
                        graph.set_media(id, mime, format!("bytes of {id}").as_bytes(), None);
                    }
                }
            }
        }
    }
    let t = start_with(options_with_graph(&graph, 2000)).await;
    assert!(names.len() >= 30, "{names:?}");
    for n in &names {
        let (s, body) = t.post_signed(&fixture(n)).await;
        assert_eq!(s, 200, "{n}: {body}");
    }
    // Everything drains from the queue, nothing is parked, and only the unknown field is archived raw.
    // (Generous: this runs beside the other tests of this file, each with a stack, on 2 cores.)
    eventually(Duration::from_secs(120), || async {
        (t.queue_depth("InboundQueue").await == (0, 0)).then_some(())
    })
    .await
    .expect("inbound queue drained");
    settle().await;
    assert_eq!(t.archived("parked/").await, Vec::<String>::new());
    let raw = t.archived("raw/").await;
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert!(
        t.archived_body(&raw[0])
            .await
            .contains("phone_number_quality_update")
    );
    assert_eq!(t.queue_depth("InboundDLQ").await, (0, 0));
    // The interactive list reply and the BSUID-only user made conversations.
    assert!(!t.conversations().await.is_empty());
    // Every media object was copied to S3.
    let media_downloads = graph
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .count();
    assert!(media_downloads >= 5, "{media_downloads}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_number_change_keeps_the_customer() {
    let t = start().await;
    let ts = now_s();
    t.post_signed(&text_payload(
        PNID,
        "16315551111",
        "Mo",
        "wamid.n-1",
        ts,
        "hi",
    ))
    .await;
    let before = t.conversation_of("16315551111").await;
    let change = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
        "messages": [{"from": "16315551111", "id": "wamid.n-sys", "timestamp": (ts + 1).to_string(), "type": "system",
            "system": {"body": "User A changed from 16315551111 to 16315552222", "new_wa_id": "16315552222", "type": "user_changed_number"}}]}}]}]});
    assert_eq!(t.post_signed(change.to_string().as_bytes()).await.0, 200);
    let store = t.store();
    eventually(Duration::from_secs(60), || async {
        store
            .customer_by_alias(shared::store::keys::AliasKind::WaId, "16315552222")
            .await
            .unwrap()
    })
    .await
    .expect("new number aliased");
    t.post_signed(&text_payload(
        PNID,
        "16315552222",
        "Mo",
        "wamid.n-2",
        ts + 2,
        "new phone",
    ))
    .await;
    let after = t.conversation_of("16315552222").await;
    assert_eq!(
        after["id"], before["id"],
        "same customer, same conversation"
    );
    assert!(
        store
            .customer_by_alias(shared::store::keys::AliasKind::WaId, "16315551111")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn marketing_opt_out_is_recorded_on_the_customer() {
    let t = start().await;
    assert_eq!(
        t.post_signed(&fixture("user_preferences_stop.json"))
            .await
            .0,
        200
    );
    let v: Value = serde_json::from_slice(&fixture("user_preferences_stop.json")).unwrap();
    let wa_id = v["entry"][0]["changes"][0]["value"]["user_preferences"][0]["wa_id"]
        .as_str()
        .unwrap()
        .to_string();
    let store = t.store();
    let c = eventually(Duration::from_secs(60), || async {
        store
            .customer_by_alias(shared::store::keys::AliasKind::WaId, &wa_id)
            .await
            .unwrap()
            .filter(|c| c.marketing_opt_out)
    })
    .await;
    assert!(c.is_some(), "opt-out recorded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lead_link_lost_after_the_directory_transaction_is_made_by_the_redelivery() {
    let t = start().await;
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/settings/auto-lead",
            Some(&t.admin_token()),
            Some(json!({"enabled": true, "status": "2", "source": "4", "assignee": "3"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let ts = now_s();
    t.post_signed(&text_payload(
        PNID,
        "919812340001",
        "Lia",
        "wamid.ll-1",
        ts,
        "hi",
    ))
    .await;
    let conv = t.conversation_of("919812340001").await;
    let corr = conv["rel_id"]
        .as_str()
        .and_then(|r| r.strip_prefix("pending:"))
        .expect("a pending lead")
        .to_string();
    // The CRM's lead_created is applied, then the function dies before linking the claim.
    let detail = json!({"event_id": "crm-ll-1", "updated_at": ts + 10, "record": {"id": 777, "name": "Lia", "phonenumber": "+91 98123 40001", "whatsapp_correlation_id": corr}});
    let change = shared::crm_events::DirectoryChange::parse("lead_created", &detail).unwrap();
    let phones = shared::phone::PhoneNormalizer::new("US").unwrap();
    let record = shared::directory::to_record(&phones, &change);
    t.store()
        .apply_directory(&record, &change.event_id, now_s() * 1000)
        .await
        .unwrap();
    settle().await;
    assert_eq!(
        t.conversation_of("919812340001").await["rel_id"],
        format!("pending:{corr}")
    );
    // EventBridge (or the queue) delivers the event again: a duplicate, and still linked.
    t.put_crm_event("lead_created", detail).await;
    eventually(Duration::from_secs(60), || async {
        let c = t.conversation_of("919812340001").await;
        (c["rel_id"] == "777").then_some(())
    })
    .await
    .expect("the redelivered event linked the conversation to the CRM's lead");
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_ties_end_the_same_in_every_order() {
    use shared::crm_events::DirectoryChange;
    let t = start().await;
    let phones = shared::phone::PhoneNormalizer::new("US").unwrap();
    let store = t.store();
    let change_of = |kind: &str, event: &str, id: i64| {
        DirectoryChange::parse(
            kind,
            &json!({"event_id": event, "updated_at": 1_750_000_000, "record": {"id": id, "name": "B", "phonenumber": "+1 650 555 0900"}}),
        )
        .unwrap()
    };
    // Same second: a delete wins over an update, whichever comes first (a record per order).
    for (id, deleted_first) in [(900, false), (901, true)] {
        let update = change_of("contact_updated", &format!("e-2-{id}"), id);
        let delete = change_of("contact_deleted", &format!("e-1-{id}"), id);
        let order = if deleted_first {
            [delete, update]
        } else {
            [update, delete]
        };
        for c in order {
            store
                .apply_directory(&shared::directory::to_record(&phones, &c), &c.event_id, 1)
                .await
                .unwrap();
        }
        let r = store
            .directory_record("contact", &id.to_string())
            .await
            .unwrap()
            .unwrap();
        assert!(
            r.deleted,
            "the delete wins a tie (delete first: {deleted_first})"
        );
    }
    // Two updates in the same second: the greater event id wins in both orders.
    for (i, order) in [["e-3", "e-4"], ["e-4", "e-3"]].iter().enumerate() {
        let id = 910 + i as i64;
        for ev in order {
            let c = DirectoryChange::parse(
                "contact_updated",
                &json!({"event_id": format!("{ev}-{id}"), "updated_at": 1_750_000_000, "record": {"id": id, "name": format!("name {ev}"), "phonenumber": "+1 650 555 0910"}}),
            )
            .unwrap();
            store
                .apply_directory(&shared::directory::to_record(&phones, &c), &c.event_id, 1)
                .await
                .unwrap();
        }
        let r = store
            .directory_record("contact", &id.to_string())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.name.as_deref(), Some("name e-4"));
    }
}

fn calls_payload(calls: serde_json::Value, statuses: serde_json::Value) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "calls", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": "Caller"}, "wa_id": "15551112222"}],
        "calls": calls, "statuses": statuses}}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_are_recorded_in_the_conversation_history() {
    let t = start().await;
    let ts = now_s();
    // An answered call (connect, then terminate with a duration) and a missed one.
    let answered = calls_payload(
        json!([
            {"id": "wacid.A1", "from": "15551112222", "to": "15550783881", "event": "connect",
             "timestamp": ts.to_string(), "direction": "USER_INITIATED",
             "session": {"sdp_type": "offer", "sdp": "v=0"}},
        ]),
        json!([]),
    );
    let ended = calls_payload(
        json!([
            {"id": "wacid.A1", "from": "15551112222", "to": "15550783881", "event": "terminate",
             "timestamp": (ts + 200).to_string(), "direction": "USER_INITIATED", "status": "COMPLETED",
             "start_time": (ts + 5).to_string(), "end_time": (ts + 200).to_string(), "duration": 195},
        ]),
        json!([]),
    );
    let missed = calls_payload(
        json!([
            {"id": "wacid.M1", "from": "15551112222", "to": "15550783881", "event": "terminate",
             "timestamp": (ts + 300).to_string(), "direction": "USER_INITIATED", "status": "FAILED"}
        ]),
        json!([]),
    );
    for body in [&answered, &ended, &ended, &missed] {
        assert_eq!(t.post_signed(body).await.0, 200);
    }
    let conv = eventually(Duration::from_secs(60), || async {
        let c = t.conversation_of("15551112222").await;
        (c["message_count"] == 3).then_some(c)
    })
    .await
    .expect("three call events, the repeated terminate stored once");
    let history = t.messages(conv["id"].as_str().unwrap()).await;
    let summaries: Vec<&str> = history
        .iter()
        .filter_map(|m| m["summary"].as_str())
        .collect();
    assert_eq!(
        summaries,
        vec![
            "Incoming call: ringing",
            "Incoming call: 3 min 15 s",
            "Incoming call: failed"
        ]
    );
    assert!(history.iter().all(|m| m["type"] == "call"));
    assert_eq!(conv["customer"]["name"], "Caller");
    // Calls do not open the 24-hour messaging window.
    assert_eq!(conv["window_open"], false);
    assert!(t.archived("raw/").await.is_empty());
    assert!(t.archived("parked/").await.is_empty());
}
