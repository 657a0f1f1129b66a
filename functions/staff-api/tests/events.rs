//! The staff API Lambda's sample, `events/staff-list-conversations.json`, read as the Lambda
//! runtime reads it and routed through the Lambda service (stage stripped, token checked), with a
//! fake secret source. Serving the list itself needs DynamoDB: see tests/staff_api.rs.
use std::sync::Arc;

use axum::body::Body;
use http::{Response, StatusCode, header};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::{Value, json};
use shared::auth::{DevKeyPair, StaffClaims, generate_ed25519, sign_ed25519};
use shared::phone::PhoneNormalizer;
use shared::secrets::{CachedSecret, SecretError, SecretSource};
use shared::store::Store;
use staff_api::{StaffApp, lambda};
use tower::ServiceExt;

const LIST_EVENT: &str = include_str!("../../../events/staff-list-conversations.json");
const PLACEHOLDER: &str = "Bearer REPLACE_WITH_A_TOKEN_FROM_make_token";
const ISS: &str = "crm";
const AUD: &str = "whatsapp-api";

struct FakeSecrets(String);

#[async_trait::async_trait]
impl SecretSource for FakeSecrets {
    async fn secret_string(&self, _id: &str) -> Result<String, SecretError> {
        Ok(self.0.clone())
    }
}

fn app(key: &DevKeyPair) -> Arc<StaffApp> {
    let pk = key.public_config();
    let secret = json!({
        "cursor_key": "test-cursor-key-of-at-least-32-bytes!",
        "jwt_keys": [{"kid": pk.kid, "alg": pk.alg, "pem": pk.pem}],
    });
    // Never called by these tests: every request stops at authentication.
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build(),
    );
    Arc::new(StaffApp::new(
        Store::new(dynamo, "unused", 4),
        PhoneNormalizer::new("US").unwrap(),
        Arc::new(CachedSecret::new(
            Arc::new(FakeSecrets(secret.to_string())),
            "api-secret",
            std::time::Duration::from_secs(300),
        )),
        ISS,
        AUD,
        || 1_749_416_410_000,
    ))
}

fn lambda_request(event: &str) -> lambda_http::Request {
    lambda_http::request::from_str(event).expect("sample is an API Gateway v2 event")
}

async fn call(app: Arc<StaffApp>, req: lambda_http::Request) -> (StatusCode, Value) {
    let resp: Response<Body> = lambda::service(app).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[test]
fn sample_is_an_api_gateway_v2_event() {
    let ev: ApiGatewayV2httpRequest = serde_json::from_str(LIST_EVENT).unwrap();
    assert_eq!(ev.version.as_deref(), Some("2.0"));
    assert_eq!(ev.route_key.as_deref(), Some("ANY /api/v1/{proxy+}"));
    assert_eq!(ev.request_context.http.method, http::Method::GET);
    assert_eq!(ev.raw_path.as_deref(), Some("/prod/api/v1/conversations"));
    assert_eq!(ev.request_context.stage.as_deref(), Some("prod"));
    assert_eq!(ev.raw_query_string.as_deref(), Some("rel_type=leads"));
    assert_eq!(ev.query_string_parameters.first("rel_type"), Some("leads"));
    assert_eq!(
        ev.path_parameters.get("proxy").map(String::as_str),
        Some("conversations")
    );
    assert_eq!(ev.headers[header::AUTHORIZATION], PLACEHOLDER);
}

#[test]
fn lambda_sees_the_route_without_the_stage() {
    let req = lambda::strip_stage(lambda_request(LIST_EVENT));
    assert_eq!(req.method(), http::Method::GET);
    assert_eq!(req.uri().path(), "/api/v1/conversations");
    assert_eq!(req.uri().query(), Some("rel_type=leads"));
    assert_eq!(req.headers()[header::AUTHORIZATION], PLACEHOLDER);
}

#[tokio::test]
async fn placeholder_token_is_rejected_with_401() {
    let key = generate_ed25519("test-key").unwrap();
    let (status, body) = call(app(&key), lambda_request(LIST_EVENT)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn token_without_chat_view_is_rejected_with_403() {
    let key = generate_ed25519("test-key").unwrap();
    let claims = StaffClaims::new("7", false, &["whatsapp_bot:view"], ISS, AUD, 600);
    let token = sign_ed25519(&key.kid, &key.private_pem, &claims).unwrap();
    let event = LIST_EVENT.replace(PLACEHOLDER, &format!("Bearer {token}"));
    let (status, body) = call(app(&key), lambda_request(&event)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}
