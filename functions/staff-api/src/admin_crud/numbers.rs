//! `/api/v1/numbers`: the business numbers we send from, and the default sender.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::auth::{Action, Permission, Resource};
use shared::store::numbers::WhatsappNumber;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{nullable, opt_text, perm, text};
use crate::{ApiError, Authed, StaffApp};

const VIEW: Permission = perm(Resource::WhatsappNumbers, Action::View);
const EDIT: Permission = perm(Resource::WhatsappNumbers, Action::Edit);

pub fn routes() -> OpenApiRouter<Arc<StaffApp>> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(read, update))
        .routes(routes!(make_default))
}

/// A business number we send from.
#[derive(Serialize, ToSchema)]
pub struct NumberView {
    /// Meta's id of the number.
    pub phone_number_id: String,
    /// The number as shown (e.g. `+1 555 078 3881`).
    pub display_phone_number: String,
    pub verified_name: String,
    pub label: Option<String>,
    /// `manual` (added through the API).
    pub source: String,
    /// The sender used when none is named.
    pub is_default: bool,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds.
    pub updated_at: i64,
}

impl NumberView {
    fn new(n: &WhatsappNumber, default: Option<&str>) -> Self {
        Self {
            phone_number_id: n.phone_number_id.clone(),
            display_phone_number: n.display_phone_number.clone(),
            verified_name: n.verified_name.clone(),
            label: n.label.clone(),
            source: n.source.clone(),
            is_default: default == Some(n.phone_number_id.as_str()),
            created_at: n.created_at,
            updated_at: n.updated_at,
        }
    }
}

/// Every business number and the default sender.
#[derive(Serialize, ToSchema)]
pub struct NumberList {
    pub data: Vec<NumberView>,
    /// The default sender (absent when none is set).
    pub default_phone_number_id: Option<String>,
}

/// The default sender now.
#[derive(Serialize, ToSchema)]
pub struct DefaultNumber {
    pub default_phone_number_id: String,
}

fn valid_phone_number_id(v: &str) -> Result<String, ApiError> {
    if (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(v.to_string())
    } else {
        Err(ApiError::bad_request(
            "phone_number_id must be Meta's id of the number: 1 to 32 digits",
        ))
    }
}

fn valid_display(v: &str) -> Result<String, ApiError> {
    let t = v.trim();
    let ok = (1..=32).contains(&t.chars().count())
        && t.chars().any(|c| c.is_ascii_digit())
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
    if ok {
        Ok(t.to_string())
    } else {
        Err(ApiError::bad_request(
            "display_phone_number must be the number as shown (digits, spaces, + - ( ) .), at most 32 characters",
        ))
    }
}

/// A path id that is not a phone number id is simply not found.
fn path_number(id: &str) -> Result<&str, ApiError> {
    if (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(ApiError::not_found(&format!("number {id}")))
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/numbers",
    tag = "numbers",
    summary = "Business numbers",
    security(("bearer" = ["whatsapp_numbers:view"])),
    responses((status = 200, description = "Every number and the default sender", body = NumberList))
)]
async fn list(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<NumberList>, ApiError> {
    who.require(VIEW)?;
    let (numbers, default) = tokio::try_join!(app.store.numbers(), app.store.default_number_id())?;
    Ok(Json(NumberList {
        data: numbers
            .iter()
            .map(|n| NumberView::new(n, default.as_deref()))
            .collect(),
        default_phone_number_id: default,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/numbers/{phone_number_id}",
    tag = "numbers",
    summary = "One number",
    security(("bearer" = ["whatsapp_numbers:view"])),
    params(("phone_number_id" = String, Path, description = "Meta's id of the number")),
    responses((status = 200, description = "The number", body = NumberView))
)]
async fn read(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<NumberView>, ApiError> {
    who.require(VIEW)?;
    let id = path_number(&id)?;
    let n = app
        .store
        .number(id)
        .await?
        .ok_or_else(|| ApiError::not_found(&format!("number {id}")))?;
    let default = app.store.default_number_id().await?;
    Ok(Json(NumberView::new(&n, default.as_deref())))
}

/// A number added by hand.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumberAddBody {
    /// Meta's id of the number: 1 to 32 digits.
    #[schema(example = "106540352242922")]
    phone_number_id: String,
    /// The number as shown: digits, spaces and `+ - ( ) .`, at most 32 characters.
    #[schema(example = "+1 555 078 3881")]
    display_phone_number: String,
    /// The business name Meta verified: 1 to 200 characters.
    #[schema(example = "Acme")]
    verified_name: String,
    /// At most 100 characters; empty means none.
    #[serde(default)]
    label: Option<String>,
}

/// `POST /api/v1/numbers`: adds a number by hand (the first one becomes the default).
#[utoipa::path(
    post,
    path = "/api/v1/numbers",
    tag = "numbers",
    summary = "Add a number",
    description = "The first number added becomes the default sender.",
    security(("bearer" = ["whatsapp_numbers:edit"])),
    request_body = NumberAddBody,
    responses((status = 201, description = "The number added", body = NumberView))
)]
async fn add(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<NumberView>), ApiError> {
    who.require(EDIT)?;
    let b: NumberAddBody = super::body(&body)?;
    let n = WhatsappNumber::new(
        valid_phone_number_id(&b.phone_number_id)?,
        valid_display(&b.display_phone_number)?,
        text("verified_name", &b.verified_name, 1, 200)?,
        opt_text("label", b.label.as_deref(), 100)?,
        (app.now_ms)(),
    );
    app.store.add_number(&n).await?;
    let default = app.store.default_number_id().await?;
    tracing::info!(staff_id = %who.staff_id, phone_number_id = %n.phone_number_id, "number added");
    Ok((
        StatusCode::CREATED,
        Json(NumberView::new(&n, default.as_deref())),
    ))
}

/// The fields to replace; the others are kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumberUpdateBody {
    /// The number as shown: digits, spaces and `+ - ( ) .`, at most 32 characters.
    #[serde(default)]
    display_phone_number: Option<String>,
    /// 1 to 200 characters.
    #[serde(default)]
    verified_name: Option<String>,
    /// At most 100 characters; `null` or empty removes the label.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    label: Option<Option<String>>,
}

