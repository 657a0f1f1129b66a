//! Staff API: authentication, permissions, paging.
use std::time::Duration;

use integration_tests::*;
use serde_json::json;

const PNID: &str = "106540352242922";

#[tokio::test(flavor = "multi_thread")]
async fn authentication_and_permissions() {
    let t = start().await;
    let (s, v) = t.api("GET", "/api/v1/conversations", None, None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"]["code"], "unauthorized");
    let (s, _) = t
        .api("GET", "/api/v1/conversations", Some("not.a.jwt"), None)
        .await;
    assert_eq!(s, 401);
    // A token from another issuer's key (same kid, different key) is refused.
    let other = shared::auth::generate_ed25519(&t.info().jwt_kid).unwrap();
    let claims = shared::auth::StaffClaims::new(
        "7",
        true,
        &[],
        &t.info().jwt_issuer,
        &t.info().jwt_audience,
        600,
    );
    let forged = shared::auth::sign_ed25519(&other.kid, &other.private_pem, &claims).unwrap();
    assert_eq!(
        t.api("GET", "/api/v1/conversations", Some(&forged), None)
            .await
            .0,
        401
    );
    // Wrong permission → 403; right one → 200; admin → 200.
    let (s, v) = t
        .api(
            "GET",
            "/api/v1/conversations",
            Some(&t.token(&["whatsapp_bot:view"])),
            None,
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(v["error"]["code"], "forbidden");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("whatsapp_chat:view")
    );
    assert_eq!(
        t.api(
            "GET",
            "/api/v1/conversations",
            Some(&t.token(&["whatsapp_chat:view"])),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(
        t.api("GET", "/api/v1/conversations", Some(&t.admin_token()), None)
            .await
            .0,
        200
    );
    // Admin-only settings and import.
    let chat = t.token(&["whatsapp_chat:view"]);
    assert_eq!(
        t.api("GET", "/api/v1/settings/auto-lead", Some(&chat), None)
            .await
            .0,
        403
    );
    assert_eq!(
        t.api(
            "PUT",
            "/api/v1/settings/auto-lead",
            Some(&chat),
            Some(json!({"enabled": true}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        t.api(
            "POST",
            "/api/v1/directory/import",
            Some(&chat),
            Some(json!({"records": []}))
        )
        .await
        .0,
        403
    );
    let (s, v) = t
        .api(
            "GET",
            "/api/v1/settings/auto-lead",
            Some(&t.admin_token()),
            None,
        )
        .await;
    assert_eq!((s, v["enabled"].clone()), (200, json!(false)));
    // Bad bodies are clear 400s.
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/settings/auto-lead",
            Some(&t.admin_token()),
            Some(json!({"enable": true})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("enable"),
        "{v}"
    );
    // Unknown routes and conversations.
    assert_eq!(t.api("GET", "/api/v1/nope", Some(&chat), None).await.0, 404);
    assert_eq!(
        t.api("GET", "/api/v1/conversations/1:abc", Some(&chat), None)
            .await
            .0,
        404
    );
    let (s, _) = t
        .api(
            "GET",
            "/api/v1/conversations?rel_type=friends",
            Some(&chat),
            None,
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn inbox_pages_newest_first_with_signed_cursors() {
    let t = start().await;
    let ts = chrono::Utc::now().timestamp();
    for i in 0..5 {
        t.post_signed(&text_payload(
            PNID,
            &format!("1555000000{i}"),
            "P",
            &format!("wamid.p{i}"),
            ts + i,
            "hi",
        ))
        .await;
    }
    eventually(Duration::from_secs(20), || async {
        (t.conversations().await.len() == 5).then_some(())
    })
    .await
    .expect("five conversations");
    let first = t
        .chat_get("/api/v1/conversations?rel_type=general&limit=2")
        .await;
    let page1: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer"]["wa_id"].as_str().unwrap())
        .collect();
    assert_eq!(page1, ["15550000004", "15550000003"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let second = t
        .chat_get(&format!(
            "/api/v1/conversations?rel_type=general&limit=2&cursor={cursor}"
        ))
        .await;
    let page2: Vec<&str> = second["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customer"]["wa_id"].as_str().unwrap())
        .collect();
    assert_eq!(page2, ["15550000002", "15550000001"]);
    let c3 = second["next_cursor"].as_str().unwrap().to_string();
    let third = t
        .chat_get(&format!(
            "/api/v1/conversations?rel_type=general&limit=2&cursor={c3}"
        ))
        .await;
    assert_eq!(third["data"].as_array().unwrap().len(), 1);
    assert!(third["next_cursor"].is_null());
    // A cursor is bound to its list and cannot be forged.
    let chat = t.token(&["whatsapp_chat:view"]);
    let (s, v) = t
        .api(
            "GET",
            &format!("/api/v1/conversations?rel_type=leads&cursor={cursor}"),
            Some(&chat),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
    let tampered = format!("{}A", cursor);
    assert_eq!(
        t.api(
            "GET",
            &format!("/api/v1/conversations?rel_type=general&cursor={tampered}"),
            Some(&chat),
            None
        )
        .await
        .0,
        400
    );
    // Other rel_types are empty.
    assert!(
        t.chat_get("/api/v1/conversations?rel_type=leads").await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn message_history_pages_in_order() {
    let t = start().await;
    let ts = chrono::Utc::now().timestamp();
    let msgs: Vec<(String, i64)> = (0..5).map(|i| (format!("wamid.h{i}"), ts + i)).collect();
    let tuples: Vec<(&str, &str, i64, &str)> = msgs
        .iter()
        .map(|(w, s)| ("15551112222", w.as_str(), *s, "m"))
        .collect();
    t.post_signed(&batch_payload(PNID, &tuples)).await;
    let conv = eventually(Duration::from_secs(20), || async {
        let c = t.conversation_of("15551112222").await;
        (c["message_count"] == 5).then_some(c)
    })
    .await
    .unwrap();
    let id = conv["id"].as_str().unwrap();
    let p1 = t
        .chat_get(&format!("/api/v1/conversations/{id}/messages?limit=3"))
        .await;
    let ids1: Vec<&str> = p1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids1, ["wamid.h0", "wamid.h1", "wamid.h2"]);
    let c = p1["next_cursor"].as_str().unwrap();
    let p2 = t
        .chat_get(&format!(
            "/api/v1/conversations/{id}/messages?limit=3&cursor={c}"
        ))
        .await;
    let ids2: Vec<&str> = p2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids2, ["wamid.h3", "wamid.h4"]);
    assert!(p2["next_cursor"].is_null());
    let single = t.chat_get(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(single["message_count"], 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn inbox_filters_and_unread_counts() {
    let t = start().await;
    let ts = chrono::Utc::now().timestamp();
    t.post_signed(&text_payload(
        PNID,
        "15557000001",
        "Alice Smith",
        "wamid.f1",
        ts,
        "hi",
    ))
    .await;
    t.post_signed(&text_payload(
        PNID,
        "15557000002",
        "Bob Jones",
        "wamid.f2",
        ts + 1,
        "hi",
    ))
    .await;
    t.post_signed(&text_payload(
        PNID,
        "15557000002",
        "Bob Jones",
        "wamid.f3",
        ts + 2,
        "again",
    ))
    .await;
    t.post_signed(&text_payload(
        PNID,
        "447911000003",
        "Carla",
        "wamid.f4",
        ts + 3,
        "hi",
    ))
    .await;
    eventually(Duration::from_secs(20), || async {
        let c = t.conversations().await;
        (c.len() == 3
            && c.iter().all(|c| c["last_message_at"].is_number())
            && c.iter()
                .map(|c| c["message_count"].as_i64().unwrap())
                .sum::<i64>()
                == 4)
            .then_some(())
    })
    .await
    .expect("three conversations");
    let chat = t.token(&["whatsapp_chat:view"]);
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["customer"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    // Text search on name (case-insensitive) and on number digits.
    assert_eq!(
        names(&t.chat_get("/api/v1/conversations?q=ALICE").await),
        ["Alice Smith"]
    );
    assert_eq!(
        names(&t.chat_get("/api/v1/conversations?q=%2B44%207911").await),
        ["Carla"]
    );
    assert!(names(&t.chat_get("/api/v1/conversations?q=nobody").await).is_empty());
    // Assignee filter.
    let bob = t.conversation_of("15557000002").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/conversations/{bob}/assignee"),
            Some(&chat),
            Some(json!({"staff_id": "12"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        names(&t.chat_get("/api/v1/conversations?assignee=12").await),
        ["Bob Jones"]
    );
    assert_eq!(
        names(&t.chat_get("/api/v1/conversations?assignee=none").await),
        ["Carla", "Alice Smith"]
    );
    // Filtered pages continue with their own cursor.
    let p1 = t
        .chat_get("/api/v1/conversations?assignee=none&limit=1")
        .await;
    assert_eq!(names(&p1), ["Carla"]);
    let c = p1["next_cursor"].as_str().unwrap().to_string();
    let p2 = t
        .chat_get(&format!(
            "/api/v1/conversations?assignee=none&limit=1&cursor={c}"
        ))
        .await;
    assert_eq!(names(&p2), ["Alice Smith"]);
    let (s, _) = t
        .api(
            "GET",
            &format!("/api/v1/conversations?assignee=12&limit=1&cursor={c}"),
            Some(&chat),
            None,
        )
        .await;
    assert_eq!(s, 400, "a cursor of another filter is refused");
    // Unread counts.
    let u = t.chat_get("/api/v1/conversations/unread").await;
    assert_eq!(
        u["general"],
        json!({"messages": 4, "conversations": 3}),
        "{u}"
    );
    assert_eq!(u["total"], json!({"messages": 4, "conversations": 3}));
    assert_eq!(u["leads"], json!({"messages": 0, "conversations": 0}));
}

/// Every request leaves one access-log line: method, matched route, status, latency; never the
/// token, the ids in the path or the query string.
#[tokio::test(flavor = "multi_thread")]
async fn each_request_leaves_an_access_log_line_without_secrets() {
    let t = start().await;
    let token = t.token(&["whatsapp_chat:view"]);
    let (s, _) = t
        .api("GET", "/api/v1/conversations?limit=5", Some(&token), None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = t
        .api(
            "GET",
            "/api/v1/conversations/no-such-conversation-4711/messages",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let logs = captured_logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    let find = |route: &str, status: u16| {
        lines.iter().any(|l| {
            l["fields"]["route"] == route
                && l["fields"]["status"] == status
                && l["fields"]["method"] == "GET"
                && l["fields"]["ms"].is_number()
        })
    };
    assert!(find("/api/v1/conversations", 200), "{lines:?}");
    assert!(
        find("/api/v1/conversations/{id}/messages", 404),
        "{lines:?}"
    );
    assert!(!logs.contains(&token), "the token was logged");
    assert!(
        !logs.contains("no-such-conversation-4711"),
        "the path's id was logged"
    );
    assert!(!logs.contains("limit=5"), "the query string was logged");
}
