//! A local stand-in for Meta's Graph API: records every request, checks the shapes Meta
//! documents, and answers with scripted responses.
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    /// When it arrived (epoch milliseconds).
    pub at_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One scripted answer; when the script is empty the server accepts sends.
#[derive(Debug, Clone)]
pub enum Answer {
    Accept,
    /// Meta's error JSON with this HTTP status and `error.code`.
    Error(u16, i64),
    /// Accept, but only after this delay (longer than the client's timeout: the answer is lost).
    AcceptAfter(Duration),
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    script: VecDeque<Answer>,
    problems: Vec<String>,
    next_id: u64,
    /// `GET /{version}/{id}` answers (media info, phone numbers, …).
    objects: std::collections::HashMap<String, Value>,
    /// Embedded Signup: (app id, app secret, code, token).
    signup: Option<(String, String, String, String)>,
    /// `POST /{waba}/subscribed_apps` calls: (WABA, authorization).
    subscriptions: Vec<(String, Option<String>)>,
    /// `GET /cdn/{id}` bodies (media downloads).
    blobs: std::collections::HashMap<String, Vec<u8>>,
    /// `GET /cdn/{id}` bodies generated as they are sent (large media, never held): their size.
    generated: std::collections::HashMap<String, u64>,
    /// Media whose `GET /{version}/{id}` answers Meta's error (HTTP status, `error.code`).
    media_errors: std::collections::HashMap<String, (u16, i64)>,
    /// `GET /{version}/{waba_id}/message_templates`: the templates served, in 3 pages.
    templates: Vec<Value>,
    template_requests: Vec<Recorded>,
    /// When set, the template list answers Meta's error (HTTP status, `error.code`).
    template_error: Option<(u16, i64)>,
    /// When set, only the pages after the first answer this error (a sync failing half-way).
    template_error_later_pages: Option<(u16, i64)>,
    /// When set, `GET /{version}/me` answers Meta's error (an invalid token: 190).
    me_error: Option<(u16, i64)>,
    /// When set, an `appsecret_proof` must be HMAC-SHA256(token) keyed by it.
    app_secret: Option<String>,
}

#[derive(Clone, Default)]
pub struct FakeGraph {
    inner: Arc<Mutex<Inner>>,
    pub base_url: String,
}

pub const VERSION: &str = "v25.0";

impl FakeGraph {
    pub async fn start() -> Self {
        let mut fake = FakeGraph::default();
        let app = Router::new()
            .route("/{version}/{pnid}/messages", post(messages))
            .route("/{version}/{pnid}/media", post(media_upload))
            // `{pnid}` is the WABA id here (one parameter name per segment position).
            .route(
                "/{version}/{pnid}/message_templates",
                axum::routing::get(message_templates),
            )
            .route("/{version}/{id}", axum::routing::get(object))
            .route("/{version}/me", axum::routing::get(me))
            .route("/{version}/{pnid}/phone_numbers", axum::routing::get(edge))
            .route(
                "/{version}/{pnid}/subscribed_apps",
                axum::routing::get(edge).post(subscribe),
            )
            .route(
                "/{version}/oauth/access_token",
                axum::routing::get(exchange),
            )
            .route("/cdn/{id}", axum::routing::get(blob))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake.base_url = format!("http://{addr}");
        fake
    }

    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    /// Serves `json` at `GET /{version}/{id}`.
    pub fn set_object(&self, id: &str, json: Value) {
        self.inner
            .lock()
            .unwrap()
            .objects
            .insert(id.to_string(), json);
    }

    /// Serves a media object: its info at `GET /{version}/{id}` (download URL on this server, or
    /// `url` when given) and its bytes at `GET /cdn/{id}`.
    pub fn set_media(&self, id: &str, mime: &str, data: &[u8], url: Option<String>) {
        use sha2::Digest;
        let url = url.unwrap_or_else(|| format!("{}/cdn/{id}", self.base_url));
        self.set_object(
            id,
            json!({"messaging_product": "whatsapp", "id": id, "url": url, "mime_type": mime,
                   "sha256": hex::encode(sha2::Sha256::digest(data)), "file_size": data.len()}),
        );
        self.inner
            .lock()
            .unwrap()
            .blobs
            .insert(id.to_string(), data.to_vec());
    }

