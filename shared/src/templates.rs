//! Message templates: the sync from Meta (hourly from the template-sync function, on demand
//! from the staff API) and the check of a template send against the stored template.
//!
//! **Sync** ([`sync`]): every page of `GET /{waba_id}/message_templates` is read first; only a
//! complete list is applied, so a failure half-way never marks anything gone. Each template is
//! written only when something changed; templates stored but no longer listed are flagged gone
//! (see [`crate::store::templates`] for how sync and status webhooks share one item).
//!
//! **Send check** ([`check_template_send`]): the template must be approved and still listed,
//! in the language asked, and the header / body / button parameters must match the
//! placeholders (`{{1}}` or `{{name}}`) of the stored components, positional or named as the
//! template's `parameter_format` says. Meta would refuse such a send (132000 / 132012) after
//! the intent was recorded; checking first gives the staff a clear error instead.
use std::collections::{BTreeSet, HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::Value;

use crate::meta::graph::{GraphClient, GraphError, MessageTemplate};
use crate::meta::outbound::{
    TemplateButtonKind, TemplateComponent, TemplateMessage, TemplateParameter, ValidationError,
};
use crate::secrets::{CachedSecret, MetaSecrets};
use crate::store::templates::{StoredTemplate, SyncWrite, SyncedTemplate, TemplateSyncRecord};
use crate::store::{Store, StoreError, keys};

/// Concurrent item writes of one sync.
const WRITE_CONCURRENCY: usize = 8;

// ---------------------------------------------------------------------------------------------
// Sync
// ---------------------------------------------------------------------------------------------

/// What a sync did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub waba_id: String,
    /// Templates Meta listed.
    pub loaded: u64,
    /// Listed and not stored before.
    pub created: u64,
    /// Stored before and changed (content or status).
    pub updated: u64,
    pub unchanged: u64,
    /// Stored, no longer listed, flagged gone by this sync.
    pub gone: u64,
    /// Listed without a name or language, or twice: not stored.
    pub skipped: u64,
    pub started_at: i64,
    pub finished_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The Meta secret could not be read.
    #[error("Meta credentials are unavailable: {0}")]
    Secrets(String),
    /// The Meta secret lacks what a sync needs (`access_token`, `waba_id`).
    #[error("Meta connection is not configured: {0}")]
    NotConnected(&'static str),
    #[error("Meta template list failed: {0}")]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads every template of the WABA of the Meta secret and stores it (see the module docs).
pub async fn sync(
    store: &Store,
    graph: &GraphClient,
    secrets: &CachedSecret<MetaSecrets>,
    now_ms: fn() -> i64,
) -> Result<SyncReport, SyncError> {
    let creds = secrets
        .get()
        .await
        .map_err(|e| SyncError::Secrets(e.to_string()))?;
    if creds.access_token.is_empty() {
        return Err(SyncError::NotConnected(
            "no access_token in the Meta secret (connection settings)",
        ));
    }
    let waba_id = creds.waba_id.trim();
    if waba_id.is_empty() {
        return Err(SyncError::NotConnected(
            "no waba_id in the Meta secret (connection settings)",
        ));
    }
    sync_waba(store, graph, waba_id, creds.access_token.expose(), now_ms).await
}

/// Loads every template of `waba_id` with `token` and stores it, apart from other WABAs'.
pub async fn sync_waba(
    store: &Store,
    graph: &GraphClient,
    waba_id: &str,
    token: &str,
    now_ms: fn() -> i64,
) -> Result<SyncReport, SyncError> {
    let started = now_ms();
    // Every page first: a partial list must never mark templates gone.
    let listed = graph.templates(waba_id, token).await?;
    apply_listing(store, waba_id, &listed, started, now_ms).await
}

/// Loads the templates of the notification credentials' WABA when it is not the inbox's
/// (`None`: notifications use the inbox's WABA, whose sync covers them).
pub async fn sync_notifications(
    store: &Store,
    graph: &GraphClient,
    inbox: &MetaSecrets,
    notify: &crate::credentials::NotifySecrets,
    now_ms: fn() -> i64,
) -> Result<Option<SyncReport>, SyncError> {
    let e = crate::credentials::effective_notify_credentials(notify, inbox);
    if e.source != crate::credentials::CredentialSource::Notifications {
        return Ok(None);
    }
    let waba_id = e.waba_id.trim();
    if waba_id.is_empty() {
        return Err(SyncError::NotConnected(
            "no waba_id in the notification credentials",
        ));
    }
    if waba_id == inbox.waba_id.trim() {
        return Ok(None);
    }
    sync_waba(store, graph, waba_id, e.access_token.expose(), now_ms)
        .await
        .map(Some)
}

/// Applies a complete listing of Meta's templates to the store.
pub async fn apply_listing(
    store: &Store,
    waba_id: &str,
    listed: &[MessageTemplate],
    started: i64,
    now_ms: fn() -> i64,
) -> Result<SyncReport, SyncError> {
    let stored: HashMap<String, StoredTemplate> = store
        .all_templates(waba_id)
        .await?
        .into_iter()
        .map(|t| (t.sk.clone(), t))
        .collect();
    let mut report = SyncReport {
        waba_id: waba_id.to_string(),
        loaded: listed.len() as u64,
        started_at: started,
        ..Default::default()
    };
    let mut seen: HashSet<String> = HashSet::new();
    // (template, components JSON, existed, content changed, clear reason); owned, so the
    // stream below holds no borrowed item (its future must be `Send` for any lifetime).
    let mut writes = Vec::new();
    for t in listed {
        if t.name.is_empty() || t.language.is_empty() || t.name.contains('#') {
            tracing::warn!(id = %t.id, "Meta listed a template without a usable name or language; skipped");
            report.skipped += 1;
            continue;
        }
        let sk = keys::template_sk(&t.name, &t.language);
        if !seen.insert(sk.clone()) {
            tracing::warn!(name = %t.name, language = %t.language, "Meta listed a template twice; the first kept");
            report.skipped += 1;
            continue;
        }
        let components = serde_json::to_string(&t.components).unwrap_or_else(|_| "[]".into());
        match stored.get(&sk) {
            None => writes.push((t.clone(), components, false, true, false)),
            Some(s) => {
                let content = s.gone
                    || s.template_id.as_deref() != Some(t.id.as_str())
                    || s.category.as_deref() != t.category.as_deref()
                    || s.parameter_format.as_deref() != t.parameter_format.as_deref()
                    || s.components.as_deref() != Some(components.as_str())
                    || s.waba_id.as_deref() != Some(waba_id);
                let status = s.status.as_deref() != Some(t.status.as_str());
                if content || status {
                    writes.push((t.clone(), components, true, content, status));
                } else {
                    report.unchanged += 1;
                }
            }
        }
    }
    let outcomes: Vec<(bool, bool, SyncWrite)> = futures::stream::iter(writes)
        .map(
            |(t, components, existed, content, clear_reason)| async move {
                let w = store
                    .put_synced_template(
                        waba_id,
                        &SyncedTemplate {
                            name: &t.name,
                            language: &t.language,
                            template_id: &t.id,
                            status: &t.status,
                            category: t.category.as_deref(),
                            parameter_format: t.parameter_format.as_deref(),
                            components: &components,
                        },
                        clear_reason,
                        started,
                        now_ms(),
                    )
                    .await?;
                Ok::<_, StoreError>((existed, content, w))
            },
        )
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect()
        .await?;
    for (existed, content, w) in outcomes {
        match (existed, content, w) {
            (false, _, _) => report.created += 1,
            // Only the status differed, and a newer one (a webhook) is stored: nothing changed.
            (true, false, SyncWrite::StatusKept) => report.unchanged += 1,
            (true, _, _) => report.updated += 1,
        }
    }
    for (sk, s) in &stored {
        if !s.gone
            && !seen.contains(sk)
            && store
                .mark_template_gone(waba_id, &s.name, &s.language, started, now_ms())
                .await?
        {
            tracing::info!(name = %s.name, language = %s.language, "template no longer listed by Meta: flagged gone");
            report.gone += 1;
        }
    }
    report.finished_at = now_ms();
    store
        .put_template_sync(&TemplateSyncRecord {
            pk: keys::template_sync_pk(waba_id),
            sk: keys::TEMPLATE_SYNC_SK.into(),
            waba_id: waba_id.to_string(),
            started_at: report.started_at,
            finished_at: report.finished_at,
            loaded: report.loaded,
            created: report.created,
            updated: report.updated,
            unchanged: report.unchanged,
            gone: report.gone,
        })
        .await?;
    tracing::info!(
        waba_id,
        loaded = report.loaded,
        created = report.created,
        updated = report.updated,
        gone = report.gone,
        skipped = report.skipped,
        "templates synced"
    );
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Shape of a stored template
// ---------------------------------------------------------------------------------------------

/// The placeholders (`{{1}}`, `{{order_id}}`) of a text, distinct, in order of appearance.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let inner = after[..close].trim();
        let valid = !inner.is_empty()
            && (inner.bytes().all(|b| b.is_ascii_digit())
                || (inner.as_bytes()[0].is_ascii_lowercase() || inner.as_bytes()[0] == b'_')
                    && inner
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        if valid && !out.iter().any(|p| p == inner) {
            out.push(inner.to_string());
        }
        rest = &after[close + 2..];
    }
    out
}

/// The header of a stored template.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "format", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HeaderShape {
    /// A text header and its placeholders (none for a fixed text).
    Text {
        placeholders: Vec<String>,
    },
    /// `IMAGE`, `VIDEO`, `DOCUMENT` or `LOCATION`: one parameter of that kind is needed.
    Image,
    Video,
    Document,
    Location,
}

/// One button of a stored template.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ButtonShape {
    pub index: usize,
    /// Meta's button type (`QUICK_REPLY`, `URL`, `COPY_CODE`, `FLOW`, `OTP`, `PHONE_NUMBER` …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Placeholders of a dynamic URL.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placeholders: Vec<String>,
}

