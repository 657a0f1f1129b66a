//! `/api/v1/numbers`: the business numbers we send from, and the default sender.
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::auth::{Action, Permission, Resource};
use shared::store::numbers::WhatsappNumber;

use super::{nullable, opt_text, perm, text};
use crate::{ApiError, Authed, StaffApp};

const VIEW: Permission = perm(Resource::WhatsappNumbers, Action::View);
const EDIT: Permission = perm(Resource::WhatsappNumbers, Action::Edit);

pub fn routes() -> Router<Arc<StaffApp>> {
    Router::new()
        .route("/api/v1/numbers", get(list).post(add))
        .route("/api/v1/numbers/{phone_number_id}", get(read).put(update))
        .route(
            "/api/v1/numbers/{phone_number_id}/default",
            post(make_default),
        )
}

fn number_json(n: &WhatsappNumber, default: Option<&str>) -> Value {
    json!({
        "phone_number_id": n.phone_number_id,
        "display_phone_number": n.display_phone_number,
        "verified_name": n.verified_name,
        "label": n.label,
        "source": n.source,
        "is_default": default == Some(n.phone_number_id.as_str()),
        "created_at": n.created_at,
        "updated_at": n.updated_at,
    })
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

async fn list(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Response, ApiError> {
    who.require(VIEW)?;
    let (numbers, default) = tokio::try_join!(app.store.numbers(), app.store.default_number_id())?;
    Ok(axum::Json(json!({
        "data": numbers.iter().map(|n| number_json(n, default.as_deref())).collect::<Vec<_>>(),
        "default_phone_number_id": default,
    }))
    .into_response())
}

async fn read(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(VIEW)?;
    let id = path_number(&id)?;
    let n = app
        .store
        .number(id)
        .await?
        .ok_or_else(|| ApiError::not_found(&format!("number {id}")))?;
    let default = app.store.default_number_id().await?;
    Ok(axum::Json(number_json(&n, default.as_deref())).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    phone_number_id: String,
    display_phone_number: String,
    verified_name: String,
    #[serde(default)]
    label: Option<String>,
}

/// `POST /api/v1/numbers`: adds a number by hand (the first one becomes the default).
async fn add(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require(EDIT)?;
    let b: AddBody = super::body(&body)?;
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
        axum::Json(number_json(&n, default.as_deref())),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    display_phone_number: Option<String>,
    #[serde(default)]
    verified_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    label: Option<Option<String>>,
}

/// `PUT /api/v1/numbers/{phone_number_id}`: the fields given are replaced (`label: null`
/// removes the label).
async fn update(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    who.require(EDIT)?;
    let b: UpdateBody = super::body(&body)?;
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
    Ok(axum::Json(number_json(&n, default.as_deref())).into_response())
}

/// `POST /api/v1/numbers/{phone_number_id}/default`: the sender used when none is named.
async fn make_default(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    who.require(EDIT)?;
    let id = path_number(&id)?;
    app.store
        .set_default_number(id, &who.staff_id, (app.now_ms)())
        .await?;
    tracing::info!(staff_id = %who.staff_id, phone_number_id = %id, "default number set");
    Ok(axum::Json(json!({"default_phone_number_id": id})).into_response())
}
