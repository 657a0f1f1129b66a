//! The AWS requests each flow makes, counted by the moto server per service and operation
//! (`infra/moto_server.py`, `GET /_counts`), against the documented counts of the README's cost
//! model: a flow that makes more calls than documented fails here, so the bill cannot grow
//! unnoticed. Steady state: secrets are cached (as on a warm Lambda), the customer is known.
//!
//! Not counted: Lambda's own event-source polling (`sqs.ReceiveMessage`: billed to SQS, but per
//! poll, not per message) and this test's waiting (`sqs.GetQueueAttributes`). The stack's
//! schedules do not tick here, so nothing but the measured flow runs.
use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::*;
use serde_json::json;

const PNID: &str = "106540352242922";

/// The documented requests of each flow (README, "Costs"): service.operation → at most.
const INBOUND_TEXT: &[(&str, u64)] = &[
    // webhook → InboundQueue, inbound → BotsQueue; Lambda's pollers delete what they took.
    ("sqs.SendMessageBatch", 2),
    ("sqs.DeleteMessageBatch", 2),
    // inbound: customer by alias, identification, auto-lead claim, conversation, settings.
    ("dynamodb.GetItem[ALIAS]", 1),
    ("dynamodb.GetItem[CUST]", 2),
    ("dynamodb.GetItem[LEADCLAIM]", 1),
    ("dynamodb.GetItem[SETTINGS]", 1),
    ("dynamodb.GetItem[CONV]", 3),
    ("dynamodb.Query", 1),
    // the message with its dedup record, the conversation's activity and inbox entries.
    ("dynamodb.TransactWriteItems[2]", 1),
    ("dynamodb.TransactWriteItems[3]", 1),
    ("dynamodb.PutItem[CONV]", 1),
    ("dynamodb.UpdateItem[CONV]", 2),
    // bots: the compiled bot set.
    ("dynamodb.GetItem[BOTSET]", 1),
];
const REPLY: &[(&str, u64)] = &[
    ("dynamodb.GetItem[CONV]", 2),
    // the send intent, its outcome, the pacer's window, the message and conversation.
    ("dynamodb.PutItem[OUT]", 1),
    ("dynamodb.UpdateItem[OUT]", 1),
    ("dynamodb.UpdateItem[PACE]", 1),
    ("dynamodb.TransactWriteItems[3]", 1),
    ("dynamodb.UpdateItem[CONV]", 2),
    // the activity log entry.
    ("dynamodb.BatchWriteItem[1]", 1),
];
const STATUS: &[(&str, u64)] = &[
    ("sqs.SendMessageBatch", 1),
    ("sqs.DeleteMessageBatch", 1),
    ("dynamodb.GetItem[OUT]", 1),
    ("dynamodb.UpdateItem[WAMID]", 1),
];

async fn counts(t: &TestStack, reset: bool) -> BTreeMap<String, u64> {
    let base = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (infra/with-moto.sh)");
    let req = if reset {
        t.http.delete(format!("{base}/_counts"))
    } else {
        t.http.get(format!("{base}/_counts"))
    };
    let all: BTreeMap<String, u64> = req
        .send()
        .await
        .expect("moto")
        .json()
        .await
        .expect("counts");
    all.into_iter()
        .filter(|(k, _)| {
            k != "sqs.ReceiveMessage"
                && k != "sqs.GetQueueAttributes"
                && !k.starts_with("scheduler.")
        })
        .collect()
}

/// Waits until every queue is empty and nothing is in flight, then a little more (deletes,
/// background writes).
async fn quiet(t: &TestStack) {
    let queues: Vec<String> = local_runner::spec::Spec::load()
        .queues
        .iter()
        .map(|q| q.logical_id.clone())
        .collect();
    let done = eventually(Duration::from_secs(30), || async {
        for q in &queues {
            if t.queue_depth(q).await != (0, 0) {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(done.is_some(), "the queues did not drain");
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

fn check(flow: &str, measured: &BTreeMap<String, u64>, documented: &[(&str, u64)]) -> Vec<String> {
    let total: u64 = measured.values().sum();
    println!("{flow}: {total} AWS requests");
    for (op, n) in measured {
        println!("    {op:<48} {n}");
    }
    let mut over = Vec::new();
    for (op, n) in measured {
        let allowed = documented
            .iter()
            .find(|(o, _)| o == op)
            .map_or(0, |(_, a)| *a);
        if *n > allowed {
            over.push(format!("{op}: {n} > {allowed}"));
        }
    }
    if !over.is_empty() {
        println!("    more than documented: {}", over.join(", "));
        return vec![format!("{flow}: {}", over.join(", "))];
    }
    Vec::new()
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_flow_makes_at_most_its_documented_aws_requests() {
    let graph = fake_graph::FakeGraph::start().await;
    let mut opts = options_with_graph(&graph, 5_000);
    opts.schedule_ticks = false;
    // Secrets cached as on a warm Lambda (the template's functions cache them for minutes).
    opts.secret_ttl = Duration::from_secs(600);
    let t = start_with(opts).await;
    let customer = "16505550170";

    // Warm-up: the customer exists, every function has read its secrets.
    let (s, _) = t
        .post_signed(&text_payload(
            PNID,
            customer,
            "Ana",
            "wamid.cost-0",
            now_s(),
            "hi",
        ))
        .await;
    assert_eq!(s, 200);
    quiet(&t).await;
    let conv = t.conversation_of(customer).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let reply = |key: &'static str| {
        let url = format!(
            "{}/api/v1/conversations/{conv}/messages",
            t.info().http_base
        );
        t.http
            .post(url)
            .bearer_auth(t.token(&["whatsapp_chat:view"]))
            .header("idempotency-key", key)
            .json(&json!({"content": {"type": "text", "body": "Thanks!"}}))
            .send()
    };
    let r = reply("cost-warm").await.expect("reply");
    assert_eq!(r.status().as_u16(), 201);
    quiet(&t).await;

    // One inbound text message of a known customer, end to end (webhook → inbound → bots).
    counts(&t, true).await;
    let (s, _) = t
        .post_signed(&text_payload(
            PNID,
            customer,
            "Ana",
            "wamid.cost-1",
            now_s(),
            "Is it in blue?",
        ))
        .await;
    assert_eq!(s, 200);
    quiet(&t).await;
    let inbound = counts(&t, false).await;

    // One staff reply.
    counts(&t, true).await;
    let r = reply("cost-1").await.expect("reply");
    assert_eq!(r.status().as_u16(), 201);
    let wamid = r.json::<serde_json::Value>().await.expect("json")["wamid"]
        .as_str()
        .expect("wamid")
        .to_string();
    quiet(&t).await;
    let replied = counts(&t, false).await;

    // One delivery status of that reply.
    counts(&t, true).await;
    let (s, _) = t
        .post_signed(&status_payload(
            PNID,
            &wamid,
            "delivered",
            now_s(),
            customer,
        ))
        .await;
    assert_eq!(s, 200);
    quiet(&t).await;
    let status = counts(&t, false).await;

    let mut over = check("inbound text message", &inbound, INBOUND_TEXT);
    over.extend(check("staff reply", &replied, REPLY));
    over.extend(check("delivery status", &status, STATUS));
    assert!(
        over.is_empty(),
        "more AWS calls than the README's cost model says: {}",
        over.join("; ")
    );
}
