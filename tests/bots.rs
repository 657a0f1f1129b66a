//! Bots end to end: signed webhooks in, the bots function answering through the fake Graph API,
//! events on the CRM bus. Triggers, responses, a menu walked across messages, hand-over and
//! release, close and rating, answered once whatever is redelivered.
use std::time::Duration;

use integration_tests::bot_helpers::*;
use integration_tests::*;
use serde_json::{Value, json};

fn interactive_payload(
    from: &str,
    wamid: &str,
    ts: i64,
    kind: &str,
    id: &str,
    title: &str,
) -> Vec<u8> {
    let reply = json!({"id": id, "title": title});
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
            "contacts": [{"profile": {"name": "Ana Lima"}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": ts.to_string(), "type": "interactive",
                "interactive": {"type": kind, kind: reply}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exact_match_answers_once_with_placeholders_filled() {
    let (t, graph) = start_with_graph(2_000).await;
    create_bot(
        &t,
        json!({
            "name": "Greeting", "reply_type": 1, "trigger": "hello",
            "bot_type": 1, "response": {"text": "Hi {{customer_first_name}}! How can we help?"},
        }),
    )
    .await;
    let wa = "15551230001";
    let ts = now_s();
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.b1",
        ts,
        "  HÉLLO! ",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["type"], "text");
    assert_eq!(sent[0]["text"]["body"], "Hi Ana! How can we help?");
    // Not an exact match: no answer.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.b2",
        ts + 1,
        "hello there",
    ))
    .await;
    // The same message again (Meta's retry): answered once.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.b1",
        ts,
        "  HÉLLO! ",
    ))
    .await;
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 1, "{:?}", sent_to(&graph, wa));
    // A crash after sending and before saving the bot state: the state is lost and the job
    // comes again (new SQS dedupe id, past the queue's own dedupe). Still answered once.
    let conv = t.conversation_of(wa).await;
    let customer_id = conv["customer"]["id"].as_str().unwrap().to_string();
    t.stack_ddb()
        .delete_item()
        .table_name(&t.info().resource("MainTable").name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(shared::store::keys::conversation_pk(
                PNID,
                &customer_id,
            )),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(shared::store::bots::BOT_STATE_SK.into()),
        )
        .send()
        .await
        .unwrap();
    let job = shared::bots::job::BotJob {
        v: shared::bots::job::BOT_JOB_VERSION,
        phone_number_id: PNID.into(),
        customer_id: customer_id.clone(),
        set_version: None,
        event: shared::bots::job::BotEvent::Message {
            wamid: "wamid.b1".into(),
            message_type: "text".into(),
            at_ms: ts * 1000,
            text: Some("  HÉLLO! ".into()),
            reply_id: None,
            reply_title: None,
            first_inbound: None,
            session_start: None,
        },
    };
    let env = job.envelope();
    t.sqs()
        .send_message()
        .queue_url(t.info().resource("BotsQueue").url.clone().unwrap())
        .message_body(env.body)
        .message_group_id(env.group_id)
        .message_deduplication_id("redelivered-after-a-crash")
        .send()
        .await
        .unwrap();
    let state = eventually(Duration::from_secs(20), || async {
        let st = t.store().bot_state(PNID, &customer_id).await.unwrap();
        st.has_handled("wamid.b1").then_some(st)
    })
    .await;
    assert!(state.is_some(), "the redelivered job was processed");
    assert_eq!(sent_to(&graph, wa).len(), 1, "{:?}", sent_to(&graph, wa));
    // The bot's message is in the history, from the bot, and the bot counts it.
    let conv = t.conversation_of(wa).await;
    let msgs = t.messages(conv["id"].as_str().unwrap()).await;
    assert!(
        msgs.iter()
            .any(|m| m["source"] == "bot" && m["direction"] == "outbound"),
        "{msgs:?}"
    );
    let (_, bots) = t
        .api("GET", "/api/v1/bots", Some(&t.admin_token()), None)
        .await;
    assert_eq!(bots["data"][0]["send_count"], 1, "{bots}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_menu_is_walked_across_messages() {
    let (t, graph) = start_with_graph(2_000).await;
    create_bot(&t, json!({
        "name": "Main menu", "reply_type": 2, "trigger": "menu", "bot_type": 3,
        "response": {"menu": {
            "body": "What do you need?", "button": "Options",
            "options": [
                {"id": "sales", "title": "Sales", "submenu": {
                    "body": "Sales: pick one", "button": "Sales",
                    "options": [
                        {"id": "prices", "title": "Prices", "reply": "Our prices are on the website."},
                        {"id": "demo", "title": "Book a demo", "reply": "A demo it is."}
                    ]}},
                {"id": "support", "title": "Support", "reply": "Tell us what happened."},
                {"id": "human", "title": "Talk to a person", "handover": true}
            ]}},
    })).await;
    let wa = "15551230002";
    let ts = now_s();
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.m1",
        ts,
        "show me the menu please",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["type"], "interactive");
    assert_eq!(sent[0]["interactive"]["type"], "list");
    // Into the submenu by the list reply.
    t.post_signed(&interactive_payload(
        wa,
        "wamid.m2",
        ts + 1,
        "list_reply",
        "sales",
        "Sales",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 2).await;
    assert_eq!(sent[1]["interactive"]["body"]["text"], "Sales: pick one");
    // An invalid choice is answered and the level shown again.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.m3",
        ts + 2,
        "pizza",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 4).await;
    assert_eq!(
        sent[3]["interactive"]["body"]["text"], "Sales: pick one",
        "{sent:?}"
    );
    // Back to the main menu, then a leaf by its number.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.m4",
        ts + 3,
        "back",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 5).await;
    assert_eq!(sent[4]["interactive"]["body"]["text"], "What do you need?");
    t.post_signed(&text_payload(PNID, wa, "Ana Lima", "wamid.m5", ts + 4, "2"))
        .await;
    let sent = wait_sent(&graph, wa, 6).await;
    assert_eq!(sent[5]["text"]["body"], "Tell us what happened.");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_human_request_hands_over_until_staff_release() {
    let (t, graph) = start_with_graph(2_000).await;
    let tap = t.tap_our_events().await;
    create_bot(
        &t,
        json!({
            "name": "Human", "reply_type": 9, "bot_type": 1,
            "response": {"text": "A colleague will answer you shortly."},
        }),
    )
    .await;
    create_bot(
        &t,
        json!({
            "name": "Hi", "reply_type": 1, "trigger": "hi", "bot_type": 1,
            "response": {"text": "Hello!"},
        }),
    )
    .await;
    let wa = "15551230003";
    let ts = now_s();
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.h1",
        ts,
        "I want to talk to an agent",
    ))
    .await;
    wait_sent(&graph, wa, 1).await;
    let conv = eventually(Duration::from_secs(20), || async {
        let c = t.conversation_of(wa).await;
        (c["handed_over"] == true).then_some(c)
    })
    .await
    .expect("handed over");
    let id = conv["id"].as_str().unwrap().to_string();
    let events = t.drain(&tap, Duration::from_secs(3)).await;
    let handover = events
        .iter()
        .find(|e| e["detail-type"] == "conversation.handover")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_documented("conversation.handover", &handover["detail"]);
    // Handed over: bots stay silent.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.h2",
        ts + 1,
        "hi",
    ))
    .await;
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 1);
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/conversations/{id}/release"),
            Some(&t.token(&["whatsapp_chat:view"])),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["conversation"]["handed_over"], false);
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.h3",
        ts + 2,
        "hi",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 2).await;
    assert_eq!(sent[1]["text"]["body"], "Hello!");
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_asks_for_a_rating_which_is_recorded_and_emitted() {
    let (t, graph) = start_with_graph(2_000).await;
    let tap = t.tap_our_events().await;
    create_bot(
        &t,
        json!({
            "name": "Rate us", "reply_type": 13, "bot_type": 13,
            "response": {"question": "How did we do?"},
        }),
    )
    .await;
    let wa = "15551230004";
    let ts = now_s();
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.r1",
        ts,
        "thanks, all good",
    ))
    .await;
    let id = t.conversation_of(wa).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let chat = t.token(&["whatsapp_chat:view"]);
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/conversations/{id}/close"),
            Some(&chat),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["conversation"]["closed_at"].is_i64(), "{v}");
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["interactive"]["type"], "list", "{sent:?}");
    let rows = sent[0]["interactive"]["action"]["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rows.len(), 5);
    let four_row = rows
        .iter()
        .find(|r| r["id"] == "rating_4")
        .unwrap_or_else(|| panic!("a rating_4 row: {rows:?}"))
        .clone();
    let four = four_row["id"].as_str().unwrap().to_string();
    t.post_signed(&interactive_payload(
        wa,
        "wamid.r2",
        ts + 5,
        "list_reply",
        &four,
        four_row["title"].as_str().unwrap(),
    ))
    .await;
    let conv = eventually(Duration::from_secs(20), || async {
        let c = t.conversation_of(wa).await;
        (c["rating"] == 4).then_some(c)
    })
    .await;
    assert!(conv.is_some(), "rated 4");
    let events = t.drain(&tap, Duration::from_secs(3)).await;
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["detail-type"].as_str())
        .collect();
    assert!(kinds.contains(&"conversation.closed"), "{kinds:?}");
    assert!(kinds.contains(&"conversation.rated"), "{kinds:?}");
    let rated = events
        .iter()
        .find(|e| e["detail-type"] == "conversation.rated")
        .unwrap();
    assert_eq!(rated["detail"]["rating"], 4);
    assert_documented("conversation.rated", &rated["detail"]);
    let closed = events
        .iter()
        .find(|e| e["detail-type"] == "conversation.closed")
        .unwrap();
    assert_documented("conversation.closed", &closed["detail"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_is_validated_on_save_naming_the_field() {
    let (t, _graph) = start_with_graph(2_000).await;
    let admin = t.admin_token();
    let too_many: Vec<Value> = (0..11)
        .map(|i| json!({"id": format!("o{i}"), "title": format!("Option {i}")}))
        .collect();
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/bots",
            Some(&admin),
            Some(json!({
                "name": "Big", "reply_type": 2, "trigger": "menu", "bot_type": 3,
                "response": {"menu": {"body": "Pick", "button": "Options", "options": too_many}},
            })),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("response.menu.options"),
        "{v}"
    );
    let (s, v) = t.api("POST", "/api/v1/bots", Some(&admin), Some(json!({
        "name": "Hours", "reply_type": 5, "bot_type": 1, "response": {"text": "We are open"},
        "business_hours": {"schedule": "mon-fri 09:00-17:00", "timezone": "Mars/Olympus"},
    }))).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("business_hours"),
        "{v}"
    );
    let (s, v) = t.api("POST", "/api/v1/bots", Some(&admin), Some(json!({
        "name": "Mismatch", "reply_type": 1, "trigger": "x", "bot_type": 1, "response": {"type": "location", "latitude": 1.0, "longitude": 2.0},
    }))).await;
    assert_eq!(s, 400, "{v}");
    // Keywords naming a synonym group that does not exist.
    let (s, v) = t.api("POST", "/api/v1/bots", Some(&admin), Some(json!({
        "name": "Syn", "reply_type": 10, "trigger": "greetings", "bot_type": 1, "response": {"text": "Hi"},
    }))).await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = t
        .api(
            "POST",
            "/api/v1/bots/synonyms",
            Some(&admin),
            Some(json!({"name": "greetings", "words": ["hi", "hola", "bonjour"]})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, v) = t.api("POST", "/api/v1/bots", Some(&admin), Some(json!({
        "name": "Syn", "reply_type": 10, "trigger": "greetings", "bot_type": 1, "response": {"text": "Hi"},
    }))).await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_synonym_trigger_answers_any_word_of_its_group() {
    let (t, graph) = start_with_graph(2_000).await;
    let admin = t.admin_token();
    let (s, _) = t
        .api(
            "POST",
            "/api/v1/bots/synonyms",
            Some(&admin),
            Some(json!({"name": "greetings", "words": ["hi", "hola", "bonjour"]})),
        )
        .await;
    assert_eq!(s, 201);
    create_bot(&t, json!({
        "name": "Syn", "reply_type": 10, "trigger": "greetings", "bot_type": 7,
        "response": {"body": "Hello! Sales or support?", "buttons": [{"id": "s", "title": "Sales"}, {"id": "p", "title": "Support"}]},
    })).await;
    let wa = "15551230005";
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.s1",
        now_s(),
        "Hola, buenos días",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["interactive"]["type"], "button");
}

#[tokio::test(flavor = "multi_thread")]
async fn timers_fire_once_and_a_newer_message_cancels_them() {
    let (t, graph) = start_with_graph(2_000).await;
    let tap = t.tap_our_events().await;
    create_bot(
        &t,
        json!({"name": "Idle", "reply_type": 8, "minutes": 1, "bot_type": 1,
               "response": {"text": "Still there?"}}),
    )
    .await;
    create_bot(
        &t,
        json!({"name": "Unanswered", "reply_type": 12, "minutes": 1, "bot_type": 1,
               "response": {"text": "We will be with you soon."}}),
    )
    .await;
    let wa = "15551230006";
    // Three minutes ago: both timers are already due.
    let ts = now_s() - 180;
    t.post_signed(&text_payload(PNID, wa, "Ana Lima", "wamid.t1", ts, "hello"))
        .await;
    let customer_id = customer_of(&t, wa).await;
    wait_handled(&t, &customer_id, &["wamid.t1"]).await;
    // Two overlapping ticks: each timer fires once.
    let (a, b) = tokio::join!(
        t.stack.run_schedule("BotTimersFunction"),
        t.stack.run_schedule("BotTimersFunction")
    );
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
    let sent = wait_sent(&graph, wa, 2).await;
    let texts: Vec<&str> = sent
        .iter()
        .filter_map(|m| m["text"]["body"].as_str())
        .collect();
    assert!(texts.contains(&"Still there?"), "{texts:?}");
    assert!(texts.contains(&"We will be with you soon."), "{texts:?}");
    t.stack.run_schedule("BotTimersFunction").await.unwrap();
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 2, "{:?}", sent_to(&graph, wa));
    let events = t.drain(&tap, Duration::from_secs(3)).await;
    let unanswered: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "conversation.unanswered")
        .collect();
    assert_eq!(unanswered.len(), 1, "{events:?}");
    assert_documented("conversation.unanswered", &unanswered[0]["detail"]);

    // A newer message cancels the timers of the older one.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.t2",
        ts + 10,
        "one",
    ))
    .await;
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.t3",
        now_s(),
        "two",
    ))
    .await;
    wait_handled(&t, &customer_id, &["wamid.t2", "wamid.t3"]).await;
    t.stack.run_schedule("BotTimersFunction").await.unwrap();
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 2, "{:?}", sent_to(&graph, wa));
}

