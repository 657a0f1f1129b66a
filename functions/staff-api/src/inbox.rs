//! Inbox actions that reach outside: replies (Meta), read receipts, assignment and ticket
//! requests (CRM bus).
//!
//! A reply is recorded as an intent under a key derived from the conversation and the
//! request's idempotency key BEFORE Meta is called, so a retried click never sends twice; a
//! send whose answer was lost is marked `unknown` and settled by its first status (the inbound
//! function matches `biz_opaque_callback_data`), never re-sent blindly.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::crm_events::{EventBus, OutboundEvent};
use shared::meta::graph::{ErrorClass, GraphClient, GraphError};
use shared::meta::outbound::{OutboundContent, OutboundMessage};
use shared::pacing::{DynamoWindowCounter, PaceError, Pacer};
use shared::secrets::{CachedSecret, MetaSecrets};
use shared::sending::{Outbound, SendError, SendOutcome, SendRequest};
use shared::store::keys;
use shared::store::model::{Conversation, Direction, MessageItem, SendIntent, SendState};
use utoipa::ToSchema;

use crate::{ApiError, Authed, CHAT_VIEW, StaffApp, parse_json};

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![
        start_conversation,
        send_message,
        mark_read,
        assign,
        create_ticket
    ]
}

/// What the inbox needs to reach Meta and the CRM.
pub struct Messaging {
    pub graph: Arc<GraphClient>,
    pub meta_secrets: Arc<CachedSecret<MetaSecrets>>,
    pub bus: Arc<dyn EventBus>,
    /// Per-number pace shared with every other sender (campaigns included).
    pub pacer: Arc<Pacer<DynamoWindowCounter>>,
}

impl Messaging {
    /// Sending through `outbound`, publishing to the CRM's `bus`.
    pub fn new(outbound: Outbound, bus: Arc<dyn EventBus>) -> Self {
        let Outbound {
            graph,
            meta_secrets,
            pacer,
        } = outbound;
        Self {
            graph,
            meta_secrets,
            bus,
            pacer,
        }
    }

    /// The outbound layer over these clients.
    pub(crate) fn outbound(&self) -> Outbound {
        Outbound {
            graph: self.graph.clone(),
            meta_secrets: self.meta_secrets.clone(),
            pacer: self.pacer.clone(),
        }
    }

    pub(crate) async fn token(&self) -> Result<String, ApiError> {
        let s = self.meta_secrets.get().await.map_err(|e| {
            tracing::error!(error = %e, "Meta credentials unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "secrets_unavailable",
                "Meta credentials are unavailable",
            )
        })?;
        if s.access_token.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_connected",
                "no Meta access token is configured (connection settings)",
            ));
        }
        Ok(s.access_token.expose().to_string())
    }

    pub(crate) async fn publish(&self, event: OutboundEvent) -> Result<(), ApiError> {
        self.bus.publish(&[event]).await.map_err(|e| {
            tracing::error!(error = %e, "CRM bus unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "bus_unavailable",
                "the CRM event could not be published; retry",
            )
        })
    }
}

fn idempotency_key(headers: &HeaderMap, body_key: Option<String>) -> Result<String, ApiError> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(body_key)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "idempotency key must be 1 to 200 printable characters",
        ));
    }
    Ok(key)
}

/// A reply: `content`, or a quick reply by id.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendBody {
    /// What to send (text, media, interactive, location, contacts, reaction or template).
    /// Anything but a template needs the 24-hour window open.
    #[serde(default)]
    content: Option<OutboundContent>,
    /// Instead of `content`: a quick reply, sent as text with its placeholders filled.
    #[serde(default)]
    quick_reply_id: Option<String>,
    /// The `wamid` this message replies to (quoted in the customer's app).
    #[serde(default)]
    reply_to: Option<String>,
    /// Same as the `Idempotency-Key` header (the header wins): a retried request with the same
    /// key is answered from the first, never sent twice; the same key with another message is
    /// refused (422 `idempotency_key_reused`). Without either, a retried click sends twice.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// Why Meta refused a send.
#[derive(Serialize, ToSchema)]
pub struct SendErrorView {
    /// Meta's error code (0: refused before reaching Meta).
    pub code: i64,
    /// `rate_limited`, `needs_template`, `recipient_invalid`, `opted_out`, `temporary`, …
    pub class: Option<String>,
    pub message: Option<String>,
}

