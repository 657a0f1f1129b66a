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

use integration_tests::bot_helpers::create_bot;
use integration_tests::*;
use serde_json::json;
use shared::store::Store;
use shared::store::bot_timers::{BotTimer, TimerPartition};

const PNID: &str = "106540352242922";
/// The template's `InboxShards` (the due-timer index has as many shards).
const SHARDS: u64 = 4;

/// The documented requests of each flow (README, "Costs"): service.operation → at most.
const INBOUND_TEXT: &[(&str, u64)] = &[
    // No bot active and AI off: webhook → InboundQueue only; Lambda's poller deletes it.
    ("sqs.SendMessageBatch", 1),
    ("sqs.DeleteMessageBatch", 1),
    // inbound: customer by alias, identification, auto-lead claim, conversation, settings; the
    // bot set's head (whether a bot may answer).
    ("dynamodb.GetItem[ALIAS]", 1),
    ("dynamodb.GetItem[CUST]", 1),
    ("dynamodb.GetItem[LEADCLAIM]", 1),
    ("dynamodb.GetItem[SETTINGS]", 1),
    ("dynamodb.GetItem[CONV]", 1),
    ("dynamodb.GetItem[BOTSET]", 1),
    ("dynamodb.Query", 1),
    // one transaction: the message, its conversation (counters, activity, inbox position,
    // window, unread contribution) and its unread counter.
    ("dynamodb.TransactWriteItems", 1),
    ("dynamodb.TransactWriteItems items", 3),
];
/// The same with an active bot whose trigger does not match the message: the inbound function
/// tells from the compiled triggers (and the conversation not held for the bots) that nothing
/// would answer, at no request more.
const INBOUND_TEXT_NO_MATCH: &[(&str, u64)] = INBOUND_TEXT;
/// What an active timer bot adds to [`INBOUND_TEXT`] (no trigger matching): the inbound
/// function arms its timer itself, one put more, instead of the hop to the bots function.
const TIMER_ARMED: &[(&str, u64)] = &[("dynamodb.PutItem[BOTTIMER]", 1)];
/// A bot-timers tick that finds one timer due, superseded by a newer customer message: dropped
/// without a hop and without a delete. Per shard: its mark, a query from it and one of the
/// timers due soon after their arming, the mark moved (every shard on the first tick, as here;
/// then only those that found timers); the timer's conversation read.
const TIMER_TICK_STALE: &[(&str, u64)] = &[
    ("dynamodb.GetItem[BOTTIMER]", SHARDS),
    ("dynamodb.Query", 2 * SHARDS),
    ("dynamodb.UpdateItem[BOTTIMER]", SHARDS),
    ("dynamodb.BatchGetItem", 1),
    ("dynamodb.BatchGetItem items", 1),
];
/// A message an active bot answers with a text (webhook → inbound → bots → Meta), the
/// customer's second within an hour of a hand-off (held for the bots: the inbound function
/// reads no bot set, the bots function reads its head).
const INBOUND_TEXT_BOT_ANSWERS: &[(&str, u64)] = &[
    // webhook → InboundQueue, inbound → BotsQueue; Lambda's pollers delete what they took.
    ("sqs.SendMessageBatch", 2),
    ("sqs.DeleteMessageBatch", 2),
    // inbound: as above, without the head; bots: the set's head, the conversation, the
    // customer's profile, the bot state, the conversation again to send.
    ("dynamodb.GetItem[ALIAS]", 1),
    ("dynamodb.GetItem[CUST]", 2),
    ("dynamodb.GetItem[LEADCLAIM]", 1),
    ("dynamodb.GetItem[SETTINGS]", 1),
    ("dynamodb.GetItem[CONV]", 4),
    ("dynamodb.GetItem[BOTSET]", 1),
    ("dynamodb.Query", 1),
    // the customer's message; the answer with its wamid record and conversation
    ("dynamodb.TransactWriteItems", 2),
    ("dynamodb.TransactWriteItems items", 6),
    // inbound: the conversation held for the bots (not while a fresh hold stands, as here);
    // bots: the send intent, its outcome, the
    // pace window (1 seen; 2 when a second fills), the bot state, the bot's send count and
    // last fire time, the Graph call's activity log entry.
    ("dynamodb.UpdateItem[CONV]", 1),
    ("dynamodb.PutItem[OUT]", 1),
    ("dynamodb.UpdateItem[OUT]", 1),
    ("dynamodb.UpdateItem[PACE]", 2),
    ("dynamodb.PutItem[CONV]", 1),
    ("dynamodb.UpdateItem[BOTS]", 2),
    ("dynamodb.BatchWriteItem", 1),
    ("dynamodb.BatchWriteItem items", 1),
];
const REPLY: &[(&str, u64)] = &[
    ("dynamodb.GetItem[CONV]", 2),
    // the send intent, its outcome, the pacer's window; the message with its wamid record and
    // its conversation (one transaction); the staff reply's time on the conversation.
    ("dynamodb.PutItem[OUT]", 1),
    ("dynamodb.UpdateItem[OUT]", 1),
    ("dynamodb.UpdateItem[PACE]", 1),
    ("dynamodb.TransactWriteItems", 1),
    ("dynamodb.TransactWriteItems items", 3),
    ("dynamodb.UpdateItem[CONV]", 1),
    // the activity log entry.
    ("dynamodb.BatchWriteItem", 1),
    ("dynamodb.BatchWriteItem items", 1),
];
/// A campaign of [`CAMPAIGN_RECIPIENTS`] leads, sent now: created through the staff API, started
/// by its schedule, fanned out, sent, settled; the README divides by the recipients.
const CAMPAIGN: &[(&str, u64)] = &[
    // staff API: the template, the sender number, the settings; the campaign, its index entry
    // and its first schedule.
    ("dynamodb.GetItem[TPL]", 1),
    ("dynamodb.GetItem[NUMBERS]", 1),
    ("dynamodb.GetItem[SETTINGS]", 1),
    // (+ 1 of each per sender invocation that starts before another has read the campaign:
    // each reads it once, then keeps it for a few seconds; 0–1 seen, up to the 4 batches)
    ("dynamodb.GetItem[CAMPAIGN]", 5),
    ("dynamodb.GetItem[CAMPAIGNS]", 8),
    ("dynamodb.PutItem[CAMPAIGN]", 1),
    ("dynamodb.PutItem[CAMPAIGNS]", 2),
    ("dynamodb.UpdateItem[CAMPAIGNS]", 1),
    // transactions: saving the campaign, claiming its run, moving its state.
    ("dynamodb.TransactWriteItems", 4),
    ("dynamodb.TransactWriteItems items", 13),
    // scheduler: the directory's leads page by page, the opt-outs and recipients already
    // written (batch reads), the recipient records (batch writes), the fan-out to the send queue.
    ("dynamodb.Query", 9),
    // (How items group into calls depends on timing — the sender's activity-log flushes follow
    // its batches — so the calls are bounded by the items, which are what is billed.)
    ("dynamodb.BatchGetItem", 20),
    ("dynamodb.BatchGetItem items", 20),
    ("dynamodb.BatchWriteItem", 20),
    ("dynamodb.BatchWriteItem items", 20),
    ("sqs.SendMessageBatch", 4),
    // sender, per recipient: read it, pending → sending → sent, the run's totals twice, the
    // number's pace window (1.2 per send on average: more when concurrent sends race for the
    // same slots or a window fills, so at most 3); Lambda's poller deletes each batch.
    ("dynamodb.GetItem[CRCPT]", 10),
    ("dynamodb.UpdateItem[CRCPT]", 20),
    ("dynamodb.UpdateItem[CAMPAIGN]", 21),
    ("dynamodb.UpdateItem[PACE]", 3 * CAMPAIGN_RECIPIENTS as u64),
    // (4 seen: as many as the batches Lambda's poller hands the senders, one per record at most)
    ("sqs.DeleteMessageBatch", CAMPAIGN_RECIPIENTS as u64),
    // the Meta credentials and the notification module's, which the sender's activity log
    // redacts (each cached for the rest of the run); `campaign.finished` to the CRM.
    ("secretsmanager.GetSecretValue", 2),
    ("events.PutEvents", 1),
];
const CAMPAIGN_RECIPIENTS: usize = 10;
/// One `after_invoice_added` CRM event, put on the bus by the CRM, mapped to one template.
const NOTIFICATION: &[(&str, u64)] = &[
    // the CRM's PutEvents; the outcome back on the bus (`notification.sent`).
    ("events.PutEvents", 2),
    // the rule's target queue → notifications (Lambda's poller deletes the record).
    ("sqs.DeleteMessageBatch", 1),
    // the mapping's template, sender number and settings; the recipient's customer and
    // conversation (24-hour window, opt-out).
    ("dynamodb.GetItem[TPL]", 1),
    ("dynamodb.GetItem[NUMBERS]", 1),
    ("dynamodb.GetItem[SETTINGS]", 1),
    ("dynamodb.GetItem[ALIAS]", 1),
    ("dynamodb.GetItem[CUST]", 1),
    ("dynamodb.GetItem[CONV]", 2),
    // once per (event, mapping, recipient), the send intent and its outcome, the pace window,
    // the message with its wamid record and the conversation, the log entry, the activity log.
    ("dynamodb.PutItem[NOTIFKEY]", 1),
    ("dynamodb.PutItem[OUT]", 1),
    ("dynamodb.UpdateItem[OUT]", 1),
    ("dynamodb.UpdateItem[PACE]", 2),
    ("dynamodb.TransactWriteItems", 1),
    ("dynamodb.TransactWriteItems items", 3),
    ("dynamodb.UpdateItem[WAMID]", 1),
    ("dynamodb.PutItem[NOTIFLOG]", 1),
    ("dynamodb.BatchWriteItem", 1),
    ("dynamodb.BatchWriteItem items", 1),
    // the notification credentials (with the inbox's as fallback), cached afterwards.
    ("secretsmanager.GetSecretValue", 2),
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
    let mut out = BTreeMap::new();
    for (k, n) in all {
        if k == "sqs.ReceiveMessage" || k == "sqs.GetQueueAttributes" || k.starts_with("scheduler.")
        {
            continue;
        }
        // Batches and transactions are labelled with their item count (`…[3]`), which depends on
        // timing: count their calls and their items.
        match k
            .strip_suffix(']')
            .and_then(|k| k.rsplit_once('['))
            .and_then(|(op, items)| Some((op, items.parse::<u64>().ok()?)))
        {
            Some((op, items)) => {
                *out.entry(op.to_string()).or_default() += n;
                *out.entry(format!("{op} items")).or_default() += n * items;
            }
            None => *out.entry(k).or_default() += n,
        }
    }
    out
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
    let total: u64 = measured
        .iter()
        .filter(|(op, _)| !op.ends_with(" items"))
        .map(|(_, n)| n)
        .sum();
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

fn template(name: &str, category: &str, body: &str) -> serde_json::Value {
    json!({"id": format!("7{}", name.len()), "name": name, "language": "en_US", "status": "APPROVED",
           "category": category, "parameter_format": "POSITIONAL",
           "components": [{"type": "BODY", "text": body}]})
}

fn template_sends(graph: &fake_graph::FakeGraph) -> usize {
    graph
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/messages") && r.body["type"] == "template")
        .count()
}

/// Texts sent to `to` through the fake Graph API.
fn bot_answers(graph: &fake_graph::FakeGraph, to: &str) -> usize {
    graph
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/messages") && r.body["to"] == to && r.body["type"] == "text")
        .count()
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
    graph.set_templates(vec![
        template("spring_sale", "MARKETING", "Hi {{1}}, spring sale!"),
        template("invoice_ready", "UTILITY", "Invoice {{1}} is due."),
    ]);
    t.load_templates().await;
    t.register_number(PNID).await;
    t.map_notification(json!({"name": "Invoice", "category": "invoice", "hooks": ["after_invoice_added"],
                         "send_to": "contact",
                         "template": {"name": "invoice_ready", "language": "en_US",
                                      "components": [{"type": "body", "parameters": [{"type": "text", "text": "{invoice.number}"}]}]}}))
        .await;
    for i in 0..CAMPAIGN_RECIPIENTS {
        t.put_crm_event(
            "lead_created",
            json!({"event_id": format!("cost-lead-{i}"), "updated_at": 1000,
                   "record": {"id": format!("{i}"), "name": format!("Lead {i}"),
                              "phonenumber": format!("+1 650 555 02{i:02}")}}),
        )
        .await;
    }

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

    // One inbound text message of a known customer, end to end (no bot: webhook → inbound).
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

    // One campaign to the leads, sent now.
    counts(&t, true).await;
    let (s, c) = t
        .api(
            "POST",
            "/api/v1/campaigns",
            Some(&t.token(&["whatsapp_campaign:view", "whatsapp_campaign:create"])),
            Some(json!({"name": "Spring", "rel_type": "leads", "all": true,
                        "template": {"name": "spring_sale", "language": "en_US",
                                     "components": [{"type": "body", "parameters": [{"type": "text", "text": "{first_name|friend}"}]}]},
                        "campaign_type": "onetime", "send_now": true})),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    // Its run's schedule fires once (a second firing is harmless but reads the campaign again).
    let fired = eventually(Duration::from_secs(20), || async {
        let fired = t.stack.fire_due_schedules().await.expect("schedules");
        (!fired.is_empty()).then_some(())
    })
    .await;
    assert!(fired.is_some(), "the campaign's schedule never came due");
    let sent = eventually(Duration::from_secs(40), || async {
        (template_sends(&graph) >= CAMPAIGN_RECIPIENTS).then_some(())
    })
    .await;
    assert!(
        sent.is_some(),
        "the campaign reached {} of {CAMPAIGN_RECIPIENTS}",
        template_sends(&graph)
    );
    quiet(&t).await;
    let campaign = counts(&t, false).await;

    // One CRM event mapped to a notification.
    counts(&t, true).await;
    let before = template_sends(&graph);
    t.put_crm_event(
        "after_invoice_added",
        json!({"event_id": "cost-inv-1", "record": {"id": 1, "number": "INV-1", "total": 10, "duedate": "2026-12-31"},
               "contact": {"id": 42, "firstname": "Ana", "lastname": "Lima", "phonenumber": "+1 650 555 0170"}}),
    )
    .await;
    let notified = eventually(Duration::from_secs(30), || async {
        (template_sends(&graph) > before).then_some(())
    })
    .await;
    assert!(notified.is_some(), "the notification was not sent");
    quiet(&t).await;
    let notification = counts(&t, false).await;

    // With an active bot, from another customer (the first one just had a staff reply: bots
    // keep quiet after one): a message it does not match, one it answers. Warm-up: the
    // customer exists, both functions compiled the bot.
    create_bot(
        &t,
        json!({"name": "Opening hours", "reply_type": 4, "trigger": "hours, open", "bot_type": 1,
               "response": {"text": "We open at 9."}}),
    )
    .await;
    let (other, third) = ("16505550171", "16505550172");
    let message = async |wa: &str, wamid: &str, text: &str| {
        let (s, _) = t
            .post_signed(&text_payload(PNID, wa, "Bo", wamid, now_s(), text))
            .await;
        assert_eq!(s, 200);
        quiet(&t).await;
    };
    // Not held for the bots (no hand-off in its last hour): judged by the triggers.
    message(other, "wamid.cost-b0", "hi").await;
    counts(&t, true).await;
    message(other, "wamid.cost-b1", "Is it in red?").await;
    let no_match = counts(&t, false).await;
    // Another customer: the bots function compiles the bot on the warm-up answer.
    message(third, "wamid.cost-b2", "are you open today?").await;
    let answered = eventually(Duration::from_secs(20), || async {
        (bot_answers(&graph, third) == 1).then_some(())
    })
    .await;
    assert!(answered.is_some(), "the bot did not answer the warm-up");
    counts(&t, true).await;
    message(third, "wamid.cost-b3", "what are your hours?").await;
    let bot_answers_count = counts(&t, false).await;
    assert_eq!(bot_answers(&graph, third), 2);

    // With an idle timer bot active too, from a fourth customer: a message no trigger matches
    // arms the timer from the inbound function.
    create_bot(
        &t,
        json!({"name": "Still there?", "reply_type": 8, "minutes": 30, "bot_type": 1,
               "response": {"text": "Still there?"}}),
    )
    .await;
    let fourth = "16505550173";
    message(fourth, "wamid.cost-t0", "hi").await;
    counts(&t, true).await;
    message(fourth, "wamid.cost-t1", "Is it in green?").await;
    let timer = counts(&t, false).await;
    let conv = t.conversation_of(fourth).await;
    let conv4 = conv["id"].as_str().expect("id").to_string();
    let store = t.store();
    let armed = |store: Store, conv4: String| async move {
        let mut armed = Vec::new();
        for shard in 0..store.shards() {
            let (due, _) = store
                .due_bot_timers(shard, TimerPartition::Later, 0, i64::MAX / 2, None, 1000)
                .await
                .expect("timers");
            armed.extend(due.into_iter().filter(|x| x.sk.contains(&conv4)));
        }
        armed
    };
    let before = armed(store.clone(), conv4.clone()).await;
    assert_eq!(
        before.len(),
        2,
        "each of the two messages arms the idle timer: {before:?}"
    );
    // A timer that fell due a minute ago, armed half an hour before by a message earlier than
    // both (as if the tick had been away), superseded: the tick drops it without a hop.
    let first = &before[0];
    let now_ms = now_s() * 1000;
    store
        .arm_bot_timer(&BotTimer::new(
            shared::store::keys::shard_of(&conv4, store.shards()),
            PNID,
            &first.customer_id,
            &conv4,
            &first.bot_id,
            8,
            now_ms - 31 * 60_000,
            now_ms - 60_000,
            now_ms - 31 * 60_000,
        ))
        .await
        .expect("arm");
    counts(&t, true).await;
    let report = t
        .stack
        .run_schedule("BotTimersFunction")
        .await
        .expect("tick");
    quiet(&t).await;
    let tick = counts(&t, false).await;
    assert_eq!(
        (report["fired"].as_u64(), report["dropped"].as_u64()),
        (Some(0), Some(1)),
        "{report}"
    );
    assert_eq!(armed(store, conv4).await.len(), 3, "nothing is deleted");

    let mut over = check("inbound text message", &inbound, INBOUND_TEXT);
    over.extend(check(
        "inbound text message, an active bot does not match",
        &no_match,
        INBOUND_TEXT_NO_MATCH,
    ));
    over.extend(check(
        "inbound text message, a timer bot active, no trigger matches",
        &timer,
        &[INBOUND_TEXT, TIMER_ARMED].concat(),
    ));
    over.extend(check(
        "bot-timers tick, one stale timer due",
        &tick,
        TIMER_TICK_STALE,
    ));
    over.extend(check(
        "inbound text message a bot answers",
        &bot_answers_count,
        INBOUND_TEXT_BOT_ANSWERS,
    ));
    over.extend(check("staff reply", &replied, REPLY));
    over.extend(check("delivery status", &status, STATUS));
    over.extend(check(
        &format!("campaign of {CAMPAIGN_RECIPIENTS} recipients"),
        &campaign,
        CAMPAIGN,
    ));
    over.extend(check("CRM event notification", &notification, NOTIFICATION));
    assert!(
        over.is_empty(),
        "more AWS calls than the README's cost model says: {}",
        over.join("; ")
    );
}
