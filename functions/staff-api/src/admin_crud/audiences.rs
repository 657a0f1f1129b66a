//! `/api/v1/contacts` and `/api/v1/groups`: WhatsApp contacts and groups, the audiences of
//! campaigns. A contact's phone is stored in E.164 and unique; membership is kept both on the
//! contact (`group_ids`) and as one item per member of a group, in one transaction.
use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::auth::{Action, Permission, Principal, Resource};
use shared::store::audiences::{GroupDeletion, MAX_GROUPS_PER_CONTACT, WaContact, WaGroup};
use shared::store::crud::{is_valid_id, new_id};

use super::{ListQuery, decode_cursor, encode_cursor, nullable, opt_text, path_id, perm, text};
use crate::{ApiError, Authed, StaffApp, parse_limit};

const C_VIEW: Permission = perm(Resource::WhatsappContacts, Action::View);
const C_CREATE: Permission = perm(Resource::WhatsappContacts, Action::Create);
const C_EDIT: Permission = perm(Resource::WhatsappContacts, Action::Edit);
const C_DELETE: Permission = perm(Resource::WhatsappContacts, Action::Delete);
const G_VIEW: Permission = perm(Resource::WhatsappGroups, Action::View);
const G_CREATE: Permission = perm(Resource::WhatsappGroups, Action::Create);
const G_EDIT: Permission = perm(Resource::WhatsappGroups, Action::Edit);
const G_DELETE: Permission = perm(Resource::WhatsappGroups, Action::Delete);
const MAX_TAGS: usize = 50;
/// Members removed per `DELETE /groups/{id}` call (a larger group answers 202: call again).
const DELETE_BUDGET: usize = 200;

pub fn routes() -> Router<Arc<StaffApp>> {
    Router::new()
        .route("/api/v1/contacts", get(list_contacts).post(create_contact))
        .route(
            "/api/v1/contacts/{id}",
            get(read_contact).put(update_contact).delete(delete_contact),
        )
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route(
            "/api/v1/groups/{id}",
            get(read_group).put(update_group).delete(delete_group),
        )
        .route("/api/v1/groups/{id}/members", get(list_members))
        .route(
            "/api/v1/groups/{id}/members/{contact_id}",
            put(add_member).delete(remove_member),
        )
}

fn contact_json(c: &WaContact) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "phone": c.phone,
        "tags": c.tags,
        "opted_in": c.opted_in,
        "group_ids": c.group_ids,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

fn group_json(g: &WaGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "member_count": g.member_count,
        "created_at": g.created_at,
        "updated_at": g.updated_at,
    })
}

fn page(data: Vec<Value>, next_cursor: Option<String>) -> Response {
    axum::Json(json!({"data": data, "next_cursor": next_cursor})).into_response()
}

// ---------- validation ----------

fn valid_phone(app: &StaffApp, raw: &str) -> Result<String, ApiError> {
    app.phones
        .to_e164(raw)
        .map_err(|e| ApiError::bad_request(format!("phone is not a valid number: {e}")))
}

fn valid_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in tags {
        let t = text("tags[]", &t, 1, 50)?;
        if seen.insert(t.clone()) {
            out.push(t);
        }
    }
    if out.len() > MAX_TAGS {
        return Err(ApiError::bad_request(format!(
            "tags: at most {MAX_TAGS} tags"
        )));
    }
    Ok(out)
}

fn valid_group_ids(ids: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for g in ids {
        if !is_valid_id(&g) {
            return Err(ApiError::bad_request(format!(
                "group_ids: {g:?} is not a group id"
            )));
        }
        if seen.insert(g.clone()) {
            out.push(g);
        }
    }
    if out.len() > MAX_GROUPS_PER_CONTACT {
        return Err(ApiError::bad_request(format!(
            "group_ids: a contact can be in at most {MAX_GROUPS_PER_CONTACT} groups"
        )));
    }
    Ok(out)
}

// ---------- contacts ----------

async fn list_contacts(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(C_VIEW)?;
    let after = decode_cursor(&keys, "wa_contacts", q.cursor.as_deref())?;
    let limit = parse_limit(q.limit.as_deref(), 50, 200)?;
    let (rows, next) = app.store.wa_contacts(after.as_deref(), limit).await?;
    Ok(page(
        rows.iter().map(contact_json).collect(),
        encode_cursor(&keys, "wa_contacts", next),
    ))
}

