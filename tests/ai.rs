//! AI replies end to end: signed webhooks in, the bots function asking a fake OpenAI or a fake
//! Gemini (which check the request shapes the providers document), the answer going out
//! through the fake Graph API; `manual` mode suggestions sent by staff; fallback on failure;
//! ticket requests collected by the AI published once.
use std::time::Duration;

use integration_tests::bot_helpers::*;
use integration_tests::fake_ai::{Api, FakeAi, Reply};
use integration_tests::*;
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789abcdef";

fn auto_openai() -> Value {
    json!({"enabled": true, "provider": "openai", "model": "gpt-4o-mini", "mode": "auto",
           "api_key": KEY, "system_prompt": "We repair bikes in Lisbon."})
}

async fn wait_ai_requests(ai: &FakeAi, n: usize) -> Vec<integration_tests::fake_ai::AiRequest> {
    eventually(Duration::from_secs(30), || async {
        let r = ai.requests();
        (r.len() >= n).then_some(r)
    })
    .await
    .unwrap_or_else(|| panic!("{n} AI requests: {:?}", ai.requests()))
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_mode_answers_what_no_bot_matched_through_openai_once() {
    let (t, graph, ai) = start_with_ai(2_000).await;
    set_ai(&t, auto_openai()).await;
    create_bot(
        &t,
        json!({"name": "Greeting", "reply_type": 1, "trigger": "hello", "bot_type": 1,
               "response": {"text": "Hi there!"}}),
    )
    .await;
    let wa = "15551240001";
    let ts = now_s();
    // A bot matches: the AI is not asked.
    t.post_signed(&text_payload(PNID, wa, "Ana Lima", "wamid.a1", ts, "hello"))
        .await;
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["text"]["body"], "Hi there!");
    let cid = customer_of(&t, wa).await;
    wait_handled(&t, &cid, &["wamid.a1"]).await;
    assert!(ai.requests().is_empty(), "{:?}", ai.requests());
    // Nothing matches: the AI answers, with the conversation and the admin's prompt. Sent in
    // the same second as the first: the bot's answer to it (stored at its millisecond) sorts
    // after this message in the history, yet this message is the last turn.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.a2",
        ts,
        "Do you fix disc brakes?",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 2).await;
    assert_eq!(
        sent[1]["text"]["body"],
        "(fake AI) You wrote: Do you fix disc brakes?"
    );
    let reqs = ai.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].api, Api::OpenAi);
    assert_eq!(reqs[0].api_key, KEY);
    assert_eq!(reqs[0].model, "gpt-4o-mini");
    assert!(reqs[0].system().contains("We repair bikes in Lisbon."));
    assert!(reqs[0].system().contains("Ana Lima"));
    assert_eq!(
        reqs[0].user_texts(),
        ["hello", "Do you fix disc brakes?"],
        "{:?}",
        reqs[0].body
    );
    assert_eq!(
        reqs[0].body["messages"][2],
        json!({"role": "assistant", "content": "Hi there!"})
    );
    assert!(ai.problems().is_empty(), "{:?}", ai.problems());
    // Meta delivers the message again: answered once, the AI not asked again.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana Lima",
        "wamid.a2",
        ts,
        "Do you fix disc brakes?",
    ))
    .await;
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 2);
    assert_eq!(ai.requests().len(), 1);
    // The AI's message is in the history, from the bots.
    let conv = t.conversation_of(wa).await;
    let msgs = t.messages(conv["id"].as_str().unwrap()).await;
    assert!(
        msgs.iter().any(
            |m| m["source"] == "bot" && m["summary"].as_str().unwrap_or("").contains("fake AI")
        ),
        "{msgs:?}"
    );
    assert!(!captured_logs().contains(KEY), "the AI key was logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ai_bot_answers_through_gemini_with_its_instructions() {
    let (t, graph, ai) = start_with_ai(2_000).await;
    set_ai(
        &t,
        json!({"enabled": true, "provider": "gemini", "model": "gemini-2.0-flash", "mode": "auto",
               "api_key": KEY}),
    )
    .await;
    let bot = create_bot(
        &t,
        json!({"name": "Prices", "reply_type": 2, "trigger": "price", "bot_type": 12,
               "response": {"instructions": "Repairs start at 20 EUR."}}),
    )
    .await;
    ai.script([Reply::Text(
        json!({"reply": "Repairs start at 20 EUR.", "ticket": null}).to_string(),
    )]);
    let wa = "15551240002";
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Rui",
        "wamid.g1",
        now_s(),
        "What is the price of a repair?",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["text"]["body"], "Repairs start at 20 EUR.");
    let reqs = ai.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].api, Api::Gemini);
    assert_eq!(reqs[0].model, "gemini-2.0-flash");
    assert_eq!(reqs[0].api_key, KEY);
    assert!(reqs[0].system().contains("Repairs start at 20 EUR."));
    assert_eq!(
        reqs[0].body["generationConfig"]["responseMimeType"],
        "application/json"
    );
    assert!(ai.problems().is_empty(), "{:?}", ai.problems());
    let id = bot["id"].as_str().unwrap();
    let counted = eventually(Duration::from_secs(10), || async {
        let (_, b) = t
            .api(
                "GET",
                &format!("/api/v1/bots/{id}"),
                Some(&t.admin_token()),
                None,
            )
            .await;
        (b["send_count"] == 1).then_some(())
    })
    .await;
    assert!(counted.is_some(), "the AI bot's send is counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_ai_is_retried_once_then_the_fallback_text_goes() {
    let (t, graph, ai) = start_with_ai(1_000).await;
    let mut settings = auto_openai();
    settings["fallback_text"] = json!("Our team will answer you shortly.");
    set_ai(&t, settings).await;
    let wa = "15551240003";
    let ts = now_s();
    // 429 then an answer: one retry, one message.
    ai.script([
        Reply::Error(429),
        Reply::Text(json!({"reply": "We open at 9.", "ticket": null}).to_string()),
    ]);
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana",
        "wamid.f1",
        ts,
        "When do you open?",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["text"]["body"], "We open at 9.");
    assert_eq!(ai.requests().len(), 2);
    // Too slow (past AI_TIMEOUT_MS): not retried, the fallback text is sent.
    ai.script([Reply::After(
        Duration::from_secs(4),
        json!({"reply": "late", "ticket": null}).to_string(),
    )]);
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana",
        "wamid.f2",
        ts + 1,
        "And on Sunday?",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 2).await;
    assert_eq!(sent[1]["text"]["body"], "Our team will answer you shortly.");
    assert_eq!(ai.requests().len(), 3);
    // Two 5xx: one retry, then the fallback.
    ai.script([Reply::Error(500), Reply::Error(503)]);
    t.post_signed(&text_payload(PNID, wa, "Ana", "wamid.f3", ts + 2, "Hello?"))
        .await;
    let sent = wait_sent(&graph, wa, 3).await;
    assert_eq!(sent[2]["text"]["body"], "Our team will answer you shortly.");
    assert_eq!(ai.requests().len(), 5);
    // A 401 (bad key) is not retried.
    ai.script([Reply::Error(401)]);
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana",
        "wamid.f4",
        ts + 3,
        "Anyone?",
    ))
    .await;
    wait_sent(&graph, wa, 4).await;
    assert_eq!(ai.requests().len(), 6);
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 4);
    assert!(!captured_logs().contains(KEY), "the AI key was logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn manual_mode_only_suggests_and_staff_send_or_dismiss() {
    let (t, graph, ai) = start_with_ai(2_000).await;
    let mut settings = auto_openai();
    settings["mode"] = json!("manual");
    set_ai(&t, settings).await;
    let wa = "15551240004";
    let ts = now_s();
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana",
        "wamid.s1",
        ts,
        "Can I book Monday?",
    ))
    .await;
    let cid = customer_of(&t, wa).await;
    wait_handled(&t, &cid, &["wamid.s1"]).await;
    let conv = eventually(Duration::from_secs(10), || async {
        let c = t.conversation_of(wa).await;
        c["ai_suggestion"].is_object().then_some(c)
    })
    .await
    .expect("a suggestion on the conversation");
    let s = conv["ai_suggestion"].clone();
    assert_eq!(s["text"], "(fake AI) You wrote: Can I book Monday?");
    assert_eq!(s["for_wamid"], "wamid.s1");
    settle().await;
    assert!(sent_to(&graph, wa).is_empty(), "manual mode sent by itself");
    assert_eq!(ai.requests().len(), 1);
    // Shown in the history as an internal suggestion.
    let conv_id = conv["id"].as_str().unwrap().to_string();
    let msgs = t.messages(&conv_id).await;
    assert!(
        msgs.iter()
            .any(|m| m["type"] == "ai_suggestion" && m["direction"] == "internal"),
        "{msgs:?}"
    );
    // Staff send it (edited): through the reply path, once.
    let token = t.token(&["whatsapp_chat:view"]);
    let path = format!("/api/v1/conversations/{conv_id}/ai-suggestion/send");
    let body = json!({"suggestion_id": s["id"], "text": "Yes, Monday at 10 works."});
    let (st, v) = t.api("POST", &path, Some(&token), Some(body.clone())).await;
    assert_eq!(st, 201, "{v}");
    let sent = wait_sent(&graph, wa, 1).await;
    assert_eq!(sent[0]["text"]["body"], "Yes, Monday at 10 works.");
    assert_eq!(sent[0]["context"]["message_id"], "wamid.s1");
    let (st, _) = t.api("POST", &path, Some(&token), Some(body)).await;
    assert_eq!(st, 200, "a retried click is answered from the first send");
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 1);
    assert!(t.conversation_of(wa).await["ai_suggestion"].is_null());
    // A later suggestion, dismissed.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana",
        "wamid.s2",
        ts + 1,
        "Thanks!",
    ))
    .await;
    let s2 = eventually(Duration::from_secs(20), || async {
        let c = t.conversation_of(wa).await;
        c["ai_suggestion"]["id"].as_str().map(str::to_string)
    })
    .await
    .expect("a second suggestion");
    let (st, v) = t
        .api(
            "POST",
            &path,
            Some(&token),
            Some(json!({"suggestion_id": "sug_other"})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("suggestion_changed")),
        "{v}"
    );
    let del = format!("/api/v1/conversations/{conv_id}/ai-suggestion/{s2}");
    assert_eq!(t.api("DELETE", &del, Some(&token), None).await.0, 204);
    assert_eq!(t.api("DELETE", &del, Some(&token), None).await.0, 404);
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_support_request_collected_by_the_ai_is_published_once() {
    let (t, graph, ai) = start_with_ai(2_000).await;
    set_ai(&t, auto_openai()).await;
    let tap = t.tap_our_events().await;
    ai.script([Reply::Text(
        json!({"reply": "Sorry about that! I passed it to the workshop.",
               "ticket": {"subject": "Brake noise after repair", "description": "Front disc brake squeaks since the repair on Friday.", "priority": "high"}})
        .to_string(),
    )]);
    let wa = "15551240005";
    let ts = now_s();
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana",
        "wamid.t1",
        ts,
        "My front brake squeaks since Friday's repair",
    ))
    .await;
    let sent = wait_sent(&graph, wa, 2).await;
    assert_eq!(
        sent[0]["text"]["body"],
        "Sorry about that! I passed it to the workshop."
    );
    let confirmation = sent[1]["text"]["body"].as_str().unwrap().to_string();
    assert!(confirmation.contains("tkt_"), "{confirmation}");
    // Meta delivers the message again: nothing more.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana",
        "wamid.t1",
        ts,
        "My front brake squeaks since Friday's repair",
    ))
    .await;
    settle().await;
    assert_eq!(sent_to(&graph, wa).len(), 2);
    let events = t.drain(&tap, Duration::from_secs(3)).await;
    let tickets: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "ticket.requested")
        .collect();
    assert_eq!(tickets.len(), 1, "{events:?}");
    let d = &tickets[0]["detail"];
    assert_eq!(d["subject"], "Brake noise after repair");
    assert_eq!(d["priority"], "high");
    assert_eq!(d["requested_by"], "ai");
    assert!(confirmation.contains(d["ticket_ref"].as_str().unwrap()));
    assert_documented("ticket.requested", d);
    let conv = t.conversation_of(wa).await;
    assert_eq!(conv["tickets"].as_array().map(Vec::len), Some(1), "{conv}");
    // The next answer knows a request is open.
    t.post_signed(&text_payload(
        PNID,
        wa,
        "Ana",
        "wamid.t2",
        ts + 1,
        "Any news?",
    ))
    .await;
    let reqs = wait_ai_requests(&ai, 2).await;
    assert!(
        reqs[1].system().contains("already passed"),
        "{}",
        reqs[1].system()
    );
}
