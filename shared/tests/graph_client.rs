//! The Graph API client against a fake Graph API (axum on 127.0.0.1) that checks every request
//! against Meta's documented shapes and answers as Meta does.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use shared::meta::graph::{CallKind, CallRecord, ErrorClass, GraphClient, GraphConfig, GraphError};
use shared::meta::outbound::*;

const TOKEN: &str = "EAAtest-secret-token-123";
const PNID: &str = "106540352242922";
const WABA: &str = "102290129340398";
const VERSION: &str = "v25.0";
const MEDIA_BYTES: &[u8] = b"\x89PNG\r\n\x1a\nfake image bytes";

// ---------------------------------------------------------------------------------------------
// Fake Graph API
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    query: Option<String>,
    auth: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

struct Scripted {
    status: u16,
    body: Vec<u8>,
    delay: Duration,
    headers: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct Fake {
    addr: Mutex<Option<SocketAddr>>,
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Scripted>>,
    seq: AtomicU64,
}

impl Fake {
    fn push(&self, s: Scripted) {
        self.script.lock().unwrap().push_back(s);
    }
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
    fn addr(&self) -> SocketAddr {
        self.addr.lock().unwrap().expect("started")
    }
}

fn meta_error(http: u16, code: i64, subcode: Option<i64>) -> Scripted {
    let mut err = json!({
        "message": format!("(#{code}) error {code}"),
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": format!("details of {code}")},
        "fbtrace_id": "AbCdEfTrace"
    });
    if let Some(s) = subcode {
        err["error_subcode"] = json!(s);
    }
    Scripted {
        status: http,
        body: serde_json::to_vec(&json!({ "error": err })).unwrap(),
        delay: Duration::ZERO,
        headers: vec![],
    }
}

fn reply(status: u16, body: &str, delay: Duration) -> Scripted {
    Scripted {
        status,
        body: body.as_bytes().to_vec(),
        delay,
        headers: vec![],
    }
}

fn json_response(status: u16, v: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        serde_json::to_vec(&v).unwrap(),
    )
        .into_response()
}

/// Meta's error for a request that does not follow the documented shape.
fn shape_error(reason: String) -> Response {
    json_response(
        400,
        json!({"error": {"message": format!("(#100) Invalid parameter: {reason}"), "type": "OAuthException", "code": 100, "fbtrace_id": "shape"}}),
    )
}

async fn start() -> Arc<Fake> {
    let fake = Arc::new(Fake::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    *fake.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
    let app = Router::new().fallback(handle).with_state(fake.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    fake
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let rec = Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        auth: header("authorization"),
        content_type: header("content-type"),
        body: body.to_vec(),
    };
    fake.requests.lock().unwrap().push(rec.clone());

    let scripted = fake.script.lock().unwrap().pop_front();
    if let Some(s) = scripted {
        tokio::time::sleep(s.delay).await;
        let mut resp = (StatusCode::from_u16(s.status).unwrap(), s.body).into_response();
        resp.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        for (k, v) in s.headers {
            resp.headers_mut().insert(k, v.parse().unwrap());
        }
        return resp;
    }

    if rec.auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return json_response(
            401,
            json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190, "fbtrace_id": "auth"}}),
        );
    }

    let segments: Vec<&str> = rec.path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::POST, [VERSION, _pnid, "messages"]) => {
            if rec.content_type.as_deref() != Some("application/json") {
                return shape_error("content-type must be application/json".into());
            }
            let Ok(v) = serde_json::from_slice::<Value>(&rec.body) else {
                return shape_error("body is not JSON".into());
            };
            if v.get("status").is_some() {
                return match check_mark_read(&v) {
                    Ok(()) => json_response(200, json!({"success": true})),
                    Err(e) => shape_error(e),
                };
            }
            match check_message(&v) {
                Ok(()) => {
                    let n = fake.seq.fetch_add(1, Ordering::SeqCst);
                    let contact = match (v.get("to"), v.get("recipient")) {
                        (Some(to), _) => {
                            let to = to.as_str().unwrap();
                            let digits: String = to.chars().filter(char::is_ascii_digit).collect();
                            json!({"input": to, "wa_id": digits})
                        }
                        (None, Some(r)) => json!({"input": r, "user_id": r}),
                        _ => unreachable!(),
                    };
                    json_response(
                        200,
                        json!({
                            "messaging_product": "whatsapp",
                            "contacts": [contact],
                            "messages": [{"id": format!("wamid.FAKE{n}")}]
                        }),
                    )
                }
                Err(e) => shape_error(e),
            }
        }
        (Method::POST, [VERSION, _pnid, "media"]) => {
            let Some(ct) = rec.content_type.as_deref() else {
                return shape_error("no content-type".into());
            };
            match parse_multipart(ct, &rec.body) {
                Ok(parts) => {
                    let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
                    let mut sorted = names.clone();
                    sorted.sort_unstable();
                    if sorted != ["file", "messaging_product", "type"] {
                        return shape_error(format!("multipart fields {names:?}"));
                    }
                    json_response(200, json!({"id": "4490709327384033"}))
                }
                Err(e) => shape_error(e),
            }
        }
        (Method::GET, [VERSION, _waba, "message_templates"]) => templates_page(&rec),
        (Method::GET, [VERSION, media_id]) => {
            let addr = fake.addr();
            json_response(
                200,
                json!({
                    "messaging_product": "whatsapp",
                    "url": format!("http://{addr}/cdn/whatsapp_business/attachments/?mid={media_id}&hash=x"),
                    "mime_type": "image/png",
                    "sha256": hex::encode(Sha256::digest(MEDIA_BYTES)),
                    "file_size": MEDIA_BYTES.len().to_string(),
                    "id": media_id
                }),
            )
        }
        (Method::GET, ["cdn", ..]) => {
            (StatusCode::OK, [("content-type", "image/png")], MEDIA_BYTES).into_response()
        }
        (Method::GET, ["big"]) => (StatusCode::OK, vec![0u8; 64 * 1024]).into_response(),
        (Method::GET, ["redirect"]) => {
            let addr = fake.addr();
            (
                StatusCode::FOUND,
                [("location", format!("http://localhost:{}/evil", addr.port()))],
            )
                .into_response()
        }
        _ => json_response(
            400,
            json!({"error": {"message": "Unsupported request", "type": "GraphMethodException", "code": 100, "fbtrace_id": "route"}}),
        ),
    }
}

fn templates_page(rec: &Recorded) -> Response {
    let q = rec.query.clone().unwrap_or_default();
    let params: Vec<(String, String)> = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    };
    if get("limit").is_none() || get("fields").is_none() {
        return shape_error("limit and fields expected".into());
    }
    let tpl = |name: &str, status: &str| {
        json!({
            "name": name, "language": "en_US", "status": status, "category": "UTILITY",
            "parameter_format": "POSITIONAL", "id": format!("id_{name}"),
            "components": [{"type": "BODY", "text": "Hello {{1}}"}],
            "quality_score": {"score": "GREEN"}
        })
    };
    let next = |after: &str| {
        format!(
            "https://graph.facebook.com/{VERSION}/{WABA}/message_templates?limit=100&after={after}"
        )
    };
    let (data, paging) = match get("after") {
        None => (
            vec![tpl("a1", "APPROVED"), tpl("a2", "PENDING")],
            json!({"cursors": {"before": "B0", "after": "CUR1"}, "next": next("CUR1")}),
        ),
        Some("CUR1") => (
            vec![tpl("b1", "REJECTED"), tpl("b2", "PAUSED")],
            json!({"cursors": {"before": "CUR1", "after": "CUR2"}, "previous": "x", "next": next("CUR2")}),
        ),
        Some("CUR2") => (
            vec![tpl("c1", "APPROVED")],
            json!({"cursors": {"before": "CUR2", "after": "CUR3"}}),
        ),
        Some(other) => return shape_error(format!("unknown cursor {other}")),
    };
    json_response(200, json!({"data": data, "paging": paging}))
}

// ----- Meta's documented shapes ---------------------------------------------------------------

fn obj<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be an object"))
}

fn only_keys(m: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unexpected {what}.{k}"));
        }
    }
    Ok(())
}

