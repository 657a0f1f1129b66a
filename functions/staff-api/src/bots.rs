//! `/api/v1/bots`: the bots that answer customers (`whatsapp_bot:view/create/edit/delete`), and
//! the synonym groups their keyword triggers use (`/api/v1/bots/synonyms`).
//!
//! A bot is validated on save, the error naming the field (`response.menu.options[2].title`);
//! a template response is checked against the stored template. Saving any bot or group moves
//! the bot-set version, and the bots function recompiles its triggers on its next message.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::auth::{Action, Permission, Resource};
use shared::bots::model::{Bot, BotResponse, BusinessHours, ResponseKind, SynonymGroup, Trigger};
use shared::store::crud::new_id;
use shared::store::model::RelType;
use utoipa::ToSchema;

use crate::admin_crud::{ListQuery, path_id, perm};
use crate::conversations::Page;
use crate::{ApiError, Authed, StaffApp};

const VIEW: Permission = perm(Resource::WhatsappBot, Action::View);
const CREATE: Permission = perm(Resource::WhatsappBot, Action::Create);
const EDIT: Permission = perm(Resource::WhatsappBot, Action::Edit);
const DELETE: Permission = perm(Resource::WhatsappBot, Action::Delete);
const SCOPE: &str = "bots";
/// Bots one installation may hold (each is evaluated on every inbound message).
const MAX_BOTS: usize = 2000;

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![
        list,
        create,
        list_synonyms,
        create_synonyms,
        update_synonyms,
        delete_synonyms,
        read,
        update,
        remove,
    ]
}

/// A bot as saved: `reply_type` is the trigger (1 exact, 2 contains, 3 first message, 4
/// keyword, 5 within / 6 outside business hours, 7 session start, 8 idle, 9 human request, 10
/// synonym, 11 window closing, 12 no staff reply, 13 closed), `bot_type` the response (1 text,
/// 2 template, 3 menu, 4 flow, 5 media, 6 location, 7 buttons, 11 contact, 12 AI, 13 rating),
/// and `response` its content (its `type` may be left out: `bot_type` gives it).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BotBody {
    /// 1 to 100 characters.
    name: String,
    reply_type: Trigger,
    /// 1, 2: the phrase; 4: keywords separated by commas (`@group` names a synonym group);
    /// 9: keywords (defaults when empty); 10: synonym group names separated by commas.
    #[serde(default)]
    trigger: Option<String>,
    /// 8: idle minutes; 11: minutes before the 24-hour window closes; 12: minutes without a
    /// staff reply.
    #[serde(default)]
    minutes: Option<u32>,
    /// 5 and 6.
    #[serde(default)]
    business_hours: Option<BusinessHours>,
    bot_type: ResponseKind,
    response: BotResponse,
    /// The `rel_type`s it answers (empty: all).
    #[serde(default)]
    rel_types: Vec<RelType>,
    /// Lower first.
    #[serde(default)]
    priority: i32,
    #[serde(default = "yes")]
    is_bot_active: bool,
    /// A marketing message: never sent to a customer who opted out.
    #[serde(default)]
    marketing: bool,
    /// On update: the version read (409 `concurrent_update` if it changed since).
    #[serde(default)]
    version: Option<i64>,
}

fn yes() -> bool {
    true
}

/// `response.type` filled from `bot_type` when left out.
fn with_response_type(mut v: Value) -> Value {
    let kind = v
        .get("bot_type")
        .and_then(Value::as_u64)
        .and_then(|c| u8::try_from(c).ok())
        .and_then(|c| ResponseKind::try_from(c).ok());
    if let (Some(kind), Some(resp)) = (kind, v.get_mut("response").and_then(Value::as_object_mut))
        && !resp.contains_key("type")
    {
        resp.insert("type".into(), Value::String(response_tag(kind).into()));
    }
    v
}

/// The `type` of a response of this kind.
fn response_tag(k: ResponseKind) -> &'static str {
    match k {
        ResponseKind::Text => "text",
        ResponseKind::Template => "template",
        ResponseKind::Menu => "menu",
        ResponseKind::Flow => "flow",
        ResponseKind::Media => "media",
        ResponseKind::Location => "location",
        ResponseKind::Buttons => "buttons",
        ResponseKind::Contacts => "contacts",
        ResponseKind::Ai => "ai",
        ResponseKind::Rating => "rating",
    }
}

fn parse_bot_body(bytes: &[u8]) -> Result<BotBody, ApiError> {
    let v: Value = crate::parse_json(bytes)?;
    serde_json::from_value(with_response_type(v))
        .map_err(|e| ApiError::bad_request(format!("invalid bot: {e}")))
}

