//! CRM event notifications end to end: mappings saved through the staff API, CRM hook events
//! put on the CRM bus exactly as the CRM would (EventBridge → NotificationsQueue →
//! notifications function), templates sent to the fake Graph API, outcomes on the CRM bus and
//! in the log.
use std::time::Duration;

use fakes::graph::{Answer, FakeGraph, Recorded};
use integration_tests::*;
use serde_json::{Value, json};

const PNID: &str = "106540352242922";
const NOTIFY_PNID: &str = "109999999999999";

fn tpl(name: &str, status: &str, category: &str, body: &str) -> Value {
    json!({"id": format!("8{}", name.len()), "name": name, "language": "en_US", "status": status,
           "category": category, "parameter_format": "POSITIONAL",
           "components": [{"type": "BODY", "text": body}]})
}

/// A stack with templates loaded and the business number registered as the default.
async fn setup() -> (TestStack, FakeGraph) {
    let (t, graph) = start_with_graph(2_000).await;
    graph.set_templates(vec![
        tpl(
            "welcome_lead",
            "APPROVED",
            "UTILITY",
            "Hi {{1}}, thanks for your interest!",
        ),
        tpl(
            "invoice_ready",
            "APPROVED",
            "UTILITY",
            "Invoice {{1}} of {{2}} is due {{3}}.",
        ),
        tpl(
            "new_ticket",
            "APPROVED",
            "UTILITY",
            "Ticket {{1}} was assigned to you.",
        ),
        tpl(
            "spring_promo",
            "APPROVED",
            "MARKETING",
            "Hi {{1}}, spring sale!",
        ),
    ]);
    t.load_templates().await;
    t.register_number(PNID).await;
    (t, graph)
}

fn body_params(texts: &[&str]) -> Value {
    json!([{"type": "body", "parameters": texts.iter().map(|t| json!({"type": "text", "text": t})).collect::<Vec<_>>()}])
}