fn string(m: &Map<String, Value>, k: &str, what: &str) -> Result<(), String> {
    match m.get(k) {
        Some(Value::String(s)) if !s.is_empty() || k == "emoji" => Ok(()),
        _ => Err(format!("{what}.{k} must be a non-empty string")),
    }
}

fn opt_string(m: &Map<String, Value>, k: &str, what: &str) -> Result<(), String> {
    match m.get(k) {
        None | Some(Value::String(_)) => Ok(()),
        _ => Err(format!("{what}.{k} must be a string")),
    }
}

fn check_mark_read(v: &Value) -> Result<(), String> {
    let m = obj(v, "body")?;
    only_keys(m, &["messaging_product", "status", "message_id"], "body")?;
    if m.get("messaging_product") != Some(&json!("whatsapp"))
        || m.get("status") != Some(&json!("read"))
    {
        return Err("mark as read needs messaging_product whatsapp and status read".into());
    }
    string(m, "message_id", "body")
}

fn check_media_object(v: &Value, kind: &str) -> Result<(), String> {
    let m = obj(v, kind)?;
    let mut allowed = vec!["id", "link"];
    if matches!(kind, "image" | "video" | "document") {
        allowed.push("caption");
    }
    if kind == "document" {
        allowed.push("filename");
    }
    only_keys(m, &allowed, kind)?;
    match (m.get("id"), m.get("link")) {
        (Some(Value::String(_)), None) => {}
        (None, Some(Value::String(l))) if l.starts_with("https://") => {}
        _ => return Err(format!("{kind} needs exactly one of id or an https link")),
    }
    opt_string(m, "caption", kind)?;
    opt_string(m, "filename", kind)
}

fn check_message(v: &Value) -> Result<(), String> {
    let m = obj(v, "body")?;
    if m.get("messaging_product") != Some(&json!("whatsapp")) {
        return Err("messaging_product must be whatsapp".into());
    }
    if m.get("recipient_type") != Some(&json!("individual")) {
        return Err("recipient_type must be individual".into());
    }
    match (m.get("to"), m.get("recipient")) {
        (Some(Value::String(_)), None) | (None, Some(Value::String(_))) => {}
        _ => return Err("exactly one of to / recipient".into()),
    }
    let ty = m
        .get("type")
        .and_then(Value::as_str)
        .ok_or("type must be a string")?;
    only_keys(
        m,
        &[
            "messaging_product",
            "recipient_type",
            "to",
            "recipient",
            "type",
            "context",
            "biz_opaque_callback_data",
            ty,
        ],
        "body",
    )?;
    if let Some(c) = m.get("context") {
        let c = obj(c, "context")?;
        only_keys(c, &["message_id"], "context")?;
        string(c, "message_id", "context")?;
    }
    opt_string(m, "biz_opaque_callback_data", "body")?;
    let t = m.get(ty).ok_or_else(|| format!("{ty} object missing"))?;
    match ty {
        "text" => {
            let o = obj(t, "text")?;
            only_keys(o, &["body", "preview_url"], "text")?;
            string(o, "body", "text")?;
            if !matches!(o.get("preview_url"), None | Some(Value::Bool(_))) {
                return Err("text.preview_url must be a boolean".into());
            }
        }
        "image" | "video" | "audio" | "document" | "sticker" => check_media_object(t, ty)?,
        "location" => {
            let o = obj(t, "location")?;
            only_keys(o, &["latitude", "longitude", "name", "address"], "location")?;
            if !(o.get("latitude").is_some_and(Value::is_number)
                && o.get("longitude").is_some_and(Value::is_number))
            {
                return Err("location.latitude/longitude must be numbers".into());
            }
            opt_string(o, "name", "location")?;
            opt_string(o, "address", "location")?;
        }
        "contacts" => {
            let cards = t.as_array().ok_or("contacts must be an array")?;
            for c in cards {
                let c = obj(c, "contact")?;
                only_keys(
                    c,
                    &[
                        "addresses",
                        "birthday",
                        "emails",
                        "name",
                        "org",
                        "phones",
                        "urls",
                    ],
                    "contact",
                )?;
                let n = obj(c.get("name").ok_or("contact.name missing")?, "name")?;
                string(n, "formatted_name", "name")?;
                if let Some(p) = c.get("phones") {
                    for p in p.as_array().ok_or("phones must be an array")? {
                        only_keys(obj(p, "phone")?, &["phone", "type", "wa_id"], "phone")?;
                    }
                }
            }
        }
        "reaction" => {
            let o = obj(t, "reaction")?;
            only_keys(o, &["message_id", "emoji"], "reaction")?;
            string(o, "message_id", "reaction")?;
            string(o, "emoji", "reaction")?;
        }
        "interactive" => check_interactive(t)?,
        "template" => check_template(t)?,
        other => return Err(format!("unsupported type {other}")),
    }
    Ok(())
}

fn check_interactive(t: &Value) -> Result<(), String> {
    let o = obj(t, "interactive")?;
    only_keys(
        o,
        &["type", "header", "body", "footer", "action"],
        "interactive",
    )?;
    let b = obj(o.get("body").ok_or("interactive.body missing")?, "body")?;
    only_keys(b, &["text"], "interactive.body")?;
    string(b, "text", "interactive.body")?;
    if let Some(h) = o.get("header") {
        let h = obj(h, "header")?;
        only_keys(h, &["type", "text"], "interactive.header")?;
        if h.get("type") != Some(&json!("text")) {
            return Err("header.type must be text".into());
        }
        string(h, "text", "interactive.header")?;
    }
    if let Some(f) = o.get("footer") {
        let f = obj(f, "footer")?;
        only_keys(f, &["text"], "interactive.footer")?;
        string(f, "text", "interactive.footer")?;
    }
    let a = obj(o.get("action").ok_or("action missing")?, "action")?;
    match o.get("type").and_then(Value::as_str) {
        Some("button") => {
            only_keys(a, &["buttons"], "action")?;
            let buttons = a
                .get("buttons")
                .and_then(Value::as_array)
                .ok_or("action.buttons must be an array")?;
            if buttons.is_empty() || buttons.len() > 3 {
                return Err("1 to 3 buttons".into());
            }
            for b in buttons {
                let b = obj(b, "button")?;
                only_keys(b, &["type", "reply"], "button")?;
                if b.get("type") != Some(&json!("reply")) {
                    return Err("button.type must be reply".into());
                }
                let r = obj(b.get("reply").ok_or("reply missing")?, "reply")?;
                only_keys(r, &["id", "title"], "reply")?;
                string(r, "id", "reply")?;
                string(r, "title", "reply")?;
            }
        }
        Some("list") => {
            only_keys(a, &["button", "sections"], "action")?;
            string(a, "button", "action")?;
            let sections = a
                .get("sections")
                .and_then(Value::as_array)
                .ok_or("action.sections must be an array")?;
            for s in sections {
                let s = obj(s, "section")?;
                only_keys(s, &["title", "rows"], "section")?;
                opt_string(s, "title", "section")?;
                for r in s
                    .get("rows")
                    .and_then(Value::as_array)
                    .ok_or("rows must be an array")?
                {
                    let r = obj(r, "row")?;
                    only_keys(r, &["id", "title", "description"], "row")?;
                    string(r, "id", "row")?;
                    string(r, "title", "row")?;
                    opt_string(r, "description", "row")?;
                }
            }
        }
        _ => return Err("interactive.type must be button or list".into()),
    }
    Ok(())
}