/// The bot `b` describes, validated (the field named in a 400) and, for a template, checked
/// against the stored template.
async fn valid_bot(
    app: &StaffApp,
    id: String,
    b: BotBody,
    now: i64,
    created_at: i64,
) -> Result<Bot, ApiError> {
    let bot = Bot {
        id,
        name: b.name.trim().to_string(),
        reply_type: b.reply_type,
        trigger: b
            .trigger
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
        minutes: b.minutes,
        business_hours: b.business_hours,
        bot_type: b.bot_type,
        response: b.response,
        rel_types: b.rel_types,
        priority: b.priority,
        is_bot_active: b.is_bot_active,
        marketing: b.marketing,
        send_count: 0,
        last_fired_at: None,
        version: 0,
        created_at,
        updated_at: now,
    };
    let synonyms = app.store.synonym_groups().await?;
    bot.validate(&synonyms)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let BotResponse::Template { template } = &bot.response {
        let m = app.messaging()?;
        crate::templates::check_send(app, m, template).await?;
    }
    Ok(bot)
}

#[utoipa::path(
    get,
    path = "/api/v1/bots",
    tag = "bots",
    summary = "Bots",
    security(("bearer" = ["whatsapp_bot:view"])),
    params(ListQuery),
    responses((status = 200, description = "One page of bots, in creation order", body = Page<Bot>))
)]
async fn list(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Bot>>, ApiError> {
    who.require(VIEW)?;
    let page = q.page(&keys, SCOPE, 200)?;
    let found = app.store.bots_page(page.after(), page.limit).await?;
    Ok(page.answer(found, |b| b))
}

#[utoipa::path(
    post,
    path = "/api/v1/bots",
    tag = "bots",
    summary = "Create a bot",
    security(("bearer" = ["whatsapp_bot:create"])),
    request_body = BotBody,
    responses((status = 201, description = "Created", body = Bot))
)]
async fn create(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<Bot>), ApiError> {
    who.require(CREATE)?;
    let b = parse_bot_body(&body)?;
    let now = (app.now_ms)();
    if app.store.bot_set().await?.bots.len() >= MAX_BOTS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_bots",
            format!("at most {MAX_BOTS} bots"),
        ));
    }
    let mut bot = valid_bot(&app, new_id(now), b, now, now).await?;
    bot.version = app.store.create_bot(&bot).await?;
    tracing::info!(staff_id = %who.staff_id, bot_id = %bot.id, "bot created");
    Ok((StatusCode::CREATED, Json(bot)))
}

