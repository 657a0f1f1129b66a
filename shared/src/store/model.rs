//! Items of the table, as typed structs (converted with `serde_dynamo`).
use serde::{Deserialize, Serialize};

/// `rel_type` of a conversation: which CRM record the customer is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelType {
    Leads,
    Contacts,
    Staff,
    General,
}

impl RelType {
    pub const ALL: [RelType; 4] = [
        RelType::Leads,
        RelType::Contacts,
        RelType::Staff,
        RelType::General,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RelType::Leads => "leads",
            RelType::Contacts => "contacts",
            RelType::Staff => "staff",
            RelType::General => "general",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub pk: String,
    pub sk: String,
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bsuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e164: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub marketing_opt_out: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketing_pref_at: Option<i64>,
    pub created_at: i64,
    /// Numbers this customer had before a `system` number change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_wa_ids: Vec<String>,
    /// Alias items (`ALIAS#…` keys) known to exist for this customer.
    #[serde(
        default,
        with = "serde_dynamo::string_set",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aliases: Vec<String>,
    /// Business numbers this customer has a conversation with (where to look when erasing).
    #[serde(
        default,
        with = "serde_dynamo::string_set",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub phone_number_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub pk: String,
    pub sk: String,
    pub customer_id: String,
}

/// A conversation between one business number and one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub pk: String,
    pub sk: String,
    pub conversation_id: String,
    pub phone_number_id: String,
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bsuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    pub rel_type: RelType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_id: Option<String>,
    #[serde(default)]
    pub unread: i64,
    #[serde(default)]
    pub message_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_preview: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound_at: Option<i64>,
    /// End of the 24-hour customer-service window (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// wamid of the customer's latest message (for read receipts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound_wamid: Option<String>,
    /// wamid of the customer's first message (`-`: it came before this was kept; absent: no
    /// customer message yet, or none since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_inbound_wamid: Option<String>,
    /// Every customer message goes to the bots function until then (ms): a job handed off and
    /// not yet answered, a menu, flow or rating request in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bots_hold_until: Option<i64>,
    /// References of tickets requested from this conversation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<String>,
    pub created_at: i64,
    /// Handed over to a human: bots stay silent until staff release it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_over_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_reason: Option<String>,
    /// Closed by staff (until reopened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<i64>,
    /// The customer's rating (1–5) asked for when staff closed the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// Last reply sent by staff (bots keep quiet for a while after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_staff_reply_at: Option<i64>,
    /// The AI's suggested answer (AI in `manual` mode), until staff send or dismiss it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_suggestion: Option<AiSuggestion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
}

/// An answer the AI suggested for staff (AI in `manual` mode): never sent by itself.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiSuggestion {
    /// `sug_…`: the send route names it, so staff send what they saw.
    pub id: String,
    pub text: String,
    /// The customer message it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_wamid: Option<String>,
    /// The AI bot that matched (none: the `manual` mode's suggestion for any message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<String>,
    /// Epoch milliseconds.
    pub at: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
    /// A note of the conversation's history that is not a WhatsApp message (e.g. a ticket).
    Internal,
}

/// One message of a conversation's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    pub pk: String,
    pub sk: String,
    pub wamid: String,
    pub conversation_id: String,
    pub direction: Direction,
    /// Meta's `type` (text, image, interactive, …; unknown types kept as sent).
    pub kind: String,
    /// Meta's timestamp (ms).
    pub timestamp: i64,
    /// Short text for previews and search.
    pub summary: String,
    /// The message exactly as Meta sent it.
    pub raw: String,
    /// `inbound` (customer), `smb_echo` (sent from the WhatsApp Business app), `api` (our sends).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_wamid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<String>,
    pub stored_at: i64,
    /// The media of an inbound media message (image, video, audio, document, sticker) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// … and where its copy to S3 stands (set by the media function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_state: Option<MediaState>,
    /// Why the copy failed (or last failed, while it is retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_error: Option<String>,
}

/// Where a message's media stands: `pending` until the media function has copied it to S3
/// (`copied`), or has given up on it (`failed`, with the reason).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    Pending,
    Copied,
    Failed,
}

impl MediaState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Copied => "copied",
            Self::Failed => "failed",
        }
    }
}

/// Delivery state of a message, by wamid. Also the idempotency record of a stored message
/// (`msg_pk`/`msg_sk` set once), and the placeholder when a status arrives before its message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub status_rank: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<i64>,
    /// JSON of Meta's `errors[]` of a failed status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
}

/// A CRM record (lead, contact, staff) with its phone, kept by the directory function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectoryRecord {
    pub pk: String,
    pub sk: String,
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_raw: Option<String>,
    /// Canonical E.164 key the record is indexed under (`None` when its phone did not parse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_key: Option<String>,
    #[serde(default)]
    pub converted: bool,
    #[serde(default)]
    pub deleted: bool,
    /// Milliseconds: last-writer-wins on this.
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The event that wrote this version (breaks ties of `updated_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// Index item: phone → record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneIndex {
    pub pk: String,
    pub sk: String,
    pub kind: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub converted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadClaim {
    pub pk: String,
    pub sk: String,
    pub correlation_id: String,
    pub customer_id: String,
    /// The conversation that asked for the lead (linked to the CRM's lead when it answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub emitted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<String>,
    pub claimed_at: i64,
}

/// `auto_lead` settings (admin only): what a lead created for an unknown number gets.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoLeadSettings {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
}

/// State of a send we asked Meta for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendState {
    /// Recorded, not yet answered by Meta (or the process died before recording the answer).
    Pending,
    /// Meta accepted it (`wamid` known).
    Accepted,
    /// Meta refused it (error recorded); nothing was sent.
    Failed,
    /// The answer was lost (timeout after the request left): never re-sent blindly; settled by
    /// the first status carrying our id in `biz_opaque_callback_data`.
    Unknown,
}

/// The intent of one outbound send, recorded under a deterministic key BEFORE the request to
/// Meta: a retried request (same idempotency key) finds it and never sends twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendIntent {
    pub pk: String,
    pub sk: String,
    pub msg_id: String,
    pub conversation_id: String,
    pub phone_number_id: String,
    pub customer_id: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<String>,
    /// Meta's `type` of the message (text, template, image, …).
    pub kind: String,
    pub summary: String,
    /// The request body sent to Meta.
    pub request: String,
    pub state: SendState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// An event notification's log entry (`pk|sk`): a status that settles this send settles
    /// the entry too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_log: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}