fn check_template(t: &Value) -> Result<(), String> {
    let o = obj(t, "template")?;
    only_keys(o, &["name", "language", "components"], "template")?;
    string(o, "name", "template")?;
    let lang = obj(o.get("language").ok_or("language missing")?, "language")?;
    only_keys(lang, &["code", "policy"], "language")?;
    string(lang, "code", "language")?;
    let Some(components) = o.get("components") else {
        return Ok(());
    };
    for c in components.as_array().ok_or("components must be an array")? {
        let c = obj(c, "component")?;
        match c.get("type").and_then(Value::as_str) {
            Some("header") | Some("body") => {
                only_keys(c, &["type", "parameters"], "component")?;
            }
            Some("button") => {
                only_keys(c, &["type", "sub_type", "index", "parameters"], "component")?;
                string(c, "sub_type", "button")?;
                if !c.get("index").is_some_and(Value::is_string) {
                    return Err("button.index must be a string".into());
                }
            }
            _ => return Err("component.type must be header, body or button".into()),
        }
        for p in c
            .get("parameters")
            .and_then(Value::as_array)
            .ok_or("parameters must be an array")?
        {
            let p = obj(p, "parameter")?;
            let ty = p
                .get("type")
                .and_then(Value::as_str)
                .ok_or("parameter.type")?;
            only_keys(p, &["type", ty, "parameter_name"], "parameter")?;
            match ty {
                "text" | "payload" | "coupon_code" => string(p, ty, "parameter")?,
                "currency" => {
                    let cur = obj(&p[ty], "currency")?;
                    only_keys(cur, &["fallback_value", "code", "amount_1000"], "currency")?;
                }
                "date_time" => {
                    only_keys(obj(&p[ty], "date_time")?, &["fallback_value"], "date_time")?
                }
                "image" | "video" | "document" => {
                    let mo = obj(&p[ty], ty)?;
                    only_keys(mo, &["id", "link", "filename"], ty)?;
                }
                "location" => only_keys(
                    obj(&p[ty], "location")?,
                    &["latitude", "longitude", "name", "address"],
                    "location",
                )?,
                "action" => {
                    obj(&p[ty], "action")?;
                }
                other => return Err(format!("parameter type {other}")),
            }
        }
    }
    Ok(())
}

struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A minimal multipart/form-data reader (RFC 7578), independent of the client's writer.
fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .ok_or("not multipart/form-data")?;
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut pos = find(body, delim.as_bytes(), 0).ok_or("no first boundary")? + delim.len();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        pos += 2; // CRLF after the boundary
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("no part headers end")?;
        let head = std::str::from_utf8(&body[pos..head_end]).map_err(|e| e.to_string())?;
        let next =
            find(body, format!("\r\n{delim}").as_bytes(), head_end).ok_or("no next boundary")?;
        let data = body[head_end + 4..next].to_vec();
        let mut name = None;
        let mut filename = None;
        let mut ctype = None;
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').ok_or("bad header")?;
            if k.eq_ignore_ascii_case("content-disposition") {
                for attr in v.split(';').map(str::trim) {
                    if let Some(n) = attr.strip_prefix("name=") {
                        name = Some(n.trim_matches('"').to_owned());
                    }
                    if let Some(f) = attr.strip_prefix("filename=") {
                        filename = Some(f.trim_matches('"').to_owned());
                    }
                }
            } else if k.eq_ignore_ascii_case("content-type") {
                ctype = Some(v.trim().to_owned());
            }
        }
        parts.push(Part {
            name: name.ok_or("part without name")?,
            filename,
            content_type: ctype,
            data,
        });
        pos = next + 2 + delim.len();
    }
}

// ---------------------------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------------------------

fn config(fake: &Fake) -> GraphConfig {
    GraphConfig {
        base_url: format!("http://{}", fake.addr()),
        version: VERSION.into(),
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        max_attempts: 3,
        retry_base: Duration::from_millis(1),
        retry_cap: Duration::from_millis(5),
        allow_insecure_test_host: Some(fake.addr().to_string()),
        ..GraphConfig::default()
    }
}

/// (kind, attempt, HTTP status, will retry, Debug of the record) of each attempt.
type Seen = (CallKind, u32, Option<u16>, bool, String);

#[derive(Default)]
struct Attempts(Mutex<Vec<Seen>>);

