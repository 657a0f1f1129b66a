//! `/api/v1/contacts` and `/api/v1/groups`: WhatsApp contacts and groups, the audiences of
//! campaigns. A contact's phone is stored in E.164 and unique; membership is kept both on the
//! contact (`group_ids`) and as one item per member of a group, in one transaction.
use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use shared::auth::{Action, Permission, Principal, Resource};
use shared::store::audiences::{GroupDeletion, MAX_GROUPS_PER_CONTACT, WaContact, WaGroup};
use shared::store::crud::{is_valid_id, new_id};
use utoipa::ToSchema;

use super::{ListQuery, nullable, opt_text, path_id, perm, text};
use crate::conversations::Page;
use crate::{ApiError, Authed, StaffApp};

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

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![
        list_contacts,
        create_contact,
        read_contact,
        update_contact,
        delete_contact,
        list_groups,
        create_group,
        read_group,
        update_group,
        delete_group,
        list_members,
        add_member,
        remove_member,
    ]
}

/// A WhatsApp contact (a campaign audience member).
#[derive(Serialize, ToSchema)]
pub struct ContactView {
    pub id: String,
    pub name: String,
    /// E.164.
    pub phone: String,
    pub tags: Vec<String>,
    /// Agreed to receive campaigns.
    pub opted_in: bool,
    /// The groups the contact is in.
    pub group_ids: Vec<String>,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds.
    pub updated_at: i64,
}

impl ContactView {
    fn new(c: &WaContact) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            phone: c.phone.clone(),
            tags: c.tags.clone(),
            opted_in: c.opted_in,
            group_ids: c.group_ids.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A group of WhatsApp contacts.
#[derive(Serialize, ToSchema)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub member_count: i64,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds.
    pub updated_at: i64,
}

impl GroupView {
    fn new(g: &WaGroup) -> Self {
        Self {
            id: g.id.clone(),
            name: g.name.clone(),
            description: g.description.clone(),
            member_count: g.member_count,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

/// A group deletion that has members left to remove (the group is already hidden).
#[derive(Serialize, ToSchema)]
pub struct GroupDeletionProgress {
    pub id: String,
    /// `deleting`.
    #[schema(example = "deleting")]
    pub status: String,
    /// Members removed by this call.
    pub removed: usize,
    pub message: String,
}

/// A membership of a contact in a group.
#[derive(Serialize, ToSchema)]
pub struct GroupMembership {
    pub group_id: String,
    pub contact_id: String,
    /// `false` when the contact already was a member.
    pub added: bool,
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

#[utoipa::path(
    get,
    path = "/api/v1/contacts",
    tag = "audiences",
    summary = "WhatsApp contacts (campaign audiences)",
    security(("bearer" = ["whatsapp_contacts:view"])),
    params(ListQuery),
    responses((status = 200, description = "One page of contacts", body = Page<ContactView>))
)]
async fn list_contacts(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<ContactView>>, ApiError> {
    who.require(C_VIEW)?;
    let page = q.page(&keys, "wa_contacts", 200)?;
    let found = app.store.wa_contacts(page.after(), page.limit).await?;
    Ok(page.answer(found, |c| ContactView::new(&c)))
}

#[utoipa::path(
    get,
    path = "/api/v1/contacts/{id}",
    tag = "audiences",
    summary = "One contact",
    security(("bearer" = ["whatsapp_contacts:view"])),
    params(("id" = String, Path, description = "Contact id")),
    responses((status = 200, description = "The contact", body = ContactView))
)]
async fn read_contact(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<ContactView>, ApiError> {
    who.require(C_VIEW)?;
    let c = app
        .store
        .wa_contact(path_id(&id, "contact")?)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    Ok(Json(ContactView::new(&c)))
}

/// A new WhatsApp contact.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactCreateBody {
    /// 1 to 200 characters.
    #[schema(example = "Ana")]
    name: String,
    /// Any format the phone parser understands; stored in E.164, unique among contacts.
    #[schema(example = "+55 11 98765-4321")]
    phone: String,
    /// At most 50 distinct tags of 1 to 50 characters.
    #[serde(default)]
    #[schema(example = json!(["vip"]))]
    tags: Vec<String>,
    /// Agreed to receive campaigns (default `false`).
    #[serde(default)]
    opted_in: bool,
    /// Groups to put the contact in, at most 40 (needs `whatsapp_groups:edit` too when not
    /// empty).
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

#[utoipa::path(
    post,
    path = "/api/v1/contacts",
    tag = "audiences",
    summary = "Create a contact",
    description = "Giving `group_ids` also needs `whatsapp_groups:edit`.",
    security(("bearer" = ["whatsapp_contacts:create"])),
    request_body = ContactCreateBody,
    responses((status = 201, description = "The contact created", body = ContactView))
)]
async fn create_contact(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<ContactView>), ApiError> {
    who.require(C_CREATE)?;
    let b: ContactCreateBody = super::body(&body)?;
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
    Ok((StatusCode::CREATED, Json(ContactView::new(&c))))
}

