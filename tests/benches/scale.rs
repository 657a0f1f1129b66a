//! Campaign scale against moto and the fake Graph API (issue: bulk campaigns, "speed and scale"):
//!
//! 1. **Fan-out**: a campaign to all of `SCALE_RECIPIENTS` leads (default 100,000) with the send
//!    queue left unconsumed: wall time until the run is fanned out, AWS requests per recipient
//!    (counted by the moto server, by service and operation), and the process's peak RSS during
//!    the fan-out (the whole local stack runs in this process, so it is an upper bound).
//! 2. **Sender**: `SCALE_FAST` recipients (default 10,000) from a number paced at 1,000/s and
//!    `SCALE_SLOW` (default 2,000) at the default 80/s, the send queue consumed by several
//!    concurrent senders as in `template.yaml`: the achieved rate between the first and the
//!    last call that reached the fake Meta, the busiest sliding one-second window (asserted:
//!    never above the pace), and the pacer's DynamoDB writes per send.
//!
//! `make bench-scale` (moto is started for it); a quick run: `SCALE_RECIPIENTS=5000 SCALE_FAST=2000
//! SCALE_SLOW=400 make bench-scale`.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use fakes::graph::FakeGraph;
use futures::StreamExt;
use integration_tests::{TestStack, options_with_graph};
use local_runner::{Stack, StackOptions};
use serde_json::{Value, json};

const PNID: &str = "106540352242922";
const MARKETER: [&str; 4] = [
    "whatsapp_campaign:view",
    "whatsapp_campaign:create",
    "whatsapp_campaign:edit",
    "whatsapp_campaign:delete",
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Kilobytes of a `/proc/self/status` line (`VmRSS`, `VmHWM`).
fn proc_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets the process's peak RSS to its current RSS (Linux ≥ 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn moto_counts(http: &reqwest::Client, reset: bool) -> BTreeMap<String, u64> {
    moto_stats(http, "_counts", reset).await
}

/// Requests counted by the moto server (`_counts`), or the milliseconds spent serving them
/// (`_millis`); `reset` clears both.
async fn moto_stats(http: &reqwest::Client, which: &str, reset: bool) -> BTreeMap<String, u64> {
    let base =
        std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (run under infra/with-moto.sh)");
    let req = if reset {
        http.delete(format!("{base}/{which}"))
    } else {
        http.get(format!("{base}/{which}"))
    };
    req.send()
        .await
        .expect("moto reachable")
        .json()
        .await
        .expect("counts")
}

/// Requests the event-source plumbing makes on its own (Lambda's SQS pollers, the local
/// runner's schedule listing), whatever the load: not counted per recipient.
fn is_polling(label: &str) -> bool {
    label == "sqs.ReceiveMessage" || label == "scheduler.GET /schedules"
}

fn print_counts(counts: &BTreeMap<String, u64>, millis: &BTreeMap<String, u64>, per: usize) {
    let total: u64 = counts
        .iter()
        .filter(|(k, _)| !is_polling(k))
        .map(|(_, v)| v)
        .sum();
    println!(
        "  AWS requests by the functions: {total} ({:.3} per recipient); moto's time per request in ms",
        total as f64 / per as f64
    );
    for (k, v) in counts {
        let ms = millis.get(k).copied().unwrap_or(0) as f64 / (*v).max(1) as f64;
        let note = if is_polling(k) {
            "  (polling, not per recipient)"
        } else {
            ""
        };
        println!(
            "    {k:<40} {v:>9}  {:>7.3}/recipient  {ms:>7.1} ms{note}",
            *v as f64 / per as f64
        );
    }
}

async fn stack(graph: &FakeGraph, idle_send_queue: bool, concurrency: usize) -> TestStack {
    let mut opts: StackOptions = options_with_graph(graph, 10_000);
    if idle_send_queue {
        opts.idle_queues = vec!["CampaignSendQueue".into()];
    }
    // MaximumConcurrency of the send queue's event source in template.yaml.
    opts.concurrency_per_queue = concurrency;
    let stack = Stack::start(opts).await.expect("local stack");
    TestStack {
        http: reqwest::Client::new(),
        stack,
    }
}

