//! Reading the inbox: the conversation list, one conversation, its message history and the
//! unread counts. Every route needs `whatsapp_chat:view` and shows only what the inbox-visibility
//! setting lets the caller see.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::store::model::{Conversation, Delivery, Direction, MediaState, MessageItem, RelType};
use utoipa::{IntoParams, ToSchema};

use crate::{
    ApiError, Authed, CHAT_VIEW, StaffApp, decode_cursor_as, parse_limit, visibility,
    visible_conversation,
};

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![
        list_conversations,
        unread_counts,
        get_conversation,
        list_messages
    ]
}

/// Paging and filters of the conversation list (the message history uses `cursor` and `limit`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// `leads`, `contacts`, `staff`, `general` or `all` (conversation list only).
    rel_type: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (conversations: 1–100, default 25; messages: 1–200, default 50).
    limit: Option<String>,
    /// Conversations assigned to this staff id (`none`: unassigned).
    assignee: Option<String>,
    /// Text search on the customer's name or number.
    q: Option<String>,
    /// `true`: only conversations handed over to a human; `false`: only the others.
    handed_over: Option<String>,
}

/// The customer of a conversation.
#[derive(Serialize, ToSchema)]
pub struct CustomerRef {
    pub id: String,
    pub name: Option<String>,
    /// E.164 number, when known.
    pub phone: Option<String>,
    pub wa_id: Option<String>,
    /// Business-scoped user id (usernames).
    pub bsuid: Option<String>,
}

/// A conversation as staff see it.
#[derive(Serialize, ToSchema)]
pub struct ConversationView {
    pub id: String,
    pub phone_number_id: String,
    pub customer: CustomerRef,
    pub rel_type: RelType,
    pub rel_id: Option<String>,
    pub unread: i64,
    pub message_count: i64,
    /// Epoch milliseconds.
    pub last_message_at: Option<i64>,
    pub last_message_preview: Option<String>,
    pub last_inbound_at: Option<i64>,
    /// End of the 24-hour customer service window (epoch ms).
    pub window_expires_at: Option<i64>,
    pub window_open: bool,
    pub session_started_at: Option<i64>,
    pub assignee: Option<String>,
    pub tickets: Vec<String>,
    pub created_at: i64,
    /// Handed over to a human: no bot answers until staff release it.
    pub handed_over: bool,
    pub handover_reason: Option<String>,
    /// Closed by staff (epoch ms), until reopened.
    pub closed_at: Option<i64>,
    /// The customer's rating (1–5) of the conversation.
    pub rating: Option<u8>,
    /// The AI's suggested answer (AI in `manual` mode): send it with
    /// `POST /api/v1/conversations/{id}/ai-suggestion/send`, or dismiss it.
    pub ai_suggestion: Option<shared::store::model::AiSuggestion>,
}

impl ConversationView {
    pub(crate) fn new(c: &Conversation, now_ms: i64) -> Self {
        Self {
            id: c.conversation_id.clone(),
            phone_number_id: c.phone_number_id.clone(),
            customer: CustomerRef {
                id: c.customer_id.clone(),
                name: c.customer_name.clone(),
                phone: c.customer_phone.clone(),
                wa_id: c.wa_id.clone(),
                bsuid: c.bsuid.clone(),
            },
            rel_type: c.rel_type,
            rel_id: c.rel_id.clone(),
            unread: c.unread,
            message_count: c.message_count,
            last_message_at: c.last_message_at,
            last_message_preview: c.last_message_preview.clone(),
            last_inbound_at: c.last_inbound_at,
            window_expires_at: c.window_expires_at,
            window_open: c.window_expires_at.is_some_and(|e| e > now_ms),
            session_started_at: c.session_started_at,
            assignee: c.assignee.clone(),
            tickets: c.tickets.clone(),
            created_at: c.created_at,
            handed_over: c.handed_over_at.is_some(),
            handover_reason: c.handover_reason.clone(),
            closed_at: c.closed_at,
            rating: c.rating,
            ai_suggestion: c.ai_suggestion.clone(),
        }
    }
}

/// Delivery of an outbound message (statuses ranked: a late `sent` never undoes `read`).
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: Option<String>,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    pub failed_at: Option<i64>,
    /// Meta's `errors` array of a failed message.
    #[schema(value_type = Option<Object>)]
    pub errors: Option<Value>,
    /// Meta's `pricing` object.
    #[schema(value_type = Option<Object>)]
    pub pricing: Option<Value>,
}

/// The media of a message and where its copy stands.
#[derive(Serialize, ToSchema)]
pub struct MediaRef {
    /// Meta's media id (`GET /api/v1/media/{media_id}` gives a link).
    pub id: String,
    pub state: Option<MediaState>,
    pub error: Option<String>,
}

