//! Bad input and external failures: right status codes, nothing lost, nothing silently dropped.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use inbound::{ProcessError, Processor};
use integration_tests::local_runner::StackOptions;
use integration_tests::*;
use shared::envelope::Envelope;

const PNID: &str = "106540352242922";

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn nothing_queued_or_stored(t: &TestStack) {
    settle().await;
    assert_eq!(
        t.queue_depth("InboundQueue").await,
        (0, 0),
        "nothing may be queued"
    );
    assert!(t.conversations().await.is_empty(), "nothing may be stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_the_right_status_and_store_nothing() {
    let t = start().await;
    let body = fixture("text_message.json");
    // Unsigned, wrongly signed, signed with another secret, malformed header.
    assert_eq!(t.post_raw(body.clone(), None).await.0, 401);
    let other = shared::meta::signature::sign(b"not-the-app-secret", &body);
    assert_eq!(t.post_raw(body.clone(), Some(&other)).await.0, 401);
    assert_eq!(t.post_raw(body.clone(), Some("sha256=00")).await.0, 401);
    let (s, v) = t.post_raw(body.clone(), Some("md5=abc")).await;
    assert_eq!(s, 401);
    assert!(v.contains("\"code\":\"bad_signature\""), "{v}");
    // Signed but not JSON.
    assert_eq!(t.post_signed(b"this is not json").await.0, 400);
    assert_eq!(t.post_signed(b"{\"object\": ").await.0, 400);
    // Over 4 MB, signed correctly.
    let mut big = b"{\"object\":\"whatsapp_business_account\",\"entry\":[],\"pad\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 4 * 1024 * 1024));
    big.extend(b"\"}");
    assert_eq!(t.post_signed(&big).await.0, 413);
    nothing_queued_or_stored(&t).await;
    assert!(t.archived("raw/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_get() {
    let t = start().await;
    let url = &t.info().webhook_url;
    let ok = t
        .http
        .get(format!(
            "{url}?hub.mode=subscribe&hub.verify_token=dev-verify-token&hub.challenge=1158201444"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for q in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=dev-verify-token&hub.challenge=1",
        "hub.challenge=1",
    ] {
        let r = t.http.get(format!("{url}?{q}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403, "{q}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_signed_shape_is_archived_and_acknowledged() {
    let t = start().await;
    let body = br#"{"object":"instagram","entry":[{"id":"1","changes":[]}]}"#;
    assert_eq!(t.post_signed(body).await.0, 200);
    let odd = br#"[1,2,3]"#;
    assert_eq!(t.post_signed(odd).await.0, 200);
    let keys = t.archived("raw/").await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    let mut bodies = Vec::new();
    for k in &keys {
        bodies.push(t.archived_body(k).await);
    }
    assert!(bodies.iter().any(|b| b.contains("instagram")));
    assert!(bodies.iter().any(|b| b == "[1,2,3]"));
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_unavailable_answers_5xx_never_200() {
    let t = start().await;
    let url = t.info().resource("InboundQueue").url.clone().unwrap();
    t.sqs().delete_queue().queue_url(url).send().await.unwrap();
    let (s, v) = t.post_signed(&fixture("text_message.json")).await;
    assert!((500..600).contains(&s), "{s} {v}");
    assert!(v.contains("queue_unavailable"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_entry_the_queue_can_never_take_is_archived_and_acknowledged() {
    let t = start().await;
    // One message whose envelope exceeds SQS's message size limit: it can never be queued, so
    // a 5xx would make Meta retry a POST that can never succeed. It is archived raw, the rest
    // of the batch is queued, and the POST answers 200.
    let huge = "x".repeat(300_000);
    let body = batch_payload(
        PNID,
        &[
            ("15551230001", "wamid.small", now_s(), "hi"),
            ("15551230002", "wamid.huge", now_s(), &huge),
        ],
    );
    let (s, v) = t.post_signed(&body).await;
    assert_eq!(s, 200, "{v}");
    let raw = t.archived("raw/").await;
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert!(t.archived_body(&raw[0]).await.contains("wamid.huge"));
    let conv = t.conversation_of("15551230001").await;
    assert_eq!(conv["message_count"], 1);
}

/// Fails chosen wamids a number of times, before or after doing the real work, and logs when
/// each wamid finally succeeded.
struct Flaky {
    inner: Arc<dyn Processor>,
    failures: Mutex<HashMap<String, (usize, bool)>>,
    done: Mutex<Vec<(String, Instant)>>,
}

#[async_trait::async_trait]
impl Processor for Flaky {
    async fn process(&self, env: &Envelope) -> Result<(), ProcessError> {
        let v: serde_json::Value = serde_json::from_str(env.item.get()).unwrap();
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let plan = {
            let mut f = self.failures.lock().unwrap();
            match f.get_mut(&id) {
                Some((n, after)) if *n > 0 => {
                    *n -= 1;
                    Some(*after)
                }
                _ => None,
            }
        };
        match plan {
            Some(true) => {
                // "Crash" after the work, before the acknowledgement.
                self.inner.process(env).await?;
                Err(ProcessError::Retryable(
                    "simulated crash after storing".into(),
                ))
            }
            Some(false) => Err(ProcessError::Retryable(
                "simulated DynamoDB throttling".into(),
            )),
            None => {
                let r = self.inner.process(env).await;
                if r.is_ok() {
                    self.done.lock().unwrap().push((id, Instant::now()));
                }
                r
            }
        }
    }
}

async fn with_flaky(failures: &[(&str, usize, bool)]) -> (TestStack, Arc<Flaky>) {
    let slot: Arc<Mutex<Option<Arc<Flaky>>>> = Arc::new(Mutex::new(None));
    let failures: HashMap<String, (usize, bool)> = failures
        .iter()
        .map(|(w, n, a)| (w.to_string(), (*n, *a)))
        .collect();
    let mut opts = StackOptions::new(unique_prefix());
    let s2 = slot.clone();
    opts.inbound_wrapper = Some(Arc::new(move |inner| {
        let f = Arc::new(Flaky {
            inner,
            failures: Mutex::new(failures.clone()),
            done: Mutex::new(vec![]),
        });
        *s2.lock().unwrap() = Some(f.clone());
        f as Arc<dyn Processor>
    }));
    let t = start_with(opts).await;
    let flaky = slot.lock().unwrap().clone().expect("wrapper installed");
    (t, flaky)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_storing_and_acknowledging_loses_nothing_and_counts_once() {
    let (t, flaky) = with_flaky(&[("wamid.crash", 2, true)]).await;
    t.post_signed(&text_payload(
        PNID,
        "15557770001",
        "Cy",
        "wamid.crash",
        now_s(),
        "are you there",
    ))
    .await;
    let conv = t.conversation_of("15557770001").await;
    eventually(Duration::from_secs(30), || async {
        (t.queue_depth("InboundQueue").await == (0, 0)).then_some(())
    })
    .await
    .expect("redelivered until acknowledged");
    // Both injected crashes happened (after storing), and still the message counts once.
    assert_eq!(flaky.failures.lock().unwrap()["wamid.crash"].0, 0);
    assert_eq!(
        flaky
            .done
            .lock()
            .unwrap()
            .iter()
            .filter(|(w, _)| w == "wamid.crash")
            .count(),
        1
    );
    let conv2 = t.conversation_of("15557770001").await;
    assert_eq!(conv2["unread"], 1);
    assert_eq!(conv2["message_count"], 1);
    assert_eq!(t.messages(conv["id"].as_str().unwrap()).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_failure_holds_its_conversation_only() {
    let (t, flaky) = with_flaky(&[("wamid.a1", 2, false)]).await;
    let ts = now_s();
    let body = batch_payload(
        PNID,
        &[
            ("15558880001", "wamid.a1", ts, "a first"),
            ("15558880001", "wamid.a2", ts + 1, "a second"),
            ("15558880002", "wamid.b1", ts, "b first"),
        ],
    );
    assert_eq!(t.post_signed(&body).await.0, 200);
    eventually(Duration::from_secs(40), || async {
        (flaky.done.lock().unwrap().len() == 3).then_some(())
    })
    .await
    .expect("all three processed");
    let done = flaky.done.lock().unwrap().clone();
    let at = |w: &str| done.iter().find(|(id, _)| id == w).unwrap().1;
    assert!(
        at("wamid.a2") > at("wamid.a1"),
        "a later message of the conversation never overtakes a failed one"
    );
    assert!(
        at("wamid.b1") < at("wamid.a1"),
        "other conversations proceed meanwhile"
    );
    let a = t.conversation_of("15558880001").await;
    let ids: Vec<String> = t
        .messages(a["id"].as_str().unwrap())
        .await
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["wamid.a1", "wamid.a2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_can_never_succeed_is_parked_and_does_not_block_its_conversation() {
    let t = start().await;
    let url = t.info().resource("InboundQueue").url.clone().unwrap();
    let body = text_payload(
        PNID,
        "15559990001",
        "Di",
        "wamid.after-poison",
        now_s(),
        "still here",
    );
    let n = shared::meta::webhook::parse_notification(&body).unwrap();
    let split = shared::envelope::split(&n, std::str::from_utf8(&body).unwrap(), 0);
    let good = &split.queued[0];
    // Same FIFO group: poison first, then the good one.
    for (i, (b, dedupe)) in [
        ("{\"v\":99,\"garbage\":true}", "poison"),
        (good.body.as_str(), good.dedupe_id.as_str()),
    ]
    .iter()
    .enumerate()
    {
        t.sqs()
            .send_message()
            .queue_url(&url)
            .message_body(*b)
            .message_group_id(&good.group_id)
            .message_deduplication_id(format!("{dedupe}-{i}"))
            .send()
            .await
            .unwrap();
    }
    let conv = t.conversation_of("15559990001").await;
    assert_eq!(conv["message_count"], 1);
    let parked = eventually(Duration::from_secs(20), || async {
        let k = t.archived("parked/").await;
        (!k.is_empty()).then_some(k)
    })
    .await
    .expect("poison parked");
    assert!(t.archived_body(&parked[0]).await.contains("garbage"));
    assert_eq!(t.queue_depth("InboundDLQ").await, (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_keeps_failing_goes_to_the_dlq() {
    let (t, _) = with_flaky(&[("wamid.doomed", 1000, false)]).await;
    t.post_signed(&text_payload(
        PNID,
        "15556660001",
        "Ed",
        "wamid.doomed",
        now_s(),
        "x",
    ))
    .await;
    let dlq = eventually(Duration::from_secs(60), || async {
        let d = t.queue_depth("InboundDLQ").await;
        (d.0 + d.1 > 0).then_some(d)
    })
    .await;
    assert!(dlq.is_some(), "moved to the DLQ after maxReceiveCount");
}

/// Wraps the inbound processor with a behaviour per wamid, as the Lambda runtime would see it.
struct Scripted {
    inner: Arc<dyn Processor>,
    /// wamid → what to do on its first attempt.
    first: Mutex<HashMap<String, FirstAttempt>>,
    /// Wamids processed, in order of completion.
    done: Arc<Mutex<Vec<String>>>,
    /// Set when the gated record saw the other record done while it was itself in progress.
    overlapped: Arc<Mutex<bool>>,
    started: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone, Copy)]
enum FirstAttempt {
    Panic,
    Hang,
    /// Wait (up to 15 s) until this other wamid is done.
    WaitFor(&'static str),
}

#[async_trait::async_trait]
impl Processor for Scripted {
    async fn process(&self, env: &Envelope) -> Result<(), ProcessError> {
        let v: serde_json::Value = serde_json::from_str(env.item.get()).unwrap();
        let id = v["id"].as_str().unwrap_or_default().to_string();
        self.started.lock().unwrap().push(id.clone());
        let plan = self.first.lock().unwrap().remove(&id);
        match plan {
            Some(FirstAttempt::Panic) => panic!("simulated crash of the runtime on {id}"),
            Some(FirstAttempt::Hang) => {
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
            Some(FirstAttempt::WaitFor(other)) => {
                let until = Instant::now() + Duration::from_secs(15);
                while Instant::now() < until {
                    if self.done.lock().unwrap().iter().any(|d| d == other) {
                        *self.overlapped.lock().unwrap() = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            None => {}
        }
        let r = self.inner.process(env).await;
        if r.is_ok() {
            self.done.lock().unwrap().push(id);
        }
        r
    }
}

struct ScriptedStack {
    t: TestStack,
    done: Arc<Mutex<Vec<String>>>,
    started: Arc<Mutex<Vec<String>>>,
    overlapped: Arc<Mutex<bool>>,
}

async fn with_script(first: &[(&str, FirstAttempt)], timeout: Option<Duration>) -> ScriptedStack {
    let first: HashMap<String, FirstAttempt> =
        first.iter().map(|(w, f)| (w.to_string(), *f)).collect();
    let done = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(Mutex::new(Vec::new()));
    let overlapped = Arc::new(Mutex::new(false));
    let mut opts = StackOptions::new(unique_prefix());
    opts.timeout_override = timeout;
    let (d, s, o) = (done.clone(), started.clone(), overlapped.clone());
    opts.inbound_wrapper = Some(Arc::new(move |inner| {
        Arc::new(Scripted {
            inner,
            first: Mutex::new(first.clone()),
            done: d.clone(),
            overlapped: o.clone(),
            started: s.clone(),
        }) as Arc<dyn Processor>
    }));
    ScriptedStack {
        t: start_with(opts).await,
        done,
        started,
        overlapped,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_conversations_are_processed_concurrently() {
    let s = with_script(&[("wamid.slow", FirstAttempt::WaitFor("wamid.fast"))], None).await;
    let ts = now_s();
    s.t.post_signed(&text_payload(
        PNID,
        "15551110001",
        "Sl",
        "wamid.slow",
        ts,
        "slow",
    ))
    .await;
    eventually(Duration::from_secs(10), || async {
        s.started
            .lock()
            .unwrap()
            .iter()
            .any(|w| w == "wamid.slow")
            .then_some(())
    })
    .await
    .expect("the slow record started");
    // Another conversation's message arrives while the first one is still being processed.
    s.t.post_signed(&text_payload(
        PNID,
        "15551110002",
        "Fa",
        "wamid.fast",
        ts,
        "fast",
    ))
    .await;
    eventually(Duration::from_secs(30), || async {
        (s.done.lock().unwrap().len() == 2).then_some(())
    })
    .await
    .expect("both processed");
    assert!(
        *s.overlapped.lock().unwrap(),
        "the second conversation was processed while the first was in progress"
    );
    assert_eq!(*s.done.lock().unwrap(), vec!["wamid.fast", "wamid.slow"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_fails_the_whole_batch_which_is_retried() {
    let s = with_script(&[("wamid.panic", FirstAttempt::Panic)], None).await;
    let ts = now_s();
    let body = batch_payload(
        PNID,
        &[
            ("15551110003", "wamid.panic", ts, "boom"),
            ("15551110004", "wamid.bystander", ts, "hello"),
        ],
    );
    assert_eq!(s.t.post_signed(&body).await.0, 200);
    eventually(Duration::from_secs(30), || async {
        let done = s.done.lock().unwrap().clone();
        (done.contains(&"wamid.panic".to_string()) && done.contains(&"wamid.bystander".to_string()))
            .then_some(())
    })
    .await
    .expect("the batch was retried after the panic and the poller lives on");
    let attempts = |w: &str| s.started.lock().unwrap().iter().filter(|x| *x == w).count();
    assert_eq!(attempts("wamid.panic"), 2, "panicked once, then succeeded");
    for wa_id in ["15551110003", "15551110004"] {
        assert_eq!(s.t.conversation_of(wa_id).await["message_count"], 1);
    }
    assert_eq!(s.t.queue_depth("InboundDLQ").await, (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_hangs_is_abandoned_at_the_deadline_and_retried_alone() {
    // A 4 s function timeout (2 s of it kept to answer): the hanging record never times the
    // whole invocation out.
    let s = with_script(
        &[("wamid.hang", FirstAttempt::Hang)],
        Some(Duration::from_secs(4)),
    )
    .await;
    let ts = now_s();
    let body = batch_payload(
        PNID,
        &[
            ("15551110005", "wamid.before", ts, "first in the batch"),
            ("15551110006", "wamid.hang", ts, "hangs"),
            ("15551110007", "wamid.after", ts, "after it"),
        ],
    );
    assert_eq!(s.t.post_signed(&body).await.0, 200);
    eventually(Duration::from_secs(40), || async {
        (s.done.lock().unwrap().len() == 3).then_some(())
    })
    .await
    .expect("all three processed");
    let attempts = |w: &str| s.started.lock().unwrap().iter().filter(|x| *x == w).count();
    assert_eq!(
        attempts("wamid.before"),
        1,
        "done before the deadline, never retried"
    );
    assert_eq!(
        attempts("wamid.hang"),
        2,
        "abandoned at the deadline, then retried"
    );
    for wa_id in ["15551110005", "15551110006", "15551110007"] {
        assert_eq!(s.t.conversation_of(wa_id).await["message_count"], 1);
    }
    assert_eq!(s.t.queue_depth("InboundDLQ").await, (0, 0));
}

/// Fails the first `n` publishes, as an EventBridge outage would.
struct FlakyBus {
    inner: Arc<dyn shared::crm_events::EventBus>,
    fail: Mutex<usize>,
    failed: Mutex<usize>,
}

#[async_trait::async_trait]
impl shared::crm_events::EventBus for FlakyBus {
    async fn publish(
        &self,
        events: &[shared::crm_events::OutboundEvent],
    ) -> Result<(), shared::crm_events::BusError> {
        {
            let mut n = self.fail.lock().unwrap();
            if *n > 0 {
                *n -= 1;
                *self.failed.lock().unwrap() += 1;
                return Err(shared::crm_events::BusError::Unavailable(
                    "simulated EventBridge outage".into(),
                ));
            }
        }
        self.inner.publish(events).await
    }
}

async fn auto_lead_on(t: &TestStack) {
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/settings/auto-lead",
            Some(&t.admin_token()),
            Some(
                serde_json::json!({"enabled": true, "status": "1", "source": "2", "assignee": "3"}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_lead_created_publish_is_recovered_once() {
    let slot: Arc<Mutex<Option<Arc<FlakyBus>>>> = Arc::new(Mutex::new(None));
    let mut opts = StackOptions::new(unique_prefix());
    let s2 = slot.clone();
    opts.inbound_bus_wrapper = Some(Arc::new(move |inner| {
        let b = Arc::new(FlakyBus {
            inner,
            fail: Mutex::new(2),
            failed: Mutex::new(0),
        });
        *s2.lock().unwrap() = Some(b.clone());
        b as Arc<dyn shared::crm_events::EventBus>
    }));
    let t = start_with(opts).await;
    let bus = slot.lock().unwrap().clone().unwrap();
    let tap = t.tap_our_events().await;
    auto_lead_on(&t).await;
    t.post_signed(&text_payload(
        PNID,
        "15557771234",
        "Lu",
        "wamid.lc-1",
        now_s(),
        "hi",
    ))
    .await;
    let conv = eventually(Duration::from_secs(30), || async {
        let c = t.conversation_of("15557771234").await;
        c["rel_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("pending:"))
            .then_some(c)
    })
    .await
    .expect("stored as a pending lead once the publish went through");
    assert_eq!(*bus.failed.lock().unwrap(), 2, "the outage happened");
    let events = t.drain(&tap, Duration::from_secs(4)).await;
    let leads: Vec<_> = events
        .iter()
        .filter(|e| e["detail-type"] == "lead.created")
        .collect();
    assert_eq!(leads.len(), 1, "{events:?}");
    let corr = conv["rel_id"]
        .as_str()
        .unwrap()
        .trim_start_matches("pending:");
    assert_eq!(leads[0]["detail"]["correlation_id"], corr);
    assert_eq!(conv["message_count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_number_writing_to_two_business_numbers_at_once_makes_one_lead() {
    let t = start().await;
    let tap = t.tap_our_events().await;
    auto_lead_on(&t).await;
    let ts = now_s();
    // Two business numbers: two FIFO groups, processed concurrently.
    let (a, b) = (
        text_payload(
            "106540352242922",
            "15557775678",
            "Mo",
            "wamid.two-a",
            ts,
            "hi A",
        ),
        text_payload(
            "106540352249999",
            "15557775678",
            "Mo",
            "wamid.two-b",
            ts,
            "hi B",
        ),
    );
    let (ra, rb) = tokio::join!(t.post_signed(&a), t.post_signed(&b));
    assert_eq!((ra.0, rb.0), (200, 200));
    let convs = eventually(Duration::from_secs(30), || async {
        let c: Vec<_> = t
            .conversations()
            .await
            .into_iter()
            .filter(|c| c["customer"]["wa_id"] == "15557775678")
            .collect();
        (c.len() == 2 && c.iter().all(|c| !c["rel_id"].is_null())).then_some(c)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "both conversations stored with their lead\n{}",
            logged_problems("")
        )
    });
    assert_eq!(
        convs[0]["rel_id"], convs[1]["rel_id"],
        "one claim, one correlation id"
    );
    let events = t.drain(&tap, Duration::from_secs(4)).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["detail-type"] == "lead.created")
            .count(),
        1,
        "{events:?}"
    );
}