impl Attempts {
    fn observer(self: &Arc<Self>) -> Arc<dyn shared::meta::graph::CallObserver> {
        let me = self.clone();
        Arc::new(move |r: &CallRecord<'_>| {
            me.0.lock().unwrap().push((
                r.kind,
                r.attempt,
                r.http_status,
                r.will_retry,
                format!("{r:?}"),
            ));
        })
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn to(content: OutboundContent) -> OutboundMessage {
    OutboundMessage {
        to: "+16505551234".into(),
        reply_to: None,
        biz_opaque_callback_data: Some("msg-0001".into()),
        content,
    }
}

fn text(s: &str) -> OutboundContent {
    OutboundContent::Text {
        body: s.into(),
        preview_url: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Every message kind
// ---------------------------------------------------------------------------------------------

fn envelope(ty: &str, obj: Value) -> Value {
    let mut v = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "biz_opaque_callback_data": "msg-0001",
        "type": ty,
    });
    v[ty] = obj;
    v
}

fn every_kind() -> Vec<(&'static str, OutboundMessage, Value)> {
    let mut cases = Vec::new();

    let mut m = to(OutboundContent::Text {
        body: "Hi! See https://example.com".into(),
        preview_url: true,
    });
    m.reply_to = Some("wamid.INBOUND1".into());
    let mut e = envelope(
        "text",
        json!({"preview_url": true, "body": "Hi! See https://example.com"}),
    );
    e["context"] = json!({"message_id": "wamid.INBOUND1"});
    cases.push(("text with reply context", m, e));

    cases.push((
        "template positional",
        to(OutboundContent::Template(TemplateMessage {
            name: "order_update".into(),
            language: "en_US".into(),
            components: vec![
                TemplateComponent::Header {
                    parameters: vec![TemplateParameter::Image {
                        image: MediaSource::Link("https://cdn.example.com/p.jpg".into()),
                    }],
                },
                TemplateComponent::Body {
                    parameters: vec![
                        TemplateParameter::Text {
                            text: "Ada".into(),
                            parameter_name: None,
                        },
                        TemplateParameter::Currency {
                            currency: CurrencyValue {
                                fallback_value: "$100.99".into(),
                                code: "USD".into(),
                                amount_1000: 100_990,
                            },
                            parameter_name: None,
                        },
                        TemplateParameter::DateTime {
                            date_time: DateTimeValue {
                                fallback_value: "February 25, 1977".into(),
                            },
                            parameter_name: None,
                        },
                    ],
                },
                TemplateComponent::Button {
                    sub_type: TemplateButtonKind::QuickReply,
                    index: 0,
                    parameters: vec![TemplateParameter::Payload {
                        payload: "STOP_PROMOS".into(),
                    }],
                },
                TemplateComponent::Button {
                    sub_type: TemplateButtonKind::Url,
                    index: 1,
                    parameters: vec![TemplateParameter::Text {
                        text: "order/123".into(),
                        parameter_name: None,
                    }],
                },
            ],
        })),
        envelope(
            "template",
            json!({
                "name": "order_update",
                "language": {"code": "en_US"},
                "components": [
                    {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/p.jpg"}}]},
                    {"type": "body", "parameters": [
                        {"type": "text", "text": "Ada"},
                        {"type": "currency", "currency": {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990}},
                        {"type": "date_time", "date_time": {"fallback_value": "February 25, 1977"}}
                    ]},
                    {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "STOP_PROMOS"}]},
                    {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "order/123"}]}
                ]
            }),
        ),
    ));

    cases.push((
        "template named",
        to(OutboundContent::Template(TemplateMessage {
            name: "seasonal_promotion".into(),
            language: "en".into(),
            components: vec![
                TemplateComponent::Header {
                    parameters: vec![TemplateParameter::Text {
                        text: "Black Friday".into(),
                        parameter_name: Some("sale_name".into()),
                    }],
                },
                TemplateComponent::Body {
                    parameters: vec![
                        TemplateParameter::Text {
                            text: "BF2024".into(),
                            parameter_name: Some("discount_code".into()),
                        },
                        TemplateParameter::Text {
                            text: "November 30th".into(),
                            parameter_name: Some("end_date".into()),
                        },
                    ],
                },
                TemplateComponent::Button {
                    sub_type: TemplateButtonKind::CopyCode,
                    index: 0,
                    parameters: vec![TemplateParameter::CouponCode {
                        coupon_code: "BF2024".into(),
                    }],
                },
            ],
        })),
        envelope(
            "template",
            json!({
                "name": "seasonal_promotion",
                "language": {"code": "en"},
                "components": [
                    {"type": "header", "parameters": [{"type": "text", "parameter_name": "sale_name", "text": "Black Friday"}]},
                    {"type": "body", "parameters": [
                        {"type": "text", "parameter_name": "discount_code", "text": "BF2024"},
                        {"type": "text", "parameter_name": "end_date", "text": "November 30th"}
                    ]},
                    {"type": "button", "sub_type": "copy_code", "index": "0", "parameters": [{"type": "coupon_code", "coupon_code": "BF2024"}]}
                ]
            }),
        ),
    ));

    cases.push((
        "template without parameters, document header by id",
        to(OutboundContent::Template(TemplateMessage {
            name: "invoice".into(),
            language: "pt_BR".into(),
            components: vec![TemplateComponent::Header {
                parameters: vec![TemplateParameter::Document {
                    document: TemplateDocument {
                        source: MediaSource::Id("1013859600285441".into()),
                        filename: Some("invoice.pdf".into()),
                    },
                }],
            }],
        })),
        envelope(
            "template",
            json!({
                "name": "invoice",
                "language": {"code": "pt_BR"},
                "components": [{"type": "header", "parameters": [{"type": "document", "document": {"id": "1013859600285441", "filename": "invoice.pdf"}}]}]
            }),
        ),
    ));

    cases.push((
        "reply buttons",
        to(OutboundContent::Buttons {
            body: "Reschedule?".into(),
            header: Some("Workshop".into()),
            footer: Some("Lucky Shrub".into()),
            buttons: vec![
                ReplyButton {
                    id: "change-button".into(),
                    title: "Change".into(),
                },
                ReplyButton {
                    id: "cancel-button".into(),
                    title: "Cancel".into(),
                },
            ],
        }),
        envelope(
            "interactive",
            json!({
                "type": "button",
                "header": {"type": "text", "text": "Workshop"},
                "body": {"text": "Reschedule?"},
                "footer": {"text": "Lucky Shrub"},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": "change-button", "title": "Change"}},
                    {"type": "reply", "reply": {"id": "cancel-button", "title": "Cancel"}}
                ]}
            }),
        ),
    ));

    cases.push((
        "reply buttons without header/footer",
        to(OutboundContent::Buttons {
            body: "Yes or no?".into(),
            header: None,
            footer: None,
            buttons: vec![ReplyButton {
                id: "y".into(),
                title: "Yes".into(),
            }],
        }),
        envelope(
            "interactive",
            json!({
                "type": "button",
                "body": {"text": "Yes or no?"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]}
            }),
        ),
    ));

    cases.push((
        "list",
        to(OutboundContent::List {
            body: "Which shipping option do you prefer?".into(),
            header: Some("Choose Shipping Option".into()),
            footer: Some("Lucky Shrub".into()),
            button: "Shipping Options".into(),
            sections: vec![
                ListSection {
                    title: Some("I want it ASAP!".into()),
                    rows: vec![
                        ListRow {
                            id: "priority_express".into(),
                            title: "Priority Mail Express".into(),
                            description: Some("Next Day to 2 Days".into()),
                        },
                        ListRow {
                            id: "priority_mail".into(),
                            title: "Priority Mail".into(),
                            description: None,
                        },
                    ],
                },
                ListSection {
                    title: Some("I can wait a bit".into()),
                    rows: vec![ListRow {
                        id: "ground".into(),
                        title: "Ground Advantage".into(),
                        description: Some("2 to 5 Days".into()),
                    }],
                },
            ],
        }),
        envelope(
            "interactive",
            json!({
                "type": "list",
                "header": {"type": "text", "text": "Choose Shipping Option"},
                "body": {"text": "Which shipping option do you prefer?"},
                "footer": {"text": "Lucky Shrub"},
                "action": {
                    "button": "Shipping Options",
                    "sections": [
                        {"title": "I want it ASAP!", "rows": [
                            {"id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"},
                            {"id": "priority_mail", "title": "Priority Mail"}
                        ]},
                        {"title": "I can wait a bit", "rows": [
                            {"id": "ground", "title": "Ground Advantage", "description": "2 to 5 Days"}
                        ]}
                    ]
                }
            }),
        ),
    ));

    let media =
        |kind: MediaKind, source: MediaSource, caption: Option<&str>, filename: Option<&str>| {
            to(OutboundContent::Media {
                kind,
                source,
                caption: caption.map(Into::into),
                filename: filename.map(Into::into),
            })
        };
    cases.push((
        "image by id with caption",
        media(
            MediaKind::Image,
            MediaSource::Id("1479537139650973".into()),
            Some("The best succulent ever?"),
            None,
        ),
        envelope(
            "image",
            json!({"id": "1479537139650973", "caption": "The best succulent ever?"}),
        ),
    ));
    cases.push((
        "video by link",
        media(
            MediaKind::Video,
            MediaSource::Link("https://media.example.com/v.mp4".into()),
            Some("A video"),
            None,
        ),
        envelope(
            "video",
            json!({"link": "https://media.example.com/v.mp4", "caption": "A video"}),
        ),
    ));
    cases.push((
        "audio by id",
        media(
            MediaKind::Audio,
            MediaSource::Id("1013859600285441".into()),
            None,
            None,
        ),
        envelope("audio", json!({"id": "1013859600285441"})),
    ));
    cases.push((
        "document by link with filename",
        media(
            MediaKind::Document,
            MediaSource::Link("https://media.example.com/invoice.pdf".into()),
            Some("Your invoice"),
            Some("invoice-42.pdf"),
        ),
        envelope(
            "document",
            json!({"link": "https://media.example.com/invoice.pdf", "caption": "Your invoice", "filename": "invoice-42.pdf"}),
        ),
    ));
    cases.push((
        "sticker by id",
        media(
            MediaKind::Sticker,
            MediaSource::Id("798882015472548".into()),
            None,
            None,
        ),
        envelope("sticker", json!({"id": "798882015472548"})),
    ));

    cases.push((
        "location",
        to(OutboundContent::Location {
            latitude: 37.44216251868683,
            longitude: -122.16153582049394,
            name: Some("Philz Coffee".into()),
            address: Some("101 Forest Ave, Palo Alto, CA 94301".into()),
        }),
        envelope(
            "location",
            json!({"latitude": 37.44216251868683, "longitude": -122.16153582049394, "name": "Philz Coffee", "address": "101 Forest Ave, Palo Alto, CA 94301"}),
        ),
    ));

    cases.push((
        "contacts",
        to(OutboundContent::Contacts {
            contacts: vec![ContactCard {
                name: ContactName {
                    formatted_name: "Barbara J. Johnson".into(),
                    first_name: Some("Barbara".into()),
                    last_name: Some("Johnson".into()),
                    ..Default::default()
                },
                phones: vec![ContactPhone {
                    phone: Some("+1 (940) 555-1234".into()),
                    kind: Some("HOME".into()),
                    wa_id: Some("19405551234".into()),
                }],
                emails: vec![ContactEmail {
                    email: Some("bjohnson@luckyshrub.com".into()),
                    kind: Some("WORK".into()),
                }],
                addresses: vec![ContactAddress {
                    street: Some("1 Lucky Shrub Way".into()),
                    city: Some("Menlo Park".into()),
                    state: Some("CA".into()),
                    zip: Some("94025".into()),
                    country: Some("United States".into()),
                    country_code: Some("US".into()),
                    kind: Some("WORK".into()),
                }],
                urls: vec![ContactUrl {
                    url: Some("https://www.luckyshrub.com".into()),
                    kind: Some("WORK".into()),
                }],
                org: Some(ContactOrg {
                    company: Some("Lucky Shrub".into()),
                    department: Some("Legal".into()),
                    title: Some("Lead Counsel".into()),
                }),
                birthday: Some("1999-01-23".into()),
            }],
        }),
        envelope(
            "contacts",
            json!([{
                "name": {"formatted_name": "Barbara J. Johnson", "first_name": "Barbara", "last_name": "Johnson"},
                "phones": [{"phone": "+1 (940) 555-1234", "type": "HOME", "wa_id": "19405551234"}],
                "emails": [{"email": "bjohnson@luckyshrub.com", "type": "WORK"}],
                "addresses": [{"street": "1 Lucky Shrub Way", "city": "Menlo Park", "state": "CA", "zip": "94025", "country": "United States", "country_code": "US", "type": "WORK"}],
                "urls": [{"url": "https://www.luckyshrub.com", "type": "WORK"}],
                "org": {"company": "Lucky Shrub", "department": "Legal", "title": "Lead Counsel"},
                "birthday": "1999-01-23"
            }]),
        ),
    ));

    cases.push((
        "reaction",
        to(OutboundContent::Reaction {
            message_id: "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQUZCMTY0MDc2MUYwNzBDNTY5MAA=".into(),
            emoji: "\u{1F600}".into(),
        }),
        envelope(
            "reaction",
            json!({"message_id": "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQUZCMTY0MDc2MUYwNzBDNTY5MAA=", "emoji": "😀"}),
        ),
    ));

    let mut bsuid = to(text("Hello"));
    bsuid.to = "US.13491208655302741918".into();
    bsuid.biz_opaque_callback_data = None;
    cases.push((
        "text to a business-scoped user id",
        bsuid,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "recipient": "US.13491208655302741918",
            "type": "text",
            "text": {"preview_url": false, "body": "Hello"}
        }),
    ));
    cases
}