/// A send and where it stands: `accepted` (Meta gave a `wamid`), `unknown` (Meta's answer was
/// lost; the first status settles it), `failed`, or `pending` while it runs.
#[derive(Serialize, ToSchema)]
pub struct SendView {
    /// The send's id (derived from the conversation and the idempotency key).
    pub id: String,
    pub conversation_id: String,
    pub state: SendState,
    pub wamid: Option<String>,
    /// Meta's message type.
    #[serde(rename = "type")]
    pub kind: String,
    pub error: Option<SendErrorView>,
}

impl SendView {
    pub(crate) fn new(i: &SendIntent) -> Self {
        Self {
            id: i.msg_id.clone(),
            conversation_id: i.conversation_id.clone(),
            state: i.state,
            wamid: i.wamid.clone(),
            kind: i.kind.clone(),
            error: i.error_code.map(|code| SendErrorView {
                code,
                class: i.error_class.clone(),
                message: i.error_message.clone(),
            }),
        }
    }
}

/// 201 sent (accepted by Meta), 202 outcome unknown, 200 the answer to a repeated request.
type SendAnswer = Result<(StatusCode, Json<SendView>), ApiError>;

/// HTTP answer for Meta's refusal of a send.
pub(crate) fn meta_refusal(e: &GraphError) -> ApiError {
    match e {
        GraphError::Meta {
            code,
            message,
            class,
            ..
        } => {
            let (status, api_code) = match class {
                ErrorClass::NeedsTemplate => (StatusCode::CONFLICT, "window_closed"),
                ErrorClass::RecipientInvalid
                | ErrorClass::OptedOut
                | ErrorClass::MarketingCapped => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "recipient_refused")
                }
                ErrorClass::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
                ErrorClass::TemplateParams | ErrorClass::TemplatePaused => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "template_refused")
                }
                ErrorClass::Temporary => (StatusCode::SERVICE_UNAVAILABLE, "meta_unavailable"),
                _ => (StatusCode::BAD_GATEWAY, "meta_error"),
            };
            ApiError::new(
                status,
                api_code,
                format!(
                    "Meta refused the message ({code}, {}): {message}",
                    class.as_str()
                ),
            )
        }
        GraphError::Validation(v) => ApiError::bad_request(v.to_string()),
        GraphError::NotSent(m) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "meta_unreachable",
            format!("Meta could not be reached: {m}"),
        ),
        other => ApiError::new(StatusCode::BAD_GATEWAY, "meta_error", other.to_string()),
    }
}

/// `POST /api/v1/conversations/{id}/messages`: reply with text, media, interactive or template.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/messages",
    tag = "inbox",
    summary = "Reply (text, media, interactive, template or a quick reply)",
    description = "Outside the 24-hour window only a template can be sent (409 `window_closed`).",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(
        ("id" = String, Path, description = "Conversation id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1–200 printable characters; a retried request with the same key is never sent twice"),
    ),
    request_body = SendBody,
    responses(
        (status = 201, description = "Accepted by Meta", body = SendView),
        (status = 202, description = "Meta's answer was lost: the outcome is settled by the first status", body = SendView),
        (status = 200, description = "A repeated request, answered from the first", body = SendView),
    )
)]
pub async fn send_message(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> SendAnswer {
    who.require(CHAT_VIEW)?;
    let b: SendBody = parse_json(&body)?;
    let key = idempotency_key(&headers, b.idempotency_key)?;
    let m = app.messaging()?;
    let conv = crate::visible_conversation(&app, &who, &id).await?;
    let content = crate::admin_crud::quick_replies::send_content(
        &app,
        &conv,
        &who.staff_id,
        b.content,
        b.quick_reply_id,
    )
    .await?;
    send_to(&app, m, &who, &conv, content, b.reply_to, &key).await
}

/// Sends `content` in `conv` (which may not be stored yet: a first, business-initiated
/// message creates it when Meta accepts the send) through the outbound layer.
pub(crate) async fn send_to(
    app: &StaffApp,
    m: &Messaging,
    who: &shared::auth::Principal,
    conv: &Conversation,
    content: OutboundContent,
    reply_to: Option<String>,
    key: &str,
) -> SendAnswer {
    let deadline = std::time::Instant::now() + app.send_budget;
    if let OutboundContent::Template(t) = &content {
        // The message's own limits first (400), then the stored template (404 unknown, 422
        // mismatch), before any intent is recorded.
        OutboundMessage {
            to: conv.wa_id.clone().unwrap_or_default(),
            reply_to: reply_to.clone(),
            biz_opaque_callback_data: None,
            content: content.clone(),
        }
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        crate::templates::check_send(app, m, t).await?;
    }
    let sent = m
        .outbound()
        .send(
            &app.store,
            SendRequest {
                conversation: conv,
                content,
                reply_to,
                key,
                staff_id: Some(&who.staff_id),
                source: "api",
                deadline,
                now_ms: (app.now_ms)(),
                token: None,
                notification_log: None,
            },
        )
        .await;
    match sent {
        Ok(SendOutcome::Accepted(i)) => Ok((StatusCode::CREATED, Json(SendView::new(&i)))),
        Ok(SendOutcome::Unknown(i)) => Ok((StatusCode::ACCEPTED, Json(SendView::new(&i)))),
        Ok(SendOutcome::Repeated(i)) => Ok((StatusCode::OK, Json(SendView::new(&i)))),
        Err(e) => Err(send_refusal(e)),
    }
}

/// HTTP answer for a send that did not happen.
fn send_refusal(e: SendError) -> ApiError {
    let message = e.to_string();
    match e {
        SendError::WindowClosed(_) => ApiError::new(StatusCode::CONFLICT, "window_closed", message),
        SendError::NoRecipient => ApiError::new(StatusCode::CONFLICT, "no_recipient", message),
        SendError::Invalid(v) => ApiError::bad_request(v.to_string()),
        SendError::KeyReused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            message,
        ),
        SendError::NotConnected(_) => ApiError::new(StatusCode::CONFLICT, "not_connected", message),
        SendError::SecretsUnavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secrets_unavailable",
            message,
        ),
        SendError::Paced(PaceError::Saturated { .. }) => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
        SendError::Paced(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "pacing_unavailable",
            message,
        ),
        SendError::Refused(g) => meta_refusal(&g),
        SendError::Store(s) => s.into(),
    }
}

