//! Campaigns end to end against moto and the fake Graph API: created through the staff API,
//! started by their EventBridge Scheduler schedule (fired by the local runner as AWS would),
//! fanned out through the send queue, sent once per number, tracked by Meta's statuses.
use std::time::Duration;

use integration_tests::bot_helpers::assert_documented;
use integration_tests::fake_graph::{Answer, FakeGraph};
use integration_tests::*;
use serde_json::{Value, json};
use shared::campaigns::model::CampaignState;

const PNID: &str = "106540352242922";
const MARKETER: [&str; 4] = [
    "whatsapp_campaign:view",
    "whatsapp_campaign:create",
    "whatsapp_campaign:edit",
    "whatsapp_campaign:delete",
];

fn tpl(name: &str, status: &str, category: &str) -> Value {
    json!({"id": format!("9{}", name.len()), "name": name, "language": "en_US", "status": status,
           "category": category, "parameter_format": "POSITIONAL",
           "components": [{"type": "BODY", "text": "Hi {{1}}, spring sale!"}]})
}

/// A stack with the templates loaded and the business number registered as the default.
async fn setup() -> (TestStack, FakeGraph) {
    let graph = FakeGraph::start().await;
    setup_on(options_with_graph(&graph, 2_000), graph).await
}

/// [`setup`] with other stack options (`opts` talks to `graph`).
async fn setup_on(opts: local_runner::StackOptions, graph: FakeGraph) -> (TestStack, FakeGraph) {
    let t = start_with(opts).await;
    graph.set_templates(vec![
        tpl("spring_sale", "APPROVED", "MARKETING"),
        tpl("order_note", "APPROVED", "UTILITY"),
        tpl("old_promo", "PAUSED", "MARKETING"),
    ]);
    t.load_templates().await;
    t.register_number(PNID).await;
    (t, graph)
}

fn marketer(t: &TestStack) -> String {
    t.token(&MARKETER)
}

fn spec(rel_type: &str, template: &str, extra: Value) -> Value {
    let mut b = json!({
        "name": "Spring", "rel_type": rel_type, "all": true,
        "template": {"name": template, "language": "en_US",
                     "components": [{"type": "body", "parameters": [{"type": "text", "text": "{first_name|friend}"}]}]},
        "campaign_type": "onetime", "send_now": true,
    });
    if let (Some(b), Value::Object(x)) = (b.as_object_mut(), extra) {
        b.extend(x);
    }
    b
}