#[tokio::test]
async fn every_message_kind_goes_out_in_metas_documented_shape() {
    let fake = start().await;
    let client = GraphClient::new(config(&fake)).unwrap();
    let cases = every_kind();
    for (i, (name, msg, expected)) in cases.iter().enumerate() {
        // Our JSON representation round-trips (it is what the staff API accepts).
        let ours = serde_json::to_value(msg).unwrap();
        let back: OutboundMessage = serde_json::from_value(ours).unwrap();
        assert_eq!(&back, msg, "{name}: our JSON round-trips");

        let accepted = client
            .send(PNID, TOKEN, msg)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(accepted.wamid, format!("wamid.FAKE{i}"), "{name}");
        let reqs = fake.requests();
        assert_eq!(reqs.len(), i + 1, "{name}: one request per send");
        let r = reqs.last().unwrap();
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, format!("/{VERSION}/{PNID}/messages"), "{name}");
        assert_eq!(r.auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(&r.json(), expected, "{name}: request body");
        assert_eq!(&msg.to_graph_json(), expected, "{name}: to_graph_json");
        if msg.to.starts_with("US.") {
            assert_eq!(accepted.user_id.as_deref(), Some("US.13491208655302741918"));
            assert_eq!(accepted.wa_id, None);
        } else {
            assert_eq!(accepted.wa_id.as_deref(), Some("16505551234"), "{name}");
        }
    }
}

#[tokio::test]
async fn mark_read_sends_the_documented_body() {
    let fake = start().await;
    let client = GraphClient::new(config(&fake)).unwrap();
    client.mark_read(PNID, TOKEN, "wamid.IN42").await.unwrap();
    let r = &fake.requests()[0];
    assert_eq!(r.path, format!("/{VERSION}/{PNID}/messages"));
    assert_eq!(
        r.json(),
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN42"})
    );
}

#[tokio::test]
async fn invalid_messages_never_reach_meta() {
    let fake = start().await;
    let client = GraphClient::new(config(&fake)).unwrap();
    let msg = to(text(&"x".repeat(TEXT_BODY_MAX + 1)));
    let err = client.send(PNID, TOKEN, &msg).await.unwrap_err();
    match &err {
        GraphError::Validation(v) => assert_eq!(v.field, "content.body"),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("content.body"), "{err}");
    let err = client
        .send("../me", TOKEN, &to(text("hi")))
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Validation(ref v) if v.field == "phone_number_id"));
    assert_eq!(fake.count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Errors and retries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_error_class_is_mapped_and_retried_or_refused() {
    // (code, HTTP status Meta uses, class, retried automatically)
    let table: &[(i64, u16, ErrorClass, bool)] = &[
        (130429, 400, ErrorClass::RateLimited, true),
        (131056, 400, ErrorClass::RateLimited, true),
        (4, 400, ErrorClass::RateLimited, true),
        (80007, 400, ErrorClass::RateLimited, true),
        (130429, 429, ErrorClass::RateLimited, true),
        (131000, 500, ErrorClass::Temporary, true),
        (131016, 503, ErrorClass::Temporary, true),
        (1, 400, ErrorClass::Temporary, true),
        (2, 503, ErrorClass::Temporary, true),
        (131026, 400, ErrorClass::RecipientInvalid, false),
        (131047, 400, ErrorClass::NeedsTemplate, false),
        (131049, 400, ErrorClass::MarketingCapped, false),
        (131050, 400, ErrorClass::OptedOut, false),
        (131048, 400, ErrorClass::TemplatePaused, false),
        (132015, 400, ErrorClass::TemplatePaused, false),
        (132016, 400, ErrorClass::TemplatePaused, false),
        (132000, 400, ErrorClass::TemplateParams, false),
        (132001, 404, ErrorClass::TemplateParams, false),
        (132012, 400, ErrorClass::TemplateParams, false),
        (133010, 400, ErrorClass::NumberOrAccount, false),
        (131031, 403, ErrorClass::NumberOrAccount, false),
        (368, 403, ErrorClass::NumberOrAccount, false),
        (131042, 400, ErrorClass::NumberOrAccount, false),
        (190, 401, ErrorClass::Auth, false),
        (0, 401, ErrorClass::Auth, false),
        (3, 400, ErrorClass::Auth, false),
        (10, 403, ErrorClass::Auth, false),
        (200, 403, ErrorClass::Auth, false),
        (299, 403, ErrorClass::Auth, false),
        (100, 400, ErrorClass::Unknown, false),
        (131009, 400, ErrorClass::Unknown, false),
        // The class comes from the code, whatever the status.
        (131026, 500, ErrorClass::RecipientInvalid, false),
    ];
    let fake = start().await;
    let client = GraphClient::new(config(&fake)).unwrap();
    for &(code, http, class, retried) in table {
        fake.requests.lock().unwrap().clear();
        for _ in 0..3 {
            fake.push(meta_error(http, code, Some(2_494_010)));
        }
        let err = client.send(PNID, TOKEN, &to(text("hi"))).await.unwrap_err();
        let expected_requests = if retried { 3 } else { 1 };
        assert_eq!(fake.count(), expected_requests, "code {code}: requests");
        fake.script.lock().unwrap().clear();
        assert_eq!(err.class(), Some(class), "code {code}");
        assert_eq!(err.is_retryable(), retried, "code {code}");
        match err {
            GraphError::Meta {
                http_status,
                code: c,
                subcode,
                message,
                details,
                fbtrace_id,
                ..
            } => {
                assert_eq!((http_status, c, subcode), (http, code, Some(2_494_010)));
                assert_eq!(message, format!("(#{code}) error {code}"));
                assert_eq!(
                    details.as_deref(),
                    Some(format!("details of {code}").as_str())
                );
                assert_eq!(fbtrace_id.as_deref(), Some("AbCdEfTrace"));
            }
            other => panic!("code {code}: {other}"),
        }
    }

    // Non-send calls follow the same policy.
    fake.requests.lock().unwrap().clear();
    fake.push(meta_error(500, 131000, None));
    client.mark_read(PNID, TOKEN, "wamid.X").await.unwrap();
    assert_eq!(fake.count(), 2);
    fake.requests.lock().unwrap().clear();
    fake.push(meta_error(401, 190, None));
    let e = client.media_info("123", TOKEN).await.unwrap_err();
    assert_eq!(e.class(), Some(ErrorClass::Auth));
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn rate_limit_as_http_400_then_success_sends_once() {
    let fake = start().await;
    let attempts = Arc::new(Attempts::default());
    let client = GraphClient::new(config(&fake))
        .unwrap()
        .with_observer(attempts.observer());
    fake.push(meta_error(400, 130429, None));
    let accepted = client.send(PNID, TOKEN, &to(text("hello"))).await.unwrap();
    assert_eq!(accepted.wamid, "wamid.FAKE0");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "the rate-limited request and one retry");
    assert_eq!(reqs[0].body, reqs[1].body, "the same body is re-sent");
    let seen = attempts.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].1, seen[0].2, seen[0].3), (1, Some(400), true));
    assert_eq!((seen[1].1, seen[1].2, seen[1].3), (2, Some(200), false));
    assert!(seen.iter().all(|s| s.0 == CallKind::Send));
}

