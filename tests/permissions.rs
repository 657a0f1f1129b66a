//! The permission matrix: every operation of the generated OpenAPI document, with the access
//! its security requirement declares, called without a token, without each permission, with
//! exactly its permissions, with every permission but not as admin, and as admin.
use integration_tests::*;
use serde_json::{Value, json};
use staff_api::openapi::{Access, operations};

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_with_and_without_each_permission() {
    let (t, _graph) = start_with_graph(500).await;
    let all_perms: Vec<String> = shared::auth::Permission::all()
        .map(|p| p.to_string())
        .collect();
    let all_refs: Vec<&str> = all_perms.iter().map(String::as_str).collect();
    let everything_but_admin = t.info().mint_token("5", false, &all_refs);
    let nothing = t.info().mint_token("6", false, &[]);
    let admin = t.admin_token();
    let mut checked = 0;
    for d in operations() {
        let path = concrete(&d.path);
        let body: Option<Value> = matches!(d.method.as_str(), "POST" | "PUT").then(|| json!({}));
        let call = |token: Option<String>| {
            let (m, p, b) = (d.method.as_str(), path.clone(), body.clone());
            let t = &t;
            async move { t.api(m, &p, token.as_deref(), b).await }
        };
        let label = format!("{} {}", d.method, d.path);
        match &d.access {
            Access::Public => {
                assert_eq!(call(None).await.0, 200, "{label}");
                continue;
            }
            Access::Admin => {
                let (s, v) = call(Some(everything_but_admin.clone())).await;
                assert_eq!(s, 403, "{label} must be admin-only: {v}");
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap_or("")
                        .contains("admin"),
                    "{label}: {v}"
                );
            }
            Access::Perms(perms) => {
                let perms: Vec<&str> = perms.iter().map(String::as_str).collect();
                let exact = t.info().mint_token("8", false, &perms);
                let (s, v) = call(Some(exact)).await;
                assert!(
                    s != 401 && s != 403,
                    "{label} with exactly {perms:?} → {s} {v}"
                );
                let (s, _) = call(Some(everything_but_admin.clone())).await;
                assert!(s != 401 && s != 403, "{label} with every permission → {s}");
                // Each required permission alone missing → 403 naming it.
                for missing in perms.iter() {
                    let rest: Vec<&str> =
                        all_refs.iter().copied().filter(|p| p != missing).collect();
                    let tok = t.info().mint_token("9", false, &rest);
                    let (s, v) = call(Some(tok)).await;
                    assert_eq!(s, 403, "{label} without {missing}: {v}");
                    assert!(
                        v["error"]["message"]
                            .as_str()
                            .unwrap_or("")
                            .contains(missing),
                        "{label}: {v}"
                    );
                }
            }
        }
        let (s, v) = call(None).await;
        assert_eq!(s, 401, "{label} without a token: {v}");
        let (s, v) = call(Some(nothing.clone())).await;
        assert_eq!(s, 403, "{label} with no permission: {v}");
        let (s, v) = call(Some(admin.clone())).await;
        assert!(s != 401 && s != 403, "{label} as admin → {s} {v}");
        checked += 1;
    }
    assert!(checked >= 50, "{checked}");
    // The served document is the generated one.
    let (s, doc) = t.api("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc, staff_api::openapi::document());
}