/// What marking a conversation read did.
#[derive(Serialize, ToSchema)]
pub struct ReadView {
    pub conversation_id: String,
    /// Always 0.
    pub unread: i64,
    /// Meta's read receipt: `sent`, or `none` when the customer never wrote.
    pub receipt: String,
}

/// `POST /api/v1/conversations/{id}/read`: unread back to 0 and Meta's read receipt for the
/// customer's latest message.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/read",
    tag = "inbox",
    summary = "Mark read (and send Meta's read receipt)",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "Marked read", body = ReadView))
)]
pub async fn mark_read(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<ReadView>, ApiError> {
    who.require(CHAT_VIEW)?;
    let m = app.messaging()?;
    let conv = crate::visible_conversation(&app, &who, &id).await?;
    app.store
        .mark_read(&conv.phone_number_id, &conv.customer_id, (app.now_ms)())
        .await?;
    let receipt = match &conv.last_inbound_wamid {
        None => "none",
        Some(w) => {
            let token = m.token().await?;
            match m.graph.mark_read(&conv.phone_number_id, &token, w).await {
                Ok(()) => "sent",
                Err(e) => {
                    tracing::warn!(error = %e, "read receipt failed");
                    return Err(meta_refusal(&e));
                }
            }
        }
    };
    Ok(Json(ReadView {
        conversation_id: conv.conversation_id,
        unread: 0,
        receipt: receipt.to_string(),
    }))
}

/// The new assignee.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignBody {
    /// A staff id (string of at most 64 characters, or number); `null` unassigns.
    #[schema(value_type = Option<String>)]
    staff_id: Option<Value>,
}

/// Who a conversation is assigned to now.
#[derive(Serialize, ToSchema)]
pub struct AssignView {
    pub conversation_id: String,
    pub assignee: Option<String>,
}