#[tokio::test]
async fn a_response_that_never_comes_is_unknown_and_not_resent() {
    let fake = start().await;
    let mut cfg = config(&fake);
    cfg.timeout = Duration::from_millis(300);
    cfg.connect_timeout = Duration::from_millis(200);
    let client = GraphClient::new(cfg).unwrap();
    fake.push(reply(
        200,
        r#"{"messages":[{"id":"wamid.LATE"}]}"#,
        Duration::from_secs(3),
    ));
    let started = std::time::Instant::now();
    let err = client
        .send(PNID, TOKEN, &to(text("hello")))
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Unknown(_)), "{err}");
    assert!(!err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.count(),
        1,
        "a send whose answer was lost is never re-sent"
    );
}

#[tokio::test]
async fn gateway_error_or_missing_wamid_on_a_send_is_unknown() {
    let fake = start().await;
    let client = GraphClient::new(config(&fake)).unwrap();
    fake.push(reply(502, "<html>Bad Gateway</html>", Duration::ZERO));
    let err = client.send(PNID, TOKEN, &to(text("a"))).await.unwrap_err();
    assert!(matches!(err, GraphError::Unknown(_)), "{err}");
    assert_eq!(fake.count(), 1);
    fake.push(reply(
        200,
        r#"{"messaging_product":"whatsapp","messages":[]}"#,
        Duration::ZERO,
    ));
    let err = client.send(PNID, TOKEN, &to(text("b"))).await.unwrap_err();
    assert!(matches!(err, GraphError::Unknown(_)), "{err}");
    assert_eq!(fake.count(), 2);
}

#[tokio::test]
async fn connection_refused_is_not_sent_and_retried_up_to_max_attempts() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again here: nothing listens on the port
    let attempts = Arc::new(Attempts::default());
    let cfg = GraphConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        version: VERSION.into(),
        max_attempts: 4,
        retry_base: Duration::from_millis(1),
        retry_cap: Duration::from_millis(4),
        ..GraphConfig::default()
    };
    let client = GraphClient::new(cfg)
        .unwrap()
        .with_observer(attempts.observer());
    let err = client.send(PNID, TOKEN, &to(text("hi"))).await.unwrap_err();
    assert!(matches!(err, GraphError::NotSent(_)), "{err}");
    assert!(err.is_retryable());
    assert_eq!(attempts.len(), 4);
    let seen = attempts.0.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|s| (s.1, s.2, s.3)).collect::<Vec<_>>(),
        vec![
            (1, None, true),
            (2, None, true),
            (3, None, true),
            (4, None, false)
        ]
    );
}

#[tokio::test]
async fn the_token_never_appears_in_errors_or_observations() {
    let fake = start().await;
    let attempts = Arc::new(Attempts::default());
    let client = GraphClient::new(config(&fake))
        .unwrap()
        .with_observer(attempts.observer());
    let err = client
        .send(PNID, "EAAwrong-token", &to(text("hi")))
        .await
        .unwrap_err();
    assert_eq!(err.class(), Some(ErrorClass::Auth));
    for shown in [
        format!("{err}"),
        format!("{err:?}"),
        format!("{client:?}"),
        format!("{:?}", attempts.0.lock().unwrap()),
    ] {
        assert!(!shown.contains("EAAwrong-token"), "{shown}");
        assert!(!shown.contains(TOKEN), "{shown}");
    }
}

// ---------------------------------------------------------------------------------------------
// Templates, media
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn templates_follow_every_page() {
    let fake = start().await;
    let client = GraphClient::new(config(&fake)).unwrap();
    let templates = client.templates(WABA, TOKEN).await.unwrap();
    let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a1", "a2", "b1", "b2", "c1"]);
    assert_eq!(templates[2].status, "REJECTED");
    assert_eq!(templates[0].parameter_format.as_deref(), Some("POSITIONAL"));
    assert_eq!(templates[0].id, "id_a1");
    assert_eq!(templates[0].other["quality_score"]["score"], "GREEN");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.path, format!("/{VERSION}/{WABA}/message_templates"));
        assert_eq!(r.method, Method::GET);
        let q = r.query.as_deref().unwrap();
        assert!(q.contains("limit=100") && q.contains("fields="), "{q}");
    }
    assert!(!reqs[0].query.as_deref().unwrap().contains("after="));
    assert!(reqs[1].query.as_deref().unwrap().contains("after=CUR1"));
    assert!(reqs[2].query.as_deref().unwrap().contains("after=CUR2"));
}

#[tokio::test]
async fn media_upload_is_multipart_with_metas_fields() {
    let fake = start().await;
    let client = GraphClient::new(config(&fake)).unwrap();
    let id = client
        .upload_media(PNID, TOKEN, MEDIA_BYTES, "image/png", "photo \"1\".png")
        .await
        .unwrap();
    assert_eq!(id, "4490709327384033");
    let r = &fake.requests()[0];
    assert_eq!(r.path, format!("/{VERSION}/{PNID}/media"));
    assert_eq!(r.auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    let parts = parse_multipart(r.content_type.as_deref().unwrap(), &r.body).unwrap();
    assert_eq!(parts.len(), 3);
    let field = |n: &str| parts.iter().find(|p| p.name == n).unwrap();
    assert_eq!(field("messaging_product").data, b"whatsapp");
    assert_eq!(field("type").data, b"image/png");
    let file = field("file");
    assert_eq!(file.data, MEDIA_BYTES);
    assert_eq!(file.filename.as_deref(), Some("photo _1_.png"));
    assert_eq!(file.content_type.as_deref(), Some("image/png"));

    let err = client
        .upload_media(PNID, TOKEN, MEDIA_BYTES, "image/png\r\nX-Evil: 1", "a.png")
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Validation(ref v) if v.field == "type"));
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn media_lookup_and_download_from_the_allowed_host() {
    let fake = start().await;
    let client = GraphClient::new(config(&fake)).unwrap();
    let info = client.media_info("1037543291543636", TOKEN).await.unwrap();
    assert_eq!(info.mime_type, "image/png");
    assert_eq!(info.file_size, MEDIA_BYTES.len() as u64);
    assert_eq!(info.id, "1037543291543636");
    let bytes = client.download_media(&info.url, TOKEN, 1024).await.unwrap();
    assert_eq!(bytes, MEDIA_BYTES);
    let reqs = fake.requests();
    assert_eq!(reqs[0].path, format!("/{VERSION}/1037543291543636"));
    assert_eq!(reqs[1].path, "/cdn/whatsapp_business/attachments/");
    assert_eq!(
        reqs[1].auth.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    let (info2, bytes2) = client
        .fetch_media("1037543291543636", TOKEN, 1024)
        .await
        .unwrap();
    assert_eq!((info2, bytes2), (info, bytes));

    // Larger than allowed: abandoned.
    let err = client
        .fetch_media("1037543291543636", TOKEN, 4)
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::BadResponse(_)), "{err}");
    let big = format!("http://{}/big", fake.addr());
    let err = client.download_media(&big, TOKEN, 1000).await.unwrap_err();
    assert!(matches!(err, GraphError::BadResponse(_)), "{err}");
}