/// `PUT /api/v1/numbers/{phone_number_id}`: the fields given are replaced (`label: null`
/// removes the label).
#[utoipa::path(
    put,
    path = "/api/v1/numbers/{phone_number_id}",
    tag = "numbers",
    summary = "Edit a number",
    description = "The fields given are replaced, the others kept (`label: null` removes the label).",
    security(("bearer" = ["whatsapp_numbers:edit"])),
    params(("phone_number_id" = String, Path, description = "Meta's id of the number")),
    request_body = NumberUpdateBody,
    responses((status = 200, description = "The number changed", body = NumberView))
)]
async fn update(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<NumberView>, ApiError> {
    who.require(EDIT)?;
    let b: NumberUpdateBody = super::body(&body)?;
    let display = b
        .display_phone_number
        .as_deref()
        .map(valid_display)
        .transpose()?;
    let verified = b
        .verified_name
        .as_deref()
        .map(|v| text("verified_name", v, 1, 200))
        .transpose()?;
    let label = b
        .label
        .map(|l| opt_text("label", l.as_deref(), 100))
        .transpose()?;
    let id = path_number(&id)?;
    let mut n = app
        .store
        .number(id)
        .await?
        .ok_or_else(|| ApiError::not_found(&format!("number {id}")))?;
    if let Some(d) = display {
        n.display_phone_number = d;
    }
    if let Some(v) = verified {
        n.verified_name = v;
    }
    if let Some(l) = label {
        n.label = l;
    }
    n.updated_at = (app.now_ms)();
    app.store.update_number(&n).await?;
    let default = app.store.default_number_id().await?;
    tracing::info!(staff_id = %who.staff_id, phone_number_id = %n.phone_number_id, "number changed");
    Ok(Json(NumberView::new(&n, default.as_deref())))
}

/// `POST /api/v1/numbers/{phone_number_id}/default`: the sender used when none is named.
#[utoipa::path(
    post,
    path = "/api/v1/numbers/{phone_number_id}/default",
    tag = "numbers",
    summary = "Make it the default sender",
    description = "The sender used when a send names none. No request body is needed.",
    security(("bearer" = ["whatsapp_numbers:edit"])),
    params(("phone_number_id" = String, Path, description = "Meta's id of the number")),
    responses((status = 200, description = "The default sender now", body = DefaultNumber))
)]
async fn make_default(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<DefaultNumber>, ApiError> {
    who.require(EDIT)?;
    let id = path_number(&id)?;
    app.store
        .set_default_number(id, &who.staff_id, (app.now_ms)())
        .await?;
    tracing::info!(staff_id = %who.staff_id, phone_number_id = %id, "default number set");
    Ok(Json(DefaultNumber {
        default_phone_number_id: id.to_string(),
    }))
}