/// `PUT /api/v1/conversations/{id}/assignee` `{"staff_id": "12" | null}` → `conversation.assigned`.
#[utoipa::path(
    put,
    path = "/api/v1/conversations/{id}/assignee",
    tag = "inbox",
    summary = "Assign (or unassign) a conversation",
    description = "Publishes `conversation.assigned` to the CRM bus.",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("id" = String, Path, description = "Conversation id")),
    request_body = AssignBody,
    responses((status = 200, description = "Assigned", body = AssignView))
)]
pub async fn assign(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<AssignView>, ApiError> {
    who.require(CHAT_VIEW)?;
    let b: AssignBody = parse_json(&body)?;
    let assignee = match b.staff_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 64 => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "staff_id must be a staff id (string or number) or null",
            ));
        }
    };
    let m = app.messaging()?;
    let conv = crate::visible_conversation(&app, &who, &id).await?;
    let now = (app.now_ms)();
    app.store
        .assign(
            &conv.phone_number_id,
            &conv.customer_id,
            assignee.as_deref(),
            now,
        )
        .await?;
    let event_id = format!(
        "conversation.assigned:{}",
        shared::envelope::sha256_hex(&[
            &conv.conversation_id,
            assignee.as_deref().unwrap_or(""),
            &now.to_string()
        ])
    );
    m.publish(OutboundEvent {
        detail_type: "conversation.assigned".into(),
        detail: json!({
            "event_id": event_id,
            "conversation_id": conv.conversation_id,
            "phone_number_id": conv.phone_number_id,
            "rel_type": conv.rel_type,
            "rel_id": conv.rel_id,
            "customer": {"id": conv.customer_id, "name": conv.customer_name, "phone": conv.customer_phone, "wa_id": conv.wa_id},
            "assignee": assignee,
            "previous_assignee": conv.assignee,
            "assigned_by": who.staff_id,
            "at": now,
        }),
    })
    .await?;
    tracing::info!(conversation_id = %conv.conversation_id, "conversation assigned");
    Ok(Json(AssignView {
        conversation_id: conv.conversation_id,
        assignee,
    }))
}

/// Longest ticket description accepted (characters).
pub const MAX_TICKET_DESCRIPTION: usize = 10_000;

/// A ticket request for the CRM.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TicketBody {
    /// 1 to 200 characters.
    subject: String,
    /// At most 10 000 characters.
    #[serde(default)]
    description: Option<String>,
    /// `low`, `medium` (default), `high` or `urgent`.
    #[serde(default)]
    priority: Option<String>,
    /// As the `Idempotency-Key` header: the same key asks for the same ticket.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// The ticket asked for.
#[derive(Serialize, ToSchema)]
pub struct TicketView {
    /// Our reference, echoed by the CRM with the ticket it creates.
    pub ticket_ref: String,
    pub conversation_id: String,
}

/// `POST /api/v1/conversations/{id}/tickets`: asks the CRM for a ticket (`ticket.requested`
/// with the recent transcript); the reference is kept on the conversation and in its history.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/tickets",
    tag = "inbox",
    summary = "Ask the CRM for a ticket",
    description = "Publishes `ticket.requested` (with the recent transcript) to the CRM bus.",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(
        ("id" = String, Path, description = "Conversation id"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key asks for the same ticket"),
    ),
    request_body = TicketBody,
    responses((status = 201, description = "Requested", body = TicketView))
)]
pub async fn create_ticket(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<TicketView>), ApiError> {
    who.require(CHAT_VIEW)?;
    let b: TicketBody = parse_json(&body)?;
    let subject = b.subject.trim().to_string();
    if subject.is_empty() || subject.chars().count() > 200 {
        return Err(ApiError::bad_request("subject must be 1 to 200 characters"));
    }
    // Bounded so `ticket.requested` (with its transcript) stays far below EventBridge's 256 KB.
    if b.description
        .as_deref()
        .is_some_and(|d| d.chars().count() > MAX_TICKET_DESCRIPTION)
    {
        return Err(ApiError::bad_request(format!(
            "description must be at most {MAX_TICKET_DESCRIPTION} characters"
        )));
    }
    let priority = b.priority.unwrap_or_else(|| "medium".into());
    if !["low", "medium", "high", "urgent"].contains(&priority.as_str()) {
        return Err(ApiError::bad_request(
            "priority must be low, medium, high or urgent",
        ));
    }
    let key = idempotency_key(&headers, b.idempotency_key)?;
    let m = app.messaging()?;
    let conv = crate::visible_conversation(&app, &who, &id).await?;
    let now = (app.now_ms)();
    let ticket_ref = format!(
        "tkt_{}",
        &keys::outbound_message_id(&conv.conversation_id, &format!("ticket:{key}"))[..16]
    );
    let transcript: Vec<Value> = app
        .store
        .recent_messages(&conv.phone_number_id, &conv.customer_id, 20)
        .await?
        .into_iter()
        .filter(|m| m.direction != Direction::Internal)
        .map(|m| json!({"at": m.timestamp, "direction": m.direction, "type": m.kind, "text": m.summary}))
        .collect();
    m.publish(OutboundEvent {
        detail_type: "ticket.requested".into(),
        detail: json!({
            "event_id": format!("ticket.requested:{ticket_ref}"),
            "ticket_ref": ticket_ref,
            "subject": subject,
            "description": b.description,
            "priority": priority,
            "conversation_id": conv.conversation_id,
            "phone_number_id": conv.phone_number_id,
            "rel_type": conv.rel_type,
            "rel_id": conv.rel_id,
            "customer": {"id": conv.customer_id, "name": conv.customer_name, "phone": conv.customer_phone, "wa_id": conv.wa_id},
            "transcript": transcript,
            "requested_by": who.staff_id,
            "at": now,
        }),
    })
    .await?;
    app.store
        .add_ticket(&conv.phone_number_id, &conv.customer_id, &ticket_ref)
        .await?;
    app.store
        .put_history_note(&MessageItem {
            pk: keys::conversation_pk(&conv.phone_number_id, &conv.customer_id),
            sk: keys::message_sk(now, &format!("ticket:{ticket_ref}")),
            wamid: format!("ticket:{ticket_ref}"),
            conversation_id: conv.conversation_id.clone(),
            direction: Direction::Internal,
            kind: "ticket_requested".into(),
            timestamp: now,
            summary: format!("Ticket requested: {subject}"),
            raw: json!({"ticket_ref": ticket_ref, "subject": subject, "priority": priority})
                .to_string(),
            source: "staff".into(),
            context_wamid: None,
            staff_id: Some(who.staff_id.clone()),
            stored_at: now,
            media_id: None,
            media_state: None,
            media_error: None,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TicketView {
            ticket_ref,
            conversation_id: conv.conversation_id,
        }),
    ))
}

