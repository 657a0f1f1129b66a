//! Event notifications, end to end through the local stack (issue: CRM event notifications,
//! "speed"): the time from the CRM's `PutEvents` on the CRM bus to the Graph API call that sends
//! the mapped template, through the EventBridge rule, the notifications queue and the function.
//! `NOTIFY_EVENTS` (default 50) `lead_created` events are put one after another, each to a new
//! lead; the bench prints the median, 90th percentile and maximum, and how much of each event's
//! time the moto server spent serving the functions' AWS requests (moto answers in milliseconds
//! what DynamoDB answers in a few; long polls of the queues left out).
//!
//! `make bench-notify` (moto is started for it). Locally the rule's delivery and the queue's
//! polling are the local runner's (moto as AWS, this 2-core machine); on AWS they are
//! EventBridge's and Lambda's, so the figure is an order of magnitude, not a promise.
use std::time::{Duration, Instant};

use integration_tests::{options_with_graph, start_with};
use serde_json::json;

const PNID: &str = "106540352242922";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Milliseconds moto spent serving requests since the last reset, long polls left out; resets.
async fn moto_millis(http: &reqwest::Client) -> f64 {
    let base = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (infra/with-moto.sh)");
    let by_op: std::collections::BTreeMap<String, f64> = http
        .get(format!("{base}/_millis"))
        .send()
        .await
        .expect("moto")
        .json()
        .await
        .expect("millis");
    http.delete(format!("{base}/_counts"))
        .send()
        .await
        .expect("moto");
    by_op
        .iter()
        .filter(|(op, _)| *op != "sqs.ReceiveMessage" && *op != "sqs.GetQueueAttributes")
        .map(|(_, ms)| ms)
        .sum()
}

fn sends(graph: &fakes::graph::FakeGraph) -> usize {
    graph
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/messages") && r.body["type"] == "template")
        .count()
}

#[tokio::main]
async fn main() {
    let events = env_usize("NOTIFY_EVENTS", 50).max(1);
    let graph = fakes::graph::FakeGraph::start().await;
    let t = start_with(options_with_graph(&graph, 5_000)).await;
    graph.set_templates(vec![json!({
        "id": "801", "name": "welcome_lead", "language": "en_US", "status": "APPROVED",
        "category": "UTILITY", "parameter_format": "POSITIONAL",
        "components": [{"type": "BODY", "text": "Hi {{1}}, thanks for your interest!"}]})]);
    t.load_templates().await;
    t.register_number(PNID).await;
    t.map_notification(json!({"name": "Welcome", "category": "leads", "hooks": ["lead_created"], "send_to": "lead",
                         "template": {"name": "welcome_lead", "language": "en_US",
                                      "components": [{"type": "body", "parameters": [{"type": "text", "text": "{lead.name:first|there}"}]}]}}))
        .await;

    let mut ms = Vec::with_capacity(events);
    let mut moto = Vec::with_capacity(events);
    // One warm-up event (first reads of secrets, mappings, templates), not counted.
    for i in 0..=events {
        let before = sends(&graph);
        moto_millis(&t.http).await;
        let start = Instant::now();
        t.put_crm_event(
            "lead_created",
            json!({"event_id": format!("bench-notify-{i}"), "updated_at": 1000,
                   "record": {"id": format!("{}", 9000 + i), "name": format!("Lead {i}"),
                              "phonenumber": format!("+1 650 555 {:04}", 1000 + i)}}),
        )
        .await;
        while sends(&graph) == before {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "event {i} was never sent"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let took = start.elapsed().as_secs_f64() * 1000.0;
        if i > 0 {
            ms.push(took);
            moto.push(moto_millis(&t.http).await);
        }
    }
    ms.sort_by(f64::total_cmp);
    moto.sort_by(f64::total_cmp);
    let at = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "PutEvents → Graph API call, {events} events one after another: median {:.1} ms, p90 {:.1} ms, max {:.1} ms; moto serving the AWS requests: median {:.1} ms",
        at(&ms, 0.5),
        at(&ms, 0.9),
        ms[ms.len() - 1],
        at(&moto, 0.5)
    );
}