async fn read_contact(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(C_VIEW)?;
    let c = app
        .store
        .wa_contact(path_id(&id, "contact")?)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    Ok(axum::Json(contact_json(&c)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateContact {
    name: String,
    phone: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    opted_in: bool,
    #[serde(default)]
    group_ids: Vec<String>,
}

/// Membership changes through a contact also need `whatsapp_groups:edit`.
fn require_group_edit(who: &Principal, changes: bool) -> Result<(), ApiError> {
    if changes {
        who.require(G_EDIT)?;
    }
    Ok(())
}

async fn create_contact(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require(C_CREATE)?;
    let b: CreateContact = super::body(&body)?;
    let name = text("name", &b.name, 1, 200)?;
    let phone = valid_phone(&app, &b.phone)?;
    let tags = valid_tags(b.tags)?;
    let group_ids = valid_group_ids(b.group_ids)?;
    require_group_edit(&who, !group_ids.is_empty())?;
    let now = (app.now_ms)();
    let mut c = WaContact::new(new_id(now), name, phone, now);
    c.tags = tags;
    c.opted_in = b.opted_in;
    c.group_ids = group_ids;
    app.store.create_wa_contact(&c).await?;
    tracing::info!(staff_id = %who.staff_id, contact_id = %c.id, "WhatsApp contact created");
    Ok((StatusCode::CREATED, axum::Json(contact_json(&c))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateContact {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    opted_in: Option<bool>,
    /// The full set of groups: memberships are added and removed to match.
    #[serde(default)]
    group_ids: Option<Vec<String>>,
}

/// `PUT /api/v1/contacts/{id}`: the fields given are replaced, the others kept.
async fn update_contact(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require(C_EDIT)?;
    let b: UpdateContact = super::body(&body)?;
    let name = b
        .name
        .as_deref()
        .map(|n| text("name", n, 1, 200))
        .transpose()?;
    let phone = b
        .phone
        .as_deref()
        .map(|p| valid_phone(&app, p))
        .transpose()?;
    let tags = b.tags.map(valid_tags).transpose()?;
    let group_ids = b.group_ids.map(valid_group_ids).transpose()?;
    let id = path_id(&id, "contact")?;
    let mut groups_change = false;
    let mut denied = false;
    let now = (app.now_ms)();
    let c = app
        .store
        .modify_wa_contact(id, now, |c| {
            let before = c.clone();
            if let Some(n) = &name {
                c.name = n.clone();
            }
            if let Some(p) = &phone {
                c.set_phone(p.clone());
            }
            if let Some(t) = &tags {
                c.tags = t.clone();
            }
            if let Some(o) = b.opted_in {
                c.opted_in = o;
            }
            if let Some(g) = &group_ids {
                let old: HashSet<&String> = c.group_ids.iter().collect();
                let new: HashSet<&String> = g.iter().collect();
                groups_change = old != new;
                if groups_change && !who.can(G_EDIT) {
                    // Nothing is written: answered 403 below.
                    denied = true;
                    return Ok(false);
                }
                c.group_ids = g.clone();
            }
            Ok(*c != before)
        })
        .await?;
    if denied {
        who.require(G_EDIT)?;
    }
    tracing::info!(staff_id = %who.staff_id, contact_id = %c.id, groups_change, "WhatsApp contact changed");
    Ok(axum::Json(contact_json(&c)).into_response())
}

async fn delete_contact(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(C_DELETE)?;
    app.store
        .delete_wa_contact(path_id(&id, "contact")?)
        .await?;
    tracing::info!(staff_id = %who.staff_id, contact_id = %id, "WhatsApp contact deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------- groups ----------

async fn list_groups(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(G_VIEW)?;
    let after = decode_cursor(&keys, "wa_groups", q.cursor.as_deref())?;
    let limit = parse_limit(q.limit.as_deref(), 50, 200)?;
    let (rows, next) = app.store.wa_groups(after.as_deref(), limit).await?;
    Ok(page(
        rows.iter().map(group_json).collect(),
        encode_cursor(&keys, "wa_groups", next),
    ))
}

async fn read_group(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(G_VIEW)?;
    let g = app
        .store
        .wa_group(path_id(&id, "group")?)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    Ok(axum::Json(group_json(&g)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

async fn create_group(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require(G_CREATE)?;
    let b: CreateGroup = super::body(&body)?;
    let now = (app.now_ms)();
    let g = WaGroup::new(
        new_id(now),
        text("name", &b.name, 1, 100)?,
        opt_text("description", b.description.as_deref(), 1000)?,
        now,
    );
    app.store.create_wa_group(&g).await?;
    tracing::info!(staff_id = %who.staff_id, group_id = %g.id, "WhatsApp group created");
    Ok((StatusCode::CREATED, axum::Json(group_json(&g))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
}

/// `PUT /api/v1/groups/{id}`: the fields given are replaced (`description: null` removes it).
async fn update_group(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require(G_EDIT)?;
    let b: UpdateGroup = super::body(&body)?;
    let name = b
        .name
        .as_deref()
        .map(|n| text("name", n, 1, 100))
        .transpose()?;
    let description = b
        .description
        .map(|d| opt_text("description", d.as_deref(), 1000))
        .transpose()?;
    let id = path_id(&id, "group")?;
    let old = app
        .store
        .wa_group(id)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    let name = name.unwrap_or(old.name);
    let description = description.unwrap_or(old.description);
    let g = app
        .store
        .update_wa_group(id, &name, description.as_deref(), (app.now_ms)())
        .await?;
    tracing::info!(staff_id = %who.staff_id, group_id = %g.id, "WhatsApp group changed");
    Ok(axum::Json(group_json(&g)).into_response())
}

/// `DELETE /api/v1/groups/{id}`: 204 when gone; 202 `{"status":"deleting"}` when a large group
/// still has members to remove (the group is already hidden): call again to finish.
async fn delete_group(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(G_DELETE)?;
    let id = path_id(&id, "group")?;
    match app
        .store
        .delete_wa_group(id, DELETE_BUDGET, (app.now_ms)())
        .await?
    {
        GroupDeletion::Done { removed } => {
            tracing::info!(staff_id = %who.staff_id, group_id = %id, removed, "WhatsApp group deleted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        GroupDeletion::InProgress { removed } => {
            tracing::info!(staff_id = %who.staff_id, group_id = %id, removed, "WhatsApp group deletion continues");
            Ok((
                StatusCode::ACCEPTED,
                axum::Json(json!({"id": id, "status": "deleting", "removed": removed,
                    "message": "the group still has members to remove; repeat the DELETE to finish"})),
            )
                .into_response())
        }
    }
}

async fn list_members(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    who.require(G_VIEW)?;
    who.require(C_VIEW)?;
    let id = path_id(&id, "group")?;
    if app.store.wa_group(id).await?.is_none() {
        return Err(ApiError::not_found("group"));
    }
    let scope = format!("wa_group_members:{id}");
    let after = decode_cursor(&keys, &scope, q.cursor.as_deref())?;
    let limit = parse_limit(q.limit.as_deref(), 50, 100)?;
    let (rows, next) = app
        .store
        .wa_group_members(id, after.as_deref(), limit)
        .await?;
    Ok(page(
        rows.iter().map(contact_json).collect(),
        encode_cursor(&keys, &scope, next),
    ))
}

/// `PUT /api/v1/groups/{id}/members/{contact_id}`: idempotent (`added: false` when it
/// already was a member).
async fn add_member(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path((id, contact_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    who.require(G_EDIT)?;
    let id = path_id(&id, "group")?;
    let contact_id = path_id(&contact_id, "contact")?;
    let added = app
        .store
        .add_group_member(id, contact_id, (app.now_ms)())
        .await?;
    tracing::info!(staff_id = %who.staff_id, group_id = %id, contact_id = %contact_id, added, "group member added");
    Ok(
        axum::Json(json!({"group_id": id, "contact_id": contact_id, "added": added}))
            .into_response(),
    )
}

async fn remove_member(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path((id, contact_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    who.require(G_EDIT)?;
    let id = path_id(&id, "group")?;
    let contact_id = path_id(&contact_id, "contact")?;
    app.store
        .remove_group_member(id, contact_id, (app.now_ms)())
        .await?;
    tracing::info!(staff_id = %who.staff_id, group_id = %id, contact_id = %contact_id, "group member removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}