#[utoipa::path(
    get,
    path = "/api/v1/bots/{id}",
    tag = "bots",
    summary = "One bot",
    security(("bearer" = ["whatsapp_bot:view"])),
    params(("id" = String, Path, description = "Bot id")),
    responses((status = 200, description = "The bot", body = Bot))
)]
async fn read(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<Bot>, ApiError> {
    who.require(VIEW)?;
    let bot = app
        .store
        .bot(path_id(&id, "bot")?)
        .await?
        .ok_or_else(|| ApiError::not_found("bot"))?;
    Ok(Json(bot))
}

#[utoipa::path(
    put,
    path = "/api/v1/bots/{id}",
    tag = "bots",
    summary = "Replace a bot",
    security(("bearer" = ["whatsapp_bot:edit"])),
    params(("id" = String, Path, description = "Bot id")),
    request_body = BotBody,
    responses((status = 200, description = "Saved", body = Bot))
)]
async fn update(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Bot>, ApiError> {
    who.require(EDIT)?;
    let id = path_id(&id, "bot")?.to_string();
    let b = parse_bot_body(&body)?;
    let old = app
        .store
        .bot(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("bot"))?;
    let expected = b.version.unwrap_or(old.version);
    let now = (app.now_ms)();
    let mut bot = valid_bot(&app, id, b, now, old.created_at).await?;
    bot.version = app.store.update_bot(&bot, expected).await?;
    bot.send_count = old.send_count;
    bot.last_fired_at = old.last_fired_at;
    tracing::info!(staff_id = %who.staff_id, bot_id = %bot.id, "bot changed");
    Ok(Json(bot))
}

#[utoipa::path(
    delete,
    path = "/api/v1/bots/{id}",
    tag = "bots",
    summary = "Delete a bot",
    security(("bearer" = ["whatsapp_bot:delete"])),
    params(("id" = String, Path, description = "Bot id")),
    responses((status = 204, description = "Deleted"))
)]
async fn remove(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(DELETE)?;
    app.store.delete_bot(path_id(&id, "bot")?).await?;
    tracing::info!(staff_id = %who.staff_id, bot_id = %id, "bot deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A synonym group: words that mean the same for keyword (4) and synonym (10) triggers.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SynonymBody {
    /// 1 to 64 characters; triggers name it (`@name` in keywords, or in a synonym trigger).
    name: String,
    /// 1 to 200 words or phrases.
    words: Vec<String>,
    /// On update: the version read.
    #[serde(default)]
    version: Option<i64>,
}

/// Every synonym group.
#[derive(Serialize, ToSchema)]
pub struct SynonymList {
    pub data: Vec<SynonymGroup>,
}

fn valid_group(id: String, b: SynonymBody) -> Result<SynonymGroup, ApiError> {
    let g = SynonymGroup {
        id,
        name: b.name.trim().to_string(),
        words: b.words,
        version: 0,
    };
    g.validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(g)
}

#[utoipa::path(
    get,
    path = "/api/v1/bots/synonyms",
    tag = "bots",
    summary = "Synonym groups",
    security(("bearer" = ["whatsapp_bot:view"])),
    responses((status = 200, description = "Every group", body = SynonymList))
)]
async fn list_synonyms(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<SynonymList>, ApiError> {
    who.require(VIEW)?;
    Ok(Json(SynonymList {
        data: app.store.synonym_groups().await?,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/bots/synonyms",
    tag = "bots",
    summary = "Create a synonym group",
    security(("bearer" = ["whatsapp_bot:create"])),
    request_body = SynonymBody,
    responses((status = 201, description = "Created", body = SynonymGroup))
)]
async fn create_synonyms(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<SynonymGroup>), ApiError> {
    who.require(CREATE)?;
    let b: SynonymBody = crate::parse_json(&body)?;
    let now = (app.now_ms)();
    let mut g = valid_group(new_id(now), b)?;
    if app
        .store
        .synonym_groups()
        .await?
        .iter()
        .any(|o| o.name.eq_ignore_ascii_case(&g.name))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "name_taken",
            format!("a synonym group is already named {:?}", g.name),
        ));
    }
    g.version = app.store.create_synonym_group(&g).await?;
    Ok((StatusCode::CREATED, Json(g)))
}

#[utoipa::path(
    put,
    path = "/api/v1/bots/synonyms/{id}",
    tag = "bots",
    summary = "Replace a synonym group",
    security(("bearer" = ["whatsapp_bot:edit"])),
    params(("id" = String, Path, description = "Group id")),
    request_body = SynonymBody,
    responses((status = 200, description = "Saved", body = SynonymGroup))
)]
async fn update_synonyms(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SynonymGroup>, ApiError> {
    who.require(EDIT)?;
    let id = path_id(&id, "synonym group")?.to_string();
    let b: SynonymBody = crate::parse_json(&body)?;
    let old = app
        .store
        .synonym_group(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("synonym group"))?;
    let expected = b.version.unwrap_or(old.version);
    let mut g = valid_group(id, b)?;
    // A group a bot names keeps its name (the bot would stop matching).
    if g.name != old.name {
        let set = app.store.bot_set().await?;
        if let Some(bot) = set.bots.iter().find(|bot| {
            let mut renamed = set.synonyms.clone();
            if let Some(x) = renamed.iter_mut().find(|x| x.id == g.id) {
                x.name = g.name.clone();
            }
            bot.validate(&renamed).is_err() && bot.validate(&set.synonyms).is_ok()
        }) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "group_in_use",
                format!("bot {} ({}) names this group", bot.id, bot.name),
            ));
        }
    }
    g.version = app.store.update_synonym_group(&g, expected).await?;
    Ok(Json(g))
}

#[utoipa::path(
    delete,
    path = "/api/v1/bots/synonyms/{id}",
    tag = "bots",
    summary = "Delete a synonym group",
    security(("bearer" = ["whatsapp_bot:delete"])),
    params(("id" = String, Path, description = "Group id")),
    responses((status = 204, description = "Deleted"))
)]
async fn delete_synonyms(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(DELETE)?;
    let id = path_id(&id, "synonym group")?.to_string();
    let set = app.store.bot_set().await?;
    let rest: Vec<SynonymGroup> = set
        .synonyms
        .iter()
        .filter(|g| g.id != id)
        .cloned()
        .collect();
    if let Some(bot) = set
        .bots
        .iter()
        .find(|b| b.validate(&rest).is_err() && b.validate(&set.synonyms).is_ok())
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "group_in_use",
            format!("bot {} ({}) names this group", bot.id, bot.name),
        ));
    }
    app.store.delete_synonym_group(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
