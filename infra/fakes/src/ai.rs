//! A local stand-in for OpenAI's Chat Completions API and Google's Gemini `generateContent`: one
//! server, both providers (OpenAI under `/openai/v1`, Gemini under `/gemini/v1beta`). It records
//! every request, checks it against the shapes the providers document (auth header, roles,
//! structured-output schema rules), and answers with scripted responses; with nothing scripted
//! it echoes the customer's last message as a JSON answer.
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

/// Which API a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Gemini,
}

#[derive(Debug, Clone)]
pub struct AiRequest {
    pub api: Api,
    /// The key the request carried (bearer token or `x-goog-api-key`).
    pub api_key: String,
    /// The model (OpenAI: `model`; Gemini: from the path).
    pub model: String,
    pub body: Value,
}

impl AiRequest {
    /// The text of every customer turn, oldest first.
    pub fn user_texts(&self) -> Vec<String> {
        match self.api {
            Api::OpenAi => self.body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["role"] == "user")
                .filter_map(|m| m["content"].as_str().map(str::to_string))
                .collect(),
            Api::Gemini => self.body["contents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["role"] == "user")
                .map(|m| {
                    m["parts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["text"].as_str())
                        .collect::<String>()
                })
                .collect(),
        }
    }

    /// The system text (OpenAI's system message, Gemini's `systemInstruction`).
    pub fn system(&self) -> String {
        match self.api {
            Api::OpenAi => self.body["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Api::Gemini => self.body["systemInstruction"]["parts"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The model's text (usually the JSON answer).
    Text(String),
    /// The provider's error JSON with this HTTP status.
    Error(u16),
    /// Answer `Text` only after this delay (longer than the caller's timeout: a timeout).
    After(Duration, String),
}

#[derive(Default)]
struct Inner {
    requests: Vec<AiRequest>,
    script: VecDeque<Reply>,
    problems: Vec<String>,
}

#[derive(Clone, Default)]
pub struct FakeAi {
    inner: Arc<Mutex<Inner>>,
    pub base_url: String,
}

impl FakeAi {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> Self {
        let mut fake = FakeAi::default();
        let app = Router::new()
            .route("/openai/v1/chat/completions", post(openai))
            .route("/gemini/v1beta/models/{call}", post(gemini))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake.base_url = format!("http://{addr}");
        fake
    }

    /// `OPENAI_BASE_URL` for this fake.
    pub fn openai_base_url(&self) -> String {
        format!("{}/openai/v1", self.base_url)
    }

    /// `GEMINI_BASE_URL` for this fake.
    pub fn gemini_base_url(&self) -> String {
        format!("{}/gemini/v1beta", self.base_url)
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    pub fn requests(&self) -> Vec<AiRequest> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Requests that did not have the documented shape.
    pub fn problems(&self) -> Vec<String> {
        self.inner.lock().unwrap().problems.clone()
    }
}

/// The answer JSON the fake gives when nothing is scripted.
pub fn echo(last_user: &str) -> String {
    json!({"reply": format!("(fake AI) You wrote: {last_user}"), "ticket": null}).to_string()
}

fn next(fake: &FakeAi, req: AiRequest, problems: Vec<String>) -> Reply {
    let mut i = fake.inner.lock().unwrap();
    let default = echo(req.user_texts().last().map(String::as_str).unwrap_or(""));
    i.problems.extend(problems);
    i.requests.push(req);
    i.script.pop_front().unwrap_or(Reply::Text(default))
}

fn is_string(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// OpenAI's strict structured outputs: every object lists all its properties as required and
/// forbids others; `anyOf` branches follow the same rule.
fn check_strict_schema(path: &str, s: &Value, out: &mut Vec<String>) {
    if let Some(branches) = s.get("anyOf").and_then(Value::as_array) {
        for (n, b) in branches.iter().enumerate() {
            check_strict_schema(&format!("{path}.anyOf[{n}]"), b, out);
        }
        return;
    }
    let ty = &s["type"];
    let is_object = ty == "object" || ty.as_array().is_some_and(|a| a.contains(&json!("object")));
    if is_object {
        if s["additionalProperties"] != json!(false) {
            out.push(format!(
                "{path}: strict schema object without additionalProperties: false"
            ));
        }
        let props: Vec<&String> = s["properties"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        let required: Vec<&str> = s["required"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for p in &props {
            if !required.contains(&p.as_str()) {
                out.push(format!(
                    "{path}: strict schema property {p} is not required"
                ));
            }
        }
        if let Some(m) = s["properties"].as_object() {
            for (k, v) in m {
                check_strict_schema(&format!("{path}.{k}"), v, out);
            }
        }
    } else if ty.is_null() {
        out.push(format!("{path}: schema without type"));
    }
}

fn openai_problems(headers: &HeaderMap, body: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if !headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7)
    {
        p.push("openai: no bearer key".into());
    }
    const KNOWN: [&str; 12] = [
        "model",
        "messages",
        "max_completion_tokens",
        "max_tokens",
        "n",
        "response_format",
        "temperature",
        "top_p",
        "user",
        "store",
        "metadata",
        "seed",
    ];
    if let Some(m) = body.as_object() {
        for k in m.keys() {
            if !KNOWN.contains(&k.as_str()) {
                p.push(format!("openai: unknown field {k}"));
            }
        }
    } else {
        p.push("openai: body is not an object".into());
    }
    if !is_string(&body["model"]) {
        p.push("openai: no model".into());
    }
    match body["messages"].as_array() {
        Some(msgs) if !msgs.is_empty() => {
            for (n, m) in msgs.iter().enumerate() {
                let role = m["role"].as_str().unwrap_or_default();
                if !["system", "developer", "user", "assistant"].contains(&role) {
                    p.push(format!("openai: messages[{n}].role {role:?}"));
                }
                if !m["content"].is_string() {
                    p.push(format!("openai: messages[{n}].content is not a string"));
                }
            }
            if msgs.last().is_some_and(|m| m["role"] != "user") {
                p.push("openai: the last message is not the user's".into());
            }
        }
        _ => p.push("openai: no messages".into()),
    }
    for k in ["max_completion_tokens", "n"] {
        if !body[k].is_null() && body[k].as_u64().is_none_or(|n| n == 0) {
            p.push(format!("openai: {k} is not a positive integer"));
        }
    }
    let rf = &body["response_format"];
    if !rf.is_null() {
        match rf["type"].as_str() {
            Some("text" | "json_object") => {}
            Some("json_schema") => {
                let js = &rf["json_schema"];
                let name_ok = js["name"].as_str().is_some_and(|n| {
                    !n.is_empty()
                        && n.len() <= 64
                        && n.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
                if !name_ok {
                    p.push(
                        "openai: json_schema.name must be a-z, A-Z, 0-9, _ or -, at most 64".into(),
                    );
                }
                if !js["schema"].is_object() {
                    p.push("openai: json_schema.schema is not an object".into());
                } else if js["strict"] == json!(true) {
                    check_strict_schema("openai: schema", &js["schema"], &mut p);
                }
            }
            other => p.push(format!("openai: response_format.type {other:?}")),
        }
    }
    p
}

const GEMINI_TYPES: [&str; 6] = ["STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"];

fn check_gemini_schema(path: &str, s: &Value, out: &mut Vec<String>) {
    let ty = s["type"].as_str().unwrap_or_default();
    if !GEMINI_TYPES.contains(&ty) {
        out.push(format!(
            "{path}: type {ty:?} is not one of {GEMINI_TYPES:?}"
        ));
    }
    if let Some(m) = s.as_object() {
        for k in m.keys() {
            if ![
                "type",
                "format",
                "description",
                "nullable",
                "enum",
                "properties",
                "required",
                "items",
                "propertyOrdering",
                "minItems",
                "maxItems",
                "minimum",
                "maximum",
            ]
            .contains(&k.as_str())
            {
                out.push(format!("{path}: {k} is not a Gemini schema field"));
            }
        }
    }
    if let Some(props) = s["properties"].as_object() {
        for r in s["required"].as_array().into_iter().flatten() {
            if !r.as_str().is_some_and(|r| props.contains_key(r)) {
                out.push(format!("{path}: required {r} is not a property"));
            }
        }
        for (k, v) in props {
            check_gemini_schema(&format!("{path}.{k}"), v, out);
        }
    }
    if !s["items"].is_null() {
        check_gemini_schema(&format!("{path}[]"), &s["items"], out);
    }
}

fn gemini_problems(
    call: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Value,
) -> Vec<String> {
    let mut p = Vec::new();
    if !call.ends_with(":generateContent") || call.len() <= ":generateContent".len() {
        p.push(format!(
            "gemini: path models/{call} is not models/{{model}}:generateContent"
        ));
    }
    if query.is_some_and(|q| q.contains("key=")) {
        p.push("gemini: the key is in the URL (use the x-goog-api-key header)".into());
    }
    if headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .is_none_or(str::is_empty)
    {
        p.push("gemini: no x-goog-api-key header".into());
    }
    if let Some(m) = body.as_object() {
        for k in m.keys() {
            if ![
                "contents",
                "systemInstruction",
                "generationConfig",
                "safetySettings",
                "tools",
                "toolConfig",
                "cachedContent",
            ]
            .contains(&k.as_str())
            {
                p.push(format!("gemini: unknown field {k}"));
            }
        }
    }
    match body["contents"].as_array() {
        Some(c) if !c.is_empty() => {
            for (n, m) in c.iter().enumerate() {
                let role = m["role"].as_str().unwrap_or_default();
                if role != "user" && role != "model" {
                    p.push(format!("gemini: contents[{n}].role {role:?}"));
                }
                let parts_ok = m["parts"]
                    .as_array()
                    .is_some_and(|ps| !ps.is_empty() && ps.iter().all(|x| x["text"].is_string()));
                if !parts_ok {
                    p.push(format!("gemini: contents[{n}].parts must be text parts"));
                }
            }
            if c[0]["role"] != "user" {
                p.push("gemini: the first turn is not the user's".into());
            }
            if c.last().is_some_and(|m| m["role"] != "user") {
                p.push("gemini: the last turn is not the user's".into());
            }
        }
        _ => p.push("gemini: no contents".into()),
    }
    let si = &body["systemInstruction"];
    if !si.is_null() && !si["parts"][0]["text"].is_string() {
        p.push("gemini: systemInstruction has no text part".into());
    }
    let gc = &body["generationConfig"];
    if !gc.is_null() {
        if let Some(m) = gc["responseMimeType"].as_str()
            && !["text/plain", "application/json", "text/x.enum"].contains(&m)
        {
            p.push(format!("gemini: responseMimeType {m}"));
        }
        if !gc["responseSchema"].is_null() {
            if gc["responseMimeType"] != "application/json" {
                p.push("gemini: responseSchema needs responseMimeType application/json".into());
            }
            check_gemini_schema("gemini: responseSchema", &gc["responseSchema"], &mut p);
        }
        for k in ["maxOutputTokens", "candidateCount"] {
            if !gc[k].is_null() && gc[k].as_u64().is_none_or(|n| n == 0) {
                p.push(format!("gemini: {k} is not a positive integer"));
            }
        }
    }
    p
}

async fn answer(
    reply: Reply,
    ok: impl Fn(&str) -> Value,
    err: impl Fn(u16) -> Value,
) -> axum::response::Response {
    let text = match reply {
        Reply::Text(t) => t,
        Reply::After(d, t) => {
            tokio::time::sleep(d).await;
            t
        }
        Reply::Error(status) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (code, axum::Json(err(status))).into_response();
        }
    };
    axum::Json(ok(&text)).into_response()
}

async fn openai(
    State(fake): State<FakeAi>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let problems = openai_problems(&headers, &json);
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let req = AiRequest {
        api: Api::OpenAi,
        api_key: key,
        model: json["model"].as_str().unwrap_or_default().to_string(),
        body: json,
    };
    let reply = next(&fake, req, problems);
    answer(
        reply,
        |text| {
            json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            })
        },
        |status| {
            let (t, m) = match status {
                429 => ("rate_limit_exceeded", "Rate limit reached for requests"),
                401 => ("invalid_api_key", "Incorrect API key provided"),
                _ => ("server_error", "The server had an error while processing your request"),
            };
            json!({"error": {"message": m, "type": t, "param": null, "code": t}})
        },
    )
    .await
}

async fn gemini(
    State(fake): State<FakeAi>,
    Path(call): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let problems = gemini_problems(&call, query.as_deref(), &headers, &json);
    let req = AiRequest {
        api: Api::Gemini,
        api_key: headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        model: call.trim_end_matches(":generateContent").to_string(),
        body: json,
    };
    let reply = next(&fake, req, problems);
    answer(
        reply,
        |text| {
            json!({
                "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
                "modelVersion": "fake",
            })
        },
        |status| {
            let s = match status {
                429 => "RESOURCE_EXHAUSTED",
                400 => "INVALID_ARGUMENT",
                403 => "PERMISSION_DENIED",
                503 => "UNAVAILABLE",
                _ => "INTERNAL",
            };
            json!({"error": {"code": status, "message": format!("fake {s}"), "status": s}})
        },
    )
    .await
}