/// The visibility rule on top of the permissions: with `mode = assigned`, non-admin staff see
/// only conversations assigned to them or to no one, on every conversation and media route.
#[tokio::test(flavor = "multi_thread")]
async fn inbox_visibility_limits_staff_to_their_conversations() {
    let (t, graph) = start_with_graph(700).await;
    const PNID: &str = "106540352242922";
    let ts = chrono::Utc::now().timestamp();
    let mut ids = Vec::new();
    for (i, wa) in ["15554440001", "15554440002", "15554440003"]
        .iter()
        .enumerate()
    {
        t.post_signed(&text_payload(
            PNID,
            wa,
            "V",
            &format!("wamid.v{i}"),
            ts,
            "hi",
        ))
        .await;
        ids.push(
            t.conversation_of(wa).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let admin = t.admin_token();
    // Conversation 0 is staff 7's, 1 is nobody's, 2 is staff 8's.
    for (i, who) in [(0, "7"), (2, "8")] {
        let (s, v) = t
            .api(
                "PUT",
                &format!("/api/v1/conversations/{}/assignee", ids[i]),
                Some(&admin),
                Some(json!({"staff_id": who})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let seven = t.info().mint_token("7", false, &["whatsapp_chat:view"]);
    let listed = |token: String| {
        let t = &t;
        async move {
            let (s, v) = t
                .api("GET", "/api/v1/conversations", Some(&token), None)
                .await;
            assert_eq!(s, 200, "{v}");
            let mut ids: Vec<String> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let mut all = ids.clone();
    all.sort();
    // Default: the seed's rule, every conversation.
    assert_eq!(listed(seven.clone()).await, all);
    let (s, v) = t
        .api(
            "GET",
            "/api/v1/settings/inbox-visibility",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s, v["mode"].as_str()), (200, Some("all")), "{v}");
    assert_eq!(
        t.api(
            "PUT",
            "/api/v1/settings/inbox-visibility",
            Some(&seven),
            Some(json!({"mode": "assigned"}))
        )
        .await
        .0,
        403,
        "admin only"
    );
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/settings/inbox-visibility",
            Some(&admin),
            Some(json!({"mode": "assigned"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = t
        .api(
            "PUT",
            "/api/v1/settings/inbox-visibility",
            Some(&admin),
            Some(json!({"mode": "some"})),
        )
        .await;
    assert_eq!(s, 400);
    let mut mine = vec![ids[0].clone(), ids[1].clone()];
    mine.sort();
    assert_eq!(listed(seven.clone()).await, mine);
    assert_eq!(listed(admin.clone()).await, all, "admins see everything");
    // Staff 8's conversation, on every route that names a conversation.
    let other = &ids[2];
    for (method, path, body) in [
        ("GET", format!("/api/v1/conversations/{other}"), None),
        (
            "GET",
            format!("/api/v1/conversations/{other}/messages"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/conversations/{other}/messages"),
            Some(json!({"content": {"type": "text", "body": "x"}})),
        ),
        (
            "POST",
            format!("/api/v1/conversations/{other}/read"),
            Some(json!({})),
        ),
        (
            "PUT",
            format!("/api/v1/conversations/{other}/assignee"),
            Some(json!({"staff_id": "7"})),
        ),
        (
            "POST",
            format!("/api/v1/conversations/{other}/tickets"),
            Some(json!({"subject": "s", "description": "d"})),
        ),
        (
            "POST",
            "/api/v1/media/uploads".to_string(),
            Some(
                json!({"conversation_id": other, "filename": "a.pdf", "mime_type": "application/pdf", "size": 10}),
            ),
        ),
    ] {
        let (s, v) = t.api(method, &path, Some(&seven), body).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}: {v}"
        );
    }
    // The unread counts count only what staff 7 sees (each conversation has one unread).
    let (s, v) = t
        .api("GET", "/api/v1/conversations/unread", Some(&seven), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total"]["conversations"], 2, "{v}");
    let (_, v) = t
        .api("GET", "/api/v1/conversations/unread", Some(&admin), None)
        .await;
    assert_eq!(v["total"]["conversations"], 3, "{v}");
    // Their own and the unassigned one still work.
    for id in &mine {
        assert_eq!(
            t.api(
                "GET",
                &format!("/api/v1/conversations/{id}"),
                Some(&seven),
                None
            )
            .await
            .0,
            200
        );
    }
    assert!(
        graph
            .requests()
            .iter()
            .all(|r| !r.path.ends_with("/messages")),
        "nothing sent"
    );
}