/// The notification log (`query`: `hook=…&status=…`), as an admin reads it.
async fn log(t: &TestStack, query: &str) -> Value {
    let (s, v) = t
        .api(
            "GET",
            &format!("/api/v1/notifications/log?{query}"),
            Some(&t.admin_token()),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

fn welcome() -> Value {
    json!({"name": "Welcome", "category": "leads", "hooks": ["lead_created", "web_to_lead_form_submitted"],
           "send_to": "lead",
           "template": {"name": "welcome_lead", "language": "en_US", "components": body_params(&["{lead.name:first|there}"])}})
}

fn sends(graph: &FakeGraph) -> Vec<Recorded> {
    graph
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/messages") && r.body["type"] == "template")
        .collect()
}

async fn wait_sends(graph: &FakeGraph, n: usize) -> Vec<Recorded> {
    eventually(Duration::from_secs(30), || async {
        let s = sends(graph);
        (s.len() >= n).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("{n} sends expected, got {:?}", sends(graph)))
}

fn texts(r: &Recorded) -> Vec<String> {
    r.body["template"]["components"][0]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The outcomes published on the CRM bus, until `n` came.
async fn outcomes(t: &TestStack, tap: &str, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    for _ in 0..15 {
        got.extend(
            t.drain(tap, Duration::from_secs(2))
                .await
                .into_iter()
                .filter(|e| {
                    e["detail-type"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("notification."))
                }),
        );
        if got.len() >= n {
            break;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lead_created_event_sends_the_mapped_template_once_and_reports_it() {
    let (t, graph) = setup().await;
    let tap = t.tap_our_events().await;
    let m = t.map_notification(welcome()).await;
    let detail = json!({"event_id": "crm:lead_created:77:1", "updated_at": 1000,
                        "record": {"id": 77, "name": "Ana Lima", "phonenumber": "+1 650 555 0177"}});
    // EventBridge may deliver twice: the same event twice sends once.
    t.put_crm_event("lead_created", detail.clone()).await;
    t.put_crm_event("lead_created", detail).await;
    let s = wait_sends(&graph, 1).await;
    settle().await;
    let s2 = sends(&graph);
    assert_eq!(s2.len(), 1, "sent once: {s2:?}");
    assert_eq!(s[0].body["to"], "16505550177");
    assert_eq!(
        s[0].path,
        format!("/{}/{PNID}/messages", fakes::graph::VERSION)
    );
    assert_eq!(texts(&s[0]), ["Ana"]);
    let out = outcomes(&t, &tap, 1).await;
    assert!(!out.is_empty());
    assert!(
        out.iter().all(|e| e["detail-type"] == "notification.sent"),
        "{out:?}"
    );
    assert_eq!(out[0]["detail"]["mapping_id"], m["id"]);
    assert_eq!(out[0]["detail"]["crm_event_id"], "crm:lead_created:77:1");
    assert!(out[0]["detail"]["wamid"].is_string());
    // The log lists it, filterable by hook and status.
    let v = log(&t, "hook=lead_created&status=sent").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["data"][0]["phone"], "+16505550177");
    // The message is in the lead's conversation.
    let conv = t.conversation_of("16505550177").await;
    assert_eq!(conv["rel_type"], "leads", "{conv}");
    // Its delivery statuses move the log entry forward, never back.
    let wamid = out[0]["detail"]["wamid"].as_str().unwrap().to_string();
    let now = chrono::Utc::now().timestamp();
    for (st, ts) in [("read", now + 2), ("delivered", now + 1)] {
        let (code, _) = t
            .post_signed(&status_payload(PNID, &wamid, st, ts, "16505550177"))
            .await;
        assert_eq!(code, 200);
    }
    let read = eventually(Duration::from_secs(20), || async {
        let v = log(&t, "hook=lead_created").await;
        (v["data"][0]["status"] == "read").then_some(v)
    })
    .await;
    assert!(read.is_some(), "the entry follows the statuses to read");
}

#[tokio::test(flavor = "multi_thread")]
async fn invoices_tickets_and_reminders_reach_the_right_people() {
    let (t, graph) = setup().await;
    t.map_notification(json!({"name": "Invoice", "category": "invoice", "hooks": ["after_invoice_added"], "send_to": "contact",
               "template": {"name": "invoice_ready", "language": "en_US",
                            "components": body_params(&["{invoice.number}", "{invoice.total:money}", "{invoice.duedate:date}"])}}),
    )
    .await;
    t.map_notification(json!({"name": "Ticket", "category": "ticket", "hooks": ["ticket_created"], "send_to": "staff",
               "template": {"name": "new_ticket", "language": "en_US", "components": body_params(&["{ticket.subject}"])}}),
    )
    .await;
    t.map_notification(json!({"name": "Overdue", "category": "invoice", "hooks": ["after_cron_run"], "send_to": "contact",
               "template": {"name": "invoice_ready", "language": "en_US",
                            "components": body_params(&["{invoice.number}", "{invoice.total:money}", "{invoice.duedate:date}"])}}),
    )
    .await;
    let contact = json!({"id": 42, "firstname": "Sheena", "lastname": "Nelson", "phonenumber": "+1 650-555-1234"});
    t.put_crm_event(
        "after_invoice_added",
        json!({"event_id": "inv-1", "record": {"id": 1, "number": "INV-1", "total": 1250, "duedate": "2026-12-31"},
               "contact": contact, "staff": {"id": 3, "name": "Rui", "phonenumber": "+1 650 555 0300"}}),
    )
    .await;
    t.put_crm_event(
        "ticket_created",
        json!({"event_id": "tic-1", "record": {"id": 9, "subject": "Printer on fire"}, "contact": contact,
               "staff": {"id": 3, "name": "Rui", "phonenumber": "+1 650 555 0300"}}),
    )
    .await;
    t.put_crm_event(
        "after_cron_run",
        json!({"event_id": "cron-1", "reminders": [
            {"id": "r1", "category": "invoice", "record": {"id": 2, "number": "INV-2", "total": "10.5", "duedate": "2026-11-30"}, "contact": contact},
            {"id": "r2", "category": "task", "record": {"id": 5, "name": "Call"}, "staff": {"id": 3, "phonenumber": "+1 650 555 0300"}}
        ]}),
    )
    .await;
    let s = wait_sends(&graph, 3).await;
    settle().await;
    let all = sends(&graph);
    assert_eq!(all.len(), 3, "{all:?}");
    let find = |name: &str, first: &str| {
        all.iter()
            .find(|r| r.body["template"]["name"] == name && texts(r)[0] == first)
            .unwrap_or_else(|| panic!("{name} {first}: {s:?}"))
            .clone()
    };
    let inv = find("invoice_ready", "INV-1");
    assert_eq!(inv.body["to"], "16505551234");
    assert_eq!(texts(&inv), ["INV-1", "1,250.00", "31 Dec 2026"]);
    let tic = find("new_ticket", "Printer on fire");
    assert_eq!(tic.body["to"], "16505550300", "the assigned staff member");
    let rem = find("invoice_ready", "INV-2");
    assert_eq!(texts(&rem), ["INV-2", "10.50", "30 Nov 2026"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_cannot_be_sent_is_a_visible_failure_and_nothing_else_goes_out() {
    let (t, graph) = setup().await;
    let tap = t.tap_our_events().await;
    t.map_notification(welcome()).await;
    // No phone: failed with the reason, not retried.
    t.put_crm_event(
        "lead_created",
        json!({"event_id": "no-phone", "updated_at": 1, "record": {"id": 1, "name": "Nobody"}}),
    )
    .await;
    // No mapping answers contact_created: nothing at all.
    t.put_crm_event(
        "contact_created",
        json!({"event_id": "c-1", "updated_at": 1, "record": {"id": 2, "name": "Bo", "phonenumber": "+1 650 555 0102"}}),
    )
    .await;
    let out = outcomes(&t, &tap, 1).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["detail-type"], "notification.failed");
    assert!(
        out[0]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("no phone"),
        "{out:?}"
    );
    // The template is paused at Meta after the mapping was saved: a failure naming it.
    graph.set_templates(vec![tpl(
        "welcome_lead",
        "PAUSED",
        "UTILITY",
        "Hi {{1}}, thanks for your interest!",
    )]);
    t.load_templates().await;
    t.put_crm_event(
        "lead_created",
        json!({"event_id": "paused", "updated_at": 1, "record": {"id": 3, "name": "Cy", "phonenumber": "+1 650 555 0103"}}),
    )
    .await;
    let out = outcomes(&t, &tap, 1).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("PAUSED"),
        "{out:?}"
    );
    settle().await;
    assert!(sends(&graph).is_empty(), "{:?}", sends(&graph));
    let v = log(&t, "status=failed").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    // Paged one by one, newest first, the same entries as one page; a page's cursor belongs
    // to its day.
    let keys = |v: &Value| -> Vec<Value> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].clone())
            .collect()
    };
    let all = log(&t, "limit=200").await;
    let (mut paged, mut cursor, mut first_cursor) = (Vec::new(), None::<String>, None);
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=1&cursor={c}"),
            None => "limit=1".to_string(),
        };
        let page = log(&t, &q).await;
        paged.extend(keys(&page));
        match page["next_cursor"].as_str() {
            Some(c) => {
                first_cursor.get_or_insert_with(|| c.to_string());
                cursor = Some(c.to_string());
            }
            None => break,
        }
    }
    assert!(paged.len() >= 2, "{all}");
    assert_eq!(paged, keys(&all));
    let cursor = first_cursor.expect("a second page");
    let (code, body) = t
        .api(
            "GET",
            &format!("/api/v1/notifications/log?day=2020-01-01&cursor={cursor}"),
            Some(&t.admin_token()),
            None,
        )
        .await;
    assert_eq!(
        (code, &body["error"]["code"]),
        (400, &json!("invalid_cursor"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_notification_credentials_are_used_when_set_and_a_rate_limit_is_retried() {
    let (t, graph) = setup().await;
    t.map_notification(welcome()).await;
    // Unset: the inbox's credentials and default number.
    t.put_crm_event(
        "lead_created",
        json!({"event_id": "inbox-creds", "updated_at": 1, "record": {"id": 1, "name": "Ana", "phonenumber": "+1 650 555 0111"}}),
    )
    .await;
    let s = wait_sends(&graph, 1).await;
    assert!(s[0].path.contains(PNID));
    let inbox_auth = s[0].authorization.clone().unwrap();
    // Set: their token and number.
    let (st, v) = t
        .api(
            "PUT",
            "/api/v1/settings/notifications-connection",
            Some(&t.admin_token()),
            Some(
                json!({"access_token": "notify-token-1", "waba_id": "102290129340398",
                        "phone_number_id": NOTIFY_PNID}),
            ),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // Meta refuses the first attempt with 130429: retried, one message accepted.
    graph.script([Answer::Error(400, 130429), Answer::Accept]);
    tokio::time::sleep(Duration::from_secs(3)).await; // the secret cache (2 s locally)
    t.put_crm_event(
        "lead_created",
        json!({"event_id": "notify-creds", "updated_at": 1, "record": {"id": 2, "name": "Bo", "phonenumber": "+1 650 555 0112"}}),
    )
    .await;
    let s = wait_sends(&graph, 3).await;
    let to_bo: Vec<_> = s.iter().filter(|r| r.body["to"] == "16505550112").collect();
    assert_eq!(to_bo.len(), 2, "one refused, one accepted: {s:?}");
    assert!(to_bo.iter().all(|r| r.path.contains(NOTIFY_PNID)));
    assert_eq!(
        to_bo[1].authorization.as_deref(),
        Some("Bearer notify-token-1")
    );
    assert_ne!(inbox_auth, "Bearer notify-token-1");
    settle().await;
    let v = log(&t, "status=sent").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mappings_are_validated_and_the_preview_is_what_is_sent() {
    let (t, graph) = setup().await;
    let admin = t.admin_token();
    for (body, field) in [
        (
            json!({"name": "x", "category": "leads", "hooks": ["lead_made"], "send_to": "lead",
                   "template": {"name": "welcome_lead", "language": "en_US", "components": body_params(&["x"])}}),
            "hooks[0]",
        ),
        (
            json!({"name": "x", "category": "sales", "hooks": ["lead_created"], "send_to": "lead",
                   "template": {"name": "welcome_lead", "language": "en_US", "components": body_params(&["x"])}}),
            "category",
        ),
        (
            json!({"name": "x", "category": "leads", "hooks": ["lead_created"], "send_to": "lead",
                   "template": {"name": "welcome_lead", "language": "en_US", "components": body_params(&["{order.id}"])}}),
            "template.components[0].parameters[0].text",
        ),
    ] {
        let (s, v) = t
            .api(
                "POST",
                "/api/v1/notifications/mappings",
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(v.to_string().contains(field), "{field}: {v}");
    }
    // Two parameters for a template of one: refused against the stored template.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/notifications/mappings",
            Some(&admin),
            Some(json!({"name": "x", "category": "leads", "hooks": ["lead_created"], "send_to": "lead",
                        "template": {"name": "welcome_lead", "language": "en_US", "components": body_params(&["a", "b"])}})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    // Not admin: refused.
    let (s, _) = t
        .api(
            "GET",
            "/api/v1/notifications/mappings",
            Some(&t.token(&["whatsapp_chat:view"])),
            None,
        )
        .await;
    assert_eq!(s, 403);

    let m = t.map_notification(welcome()).await;
    let id = m["id"].as_str().unwrap();
    let detail = json!({"event_id": "prev-1", "updated_at": 1,
                        "record": {"id": 5, "name": "Dara Ong", "phonenumber": "+1 650 555 0155"}});
    let (s, p) = t
        .api(
            "POST",
            &format!("/api/v1/notifications/mappings/{id}/preview"),
            Some(&admin),
            Some(json!({"hook": "lead_created", "detail": detail})),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["recipient"]["phone"], "+16505550155");
    t.put_crm_event("lead_created", detail).await;
    let sent = wait_sends(&graph, 1).await;
    let mut body = sent[0].body.clone();
    body.as_object_mut()
        .unwrap()
        .remove("biz_opaque_callback_data");
    assert_eq!(body, p["body"], "the preview is what is sent");
    // A test send to a given number.
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/notifications/mappings/{id}/test"),
            Some(&admin),
            Some(json!({"to": "+1 650 555 0199"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["wamid"].is_string());
    let all = wait_sends(&graph, 2).await;
    assert_eq!(texts(&all[1]), ["there"], "the fallback without a sample");
    // Deleted: gone.
    let (s, _) = t
        .api(
            "DELETE",
            &format!("/api/v1/notifications/mappings/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, v) = t
        .api("GET", "/api/v1/notifications/mappings", Some(&admin), None)
        .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn opted_out_customers_get_no_marketing_notification() {
    let (t, graph) = setup().await;
    let tap = t.tap_our_events().await;
    let wa = "16505551234";
    t.opted_out_customer(PNID, wa, "wamid.n1").await;
    t.map_notification(json!({"name": "Promo", "category": "contacts", "hooks": ["contact_created"], "send_to": "contact",
               "template": {"name": "spring_promo", "language": "en_US", "components": body_params(&["{contact.name:first}"])}}),
    )
    .await;
    t.put_crm_event(
        "contact_created",
        json!({"event_id": "promo-1", "updated_at": 1, "record": {"id": 42, "name": "Sheena Nelson", "phonenumber": "+1 650-555-1234"}}),
    )
    .await;
    let out = outcomes(&t, &tap, 1).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["detail"]["status"], "skipped", "{out:?}");
    settle().await;
    assert!(sends(&graph).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_notification_wabas_templates_are_loaded_apart_and_used() {
    let (t, graph) = setup().await;
    let notify_waba = "200000000000001";
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/settings/notifications-connection",
            Some(&t.admin_token()),
            Some(
                json!({"access_token": "notify-token-2", "waba_id": notify_waba,
                        "phone_number_id": NOTIFY_PNID}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    graph.set_templates(vec![tpl(
        "notify_only",
        "APPROVED",
        "UTILITY",
        "Hello {{1}}",
    )]);
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/templates/load?source=notifications",
            Some(&t.token(&["whatsapp_template:load_template"])),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["waba_id"], notify_waba);
    let listed = graph.template_requests();
    let last = listed.last().unwrap();
    assert!(last.path.contains(notify_waba), "{last:?}");
    assert_eq!(last.authorization.as_deref(), Some("Bearer notify-token-2"));
    // Mappings are checked against the notification WABA's templates, kept apart.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/notifications/mappings",
            Some(&t.admin_token()),
            Some(welcome()),
        )
        .await;
    assert_eq!(s, 404, "welcome_lead is the inbox WABA's only: {v}");
    t.map_notification(json!({"name": "Hello", "category": "leads", "hooks": ["lead_created"], "send_to": "lead",
               "template": {"name": "notify_only", "language": "en_US", "components": body_params(&["{lead.name}"])}}),
    )
    .await;
    t.put_crm_event(
        "lead_created",
        json!({"event_id": "nw-1", "updated_at": 1, "record": {"id": 1, "name": "Eve", "phonenumber": "+1 650 555 0121"}}),
    )
    .await;
    let s = wait_sends(&graph, 1).await;
    assert_eq!(s[0].body["template"]["name"], "notify_only");
    assert!(s[0].path.contains(NOTIFY_PNID));
    assert_eq!(s[0].authorization.as_deref(), Some("Bearer notify-token-2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_signup_connects_the_waba_and_adds_its_numbers() {
    let (t, graph) = setup().await;
    let admin = t.admin_token();
    let waba = "300000000000001";
    graph.set_signup(
        "dev-app",
        local_runner::DEV_APP_SECRET,
        "signup-code-1",
        "business-token-1",
    );
    graph.set_account(waba, &["300000000000011", PNID]);
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/numbers/embedded-signup",
            Some(&admin),
            Some(json!({"code": "signup-code-1", "waba_id": waba, "phone_number_id": "300000000000011"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["added"].as_array().unwrap().len(),
        1,
        "the known number is kept: {v}"
    );
    assert_eq!(v["added"][0]["phone_number_id"], "300000000000011");
    assert_eq!(v["added"][0]["source"], "embedded_signup");
    assert_eq!(v["default_phone_number_id"], PNID, "the default is kept");
    assert_eq!(
        graph.subscriptions(),
        [(
            waba.to_string(),
            Some("Bearer business-token-1".to_string())
        )]
    );
    // The token and WABA are stored in the connection (secrets masked when read).
    let (_, c) = t
        .api("GET", "/api/v1/settings/connection", Some(&admin), None)
        .await;
    assert_eq!(c["waba_id"], waba, "{c}");
    assert!(!c.to_string().contains("business-token-1"), "{c}");
    // A code is single-use: the same code again is Meta's refusal.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/numbers/embedded-signup",
            Some(&admin),
            Some(json!({"code": "signup-code-1", "waba_id": waba})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "signup_refused", "{v}");
    // Import: numbers the WABA gained since.
    graph.set_account(waba, &["300000000000011", "300000000000012", PNID]);
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/numbers/import",
            Some(&t.token(&["whatsapp_numbers:edit"])),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["added"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["added"][0]["phone_number_id"], "300000000000012");
    assert_eq!(v["listed"], 3);
}

/// Meta accepted a notification but its answer was lost: the log says `unknown` until the first
/// status names the send (`biz_opaque_callback_data`); then the entry is `sent` with the wamid
/// and follows the statuses like any other.
#[tokio::test(flavor = "multi_thread")]
async fn a_notification_whose_answer_was_lost_is_settled_by_its_first_status() {
    let (t, graph) = setup().await;
    t.map_notification(welcome()).await;
    // Accepted after the client's timeout (2 s here): the outcome is unknown.
    graph.script([Answer::AcceptAfter(Duration::from_secs(4))]);
    t.put_crm_event(
        "lead_created",
        json!({"event_id": "crm:lead_created:88:1", "updated_at": 1000,
               "record": {"id": 88, "name": "Bo Lost", "phonenumber": "+1 650 555 0188"}}),
    )
    .await;
    let sent = wait_sends(&graph, 1).await;
    let cb = sent[0].body["biz_opaque_callback_data"]
        .as_str()
        .expect("every send names itself")
        .to_string();
    let entry = |status: &'static str| {
        let t = &t;
        async move {
            let v = log(t, "hook=lead_created").await;
            (v["data"][0]["status"] == status).then(|| v["data"][0].clone())
        }
    };
    let unknown = eventually(Duration::from_secs(30), || entry("unknown")).await;
    assert!(unknown.is_some(), "logged unknown first");
    let status = |st: &str, ts: i64| {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
            "statuses": [{"id": "wamid.notif-lost", "status": st, "timestamp": ts.to_string(),
                          "recipient_id": "16505550188", "biz_opaque_callback_data": cb}]}}]}]})
        .to_string()
        .into_bytes()
    };
    let now = chrono::Utc::now().timestamp();
    let (code, _) = t.post_signed(&status("delivered", now)).await;
    assert_eq!(code, 200);
    let delivered = eventually(Duration::from_secs(20), || entry("delivered"))
        .await
        .expect("settled by its status, and delivered");
    assert_eq!(delivered["wamid"], "wamid.notif-lost", "{delivered}");
    // Linked: the next status moves it on.
    let (code, _) = t.post_signed(&status("read", now + 1)).await;
    assert_eq!(code, 200);
    assert!(
        eventually(Duration::from_secs(20), || entry("read"))
            .await
            .is_some(),
        "the entry follows its statuses once settled"
    );
    // Nothing was sent twice.
    settle().await;
    assert_eq!(sends(&graph).len(), 1);
}