async fn create(t: &TestStack, body: Value) -> Value {
    let (s, v) = t
        .api("POST", "/api/v1/campaigns", Some(&marketer(t)), Some(body))
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

/// `GET path` as the marketer, which must answer 200.
async fn get_ok(t: &TestStack, path: &str) -> Value {
    let (s, v) = t.api("GET", path, Some(&marketer(t)), None).await;
    assert_eq!(s, 200, "GET {path}: {v}");
    v
}

async fn report(t: &TestStack, id: &str) -> Value {
    get_ok(t, &format!("/api/v1/campaigns/{id}")).await
}

/// Waits until run 1 of the campaign is done and the campaign moved on; answers the report.
async fn wait_done(t: &TestStack, id: &str) -> Value {
    let done = eventually(Duration::from_secs(40), || async {
        let _ = t.stack.fire_due_schedules().await;
        let r = report(t, id).await;
        // Done, and the campaign moved on (finished, or scheduled for its next run).
        (r["runs"][0]["state"] == "done" && r["campaign"]["state"] != "running").then_some(r)
    })
    .await;
    match done {
        Some(r) => r,
        None => panic!(
            "run 1 never finished: {}\n{}",
            report(t, id).await,
            logged_problems(id)
        ),
    }
}

/// A run's recipients (`query`: `status=…`), as the marketer reads them.
async fn recipients(t: &TestStack, id: &str, query: &str) -> Value {
    get_ok(t, &format!("/api/v1/campaigns/{id}/recipients?{query}")).await
}

fn template_sends(graph: &FakeGraph) -> Vec<Value> {
    graph
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/messages") && r.body["type"] == "template")
        .map(|r| r.body)
        .collect()
}

async fn lead(t: &TestStack, id: &str, name: &str, phone: Option<&str>) {
    let mut record = json!({"id": id, "name": name});
    if let Some(p) = phone {
        record["phonenumber"] = json!(p);
    }
    t.put_crm_event(
        "lead_created",
        json!({"event_id": format!("lead-{id}"), "updated_at": 1000, "record": record}),
    )
    .await;
}

fn totals(r: &Value) -> &Value {
    &r["runs"][0]["totals"]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_to_all_leads_sends_each_number_once_and_its_totals_add_up() {
    let (t, graph) = setup().await;
    let tap = t.tap_our_events().await;
    lead(&t, "1", "Ana Lima", Some("+1 650 555 0101")).await;
    lead(&t, "2", "Ana again", Some("16505550101")).await; // the same number
    lead(&t, "3", "Rui", Some("+1 650 555 0102")).await;
    lead(&t, "4", "Bad", Some("12")).await; // not a phone number
    lead(&t, "5", "Nobody", None).await;
    let store = t.store();
    let listed = eventually(Duration::from_secs(20), || async {
        let mut n = 0;
        for shard in 0..shared::store::directory_list::DIRECTORY_LIST_SHARDS {
            n += store
                .directory_listing("lead", shard, None, 100)
                .await
                .unwrap()
                .0
                .len();
        }
        (n == 5).then_some(())
    })
    .await;
    assert!(listed.is_some(), "the directory lists the five leads");

    let c = create(&t, spec("leads", "spring_sale", json!({}))).await;
    assert_eq!(c["state"], "scheduled");
    assert_eq!(c["marketing"], true);
    assert_eq!(c["sender"], PNID);
    let id = c["id"].as_str().unwrap().to_string();
    let r = wait_done(&t, &id).await;
    let sends = template_sends(&graph);
    let mut to: Vec<&str> = sends.iter().filter_map(|b| b["to"].as_str()).collect();
    to.sort();
    assert_eq!(to, ["16505550101", "16505550102"], "{sends:?}");
    let first_names: Vec<&str> = sends
        .iter()
        .filter_map(|b| b["template"]["components"][0]["parameters"][0]["text"].as_str())
        .collect();
    assert!(first_names.contains(&"Rui"), "{first_names:?}");
    assert!(graph.problems().is_empty(), "{:?}", graph.problems());
    let tot = totals(&r);
    assert_eq!(
        (
            tot["total"].as_i64(),
            tot["success"].as_i64(),
            tot["invalid"].as_i64()
        ),
        (Some(4), Some(2), Some(2)),
        "{r}"
    );
    let sum: i64 = [
        "pending", "sending", "success", "failed", "invalid", "unknown", "skipped",
    ]
    .iter()
    .map(|k| tot[k].as_i64().unwrap_or(0))
    .sum();
    assert_eq!(sum, tot["total"].as_i64().unwrap(), "{tot}");
    assert_eq!(r["campaign"]["state"], "finished");
    // The recipients, filtered, with the seed's codes and why each failed.
    let v = recipients(&t, &id, "status=invalid").await;
    let invalid = v["data"].as_array().unwrap();
    assert_eq!(invalid.len(), 2, "{v}");
    assert!(
        invalid
            .iter()
            .all(|r| r["status_code"] == 3 && r["error"].is_string())
    );
    // The CSV has a line per recipient.
    let resp = t
        .http
        .get(format!(
            "{}/campaigns/{id}/recipients.csv",
            t.info().api_base
        ))
        .bearer_auth(marketer(&t))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.starts_with("phone,source,name,status"));
    // The CRM learns the totals: one event id (the scheduler and a sender may both publish
    // it when they finish the run at the same moment; receivers dedupe on the id).
    let events = t.drain(&tap, Duration::from_secs(3)).await;
    let finished: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "campaign.finished")
        .collect();
    let ids: std::collections::BTreeSet<&str> = finished
        .iter()
        .filter_map(|e| e["detail"]["event_id"].as_str())
        .collect();
    assert_eq!(ids.len(), 1, "{events:?}");
    assert_eq!(finished[0]["detail"]["totals"]["success"], 2);
    assert_documented("campaign.finished", &finished[0]["detail"]);
    // A late or repeated schedule changes nothing.
    let again = t
        .stack
        .invoke(
            "CampaignSchedulerFunction",
            json!({"campaign_id": id, "run": 1}),
        )
        .await
        .unwrap();
    assert_ne!(again["outcome"], "fanned_out", "{again}");
    settle().await;
    assert_eq!(template_sends(&graph).len(), 2);
}