fn button_payload(from: &str, wamid: &str, ts: i64, id: &str, title: &str) -> Vec<u8> {
    interactive_payload(from, wamid, ts, "button_reply", id, title)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flow_collects_a_support_request_and_asks_the_crm_for_a_ticket_once() {
    let (t, graph) = start_with_graph(2_000).await;
    let tap = t.tap_our_events().await;
    let node = |id: &str, kind: &str, data: Value| json!({"id": id, "type": kind, "data": data, "position": {"x": 0, "y": 0}});
    let edge = |s: &str, d: &str, h: Option<&str>| json!({"id": format!("{s}-{d}"), "source": s, "target": d, "sourceHandle": h});
    create_bot(
        &t,
        json!({"name": "Support flow", "reply_type": 2, "trigger": "help", "bot_type": 4,
            "response": {
                "nodes": [
                    node("start", "start", json!({})),
                    node("q1", "question", json!({"text": "Sales or support?", "variable": "topic",
                        "options": [{"id": "sales", "title": "Sales"}, {"id": "support", "title": "Support"}]})),
                    node("email", "input", json!({"text": "Your email?", "variable": "email",
                        "validation": "email", "invalid": "That is not an email address."})),
                    node("ticket", "ticket", json!({"subject": "Support for {{email}}",
                        "description": "Asked about {{topic}}", "priority": "high"})),
                    node("end", "end", json!({"text": "Thanks! We will write to {{email}}."})),
                    node("sales", "end", json!({"text": "Our sales team will call you."})),
                ],
                "edges": [
                    edge("start", "q1", None),
                    edge("q1", "email", Some("support")),
                    edge("q1", "sales", Some("sales")),
                    edge("email", "ticket", None),
                    edge("ticket", "end", None),
                ],
            }}),
    )
    .await;
    let wa = "15551230007";
    let ts = now_s();
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.f1",
        ts,
        "I need help",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["interactive"]["type"], "button", "{sent:?}");
    t.post_signed(&button_payload(
        wa,
        "wamid.f2",
        ts + 1,
        "support",
        "Support",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 2).await;
    assert_eq!(sent[1]["text"]["body"], "Your email?");
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.f3",
        ts + 2,
        "nope",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 3).await;
    assert_eq!(sent[2]["text"]["body"], "That is not an email address.");
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.f4",
        ts + 3,
        "ana@example.com",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 4).await;
    assert_eq!(
        sent[3]["text"]["body"],
        "Thanks! We will write to ana@example.com."
    );
    // The same answer again (Meta's retry): nothing more.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.f4",
        ts + 3,
        "ana@example.com",
    ))
    .await;
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 4);
    let events = t.drain(&tap, Duration::from_secs(3)).await;
    let tickets: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "ticket.requested")
        .collect();
    assert_eq!(tickets.len(), 1, "{events:?}");
    assert_eq!(
        tickets[0]["detail"]["subject"],
        "Support for ana@example.com"
    );
    assert_eq!(tickets[0]["detail"]["priority"], "high");
    assert_eq!(tickets[0]["detail"]["requested_by"], "bot");
    assert_documented("ticket.requested", &tickets[0]["detail"]);
    let conv = t.conversation_of(wa).await;
    assert_eq!(conv["tickets"].as_array().map(Vec::len), Some(1), "{conv}");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_messages_of_one_conversation_are_answered_once_each_in_order() {
    let (t, graph) = start_with_graph(2_000).await;
    create_bot(
        &t,
        json!({"name": "Echo price", "reply_type": 2, "trigger": "price", "bot_type": 1,
               "response": {"text": "Prices are on our website."}}),
    )
    .await;
    let wa = "15551230008";
    let ts = now_s();
    let posts = (0..5).map(|i| {
        text_payload(
            PNID,
            wa,
            "Ana Lima",
            &format!("wamid.c{i}"),
            ts + i,
            "what is the price?",
        )
    });
    futures::future::join_all(posts.map(|body| {
        let t = &t;
        async move { t.post_signed(&body).await }
    }))
    .await;
    wait_sent(&graph, wa, 5).await;
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 5, "{:?}", sent_to(&graph, wa));
    let customer_id = customer_of(&t, wa).await;
    let st = t.store().bot_state(PNID, &customer_id).await.unwrap();
    for i in 0..5 {
        assert!(st.has_handled(&format!("wamid.c{i}")), "{:?}", st.handled);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_business_hours_a_holiday_gets_the_closed_answer() {
    let (t, graph) = start_with_graph(2_000).await;
    let today = chrono::Utc::now().date_naive();
    let holidays: Vec<String> = [today.pred_opt().unwrap(), today, today.succ_opt().unwrap()]
        .iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    create_bot(
        &t,
        json!({"name": "Closed", "reply_type": 6, "bot_type": 1,
               "business_hours": {"schedule": "mon-sun 00:00-23:59", "timezone": "Asia/Kolkata", "holidays": holidays},
               "response": {"text": "We are closed today; we answer tomorrow."}}),
    )
    .await;
    create_bot(
        &t,
        json!({"name": "Open", "reply_type": 5, "bot_type": 1,
               "business_hours": {"schedule": "mon-sun 00:00-23:59", "timezone": "Asia/Kolkata", "holidays": holidays},
               "response": {"text": "We are open."}}),
    )
    .await;
    let wa = "15551230009";
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.o1",
        now_s(),
        "anyone?",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 1).await;
    settle().await;
    let texts: Vec<&str> = sent_to(&graph, wa)
        .iter()
        .filter_map(|m| m["text"]["body"].as_str().map(|_| ""))
        .collect();
    assert_eq!(texts.len(), 1);
    assert_eq!(
        sent[0]["text"]["body"],
        "We are closed today; we answer tomorrow."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_typed_in_the_business_app_keeps_bots_quiet() {
    let (t, graph) = start_with_graph(2_000).await;
    create_bot(
        &t,
        json!({"name": "Hi", "reply_type": 1, "trigger": "hi", "bot_type": 1,
               "response": {"text": "Hello!"}}),
    )
    .await;
    let wa = "15551230010";
    let ts = now_s();
    t.post_signed(&text_payload(PNID, wa, "Ana Lima", "wamid.q1", ts, "hi"))
        .await;
    wait_sent(&graph, wa, 1).await;
    // Staff answer from the WhatsApp Business app (coexistence): an echo.
    t.post_signed(&echo_payload(
        PNID,
        "wamid.q-echo",
        wa,
        ts + 1,
        "I'll take it from here",
    ))
    .await;
    let customer_id = customer_of(&t, wa).await;
    let noted = eventually(Duration::from_secs(20), || async {
        let c = t.store().conversation(PNID, &customer_id).await.unwrap()?;
        (c.last_staff_reply_at == Some((ts + 1) * 1000)).then_some(())
    })
    .await;
    assert!(noted.is_some(), "the echo counts as a staff reply");
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.q2",
        ts + 2,
        "hi",
    ))
    .await;
    wait_handled(&t, &customer_id, &["wamid.q2"]).await;
    assert_eq!(sent_to(&graph, wa).len(), 1, "{:?}", sent_to(&graph, wa));
}