    /// Serves a media of `size` bytes generated while it is sent (a 100 MB document is never
    /// held in memory here); returns its sha256 (hex).
    pub fn set_generated_media(&self, id: &str, mime: &str, size: u64) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let mut at = 0;
        while at < size {
            let n = (size - at).min(GENERATED_CHUNK as u64);
            h.update(pattern(at, n as usize));
            at += n;
        }
        let sha = hex::encode(h.finalize());
        self.set_object(
            id,
            json!({"messaging_product": "whatsapp", "id": id, "url": format!("{}/cdn/{id}", self.base_url),
                   "mime_type": mime, "sha256": sha, "file_size": size}),
        );
        self.inner
            .lock()
            .unwrap()
            .generated
            .insert(id.to_string(), size);
        sha
    }

    /// Makes `GET /{version}/{id}` of a media answer Meta's error (or serve it again: `None`).
    pub fn fail_media(&self, id: &str, error: Option<(u16, i64)>) {
        let mut inner = self.inner.lock().unwrap();
        match error {
            Some(e) => inner.media_errors.insert(id.to_string(), e),
            None => inner.media_errors.remove(id),
        };
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Shape violations seen so far (tests assert this is empty).
    pub fn problems(&self) -> Vec<String> {
        self.inner.lock().unwrap().problems.clone()
    }
}

fn check_shape(body: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if body["messaging_product"] != "whatsapp" {
        p.push(format!("messaging_product must be whatsapp: {body}"));
    }
    if body.get("status").is_some() {
        // Mark as read.
        if body["status"] != "read" || !body["message_id"].is_string() {
            p.push(format!("read receipt shape: {body}"));
        }
        return p;
    }
    let Some(kind) = body["type"].as_str() else {
        p.push(format!("type missing: {body}"));
        return p;
    };
    if !(body["to"].is_string() || body["recipient"].is_string()) {
        p.push(format!("to missing: {body}"));
    }
    if body.get(kind).is_none() {
        p.push(format!("object {kind} missing: {body}"));
    }
    if !body["biz_opaque_callback_data"].is_string() {
        p.push(format!(
            "our message id must travel in biz_opaque_callback_data: {body}"
        ));
    }
    p
}

async fn messages(
    State(fake): State<FakeGraph>,
    Path((version, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (answer, id) = {
        let mut i = fake.inner.lock().unwrap();
        let mut problems = check_shape(&json);
        if version != VERSION {
            problems.push(format!("version {version}"));
        }
        i.problems.extend(problems);
        i.requests.push(Recorded {
            path: format!("/{version}/{pnid}/messages"),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: json.clone(),
            at_ms: now_ms(),
        });
        i.next_id += 1;
        (i.script.pop_front().unwrap_or(Answer::Accept), i.next_id)
    };
    let accepted = || {
        if json.get("status").is_some() {
            return (StatusCode::OK, json!({"success": true}).to_string());
        }
        let to = json["to"].as_str().unwrap_or_default();
        (
            StatusCode::OK,
            json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                   "messages": [{"id": format!("wamid.FAKE{id:06}")}]})
            .to_string(),
        )
    };
    match answer {
        Answer::Accept => accepted(),
        Answer::AcceptAfter(d) => {
            tokio::time::sleep(d).await;
            accepted()
        }
        Answer::Error(status, code) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            json!({"error": {"message": format!("fake error {code}"), "type": "OAuthException", "code": code,
                             "error_subcode": 2494010, "fbtrace_id": "Afake"}})
            .to_string(),
        ),
    }
}

fn record(fake: &FakeGraph, path: String, headers: &HeaderMap, body: Value) {
    fake.inner.lock().unwrap().requests.push(Recorded {
        path,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
        at_ms: now_ms(),
    });
}

