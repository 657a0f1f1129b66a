//! `/api/v1/quick-replies`: canned answers, with placeholders filled when one is sent
//! through `POST /api/v1/conversations/{id}/messages` (`{"quick_reply_id": "…"}`).
use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::auth::{Action, Permission, Resource};
use shared::meta::outbound::OutboundContent;
use shared::store::crud::new_id;
use shared::store::model::Conversation;
use shared::store::quick_replies::{
    PLACEHOLDERS, QuickReply, check_placeholders, render_quick_reply,
};

use utoipa::ToSchema;

use super::{ListQuery, nullable, path_id, perm, text};
use crate::conversations::Page;
use crate::{ApiError, Authed, StaffApp};

const VIEW: Permission = perm(Resource::Quickreplies, Action::View);
const CREATE: Permission = perm(Resource::Quickreplies, Action::Create);
const EDIT: Permission = perm(Resource::Quickreplies, Action::Edit);
const DELETE: Permission = perm(Resource::Quickreplies, Action::Delete);
const BODY_MAX: usize = 4096;
const SCOPE: &str = "quick_replies";

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![list, create, placeholders, read, update, remove]
}

/// A canned answer.
#[derive(Serialize, ToSchema)]
pub struct QuickReplyView {
    pub id: String,
    pub title: String,
    /// The text sent, with `{{placeholders}}` filled for the conversation.
    pub body: String,
    pub shortcut: Option<String>,
    /// Staff id.
    pub created_by: String,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Staff id of the last change.
    pub updated_by: Option<String>,
    /// Epoch milliseconds.
    pub updated_at: i64,
}

impl QuickReplyView {
    pub(crate) fn new(q: &QuickReply) -> Self {
        Self {
            id: q.id.clone(),
            title: q.title.clone(),
            body: q.body.clone(),
            shortcut: q.shortcut.clone(),
            created_by: q.created_by.clone(),
            created_at: q.created_at,
            updated_by: q.updated_by.clone(),
            updated_at: q.updated_at,
        }
    }
}

/// A placeholder a quick reply's body may use.
#[derive(Serialize, ToSchema)]
pub struct QuickReplyPlaceholder {
    /// As written in a body, e.g. `{{customer_first_name}}`.
    pub placeholder: String,
    pub name: String,
    /// What it is filled with.
    pub description: String,
}

/// Every placeholder.
#[derive(Serialize, ToSchema)]
pub struct QuickReplyPlaceholders {
    pub data: Vec<QuickReplyPlaceholder>,
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

#[utoipa::path(
    get,
    path = "/api/v1/quick-replies",
    tag = "quick-replies",
    summary = "Quick replies",
    security(("bearer" = ["quickreplies:view"])),
    params(ListQuery),
    responses((status = 200, description = "One page of quick replies", body = Page<QuickReplyView>))
)]
async fn list(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<QuickReplyView>>, ApiError> {
    who.require(VIEW)?;
    let page = q.page(&keys, SCOPE, 200)?;
    let found = app.store.quick_replies(page.after(), page.limit).await?;
    Ok(page.answer(found, |r| QuickReplyView::new(&r)))
}

#[utoipa::path(
    get,
    path = "/api/v1/quick-replies/placeholders",
    tag = "quick-replies",
    summary = "Placeholders a quick reply may use",
    security(("bearer" = ["quickreplies:view"])),
    responses((status = 200, description = "Every placeholder", body = QuickReplyPlaceholders))
)]
async fn placeholders(Authed(who, _): Authed) -> Result<Json<QuickReplyPlaceholders>, ApiError> {
    who.require(VIEW)?;
    let data = PLACEHOLDERS
        .iter()
        .map(|(name, what)| QuickReplyPlaceholder {
            placeholder: format!("{{{{{name}}}}}"),
            name: name.to_string(),
            description: what.to_string(),
        })
        .collect();
    Ok(Json(QuickReplyPlaceholders { data }))
}

#[utoipa::path(
    get,
    path = "/api/v1/quick-replies/{id}",
    tag = "quick-replies",
    summary = "One quick reply",
    security(("bearer" = ["quickreplies:view"])),
    params(("id" = String, Path, description = "Quick reply id")),
    responses((status = 200, description = "The quick reply", body = QuickReplyView))
)]
async fn read(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<QuickReplyView>, ApiError> {
    who.require(VIEW)?;
    let q = app
        .store
        .quick_reply(path_id(&id, "quick reply")?)
        .await?
        .ok_or_else(|| ApiError::not_found("quick reply"))?;
    Ok(Json(QuickReplyView::new(&q)))
}

/// A new quick reply.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuickReplyCreateBody {
    /// 1 to 100 characters.
    #[schema(example = "Greeting")]
    title: String,
    /// 1 to 4096 characters; only the placeholders of
    /// `GET /api/v1/quick-replies/placeholders` may appear between `{{` and `}}`.
    #[schema(example = "Hello {{customer_first_name}}!")]
    body: String,
    /// 1 to 32 characters of `a-z`, `0-9`, `_` and `-`.
    #[serde(default)]
    #[schema(example = "hi")]
    shortcut: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/quick-replies",
    tag = "quick-replies",
    summary = "Create a quick reply",
    security(("bearer" = ["quickreplies:create"])),
    request_body = QuickReplyCreateBody,
    responses((status = 201, description = "The quick reply created", body = QuickReplyView))
)]
async fn create(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<QuickReplyView>), ApiError> {
    who.require(CREATE)?;
    let b: QuickReplyCreateBody = super::body(&body)?;
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
    Ok((StatusCode::CREATED, Json(QuickReplyView::new(&q))))
}

/// The fields to replace; the others are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuickReplyUpdateBody {
    /// 1 to 100 characters.
    #[serde(default)]
    title: Option<String>,
    /// 1 to 4096 characters; only the known placeholders may be used.
    #[serde(default)]
    body: Option<String>,
    /// 1 to 32 characters of `a-z`, `0-9`, `_` and `-`; `null` removes the shortcut.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    shortcut: Option<Option<String>>,
}

/// `PUT /api/v1/quick-replies/{id}`: the fields given are replaced, the others kept.
#[utoipa::path(
    put,
    path = "/api/v1/quick-replies/{id}",
    tag = "quick-replies",
    summary = "Change a quick reply",
    description = "The fields given are replaced, the others kept.",
    security(("bearer" = ["quickreplies:edit"])),
    params(("id" = String, Path, description = "Quick reply id")),
    request_body = QuickReplyUpdateBody,
    responses((status = 200, description = "The quick reply changed", body = QuickReplyView))
)]
async fn update(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<QuickReplyView>, ApiError> {
    who.require(EDIT)?;
    let b: QuickReplyUpdateBody = super::body(&body)?;
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
    Ok(Json(QuickReplyView::new(&new)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/quick-replies/{id}",
    tag = "quick-replies",
    summary = "Delete a quick reply",
    security(("bearer" = ["quickreplies:delete"])),
    params(("id" = String, Path, description = "Quick reply id")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(DELETE)?;
    app.store
        .delete_quick_reply(path_id(&id, "quick reply")?)
        .await?;
    tracing::info!(staff_id = %who.staff_id, quick_reply_id = %id, "quick reply deleted");
    Ok(StatusCode::NO_CONTENT)
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