#[tokio::test]
async fn media_download_refuses_insecure_and_foreign_hosts_without_connecting() {
    let fake = start().await;
    let port = fake.addr().port();
    let client = GraphClient::new(config(&fake)).unwrap();
    let refused = [
        // Not https on a Meta host.
        "http://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1".to_owned(),
        // https, but not a Meta host.
        "https://example.com/whatsapp_business/attachments/?mid=1".to_owned(),
        "https://fbsbx.com.evil.example/x".to_owned(),
        // Our own fake server under another name than the configured test host.
        format!("http://localhost:{port}/cdn/x"),
        format!("https://localhost:{port}/cdn/x"),
        "not a url".to_owned(),
    ];
    for url in &refused {
        let err = client.download_media(url, TOKEN, 1024).await.unwrap_err();
        assert!(matches!(err, GraphError::Refused(_)), "{url}: {err}");
    }
    // Without the test-host allowance, the fake server's own address is refused too.
    let strict = GraphClient::new(GraphConfig {
        allow_insecure_test_host: None,
        ..config(&fake)
    })
    .unwrap();
    let own = format!("http://{}/cdn/x", fake.addr());
    assert!(matches!(
        strict.download_media(&own, TOKEN, 1024).await,
        Err(GraphError::Refused(_))
    ));
    assert_eq!(fake.count(), 0, "no refused URL was fetched");

    // A redirect away from the allowed host is not followed.
    let redirect = format!("http://{}/redirect", fake.addr());
    let err = client
        .download_media(&redirect, TOKEN, 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::BadResponse(_)), "{err}");
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/redirect"]);
}

// ---------------------------------------------------------------------------------------------
// Validation: every limit, at the limit and one over
// ---------------------------------------------------------------------------------------------

type Build = fn(usize) -> OutboundMessage;

fn s(n: usize) -> String {
    // Two-byte characters: lengths are counted in characters, not bytes.
    "é".repeat(n)
}

fn buttons(n: usize, title: usize, id: usize) -> OutboundContent {
    OutboundContent::Buttons {
        body: "b".into(),
        header: None,
        footer: None,
        buttons: (0..n)
            .map(|i| ReplyButton {
                // Unique, and exactly `id` / `title` characters long (empty when 0).
                id: if id == 0 {
                    String::new()
                } else {
                    format!("{i}{}", "i".repeat(id - 1))
                },
                title: if title == 0 {
                    String::new()
                } else {
                    format!("{i}{}", s(title - 1))
                },
            })
            .collect(),
    }
}

