//! `EventBridgeBus` against a fake EventBridge endpoint: `PutEvents` answers 200 with
//! per-entry failures; the failed entries are retried alone, and persistent failures surface.
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use shared::crm_events::{BusError, EventBridgeBus, EventBus, OutboundEvent};

#[derive(Clone, Default)]
struct Fake {
    /// `detail-type`s of each PutEvents call.
    calls: Arc<Mutex<Vec<Vec<String>>>>,
    /// How many calls fail the entry whose detail-type is `flaky`.
    fail_flaky: Arc<Mutex<usize>>,
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
    assert_eq!(target, "AWSEvents.PutEvents");
    let req: Value = serde_json::from_slice(&body).unwrap();
    let entries = req["Entries"].as_array().unwrap();
    let types: Vec<String> = entries
        .iter()
        .map(|e| e["DetailType"].as_str().unwrap().to_string())
        .collect();
    for e in entries {
        assert_eq!(e["Source"], "whatsapp");
        assert_eq!(e["EventBusName"], "crm-bus");
        let detail: Value = serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap();
        assert!(
            detail["event_id"].is_string(),
            "every detail carries its event_id"
        );
    }
    f.calls.lock().unwrap().push(types.clone());
    let mut failing = f.fail_flaky.lock().unwrap();
    let mut failed = 0;
    let results: Vec<Value> = types
        .iter()
        .map(|t| {
            if t == "flaky" && *failing > 0 {
                failed += 1;
                json!({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            } else {
                json!({"EventId": format!("ev-{t}")})
            }
        })
        .collect();
    if *failing > 0 {
        *failing -= 1;
    }
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    (
        axum::http::StatusCode::OK,
        h,
        json!({"FailedEntryCount": failed, "Entries": results}).to_string(),
    )
}

async fn bus(fake: Fake) -> EventBridgeBus {
    let app = Router::new().route("/", post(handle)).with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let conf = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .endpoint_url(format!("http://{addr}"))
        .build();
    EventBridgeBus::new(aws_sdk_eventbridge::Client::from_conf(conf), "crm-bus")
}

fn events(types: &[&str]) -> Vec<OutboundEvent> {
    types
        .iter()
        .map(|t| OutboundEvent {
            detail_type: t.to_string(),
            detail: json!({"event_id": format!("id-{t}")}),
        })
        .collect()
}

#[tokio::test]
async fn a_failed_entry_is_put_again_alone() {
    let fake = Fake {
        fail_flaky: Arc::new(Mutex::new(2)),
        ..Default::default()
    };
    let b = bus(fake.clone()).await;
    b.publish(&events(&["lead.created", "flaky", "ticket.requested"]))
        .await
        .expect("published in the end");
    let calls = fake.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            vec![
                "lead.created".to_string(),
                "flaky".into(),
                "ticket.requested".into()
            ],
            vec!["flaky".into()],
            vec!["flaky".into()]
        ]
    );
}

#[tokio::test]
async fn a_persistent_failure_is_an_error() {
    let fake = Fake {
        fail_flaky: Arc::new(Mutex::new(100)),
        ..Default::default()
    };
    let b = bus(fake.clone()).await;
    let err = b.publish(&events(&["ok", "flaky"])).await.unwrap_err();
    assert!(matches!(err, BusError::Rejected(1, _)), "{err:?}");
    assert_eq!(
        fake.calls.lock().unwrap().len(),
        5,
        "retried up to the limit"
    );
}