/// The fields to replace; the others are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactUpdateBody {
    /// 1 to 200 characters.
    #[serde(default)]
    name: Option<String>,
    /// Any format the phone parser understands; stored in E.164, unique among contacts.
    #[serde(default)]
    phone: Option<String>,
    /// The full set of tags: at most 50 distinct tags of 1 to 50 characters.
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    opted_in: Option<bool>,
    /// The full set of groups (at most 40): memberships are added and removed to match (a
    /// change needs `whatsapp_groups:edit` too).
    #[serde(default)]
    group_ids: Option<Vec<String>>,
}

/// `PUT /api/v1/contacts/{id}`: the fields given are replaced, the others kept.
#[utoipa::path(
    put,
    path = "/api/v1/contacts/{id}",
    tag = "audiences",
    summary = "Change a contact",
    description = "The fields given are replaced, the others kept. Changing the groups also needs `whatsapp_groups:edit`.",
    security(("bearer" = ["whatsapp_contacts:edit"])),
    params(("id" = String, Path, description = "Contact id")),
    request_body = ContactUpdateBody,
    responses((status = 200, description = "The contact changed", body = ContactView))
)]
async fn update_contact(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ContactView>, ApiError> {
    who.require(C_EDIT)?;
    let b: ContactUpdateBody = super::body(&body)?;
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
    Ok(Json(ContactView::new(&c)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/contacts/{id}",
    tag = "audiences",
    summary = "Delete a contact",
    security(("bearer" = ["whatsapp_contacts:delete"])),
    params(("id" = String, Path, description = "Contact id")),
    responses((status = 204, description = "Deleted"))
)]
async fn delete_contact(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(C_DELETE)?;
    app.store
        .delete_wa_contact(path_id(&id, "contact")?)
        .await?;
    tracing::info!(staff_id = %who.staff_id, contact_id = %id, "WhatsApp contact deleted");
    Ok(StatusCode::NO_CONTENT)
}

// ---------- groups ----------

#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "audiences",
    summary = "Groups",
    security(("bearer" = ["whatsapp_groups:view"])),
    params(ListQuery),
    responses((status = 200, description = "One page of groups", body = Page<GroupView>))
)]
async fn list_groups(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<GroupView>>, ApiError> {
    who.require(G_VIEW)?;
    let page = q.page(&keys, "wa_groups", 200)?;
    let found = app.store.wa_groups(page.after(), page.limit).await?;
    Ok(page.answer(found, |g| GroupView::new(&g)))
}

#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}",
    tag = "audiences",
    summary = "One group",
    security(("bearer" = ["whatsapp_groups:view"])),
    params(("id" = String, Path, description = "Group id")),
    responses((status = 200, description = "The group", body = GroupView))
)]
async fn read_group(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    who.require(G_VIEW)?;
    let g = app
        .store
        .wa_group(path_id(&id, "group")?)
        .await?
        .ok_or_else(|| ApiError::not_found("group"))?;
    Ok(Json(GroupView::new(&g)))
}

/// A new group.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupCreateBody {
    /// 1 to 100 characters.
    #[schema(example = "VIP")]
    name: String,
    /// At most 1000 characters; empty means none.
    #[serde(default)]
    #[schema(example = "best customers")]
    description: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/groups",
    tag = "audiences",
    summary = "Create a group",
    security(("bearer" = ["whatsapp_groups:create"])),
    request_body = GroupCreateBody,
    responses((status = 201, description = "The group created", body = GroupView))
)]
async fn create_group(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    who.require(G_CREATE)?;
    let b: GroupCreateBody = super::body(&body)?;
    let now = (app.now_ms)();
    let g = WaGroup::new(
        new_id(now),
        text("name", &b.name, 1, 100)?,
        opt_text("description", b.description.as_deref(), 1000)?,
        now,
    );
    app.store.create_wa_group(&g).await?;
    tracing::info!(staff_id = %who.staff_id, group_id = %g.id, "WhatsApp group created");
    Ok((StatusCode::CREATED, Json(GroupView::new(&g))))
}

/// The fields to replace; the others are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupUpdateBody {
    /// 1 to 100 characters.
    #[serde(default)]
    name: Option<String>,
    /// At most 1000 characters; `null` or empty removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
}