/// One message of the history.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    /// The `wamid` (or the send's id while Meta has not answered).
    pub id: String,
    pub conversation_id: String,
    pub direction: Direction,
    /// Meta's message type (`text`, `image`, `interactive`, `template`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
    pub summary: String,
    /// `customer`, `staff`, `echo`, `bot`, `campaign`, …
    pub source: String,
    /// The message this one replies to.
    pub context_id: Option<String>,
    pub staff_id: Option<String>,
    pub delivery: Option<DeliveryView>,
    pub media: Option<MediaRef>,
    /// The message as Meta sent it (inbound) or as it was sent (outbound).
    #[schema(value_type = Object)]
    pub message: Value,
}

impl MessageView {
    fn new(m: &MessageItem, d: Option<&Delivery>) -> Self {
        let json = |s: Option<&str>| s.and_then(|e| serde_json::from_str::<Value>(e).ok());
        Self {
            id: m.wamid.clone(),
            conversation_id: m.conversation_id.clone(),
            direction: m.direction,
            kind: m.kind.clone(),
            timestamp: m.timestamp,
            summary: m.summary.clone(),
            source: m.source.clone(),
            context_id: m.context_wamid.clone(),
            staff_id: m.staff_id.clone(),
            delivery: d.map(|d| DeliveryView {
                status: d.status.clone(),
                sent_at: d.sent_at,
                delivered_at: d.delivered_at,
                read_at: d.read_at,
                failed_at: d.failed_at,
                errors: json(d.errors.as_deref()),
                pricing: json(d.pricing.as_deref()),
            }),
            media: m.media_id.as_ref().map(|id| MediaRef {
                id: id.clone(),
                state: m.media_state,
                error: m.media_error.clone(),
            }),
            message: serde_json::from_str(&m.raw).unwrap_or(Value::Null),
        }
    }
}

/// A page of a list; `next_cursor` is absent on the last page.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

pub type ConversationPage = Page<ConversationView>;
pub type MessagePage = Page<MessageView>;

/// Unread messages and conversations.
#[derive(Serialize, ToSchema, Default)]
pub struct Counts {
    pub messages: i64,
    pub conversations: i64,
}

/// Unread counts per `rel_type` and in total.
#[derive(Serialize, ToSchema, Default)]
pub struct UnreadCounts {
    pub leads: Counts,
    pub contacts: Counts,
    pub staff: Counts,
    pub general: Counts,
    pub total: Counts,
}

/// Filters of the inbox list beyond `rel_type`.
struct InboxFilter {
    assignee: Option<String>,
    text: Option<String>,
    digits: Option<String>,
    handed_over: Option<bool>,
}

impl InboxFilter {
    fn new(
        assignee: Option<String>,
        q: Option<String>,
        handed_over: Option<String>,
    ) -> Result<Self, ApiError> {
        let handed_over = match handed_over.as_deref().map(str::trim) {
            None | Some("") => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => return Err(ApiError::bad_request("handed_over must be true or false")),
        };
        let assignee = assignee
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty());
        let text = q.map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty());
        if text.as_ref().is_some_and(|t| t.chars().count() > 100) {
            return Err(ApiError::bad_request("q must be at most 100 characters"));
        }
        let digits = text
            .as_ref()
            .map(|t| t.chars().filter(char::is_ascii_digit).collect::<String>())
            .filter(|d| d.len() >= 3);
        Ok(Self {
            assignee,
            text,
            digits,
            handed_over,
        })
    }

    fn is_empty(&self) -> bool {
        self.assignee.is_none() && self.text.is_none() && self.handed_over.is_none()
    }

    fn matches(&self, c: &Conversation) -> bool {
        let assignee_ok = match self.assignee.as_deref() {
            None => true,
            Some("none") => c.assignee.is_none(),
            Some(a) => c.assignee.as_deref() == Some(a),
        };
        let text_ok = match &self.text {
            None => true,
            Some(t) => {
                c.customer_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(t.as_str()))
                    || self.digits.as_deref().is_some_and(|d| {
                        [c.customer_phone.as_deref(), c.wa_id.as_deref()]
                            .into_iter()
                            .flatten()
                            .any(|p| p.contains(d))
                    })
            }
        };
        let handover_ok = self
            .handed_over
            .is_none_or(|h| h == c.handed_over_at.is_some());
        assignee_ok && text_ok && handover_ok
    }

    /// Part of the cursor scope: a cursor only continues the same filtered list.
    fn scope(&self) -> String {
        format!(
            "{}|{}|{}",
            self.assignee.as_deref().unwrap_or(""),
            self.text.as_deref().unwrap_or(""),
            self.handed_over.map_or("", |h| if h { "h" } else { "n" })
        )
    }
}

/// Pages of the index examined at most per filtered request.
const MAX_FILTER_PAGES: usize = 20;

