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

use super::{nullable, opt_text, perm, text};
use crate::{ApiError, Authed, StaffApp};

const VIEW: Permission = perm(Resource::WhatsappNumbers, Action::View);
const EDIT: Permission = perm(Resource::WhatsappNumbers, Action::Edit);

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![
        list,
        add,
        read,
        update,
        make_default,
        embedded_signup,
        import
    ]
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
    /// `manual` (added through the API), `embedded_signup` or `import` (read from the WABA).
    pub source: String,
    /// The sender used when none is named.
    pub is_default: bool,
    /// Meta's throughput of the number, the pace of every send from it (`null`: 80/s).
    pub messages_per_second: Option<u32>,
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
            messages_per_second: n.messages_per_second,
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

fn valid_rate(v: u32) -> Result<u32, ApiError> {
    if (1..=shared::pacing::MAX_LIMIT).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::bad_request(
            "messages_per_second must be the number's throughput at Meta: 1 to 1000 messages per second",
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
    /// Meta's throughput of the number (80 by default, 1000 once Meta upgraded it): every send
    /// from it is paced to this many messages per second. Absent: 80.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    messages_per_second: Option<u32>,
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
    let n = WhatsappNumber {
        messages_per_second: b.messages_per_second.map(valid_rate).transpose()?,
        ..n
    };
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
    /// 1 to 1000; `null` goes back to the default (80). Senders see a change within a minute.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    messages_per_second: Option<Option<u32>>,
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
    let rate = b
        .messages_per_second
        .map(|r| r.map(valid_rate).transpose())
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
    if let Some(r) = rate {
        n.messages_per_second = r;
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

/// What Meta's Embedded Signup reported to the browser.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignupBody {
    /// The code the signup flow returned (exchanged once for a business token).
    code: String,
    /// The WABA the business shared.
    #[schema(example = "102290129340398")]
    waba_id: String,
    /// The number the business chose (all of the WABA's numbers are added).
    #[serde(default)]
    phone_number_id: Option<String>,
    #[serde(default)]
    business_id: Option<String>,
}

/// The numbers a connection added.
#[derive(Serialize, ToSchema)]
pub struct NumbersAdded {
    pub waba_id: String,
    /// Numbers added now (those already known are kept as they were).
    pub added: Vec<NumberView>,
    /// Every number of the WABA, as Meta listed them.
    pub listed: usize,
    pub default_phone_number_id: Option<String>,
}

/// Meta's answer to a signup or WABA call: what Meta refused is the request's or the
/// connection's problem (`refused`: 422 for a signup code, 409 for the connection's WABA);
/// Meta unreachable or slow is 503 / 504.
fn meta_failure(
    what: &str,
    e: shared::meta::graph::GraphError,
    refused: (StatusCode, &'static str),
) -> ApiError {
    use shared::meta::graph::{ErrorClass, GraphError};
    tracing::warn!(error = %e, what, "Meta call failed");
    let (status, code) = match &e {
        GraphError::Meta {
            class: ErrorClass::RateLimited,
            ..
        } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        GraphError::Meta {
            class: ErrorClass::Temporary,
            ..
        } => (StatusCode::SERVICE_UNAVAILABLE, "meta_unavailable"),
        GraphError::Meta { .. } | GraphError::Validation(_) | GraphError::Config(_) => refused,
        GraphError::NotSent(_) => (StatusCode::SERVICE_UNAVAILABLE, "meta_unreachable"),
        GraphError::Unknown(_) => (StatusCode::GATEWAY_TIMEOUT, "meta_timeout"),
        _ => (StatusCode::BAD_GATEWAY, "meta_error"),
    };
    ApiError::new(status, code, format!("{what}: {e}"))
}

const WABA_REFUSED: (StatusCode, &str) = (StatusCode::CONFLICT, "not_connected");
const CODE_REFUSED: (StatusCode, &str) = (StatusCode::UNPROCESSABLE_ENTITY, "signup_refused");

/// Adds the numbers of `waba_id` not known yet.
async fn add_waba_numbers(
    app: &StaffApp,
    graph: &shared::meta::graph::GraphClient,
    waba_id: &str,
    token: &str,
    source: &str,
) -> Result<NumbersAdded, ApiError> {
    let listed = graph
        .get_object(
            &[waba_id, "phone_numbers"],
            &[("fields", "id,display_phone_number,verified_name")],
            token,
        )
        .await
        .map_err(|e| meta_failure("listing the WABA's phone numbers", e, WABA_REFUSED))?;
    let numbers = listed["data"].as_array().cloned().unwrap_or_default();
    let known: std::collections::HashSet<String> = app
        .store
        .numbers()
        .await?
        .into_iter()
        .map(|n| n.phone_number_id)
        .collect();
    let mut added = Vec::new();
    for n in &numbers {
        let text = |k: &str| n[k].as_str().unwrap_or_default().to_string();
        let id = text("id");
        if valid_phone_number_id(&id).is_err() || known.contains(&id) {
            continue;
        }
        let display = valid_display(&text("display_phone_number")).unwrap_or_else(|_| id.clone());
        let verified = Some(text("verified_name"))
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "WhatsApp Business".into());
        let num = WhatsappNumber {
            source: source.to_string(),
            ..WhatsappNumber::new(id, display, verified, None, (app.now_ms)())
        };
        match app.store.add_number(&num).await {
            Ok(()) => added.push(num),
            // Added meanwhile by someone else: kept as it is.
            Err(shared::store::crud::CrudError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let default = app.store.default_number_id().await?;
    Ok(NumbersAdded {
        waba_id: waba_id.to_string(),
        added: added
            .iter()
            .map(|n| NumberView::new(n, default.as_deref()))
            .collect(),
        listed: numbers.len(),
        default_phone_number_id: default,
    })
}

/// `POST /api/v1/numbers/embedded-signup` (admin): connects a WABA from Meta's Embedded Signup.
#[utoipa::path(
    post,
    path = "/api/v1/numbers/embedded-signup",
    tag = "numbers",
    summary = "Connect a number through Meta's Embedded Signup",
    description = "Exchanges the signup code for a business token with the app id and secret of the connection settings, stores the token and the WABA in the connection, subscribes the app to the WABA's webhooks and adds the WABA's numbers (the default number is kept; the first becomes it when there is none).",
    security(("bearer" = ["admin"])),
    request_body = SignupBody,
    responses((status = 201, description = "Connected", body = NumbersAdded))
)]
async fn embedded_signup(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<NumbersAdded>), ApiError> {
    who.require_admin()?;
    let b: SignupBody = super::body(&body)?;
    if b.waba_id.is_empty() {
        return Err(ApiError::bad_request("waba_id: the WABA the signup shared"));
    }
    shared::credentials::check_graph_id(&b.waba_id)
        .map_err(|e| ApiError::bad_request(format!("waba_id: {e}")))?;
    if let Some(p) = &b.phone_number_id {
        valid_phone_number_id(p)?;
    }
    if let Some(id) = &b.business_id {
        shared::credentials::check_graph_id(id)
            .map_err(|e| ApiError::bad_request(format!("business_id: {e}")))?;
    }
    if b.code.trim().is_empty() || b.code.len() > 4096 {
        return Err(ApiError::bad_request("code: the signup flow's code"));
    }
    let settings = app.settings_backend()?;
    let conn = crate::settings::connection(settings).await?;
    if conn.app_id.trim().is_empty() || conn.app_secret.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_connected",
            "the connection settings need the app_id and app_secret of the Meta app the signup ran in",
        ));
    }
    let graph = &app.messaging()?.graph;
    let token = graph
        .exchange_code(conn.app_id.trim(), conn.app_secret.expose(), b.code.trim())
        .await
        .map_err(|e| meta_failure("exchanging the signup code", e, CODE_REFUSED))?;
    let mut fields = vec![
        ("access_token", token.clone()),
        ("waba_id", b.waba_id.clone()),
    ];
    if let Some(id) = &b.business_id {
        fields.push(("business_id", id.clone()));
    }
    crate::settings::store_connection(settings, &fields).await?;
    graph
        .subscribe_app(&b.waba_id, &token)
        .await
        .map_err(|e| meta_failure("subscribing the app to the WABA", e, WABA_REFUSED))?;
    let out = add_waba_numbers(&app, graph, &b.waba_id, &token, "embedded_signup").await?;
    tracing::info!(staff_id = %who.staff_id, waba_id = %b.waba_id, added = out.added.len(), "WABA connected by Embedded Signup");
    Ok((StatusCode::CREATED, Json(out)))
}

/// `POST /api/v1/numbers/import`: adds the numbers of the connected WABA not known yet.
#[utoipa::path(
    post,
    path = "/api/v1/numbers/import",
    tag = "numbers",
    summary = "Add the connected WABA's numbers",
    description = "Lists the phone numbers of the connection's WABA at Meta and adds those not known yet. No request body is needed.",
    security(("bearer" = ["whatsapp_numbers:edit"])),
    responses((status = 200, description = "What was added", body = NumbersAdded))
)]
async fn import(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<NumbersAdded>, ApiError> {
    who.require(EDIT)?;
    let m = app.messaging()?;
    let s = m
        .meta_secrets
        .refresh_at_most_every(std::time::Duration::from_secs(5))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "Meta credentials unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "secrets_unavailable",
                "Meta credentials are unavailable",
            )
        })?;
    if s.access_token.is_empty() || s.waba_id.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_connected",
            "the connection has no access token or waba_id",
        ));
    }
    let out = add_waba_numbers(
        &app,
        &m.graph,
        s.waba_id.trim(),
        s.access_token.expose(),
        "import",
    )
    .await?;
    tracing::info!(staff_id = %who.staff_id, added = out.added.len(), "numbers imported");
    Ok(Json(out))
}
