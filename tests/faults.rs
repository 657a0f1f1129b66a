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
async fn a_batch_entry_the_queue_refuses_answers_5xx() {
    let t = start().await;
    // One message whose envelope exceeds SQS's message size limit: SendMessageBatch fails that
    // entry (or the batch); the webhook must not answer 200.
    let huge = "x".repeat(1_100_000);
    let body = batch_payload(
        PNID,
        &[
            ("15551230001", "wamid.small", now_s(), "hi"),
            ("15551230002", "wamid.huge", now_s(), &huge),
        ],
    );
    let (s, v) = t.post_signed(&body).await;
    assert!((500..600).contains(&s), "{s} {v}");
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
    let (t, _) = with_flaky(&[("wamid.crash", 2, true)]).await;
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