#[utoipa::path(
    get,
    path = "/api/v1/conversations",
    tag = "inbox",
    summary = "List conversations, newest first",
    description = "Filtered by `rel_type`, `assignee` and `q`; limited to the conversations the caller may see (inbox-visibility setting).",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(PageQuery),
    responses((status = 200, description = "One page of conversations", body = Page<ConversationView>))
)]
async fn list_conversations(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Query(q): Query<PageQuery>,
) -> Result<Json<ConversationPage>, ApiError> {
    who.require(CHAT_VIEW)?;
    let rel_types: Vec<RelType> = match q.rel_type.as_deref() {
        None | Some("") | Some("all") => RelType::ALL.to_vec(),
        Some(r) => vec![RelType::parse(r).ok_or_else(|| {
            ApiError::bad_request("rel_type must be one of leads, contacts, staff, general")
        })?],
    };
    let filter = InboxFilter::new(q.assignee.clone(), q.q.clone(), q.handed_over.clone())?;
    let visible = visibility::of(&app, &who).await?;
    let scope = format!(
        "conversations:{}:{}",
        q.rel_type.as_deref().unwrap_or("all"),
        filter.scope()
    );
    let before: Option<String> = decode_cursor_as(
        &keys,
        &scope,
        q.cursor.as_deref(),
        "cursor is invalid for this list",
    )?;
    let limit = parse_limit(q.limit.as_deref(), 25, 100)?;
    // Filters apply to the index pages in order; the cursor is the last conversation examined.
    let batch = if filter.is_empty() && !visible.restricted() {
        limit
    } else {
        100
    };
    let mut rows = Vec::new();
    let mut cursor = before;
    let mut next = None;
    'pages: for _ in 0..MAX_FILTER_PAGES {
        let (page, more) = app
            .store
            .inbox(&rel_types, cursor.as_deref(), batch)
            .await?;
        for c in page {
            if rows.len() == limit {
                next = cursor.clone();
                break 'pages;
            }
            cursor = c.gsi1sk.clone();
            if filter.matches(&c) && visible.sees(&c) {
                rows.push(c);
            }
        }
        if more.is_none() {
            next = None;
            break;
        }
        next = cursor.clone();
        if rows.len() == limit {
            break;
        }
    }
    let now = (app.now_ms)();
    let page = Page {
        data: rows.iter().map(|c| ConversationView::new(c, now)).collect(),
        next_cursor: next.map(|n| keys.cursors.encode(&scope, &n)),
    };
    Ok(Json(page))
}

/// `GET /api/v1/conversations/unread`: unread messages and conversations per `rel_type`.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/unread",
    tag = "inbox",
    summary = "Unread messages and conversations per rel_type",
    security(("bearer" = ["whatsapp_chat:view"])),
    responses((status = 200, description = "Counts per rel_type and in total", body = UnreadCounts))
)]
async fn unread_counts(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<UnreadCounts>, ApiError> {
    who.require(CHAT_VIEW)?;
    // Counts only what the caller may see.
    let visible = visibility::of(&app, &who).await?;
    let visible_to = visible.restricted().then_some(who.staff_id.as_str());
    let mut out = UnreadCounts::default();
    for r in RelType::ALL {
        let (messages, conversations) = app.store.unread_counts(r, visible_to).await?;
        let c = Counts {
            messages,
            conversations,
        };
        out.total.messages += messages;
        out.total.conversations += conversations;
        *match r {
            RelType::Leads => &mut out.leads,
            RelType::Contacts => &mut out.contacts,
            RelType::Staff => &mut out.staff,
            RelType::General => &mut out.general,
        } = c;
    }
    Ok(Json(out))
}

#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}",
    tag = "inbox",
    summary = "One conversation",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "The conversation", body = ConversationView))
)]
async fn get_conversation(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    who.require(CHAT_VIEW)?;
    let conv = visible_conversation(&app, &who, &id).await?;
    Ok(Json(ConversationView::new(&conv, (app.now_ms)())))
}

#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/messages",
    tag = "inbox",
    summary = "Message history, oldest first",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("id" = String, Path, description = "Conversation id"), PageQuery),
    responses((status = 200, description = "One page of messages", body = Page<MessageView>))
)]
async fn list_messages(
    State(app): State<Arc<StaffApp>>,
    Authed(who, keys): Authed,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    who.require(CHAT_VIEW)?;
    let conv = visible_conversation(&app, &who, &id).await?;
    let (pnid, cid) = (conv.phone_number_id.as_str(), conv.customer_id.as_str());
    let scope = format!("messages:{id}");
    let after: Option<String> = decode_cursor_as(
        &keys,
        &scope,
        q.cursor.as_deref(),
        "cursor is invalid for this list",
    )?;
    let limit = parse_limit(q.limit.as_deref(), 50, 200)?;
    let (rows, next) = app
        .store
        .messages(pnid, cid, after.as_deref(), limit)
        .await?;
    let page = Page {
        data: rows
            .iter()
            .map(|(m, d)| MessageView::new(m, d.as_ref()))
            .collect(),
        next_cursor: next.map(|n| keys.cursors.encode(&scope, &n)),
    };
    Ok(Json(page))
}