fn list(sections: usize, rows_per_section: usize) -> OutboundContent {
    OutboundContent::List {
        body: "b".into(),
        header: None,
        footer: None,
        button: "Options".into(),
        sections: (0..sections)
            .map(|si| ListSection {
                title: Some(format!("S{si}")),
                rows: (0..rows_per_section)
                    .map(|ri| ListRow {
                        id: format!("{si}-{ri}"),
                        title: "Row".into(),
                        description: None,
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn list_with(
    f: impl FnOnce(&mut String, &mut Option<String>, &mut ListSection),
) -> OutboundContent {
    let mut body = "b".to_owned();
    let mut button = Some("Options".to_owned());
    let mut section = ListSection {
        title: Some("S".into()),
        rows: vec![ListRow {
            id: "r".into(),
            title: "Row".into(),
            description: None,
        }],
    };
    f(&mut body, &mut button, &mut section);
    OutboundContent::List {
        body,
        header: None,
        footer: None,
        button: button.unwrap(),
        sections: vec![section],
    }
}

fn media_caption(kind: MediaKind, n: usize) -> OutboundMessage {
    to(OutboundContent::Media {
        kind,
        source: MediaSource::Id("1".into()),
        caption: Some(s(n)),
        filename: None,
    })
}

#[test]
fn every_limit_at_the_limit_is_accepted_and_one_over_is_refused_naming_the_field() {
    let table: &[(&str, usize, &str, Build)] = &[
        ("text body", TEXT_BODY_MAX, "content.body", |n| {
            to(text(&s(n)))
        }),
        ("buttons body", INTERACTIVE_BODY_MAX, "content.body", |n| {
            let mut m = to(buttons(1, 5, 5));
            if let OutboundContent::Buttons { body, .. } = &mut m.content {
                *body = s(n);
            }
            m
        }),
        ("buttons header", HEADER_TEXT_MAX, "content.header", |n| {
            let mut m = to(buttons(1, 5, 5));
            if let OutboundContent::Buttons { header, .. } = &mut m.content {
                *header = Some(s(n));
            }
            m
        }),
        ("buttons footer", FOOTER_MAX, "content.footer", |n| {
            let mut m = to(buttons(1, 5, 5));
            if let OutboundContent::Buttons { footer, .. } = &mut m.content {
                *footer = Some(s(n));
            }
            m
        }),
        ("button count", REPLY_BUTTONS_MAX, "content.buttons", |n| {
            to(buttons(n, 5, 5))
        }),
        (
            "button title",
            REPLY_BUTTON_TITLE_MAX,
            "content.buttons[0].title",
            |n| to(buttons(1, n, 5)),
        ),
        (
            "button id",
            REPLY_BUTTON_ID_MAX,
            "content.buttons[0].id",
            |n| to(buttons(1, 5, n)),
        ),
        ("list body", INTERACTIVE_BODY_MAX, "content.body", |n| {
            to(list_with(|b, _, _| *b = s(n)))
        }),
        ("list header", HEADER_TEXT_MAX, "content.header", |n| {
            let mut m = to(list(1, 1));
            if let OutboundContent::List { header, .. } = &mut m.content {
                *header = Some(s(n));
            }
            m
        }),
        ("list footer", FOOTER_MAX, "content.footer", |n| {
            let mut m = to(list(1, 1));
            if let OutboundContent::List { footer, .. } = &mut m.content {
                *footer = Some(s(n));
            }
            m
        }),
        (
            "list button label",
            LIST_BUTTON_MAX,
            "content.button",
            |n| to(list_with(|_, b, _| *b = Some(s(n)))),
        ),
        (
            "list rows in one section",
            LIST_ROWS_MAX,
            "content.sections",
            |n| to(list(1, n)),
        ),
        (
            "list rows across sections",
            LIST_ROWS_MAX,
            "content.sections",
            |n| {
                // n rows spread one per section would hit the section limit at 11 too; use two
                // sections with the rows split.
                let mut m = to(list(2, 1));
                if let OutboundContent::List { sections, .. } = &mut m.content {
                    let extra = n - 2;
                    for i in 0..extra {
                        sections[1].rows.push(ListRow {
                            id: format!("x{i}"),
                            title: "Row".into(),
                            description: None,
                        });
                    }
                }
                m
            },
        ),
        (
            "list sections",
            LIST_SECTIONS_MAX,
            "content.sections",
            |n| to(list(n, 1)),
        ),
        (
            "section title",
            LIST_SECTION_TITLE_MAX,
            "content.sections[0].title",
            |n| to(list_with(|_, _, sec| sec.title = Some(s(n)))),
        ),
        (
            "row title",
            LIST_ROW_TITLE_MAX,
            "content.sections[0].rows[0].title",
            |n| to(list_with(|_, _, sec| sec.rows[0].title = s(n))),
        ),
        (
            "row id",
            LIST_ROW_ID_MAX,
            "content.sections[0].rows[0].id",
            |n| to(list_with(|_, _, sec| sec.rows[0].id = "i".repeat(n))),
        ),
        (
            "row description",
            LIST_ROW_DESCRIPTION_MAX,
            "content.sections[0].rows[0].description",
            |n| to(list_with(|_, _, sec| sec.rows[0].description = Some(s(n)))),
        ),
        ("image caption", CAPTION_MAX, "content.caption", |n| {
            media_caption(MediaKind::Image, n)
        }),
        ("video caption", CAPTION_MAX, "content.caption", |n| {
            media_caption(MediaKind::Video, n)
        }),
        ("document caption", CAPTION_MAX, "content.caption", |n| {
            media_caption(MediaKind::Document, n)
        }),
        (
            "callback data",
            CALLBACK_DATA_MAX,
            "biz_opaque_callback_data",
            |n| {
                let mut m = to(text("x"));
                m.biz_opaque_callback_data = Some(s(n));
                m
            },
        ),
        (
            "template header text parameter",
            TEMPLATE_HEADER_TEXT_PARAM_MAX,
            "content.components[0].parameters[0].text",
            |n| {
                to(OutboundContent::Template(TemplateMessage {
                    name: "t".into(),
                    language: "en".into(),
                    components: vec![TemplateComponent::Header {
                        parameters: vec![TemplateParameter::Text {
                            text: s(n),
                            parameter_name: None,
                        }],
                    }],
                }))
            },
        ),
        (
            "template coupon code",
            TEMPLATE_COUPON_CODE_MAX,
            "content.components[0].parameters[0].coupon_code",
            |n| {
                to(OutboundContent::Template(TemplateMessage {
                    name: "t".into(),
                    language: "en".into(),
                    components: vec![TemplateComponent::Button {
                        sub_type: TemplateButtonKind::CopyCode,
                        index: 0,
                        parameters: vec![TemplateParameter::CouponCode {
                            coupon_code: "C".repeat(n),
                        }],
                    }],
                }))
            },
        ),
    ];
    for (name, max, field, build) in table {
        let at = build(*max);
        assert_eq!(at.validate(), Ok(()), "{name}: {max} is allowed");
        let over = build(max + 1);
        let err = over
            .validate()
            .expect_err(&format!("{name}: {} is refused", max + 1));
        assert_eq!(err.field, *field, "{name}: {err}");
        assert!(err.to_string().starts_with(field), "{name}: {err}");
    }
}

#[test]
fn every_rule_names_its_field() {
    let set = |f: fn(&mut OutboundMessage)| {
        let mut m = to(text("x"));
        f(&mut m);
        m
    };
    let cases: Vec<(&str, OutboundMessage, &str)> = vec![
        ("empty text", to(text("  ")), "content.body"),
        ("empty recipient", set(|m| m.to = String::new()), "to"),
        (
            "empty reply_to",
            set(|m| m.reply_to = Some(String::new())),
            "reply_to",
        ),
        ("no buttons", to(buttons(0, 5, 5)), "content.buttons"),
        (
            "empty button title",
            to(buttons(1, 0, 5)),
            "content.buttons[0].title",
        ),
        (
            "empty button id",
            to(buttons(1, 5, 0)),
            "content.buttons[0].id",
        ),
        (
            "duplicate button ids",
            to(OutboundContent::Buttons {
                body: "b".into(),
                header: None,
                footer: None,
                buttons: vec![
                    ReplyButton {
                        id: "a".into(),
                        title: "A".into(),
                    },
                    ReplyButton {
                        id: "a".into(),
                        title: "B".into(),
                    },
                ],
            }),
            "content.buttons[1].id",
        ),
        (
            "empty header",
            to(OutboundContent::Buttons {
                body: "b".into(),
                header: Some(String::new()),
                footer: None,
                buttons: vec![ReplyButton {
                    id: "a".into(),
                    title: "A".into(),
                }],
            }),
            "content.header",
        ),
        ("no sections", to(list(0, 0)), "content.sections"),
        ("empty section", to(list(1, 0)), "content.sections[0].rows"),
        (
            "untitled section among several",
            {
                let mut m = to(list(2, 1));
                if let OutboundContent::List { sections, .. } = &mut m.content {
                    sections[1].title = None;
                }
                m
            },
            "content.sections[1].title",
        ),
        (
            "duplicate row ids across sections",
            {
                let mut m = to(list(2, 1));
                if let OutboundContent::List { sections, .. } = &mut m.content {
                    sections[1].rows[0].id = sections[0].rows[0].id.clone();
                }
                m
            },
            "content.sections[1].rows[0].id",
        ),
        (
            "empty list button",
            to(list_with(|_, b, _| *b = Some(String::new()))),
            "content.button",
        ),
        (
            "empty row title",
            to(list_with(|_, _, s| s.rows[0].title = String::new())),
            "content.sections[0].rows[0].title",
        ),
        (
            "audio caption",
            media_caption(MediaKind::Audio, 3),
            "content.caption",
        ),
        (
            "sticker caption",
            media_caption(MediaKind::Sticker, 3),
            "content.caption",
        ),
        (
            "filename on an image",
            to(OutboundContent::Media {
                kind: MediaKind::Image,
                source: MediaSource::Id("1".into()),
                caption: None,
                filename: Some("a.png".into()),
            }),
            "content.filename",
        ),
        (
            "http link",
            to(OutboundContent::Media {
                kind: MediaKind::Image,
                source: MediaSource::Link("http://example.com/a.png".into()),
                caption: None,
                filename: None,
            }),
            "content.source.link",
        ),
        (
            "empty media id",
            to(OutboundContent::Media {
                kind: MediaKind::Video,
                source: MediaSource::Id(String::new()),
                caption: None,
                filename: None,
            }),
            "content.source.id",
        ),
        (
            "latitude over 90",
            to(OutboundContent::Location {
                latitude: 90.0001,
                longitude: 0.0,
                name: None,
                address: None,
            }),
            "content.latitude",
        ),
        (
            "latitude NaN",
            to(OutboundContent::Location {
                latitude: f64::NAN,
                longitude: 0.0,
                name: None,
                address: None,
            }),
            "content.latitude",
        ),
        (
            "longitude under -180",
            to(OutboundContent::Location {
                latitude: 0.0,
                longitude: -180.0001,
                name: None,
                address: None,
            }),
            "content.longitude",
        ),
        (
            "no contacts",
            to(OutboundContent::Contacts { contacts: vec![] }),
            "content.contacts",
        ),
        (
            "contact without name",
            to(OutboundContent::Contacts {
                contacts: vec![ContactCard::default()],
            }),
            "content.contacts[0].name.formatted_name",
        ),
        (
            "reaction without message id",
            to(OutboundContent::Reaction {
                message_id: String::new(),
                emoji: "👍".into(),
            }),
            "content.message_id",
        ),
        (
            "template without name",
            to(OutboundContent::Template(TemplateMessage {
                name: String::new(),
                language: "en".into(),
                components: vec![],
            })),
            "content.name",
        ),
        (
            "template without language",
            to(OutboundContent::Template(TemplateMessage {
                name: "t".into(),
                language: String::new(),
                components: vec![],
            })),
            "content.language",
        ),
        (
            "quick reply without payload",
            to(OutboundContent::Template(TemplateMessage {
                name: "t".into(),
                language: "en".into(),
                components: vec![TemplateComponent::Button {
                    sub_type: TemplateButtonKind::QuickReply,
                    index: 0,
                    parameters: vec![],
                }],
            })),
            "content.components[0].parameters",
        ),
        (
            "button index over 9",
            to(OutboundContent::Template(TemplateMessage {
                name: "t".into(),
                language: "en".into(),
                components: vec![TemplateComponent::Button {
                    sub_type: TemplateButtonKind::QuickReply,
                    index: 10,
                    parameters: vec![TemplateParameter::Payload {
                        payload: "p".into(),
                    }],
                }],
            })),
            "content.components[0].index",
        ),
        (
            "body parameter with a new line",
            to(OutboundContent::Template(TemplateMessage {
                name: "t".into(),
                language: "en".into(),
                components: vec![TemplateComponent::Body {
                    parameters: vec![TemplateParameter::Text {
                        text: "a\nb".into(),
                        parameter_name: None,
                    }],
                }],
            })),
            "content.components[0].parameters[0].text",
        ),
        (
            "bad parameter name",
            to(OutboundContent::Template(TemplateMessage {
                name: "t".into(),
                language: "en".into(),
                components: vec![TemplateComponent::Body {
                    parameters: vec![TemplateParameter::Text {
                        text: "a".into(),
                        parameter_name: Some("Customer Name".into()),
                    }],
                }],
            })),
            "content.components[0].parameters[0].parameter_name",
        ),
    ];
    for (name, m, field) in cases {
        let err = m.validate().expect_err(name);
        assert_eq!(err.field, field, "{name}: {err}");
    }
    // The counterparts that are fine.
    to(list(1, 1)).validate().unwrap();
    let mut single = to(list(1, 1));
    if let OutboundContent::List { sections, .. } = &mut single.content {
        sections[0].title = None;
    }
    single.validate().unwrap();
    to(OutboundContent::Location {
        latitude: -90.0,
        longitude: 180.0,
        name: None,
        address: None,
    })
    .validate()
    .unwrap();
    media_caption(MediaKind::Audio, 0)
        .validate()
        .expect_err("any caption on audio is refused");
}
