//! Unread counters: kept by every write of a conversation's `unread`, `rel_type` or `assignee`,
//! equal to a recount of the inbox after concurrent messages, reads, assignments and an
//! erasure, repaired by the next write when a contribution was left behind, and following the
//! inbox-visibility setting.
use integration_tests::*;
use serde_json::{Value, json};
use shared::store::model::RelType;

const PNID: &str = "106540352242922";

/// `(messages, conversations)` with unread messages, counted from the conversations themselves.
async fn recount(t: &TestStack, visible_to: Option<&str>) -> (i64, i64) {
    let mut m = 0;
    let mut c = 0;
    let (status, page) = t
        .api(
            "GET",
            "/api/v1/conversations?limit=100",
            Some(&t.admin_token()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    for conv in page["data"].as_array().cloned().unwrap_or_default() {
        let unread = conv["unread"].as_i64().unwrap_or(0);
        let assignee = conv["assignee"].as_str();
        let visible = visible_to.is_none_or(|me| assignee.is_none_or(|a| a == me));
        if unread > 0 && visible {
            m += unread;
            c += 1;
        }
    }
    (m, c)
}

async fn counted(t: &TestStack, token: &str) -> (i64, i64) {
    let (s, u) = t
        .api("GET", "/api/v1/conversations/unread", Some(token), None)
        .await;
    assert_eq!(s, 200, "{u}");
    let total = &u["total"];
    let per_rel: i64 = RelType::ALL
        .iter()
        .map(|r| u[r.as_str()]["messages"].as_i64().unwrap())
        .sum();
    assert_eq!(per_rel, total["messages"].as_i64().unwrap(), "{u}");
    (
        total["messages"].as_i64().unwrap(),
        total["conversations"].as_i64().unwrap(),
    )
}

async fn conversation_ids(t: &TestStack, numbers: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for wa in numbers {
        ids.push(
            t.conversation_of(wa).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_equal_a_recount_after_concurrent_changes() {
    let (t, _graph) = start_with_graph(2_000).await;
    let admin = t.admin_token();
    let ts = chrono::Utc::now().timestamp();
    let numbers: Vec<String> = (0..6).map(|i| format!("155588800{i:02}")).collect();
    // Six customers write three messages each, all at once (several FIFO groups in parallel).
    let posts = numbers.iter().enumerate().flat_map(|(i, wa)| {
        (0..3).map(move |k| {
            text_payload(
                PNID,
                wa,
                "Count",
                &format!("wamid.unread.{i}.{k}"),
                ts + k,
                "hello",
            )
        })
    });
    futures::future::join_all(posts.map(|body| {
        let t = &t;
        async move { t.post_signed(&body).await }
    }))
    .await;
    let expect = (18, 6);
    let got = eventually(std::time::Duration::from_secs(120), || async {
        let c = counted(&t, &admin).await;
        (c == expect).then_some(c)
    })
    .await;
    assert_eq!(
        got,
        Some(expect),
        "counted {:?}, recount {:?}",
        counted(&t, &admin).await,
        recount(&t, None).await
    );

    let ids = conversation_ids(&t, &numbers).await;
    // At the same time: two read, two assigned (one to staff 12), and new messages for others.
    let chat = t.token(&["whatsapp_chat:view"]);
    let mut calls: Vec<(String, String, Option<Value>)> = vec![
        (
            "POST".into(),
            format!("/api/v1/conversations/{}/read", ids[0]),
            None,
        ),
        (
            "POST".into(),
            format!("/api/v1/conversations/{}/read", ids[1]),
            None,
        ),
        (
            "PUT".into(),
            format!("/api/v1/conversations/{}/assignee", ids[2]),
            Some(json!({"staff_id": "12"})),
        ),
        (
            "PUT".into(),
            format!("/api/v1/conversations/{}/assignee", ids[3]),
            Some(json!({"staff_id": "13"})),
        ),
    ];
    calls.reverse();
    let api = futures::future::join_all(calls.iter().map(|(m, p, b)| {
        let (t, chat) = (&t, &chat);
        async move { t.api(m, p, Some(chat), b.clone()).await }
    }));
    let more = futures::future::join_all([2usize, 4, 5].map(|i| {
        let t = &t;
        let body = text_payload(
            PNID,
            &numbers[i],
            "Count",
            &format!("wamid.unread.more.{i}"),
            ts + 10,
            "again",
        );
        async move { t.post_signed(&body).await }
    }));
    let (answers, _) = tokio::join!(api, more);
    for (s, v) in answers {
        assert!(s == 200, "{s} {v}");
    }
    // 0 + 0 + 4 + 3 + 4 + 4 messages in 4 conversations.
    let expect = (15, 4);
    let got = eventually(std::time::Duration::from_secs(120), || async {
        let c = counted(&t, &admin).await;
        (c == expect).then_some(c)
    })
    .await;
    assert_eq!(got, Some(expect), "{:?}", counted(&t, &admin).await);
    assert_eq!(recount(&t, None).await, expect);

    // With mode = assigned, staff 12 counts their own and the unassigned conversations.
    let (s, _) = t
        .api(
            "PUT",
            "/api/v1/settings/inbox-visibility",
            Some(&admin),
            Some(json!({"mode": "assigned"})),
        )
        .await;
    assert_eq!(s, 200);
    let twelve = t.info().mint_token("12", false, &["whatsapp_chat:view"]);
    let want = recount(&t, Some("12")).await;
    assert_eq!(
        want,
        (12, 3),
        "conversations 2 (staff 12), 4 and 5 (unassigned)"
    );
    let got = eventually(std::time::Duration::from_secs(120), || async {
        let c = counted(&t, &twelve).await;
        (c == want).then_some(c)
    })
    .await;
    assert_eq!(got, Some(want));
    let (s, _) = t
        .api(
            "PUT",
            "/api/v1/settings/inbox-visibility",
            Some(&admin),
            Some(json!({"mode": "all"})),
        )
        .await;
    assert_eq!(s, 200);

    // Erasing a customer takes its unread messages out of the counts.
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/customers/{}/forget", numbers[5]),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(counted(&t, &admin).await, (11, 3));
    assert_eq!(recount(&t, None).await, (11, 3));
}

/// A write whose counter step never ran (a crash between the two) is counted by the
/// conversation's next write; the counters never drift for good.
#[tokio::test(flavor = "multi_thread")]
async fn a_contribution_left_behind_is_repaired_by_the_next_write() {
    let t = start().await;
    let admin = t.admin_token();
    let ts = chrono::Utc::now().timestamp();
    t.post_signed(&text_payload(
        PNID,
        "15558889901",
        "Lag",
        "wamid.lag.1",
        ts,
        "one",
    ))
    .await;
    let conv = t.conversation_of("15558889901").await;
    let customer_id = conv["customer"]["id"].as_str().unwrap().to_string();
    assert_eq!(counted(&t, &admin).await, (1, 1));
    // As if a crash had come after `unread` changed and before its counters moved.
    t.update_item(
        shared::store::keys::conversation_pk(PNID, &customer_id),
        shared::store::keys::CONV_SK,
    )
    .update_expression("ADD unread :five")
    .expression_attribute_values(
        ":five",
        aws_sdk_dynamodb::types::AttributeValue::N("5".into()),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(counted(&t, &admin).await, (1, 1), "not counted yet");
    t.post_signed(&text_payload(
        PNID,
        "15558889901",
        "Lag",
        "wamid.lag.2",
        ts + 1,
        "two",
    ))
    .await;
    let got = eventually(std::time::Duration::from_secs(120), || async {
        let c = counted(&t, &admin).await;
        (c == (7, 1)).then_some(c)
    })
    .await;
    assert_eq!(got, Some((7, 1)), "{:?}", counted(&t, &admin).await);
    // Syncing again changes nothing.
    t.store().sync_unread(PNID, &customer_id).await.unwrap();
    assert_eq!(counted(&t, &admin).await, (7, 1));
}