/// The number a business-initiated send goes from: the one named, if it is one of this
/// business's registered numbers, else the default number.
pub(crate) async fn sending_number(
    app: &StaffApp,
    named: Option<String>,
) -> Result<String, ApiError> {
    match named.filter(|p| !p.trim().is_empty()) {
        // Only a number of this business (the numbers registry) may send.
        Some(p) => {
            if app.store.number(&p).await?.is_none() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_number",
                    "phone_number_id is not one of the registered numbers (GET /api/v1/numbers)",
                ));
            }
            Ok(p)
        }
        None => app.store.default_number_id().await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "no_default_number",
                "no phone_number_id given and no default number is set (POST /api/v1/numbers/{id}/default)",
            )
        }),
    }
}

/// A business-initiated message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartBody {
    /// The customer's number in any format (E.164, the CRM's digits, national).
    to: String,
    /// Sender, one of the registered numbers; the default number when absent.
    #[serde(default)]
    phone_number_id: Option<String>,
    /// Usually a template: no window is open with a customer who has not written.
    content: OutboundContent,
    /// As the `Idempotency-Key` header.
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// `POST /api/v1/messages`: a business-initiated message to a number (usually a template, as
/// no window is open), from the named number or the default one. The conversation is found or
/// created; its `rel_type` comes from the CRM directory.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "inbox",
    summary = "Message a number (business-initiated, usually a template)",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1–200 printable characters; a retried request with the same key is never sent twice")),
    request_body = StartBody,
    responses(
        (status = 201, description = "Accepted by Meta", body = SendView),
        (status = 202, description = "Meta's answer was lost: the outcome is settled by the first status", body = SendView),
        (status = 200, description = "A repeated request, answered from the first", body = SendView),
    )
)]
pub async fn start_conversation(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    headers: HeaderMap,
    body: Bytes,
) -> SendAnswer {
    who.require(CHAT_VIEW)?;
    let b: StartBody = parse_json(&body)?;
    let key = idempotency_key(&headers, b.idempotency_key)?;
    let m = app.messaging()?;
    let e164 = app
        .phones
        .to_e164(&b.to)
        .map_err(|e| ApiError::bad_request(format!("to: {e}")))?;
    let pnid = sending_number(&app, b.phone_number_id).await?;
    let now = (app.now_ms)();
    let (conv, existed) = shared::sending::conversation_for(
        &app.store,
        &pnid,
        &e164,
        !b.content.needs_open_window(),
        now,
    )
    .await?;
    if existed {
        crate::visibility::require_visible(&app, &who, &conv).await?;
    }
    send_to(&app, m, &who, &conv, b.content, None, &key).await
}
