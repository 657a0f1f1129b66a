//! Quick replies, business numbers, WhatsApp contacts and groups through the staff API:
//! round trips, validation, uniqueness (409), paging, permissions, and a quick reply sent
//! through the reply route with its placeholders filled.
use std::collections::HashSet;

use integration_tests::fake_graph::FakeGraph;
use integration_tests::*;
use serde_json::{Value, json};

const PNID: &str = "106540352242922";

async fn stack_with_graph() -> (TestStack, FakeGraph) {
    start_with_graph(2000).await
}

fn err_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

fn err_message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn quick_replies_round_trip_validation_and_unique_shortcuts() {
    let t = start().await;
    let tok = t.token(&[
        "quickreplies:view",
        "quickreplies:create",
        "quickreplies:edit",
        "quickreplies:delete",
    ]);
    let tok = Some(tok.as_str());
    let (s, a) = t
        .api(
            "POST",
            "/api/v1/quick-replies",
            tok,
            Some(json!({"title": " Greeting ", "body": "Hi {{customer_name}}!", "shortcut": "hi"})),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["title"], "Greeting", "trimmed");
    assert_eq!(a["created_by"], "7");
    assert!(a["updated_at"].is_i64());
    let id_a = a["id"].as_str().unwrap().to_string();
    let (s, got) = t
        .api("GET", &format!("/api/v1/quick-replies/{id_a}"), tok, None)
        .await;
    assert_eq!((s, &got), (200, &a));

    // The shortcut is unique.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/quick-replies",
            tok,
            Some(json!({"title": "Other", "body": "x", "shortcut": "hi"})),
        )
        .await;
    assert_eq!((s, err_code(&v)), (409, "shortcut_taken"), "{v}");
    assert!(err_message(&v).contains(&id_a), "names the holder: {v}");
    let (s, b) = t
        .api(
            "POST",
            "/api/v1/quick-replies",
            tok,
            Some(json!({"title": "Thanks", "body": "Thank you, {{ customer_first_name }}."})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["shortcut"], Value::Null);
    let id_b = b["id"].as_str().unwrap().to_string();
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/quick-replies/{id_b}"),
            tok,
            Some(json!({"shortcut": "hi"})),
        )
        .await;
    assert_eq!((s, err_code(&v)), (409, "shortcut_taken"), "{v}");

    // Moving A's shortcut frees the old one for B.
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/quick-replies/{id_a}"),
            tok,
            Some(json!({"shortcut": "hello", "title": "Greeting 2"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["shortcut"].as_str(),
            v["title"].as_str(),
            v["body"].as_str()
        ),
        (
            Some("hello"),
            Some("Greeting 2"),
            Some("Hi {{customer_name}}!")
        )
    );
    assert_eq!(v["updated_by"], "7");
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/quick-replies/{id_b}"),
            tok,
            Some(json!({"shortcut": "hi"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // null removes a shortcut, which frees it.
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/quick-replies/{id_b}"),
            tok,
            Some(json!({"shortcut": null})),
        )
        .await;
    assert_eq!((s, &v["shortcut"]), (200, &Value::Null), "{v}");
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/quick-replies/{id_a}"),
            tok,
            Some(json!({"shortcut": "hi"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    // List, in creation order.
    let (s, v) = t.api("GET", "/api/v1/quick-replies", tok, None).await;
    assert_eq!(s, 200, "{v}");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id_a.as_str(), id_b.as_str()]);
    let (s, v) = t
        .api("GET", "/api/v1/quick-replies/placeholders", tok, None)
        .await;
    assert_eq!(s, 200);
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["placeholder"] == "{{customer_name}}"),
        "{v}"
    );

    // Validation errors name the field.
    for (body, field) in [
        (json!({"title": "", "body": "x"}), "title"),
        (json!({"title": "t".repeat(101), "body": "x"}), "title"),
        (json!({"title": "t", "body": ""}), "body"),
        (json!({"title": "t", "body": "é".repeat(4097)}), "body"),
        (
            json!({"title": "t", "body": "Hi {{customer_nme}}"}),
            "customer_nme",
        ),
        (
            json!({"title": "t", "body": "Hi {{customer_name"}),
            "unclosed",
        ),
        (
            json!({"title": "t", "body": "x", "shortcut": "Bad!"}),
            "shortcut",
        ),
        (
            json!({"title": "t", "body": "x", "shortcut": "a".repeat(33)}),
            "shortcut",
        ),
        (
            json!({"title": "t", "body": "x", "colour": "red"}),
            "colour",
        ),
        (json!({"body": "x"}), "title"),
    ] {
        let (s, v) = t
            .api("POST", "/api/v1/quick-replies", tok, Some(body.clone()))
            .await;
        assert_eq!((s, err_code(&v)), (400, "bad_request"), "{body}: {v}");
        assert!(err_message(&v).contains(field), "{body}: {v}");
    }
    let body_4096 = "é".repeat(4096);
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/quick-replies",
            tok,
            Some(json!({"title": "long", "body": body_4096})),
        )
        .await;
    assert_eq!(s, 201, "4096 characters are allowed: {v}");

    // Delete releases the shortcut; then it is gone.
    let (s, _) = t
        .api(
            "DELETE",
            &format!("/api/v1/quick-replies/{id_a}"),
            tok,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = t
        .api("GET", &format!("/api/v1/quick-replies/{id_a}"), tok, None)
        .await;
    assert_eq!((s, err_code(&v)), (404, "not_found"));
    let (s, _) = t
        .api(
            "DELETE",
            &format!("/api/v1/quick-replies/{id_a}"),
            tok,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = t
        .api(
            "PUT",
            &format!("/api/v1/quick-replies/{id_a}"),
            tok,
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/quick-replies",
            tok,
            Some(json!({"title": "again", "body": "x", "shortcut": "hi"})),
        )
        .await;
    assert_eq!(s, 201, "the deleted reply's shortcut is free: {v}");
    let (s, _) = t.api("GET", "/api/v1/quick-replies/a%23b", tok, None).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quick_reply_is_sent_with_its_placeholders_filled() {
    let (t, graph) = stack_with_graph().await;
    let now = chrono::Utc::now().timestamp();
    t.post_signed(&text_payload(
        PNID,
        "15550606060",
        "Ana Souza",
        "wamid.in-qr",
        now,
        "hello",
    ))
    .await;
    let conv = t.conversation_of("15550606060").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = t.admin_token();
    let (s, q) = t
        .api(
            "POST",
            "/api/v1/quick-replies",
            Some(&admin),
            Some(json!({"title": "Welcome",
                "body": "Hi {{customer_first_name}} ({{customer_name}}), agent {{staff_id}} here about {{ customer_phone }}."})),
        )
        .await;
    assert_eq!(s, 201, "{q}");
    let qid = q["id"].as_str().unwrap();
    let chat = t.token(&["whatsapp_chat:view"]);
    let path = format!("/api/v1/conversations/{conv}/messages");
    let (s, v) = t
        .api(
            "POST",
            &path,
            Some(&chat),
            Some(json!({"quick_reply_id": qid, "idempotency_key": "qr-1"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "accepted");
    let reqs = graph.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].body["type"], "text");
    assert_eq!(
        reqs[0].body["text"],
        json!({"preview_url": false, "body": "Hi Ana (Ana Souza), agent 7 here about +15550606060."})
    );
    assert!(graph.problems().is_empty(), "{:?}", graph.problems());
    let history = t.messages(&conv).await;
    assert!(
        history.iter().any(|m| m["direction"] == "outbound"
            && m["summary"].as_str().unwrap_or("").starts_with("Hi Ana")),
        "{history:?}"
    );
    // Exactly one of content / quick_reply_id; an unknown quick reply is 404; nothing sent.
    let both = json!({"quick_reply_id": qid, "content": {"type": "text", "body": "x"}, "idempotency_key": "qr-2"});
    let (s, v) = t.api("POST", &path, Some(&chat), Some(both)).await;
    assert_eq!(s, 400, "{v}");
    assert!(err_message(&v).contains("quick_reply_id"), "{v}");
    let (s, v) = t
        .api(
            "POST",
            &path,
            Some(&chat),
            Some(json!({"idempotency_key": "qr-3"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = t
        .api(
            "POST",
            &path,
            Some(&chat),
            Some(json!({"quick_reply_id": "0000000000000000deadbeef", "idempotency_key": "qr-4"})),
        )
        .await;
    assert_eq!((s, err_message(&v)), (404, "quick reply not found"), "{v}");
    assert_eq!(graph.requests().len(), 1);
    // Plain content still works.
    let (s, v) = t
        .api(
            "POST",
            &path,
            Some(&chat),
            Some(json!({"content": {"type": "text", "body": "plain"}, "idempotency_key": "qr-5"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(graph.requests()[1].body["text"]["body"], "plain");
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_are_added_edited_and_one_is_the_default() {
    let t = start().await;
    let tok = t.token(&["whatsapp_numbers:view", "whatsapp_numbers:edit"]);
    let tok = Some(tok.as_str());
    assert!(t.store().default_number().await.unwrap().is_none());
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/numbers",
            tok,
            Some(json!({"phone_number_id": "111111111111111", "display_phone_number": "+1 555-078-3881",
                        "verified_name": "Acme Support", "label": "Support"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["is_default"], true,
        "the first number becomes the default"
    );
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/numbers",
            tok,
            Some(
                json!({"phone_number_id": "222222222222222", "display_phone_number": "15550783882",
                        "verified_name": "Acme Sales"}),
            ),
        )
        .await;
    assert_eq!((s, &v["is_default"]), (201, &json!(false)), "{v}");
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/numbers",
            tok,
            Some(json!({"phone_number_id": "222222222222222", "display_phone_number": "1", "verified_name": "x"})),
        )
        .await;
    assert_eq!((s, err_code(&v)), (409, "already_exists"), "{v}");
    for (body, field) in [
        (
            json!({"phone_number_id": "12ab", "display_phone_number": "1", "verified_name": "x"}),
            "phone_number_id",
        ),
        (
            json!({"phone_number_id": "", "display_phone_number": "1", "verified_name": "x"}),
            "phone_number_id",
        ),
        (
            json!({"phone_number_id": "3", "display_phone_number": "call me", "verified_name": "x"}),
            "display_phone_number",
        ),
        (
            json!({"phone_number_id": "3", "display_phone_number": "1", "verified_name": " "}),
            "verified_name",
        ),
        (
            json!({"phone_number_id": "3", "display_phone_number": "1", "verified_name": "x", "label": "l".repeat(101)}),
            "label",
        ),
        (
            json!({"phone_number_id": "3", "display_phone_number": "1"}),
            "verified_name",
        ),
    ] {
        let (s, v) = t
            .api("POST", "/api/v1/numbers", tok, Some(body.clone()))
            .await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(err_message(&v).contains(field), "{body}: {v}");
    }

    // Default: exactly one, moved atomically.
    let (s, v) = t
        .api("POST", "/api/v1/numbers/222222222222222/default", tok, None)
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t.api("GET", "/api/v1/numbers", tok, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["default_phone_number_id"], "222222222222222");
    let defaults: Vec<&Value> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1, "{v}");
    assert_eq!(defaults[0]["phone_number_id"], "222222222222222");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let d = t.store().default_number().await.unwrap().expect("default");
    assert_eq!(
        (d.phone_number_id.as_str(), d.verified_name.as_str()),
        ("222222222222222", "Acme Sales")
    );
    let (s, v) = t
        .api("POST", "/api/v1/numbers/999999/default", tok, None)
        .await;
    assert_eq!((s, err_code(&v)), (404, "not_found"), "{v}");
    assert_eq!(
        t.store().default_number_id().await.unwrap().as_deref(),
        Some("222222222222222"),
        "a refused default changes nothing"
    );

    // Edit: given fields replaced, label removable.
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/numbers/111111111111111",
            tok,
            Some(json!({"verified_name": "Acme Help", "label": null})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["verified_name"].as_str(),
            &v["label"],
            v["display_phone_number"].as_str(),
            &v["is_default"]
        ),
        (
            Some("Acme Help"),
            &Value::Null,
            Some("+1 555-078-3881"),
            &json!(false)
        )
    );
    let (s, v) = t
        .api("GET", "/api/v1/numbers/111111111111111", tok, None)
        .await;
    assert_eq!((s, v["verified_name"].as_str()), (200, Some("Acme Help")));
    let (s, _) = t
        .api(
            "PUT",
            "/api/v1/numbers/333",
            tok,
            Some(json!({"label": "x"})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/numbers/111111111111111",
            tok,
            Some(json!({"display_phone_number": "abc"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = t.api("GET", "/api/v1/numbers/not-digits", tok, None).await;
    assert_eq!(s, 404);
}

async fn create_contact(t: &TestStack, tok: &str, body: Value) -> Value {
    let (s, v) = t
        .api("POST", "/api/v1/contacts", Some(tok), Some(body))
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn create_group(t: &TestStack, tok: &str, name: &str) -> String {
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/groups",
            Some(tok),
            Some(json!({"name": name, "description": "d"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn get_json(t: &TestStack, tok: &str, path: &str) -> Value {
    let (s, v) = t.api("GET", path, Some(tok), None).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

fn ids_of(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn contacts_and_groups_round_trip_with_unique_phones_and_memberships() {
    let t = start().await;
    let admin = t.admin_token();
    let tok = admin.as_str();
    let vip = create_group(&t, tok, "VIP").await;
    let news = create_group(&t, tok, "Newsletter").await;

    // Phone normalised to E.164; tags trimmed and deduplicated; memberships written.
    let ana = create_contact(
        &t,
        tok,
        json!({"name": "Ana", "phone": "+1 (650) 555-1234", "tags": [" gold ", "gold", "2024"],
               "opted_in": true, "group_ids": [vip]}),
    )
    .await;
    assert_eq!(ana["phone"], "+16505551234");
    assert_eq!(ana["tags"], json!(["gold", "2024"]));
    assert_eq!(ana["group_ids"], json!([vip]));
    let ana_id = ana["id"].as_str().unwrap().to_string();
    assert_eq!(
        get_json(&t, tok, &format!("/api/v1/contacts/{ana_id}")).await,
        ana
    );

    // The same number in another spelling is the same phone: 409 naming the holder.
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/contacts",
            Some(tok),
            Some(json!({"name": "Dup", "phone": "16505551234"})),
        )
        .await;
    assert_eq!((s, err_code(&v)), (409, "phone_taken"), "{v}");
    assert!(err_message(&v).contains(&ana_id), "{v}");
    // Invalid input names the field.
    for (body, field) in [
        (json!({"name": "X", "phone": "not a phone"}), "phone"),
        (json!({"name": "X", "phone": "+1 555"}), "phone"),
        (json!({"name": "", "phone": "+16505550000"}), "name"),
        (
            json!({"name": "X", "phone": "+16505550000", "tags": [""]}),
            "tags",
        ),
        (
            json!({"name": "X", "phone": "+16505550000", "group_ids": ["a#b"]}),
            "group_ids",
        ),
        (
            json!({"name": "X", "phone": "+16505550000", "opted_in": "yes"}),
            "opted_in",
        ),
        (json!({"name": "X"}), "phone"),
    ] {
        let (s, v) = t
            .api("POST", "/api/v1/contacts", Some(tok), Some(body.clone()))
            .await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(err_message(&v).contains(field), "{body}: {v}");
    }
    // A group that does not exist: 404 naming it, nothing written (the phone stays free).
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/contacts",
            Some(tok),
            Some(json!({"name": "Bo", "phone": "+16505550001", "group_ids": ["0000000000000000nogroup0"]})),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    assert!(err_message(&v).contains("0000000000000000nogroup0"), "{v}");
    let bo = create_contact(&t, tok, json!({"name": "Bo", "phone": "+16505550001"})).await;
    let bo_id = bo["id"].as_str().unwrap().to_string();
    assert_eq!(bo["opted_in"], false);
    assert_eq!(bo["group_ids"], json!([]));

    // Membership routes: idempotent add, member list is the group's, counts follow.
    let member = |g: &str, c: &str| format!("/api/v1/groups/{g}/members/{c}");
    let (s, v) = t.api("PUT", &member(&vip, &bo_id), Some(tok), None).await;
    assert_eq!((s, &v["added"]), (200, &json!(true)), "{v}");
    let (s, v) = t.api("PUT", &member(&vip, &bo_id), Some(tok), None).await;
    assert_eq!((s, &v["added"]), (200, &json!(false)), "{v}");
    let (s, v) = t
        .api(
            "PUT",
            &member(&vip, "0000000000000000nocontac"),
            Some(tok),
            None,
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = t
        .api(
            "PUT",
            &member("0000000000000000nogroup0", &bo_id),
            Some(tok),
            None,
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let members = get_json(&t, tok, &format!("/api/v1/groups/{vip}/members")).await;
    assert_eq!(
        ids_of(&members).into_iter().collect::<HashSet<_>>(),
        HashSet::from([ana_id.clone(), bo_id.clone()])
    );
    assert!(
        members["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["phone"] == "+16505551234")
    );
    assert_eq!(
        get_json(&t, tok, &format!("/api/v1/groups/{vip}")).await["member_count"],
        2
    );
    assert_eq!(
        get_json(&t, tok, &format!("/api/v1/contacts/{bo_id}")).await["group_ids"],
        json!([vip])
    );
    let (s, _) = t
        .api("DELETE", &member(&vip, &bo_id), Some(tok), None)
        .await;
    assert_eq!(s, 204);
    let (s, v) = t
        .api("DELETE", &member(&vip, &bo_id), Some(tok), None)
        .await;
    assert_eq!(s, 404, "not a member any more: {v}");
    assert_eq!(
        get_json(&t, tok, &format!("/api/v1/contacts/{bo_id}")).await["group_ids"],
        json!([])
    );
    assert_eq!(
        get_json(&t, tok, &format!("/api/v1/groups/{vip}")).await["member_count"],
        1
    );

    // PUT contact: phone change frees the old number; group_ids is synced.
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/contacts/{ana_id}"),
            Some(tok),
            Some(json!({"phone": "+16505559999", "group_ids": [news], "opted_in": false})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (
            v["phone"].as_str(),
            &v["group_ids"],
            &v["opted_in"],
            v["name"].as_str()
        ),
        (
            Some("+16505559999"),
            &json!([news]),
            &json!(false),
            Some("Ana")
        )
    );
    assert_eq!(
        ids_of(&get_json(&t, tok, &format!("/api/v1/groups/{vip}/members")).await),
        Vec::<String>::new()
    );
    assert_eq!(
        ids_of(&get_json(&t, tok, &format!("/api/v1/groups/{news}/members")).await),
        vec![ana_id.clone()]
    );
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/contacts/{bo_id}"),
            Some(tok),
            Some(json!({"phone": "+16505559999"})),
        )
        .await;
    assert_eq!((s, err_code(&v)), (409, "phone_taken"), "{v}");
    let carl = create_contact(&t, tok, json!({"name": "Carl", "phone": "+16505551234"})).await;
    assert_eq!(
        carl["phone"], "+16505551234",
        "the old number is free again"
    );
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/contacts/{bo_id}"),
            Some(tok),
            Some(json!({"phone": "nope"})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(err_message(&v).contains("phone"), "{v}");

    // Groups: edit, description removable.
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/groups/{news}"),
            Some(tok),
            Some(json!({"name": "News", "description": null})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["name"].as_str(), &v["description"], &v["member_count"]),
        (Some("News"), &Value::Null, &json!(1))
    );
    let (s, _) = t
        .api(
            "PUT",
            &format!("/api/v1/groups/{news}"),
            Some(tok),
            Some(json!({"name": ""})),
        )
        .await;
    assert_eq!(s, 400);
    let groups = get_json(&t, tok, "/api/v1/groups").await;
    assert_eq!(ids_of(&groups), vec![vip.clone(), news.clone()]);

    // Deleting a group removes it from its members; deleting a contact leaves its groups.
    t.api("PUT", &member(&news, &bo_id), Some(tok), None).await;
    let (s, _) = t
        .api("DELETE", &format!("/api/v1/groups/{news}"), Some(tok), None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = t
        .api("GET", &format!("/api/v1/groups/{news}"), Some(tok), None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = t
        .api("DELETE", &format!("/api/v1/groups/{news}"), Some(tok), None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        get_json(&t, tok, &format!("/api/v1/contacts/{ana_id}")).await["group_ids"],
        json!([])
    );
    assert_eq!(
        get_json(&t, tok, &format!("/api/v1/contacts/{bo_id}")).await["group_ids"],
        json!([])
    );
    assert_eq!(
        ids_of(&get_json(&t, tok, "/api/v1/groups").await),
        vec![vip.clone()]
    );
    t.api("PUT", &member(&vip, &bo_id), Some(tok), None).await;
    let (s, _) = t
        .api(
            "DELETE",
            &format!("/api/v1/contacts/{bo_id}"),
            Some(tok),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = t
        .api("GET", &format!("/api/v1/contacts/{bo_id}"), Some(tok), None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        get_json(&t, tok, &format!("/api/v1/groups/{vip}")).await["member_count"],
        0
    );
    assert_eq!(
        ids_of(&get_json(&t, tok, &format!("/api/v1/groups/{vip}/members")).await),
        Vec::<String>::new()
    );
    let again = create_contact(
        &t,
        tok,
        json!({"name": "Bo again", "phone": "+16505550001"}),
    )
    .await;
    assert_eq!(
        again["phone"], "+16505550001",
        "a deleted contact's phone is free"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn contacts_and_members_are_paged_with_signed_cursors() {
    let t = start().await;
    let admin = t.admin_token();
    let tok = admin.as_str();
    let g = create_group(&t, tok, "All").await;
    let mut created = Vec::new();
    for i in 0..7 {
        let c = create_contact(
            &t,
            tok,
            json!({"name": format!("C{i}"), "phone": format!("+1650555{:04}", 2000 + i), "group_ids": [g]}),
        )
        .await;
        created.push(c["id"].as_str().unwrap().to_string());
    }
    for (base, want_sorted) in [
        ("/api/v1/contacts?limit=3".to_string(), false),
        (format!("/api/v1/groups/{g}/members?limit=3"), true),
    ] {
        let mut seen = Vec::new();
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("{base}&cursor={c}"),
                None => base.clone(),
            };
            let v = get_json(&t, tok, &path).await;
            pages.push(v["data"].as_array().unwrap().len());
            seen.extend(ids_of(&v));
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(pages, vec![3, 3, 1], "{base}");
        let mut want = created.clone();
        if want_sorted {
            want.sort();
        }
        assert_eq!(seen, want, "{base}: every item once, in order");
    }
    // A tampered cursor, or one of another list, is refused.
    let v = get_json(&t, tok, "/api/v1/contacts?limit=3").await;
    let c = v["next_cursor"].as_str().unwrap().to_string();
    let mut tampered = c.clone();
    tampered.insert(0, 'x');
    let (s, v) = t
        .api(
            "GET",
            &format!("/api/v1/contacts?limit=3&cursor={tampered}"),
            Some(tok),
            None,
        )
        .await;
    assert_eq!((s, err_code(&v)), (400, "invalid_cursor"));
    let (s, v) = t
        .api(
            "GET",
            &format!("/api/v1/groups/{g}/members?cursor={c}"),
            Some(tok),
            None,
        )
        .await;
    assert_eq!((s, err_code(&v)), (400, "invalid_cursor"));
    let (s, _) = t
        .api("GET", "/api/v1/contacts?limit=0", Some(tok), None)
        .await;
    assert_eq!(s, 400);
}

/// Every route: 401 without a token, 403 without its permission(s), allowed with them and
/// for an admin.
#[tokio::test(flavor = "multi_thread")]
async fn every_route_checks_its_permission() {
    let t = start().await;
    let admin = t.admin_token();
    let (_, q) = t
        .api(
            "POST",
            "/api/v1/quick-replies",
            Some(&admin),
            Some(json!({"title": "t", "body": "b"})),
        )
        .await;
    let qid = q["id"].as_str().unwrap().to_string();
    let (s, _) = t
        .api("POST", "/api/v1/numbers", Some(&admin),
            Some(json!({"phone_number_id": "555", "display_phone_number": "555", "verified_name": "n"})))
        .await;
    assert_eq!(s, 201);
    let g = create_group(&t, &admin, "G").await;
    let c = create_contact(&t, &admin, json!({"name": "C", "phone": "+16505557777"})).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let gone = "0000000000000000deadbeef";

    // (method, path, body, permissions needed). Destructive calls target ids that do not
    // exist, so "allowed" shows as 404, not 403.
    let mut n = 0;
    let routes: Vec<(&str, String, Option<Value>, Vec<&str>)> = vec![
        (
            "GET",
            "/api/v1/quick-replies".into(),
            None,
            vec!["quickreplies:view"],
        ),
        (
            "GET",
            "/api/v1/quick-replies/placeholders".into(),
            None,
            vec!["quickreplies:view"],
        ),
        (
            "GET",
            format!("/api/v1/quick-replies/{qid}"),
            None,
            vec!["quickreplies:view"],
        ),
        (
            "POST",
            "/api/v1/quick-replies".into(),
            Some(json!({"title": "p", "body": "b"})),
            vec!["quickreplies:create"],
        ),
        (
            "PUT",
            format!("/api/v1/quick-replies/{qid}"),
            Some(json!({"title": "u"})),
            vec!["quickreplies:edit"],
        ),
        (
            "DELETE",
            format!("/api/v1/quick-replies/{gone}"),
            None,
            vec!["quickreplies:delete"],
        ),
        (
            "GET",
            "/api/v1/numbers".into(),
            None,
            vec!["whatsapp_numbers:view"],
        ),
        (
            "GET",
            "/api/v1/numbers/555".into(),
            None,
            vec!["whatsapp_numbers:view"],
        ),
        (
            "POST",
            "/api/v1/numbers".into(),
            Some(
                json!({"phone_number_id": "{n}", "display_phone_number": "1", "verified_name": "n"}),
            ),
            vec!["whatsapp_numbers:edit"],
        ),
        (
            "PUT",
            "/api/v1/numbers/555".into(),
            Some(json!({"label": "l"})),
            vec!["whatsapp_numbers:edit"],
        ),
        (
            "POST",
            "/api/v1/numbers/555/default".into(),
            None,
            vec!["whatsapp_numbers:edit"],
        ),
        (
            "GET",
            "/api/v1/contacts".into(),
            None,
            vec!["whatsapp_contacts:view"],
        ),
        (
            "GET",
            format!("/api/v1/contacts/{cid}"),
            None,
            vec!["whatsapp_contacts:view"],
        ),
        (
            "POST",
            "/api/v1/contacts".into(),
            Some(json!({"name": "n", "phone": "{phone}"})),
            vec!["whatsapp_contacts:create"],
        ),
        (
            "POST",
            "/api/v1/contacts".into(),
            Some(json!({"name": "n", "phone": "{phone}", "group_ids": [g]})),
            vec!["whatsapp_contacts:create", "whatsapp_groups:edit"],
        ),
        (
            "PUT",
            format!("/api/v1/contacts/{cid}"),
            Some(json!({"name": "u"})),
            vec!["whatsapp_contacts:edit"],
        ),
        (
            "PUT",
            format!("/api/v1/contacts/{cid}"),
            Some(json!({"group_ids": [g]})),
            vec!["whatsapp_contacts:edit", "whatsapp_groups:edit"],
        ),
        (
            "DELETE",
            format!("/api/v1/contacts/{gone}"),
            None,
            vec!["whatsapp_contacts:delete"],
        ),
        (
            "GET",
            "/api/v1/groups".into(),
            None,
            vec!["whatsapp_groups:view"],
        ),
        (
            "GET",
            format!("/api/v1/groups/{g}"),
            None,
            vec!["whatsapp_groups:view"],
        ),
        (
            "GET",
            format!("/api/v1/groups/{g}/members"),
            None,
            vec!["whatsapp_groups:view", "whatsapp_contacts:view"],
        ),
        (
            "POST",
            "/api/v1/groups".into(),
            Some(json!({"name": "n"})),
            vec!["whatsapp_groups:create"],
        ),
        (
            "PUT",
            format!("/api/v1/groups/{g}"),
            Some(json!({"name": "u"})),
            vec!["whatsapp_groups:edit"],
        ),
        (
            "DELETE",
            format!("/api/v1/groups/{gone}"),
            None,
            vec!["whatsapp_groups:delete"],
        ),
        (
            "PUT",
            format!("/api/v1/groups/{g}/members/{cid}"),
            None,
            vec!["whatsapp_groups:edit"],
        ),
        (
            "DELETE",
            format!("/api/v1/groups/{g}/members/{gone}"),
            None,
            vec!["whatsapp_groups:edit"],
        ),
    ];
    let every_perm: Vec<String> = shared::auth::Permission::all()
        .map(|p| p.to_string())
        .collect();
    for (method, path, body, needed) in &routes {
        // A fresh number / phone per allowed call, so creations do not collide.
        let body = |n: &mut i32| {
            *n += 1;
            body.as_ref().map(|b| {
                let s = b
                    .to_string()
                    .replace("{n}", &format!("9{n:03}"))
                    .replace("{phone}", &format!("+1650555{:04}", 3000 + *n));
                serde_json::from_str::<Value>(&s).unwrap()
            })
        };
        let what = format!("{method} {path}");
        let (s, _) = t.api(method, path, None, body(&mut n)).await;
        assert_eq!(s, 401, "{what} without a token");
        // Every permission except one of those needed: 403 naming it.
        for missing in needed {
            let others: Vec<&str> = every_perm
                .iter()
                .map(String::as_str)
                .filter(|p| p != missing)
                .collect();
            let (s, v) = t
                .api(method, path, Some(&t.token(&others)), body(&mut n))
                .await;
            assert_eq!(s, 403, "{what} without {missing}: {v}");
            assert_eq!(err_code(&v), "forbidden", "{what}: {v}");
            assert!(err_message(&v).contains(missing), "{what}: {v}");
        }
        let (s, v) = t
            .api(method, path, Some(&t.token(needed)), body(&mut n))
            .await;
        assert!(
            ![401, 403].contains(&s) && s < 500,
            "{what} with {needed:?}: {s} {v}"
        );
        let (s, v) = t.api(method, path, Some(&admin), body(&mut n)).await;
        assert!(
            ![401, 403].contains(&s) && s < 500,
            "{what} as admin: {s} {v}"
        );
    }
}

/// Races: one phone claimed once; concurrent membership changes of one contact all land
/// (optimistic lock + retry); a large group's deletion resumes where it stopped.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writes_keep_uniqueness_and_memberships() {
    let t = start().await;
    let admin = t.admin_token();
    let tok = admin.as_str();
    let creates = (0..6).map(|i| {
        t.api(
            "POST",
            "/api/v1/contacts",
            Some(tok),
            Some(json!({"name": format!("Racer {i}"), "phone": "+16505554444"})),
        )
    });
    let results = futures_join_all(creates).await;
    let codes: Vec<u16> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(codes.iter().filter(|s| **s == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|s| **s == 409).count(), 5, "{codes:?}");

    let c = create_contact(&t, tok, json!({"name": "Popular", "phone": "+16505554445"})).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let mut groups = Vec::new();
    for i in 0..5 {
        groups.push(create_group(&t, tok, &format!("G{i}")).await);
    }
    let paths: Vec<String> = groups
        .iter()
        .map(|g| format!("/api/v1/groups/{g}/members/{cid}"))
        .collect();
    let adds = paths.iter().map(|p| t.api("PUT", p, Some(tok), None));
    for (s, v) in futures_join_all(adds).await {
        assert_eq!(s, 200, "{v}");
    }
    let got = get_json(&t, tok, &format!("/api/v1/contacts/{cid}")).await;
    let got: HashSet<String> = got["group_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, groups.iter().cloned().collect::<HashSet<_>>());
    for g in &groups {
        assert_eq!(
            get_json(&t, tok, &format!("/api/v1/groups/{g}")).await["member_count"],
            1
        );
    }

    // Deletion in steps (store level, budget 1): hidden at once, finished by the next call.
    let store = t.store();
    let g = &groups[0];
    let other = create_contact(
        &t,
        tok,
        json!({"name": "Other", "phone": "+16505554446", "group_ids": [g]}),
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    use shared::store::audiences::GroupDeletion;
    assert_eq!(
        store.delete_wa_group(g, 1, now).await.unwrap(),
        GroupDeletion::InProgress { removed: 1 }
    );
    let (s, _) = t
        .api("GET", &format!("/api/v1/groups/{g}"), Some(tok), None)
        .await;
    assert_eq!(s, 404, "a group being deleted is hidden");
    assert!(!ids_of(&get_json(&t, tok, "/api/v1/groups").await).contains(g));
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/groups/{g}/members/{cid}"),
            Some(tok),
            None,
        )
        .await;
    assert!(s == 200 || s == 404, "{v}");
    let (s, _) = t
        .api("DELETE", &format!("/api/v1/groups/{g}"), Some(tok), None)
        .await;
    assert_eq!(s, 204);
    for id in [cid.as_str(), other["id"].as_str().unwrap()] {
        let c = get_json(&t, tok, &format!("/api/v1/contacts/{id}")).await;
        assert!(
            !c["group_ids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == g.as_str()),
            "{c}"
        );
    }
}

async fn futures_join_all<F: std::future::Future>(
    fs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = fs.into_iter().collect();
    let mut out = Vec::new();
    // Drive them concurrently on this task.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.expect("ready")));
    out
}
