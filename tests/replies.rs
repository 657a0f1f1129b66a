//! Staff replies and inbox actions against a fake Graph API: one message per reply, the
//! 24-hour window, idempotency, lost answers settled from statuses, events on the CRM bus.
use std::time::Duration;

use integration_tests::fake_graph::{Answer, FakeGraph};
use integration_tests::local_runner::DEV_ACCESS_TOKEN;
use integration_tests::*;
use serde_json::{Value, json};

const PNID: &str = "106540352242922";

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn stack_with_graph() -> (TestStack, FakeGraph) {
    start_with_graph(700).await
}

/// A conversation whose window is open (the customer wrote just now).
async fn open_conversation(t: &TestStack, wa_id: &str) -> String {
    t.post_signed(&text_payload(
        PNID,
        wa_id,
        "Cust",
        &format!("wamid.in-{wa_id}"),
        now_s(),
        "hello",
    ))
    .await;
    // The window opens with the conversation's activity update, just after the message is stored.
    let c = eventually(Duration::from_secs(20), || async {
        let c = t.conversation_of(wa_id).await;
        (c["window_open"] == true).then_some(c)
    })
    .await
    .expect("window open");
    c["id"].as_str().unwrap().to_string()
}

async fn reply(t: &TestStack, conv: &str, key: &str, content: Value) -> (u16, Value) {
    let url = format!(
        "{}/api/v1/conversations/{conv}/messages",
        t.info().http_base
    );
    let r = t
        .http
        .post(url)
        .bearer_auth(t.token(&["whatsapp_chat:view"]))
        .header("idempotency-key", key)
        .json(&json!({"content": content}))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(DEV_ACCESS_TOKEN),
        "the access token must never be shown"
    );
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_is_sent_once_stored_and_updated_by_its_statuses() {
    let (t, graph) = stack_with_graph().await;
    let conv = open_conversation(&t, "15550101010").await;
    let (s, v) = reply(
        &t,
        &conv,
        "click-1",
        json!({"type": "text", "body": "Yes, in blue too"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "accepted");
    let wamid = v["wamid"].as_str().unwrap().to_string();
    let reqs = graph.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, format!("/v25.0/{PNID}/messages"));
    assert_eq!(
        reqs[0].authorization.as_deref(),
        Some(format!("Bearer {DEV_ACCESS_TOKEN}").as_str())
    );
    assert_eq!(reqs[0].body["to"], "15550101010");
    assert_eq!(reqs[0].body["type"], "text");
    assert_eq!(reqs[0].body["text"]["body"], "Yes, in blue too");
    assert_eq!(reqs[0].body["biz_opaque_callback_data"], v["id"]);
    assert!(graph.problems().is_empty(), "{:?}", graph.problems());
    // The same click again: answered from the intent, nothing sent.
    let (s2, v2) = reply(
        &t,
        &conv,
        "click-1",
        json!({"type": "text", "body": "Yes, in blue too"}),
    )
    .await;
    assert_eq!((s2, v2["wamid"].as_str()), (200, Some(wamid.as_str())));
    assert_eq!(graph.requests().len(), 1);
    // Statuses (with our id and pricing) move it to delivered and read.
    for (st, dt) in [("delivered", 2), ("read", 5)] {
        t.post_signed(&status_payload(
            PNID,
            &wamid,
            st,
            now_s() + dt,
            "15550101010",
        ))
        .await;
    }
    let msg = eventually(Duration::from_secs(20), || async {
        t.messages(&conv)
            .await
            .into_iter()
            .find(|m| m["id"] == wamid.as_str() && m["delivery"]["status"] == "read")
    })
    .await
    .expect("outbound message read");
    assert_eq!(msg["direction"], "outbound");
    assert_eq!(msg["staff_id"], "7");
    assert_eq!(msg["delivery"]["pricing"]["category"], "utility");
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_the_window_only_templates_go() {
    let (t, graph) = stack_with_graph().await;
    // Meta's fixture is from 2025: its window closed long ago.
    t.post_signed(&fixture("text_message.json")).await;
    let conv = t.conversation_of("16505551234").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = reply(&t, &conv, "k1", json!({"type": "text", "body": "hi"})).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "window_closed");
    assert!(v["error"]["message"].as_str().unwrap().contains("template"));
    assert!(graph.requests().is_empty());
    // Templates are checked against the stored ones: load it from (fake) Meta first.
    graph.set_templates(vec![
        json!({"id": "1001", "name": "order_update", "language": "en_US",
        "status": "APPROVED", "category": "UTILITY", "parameter_format": "POSITIONAL",
        "components": [{"type": "BODY", "text": "Your order {{1}} has shipped."}]}),
    ]);
    t.load_templates().await;
    let tpl = json!({"type": "template", "name": "order_update", "language": "en_US",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "4821"}]}]});
    let (s, v) = reply(&t, &conv, "k2", tpl).await;
    assert_eq!(s, 201, "{v}");
    let reqs = graph.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body["type"], "template");
    assert_eq!(reqs[0].body["template"]["name"], "order_update");
    assert_eq!(reqs[0].body["template"]["language"]["code"], "en_US");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_is_unknown_never_resent_and_settled_by_a_status() {
    let (t, graph) = stack_with_graph().await;
    let conv = open_conversation(&t, "15550202020").await;
    graph.script([Answer::AcceptAfter(Duration::from_millis(1500))]);
    let (s, v) = reply(
        &t,
        &conv,
        "slow",
        json!({"type": "text", "body": "are you there?"}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["state"], "unknown");
    let our_id = v["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(graph.requests().len(), 1, "sent exactly once");
    // The user clicks again: still unknown, still not re-sent.
    let (s, v) = reply(
        &t,
        &conv,
        "slow",
        json!({"type": "text", "body": "are you there?"}),
    )
    .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("unknown")));
    assert_eq!(graph.requests().len(), 1);
    // Meta's status carries our id: the send is settled and its message appears.
    let status = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": PNID},
        "statuses": [{"id": "wamid.LATE1", "status": "sent", "timestamp": now_s().to_string(), "recipient_id": "15550202020",
                      "biz_opaque_callback_data": our_id}]}}]}]});
    t.post_signed(status.to_string().as_bytes()).await;
    let m = eventually(Duration::from_secs(20), || async {
        t.messages(&conv)
            .await
            .into_iter()
            .find(|m| m["id"] == "wamid.LATE1")
    })
    .await
    .expect("settled message stored");
    assert_eq!(m["delivery"]["status"], "sent");
    let (_, v) = reply(
        &t,
        &conv,
        "slow",
        json!({"type": "text", "body": "are you there?"}),
    )
    .await;
    assert_eq!(
        (v["state"].as_str(), v["wamid"].as_str()),
        (Some("accepted"), Some("wamid.LATE1"))
    );
    assert_eq!(graph.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_sent_as_400_is_retried_and_sends_once() {
    let (t, graph) = stack_with_graph().await;
    let conv = open_conversation(&t, "15550303030").await;
    graph.script([Answer::Error(400, 130429)]);
    let (s, v) = reply(&t, &conv, "rl", json!({"type": "text", "body": "x"})).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(graph.requests().len(), 2);
    let accepted: Vec<_> = t
        .messages(&conv)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(accepted.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_refusals_are_clear_and_recorded() {
    let (t, graph) = stack_with_graph().await;
    let conv = open_conversation(&t, "15550404040").await;
    graph.script([
        Answer::Error(400, 131026),
        Answer::Error(400, 131047),
        Answer::Error(401, 190),
    ]);
    let (s, v) = reply(&t, &conv, "a", json!({"type": "text", "body": "x"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("recipient_refused")),
        "{v}"
    );
    let (s, v) = reply(&t, &conv, "b", json!({"type": "text", "body": "x"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("window_closed")),
        "{v}"
    );
    let (s, v) = reply(&t, &conv, "c", json!({"type": "text", "body": "x"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (502, Some("meta_error")),
        "{v}"
    );
    assert_eq!(
        graph.requests().len(),
        3,
        "auth and recipient errors are not retried"
    );
    // A refused send answered again from its record, not re-sent.
    let (s, v) = reply(&t, &conv, "a", json!({"type": "text", "body": "x"})).await;
    assert_eq!(
        (s, v["state"].as_str(), v["error"]["code"].as_i64()),
        (200, Some("failed"), Some(131026))
    );
    assert_eq!(graph.requests().len(), 3);
    // Invalid content is refused before Meta, naming the field.
    let (s, v) = reply(
        &t,
        &conv,
        "d",
        json!({"type": "text", "body": "x".repeat(4097)}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("body"),
        "{v}"
    );
    assert_eq!(graph.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_assign_and_ticket() {
    let (t, graph) = stack_with_graph().await;
    let tap = t.tap_our_events().await;
    let conv = open_conversation(&t, "15550505050").await;
    let chat = t.token(&["whatsapp_chat:view"]);
    // Mark read: Meta's read receipt for the customer's latest message; unread back to 0.
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/conversations/{conv}/read"),
            Some(&chat),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = graph.requests();
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].body,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.in-15550505050"})
    );
    assert_eq!(
        t.chat_get(&format!("/api/v1/conversations/{conv}")).await["unread"],
        0
    );
    // Assign.
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/conversations/{conv}/assignee"),
            Some(&chat),
            Some(json!({"staff_id": 12})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        t.chat_get(&format!("/api/v1/conversations/{conv}")).await["assignee"],
        "12"
    );
    // Ticket.
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/conversations/{conv}/tickets"),
            Some(&chat),
            Some(
                json!({"subject": "Broken zipper", "description": "see chat", "priority": "high"}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let ticket = v["ticket_ref"].as_str().unwrap().to_string();
    let c = t.chat_get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(c["tickets"], json!([ticket.clone()]));
    let history = t.messages(&conv).await;
    assert!(
        history
            .iter()
            .any(|m| m["type"] == "ticket_requested" && m["direction"] == "internal")
    );
    let events = t.drain(&tap, Duration::from_secs(3)).await;
    let assigned = events
        .iter()
        .find(|e| e["detail-type"] == "conversation.assigned")
        .expect("assigned event");
    assert_eq!(assigned["detail"]["assignee"], "12");
    assert_eq!(assigned["detail"]["assigned_by"], "7");
    let tk = events
        .iter()
        .find(|e| e["detail-type"] == "ticket.requested")
        .expect("ticket event");
    assert_eq!(tk["detail"]["ticket_ref"], ticket.as_str());
    assert_eq!(tk["detail"]["priority"], "high");
    let schema: Value =
        serde_json::from_str(include_str!("../schemas/whatsapp/ticket.requested.json")).unwrap();
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&tk["detail"])
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?} in {}", tk["detail"]);
    assert_eq!(tk["detail"]["transcript"][0]["text"], "hello");
    assert_eq!(
        tk["detail"]["event_id"],
        format!("ticket.requested:{ticket}")
    );
    // Bad input.
    let (s, _) = t
        .api(
            "POST",
            &format!("/api/v1/conversations/{conv}/tickets"),
            Some(&chat),
            Some(json!({"subject": ""})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = t
        .api(
            "PUT",
            &format!("/api/v1/conversations/{conv}/assignee"),
            Some(&chat),
            Some(json!({"staff_id": true})),
        )
        .await;
    assert_eq!(s, 400);
    // Without whatsapp_chat:view nothing of this is allowed.
    let other = t.token(&["whatsapp_bot:view"]);
    for (m, p) in [
        ("POST", "read"),
        ("PUT", "assignee"),
        ("POST", "tickets"),
        ("POST", "messages"),
    ] {
        let (s, _) = t
            .api(
                m,
                &format!("/api/v1/conversations/{conv}/{p}"),
                Some(&other),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, 403, "{m} {p}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_business_initiated_template_goes_from_the_default_number() {
    let (t, graph) = stack_with_graph().await;
    let chat = t.token(&["whatsapp_chat:view"]);
    let tpl = json!({"type": "template", "name": "hello_world", "language": "en_US"});
    // No default number yet: a clear refusal, nothing sent.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/messages",
            Some(&chat),
            Some(json!({"to": "+1 (650) 555-0199", "content": tpl})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("no_default_number")),
        "{v}"
    );
    let numbers = t.token(&["whatsapp_numbers:edit"]);
    for (id, shown) in [
        ("111111111111111", "+1 555 000 1111"),
        ("222222222222222", "+1 555 000 2222"),
    ] {
        let (s, v) = t
            .api("POST", "/api/v1/numbers", Some(&numbers), Some(json!({"phone_number_id": id, "display_phone_number": shown, "verified_name": "Acme"})))
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/numbers/222222222222222/default",
            Some(&numbers),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    graph.set_templates(vec![json!({"id": "7", "name": "hello_world", "language": "en_US", "status": "APPROVED",
        "category": "UTILITY", "parameter_format": "POSITIONAL", "components": [{"type": "BODY", "text": "Hello!"}]})]);
    t.load_templates().await;
    // Free-form text to a number that never wrote: no window.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/messages",
            Some(&chat),
            Some(json!({"to": "+1 (650) 555-0199", "content": {"type": "text", "body": "hi"}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("window_closed")),
        "{v}"
    );
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/messages",
            Some(&chat),
            Some(json!({"to": "+1 (650) 555-0199", "content": tpl})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let sent = graph
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/messages"))
        .expect("sent");
    assert_eq!(
        sent.path, "/v25.0/222222222222222/messages",
        "from the default number"
    );
    assert_eq!(sent.body["to"], "16505550199");
    // The conversation now exists, from that number, with the message in its history.
    let conv = t.conversation_of("16505550199").await;
    assert_eq!(conv["phone_number_id"], "222222222222222");
    let msgs = t.messages(conv["id"].as_str().unwrap()).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["direction"], "outbound");
    // A named number wins over the default; an unparseable number is refused naming `to`.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/messages",
            Some(&chat),
            Some(json!({"to": "12", "content": tpl})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("to:"),
        "{v}"
    );
    let (s, _) = t
        .api("POST", "/api/v1/messages", Some(&chat), Some(json!({"to": "+16505550199", "phone_number_id": "111111111111111", "content": tpl, "idempotency_key": "n1"})))
        .await;
    assert_eq!(s, 201);
    assert!(
        graph
            .requests()
            .iter()
            .any(|r| r.path == "/v25.0/111111111111111/messages")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_token_appears_in_no_response_and_no_log_line() {
    let (t, graph) = stack_with_graph().await;
    let conv = open_conversation(&t, "15550606060").await;
    // Success, a Meta auth error that quotes the token (as Meta does), a lost answer, a read receipt.
    graph.script([
        Answer::Error(401, 190),
        Answer::AcceptAfter(Duration::from_millis(1500)),
    ]);
    for (k, body) in [("t1", "one"), ("t2", "two"), ("t3", "three")] {
        reply(&t, &conv, k, json!({"type": "text", "body": body})).await;
    }
    let chat = t.token(&["whatsapp_chat:view"]);
    t.api(
        "POST",
        &format!("/api/v1/conversations/{conv}/read"),
        Some(&chat),
        None,
    )
    .await;
    let (_, settings) = t
        .api(
            "GET",
            "/api/v1/settings/connection",
            Some(&t.admin_token()),
            None,
        )
        .await;
    assert!(!settings.to_string().contains(DEV_ACCESS_TOKEN));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = integration_tests::captured_logs();
    assert!(
        logs.len() > 1000,
        "logs are being captured ({} bytes)",
        logs.len()
    );
    assert!(
        !logs.contains(DEV_ACCESS_TOKEN),
        "a log line carries the access token"
    );
    assert!(
        !logs.contains(integration_tests::local_runner::DEV_APP_SECRET),
        "a log line carries the app secret"
    );
    // Requests to Meta did carry it (so the assertion above is meaningful).
    assert!(
        graph
            .requests()
            .iter()
            .any(|r| r.authorization.as_deref()
                == Some(format!("Bearer {DEV_ACCESS_TOKEN}").as_str()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_answers_within_its_budget_never_a_gateway_timeout() {
    let graph = FakeGraph::start().await;
    // Each Graph API attempt may take 8 s, but the whole send has 3 s.
    let mut opts = options_with_graph(&graph, 8000);
    opts.send_budget = Some(Duration::from_secs(3));
    let t = start_with(opts).await;
    let conv = open_conversation(&t, "15553330001").await;
    graph.script([Answer::AcceptAfter(Duration::from_secs(10))]);
    let started = std::time::Instant::now();
    let (s, v) = reply(&t, &conv, "k-budget", json!({"type": "text", "body": "hi"})).await;
    let took = started.elapsed();
    // The request left, its answer did not come in time: unknown (never re-sent), not a 504.
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["state"], "unknown");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_reused_for_another_message_is_refused() {
    let (t, graph) = stack_with_graph().await;
    let conv = open_conversation(&t, "15553330002").await;
    let (s, first) = reply(&t, &conv, "k-same", json!({"type": "text", "body": "one"})).await;
    assert_eq!(s, 201, "{first}");
    let (s, v) = reply(&t, &conv, "k-same", json!({"type": "text", "body": "two"})).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "idempotency_key_reused");
    // The same message again is answered from its record.
    let (s, again) = reply(&t, &conv, "k-same", json!({"type": "text", "body": "one"})).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["wamid"], first["wamid"]);
    let sends = graph
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/messages"))
        .count();
    assert_eq!(sends, 1, "one message reached Meta");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_business_initiated_send_is_from_a_registered_number_and_a_lost_answer_settles() {
    let (t, graph) = stack_with_graph().await;
    let chat = t.token(&["whatsapp_chat:view"]);
    let numbers = t.token(&["whatsapp_numbers:edit"]);
    let (s, v) = t
        .api("POST", "/api/v1/numbers", Some(&numbers), Some(json!({"phone_number_id": "333333333333333", "display_phone_number": "+1 555 000 3333", "verified_name": "Acme"})))
        .await;
    assert_eq!(s, 201, "{v}");
    graph.set_templates(vec![json!({"id": "7", "name": "hello_world", "language": "en_US", "status": "APPROVED",
        "category": "UTILITY", "parameter_format": "POSITIONAL", "components": [{"type": "BODY", "text": "Hello!"}]})]);
    t.load_templates().await;
    let tpl = json!({"type": "template", "name": "hello_world", "language": "en_US"});
    // A number that is not this business's: refused, nothing sent.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/messages",
            Some(&chat),
            Some(
                json!({"to": "+16505550142", "phone_number_id": "999999999999999", "content": tpl}),
            ),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("unknown_number")),
        "{v}"
    );
    assert!(
        graph
            .requests()
            .iter()
            .all(|r| !r.path.ends_with("/messages"))
    );
    // The first message to a new number whose answer is lost …
    graph.script([Answer::AcceptAfter(Duration::from_millis(1500))]);
    let (s, v) = t
        .api("POST", "/api/v1/messages", Some(&chat), Some(json!({"to": "+16505550142", "phone_number_id": "333333333333333", "content": tpl, "idempotency_key": "first"})))
        .await;
    assert_eq!(s, 202, "{v}");
    let our_id = v["id"].as_str().unwrap().to_string();
    // … is settled by its first status: the conversation existed before the send.
    let status = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "333333333333333"},
        "statuses": [{"id": "wamid.FIRST1", "status": "delivered", "timestamp": now_s().to_string(), "recipient_id": "16505550142",
                      "biz_opaque_callback_data": our_id}]}}]}]});
    t.post_signed(status.to_string().as_bytes()).await;
    let conv = t.conversation_of("16505550142").await;
    let m = eventually(Duration::from_secs(20), || async {
        t.messages(conv["id"].as_str().unwrap())
            .await
            .into_iter()
            .find(|m| m["id"] == "wamid.FIRST1")
    })
    .await
    .expect("the lost send settled into its conversation");
    assert_eq!(m["direction"], "outbound");
}
