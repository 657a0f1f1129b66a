//! Activity log of the Graph API calls: what a reply, a retried send, a refused send, a read
//! receipt and a connection test record; filters, signed cursors, permissions, clearing; and
//! no secret in any stored item.
use integration_tests::fake_graph::{Answer, FakeGraph};
use integration_tests::local_runner::DEV_ACCESS_TOKEN;
use integration_tests::*;
use serde_json::{Value, json};

const PNID: &str = "106540352242922";
const WABA: &str = "102290129340398";
const CUSTOMER: &str = "15550303030";

async fn stack_with_graph() -> (TestStack, FakeGraph) {
    start_with_graph(700).await
}

async fn reply(t: &TestStack, conv: &str, key: &str, body: &str) -> u16 {
    let r = t
        .http
        .post(format!(
            "{}/api/v1/conversations/{conv}/messages",
            t.info().http_base
        ))
        .bearer_auth(t.token(&["whatsapp_chat:view"]))
        .header("idempotency-key", key)
        .json(&json!({"content": {"type": "text", "body": body}}))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

fn view(t: &TestStack) -> String {
    t.token(&["whatsapp_log_activity:view"])
}

/// Every entry of a listing, following the cursors.
async fn all_pages(t: &TestStack, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/api/v1/activity-log?limit={limit}&{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (s, v) = t.api("GET", &path, Some(&view(t)), None).await;
        assert_eq!(s, 200, "{path}: {v}");
        assert!(!v.to_string().contains(DEV_ACCESS_TOKEN));
        out.extend(v["data"].as_array().cloned().unwrap_or_default());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
    panic!("the listing never ended");
}

async fn list(t: &TestStack, query: &str) -> Vec<Value> {
    all_pages(t, query, 200).await
}

/// Every activity-log item of the table, as text.
async fn stored_log_items(t: &TestStack) -> Vec<String> {
    let ddb = aws_sdk_dynamodb::Client::new(&t.stack.aws);
    let out = ddb
        .scan()
        .table_name(&t.info().resource("MainTable").name)
        .send()
        .await
        .expect("scan");
    out.items()
        .iter()
        .filter(|i| {
            i.get("pk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|pk| pk.starts_with("LOG#"))
        })
        .map(|i| format!("{i:?}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_calls_are_logged_filtered_and_cleared_without_secrets() {
    let (t, graph) = stack_with_graph().await;
    let now = chrono::Utc::now().timestamp();
    t.post_signed(&text_payload(
        PNID,
        CUSTOMER,
        "Cust",
        "wamid.in-log-1",
        now,
        "hello",
    ))
    .await;
    let conv = t.conversation_of(CUSTOMER).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // An accepted reply; a rate limit (HTTP 400) then success; a refused recipient.
    assert_eq!(reply(&t, &conv, "ok-1", "first").await, 201);
    graph.script([Answer::Error(400, 130429)]);
    assert_eq!(reply(&t, &conv, "retried-1", "second").await, 201);
    graph.script([Answer::Error(400, 131026)]);
    assert_eq!(reply(&t, &conv, "refused-1", "third").await, 422);
    // A read receipt.
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/conversations/{conv}/read"),
            Some(&t.token(&["whatsapp_chat:view"])),
            None,
        )
        .await;
    assert!(s < 300, "{s} {v}");
    // A connection test whose token Meta refuses, quoting it (as Meta does for 190).
    graph.set_account(WABA, &[PNID]);
    graph.fail_token(Some((401, 190)));
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/settings/connection/test",
            Some(&t.admin_token()),
            None,
        )
        .await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(false)), "{v}");

    // Everything is in the log as soon as the calls answered (flushed before each answer).
    let all = list(&t, "").await;
    let sends: Vec<&Value> = all.iter().filter(|e| e["kind"] == "send").collect();
    assert_eq!(sends.len(), 4, "{all:#?}");
    for e in &sends {
        assert_eq!(e["recipient"], CUSTOMER);
        assert_eq!(e["number"], PNID);
        assert!(e["duration_ms"].is_u64(), "{e}");
        assert!(e["at"].as_i64().unwrap() >= (now - 60) * 1000);
        assert_eq!(e["source"], "staff-api");
    }
    // Newest first.
    let ats: Vec<i64> = all.iter().map(|e| e["at"].as_i64().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "{ats:?}");
    let ok_sends = sends.iter().filter(|e| e["status"] == "ok").count();
    assert_eq!(ok_sends, 2);
    assert!(
        sends
            .iter()
            .filter(|e| e["status"] == "ok")
            .all(|e| e["http_status"] == 200 && e["error"].is_null())
    );
    let rate = sends
        .iter()
        .find(|e| e["error"]["code"] == 130429)
        .expect("the rate-limited attempt");
    assert_eq!(rate["http_status"], 400);
    assert_eq!(rate["error"]["class"], "rate_limited");
    assert_eq!(
        (rate["attempt"].as_u64(), rate["will_retry"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(
        sends
            .iter()
            .any(|e| e["attempt"] == 2 && e["status"] == "ok"),
        "the retry succeeded"
    );
    let refused = sends
        .iter()
        .find(|e| e["error"]["code"] == 131026)
        .expect("the refused send");
    assert_eq!(refused["status"], "error");
    assert_eq!(refused["http_status"], 400);
    assert_eq!(refused["error"]["class"], "recipient_invalid");
    assert_eq!(refused["error"]["type"], "meta");
    assert_eq!(refused["error"]["message"], "fake error 131026");
    assert_eq!(refused["will_retry"], false);
    let auth = all
        .iter()
        .find(|e| e["kind"] == "account")
        .expect("the token check");
    assert_eq!(auth["error"]["code"], 190);
    assert_eq!(auth["error"]["class"], "auth");
    assert_eq!(auth["http_status"], 401);
    let msg = auth["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Malformed access token"), "{msg}");
    assert!(!msg.contains(DEV_ACCESS_TOKEN), "{msg}");

    // Filters.
    let errors = list(&t, "status=error").await;
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors.iter().all(|e| e["status"] == "error"));
    let reads = list(&t, "kind=mark_read").await;
    assert_eq!(reads.len(), 1, "{reads:#?}");
    assert_eq!(reads[0]["number"], PNID);
    assert_eq!(list(&t, "recipient=%2B15550303030").await.len(), 4);
    assert_eq!(list(&t, "recipient=15550000000").await.len(), 0);
    assert_eq!(list(&t, &format!("number={PNID}")).await.len(), 5);
    assert_eq!(list(&t, "kind=send&status=error").await.len(), 2);
    let yesterday = (now - 86_400) * 1000;
    assert!(list(&t, &format!("to={yesterday}")).await.is_empty());
    assert_eq!(
        list(&t, &format!("from={}", (now - 60) * 1000)).await.len(),
        all.len()
    );
    // Paging with signed cursors gives the same entries, once each.
    let paged = all_pages(&t, "", 2).await;
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&paged), ids(&all));
    let (_, first) = t
        .api("GET", "/api/v1/activity-log?limit=1", Some(&view(&t)), None)
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (s, v) = t
        .api(
            "GET",
            &format!("/api/v1/activity-log?limit=1&status=error&cursor={cursor}"),
            Some(&view(&t)),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    for (query, field) in [
        ("status=maybe", "status"),
        ("from=yesterday", "from"),
        ("kind=Send%21", "kind"),
        ("limit=0", "limit"),
    ] {
        let (s, v) = t
            .api(
                "GET",
                &format!("/api/v1/activity-log?{query}"),
                Some(&view(&t)),
                None,
            )
            .await;
        assert_eq!(s, 400, "{query}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(field),
            "{query}: {v}"
        );
    }

    // No stored item holds the access token.
    let items = stored_log_items(&t).await;
    assert_eq!(items.len(), all.len());
    for i in &items {
        assert!(!i.contains(DEV_ACCESS_TOKEN), "{i}");
        assert!(i.contains("ttl"), "{i}");
    }

    // Permissions, then clearing.
    let (s, _) = t.api("GET", "/api/v1/activity-log", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = t
        .api(
            "GET",
            "/api/v1/activity-log",
            Some(&t.token(&["whatsapp_chat:view"])),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, v) = t
        .api("DELETE", "/api/v1/activity-log", Some(&view(&t)), None)
        .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("whatsapp_log_activity:clear_log")
    );
    let (s, v) = t
        .api(
            "DELETE",
            "/api/v1/activity-log",
            Some(&t.token(&["whatsapp_log_activity:clear_log"])),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"deleted": all.len(), "more": false}));
    let left = list(&t, "").await;
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["kind"], "log_cleared");
    assert_eq!(left[0]["actor"], "7");
    assert_eq!(
        left[0]["note"],
        format!("{} entries deleted", all.len()).as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cleared_range_keeps_the_rest() {
    let (t, graph) = stack_with_graph().await;
    graph.set_account(WABA, &[PNID]);
    let test = || async {
        let (s, v) = t
            .api(
                "POST",
                "/api/v1/settings/connection/test",
                Some(&t.admin_token()),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
    };
    test().await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let split = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    test().await;
    let all = list(&t, "kind=account").await;
    let before = all
        .iter()
        .filter(|e| e["at"].as_i64().unwrap() < split)
        .count();
    assert!(before > 0 && before < all.len(), "{all:#?}");
    let (s, v) = t
        .api(
            "DELETE",
            &format!("/api/v1/activity-log?to={split}"),
            Some(&t.admin_token()),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["deleted"], before);
    let left = list(&t, "kind=account").await;
    assert_eq!(left.len(), all.len() - before);
    assert!(left.iter().all(|e| e["at"].as_i64().unwrap() >= split));
}