#[tokio::test(flavor = "multi_thread")]
async fn first_message_keyword_and_session_start_bots_send_media_location_and_contacts() {
    let (t, graph) = start_with_graph(2_000).await;
    create_bot(
        &t,
        json!({"name": "Welcome", "reply_type": 3, "bot_type": 5,
               "response": {"kind": "image", "link": "https://example.com/welcome.jpg", "caption": "Welcome, {{customer_first_name}}!"}}),
    )
    .await;
    create_bot(
        &t,
        json!({"name": "Where", "reply_type": 4, "trigger": "address, where", "bot_type": 6,
               "response": {"latitude": 40.4168, "longitude": -3.7038, "name": "Our shop", "address": "Gran Vía 1, Madrid"}}),
    )
    .await;
    create_bot(
        &t,
        json!({"name": "Card", "reply_type": 7, "rel_types": ["general"], "priority": 5, "bot_type": 11,
               "response": {"contacts": [{"name": {"formatted_name": "Support desk"},
                                          "phones": [{"phone": "+34 600 000 000", "type": "WORK"}]}]}}),
    )
    .await;
    let wa = "15551230011";
    let ts = now_s();
    // The first message of the conversation (and of its session): the welcome image answers
    // (first message and session start are one family: the first match in order answers).
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.k1",
        ts,
        "good morning",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["type"], "image", "{sent:?}");
    assert_eq!(sent[0]["image"]["link"], "https://example.com/welcome.jpg");
    assert_eq!(sent[0]["image"]["caption"], "Welcome, Ana!");
    // A keyword, anywhere in the text: the location.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.k2",
        ts + 1,
        "Where are you exactly?",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 2).await;
    assert_eq!(sent[1]["type"], "location", "{sent:?}");
    assert_eq!(sent[1]["location"]["name"], "Our shop");
    // Neither first nor a keyword: nothing.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.k3",
        ts + 2,
        "thanks",
    ))
    .await;
    let customer_id = customer_of(&t, wa).await;
    wait_handled(&t, &customer_id, &["wamid.k3"]).await;
    assert_eq!(sent_to(&graph, wa).len(), 2);

    // A returning customer: their first message was 25 hours ago (too old to answer: the window
    // had closed), so this one starts a new session but is not the first message: the
    // session-start bot sends the contact card.
    let wa2 = "15551230012";
    t.post_signed(&text_payload(
        PNID,
        wa2,
        "Bo Chen",
        "wamid.s1",
        ts - 90_000,
        "old question",
    ))
    .await;
    let customer2 = customer_of(&t, wa2).await;
    wait_handled(&t, &customer2, &["wamid.s1"]).await;
    assert!(
        sent_to(&graph, wa2).is_empty(),
        "a 25-hour-old message is not answered"
    );
    t.post_signed(&text_payload(
        PNID, wa2, "Bo Chen", "wamid.s2", ts, "I'm back",
    ))
    .await;
    let sent = wait_sent(&graph, wa2, 1).await;
    assert_eq!(sent[0]["type"], "contacts", "{sent:?}");
    assert_eq!(
        sent[0]["contacts"][0]["name"]["formatted_name"],
        "Support desk"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_closing_reminder_goes_before_the_window_closes_and_not_after() {
    let (t, graph) = start_with_graph(2_000).await;
    create_bot(
        &t,
        json!({"name": "Keep it open", "reply_type": 11, "minutes": 10, "bot_type": 1,
               "response": {"text": "Reply to keep this chat open."}}),
    )
    .await;
    // The window closes in 8 minutes: the reminder (10 minutes before) is due.
    let (open, closed) = ("15551230021", "15551230022");
    let day = 24 * 3600;
    t.post_signed(&text_payload(
        PNID,
        open,
        "Ana",
        "wamid.w1",
        now_s() - day + 480,
        "hi",
    ))
    .await;
    // This one's window closed an hour ago: no reminder can help.
    t.post_signed(&text_payload(
        PNID,
        closed,
        "Rui",
        "wamid.w2",
        now_s() - day - 3600,
        "hi",
    ))
    .await;
    let (a, b) = (customer_of(&t, open).await, customer_of(&t, closed).await);
    wait_handled(&t, &a, &["wamid.w1"]).await;
    wait_handled(&t, &b, &["wamid.w2"]).await;
    t.stack.run_schedule("BotTimersFunction").await.unwrap();
    let sent = wait_sent(&graph, open, 1).await;
    assert_eq!(sent[0]["text"]["body"], "Reply to keep this chat open.");
    t.stack.run_schedule("BotTimersFunction").await.unwrap();
    settle().await;
    assert_eq!(sent_to(&graph, open).len(), 1);
    assert!(
        sent_to(&graph, closed).is_empty(),
        "{:?}",
        sent_to(&graph, closed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_bot_sends_the_stored_approved_template_with_its_parameters() {
    let (t, graph) = start_with_graph(2_000).await;
    graph.set_templates(vec![
        json!({"id": "2001", "name": "order_help", "language": "en_US", "status": "APPROVED",
               "category": "UTILITY", "parameter_format": "POSITIONAL",
               "components": [{"type": "BODY", "text": "Hi {{1}}, track your order in the app."}]}),
        json!({"id": "2002", "name": "summer_sale", "language": "en_US", "status": "PAUSED",
               "category": "MARKETING", "parameter_format": "POSITIONAL",
               "components": [{"type": "BODY", "text": "Sale: {{1}}"}]}),
    ]);
    t.load_templates().await;
    let body_param =
        |text: &str| json!([{"type": "body", "parameters": [{"type": "text", "text": text}]}]);
    // A paused template, or parameters that do not fit, are refused on save.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/bots",
            Some(&t.admin_token()),
            Some(
                json!({"name": "Sale", "reply_type": 1, "trigger": "sale", "bot_type": 2,
                "response": {"template": {"name": "summer_sale", "language": "en_US",
                                          "components": body_param("50%")}}}),
            ),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("template_invalid")),
        "a paused template: {v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("PAUSED"),
        "{v}"
    );
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/bots",
            Some(&t.admin_token()),
            Some(
                json!({"name": "Order", "reply_type": 1, "trigger": "order", "bot_type": 2,
                "response": {"template": {"name": "order_help", "language": "en_US"}}}),
            ),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("template_invalid")),
        "a missing parameter: {v}"
    );
    create_bot(
        &t,
        json!({"name": "Order", "reply_type": 1, "trigger": "order", "bot_type": 2,
            "response": {"template": {"name": "order_help", "language": "en_US",
                                      "components": body_param("{{customer_first_name}}")}}}),
    )
    .await;
    let wa = "15551230023";
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.tp1",
        now_s(),
        "Order",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["type"], "template");
    assert_eq!(sent[0]["template"]["name"], "order_help");
    assert_eq!(sent[0]["template"]["language"]["code"], "en_US");
    assert_eq!(
        sent[0]["template"]["components"][0]["parameters"][0]["text"],
        "Ana"
    );
    assert!(graph.problems().is_empty(), "{:?}", graph.problems());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_who_stopped_marketing_gets_no_marketing_bot() {
    let (t, graph) = start_with_graph(2_000).await;
    create_bot(
        &t,
        json!({"name": "Offers", "reply_type": 1, "trigger": "offers", "bot_type": 1,
               "marketing": true, "response": {"text": "Big sale this week!"}}),
    )
    .await;
    create_bot(
        &t,
        json!({"name": "Catalogue", "reply_type": 2, "trigger": "offers", "bot_type": 1,
               "response": {"text": "Our catalogue is on the website."}}),
    )
    .await;
    // The customer of the fixture writes, then stops marketing messages.
    let wa = "16505551234";
    let ts = now_s();
    t.post_signed(&text_payload(PNID, wa, "Sheena", "wamid.o1", ts, "offers"))
        .await;
    let sent = wait_sent(&graph, wa, 2).await;
    let texts: Vec<&str> = sent
        .iter()
        .filter_map(|m| m["text"]["body"].as_str())
        .collect();
    assert!(texts.contains(&"Big sale this week!"), "{texts:?}");
    assert_eq!(
        t.post_signed(&fixture("user_preferences_stop.json"))
            .await
            .0,
        200
    );
    let cid = customer_of(&t, wa).await;
    let stopped = eventually(Duration::from_secs(20), || async {
        t.store()
            .customer(&cid)
            .await
            .unwrap()
            .filter(|c| c.marketing_opt_out)
    })
    .await;
    assert!(stopped.is_some(), "opt-out recorded");
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Sheena",
        "wamid.o2",
        ts + 1,
        "offers",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 3).await;
    assert_eq!(sent[2]["text"]["body"], "Our catalogue is on the website.");
    wait_handled(&t, &cid, &["wamid.o2"]).await;
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 3, "{:?}", sent_to(&graph, wa));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_menu_left_alone_expires_and_its_choices_no_longer_count() {
    let (t, graph) = start_with_graph(2_000).await;
    create_bot(
        &t,
        json!({
            "name": "Menu", "reply_type": 1, "trigger": "menu", "bot_type": 3,
            "response": {"menu": {"body": "Pick one", "button": "Options", "options": [
                {"id": "hours", "title": "Opening hours", "reply": "9 to 5."},
                {"id": "where", "title": "Where are you?", "reply": "Main street 1."}
            ]}, "settings": {"expire_minutes": 5}},
        }),
    )
    .await;
    let wa = "15551230024";
    let ts = now_s() - 600;
    t.post_signed(&text_payload(PNID, wa, "Ana", "wamid.e1", ts, "menu"))
        .await;
    wait_sent(&graph, wa, 1).await;
    // Within the 5 minutes a number is a choice …
    t.post_signed(&text_payload(PNID, wa, "Ana", "wamid.e2", ts + 60, "2"))
        .await;
    let sent = wait_sent(&graph, wa, 2).await;
    assert_eq!(sent[1]["text"]["body"], "Main street 1.");
    // … a leaf ends the menu; shown again, then left alone for 10 minutes: expired.
    t.post_signed(&text_payload(PNID, wa, "Ana", "wamid.e3", ts + 120, "menu"))
        .await;
    wait_sent(&graph, wa, 3).await;
    t.post_signed(&text_payload(PNID, wa, "Ana", "wamid.e4", now_s(), "1"))
        .await;
    let cid = customer_of(&t, wa).await;
    wait_handled(&t, &cid, &["wamid.e4"]).await;
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 3, "{:?}", sent_to(&graph, wa));
    let st = t.store().bot_state(PNID, &cid).await.unwrap();
    assert!(st.state.menu.is_none(), "{:?}", st.state);
}

