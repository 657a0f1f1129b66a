//! The webhook Lambda fed with the samples of `events/`, exactly as the Lambda runtime would
//! deliver them (API Gateway HTTP API, payload 2.0, named stage `prod`), with in-memory fakes of
//! the secret source, the queue and the archive: no AWS involved.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::{Response, StatusCode};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use shared::archive::{ArchiveError, RawArchive};
use shared::envelope::{Envelope, EnvelopeKind, QueuedEnvelope};
use shared::meta::signature;
use shared::meta::webhook::RawMessage;
use shared::queue::{EnvelopeSink, QueueError};
use shared::secrets::{CachedSecret, SecretError, SecretSource};
use tower::ServiceExt;
use webhook::{WebhookApp, lambda, router};

const VERIFY_EVENT: &str = include_str!("../../../events/webhook-verify.json");
const POST_EVENT: &str = include_str!("../../../events/webhook-post.json");
const META_BODY: &str = include_str!("../../../events/webhook-text.json");
const WAMID: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";

/// Counts its reads (Secrets Manager calls).
#[derive(Default)]
struct FakeSecrets(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl SecretSource for FakeSecrets {
    async fn secret_string(&self, _id: &str) -> Result<String, SecretError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(r#"{"app_secret":"dev-app-secret","verify_token":"dev-verify-token"}"#.into())
    }
}

#[derive(Default)]
struct RecordingSink(Mutex<Vec<QueuedEnvelope>>);

#[async_trait::async_trait]
impl EnvelopeSink for RecordingSink {
    async fn send_all(&self, envelopes: &[QueuedEnvelope]) -> Result<(), QueueError> {
        self.0.lock().unwrap().extend_from_slice(envelopes);
        Ok(())
    }
}

#[derive(Default)]
struct RecordingArchive(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl RawArchive for RecordingArchive {
    async fn archive(
        &self,
        prefix: &str,
        reason: &str,
        _body: &[u8],
    ) -> Result<String, ArchiveError> {
        let key = format!("{prefix}/{reason}");
        self.0.lock().unwrap().push(key.clone());
        Ok(key)
    }
}

struct Harness {
    app: Arc<WebhookApp>,
    secrets: Arc<FakeSecrets>,
    sink: Arc<RecordingSink>,
    archive: Arc<RecordingArchive>,
}

fn harness() -> Harness {
    let sink = Arc::new(RecordingSink::default());
    let archive = Arc::new(RecordingArchive::default());
    let secrets = Arc::new(FakeSecrets::default());
    let app = Arc::new(WebhookApp {
        secrets: Arc::new(CachedSecret::new(
            secrets.clone(),
            "meta-secret",
            Duration::from_secs(300),
        )),
        sink: sink.clone(),
        archive: archive.clone(),
    });
    Harness {
        app,
        secrets,
        sink,
        archive,
    }
}

/// What `lambda_http::run` does with the invocation payload.
fn lambda_request(event: &str) -> lambda_http::Request {
    lambda_http::request::from_str(event).expect("sample is an API Gateway v2 event")
}

async fn call(h: &Harness, req: lambda_http::Request) -> (StatusCode, String) {
    let resp: Response<Body> = lambda::service(h.app.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[test]
fn samples_are_api_gateway_v2_events() {
    for (name, text) in [("verify", VERIFY_EVENT), ("post", POST_EVENT)] {
        let ev: ApiGatewayV2httpRequest =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ev.version.as_deref(), Some("2.0"), "{name}");
        assert_eq!(
            ev.raw_path.as_deref(),
            Some("/prod/whatsapp/webhook/getdata")
        );
        assert_eq!(ev.request_context.stage.as_deref(), Some("prod"));
        assert!(!ev.is_base64_encoded, "{name}");
    }
    let verify: ApiGatewayV2httpRequest = serde_json::from_str(VERIFY_EVENT).unwrap();
    assert_eq!(verify.request_context.http.method, http::Method::GET);
    assert_eq!(
        verify.raw_query_string.as_deref(),
        Some("hub.mode=subscribe&hub.verify_token=dev-verify-token&hub.challenge=1158201444")
    );
    assert_eq!(
        verify.query_string_parameters.first("hub.challenge"),
        Some("1158201444")
    );

    let post: ApiGatewayV2httpRequest = serde_json::from_str(POST_EVENT).unwrap();
    assert_eq!(post.request_context.http.method, http::Method::POST);
    assert_eq!(
        post.body.as_deref(),
        Some(META_BODY),
        "body is events/webhook-text.json"
    );
    let sig = post.headers["x-hub-signature-256"].to_str().unwrap();
    assert_eq!(
        sig,
        signature::sign(b"dev-app-secret", META_BODY.as_bytes())
    );
    assert!(signature::verify(b"dev-app-secret", META_BODY.as_bytes(), Some(sig)).is_ok());
}

#[tokio::test]
async fn verification_get_echoes_the_challenge() {
    let h = harness();
    let (status, body) = call(&h, lambda_request(VERIFY_EVENT)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "1158201444");
    assert!(h.sink.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn verification_with_a_wrong_token_is_refused() {
    let h = harness();
    let event = VERIFY_EVENT.replace("dev-verify-token", "not-the-token");
    let (status, _) = call(&h, lambda_request(&event)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn signed_post_queues_one_envelope_per_message() {
    let h = harness();
    let (status, body) = call(&h, lambda_request(POST_EVENT)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "EVENT_RECEIVED");
    let queued = h.sink.0.lock().unwrap().clone();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].label, WAMID);
    let env = Envelope::from_body(&queued[0].body).unwrap();
    assert_eq!(env.kind, EnvelopeKind::Message);
    assert_eq!(env.waba_id, "102290129340398");
    assert_eq!(env.phone_number_id.as_deref(), Some("106540352242922"));
    assert_eq!(
        env.contact.as_ref().and_then(|c| c.wa_id.as_deref()),
        Some("16505551234")
    );
    assert_eq!(RawMessage(env.item).parse().unwrap().id, WAMID);
    assert!(h.archive.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn post_with_a_wrong_signature_queues_nothing() {
    let h = harness();
    let good = signature::sign(b"dev-app-secret", META_BODY.as_bytes());
    let bad = signature::sign(b"another-secret", META_BODY.as_bytes());
    let event = POST_EVENT.replace(&good, &bad);
    assert_ne!(event, POST_EVENT);
    let (status, _) = call(&h, lambda_request(&event)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(h.sink.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bad_requests_never_drive_secrets_manager_calls() {
    let h = harness();
    let good = signature::sign(b"dev-app-secret", META_BODY.as_bytes());
    let bad = signature::sign(b"another-secret", META_BODY.as_bytes());
    let bad_post = POST_EVENT.replace(&good, &bad);
    let bad_verify = VERIFY_EVENT.replace("dev-verify-token", "not-the-token");
    for _ in 0..25 {
        let (status, _) = call(&h, lambda_request(&bad_post)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = call(&h, lambda_request(&bad_verify)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // The first read, and one forced re-read (a rotation may not be cached yet) per minute.
    assert_eq!(h.secrets.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Good requests still pass.
    let (status, _) = call(&h, lambda_request(POST_EVENT)).await;
    assert_eq!(status, StatusCode::OK);
}

/// A named stage prefixes `rawPath`, and lambda_http keeps it even with
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`: the bare router does not see its route.
#[tokio::test]
async fn the_stage_prefix_is_what_lambda_service_strips() {
    let req = lambda_request(VERIFY_EVENT);
    assert_eq!(req.uri().path(), "/prod/whatsapp/webhook/getdata");
    let h = harness();
    let resp = router(h.app.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let stripped = lambda::strip_stage(lambda_request(VERIFY_EVENT));
    assert_eq!(stripped.uri().path(), "/whatsapp/webhook/getdata");
    assert_eq!(
        stripped.uri().query(),
        Some("hub.mode=subscribe&hub.verify_token=dev-verify-token&hub.challenge=1158201444")
    );
}

#[tokio::test]
async fn default_stage_events_route_too() {
    let event = VERIFY_EVENT
        .replace("\"/prod/whatsapp/", "\"/whatsapp/")
        .replace("\"stage\": \"prod\"", "\"stage\": \"$default\"");
    let req = lambda_request(&event);
    assert_eq!(req.uri().path(), "/whatsapp/webhook/getdata");
    let (status, body) = call(&harness(), req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "1158201444");
}
