//! `/api/v1/quick-replies`: canned answers, with placeholders filled when one is sent
//! through `POST /api/v1/conversations/{id}/messages` (`{"quick_reply_id": "…"}`).
use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::auth::{Action, Permission, Resource};
use shared::meta::outbound::OutboundContent;
use shared::store::crud::new_id;
use shared::store::model::Conversation;
use shared::store::quick_replies::{
    PLACEHOLDERS, QuickReply, check_placeholders, render_quick_reply,
};

use super::{ListQuery, decode_cursor, encode_cursor, nullable, path_id, perm, text};
use crate::{ApiError, Authed, StaffApp, parse_limit};

const VIEW: Permission = perm(Resource::Quickreplies, Action::View);
const CREATE: Permission = perm(Resource::Quickreplies, Action::Create);
const EDIT: Permission = perm(Resource::Quickreplies, Action::Edit);
const DELETE: Permission = perm(Resource::Quickreplies, Action::Delete);
const BODY_MAX: usize = 4096;
const SCOPE: &str = "quick_replies";

pub fn routes() -> Router<Arc<StaffApp>> {
    Router::new()
        .route("/api/v1/quick-replies", get(list).post(create))
        .route("/api/v1/quick-replies/placeholders", get(placeholders))
        .route(
            "/api/v1/quick-replies/{id}",
            get(read).put(update).delete(remove),
        )
}

pub(crate) fn quick_reply_json(q: &QuickReply) -> Value {
    json!({
        "id": q.id,
        "title": q.title,
        "body": q.body,
        "shortcut": q.shortcut,
        "created_by": q.created_by,
        "created_at": q.created_at,
        "updated_by": q.updated_by,
        "updated_at": q.updated_at,
    })
}

fn valid_title(v: &str) -> Result<String, ApiError> {
    text("title", v, 1, 100)
}

fn valid_body(v: &str) -> Result<String, ApiError> {
    if v.trim().is_empty() {
        return Err(ApiError::bad_request(
            "body must be 1 to 4096 characters (got 0)",
        ));
    }
    let len = v.chars().count();
    if len > BODY_MAX {
        return Err(ApiError::bad_request(format!(
            "body must be 1 to {BODY_MAX} characters (got {len})"
        )));
    }
    check_placeholders(v).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    Ok(v.to_string())
}

fn valid_shortcut(v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) => {
            let ok = (1..=32).contains(&s.len())
                && s.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if ok {
                Ok(Some(s))
            } else {
                Err(ApiError::bad_request(
                    "shortcut must be 1 to 32 characters of a-z, 0-9, _ and -",
                ))
            }
        }
    }
}

async fn list(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(VIEW)?;
    let after = decode_cursor(&keys, SCOPE, q.cursor.as_deref())?;
    let limit = parse_limit(q.limit.as_deref(), 50, 200)?;
    let (rows, next) = app.store.quick_replies(after.as_deref(), limit).await?;
    Ok(axum::Json(json!({
        "data": rows.iter().map(quick_reply_json).collect::<Vec<_>>(),
        "next_cursor": encode_cursor(&keys, SCOPE, next),
    }))
    .into_response())
}

async fn placeholders(Authed(who, _): Authed) -> Result<Response, ApiError> {
    who.require(VIEW)?;
    let data: Vec<Value> = PLACEHOLDERS
        .iter()
        .map(|(name, what)| json!({"placeholder": format!("{{{{{name}}}}}"), "name": name, "description": what}))
        .collect();
    Ok(axum::Json(json!({ "data": data })).into_response())
}