/// Templates loaded and the business number registered, at `rate` messages per second.
async fn prepare(t: &TestStack, graph: &FakeGraph, rate: Option<u32>) {
    graph.set_templates(vec![json!({
        "id": "91", "name": "order_note", "language": "en_US", "status": "APPROVED",
        "category": "UTILITY", "parameter_format": "POSITIONAL",
        "components": [{"type": "BODY", "text": "Hi {{1}}, your order is ready"}]})]);
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/templates/load",
            Some(&t.token(&["whatsapp_template:load_template"])),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mut number = json!({"phone_number_id": PNID, "display_phone_number": "+1 555-078-3881",
                            "verified_name": "Acme"});
    if let Some(r) = rate {
        number["messages_per_second"] = json!(r);
    }
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/numbers",
            Some(&t.admin_token()),
            Some(number),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

/// `n` leads with distinct valid numbers, written as the directory function writes them
/// (record with its listing keys), 25 per BatchWriteItem.
async fn seed_leads(t: &TestStack, n: usize) {
    let table = t.info().resource("MainTable").name.clone();
    let ddb = t.stack_ddb();
    let started = Instant::now();
    let batches: Vec<Vec<WriteRequest>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(25)
        .map(|ids| {
            ids.iter()
                .map(|&i| {
                    let id = (i + 1).to_string();
                    let phone = format!("+1650{}", 2_000_000 + i);
                    let record = shared::store::model::DirectoryRecord {
                        pk: shared::store::keys::directory_pk("lead", &id),
                        sk: shared::store::keys::RECORD_SK.into(),
                        kind: "lead".into(),
                        id: id.clone(),
                        name: Some(format!("Lead {id}")),
                        phone_raw: Some(phone.clone()),
                        phone_key: Some(phone),
                        converted: false,
                        deleted: false,
                        updated_at: 1000,
                        correlation_id: None,
                        event_id: Some(format!("seed-{id}")),
                    };
                    let (gpk, gsk) =
                        shared::store::directory_list::listing_keys(&record).expect("listed");
                    let mut item: std::collections::HashMap<String, AttributeValue> =
                        serde_dynamo::to_item(&record).expect("item");
                    item.insert("gsi2pk".into(), AttributeValue::S(gpk));
                    item.insert("gsi2sk".into(), AttributeValue::S(gsk));
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                        .build()
                })
                .collect()
        })
        .collect();
    futures::stream::iter(batches)
        .for_each_concurrent(8, |batch| {
            let ddb = ddb.clone();
            let table = table.clone();
            async move {
                let mut pending = batch;
                while !pending.is_empty() {
                    let out = ddb
                        .batch_write_item()
                        .request_items(&table, pending)
                        .send()
                        .await
                        .expect("seed batch");
                    pending = out
                        .unprocessed_items()
                        .and_then(|u| u.get(&table))
                        .cloned()
                        .unwrap_or_default();
                }
            }
        })
        .await;
    println!(
        "  seeded {n} leads in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn create_campaign(t: &TestStack) -> String {
    let body = json!({
        "name": "Scale", "rel_type": "leads", "all": true,
        "template": {"name": "order_note", "language": "en_US",
                     "components": [{"type": "body", "parameters": [{"type": "text", "text": "{first_name|friend}"}]}]},
        "campaign_type": "onetime", "send_now": true,
    });
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/campaigns",
            Some(&t.token(&MARKETER)),
            Some(body),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().expect("id").to_string()
}

async fn report(t: &TestStack, id: &str) -> Value {
    let (s, v) = t
        .api(
            "GET",
            &format!("/api/v1/campaigns/{id}"),
            Some(&t.token(&MARKETER)),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Polls (and fires due continuation schedules) until `done` holds of the report.
async fn wait_for(
    t: &TestStack,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let _ = t.stack.fire_due_schedules().await;
        let r = report(t, id).await;
        if done(&r) {
            return r;
        }
        assert!(started.elapsed() < limit, "not done in {limit:?}: {r}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn fan_out(n: usize) {
    println!("## fan-out of {n} recipients (send queue not consumed)");
    let graph = FakeGraph::start().await;
    let t = stack(&graph, true, 5).await;
    prepare(&t, &graph, None).await;
    seed_leads(&t, n).await;
    moto_counts(&t.http, true).await;
    let rss_before = proc_kb("VmRSS");
    reset_peak_rss();
    let started = Instant::now();
    let id = create_campaign(&t).await;
    let r = wait_for(&t, &id, Duration::from_secs(3600), |r| {
        !r["runs"][0]["fanned_out_at"].is_null()
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let peak = proc_kb("VmHWM");
    let counts = moto_counts(&t.http, false).await;
    let millis = moto_stats(&t.http, "_millis", false).await;
    println!("  totals: {}", r["runs"][0]["totals"]);
    println!(
        "  fanned out in {elapsed:.1} s ({:.0} recipients/s)",
        n as f64 / elapsed
    );
    println!(
        "  process RSS {:.1} MB before, peak {:.1} MB during the fan-out (+{:.1} MB)",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(rss_before) as f64 / 1024.0
    );
    print_counts(&counts, &millis, n);
    let total: u64 = counts
        .iter()
        .filter(|(k, _)| !is_polling(k))
        .map(|(_, v)| v)
        .sum();
    println!(
        "  target <= 0.3 AWS requests per recipient: {}",
        if (total as f64 / n as f64) <= 0.3 {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// Busiest half-open sliding window [t, t + 1000 ms) of the sorted times.
fn busiest_second(times: &[i64]) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= 1000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

async fn sender(n: usize, rate: u32, concurrency: usize) {
    println!("## sender: {n} recipients at {rate}/s, {concurrency} concurrent senders");
    let graph = FakeGraph::start().await;
    let t = stack(&graph, false, concurrency).await;
    prepare(&t, &graph, Some(rate)).await;
    seed_leads(&t, n).await;
    moto_counts(&t.http, true).await;
    let id = create_campaign(&t).await;
    let r = wait_for(&t, &id, Duration::from_secs(3600), |r| {
        r["runs"][0]["state"] == "done"
    })
    .await;
    let counts = moto_counts(&t.http, false).await;
    let millis = moto_stats(&t.http, "_millis", false).await;
    let mut times: Vec<i64> = graph
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/messages") && r.body["type"] == "template")
        .map(|r| r.at_ms)
        .collect();
    times.sort_unstable();
    assert_eq!(
        times.len(),
        n,
        "every recipient sent once: {}",
        r["runs"][0]["totals"]
    );
    let span = (times[times.len() - 1] - times[0]) as f64 / 1000.0;
    let achieved = (n - 1) as f64 / span.max(0.001);
    let busiest = busiest_second(&times);
    println!("  totals: {}", r["runs"][0]["totals"]);
    println!(
        "  {n} sends in {span:.1} s: {achieved:.1}/s ({:.1} % of the pace); busiest sliding second {busiest}",
        achieved / f64::from(rate) * 100.0
    );
    assert!(
        busiest <= rate as usize,
        "{busiest} sends in one sliding second at a pace of {rate}/s"
    );
    let pace_writes: u64 = counts
        .iter()
        .filter(|(k, _)| k.contains("[PACE]"))
        .map(|(_, v)| v)
        .sum();
    println!(
        "  pacer DynamoDB writes per send: {:.2}",
        pace_writes as f64 / n as f64
    );
    print_counts(&counts, &millis, n);
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // A size of 0 skips that part.
    rt.block_on(async {
        let n = env_usize("SCALE_RECIPIENTS", 100_000);
        if n > 0 {
            fan_out(n).await;
        }
        for (var, default, rate) in [("SCALE_FAST", 10_000, 1000), ("SCALE_SLOW", 2_000, 80)] {
            let n = env_usize(var, default);
            if n > 0 {
                sender(n, rate, 5).await;
            }
        }
    });
}
