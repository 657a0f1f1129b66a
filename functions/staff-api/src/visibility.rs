//! Which conversations a staff member sees: the one rule every conversation and media route
//! applies ([`require_visible`]) and the inbox list filters by ([`Visibility::sees`]).
//!
//! `whatsapp_chat:view` is the baseline (as the CRM's module has it). An admin setting,
//! `GET`/`PUT /api/v1/settings/inbox-visibility` `{"mode": "all" | "assigned"}`, limits
//! non-admin staff to conversations assigned to them or to no one (`assigned`); `all` (the
//! default) shows them every conversation.
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::auth::Principal;
use shared::store::model::Conversation;
use utoipa::ToSchema;

use crate::{ApiError, Authed, CHAT_VIEW, StaffApp, parse_json};

pub const SETTING: &str = "inbox_visibility";
/// The setting is re-read at most this often by one staff API instance.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// Which conversations non-admin staff see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = VisibilityMode)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every conversation (the default).
    #[default]
    All,
    /// Only conversations assigned to them or to no one.
    Assigned,
}

/// The inbox-visibility setting (admins always see every conversation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisibilitySetting {
    /// `all` or `assigned`.
    pub mode: Mode,
}

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![get_setting, put_setting]
}

/// What one caller sees.
pub(crate) struct Visibility<'a> {
    who: &'a Principal,
    mode: Mode,
}

impl Visibility<'_> {
    /// Whether some conversations are hidden from this caller.
    pub(crate) fn restricted(&self) -> bool {
        !self.who.admin && self.mode == Mode::Assigned
    }

    pub(crate) fn sees(&self, c: &Conversation) -> bool {
        if !self.who.can(CHAT_VIEW) {
            return false;
        }
        self.who.admin
            || self.mode == Mode::All
            || c.assignee
                .as_deref()
                .is_none_or(|a| a.is_empty() || a == self.who.staff_id)
    }
}

/// The caller's visibility (the setting read through a short cache).
pub(crate) async fn of<'a>(app: &StaffApp, who: &'a Principal) -> Result<Visibility<'a>, ApiError> {
    Ok(Visibility {
        who,
        mode: mode(app).await?,
    })
}

async fn mode(app: &StaffApp) -> Result<Mode, ApiError> {
    if let Some((at, m)) = *app.visibility_cache.read().await
        && at.elapsed() < CACHE_TTL
    {
        return Ok(m);
    }
    let m = app
        .store
        .setting::<VisibilitySetting>(SETTING)
        .await?
        .unwrap_or_default()
        .mode;
    *app.visibility_cache.write().await = Some((Instant::now(), m));
    Ok(m)
}

/// 403 unless the caller may see the conversation.
pub(crate) async fn require_visible(
    app: &StaffApp,
    who: &Principal,
    c: &Conversation,
) -> Result<(), ApiError> {
    if of(app, who).await?.sees(c) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this conversation is not visible to you",
        ))
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/settings/inbox-visibility",
    tag = "settings",
    summary = "Which conversations non-admin staff see: all, or those assigned to them or to no one",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The setting (`all` when never set)", body = VisibilitySetting))
)]
async fn get_setting(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<VisibilitySetting>, ApiError> {
    who.require_admin()?;
    let s = app
        .store
        .setting::<VisibilitySetting>(SETTING)
        .await?
        .unwrap_or_default();
    Ok(Json(s))
}

#[utoipa::path(
    put,
    path = "/api/v1/settings/inbox-visibility",
    tag = "settings",
    summary = "Change the inbox visibility (mode all | assigned)",
    description = "Every instance applies it within 10 seconds (the setting is cached briefly).",
    security(("bearer" = ["admin"])),
    request_body = VisibilitySetting,
    responses((status = 200, description = "The setting saved", body = VisibilitySetting))
)]
async fn put_setting(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Json<VisibilitySetting>, ApiError> {
    who.require_admin()?;
    let s: VisibilitySetting = parse_json(&body)?;
    app.store.put_setting(SETTING, &s, (app.now_ms)()).await?;
    *app.visibility_cache.write().await = Some((Instant::now(), s.mode));
    tracing::info!(staff_id = %who.staff_id, mode = ?s.mode, "inbox visibility changed");
    Ok(Json(s))
}
