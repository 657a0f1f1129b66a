//! Helpers of the bot and AI tests: the business number they write to, waiting for the bots
//! function, creating bots, and the messages the fake Graph API received.
use std::time::Duration;

use serde_json::Value;

use crate::fake_graph::FakeGraph;
use crate::{TestStack, eventually};

/// The business number of the bot tests.
pub const PNID: &str = "106540352242922";

pub fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The customer id of the conversation with `wa`.
pub async fn customer_of(t: &TestStack, wa: &str) -> String {
    t.conversation_of(wa).await["customer"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits until the bots have dealt with (answered or stayed silent on) every one of `wamids`:
/// each recorded as answered, or the inbound and bots queues drained (a silent decision over a
/// stored bot state saves nothing) with nothing dead-lettered.
pub async fn wait_handled(t: &TestStack, customer_id: &str, wamids: &[&str]) {
    let done = eventually(Duration::from_secs(20), || async {
        let st = t.store().bot_state(PNID, customer_id).await.unwrap();
        if wamids.iter().all(|w| st.has_handled(w)) {
            return Some(());
        }
        for q in ["InboundQueue", "BotsQueue", "InboundDLQ", "BotsDLQ"] {
            if t.queue_depth(q).await != (0, 0) {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(done.is_some(), "the bots never dealt with {wamids:?}");
}

pub async fn create_bot(t: &TestStack, bot: Value) -> Value {
    let (s, v) = t
        .api("POST", "/api/v1/bots", Some(&t.admin_token()), Some(bot))
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

/// Replaces a bot (admin); answers the saved bot.
pub async fn put_bot(t: &TestStack, id: &str, bot: Value) -> Value {
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/bots/{id}"),
            Some(&t.admin_token()),
            Some(bot),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Whether no bot is marked active (the bot set's head).
pub async fn none_active(t: &TestStack) -> bool {
    t.store()
        .bot_set_head()
        .await
        .unwrap()
        .active_ids
        .is_empty()
}

/// The messages sent to `to`, in order (Meta's request bodies).
pub fn sent_to(graph: &FakeGraph, to: &str) -> Vec<Value> {
    graph
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/messages") && r.body["to"] == to)
        .map(|r| r.body)
        .collect()
}

/// Waits for `n` messages to `to`. The bound is generous: answering five concurrent messages of
/// one conversation in order takes 13–23 s on moto alone (optimistic retries of the bot state,
/// each a second away), and a loaded CI machine took over 30 s once; speed is no concern here.
pub async fn wait_sent(graph: &FakeGraph, to: &str, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(60), || async {
        let s = sent_to(graph, to);
        (s.len() >= n).then_some(s)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "{n} messages to {to}: {:?}\n{}",
            sent_to(graph, to),
            crate::logged_problems("")
        )
    })
}

/// `detail` matches its schema in `schemas/whatsapp/`.
pub fn assert_documented(name: &str, detail: &Value) {
    let path = format!(
        "{}/../schemas/whatsapp/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(detail).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?} in {detail}");
}

/// A stack talking to a fresh fake Graph API and a fresh fake AI provider (OpenAI and Gemini),
/// each AI attempt bounded by `ai_timeout_ms`.
pub async fn start_with_ai(ai_timeout_ms: u64) -> (TestStack, FakeGraph, crate::fake_ai::FakeAi) {
    let graph = FakeGraph::start().await;
    let ai = crate::fake_ai::FakeAi::start().await;
    let mut opts = crate::options_with_graph(&graph, 2_000);
    for (k, v) in [
        ("OPENAI_BASE_URL", ai.openai_base_url()),
        ("GEMINI_BASE_URL", ai.gemini_base_url()),
        ("AI_TIMEOUT_MS", ai_timeout_ms.to_string()),
    ] {
        opts.env_overrides.insert(k.into(), v);
    }
    let t = crate::start_with(opts).await;
    (t, graph, ai)
}

/// Saves the AI settings (admin); answers the view.
pub async fn set_ai(t: &TestStack, settings: Value) -> Value {
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/settings/ai",
            Some(&t.admin_token()),
            Some(settings),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}