async fn object(
    State(fake): State<FakeGraph>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> impl IntoResponse {
    record(&fake, format!("/{version}/{id}"), &headers, Value::Null);
    if let Some((status, code)) = fake.inner.lock().unwrap().media_errors.get(&id).copied() {
        return graph_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            "An unknown error has occurred.",
        );
    }
    match fake.inner.lock().unwrap().objects.get(&id).cloned() {
        Some(v) => (StatusCode::OK, v.to_string()),
        None => (
            StatusCode::NOT_FOUND,
            json!({"error": {"message": "Unsupported get request", "type": "GraphMethodException", "code": 100, "fbtrace_id": "Afake"}}).to_string(),
        ),
    }
}

/// Chunk size of generated media.
pub const GENERATED_CHUNK: usize = 64 * 1024;

/// The bytes of generated media from `offset` (deterministic, not repetitive at chunk size).
pub fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (offset..offset + len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

async fn blob(
    State(fake): State<FakeGraph>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> axum::response::Response {
    record(&fake, format!("/cdn/{id}"), &headers, Value::Null);
    let (stored, generated) = {
        let inner = fake.inner.lock().unwrap();
        (
            inner.blobs.get(&id).cloned(),
            inner.generated.get(&id).copied(),
        )
    };
    if let Some(size) = generated {
        let chunks = futures::stream::unfold(0u64, move |at| async move {
            (at < size).then(|| {
                let n = (size - at).min(GENERATED_CHUNK as u64);
                (
                    Ok::<_, std::io::Error>(Bytes::from(pattern(at, n as usize))),
                    at + n,
                )
            })
        });
        return (
            [(axum::http::header::CONTENT_LENGTH, size.to_string())],
            axum::body::Body::from_stream(chunks),
        )
            .into_response();
    }
    match stored {
        Some(b) => (StatusCode::OK, b).into_response(),
        None => (StatusCode::NOT_FOUND, Vec::new()).into_response(),
    }
}

async fn media_upload(
    State(fake): State<FakeGraph>,
    Path((version, pnid)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> impl IntoResponse {
    use futures::StreamExt;
    use sha2::Digest;
    // Read as a stream, as Meta would: the first MB is kept for the shape checks, the rest is
    // only counted and hashed, so a 100 MB upload costs this fake no memory.
    const KEEP: usize = 1024 * 1024;
    let mut head: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut hash = sha2::Sha256::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return (StatusCode::BAD_REQUEST, "body read failed".to_string());
        };
        total += chunk.len();
        hash.update(&chunk);
        if head.len() < KEEP {
            let take = (KEEP - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let ok = text.contains("name=\"messaging_product\"")
        && text.contains("whatsapp")
        && text.contains("name=\"file\"");
    // The file part's bytes (small uploads only): after the part's blank line, up to the
    // closing boundary.
    let file = (total <= KEEP)
        .then(|| {
            text.find("name=\"file\"").and_then(|at| {
                let start = at + text[at..].find("\r\n\r\n")? + 4;
                let end = text.rfind("\r\n--")?;
                (end >= start).then(|| text[start..end].to_string())
            })
        })
        .flatten();
    let length_ok = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        == Some(total);
    record(
        &fake,
        format!("/{version}/{pnid}/media"),
        &headers,
        json!({"multipart_bytes": total, "well_formed": ok && length_ok, "file": file,
               "multipart_sha256": hex::encode(hash.finalize())}),
    );
    let id = {
        let mut i = fake.inner.lock().unwrap();
        i.next_id += 1;
        i.next_id
    };
    (
        StatusCode::OK,
        json!({"id": format!("media-up-{id}")}).to_string(),
    )
}

// ----- message templates ------------------------------------------------------------------

/// Cursor of the page starting at `index` (opaque to the client, like Meta's).
fn template_cursor(index: usize) -> String {
    format!("QVFIU{index:05}")
}

impl FakeGraph {
    /// Templates served by `GET /{version}/{waba_id}/message_templates`, split into 3 pages.
    pub fn set_templates(&self, templates: Vec<Value>) {
        let mut i = self.inner.lock().unwrap();
        i.templates = templates;
        i.template_error = None;
    }

    /// Makes the template list answer Meta's error (`None`: serve the templates again).
    /// Makes every page after the first answer Meta's error (or serve again: `None`).
    pub fn fail_later_template_pages(&self, error: Option<(u16, i64)>) {
        self.inner.lock().unwrap().template_error_later_pages = error;
    }

    pub fn fail_templates(&self, error: Option<(u16, i64)>) {
        self.inner.lock().unwrap().template_error = error;
    }

    /// Template list requests seen (`body` holds the query parameters).
    pub fn template_requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().template_requests.clone()
    }
}

async fn message_templates(
    State(fake): State<FakeGraph>,
    Path((version, waba)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let mut i = fake.inner.lock().unwrap();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut problems = Vec::new();
    if version != VERSION {
        problems.push(format!("version {version}"));
    }
    if !authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer "))
    {
        problems.push("template list without a bearer token".to_string());
    }
    let fields = q.get("fields").cloned().unwrap_or_default();
    for f in [
        "name",
        "language",
        "status",
        "category",
        "components",
        "parameter_format",
    ] {
        if !fields.split(',').any(|x| x == f) {
            problems.push(format!("template list fields lack {f}: {fields:?}"));
        }
    }
    i.problems.extend(problems);
    i.template_requests.push(Recorded {
        path: format!("/{version}/{waba}/message_templates"),
        authorization,
        body: json!(q),
        at_ms: now_ms(),
    });
    let later_page_error = q.get("after").and(i.template_error_later_pages);
    if let Some((status, code)) = i.template_error.or(later_page_error) {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            json!({"error": {"message": format!("fake error {code}"), "type": "OAuthException", "code": code,
                             "fbtrace_id": "Afake"}})
            .to_string(),
        );
    }
    let start = match q.get("after") {
        None => 0,
        Some(a) => match a
            .strip_prefix("QVFIU")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n <= i.templates.len() => n,
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": {"message": "Invalid cursor", "type": "OAuthException", "code": 100}})
                        .to_string(),
                );
            }
        },
    };
    let per_page = i.templates.len().div_ceil(3).max(1);
    let end = (start + per_page).min(i.templates.len());
    let data: Vec<Value> = i.templates[start..end].to_vec();
    let mut paging =
        json!({"cursors": {"before": template_cursor(start), "after": template_cursor(end)}});
    if end < i.templates.len() {
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        paging["next"] = json!(format!(
            "http://{host}/{version}/{waba}/message_templates?fields={fields}&limit={}&after={}",
            q.get("limit").map(String::as_str).unwrap_or("25"),
            template_cursor(end)
        ));
    }
    (
        StatusCode::OK,
        json!({"data": data, "paging": paging}).to_string(),
    )
}

// ----- account reads (connection test) ----------------------------------------------------

impl FakeGraph {
    /// Embedded Signup: `code` exchanged by app `app_id` with secret `app_secret` gives `token`
    /// (once: a code is single-use).
    pub fn set_signup(&self, app_id: &str, app_secret: &str, code: &str, token: &str) {
        self.inner.lock().unwrap().signup = Some((
            app_id.to_string(),
            app_secret.to_string(),
            code.to_string(),
            token.to_string(),
        ));
    }

    /// WABAs the app was subscribed to, with the token used.
    pub fn subscriptions(&self) -> Vec<(String, Option<String>)> {
        self.inner.lock().unwrap().subscriptions.clone()
    }
}

async fn exchange(
    State(fake): State<FakeGraph>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    let mut i = fake.inner.lock().unwrap();
    let expected = i.signup.clone();
    match expected {
        Some((app, secret, code, token))
            if q.get("client_id") == Some(&app)
                && q.get("client_secret") == Some(&secret)
                && q.get("code") == Some(&code) =>
        {
            i.signup = None;
            (
                StatusCode::OK,
                json!({"access_token": token, "token_type": "bearer"}).to_string(),
            )
        }
        _ => {
            drop(i);
            graph_error(
                StatusCode::BAD_REQUEST,
                100,
                "Invalid verification code format.",
            )
        }
    }
}

async fn subscribe(
    State(fake): State<FakeGraph>,
    Path((_version, waba)): Path<(String, String)>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fake.inner.lock().unwrap().subscriptions.push((waba, auth));
    (StatusCode::OK, json!({"success": true}).to_string())
}

/// App id [`FakeGraph::set_account`] reports as subscribed to the WABA's webhooks.
pub const SUBSCRIBED_APP_ID: &str = "dev-app";

impl FakeGraph {
    /// Serves a WABA: `GET /{waba}`, its `phone_numbers` and `subscribed_apps` (app
    /// [`SUBSCRIBED_APP_ID`]).
    pub fn set_account(&self, waba_id: &str, phone_number_ids: &[&str]) {
        self.set_object(
            waba_id,
            json!({"id": waba_id, "name": "Fake WABA", "currency": "USD", "timezone_id": "1",
                   "message_template_namespace": "fake_ns"}),
        );
        let numbers: Vec<Value> = phone_number_ids
            .iter()
            .map(|id| json!({"id": id, "display_phone_number": "+1 555-078-3881", "verified_name": "Fake Co",
                             "quality_rating": "GREEN", "code_verification_status": "VERIFIED"}))
            .collect();
        self.set_object(
            &format!("{waba_id}/phone_numbers"),
            json!({"data": numbers}),
        );
        self.set_object(
            &format!("{waba_id}/subscribed_apps"),
            json!({"data": [{"whatsapp_business_api_data": {"id": SUBSCRIBED_APP_ID, "name": "Dev app",
                                                            "link": "https://www.facebook.com/games/?app_id=1"}}]}),
        );
    }

    /// Makes `GET /{version}/me` answer Meta's error (`None`: answer normally). Like Meta for a
    /// malformed token, the message quotes the token it was given.
    pub fn fail_token(&self, error: Option<(u16, i64)>) {
        self.inner.lock().unwrap().me_error = error;
    }

    /// Checks `appsecret_proof` against this app secret (`None`: any proof is accepted).
    pub fn set_app_secret(&self, secret: Option<&str>) {
        self.inner.lock().unwrap().app_secret = secret.map(str::to_string);
    }
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> (StatusCode, String) {
    (
        status,
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Afake"}})
            .to_string(),
    )
}

async fn me(
    State(fake): State<FakeGraph>,
    Path(version): Path<String>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> impl IntoResponse {
    record(&fake, format!("/{version}/me"), &headers, json!(q));
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let (me_error, app_secret) = {
        let i = fake.inner.lock().unwrap();
        (i.me_error, i.app_secret.clone())
    };
    if let Some((status, code)) = me_error {
        return graph_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED),
            code,
            &format!("Malformed access token {token}"),
        );
    }
    if let (Some(proof), Some(secret)) = (q.get("appsecret_proof"), app_secret) {
        let expected = appsecret_proof(&token, &secret);
        if *proof != expected {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                "Invalid appsecret_proof provided in the API argument",
            );
        }
    }
    (
        StatusCode::OK,
        json!({"id": "1000", "name": "Fake system user"}).to_string(),
    )
}

/// `GET /{version}/{id}/{edge}` served from the objects set under `"{id}/{edge}"`.
async fn edge(
    State(fake): State<FakeGraph>,
    Path((version, id)): Path<(String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    let edge = uri
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    record(
        &fake,
        format!("/{version}/{id}/{edge}"),
        &headers,
        Value::Null,
    );
    let key = format!("{id}/{edge}");
    match fake.inner.lock().unwrap().objects.get(&key).cloned() {
        Some(v) => (StatusCode::OK, v.to_string()),
        None => graph_error(StatusCode::BAD_REQUEST, 100, "Unsupported get request"),
    }
}

/// Meta's `appsecret_proof`: hex HMAC-SHA256 of the access token keyed by the app secret
/// (computed here independently of the system under test).
fn appsecret_proof(token: &str, app_secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes()).expect("any key length");
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