/// What a send of a stored template must fill.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TemplateShape {
    pub header: Option<HeaderShape>,
    pub body: Vec<String>,
    pub buttons: Vec<ButtonShape>,
}

/// Reads Meta's `components` of a template (unknown components and fields are ignored).
pub fn template_shape(components: &[Value]) -> TemplateShape {
    let mut shape = TemplateShape::default();
    let text = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    for c in components {
        let kind = text(c, "type").to_ascii_uppercase();
        match kind.as_str() {
            "HEADER" => {
                shape.header = Some(match text(c, "format").to_ascii_uppercase().as_str() {
                    "IMAGE" => HeaderShape::Image,
                    "VIDEO" => HeaderShape::Video,
                    "DOCUMENT" => HeaderShape::Document,
                    "LOCATION" => HeaderShape::Location,
                    _ => HeaderShape::Text {
                        placeholders: placeholders(&text(c, "text")),
                    },
                })
            }
            "BODY" => shape.body = placeholders(&text(c, "text")),
            "BUTTONS" => {
                for (index, b) in c
                    .get("buttons")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let kind = text(b, "type").to_ascii_uppercase();
                    let placeholders = if kind == "URL" {
                        placeholders(&text(b, "url"))
                    } else {
                        Vec::new()
                    };
                    shape.buttons.push(ButtonShape {
                        index,
                        kind,
                        placeholders,
                    });
                }
            }
            _ => {}
        }
    }
    shape
}