/// Waits until the inbound function took every queued webhook change (each hand-off to the bots
/// is made before its record is deleted), then answers the jobs the bots queue holds.
async fn handed_to_bots(t: &TestStack) -> i64 {
    let drained = eventually(Duration::from_secs(20), || async {
        (t.queue_depth("InboundQueue").await == (0, 0)).then_some(())
    })
    .await;
    assert!(drained.is_some(), "the inbound queue never drained");
    let (visible, in_flight) = t.queue_depth("BotsQueue").await;
    visible + in_flight
}

/// Makes the table one whose bots were saved before the set's head kept the active ones.
async fn strip_tracking(t: &TestStack) {
    t.update_item("BOTSET", "VERSION")
        .update_expression("REMOVE tracked, active_ids")
        .send()
        .await
        .unwrap();
}

/// With AI off, the inbound function hands a message to the bots function only when an active
/// bot's trigger matches it (or a menu, flow or rating is in progress, or a timer bot is
/// active: the gate's unit tests, and the menu, flow, rating and timer tests above, which pass
/// through it): a FIFO send, receive and delete, an invocation and three reads saved per
/// message nothing answers. Anything it cannot know hands off. (The bots queue has no consumer
/// here, so what was handed off stays there to be counted.)
#[tokio::test(flavor = "multi_thread")]
async fn messages_go_to_the_bots_only_when_a_bot_or_the_ai_may_answer() {
    let graph = fake_graph::FakeGraph::start().await;
    let mut opts = options_with_graph(&graph, 2_000);
    opts.idle_queues = vec!["BotsQueue".into()];
    let t = start_with(opts).await;
    let ts = now_s();
    let mut n = 0;
    // Each customer's conversation: a hand-off holds it for the bots (the next ones go too).
    let mut message = async |wa: &str, text: &str| {
        n += 1;
        let (s, _) = t
            .post_signed(&text_payload(
                PNID,
                wa,
                "Ana Lima",
                &format!("wamid.gate{n}"),
                ts + n,
                text,
            ))
            .await;
        assert_eq!(s, 200);
        handed_to_bots(&t).await
    };
    let (c1, c2, c3, c4) = ("15551230091", "15551230097", "15551230098", "15551230099");
    // No bot was ever saved.
    assert_eq!(message(c1, "hello").await, 0);
    // A bot saved inactive (a new table's first save keeps the active bots: none).
    let inactive = json!({"name": "Later", "reply_type": 1, "trigger": "hello", "bot_type": 1,
                          "response": {"text": "Hi!"}, "is_bot_active": false});
    create_bot(&t, inactive.clone()).await;
    let head = t.store().bot_set_head().await.unwrap();
    assert!(head.tracked && head.active_ids.is_empty(), "{head:?}");
    assert_eq!(message(c1, "hello").await, 0);
    // An active bot: every message goes, whether it matches or not.
    let active = create_bot(
        &t,
        json!({"name": "Greeting", "reply_type": 1, "trigger": "hello", "bot_type": 1,
               "response": {"text": "Hi!"}}),
    )
    .await;
    let id = active["id"].as_str().unwrap().to_string();
    assert_eq!(
        t.store().bot_set_head().await.unwrap().active_ids,
        vec![id.clone()]
    );
    // A message its trigger does not match (and no menu, flow or rating in progress): no.
    assert_eq!(message(c1, "anything else").await, 0);
    assert_eq!(message(c1, "hello").await, 1);
    // The conversation is held for the bots now: its next message goes whatever it says (the
    // first job may not be answered yet).
    assert_eq!(message(c1, "anything else").await, 2);
    // Deactivated: none again.
    let off = json!({"name": "Greeting", "reply_type": 1, "trigger": "hello", "bot_type": 1,
                     "response": {"text": "Hi!"}, "is_bot_active": false});
    put_bot(&t, &id, off).await;
    assert!(none_active(&t).await);
    assert_eq!(message(c2, "hello").await, 2);
    // AI on (it answers what no bot does), then off again (read as the bots function reads it:
    // cached for the stack's secret lifetime, 2 s here).
    set_ai(
        &t,
        json!({"enabled": true, "provider": "openai", "model": "gpt-4o-mini", "mode": "manual",
               "api_key": "sk-test-0123456789abcdef"}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(message(c2, "a question").await, 3);
    set_ai(&t, json!({"enabled": false})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(message(c3, "another question").await, 3);
    // A table from before the head kept its active bots: unknown, so handed off, until a bot
    // save counts them (none active).
    strip_tracking(&t).await;
    assert_eq!(message(c3, "hello").await, 4);
    create_bot(&t, inactive).await;
    let head = t.store().bot_set_head().await.unwrap();
    assert!(head.tracked && head.active_ids.is_empty(), "{head:?}");
    assert_eq!(message(c4, "hello").await, 4);
    // What was handed off names the set's version read.
    let body = t
        .sqs()
        .receive_message()
        .queue_url(t.info().resource("BotsQueue").url.clone().unwrap())
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|m| m.body)
        .expect("a bot job");
    let job = shared::bots::job::BotJob::from_body(&body).unwrap();
    assert_eq!(job.set_version, Some(2), "{body}");
}

/// The "first message" trigger fires on a conversation's first customer message even when the
/// bots never saw the messages before (no bot was active then), and only on it.
#[tokio::test(flavor = "multi_thread")]
async fn a_bot_activated_later_still_knows_each_conversations_first_message() {
    let (t, graph) = start_with_graph(2_000).await;
    let (old, new) = ("15551230093", "15551230094");
    let ts = now_s();
    t.post_signed(&text_payload(PNID, old, "Ana Lima", "wamid.f1", ts, "hi"))
        .await;
    assert_eq!(handed_to_bots(&t).await, 0);
    let welcome = create_bot(
        &t,
        json!({"name": "Welcome", "reply_type": 3, "bot_type": 1, "response": {"text": "Welcome!"}}),
    )
    .await;
    // As if the table came from before the head kept its active bots: the bots function
    // counts them on its first compile.
    strip_tracking(&t).await;
    t.post_signed(&text_payload(
        PNID,
        old,
        "Ana Lima",
        "wamid.f2",
        ts + 1,
        "hi again",
    ))
    .await;
    let old_id = customer_of(&t, old).await;
    wait_handled(&t, &old_id, &["wamid.f2"]).await;
    assert!(
        sent_to(&graph, old).is_empty(),
        "not the first message: {:?}",
        sent_to(&graph, old)
    );
    let head = eventually(Duration::from_secs(20), || async {
        let h = t.store().bot_set_head().await.unwrap();
        h.tracked.then_some(h)
    })
    .await
    .expect("the bots function counted the active bots");
    assert_eq!(
        head.active_ids,
        vec![welcome["id"].as_str().unwrap().to_string()]
    );
    // A new customer's first message is welcomed, their next is not.
    t.post_signed(&text_payload(
        PNID,
        new,
        "Bo Chen",
        "wamid.f3",
        ts + 2,
        "hello",
    ))
    .await;
    let sent = wait_sent(&graph, new, 1).await;
    assert_eq!(sent[0]["text"]["body"], "Welcome!");
    t.post_signed(&text_payload(
        PNID,
        new,
        "Bo Chen",
        "wamid.f4",
        ts + 3,
        "thanks",
    ))
    .await;
    let new_id = customer_of(&t, new).await;
    wait_handled(&t, &new_id, &["wamid.f4"]).await;
    assert_eq!(sent_to(&graph, new).len(), 1, "{:?}", sent_to(&graph, new));
    // The conversation keeps its first message (the redelivery of a job reads the same).
    let conv = t
        .store()
        .conversation(PNID, &new_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.first_inbound_wamid.as_deref(), Some("wamid.f3"));
}

/// What no trigger matches still reaches the bots when the conversation has something in
/// progress: a choice typed before the menu was even sent (the hand-off holds the conversation
/// for the bots), a rating given after every bot was deactivated (the rating request holds it
/// until it expires; a conversation from before the hold existed goes once, unheld).
#[tokio::test(flavor = "multi_thread")]
async fn answers_to_a_menu_or_a_rating_reach_the_bots_though_no_trigger_matches_them() {
    let (t, graph) = start_with_graph(2_000).await;
    let menu = json!({
        "name": "Main menu", "reply_type": 2, "trigger": "menu", "bot_type": 3,
        "response": {"menu": {
            "body": "What do you need?", "button": "Options",
            "options": [
                {"id": "sales", "title": "Sales", "reply": "Sales it is."},
                {"id": "support", "title": "Support", "reply": "Tell us what happened."}
            ]}},
    });
    let menu_id = create_bot(&t, menu.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rate = json!({"name": "Rate us", "reply_type": 13, "bot_type": 13,
                      "response": {"question": "How did we do?"}});
    let rate_id = create_bot(&t, rate.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Typing ahead: the choice arrives before the bots answered "menu".
    let wa = "15551230095";
    let ts = now_s();
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
            "contacts": [{"profile": {"name": "Ana Lima"}, "wa_id": wa}],
            "messages": [
                {"from": wa, "id": "wamid.t1", "timestamp": ts.to_string(), "type": "text", "text": {"body": "menu"}},
                {"from": wa, "id": "wamid.t2", "timestamp": (ts + 1).to_string(), "type": "text", "text": {"body": "2"}}
            ]
        }}]}]
    });
    let (s, _) = t.post_signed(body.to_string().as_bytes()).await;
    assert_eq!(s, 200);
    let sent = wait_sent(&graph, wa, 2).await;
    assert_eq!(sent[0]["interactive"]["type"], "list", "{sent:?}");
    assert_eq!(
        sent[1]["text"]["body"], "Tell us what happened.",
        "{sent:?}"
    );

    // A rating request, then every bot deactivated, then the answer.
    let wa2 = "15551230096";
    t.post_signed(&text_payload(
        PNID, wa2, "Bo Chen", "wamid.t3", ts, "thanks",
    ))
    .await;
    let id = t.conversation_of(wa2).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/conversations/{id}/close"),
            Some(&t.token(&["whatsapp_chat:view"])),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    wait_sent(&graph, wa2, 1).await;
    for (bot_id, mut body) in [(menu_id, menu), (rate_id, rate)] {
        body["is_bot_active"] = json!(false);
        put_bot(&t, &bot_id, body).await;
    }
    assert!(none_active(&t).await);
    // As if the rating had been asked for before the hold existed: the conversation keeps
    // neither its hold nor its first message; its next message goes all the same.
    let customer2 = customer_of(&t, wa2).await;
    t.update_item(
        shared::store::keys::conversation_pk(PNID, &customer2),
        shared::store::keys::CONV_SK,
    )
    .update_expression("REMOVE bots_hold_until, first_inbound_wamid")
    .send()
    .await
    .unwrap();
    t.post_signed(&text_payload(PNID, wa2, "Bo Chen", "wamid.t4", ts + 5, "4"))
        .await;
    let conv = eventually(Duration::from_secs(20), || async {
        let c = t.conversation_of(wa2).await;
        (c["rating"] == 4).then_some(c)
    })
    .await;
    assert!(conv.is_some(), "rated 4 though no bot is active");
    let sent = wait_sent(&graph, wa2, 2).await;
    assert_eq!(sent[1]["type"], "text", "the thanks: {sent:?}");
}
