//! Harness of the integration tests: one local stack per test (unique resource prefix) on the
//! moto server that `make test` starts (`AWS_ENDPOINT_URL`).
use std::future::Future;
use std::time::{Duration, Instant};

use local_runner::{Stack, StackOptions};
use serde_json::{Value, json};
use shared::store::Store;

pub use local_runner;

pub mod bot_helpers;
pub mod browser;
pub use fakes::ai as fake_ai;
pub use fakes::graph as fake_graph;

/// Everything every stack of this test binary logs (all levels), captured so tests can assert
/// what never appears in a log line.
pub fn captured_logs() -> String {
    let buf = LOGS.get_or_init(Default::default);
    String::from_utf8_lossy(&buf.lock().unwrap()).to_string()
}

static LOGS: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
    std::sync::OnceLock::new();

struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber (once per test binary; JSON lines, as under Lambda).
pub fn capture_logs() {
    let buf = LOGS.get_or_init(Default::default).clone();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || Capture(buf.clone()))
        .try_init();
}

pub fn unique_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

pub async fn start() -> TestStack {
    start_with(StackOptions::new(unique_prefix())).await
}

/// Options of a stack whose Graph API is `graph` (a fake Meta on loopback, also allowed to
/// serve media), each Graph call bounded by `timeout_ms`.
pub fn options_with_graph(graph: &fake_graph::FakeGraph, timeout_ms: u64) -> StackOptions {
    let mut opts = StackOptions::new(unique_prefix()).with_fake_graph(graph);
    opts.env_overrides
        .insert("GRAPH_API_TIMEOUT_MS".into(), timeout_ms.to_string());
    opts
}

/// A stack talking to a fresh fake Graph API.
pub async fn start_with_graph(timeout_ms: u64) -> (TestStack, fake_graph::FakeGraph) {
    let graph = fake_graph::FakeGraph::start().await;
    let t = start_with(options_with_graph(&graph, timeout_ms)).await;
    (t, graph)
}

pub async fn start_with(opts: StackOptions) -> TestStack {
    capture_logs();
    let stack = Stack::start(opts)
        .await
        .unwrap_or_else(|e| panic!("local stack did not start: {e}"));
    TestStack {
        http: reqwest::Client::new(),
        stack,
    }
}

pub struct TestStack {
    pub http: reqwest::Client,
    pub stack: Stack,
}

pub fn fixture(name: &str) -> Vec<u8> {
    let p = format!("{}/fixtures/meta/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// A `messages` notification with one text message.
pub fn text_payload(
    pnid: &str,
    from: &str,
    name: &str,
    wamid: &str,
    ts: i64,
    body: &str,
) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
            "contacts": [{"profile": {"name": name}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": ts.to_string(), "type": "text", "text": {"body": body}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

/// A `messages` notification with several (from, wamid, ts, body) text messages in one change.
pub fn batch_payload(pnid: &str, msgs: &[(&str, &str, i64, &str)]) -> Vec<u8> {
    let contacts: Vec<Value> = msgs
        .iter()
        .map(|(f, ..)| json!({"profile": {"name": format!("User {f}")}, "wa_id": f}))
        .collect();
    let messages: Vec<Value> = msgs
        .iter()
        .map(|(f, w, ts, b)| json!({"from": f, "id": w, "timestamp": ts.to_string(), "type": "text", "text": {"body": b}}))
        .collect();
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
        "contacts": contacts, "messages": messages
    }}]}]})
    .to_string()
    .into_bytes()
}

pub fn status_payload(pnid: &str, wamid: &str, status: &str, ts: i64, recipient: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
        "statuses": [{"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": recipient,
            "biz_opaque_callback_data": "our-msg-1",
            "pricing": {"billable": true, "pricing_model": "PMP", "category": "utility", "type": "regular"}}]
    }}]}]})
    .to_string()
    .into_bytes()
}

pub fn echo_payload(pnid: &str, wamid: &str, to: &str, ts: i64, body: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "smb_message_echoes", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
        "message_echoes": [{"from": "15550783881", "to": to, "id": wamid, "timestamp": ts.to_string(), "type": "text", "text": {"body": body}}]
    }}]}]})
    .to_string()
    .into_bytes()
}