// ---------------------------------------------------------------------------------------------
// Send check
// ---------------------------------------------------------------------------------------------

fn fail<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError::new(field, reason))
}

/// `{{1}}, {{2}}` / `{{first_name}}`.
fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{{{{{n}}}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn param_name(p: &TemplateParameter) -> Option<&str> {
    match p {
        TemplateParameter::Text { parameter_name, .. }
        | TemplateParameter::Currency { parameter_name, .. }
        | TemplateParameter::DateTime { parameter_name, .. } => parameter_name.as_deref(),
        _ => None,
    }
}

fn is_text_like(p: &TemplateParameter) -> bool {
    matches!(
        p,
        TemplateParameter::Text { .. }
            | TemplateParameter::Currency { .. }
            | TemplateParameter::DateTime { .. }
    )
}

/// Checks text parameters against placeholders, positional or named.
fn check_text_params(
    what: &str,
    field: &str,
    params: &[TemplateParameter],
    expected: &[String],
    named: bool,
) -> Result<(), ValidationError> {
    for (pi, p) in params.iter().enumerate() {
        if !is_text_like(p) {
            return fail(
                format!("{field}[{pi}].type"),
                format!("the {what} takes text, currency or date_time parameters"),
            );
        }
        match (named, param_name(p)) {
            (true, None) => {
                return fail(
                    format!("{field}[{pi}].parameter_name"),
                    format!(
                        "the template uses named parameters: each {what} parameter needs a parameter_name ({})",
                        list(expected)
                    ),
                );
            }
            (false, Some(_)) => {
                return fail(
                    format!("{field}[{pi}].parameter_name"),
                    "the template uses positional parameters ({{1}}, {{2}} …): leave parameter_name out",
                );
            }
            _ => {}
        }
    }
    if named {
        let given: BTreeSet<&str> = params.iter().filter_map(param_name).collect();
        let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
        let missing: Vec<String> = want.difference(&given).map(|s| s.to_string()).collect();
        let extra: Vec<String> = given.difference(&want).map(|s| s.to_string()).collect();
        if !missing.is_empty() || !extra.is_empty() || given.len() != params.len() {
            let mut reason = format!("the {what} expects {}", describe(expected));
            if !missing.is_empty() {
                reason.push_str(&format!("; missing {}", list(&missing)));
            }
            if !extra.is_empty() {
                reason.push_str(&format!("; not in the template {}", list(&extra)));
            }
            if given.len() != params.len() {
                reason.push_str("; a parameter_name is given twice");
            }
            return fail(field, reason);
        }
    } else if params.len() != expected.len() {
        return fail(
            field,
            format!(
                "the {what} expects {}; {} given",
                describe(expected),
                params.len()
            ),
        );
    }
    Ok(())
}

fn describe(expected: &[String]) -> String {
    match expected.len() {
        0 => "no parameters".into(),
        1 => format!("1 parameter ({})", list(expected)),
        n => format!("{n} parameters ({})", list(expected)),
    }
}

/// Meta's button type a send's `sub_type` fills.
fn button_matches(kind: &str, sub: TemplateButtonKind) -> bool {
    match sub {
        TemplateButtonKind::QuickReply => kind == "QUICK_REPLY",
        TemplateButtonKind::Url => kind == "URL" || kind == "OTP",
        TemplateButtonKind::CopyCode => kind == "COPY_CODE",
        TemplateButtonKind::Flow => kind == "FLOW",
    }
}

/// Button types whose send component is required.
fn button_required(b: &ButtonShape) -> bool {
    (b.kind == "URL" && !b.placeholders.is_empty()) || b.kind == "COPY_CODE"
}

/// Button types we know; any other is left for Meta to judge.
const KNOWN_BUTTONS: [&str; 7] = [
    "QUICK_REPLY",
    "URL",
    "COPY_CODE",
    "FLOW",
    "OTP",
    "PHONE_NUMBER",
    "VOICE_CALL",
];

/// Checks a template send against the stored template (see the module docs). Field paths are
/// those of the staff API's message (`content.components[0].parameters`).
pub fn check_template_send(
    stored: &StoredTemplate,
    msg: &TemplateMessage,
) -> Result<(), ValidationError> {
    let label = format!("template {} ({})", stored.name, stored.language);
    if msg.name != stored.name {
        return fail("content.name", format!("does not name {label}"));
    }
    if msg.language != stored.language {
        return fail(
            "content.language",
            format!(
                "{label} is stored in {}, not {}",
                stored.language, msg.language
            ),
        );
    }
    if stored.gone {
        return fail(
            "content.name",
            format!("{label} no longer exists at Meta; load the templates again or pick another"),
        );
    }
    match stored.status.as_deref() {
        Some("APPROVED") => {}
        other => {
            return fail(
                "content.name",
                format!(
                    "{label} is {}, not APPROVED: only approved templates can be sent",
                    other.unwrap_or("of unknown status")
                ),
            );
        }
    }
    if stored.components.is_none() {
        return fail(
            "content.name",
            format!("{label} has not been loaded from Meta yet (POST /api/v1/templates/load)"),
        );
    }
    let shape = template_shape(&stored.components_json());
    let named = stored.is_named();

    let mut header_seen = false;
    let mut body_seen = false;
    let mut buttons_seen: Vec<usize> = Vec::new();
    for (ci, c) in msg.components.iter().enumerate() {
        let field = format!("content.components[{ci}].parameters");
        match c {
            TemplateComponent::Header { parameters } => {
                header_seen = true;
                match &shape.header {
                    None => {
                        if !parameters.is_empty() {
                            return fail(field, format!("{label} has no header to fill"));
                        }
                    }
                    Some(HeaderShape::Text { placeholders }) => {
                        check_text_params("header", &field, parameters, placeholders, named)?;
                    }
                    Some(media) => {
                        let ok = parameters.len() == 1
                            && matches!(
                                (media, &parameters[0]),
                                (HeaderShape::Image, TemplateParameter::Image { .. })
                                    | (HeaderShape::Video, TemplateParameter::Video { .. })
                                    | (HeaderShape::Document, TemplateParameter::Document { .. })
                                    | (HeaderShape::Location, TemplateParameter::Location { .. })
                            );
                        if !ok {
                            return fail(
                                field,
                                format!(
                                    "the header of {label} takes exactly one {} parameter",
                                    media_name(media)
                                ),
                            );
                        }
                    }
                }
            }
            TemplateComponent::Body { parameters } => {
                body_seen = true;
                check_text_params("body", &field, parameters, &shape.body, named)?;
            }
            // The parameters of a button were checked by `TemplateMessage::validate`.
            TemplateComponent::Button {
                sub_type,
                index,
                parameters: _,
            } => {
                let i = usize::from(*index);
                buttons_seen.push(i);
                let Some(b) = shape.buttons.get(i) else {
                    return fail(
                        format!("content.components[{ci}].index"),
                        format!(
                            "{label} has {} button(s); there is no button {i}",
                            shape.buttons.len()
                        ),
                    );
                };
                if !KNOWN_BUTTONS.contains(&b.kind.as_str()) {
                    continue;
                }
                if !button_matches(&b.kind, *sub_type) {
                    return fail(
                        format!("content.components[{ci}].sub_type"),
                        format!("button {i} of {label} is a {} button", b.kind),
                    );
                }
                if b.kind == "URL" && b.placeholders.is_empty() {
                    return fail(
                        format!("content.components[{ci}]"),
                        format!("button {i} of {label} has a fixed URL and takes no parameter"),
                    );
                }
            }
        }
    }
    if !header_seen {
        match &shape.header {
            Some(HeaderShape::Text { placeholders }) if !placeholders.is_empty() => {
                return fail(
                    "content.components",
                    format!(
                        "the header of {label} expects {}; none given",
                        describe(placeholders)
                    ),
                );
            }
            Some(
                h @ (HeaderShape::Image
                | HeaderShape::Video
                | HeaderShape::Document
                | HeaderShape::Location),
            ) => {
                return fail(
                    "content.components",
                    format!(
                        "the header of {label} needs one {} parameter; none given",
                        media_name(h)
                    ),
                );
            }
            _ => {}
        }
    }
    if !body_seen && !shape.body.is_empty() {
        return fail(
            "content.components",
            format!(
                "the body of {label} expects {}; none given",
                describe(&shape.body)
            ),
        );
    }
    if let Some(b) = shape
        .buttons
        .iter()
        .find(|b| button_required(b) && !buttons_seen.contains(&b.index))
    {
        return fail(
            "content.components",
            format!(
                "button {} of {label} ({}) needs a parameter; none given",
                b.index, b.kind
            ),
        );
    }
    Ok(())
}

fn media_name(h: &HeaderShape) -> &'static str {
    match h {
        HeaderShape::Image => "image",
        HeaderShape::Video => "video",
        HeaderShape::Document => "document",
        HeaderShape::Location => "location",
        HeaderShape::Text { .. } => "text",
    }
}

// ---------------------------------------------------------------------------------------------
// Components changed by a webhook
// ---------------------------------------------------------------------------------------------

/// The components (Graph API shape) after a `message_template_components_update`: the body,
/// a text header and the footer are as reported (a text header or footer no longer reported
/// is gone); URL and phone-number buttons are replaced in their positions (the only buttons
/// Meta reports); media headers and other buttons are kept as they were.
pub fn components_after_update(
    existing: &[Value],
    u: &crate::meta::webhook::TemplateComponentsUpdate,
) -> Vec<Value> {
    let find = |t: &str| {
        existing.iter().find(|c| {
            c["type"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(t))
        })
    };
    let mut out = Vec::new();
    match (find("HEADER"), &u.message_template_title) {
        (_, Some(title)) => {
            out.push(serde_json::json!({"type": "HEADER", "format": "TEXT", "text": title}))
        }
        (Some(h), None)
            if !h["format"]
                .as_str()
                .unwrap_or("TEXT")
                .eq_ignore_ascii_case("TEXT") =>
        {
            out.push(h.clone())
        }
        _ => {}
    }
    match (&u.message_template_element, find("BODY")) {
        (Some(text), _) => out.push(serde_json::json!({"type": "BODY", "text": text})),
        (None, Some(b)) => out.push(b.clone()),
        (None, None) => {}
    }
    if let Some(footer) = &u.message_template_footer {
        out.push(serde_json::json!({"type": "FOOTER", "text": footer}));
    }
    let reported: Vec<Value> = u
        .message_template_buttons
        .iter()
        .map(|b| {
            let mut v = serde_json::json!({
                "type": b.message_template_button_type,
                "text": b.message_template_button_text.clone().unwrap_or_default(),
            });
            if let Some(url) = &b.message_template_button_url {
                v["url"] = url.clone().into();
            }
            if let Some(p) = &b.message_template_button_phone_number {
                v["phone_number"] = p.clone().into();
            }
            v
        })
        .collect();
    let is_reported_kind = |b: &Value| {
        b["type"].as_str().is_some_and(|t| {
            t.eq_ignore_ascii_case("URL") || t.eq_ignore_ascii_case("PHONE_NUMBER")
        })
    };
    let mut next = reported.into_iter();
    let mut buttons: Vec<Value> = Vec::new();
    for b in find("BUTTONS")
        .and_then(|c| c["buttons"].as_array())
        .into_iter()
        .flatten()
    {
        if is_reported_kind(b) {
            if let Some(r) = next.next() {
                buttons.push(r);
            }
        } else {
            buttons.push(b.clone());
        }
    }
    buttons.extend(next);
    if !buttons.is_empty() {
        out.push(serde_json::json!({"type": "BUTTONS", "buttons": buttons}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(components: Value, format: Option<&str>, status: &str) -> StoredTemplate {
        StoredTemplate {
            pk: "TPL#w".into(),
            sk: "order_update#en_US".into(),
            name: "order_update".into(),
            language: "en_US".into(),
            waba_id: Some("w".into()),
            template_id: Some("1".into()),
            category: Some("UTILITY".into()),
            status: Some(status.into()),
            reason: None,
            status_at: Some(1),
            status_raw: None,
            parameter_format: format.map(str::to_string),
            components: Some(components.to_string()),
            synced_at: Some(1),
            updated_at: Some(1),
            gone: false,
            gone_at: None,
            quality_score: None,
            quality_previous: None,
            quality_at: None,
            category_previous: None,
            category_pending: None,
            category_pending_at: None,
            category_at: None,
            components_at: None,
        }
    }

    #[test]
    fn a_components_update_replaces_what_meta_reports_and_keeps_the_rest() {
        let existing: Vec<Value> = serde_json::from_value(json!([
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
            {"type": "BODY", "text": "Hi {{1}}", "example": {"body_text": [["Ann"]]}},
            {"type": "FOOTER", "text": "Reply STOP"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://x.example/t/{{1}}"}
            ]}
        ]))
        .unwrap();
        let u: crate::meta::webhook::TemplateComponentsUpdate = serde_json::from_value(json!({
            "message_template_id": 12, "message_template_name": "order_update",
            "message_template_language": "en_US",
            "message_template_element": "Hello {{1}}, your order {{2}} is ready",
            "message_template_buttons": [
                {"message_template_button_type": "URL", "message_template_button_text": "Follow",
                 "message_template_button_url": "https://x.example/f/{{1}}"},
                {"message_template_button_type": "PHONE_NUMBER", "message_template_button_text": "Call",
                 "message_template_button_phone_number": "+15550001111"}
            ]
        }))
        .unwrap();
        let out = components_after_update(&existing, &u);
        assert_eq!(
            Value::Array(out),
            json!([
                {"type": "BODY", "text": "Hello {{1}}, your order {{2}} is ready"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Stop"},
                    {"type": "URL", "text": "Follow", "url": "https://x.example/f/{{1}}"},
                    {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550001111"}
                ]}
            ])
        );
    }

    fn send(components: Value) -> TemplateMessage {
        serde_json::from_value(
            json!({"name": "order_update", "language": "en_US", "components": components}),
        )
        .unwrap()
    }

    fn positional() -> StoredTemplate {
        stored(
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships {{3}}. Thanks {{1}}!"},
                {"type": "FOOTER", "text": "Reply STOP"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Stop"},
                    {"type": "URL", "text": "Track", "url": "https://x.example/t/{{1}}"},
                    {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550001111"}
                ]}
            ]),
            Some("POSITIONAL"),
            "APPROVED",
        )
    }

    fn text(t: &str) -> Value {
        json!({"type": "text", "text": t})
    }

    #[test]
    fn placeholders_are_distinct_and_ordered() {
        assert_eq!(placeholders("{{2}} {{1}} {{2}}"), vec!["2", "1"]);
        assert_eq!(
            placeholders("Hi {{ first_name }}, {{order_id}}"),
            vec!["first_name", "order_id"]
        );
        assert!(placeholders("no {{}} {{Bad Name}} {{ unclosed").is_empty());
        assert!(placeholders("").is_empty());
    }

    #[test]
    fn shape_reads_header_body_and_buttons() {
        let s = template_shape(&positional().components_json());
        assert_eq!(
            s.header,
            Some(HeaderShape::Text {
                placeholders: vec!["1".into()]
            })
        );
        assert_eq!(s.body, vec!["1", "2", "3"]);
        assert_eq!(s.buttons.len(), 3);
        assert_eq!(s.buttons[1].placeholders, vec!["1"]);
        assert_eq!(
            serde_json::to_value(&s.header).unwrap(),
            json!({"format": "TEXT", "placeholders": ["1"]})
        );
    }

    #[test]
    fn a_matching_positional_send_passes() {
        let m = send(json!([
            {"type": "header", "parameters": [text("4821")]},
            {"type": "body", "parameters": [text("Ann"), text("4821"), text("today")]},
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [text("4821")]},
            {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "stop"}]}
        ]));
        check_template_send(&positional(), &m).unwrap();
    }

    #[test]
    fn wrong_counts_are_refused_naming_the_field() {
        let t = positional();
        let e = check_template_send(
            &t,
            &send(json!([
                {"type": "header", "parameters": [text("4821")]},
                {"type": "body", "parameters": [text("Ann")]},
                {"type": "button", "sub_type": "url", "index": "1", "parameters": [text("4821")]}
            ])),
        )
        .unwrap_err();
        assert_eq!(e.field, "content.components[1].parameters");
        assert!(
            e.reason
                .contains("3 parameters ({{1}}, {{2}}, {{3}}); 1 given"),
            "{e}"
        );
        // Missing header and missing dynamic URL button.
        let e = check_template_send(
            &t,
            &send(json!([{"type": "body", "parameters": [text("a"), text("b"), text("c")]}])),
        )
        .unwrap_err();
        assert!(e.reason.contains("header"), "{e}");
        let e = check_template_send(
            &t,
            &send(json!([
                {"type": "header", "parameters": [text("4821")]},
                {"type": "body", "parameters": [text("a"), text("b"), text("c")]}
            ])),
        )
        .unwrap_err();
        assert!(e.reason.contains("button 1"), "{e}");
        // A button that does not exist, or of another kind, or with a fixed URL.
        let base = [
            json!({"type": "header", "parameters": [text("1")]}),
            json!({"type": "body", "parameters": [text("a"), text("b"), text("c")]}),
        ];
        let with = |b: Value| {
            let mut v = base.to_vec();
            v.push(json!({"type": "button", "sub_type": "url", "index": "1", "parameters": [text("x")]}));
            v.push(b);
            send(Value::Array(v))
        };
        let e = check_template_send(&t, &with(json!({"type": "button", "sub_type": "quick_reply", "index": "5", "parameters": [{"type": "payload", "payload": "p"}]}))).unwrap_err();
        assert!(
            e.field.ends_with(".index") && e.reason.contains("3 button"),
            "{e}"
        );
        let e = check_template_send(&t, &with(json!({"type": "button", "sub_type": "copy_code", "index": "0", "parameters": [{"type": "coupon_code", "coupon_code": "X"}]}))).unwrap_err();
        assert!(e.reason.contains("QUICK_REPLY"), "{e}");
        // Positional template: parameter_name is refused.
        let e = check_template_send(
            &t,
            &send(json!([
                {"type": "header", "parameters": [{"type": "text", "text": "1", "parameter_name": "order"}]}
            ])),
        )
        .unwrap_err();
        assert!(e.field.ends_with("parameters[0].parameter_name"), "{e}");
    }

    #[test]
    fn named_templates_need_the_right_names() {
        let t = stored(
            json!([{"type": "BODY", "text": "Hi {{first_name}}, order {{order_id}}"}]),
            Some("NAMED"),
            "APPROVED",
        );
        let ok = send(json!([{"type": "body", "parameters": [
            {"type": "text", "text": "Ann", "parameter_name": "first_name"},
            {"type": "text", "text": "42", "parameter_name": "order_id"}]}]));
        check_template_send(&t, &ok).unwrap();
        let e = check_template_send(
            &t,
            &send(json!([{"type": "body", "parameters": [
            {"type": "text", "text": "Ann", "parameter_name": "first_name"},
            {"type": "text", "text": "42", "parameter_name": "order"}]}])),
        )
        .unwrap_err();
        assert!(
            e.reason.contains("missing {{order_id}}") && e.reason.contains("{{order}}"),
            "{e}"
        );
        let e = check_template_send(
            &t,
            &send(json!([{"type": "body", "parameters": [text("Ann"), text("42")]}])),
        )
        .unwrap_err();
        assert!(e.reason.contains("named parameters"), "{e}");
    }

    #[test]
    fn status_language_and_media_headers() {
        let mut t = positional();
        t.status = Some("PAUSED".into());
        let e = check_template_send(&t, &send(json!([]))).unwrap_err();
        assert!(e.reason.contains("PAUSED, not APPROVED"), "{e}");
        let mut t = positional();
        t.gone = true;
        assert!(
            check_template_send(&t, &send(json!([])))
                .unwrap_err()
                .reason
                .contains("no longer exists")
        );
        let mut m = send(json!([]));
        m.language = "es".into();
        assert_eq!(
            check_template_send(&positional(), &m).unwrap_err().field,
            "content.language"
        );
        let img = stored(
            json!([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Look"}]),
            None,
            "APPROVED",
        );
        let e = check_template_send(&img, &send(json!([]))).unwrap_err();
        assert!(e.reason.contains("one image parameter"), "{e}");
        let e = check_template_send(&img, &send(json!([{"type": "header", "parameters": [{"type": "video", "video": {"id": "1"}}]}]))).unwrap_err();
        assert!(e.reason.contains("image"), "{e}");
        check_template_send(&img, &send(json!([{"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.example/a.png"}}]}]))).unwrap();
        let e = check_template_send(
            &img,
            &send(json!([{"type": "body", "parameters": [text("x")]}])),
        )
        .unwrap_err();
        assert!(e.reason.contains("no parameters; 1 given"), "{e}");
    }
}