/// `PUT /api/v1/groups/{id}`: the fields given are replaced (`description: null` removes it).
#[utoipa::path(
    put,
    path = "/api/v1/groups/{id}",
    tag = "audiences",
    summary = "Change a group",
    description = "The fields given are replaced, the others kept (`description: null` removes it).",
    security(("bearer" = ["whatsapp_groups:edit"])),
    params(("id" = String, Path, description = "Group id")),
    request_body = GroupUpdateBody,
    responses((status = 200, description = "The group changed", body = GroupView))
)]
async fn update_group(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<GroupView>, ApiError> {
    who.require(G_EDIT)?;
    let b: GroupUpdateBody = super::body(&body)?;
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
    Ok(Json(GroupView::new(&g)))
}

/// `DELETE /api/v1/groups/{id}`: 204 when gone; 202 `{"status":"deleting"}` when a large group
/// still has members to remove (the group is already hidden): call again to finish.
#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}",
    tag = "audiences",
    summary = "Delete a group",
    description = "204 when the group is gone; 202 when a large group still has members to remove (it is already hidden): repeat the DELETE to finish.",
    security(("bearer" = ["whatsapp_groups:delete"])),
    params(("id" = String, Path, description = "Group id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 202, description = "Members remain to remove: call again", body = GroupDeletionProgress)
    )
)]
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
            let progress = GroupDeletionProgress {
                id: id.to_string(),
                status: "deleting".to_string(),
                removed,
                message: "the group still has members to remove; repeat the DELETE to finish"
                    .to_string(),
            };
            Ok((StatusCode::ACCEPTED, Json(progress)).into_response())
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}/members",
    tag = "audiences",
    summary = "Members of a group",
    security(("bearer" = ["whatsapp_groups:view", "whatsapp_contacts:view"])),
    params(("id" = String, Path, description = "Group id"), ListQuery),
    responses((status = 200, description = "One page of the group's contacts", body = Page<ContactView>))
)]
async fn list_members(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<ContactView>>, ApiError> {
    who.require(G_VIEW)?;
    who.require(C_VIEW)?;
    let id = path_id(&id, "group")?;
    if app.store.wa_group(id).await?.is_none() {
        return Err(ApiError::not_found("group"));
    }
    let page = q.page(&keys, format!("wa_group_members:{id}"), 100)?;
    let found = app
        .store
        .wa_group_members(id, page.after(), page.limit)
        .await?;
    Ok(page.answer(found, |c| ContactView::new(&c)))
}

/// `PUT /api/v1/groups/{id}/members/{contact_id}`: idempotent (`added: false` when it
/// already was a member).
#[utoipa::path(
    put,
    path = "/api/v1/groups/{id}/members/{contact_id}",
    tag = "audiences",
    summary = "Add a contact to a group",
    description = "Idempotent: `added` is `false` when the contact already was a member. No request body is needed.",
    security(("bearer" = ["whatsapp_groups:edit"])),
    params(
        ("id" = String, Path, description = "Group id"),
        ("contact_id" = String, Path, description = "Contact id")
    ),
    responses((status = 200, description = "The membership", body = GroupMembership))
)]
async fn add_member(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path((id, contact_id)): Path<(String, String)>,
) -> Result<Json<GroupMembership>, ApiError> {
    who.require(G_EDIT)?;
    let id = path_id(&id, "group")?;
    let contact_id = path_id(&contact_id, "contact")?;
    let added = app
        .store
        .add_group_member(id, contact_id, (app.now_ms)())
        .await?;
    tracing::info!(staff_id = %who.staff_id, group_id = %id, contact_id = %contact_id, added, "group member added");
    Ok(Json(GroupMembership {
        group_id: id.to_string(),
        contact_id: contact_id.to_string(),
        added,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/groups/{id}/members/{contact_id}",
    tag = "audiences",
    summary = "Remove a contact from a group",
    security(("bearer" = ["whatsapp_groups:edit"])),
    params(
        ("id" = String, Path, description = "Group id"),
        ("contact_id" = String, Path, description = "Contact id")
    ),
    responses((status = 204, description = "Removed"))
)]
async fn remove_member(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path((id, contact_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require(G_EDIT)?;
    let id = path_id(&id, "group")?;
    let contact_id = path_id(&contact_id, "contact")?;
    app.store
        .remove_group_member(id, contact_id, (app.now_ms)())
        .await?;
    tracing::info!(staff_id = %who.staff_id, group_id = %id, contact_id = %contact_id, "group member removed");
    Ok(StatusCode::NO_CONTENT)
}