impl TestStack {
    pub fn info(&self) -> &local_runner::StackInfo {
        &self.stack.info
    }

    pub fn store(&self) -> Store {
        Store::new(
            aws_sdk_dynamodb::Client::new(&self.stack.aws),
            &self.info().resource("MainTable").name,
            4,
        )
    }

    /// The one envelope the webhook queues for a Meta payload with one message (as split by
    /// the same code, received now).
    pub fn drain_envelope_of(&self, body: &[u8]) -> Option<shared::envelope::QueuedEnvelope> {
        let n = shared::meta::webhook::parse_notification(body).ok()?;
        let text = std::str::from_utf8(body).ok()?;
        let mut split = shared::envelope::split(&n, text, chrono::Utc::now().timestamp_millis());
        (split.queued.len() == 1).then(|| split.queued.remove(0))
    }

    pub fn stack_ddb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.stack.aws)
    }

    /// An update of the item (`pk`, `sk`) of the stack's table behind the system's back (a
    /// crash midway, a table from an older version): the caller adds the expression.
    pub fn update_item(
        &self,
        pk: impl Into<String>,
        sk: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.stack_ddb()
            .update_item()
            .table_name(&self.info().resource("MainTable").name)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.stack.aws)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::new(&self.stack.aws)
    }

    /// POSTs a body to the webhook, signed with the dev app secret.
    pub async fn post_signed(&self, body: &[u8]) -> (u16, String) {
        let sig = shared::meta::signature::sign(self.info().app_secret.as_bytes(), body);
        self.post_raw(body.to_vec(), Some(&sig)).await
    }

    pub async fn post_raw(&self, body: Vec<u8>, signature: Option<&str>) -> (u16, String) {
        let mut req = self
            .http
            .post(&self.info().webhook_url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = signature {
            req = req.header("x-hub-signature-256", s);
        }
        let resp = req.send().await.expect("webhook reachable");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }

    pub fn token(&self, perms: &[&str]) -> String {
        self.info().mint_token("7", false, perms)
    }

    pub fn admin_token(&self) -> String {
        self.info().mint_token("1", true, &[])
    }

    /// A staff API call; returns (status, JSON body).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{}", self.info().http_base, path);
        let mut req = self.http.request(method.parse().expect("method"), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API reachable");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Loads the WABA's templates from (fake) Meta through the staff API, as a user with
    /// `whatsapp_template:load_template` would.
    /// Registers the business number `pnid` (the fixtures' display number), as an admin would:
    /// the first number registered is the default sender.
    pub async fn register_number(&self, pnid: &str) {
        let (s, v) = self
            .api(
                "POST",
                "/api/v1/numbers",
                Some(&self.admin_token()),
                Some(
                    json!({"phone_number_id": pnid, "display_phone_number": "+1 555-078-3881",
                             "verified_name": "Acme"}),
                ),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    /// Saves an event-notification mapping as an admin would; answers the stored mapping.
    pub async fn map_notification(&self, body: Value) -> Value {
        let (s, v) = self
            .api(
                "POST",
                "/api/v1/notifications/mappings",
                Some(&self.admin_token()),
                Some(body),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v
    }

    pub async fn load_templates(&self) {
        let (s, v) = self
            .api(
                "POST",
                "/api/v1/templates/load",
                Some(&self.token(&["whatsapp_template:load_template"])),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }

    /// The customer `wa_id` writes (`wamid`), then stops marketing messages (Meta's
    /// `user_preferences` fixture, for 16505551234); returns once the opt-out is stored.
    pub async fn opted_out_customer(&self, pnid: &str, wa_id: &str, wamid: &str) {
        self.post_signed(&text_payload(
            pnid,
            wa_id,
            "Sheena",
            wamid,
            chrono::Utc::now().timestamp(),
            "hi",
        ))
        .await;
        self.post_signed(&fixture("user_preferences_stop.json"))
            .await;
        let store = self.store();
        let stopped = eventually(Duration::from_secs(20), || async {
            store
                .customer_by_alias(shared::store::keys::AliasKind::WaId, wa_id)
                .await
                .unwrap()
                .filter(|c| c.marketing_opt_out)
        })
        .await;
        assert!(stopped.is_some(), "{wa_id} did not opt out");
    }

    pub async fn chat_get(&self, path: &str) -> Value {
        let (s, v) = self
            .api(
                "GET",
                path,
                Some(&self.token(&["whatsapp_chat:view"])),
                None,
            )
            .await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }

    /// Conversations of the inbox (all rel_types).
    pub async fn conversations(&self) -> Vec<Value> {
        self.chat_get("/api/v1/conversations?limit=100").await["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn messages(&self, conversation_id: &str) -> Vec<Value> {
        self.chat_get(&format!(
            "/api/v1/conversations/{conversation_id}/messages?limit=200"
        ))
        .await["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the inbox holds a conversation with this customer wa_id.
    pub async fn conversation_of(&self, wa_id: &str) -> Value {
        eventually(Duration::from_secs(20), || async {
            self.conversations()
                .await
                .into_iter()
                .find(|c| c["customer"]["wa_id"] == wa_id)
        })
        .await
        .unwrap_or_else(|| panic!("no conversation for {wa_id}"))
    }

    pub async fn queue_depth(&self, logical_id: &str) -> (i64, i64) {
        let url = self
            .info()
            .resource(logical_id)
            .url
            .clone()
            .expect("queue url");
        let a = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        let get = |k: &str| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::from(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (
            get("ApproximateNumberOfMessages"),
            get("ApproximateNumberOfMessagesNotVisible"),
        )
    }

    /// Keys of the objects stored under a prefix of the media bucket.
    pub async fn archived(&self, prefix: &str) -> Vec<String> {
        let out = self
            .s3()
            .list_objects_v2()
            .bucket(&self.info().resource("MediaBucket").name)
            .prefix(prefix)
            .send()
            .await
            .expect("list objects");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    pub async fn archived_body(&self, key: &str) -> String {
        let o = self
            .s3()
            .get_object()
            .bucket(&self.info().resource("MediaBucket").name)
            .key(key)
            .send()
            .await
            .expect("get object");
        String::from_utf8(o.body.collect().await.expect("body").into_bytes().to_vec())
            .expect("utf8")
    }

    /// A queue subscribed (by a rule on the CRM bus) to the events we publish, for assertions.
    pub async fn tap_our_events(&self) -> String {
        let sqs = self.sqs();
        let eb = aws_sdk_eventbridge::Client::new(&self.stack.aws);
        let name = format!("{}-tap", unique_prefix());
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .expect("tap queue")
            .queue_url
            .unwrap_or_default();
        let arn = format!(
            "arn:aws:sqs:{}:{}:{name}",
            local_runner::provision::REGION,
            local_runner::provision::ACCOUNT
        );
        let bus = self.info().resource("CrmBus").name.clone();
        eb.put_rule()
            .name(&name)
            .event_bus_name(&bus)
            .event_pattern(json!({"source": ["whatsapp"]}).to_string())
            .send()
            .await
            .expect("tap rule");
        eb.put_targets()
            .rule(&name)
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("tap")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("tap target");
        url
    }

    /// Every event body received on a tap queue within `wait`.
    pub async fn drain(&self, url: &str, wait: Duration) -> Vec<Value> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            let r = self
                .sqs()
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            for m in r.messages.unwrap_or_default() {
                out.push(serde_json::from_str(m.body().unwrap_or("null")).expect("event JSON"));
                self.sqs()
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        out
    }

    pub async fn put_crm_event(&self, detail_type: &str, detail: Value) {
        let out = aws_sdk_eventbridge::Client::new(&self.stack.aws)
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&self.info().resource("CrmBus").name)
                    .source("crm")
                    .detail_type(detail_type)
                    .detail(detail.to_string())
                    .build(),
            )
            .send()
            .await
            .expect("put events");
        assert_eq!(out.failed_entry_count(), 0);
    }
}

/// Polls `f` until it returns `Some`, or `None` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The WARN and ERROR lines logged so far that mention `needle` (what a test prints when what
/// it waited for never came).
pub fn logged_problems(needle: &str) -> String {
    captured_logs()
        .lines()
        .filter(|l| l.contains(needle) && (l.contains("\"WARN\"") || l.contains("\"ERROR\"")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lets queued work settle: used before asserting that something did NOT happen.
pub async fn settle() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}
