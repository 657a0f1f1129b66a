//! `SqsSink` against a fake SQS endpoint: per-entry failures of `SendMessageBatch` (which
//! answers 200) are retried entry by entry, and surface as an error when they persist.
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use shared::envelope::QueuedEnvelope;
use shared::queue::{EnvelopeSink, QueueError, SqsSink};

#[derive(Clone, Default)]
struct Fake {
    /// Entry ids seen by each SendMessageBatch call.
    calls: Arc<Mutex<Vec<Vec<String>>>>,
    /// How many calls fail entry "1" (transiently) before it goes through.
    fail_first: Arc<Mutex<usize>>,
    sender_fault: bool,
}

async fn handle(
    State(f): State<Fake>,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, HeaderMap, String) {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        target, "AmazonSQS.SendMessageBatch",
        "unexpected call {target}"
    );
    let req: Value = serde_json::from_slice(&body).unwrap();
    let entries = req["Entries"].as_array().unwrap();
    let ids: Vec<String> = entries
        .iter()
        .map(|e| e["Id"].as_str().unwrap().to_string())
        .collect();
    for e in entries {
        assert!(
            e["MessageGroupId"].is_string() && e["MessageDeduplicationId"].is_string(),
            "FIFO ids: {e}"
        );
    }
    f.calls.lock().unwrap().push(ids.clone());
    let mut failing = f.fail_first.lock().unwrap();
    let (mut ok, mut failed) = (vec![], vec![]);
    for id in ids {
        if id == "1" && *failing > 0 {
            failed.push(json!({"Id": id, "SenderFault": f.sender_fault, "Code": if f.sender_fault {"InvalidParameterValue"} else {"InternalError"}, "Message": "try again"}));
        } else {
            ok.push(json!({"Id": id, "MessageId": format!("m-{id}"), "MD5OfMessageBody": "d41d8cd98f00b204e9800998ecf8427e", "SequenceNumber": "1"}));
        }
    }
    if *failing > 0 {
        *failing -= 1;
    }
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        "application/x-amz-json-1.0".parse().unwrap(),
    );
    (
        axum::http::StatusCode::OK,
        h,
        json!({"Successful": ok, "Failed": failed}).to_string(),
    )
}

async fn sink(fake: Fake) -> SqsSink {
    let app = Router::new().route("/", post(handle)).with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .endpoint_url(format!("http://{addr}"))
        .build();
    SqsSink::new(
        aws_sdk_sqs::Client::from_conf(conf),
        format!("http://{addr}/123/q.fifo"),
    )
}

fn envelopes(n: usize) -> Vec<QueuedEnvelope> {
    (0..n)
        .map(|i| QueuedEnvelope {
            group_id: format!("g{i}"),
            dedupe_id: format!("d{i}"),
            body: format!("{{\"n\":{i}}}"),
            label: format!("e{i}"),
        })
        .collect()
}

#[tokio::test]
async fn a_failed_entry_is_sent_again_alone_until_it_goes_through() {
    let fake = Fake {
        fail_first: Arc::new(Mutex::new(2)),
        ..Default::default()
    };
    let s = sink(fake.clone()).await;
    s.send_all(&envelopes(3))
        .await
        .expect("all queued in the end");
    let calls = fake.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            vec!["0".to_string(), "1".into(), "2".into()],
            vec!["1".into()],
            vec!["1".into()]
        ]
    );
}

#[tokio::test]
async fn a_persistent_failure_is_an_error_not_a_silent_success() {
    let fake = Fake {
        fail_first: Arc::new(Mutex::new(100)),
        ..Default::default()
    };
    let s = sink(fake.clone()).await;
    let err = s.send_all(&envelopes(12)).await.unwrap_err();
    assert!(
        matches!(
            err,
            // Entry ids are positions in the whole list: "1" is in the first batch of 10.
            QueueError::Partial {
                failed: 1,
                total: 10,
                ..
            }
        ),
        "{err:?}"
    );
    // Batches of 10: two batches; the failing entry of the first retried up to the limit.
    let calls = fake.calls.lock().unwrap().clone();
    assert!(
        calls.iter().filter(|c| c.len() == 1 && c[0] == "1").count() >= 4,
        "{calls:?}"
    );
}

#[tokio::test]
async fn our_own_fault_is_not_retried() {
    let fake = Fake {
        fail_first: Arc::new(Mutex::new(100)),
        sender_fault: true,
        ..Default::default()
    };
    let s = sink(fake.clone()).await;
    let err = s.send_all(&envelopes(3)).await.unwrap_err();
    // The others were queued; the refused one is named, for the caller to keep elsewhere.
    match err {
        QueueError::Refused { refused } => {
            assert_eq!(refused.len(), 1);
            assert_eq!(refused[0].index, 1);
            assert!(refused[0].reason.contains("InvalidParameterValue"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fake.calls.lock().unwrap().len(),
        1,
        "a sender fault is final"
    );
}