async fn contact(t: &TestStack, name: &str, phone: &str) -> String {
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/contacts",
            Some(&t.admin_token()),
            Some(json!({"name": name, "phone": phone})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_starts_of_one_run_make_one_run() {
    let (t, graph) = setup().await;
    let a = contact(&t, "Ana", "+16505550201").await;
    let b = contact(&t, "Bo", "+16505550202").await;
    // Planned for later: nothing fires by itself; two concurrent deliveries of its schedule.
    let later = (chrono::Utc::now() + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": [a, b], "send_now": false, "scheduled_send_time": later}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    assert!(c["next_run_at"].as_i64().unwrap() > chrono::Utc::now().timestamp_millis());
    let input = json!({"campaign_id": id, "run": 1});
    let (x, y) = tokio::join!(
        t.stack.invoke("CampaignSchedulerFunction", input.clone()),
        t.stack.invoke("CampaignSchedulerFunction", input.clone())
    );
    let outcomes = [x.unwrap(), y.unwrap()];
    assert!(
        outcomes
            .iter()
            .any(|o| o["outcome"] == "fanned_out" || o["outcome"] == "finished"),
        "{outcomes:?}"
    );
    let r = wait_done(&t, &id).await;
    assert_eq!(totals(&r)["success"], 2, "{r}");
    settle().await;
    assert_eq!(template_sends(&graph).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_campaign_sends_nothing_even_when_its_schedule_fires_late() {
    let (t, graph) = setup().await;
    let a = contact(&t, "Ana", "+16505550301").await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": [a], "send_now": false, "scheduled_send_time": later}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/campaigns/{id}/cancel"),
            Some(&marketer(&t)),
            None,
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("cancelled")), "{v}");
    let out = t
        .stack
        .invoke(
            "CampaignSchedulerFunction",
            json!({"campaign_id": id, "run": 1}),
        )
        .await
        .unwrap();
    assert_eq!(out["outcome"], "cancelled", "{out}");
    // Editing a cancelled campaign is refused; so is pausing it.
    let (s, _) = t
        .api(
            "POST",
            &format!("/api/v1/campaigns/{id}/pause"),
            Some(&marketer(&t)),
            None,
        )
        .await;
    assert_eq!(s, 409);
    settle().await;
    assert!(template_sends(&graph).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_cancelled_or_stopped_mid_fan_out_ends_its_run() {
    let (t, graph) = setup().await;
    let ids = [
        contact(&t, "Ana", "+16505550311").await,
        contact(&t, "Bo", "+16505550312").await,
        contact(&t, "Cy", "+16505550313").await,
    ];
    let later = (chrono::Utc::now() + chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    for end in ["cancelled", "stopped"] {
        let c = create(
            &t,
            spec(
                "whatsapp_contacts",
                "order_note",
                json!({"all": false, "ids": ids, "send_now": false, "scheduled_send_time": later}),
            ),
        )
        .await;
        let id = c["id"].as_str().unwrap().to_string();
        let input = json!({"campaign_id": id, "run": 1});
        // Its schedule fires with less time left than a page needs: the run is claimed, the
        // fan-out stands at its first page and plans its continuation.
        let out = t
            .stack
            .invoke_within(
                "CampaignSchedulerFunction",
                input.clone(),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(out["outcome"], "continued", "{out}");
        let r = report(&t, &id).await;
        assert_eq!(
            (
                r["campaign"]["state"].as_str(),
                r["runs"][0]["state"].as_str()
            ),
            (Some("running"), Some("fanning_out")),
            "{r}"
        );
        if end == "cancelled" {
            let (s, v) = t
                .api(
                    "POST",
                    &format!("/api/v1/campaigns/{id}/cancel"),
                    Some(&marketer(&t)),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{v}");
        } else {
            // A dead token met by another run's send stops the campaign; then the continuation
            // fires.
            assert!(
                t.store()
                    .move_campaign(
                        &id,
                        &[CampaignState::Running],
                        CampaignState::Stopped,
                        Some("(#190) token expired"),
                        chrono::Utc::now().timestamp_millis(),
                    )
                    .await
                    .unwrap()
            );
            let out = t
                .stack
                .invoke("CampaignSchedulerFunction", input.clone())
                .await
                .unwrap();
            assert_eq!(out["outcome"], "stopped", "{out}");
        }
        // The run ends: the fan-out closed where it stood, nobody pending, nothing sent.
        let r = wait_done(&t, &id).await;
        assert_eq!(r["campaign"]["state"], end, "{r}");
        assert_eq!(
            (totals(&r)["total"].as_i64(), totals(&r)["skipped"].as_i64()),
            (Some(3), Some(3)),
            "{r}"
        );
        assert_eq!(totals(&r)["pending"], 0, "{r}");
        let skipped = recipients(&t, &id, "status=skipped").await;
        let skipped = skipped["data"].as_array().unwrap();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(
            skipped
                .iter()
                .all(|x| x["error"] == format!("the campaign was {end}")),
            "{skipped:?}"
        );
    }
    settle().await;
    assert!(template_sends(&graph).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_too_long_for_a_response_is_exported_to_s3_and_linked() {
    let graph = FakeGraph::start().await;
    let mut opts = options_with_graph(&graph, 2_000);
    // Twelve recipients are "too long" here (5 MiB on Lambda).
    opts.csv_inline_bytes = Some(400);
    let (t, _graph) = setup_on(opts, graph).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(contact(&t, &format!("Ana {i}"), &format!("+165055504{i:02}")).await);
    }
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": ids}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let r = wait_done(&t, &id).await;
    assert_eq!(totals(&r)["success"], 12, "{r}");
    let url = format!("{}/campaigns/{id}/recipients.csv", t.info().api_base);
    let manual = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Short enough: the CSV is the answer.
    let resp = manual
        .get(format!("{url}?status=failed"))
        .bearer_auth(marketer(&t))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap().lines().count(), 1);
    // Too long: written to S3, answered with a link.
    let resp = manual
        .get(&url)
        .bearer_auth(marketer(&t))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let export: Value = resp.json().await.unwrap();
    assert_eq!(export["url"], location.as_str());
    assert_eq!(export["expires_in"], 900);
    assert!(location.contains("/exports/campaigns/"), "{location}");
    let file = reqwest::get(&location).await.unwrap();
    assert_eq!(file.status(), 200);
    assert!(
        file.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(&format!("filename=\"campaign-{id}-run-1.csv\"")),
        "{:?}",
        file.headers()
    );
    let csv = file.text().await.unwrap();
    assert_eq!(export["bytes"], csv.len(), "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 13, "{csv}");
    assert!(lines[0].starts_with("phone,source,name,status"));
    let mut phones: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    phones.sort();
    phones.dedup();
    assert_eq!(phones.len(), 12, "{csv}");
    // A client following redirects gets the file in one go.
    let followed = t
        .http
        .get(&url)
        .bearer_auth(marketer(&t))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), 200);
    assert_eq!(followed.text().await.unwrap().lines().count(), 13);
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_rate_limits_are_retried_and_the_recipient_is_sent_once() {
    let (t, graph) = setup().await;
    let a = contact(&t, "Ana", "+16505550401").await;
    graph.script([Answer::Error(400, 130429), Answer::Accept]);
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": [a]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let r = wait_done(&t, &id).await;
    assert_eq!(totals(&r)["success"], 1, "{r}");
    assert_eq!(totals(&r)["failed"], 0, "{r}");
    let v = recipients(&t, &id, "").await;
    assert_eq!(v["data"][0]["status"], "success", "{v}");
    assert!(v["data"][0]["wamid"].is_string(), "{v}");
    assert_eq!(template_sends(&graph).len(), 2, "one refused, one accepted");
}

/// Each attempt that reaches Meta takes its own permit: a number paced at 1 message per
/// second (its registry rate) sends the retry after a 130429 in a later second, not after the
/// client's quarter-second backoff.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_a_rate_limit_takes_its_own_permit_at_the_numbers_rate() {
    let (t, graph) = setup().await;
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/numbers/{PNID}"),
            Some(&t.admin_token()),
            Some(json!({"messages_per_second": 1})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["messages_per_second"], 1, "{v}");
    let a = contact(&t, "Ana", "+16505550411").await;
    graph.script([Answer::Error(400, 130429), Answer::Accept]);
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": [a]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let r = wait_done(&t, &id).await;
    assert_eq!(totals(&r)["success"], 1, "{r}");
    let sends: Vec<_> = graph
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/messages") && r.body["type"] == "template")
        .collect();
    assert_eq!(sends.len(), 2, "one refused, one accepted");
    let gap = sends[1].at_ms - sends[0].at_ms;
    assert!(
        gap >= 900,
        "the retry went {gap} ms after the refusal, inside the same paced second"
    );
    // An invalid rate is refused, naming the field.
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/numbers/{PNID}"),
            Some(&t.admin_token()),
            Some(json!({"messages_per_second": 1001})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("messages_per_second"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_token_stops_the_campaign_and_a_spam_limit_pauses_it() {
    let (t, graph) = setup().await;
    let tap = t.tap_our_events().await;
    let a = contact(&t, "Ana", "+16505550501").await;
    graph.script([Answer::Error(401, 190)]);
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": [a.clone()]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let stopped = eventually(Duration::from_secs(30), || async {
        let _ = t.stack.fire_due_schedules().await;
        let r = report(&t, &id).await;
        (r["campaign"]["state"] == "stopped").then_some(r)
    })
    .await
    .expect("the campaign stops");
    assert!(
        stopped["campaign"]["reason"]
            .as_str()
            .unwrap()
            .contains("190"),
        "{stopped}"
    );
    let events = t.drain(&tap, Duration::from_secs(3)).await;
    let stop = events
        .iter()
        .find(|e| e["detail-type"] == "campaign.stopped")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(stop["detail"]["error_code"], 190);
    assert_documented("campaign.stopped", &stop["detail"]);
    // Its run ends: the recipient failed with Meta's code (a stopped campaign is never resumed),
    // nothing is left pending, and the campaign stays stopped.
    let ended = eventually(Duration::from_secs(20), || async {
        let r = report(&t, &id).await;
        (r["runs"][0]["state"] == "done").then_some(r)
    })
    .await
    .unwrap_or_else(|| panic!("the stopped run never ended: {}", stopped));
    assert_eq!(
        (
            totals(&ended)["failed"].as_i64(),
            totals(&ended)["pending"].as_i64().unwrap_or(0)
        ),
        (Some(1), 0),
        "{ended}"
    );
    assert_eq!(ended["campaign"]["state"], "stopped");
    let v = recipients(&t, &id, "status=failed").await;
    assert_eq!(v["data"][0]["error_code"], 190, "{v}");

    // 131048 (spam rate limit): paused with the reason; resumed, the recipient goes out.
    graph.script([Answer::Error(400, 131048)]);
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": [a]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let paused = eventually(Duration::from_secs(30), || async {
        let _ = t.stack.fire_due_schedules().await;
        let r = report(&t, &id).await;
        (r["campaign"]["state"] == "paused").then_some(r)
    })
    .await
    .expect("the campaign pauses");
    assert_eq!(totals(&paused)["pending"], 1, "{paused}");
    let (s, v) = t
        .api(
            "POST",
            &format!("/api/v1/campaigns/{id}/resume"),
            Some(&marketer(&t)),
            None,
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("running")), "{v}");
    let r = wait_done(&t, &id).await;
    assert_eq!(totals(&r)["success"], 1, "{r}");
    assert_eq!(r["campaign"]["state"], "finished");
}

fn campaign_status(wamid: &str, status: &str, ts: i64, cb: &str, error: Option<i64>) -> Vec<u8> {
    // Meta's recipient_id: the number the callback names (ours: `cmp:{id}:{run}:+{digits}`).
    let recipient = cb.rsplit(':').next().unwrap().trim_start_matches('+');
    let mut st = json!({"id": wamid, "status": status, "timestamp": ts.to_string(),
                        "recipient_id": recipient, "biz_opaque_callback_data": cb});
    if let Some(code) = error {
        st["errors"] = json!([{"code": code, "title": "Message undeliverable", "message": "Message undeliverable"}]);
    }
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
        "statuses": [st]}}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn statuses_move_delivery_forward_only_and_a_late_failure_moves_2_to_0() {
    let (t, graph) = setup().await;
    let a = contact(&t, "Ana", "+16505550601").await;
    let b = contact(&t, "Bo", "+16505550602").await;
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": [a, b]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    wait_done(&t, &id).await;
    let sends = template_sends(&graph);
    let cb_of = |to: &str| {
        sends
            .iter()
            .find(|s| s["to"] == to)
            .and_then(|s| s["biz_opaque_callback_data"].as_str())
            .unwrap()
            .to_string()
    };
    let (cb_a, cb_b) = (cb_of("16505550601"), cb_of("16505550602"));
    let ts = chrono::Utc::now().timestamp();
    // Out of order: read before delivered; delivered later changes nothing.
    for (st, off) in [("read", 2), ("delivered", 1), ("sent", 0)] {
        t.post_signed(&campaign_status("wamid.ca", st, ts + off, &cb_a, None))
            .await;
    }
    t.post_signed(&campaign_status(
        "wamid.cb",
        "failed",
        ts,
        &cb_b,
        Some(131026),
    ))
    .await;
    let r = eventually(Duration::from_secs(20), || async {
        let r = report(&t, &id).await;
        (totals(&r)["read"] == 1 && totals(&r)["failed"] == 1).then_some(r)
    })
    .await
    .expect("statuses applied");
    let tot = totals(&r);
    assert_eq!(
        (
            tot["sent"].as_i64(),
            tot["delivered"].as_i64(),
            tot["success"].as_i64()
        ),
        (Some(0), Some(0), Some(1)),
        "{tot}"
    );
    let v = recipients(&t, &id, "status=failed").await;
    assert_eq!(v["data"][0]["error_code"], 131026, "{v}");
    assert_eq!(v["data"][0]["status_code"], 0);
    // Each message is in its customer's conversation once, as the business sent it: not
    // unread, no service window opened.
    for (wa_id, wamid, delivery) in [
        ("16505550601", "wamid.ca", "read"),
        ("16505550602", "wamid.cb", "failed"),
    ] {
        let conv = t.conversation_of(wa_id).await;
        assert_eq!(conv["unread"], 0, "{conv}");
        assert_eq!(conv["window_open"], false, "{conv}");
        assert!(conv["window_expires_at"].is_null(), "{conv}");
        let msgs = t.messages(conv["id"].as_str().unwrap()).await;
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        let m = &msgs[0];
        assert_eq!(
            (
                m["id"].as_str(),
                m["direction"].as_str(),
                m["type"].as_str(),
                m["source"].as_str(),
                m["summary"].as_str()
            ),
            (
                Some(wamid),
                Some("outbound"),
                Some("template"),
                Some("campaign"),
                Some("[template] order_note")
            ),
            "{m}"
        );
        assert_eq!(m["message"]["campaign"]["id"], id.as_str(), "{m}");
        assert_eq!(m["delivery"]["status"], delivery, "{m}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn opted_out_customers_get_no_marketing_campaign() {
    let (t, graph) = setup().await;
    // The fixture's customer writes, then stops marketing messages.
    let wa = "16505551234";
    t.opted_out_customer(PNID, wa, "wamid.o1").await;
    let sheena = contact(&t, "Sheena", "+16505551234").await;
    let bo = contact(&t, "Bo", "+16505550701").await;
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "spring_sale",
            json!({"all": false, "ids": [sheena, bo]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let r = wait_done(&t, &id).await;
    assert_eq!(
        (
            totals(&r)["skipped"].as_i64(),
            totals(&r)["success"].as_i64()
        ),
        (Some(1), Some(1)),
        "{r}"
    );
    let to: Vec<Value> = template_sends(&graph)
        .iter()
        .map(|s| s["to"].clone())
        .collect();
    assert_eq!(to, [json!("16505550701")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_is_validated_on_save_naming_the_field() {
    let (t, _graph) = setup().await;
    let tok = marketer(&t);
    for (body, status, needle) in [
        (spec("leads", "old_promo", json!({})), 422, "PAUSED"),
        (spec("leads", "nope", json!({})), 404, "nope"),
        (
            spec("leads", "order_note", json!({"campaign_type": "recurring"})),
            400,
            "auto_reminder_days",
        ),
        (
            spec("leads", "order_note", json!({"timezone": "Mars/Base"})),
            400,
            "timezone",
        ),
        (
            spec(
                "leads",
                "order_note",
                json!({"send_now": false, "scheduled_send_time": "2020-01-01T10:00"}),
            ),
            400,
            "scheduled_send_time",
        ),
        (
            {
                let mut b = spec("leads", "order_note", json!({}));
                b["template"]["components"][0]["parameters"][0]["text"] = json!("{email}");
                b
            },
            400,
            "unknown placeholder",
        ),
    ] {
        let (s, v) = t
            .api("POST", "/api/v1/campaigns", Some(&tok), Some(body.clone()))
            .await;
        assert_eq!(s, status, "{body}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(needle),
            "{body}: {v}"
        );
    }
    // A recurring campaign plans its next run when the first starts.
    let c = create(
        &t,
        spec(
            "leads",
            "order_note",
            json!({"campaign_type": "recurring", "auto_reminder_days": 7}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let r = eventually(Duration::from_secs(20), || async {
        let _ = t.stack.fire_due_schedules().await;
        let r = report(&t, &id).await;
        (r["campaign"]["runs_started"] == 1).then_some(r)
    })
    .await
    .expect("run 1 starts");
    assert_eq!(r["campaign"]["next_run"], 2, "{r}");
    // Started: only pause / resume / cancel apply.
    let (s, v) = t
        .api(
            "PUT",
            &format!("/api/v1/campaigns/{id}"),
            Some(&tok),
            Some(spec("leads", "order_note", json!({}))),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("campaign_started")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_whose_outcome_is_lost_is_never_sent_again_and_its_status_settles_it() {
    let (t, graph) = setup().await;
    let a = contact(&t, "Ana", "+16505550801").await;
    // Meta accepts, but answers after the client's timeout: the outcome is unknown.
    graph.script([Answer::AcceptAfter(Duration::from_secs(4))]);
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": [a]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let r = wait_done(&t, &id).await;
    assert_eq!(totals(&r)["unknown"], 1, "{r}");
    let job = json!({"campaign_id": id, "run": 1, "phone": "+16505550801"}).to_string();
    let queue = t.info().resource("CampaignSendQueue").url.clone().unwrap();
    // The queue delivers the record again (a redelivery, or a sender that crashed after Meta
    // accepted and before it wrote the outcome): nothing is sent twice.
    t.sqs()
        .send_message()
        .queue_url(&queue)
        .message_body(&job)
        .send()
        .await
        .unwrap();
    settle().await;
    assert_eq!(template_sends(&graph).len(), 1);
    // The first status settles it: 2 (success), delivered.
    let cb = format!("cmp:{id}:1:+16505550801");
    let ts = chrono::Utc::now().timestamp();
    t.post_signed(&campaign_status("wamid.lost", "delivered", ts, &cb, None))
        .await;
    let r = eventually(Duration::from_secs(20), || async {
        let r = report(&t, &id).await;
        (totals(&r)["success"] == 1).then_some(r)
    })
    .await
    .expect("settled by its status");
    assert_eq!(
        (
            totals(&r)["unknown"].as_i64(),
            totals(&r)["delivered"].as_i64()
        ),
        (Some(0), Some(1)),
        "{r}"
    );

    // A sender that died between Meta's answer and its own write leaves the recipient
    // `sending`: a redelivery does not send it, and the status settles it too.
    let b = contact(&t, "Bo", "+16505550802").await;
    let c = create(
        &t,
        spec(
            "whatsapp_contacts",
            "order_note",
            json!({"all": false, "ids": [b]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    wait_done(&t, &id).await;
    let store = t.store();
    let key = shared::store::campaigns::RecipientKey {
        campaign_id: &id,
        run: 1,
        phone: "+16505550802",
    };
    let before = store
        .move_recipient(
            key,
            &[shared::campaigns::RecipientStatus::Success],
            shared::campaigns::RecipientStatus::Sending,
            &[],
            0,
        )
        .await
        .unwrap()
        .expect("was sent");
    store
        .count(&id, 1, before.shard, &[("success", -1), ("sending", 1)])
        .await
        .unwrap();
    let sends = template_sends(&graph).len();
    t.sqs()
        .send_message()
        .queue_url(&queue)
        .message_body(json!({"campaign_id": id, "run": 1, "phone": "+16505550802"}).to_string())
        .send()
        .await
        .unwrap();
    settle().await;
    assert_eq!(template_sends(&graph).len(), sends, "not sent again");
    t.post_signed(&campaign_status(
        before.wamid.as_deref().unwrap(),
        "sent",
        ts,
        &format!("cmp:{id}:1:+16505550802"),
        None,
    ))
    .await;
    let settled = eventually(Duration::from_secs(20), || async {
        store
            .recipient(&id, 1, "+16505550802")
            .await
            .unwrap()
            .filter(|r| r.status == shared::campaigns::RecipientStatus::Success)
    })
    .await;
    assert!(settled.is_some(), "a status settles a send left `sending`");
    let r = report(&t, &id).await;
    assert_eq!(
        (
            totals(&r)["sending"].as_i64(),
            totals(&r)["success"].as_i64()
        ),
        (Some(0), Some(1)),
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn members_of_groups_and_chosen_crm_contacts_are_reached_each_once() {
    let (t, graph) = setup().await;
    let admin = t.admin_token();
    let group = |name: &str| {
        let (t, admin) = (&t, admin.clone());
        let name = name.to_string();
        async move {
            let (s, v) = t
                .api(
                    "POST",
                    "/api/v1/groups",
                    Some(&admin),
                    Some(json!({"name": name})),
                )
                .await;
            assert_eq!(s, 201, "{v}");
            v["id"].as_str().unwrap().to_string()
        }
    };
    let (vip, news) = (group("VIP").await, group("News").await);
    let ana = contact(&t, "Ana", "+16505550901").await;
    let bo = contact(&t, "Bo", "+16505550902").await;
    for (g, c) in [(&vip, &ana), (&vip, &bo), (&news, &ana)] {
        let (s, v) = t
            .api(
                "PUT",
                &format!("/api/v1/groups/{g}/members/{c}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    // Ana is in both groups: one message.
    let c = create(
        &t,
        spec(
            "whatsapp_groups",
            "order_note",
            json!({"all": false, "ids": [vip, news]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let r = wait_done(&t, &id).await;
    assert_eq!(
        (totals(&r)["total"].as_i64(), totals(&r)["success"].as_i64()),
        (Some(2), Some(2)),
        "{r}"
    );
    let mut to: Vec<String> = template_sends(&graph)
        .iter()
        .filter_map(|s| s["to"].as_str().map(str::to_string))
        .collect();
    to.sort();
    assert_eq!(to, ["16505550901", "16505550902"]);

    // CRM contacts by id (the directory the CRM keeps current); one unknown id is left out.
    for (id, name, phone) in [
        ("42", "Carla Dias", "+1 650 555 0903"),
        ("43", "Dan", "+1 650 555 0904"),
    ] {
        t.put_crm_event(
            "contact_created",
            json!({"event_id": format!("c-{id}"), "updated_at": 1000,
                   "record": {"id": id, "name": name, "phonenumber": phone}}),
        )
        .await;
    }
    let store = t.store();
    let known = eventually(Duration::from_secs(20), || async {
        store.directory_record("contact", "42").await.unwrap()
    })
    .await;
    assert!(known.is_some());
    let c = create(
        &t,
        spec(
            "contacts",
            "order_note",
            json!({"all": false, "ids": ["42", "999"]}),
        ),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    let r = wait_done(&t, &id).await;
    assert_eq!(totals(&r)["success"], 1, "{r}");
    let carla = template_sends(&graph)
        .into_iter()
        .find(|s| s["to"] == "16505550903")
        .expect("sent to contact 42");
    assert_eq!(
        carla["template"]["components"][0]["parameters"][0]["text"],
        "Carla"
    );
    assert!(
        template_sends(&graph)
            .iter()
            .all(|s| s["to"] != "16505550904"),
        "contact 43 was not chosen"
    );
}