async fn read(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(VIEW)?;
    let q = app
        .store
        .quick_reply(path_id(&id, "quick reply")?)
        .await?
        .ok_or_else(|| ApiError::not_found("quick reply"))?;
    Ok(axum::Json(quick_reply_json(&q)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    title: String,
    body: String,
    #[serde(default)]
    shortcut: Option<String>,
}

async fn create(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require(CREATE)?;
    let b: CreateBody = super::body(&body)?;
    let now = (app.now_ms)();
    let q = QuickReply::new(
        new_id(now),
        valid_title(&b.title)?,
        valid_body(&b.body)?,
        valid_shortcut(b.shortcut)?,
        &who.staff_id,
        now,
    );
    app.store.create_quick_reply(&q).await?;
    tracing::info!(staff_id = %who.staff_id, quick_reply_id = %q.id, "quick reply created");
    Ok((StatusCode::CREATED, axum::Json(quick_reply_json(&q))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
    /// `null` removes the shortcut.
    #[serde(default, deserialize_with = "nullable")]
    shortcut: Option<Option<String>>,
}

/// `PUT /api/v1/quick-replies/{id}`: the fields given are replaced, the others kept.
async fn update(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require(EDIT)?;
    let b: UpdateBody = super::body(&body)?;
    let title = b.title.as_deref().map(valid_title).transpose()?;
    let text_body = b.body.as_deref().map(valid_body).transpose()?;
    let shortcut = b.shortcut.map(valid_shortcut).transpose()?;
    let old = app
        .store
        .quick_reply(path_id(&id, "quick reply")?)
        .await?
        .ok_or_else(|| ApiError::not_found("quick reply"))?;
    let mut new = old.clone();
    if let Some(t) = title {
        new.title = t;
    }
    if let Some(t) = text_body {
        new.body = t;
    }
    if let Some(s) = shortcut {
        new.shortcut = s;
    }
    new.updated_by = Some(who.staff_id.clone());
    new.updated_at = (app.now_ms)();
    app.store.update_quick_reply(&old, &new).await?;
    new.version = old.version + 1;
    tracing::info!(staff_id = %who.staff_id, quick_reply_id = %new.id, "quick reply changed");
    Ok(axum::Json(quick_reply_json(&new)).into_response())
}

async fn remove(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(DELETE)?;
    app.store
        .delete_quick_reply(path_id(&id, "quick reply")?)
        .await?;
    tracing::info!(staff_id = %who.staff_id, quick_reply_id = %id, "quick reply deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The values of the placeholders for a conversation and the staff member sending.
pub(crate) fn placeholder_values(
    conv: &Conversation,
    staff_id: &str,
) -> HashMap<&'static str, String> {
    let mut vars = HashMap::from([("staff_id", staff_id.to_string())]);
    if let Some(name) = conv
        .customer_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        vars.insert("customer_name", name.to_string());
        if let Some(first) = name.split_whitespace().next() {
            vars.insert("customer_first_name", first.to_string());
        }
    }
    let phone = conv
        .customer_phone
        .clone()
        .or_else(|| conv.wa_id.as_ref().map(|w| format!("+{w}")));
    if let Some(p) = phone {
        vars.insert("customer_phone", p);
    }
    vars
}

/// What a reply with `quick_reply_id` sends: the quick reply's body with its placeholders
/// filled for this conversation, as a text message.
pub(crate) async fn quick_reply_content(
    app: &StaffApp,
    conv: &Conversation,
    staff_id: &str,
    quick_reply_id: &str,
) -> Result<OutboundContent, ApiError> {
    let q = match shared::store::crud::is_valid_id(quick_reply_id) {
        true => app.store.quick_reply(quick_reply_id).await?,
        false => None,
    }
    .ok_or_else(|| ApiError::not_found("quick reply"))?;
    let vars = placeholder_values(conv, staff_id);
    let vars: HashMap<&str, String> = vars.into_iter().collect();
    let body = render_quick_reply(&q.body, &vars).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "quick_reply_unrenderable",
            format!("quick reply {}: {e}", q.id),
        )
    })?;
    Ok(OutboundContent::Text {
        body,
        preview_url: false,
    })
}

/// The content of a send: exactly one of `content` or `quick_reply_id`.
pub(crate) async fn send_content(
    app: &StaffApp,
    conv: &Conversation,
    staff_id: &str,
    content: Option<OutboundContent>,
    quick_reply_id: Option<String>,
) -> Result<OutboundContent, ApiError> {
    match (content, quick_reply_id) {
        (Some(c), None) => Ok(c),
        (None, Some(id)) => quick_reply_content(app, conv, staff_id, &id).await,
        _ => Err(ApiError::bad_request(
            "give exactly one of content or quick_reply_id",
        )),
    }
}
