//! Typed model of Meta WhatsApp Cloud API webhook payloads.
//!
//! Layout follows Meta's documented shape:
//! `{"object": "whatsapp_business_account", "entry": [{"id", "time"?, "changes": [{"field", "value"}]}]}`.
//!
//! Parsing is staged so the hot path stays cheap and nothing Meta sends is lost:
//! 1. [`parse_notification`] reads the envelope; every `changes[].value` is kept verbatim as a
//!    [`RawValue`] (the caller can archive or queue it byte for byte).
//! 2. [`Change::parse_value`] gives the typed view of one change, keyed on `field`; unknown fields
//!    become [`ChangeValue::Other`] so the caller archives them raw.
//! 3. Inside a `messages` change, each message / status / echo is again kept raw
//!    ([`RawMessage`], [`RawStatus`], [`RawEcho`]) and parsed on demand, so one odd message does
//!    not make its siblings unreadable.
//!
//! Leniency rules: unknown JSON fields are ignored (the raw JSON is kept by the caller); unknown
//! message types parse to [`MessageContent::Unknown`], unknown statuses to [`StatusKind::Other`];
//! timestamps and numeric ids are accepted as JSON strings or numbers. A message or status
//! without its `id` or `timestamp` is an error ([`WebhookError::Shape`]).
//!
//! The `Serialize` / `Deserialize` pair of the *output* types ([`InboundMessage`],
//! [`EchoMessage`], [`MessageContent`] …) round-trips our own representation (for queue
//! envelopes); Meta's wire format is read through the `parse` methods.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// Maximum number of characters of [`MessageContent::summary`].
pub const SUMMARY_MAX_CHARS: usize = 200;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a webhook body or one of its parts could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The bytes are not JSON at all (syntax error, truncated body, not UTF-8 …).
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// Valid JSON, but not the shape Meta documents (missing required field, wrong type …).
    #[error("unexpected shape: {0}")]
    Shape(String),
}

fn classify(err: serde_json::Error) -> WebhookError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Data => WebhookError::Shape(err.to_string()),
        Category::Syntax | Category::Eof | Category::Io => WebhookError::NotJson(err.to_string()),
    }
}

/// Errors of nested parts: their JSON was already validated by the envelope parse.
fn shape(err: serde_json::Error) -> WebhookError {
    WebhookError::Shape(err.to_string())
}

// ---------------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------------

/// Top level of a webhook POST body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// `whatsapp_business_account` for WhatsApp.
    pub object: String,
    pub entry: Vec<Entry>,
}

/// One `entry[]`: one WhatsApp Business Account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// WhatsApp Business Account id.
    pub id: String,
    /// Unix seconds; sent on `message_template_status_update`, `account_update` …
    #[serde(default, deserialize_with = "de_opt_int")]
    pub time: Option<i64>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One `changes[]` item; `value` is kept verbatim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub value: Box<RawValue>,
}

impl PartialEq for Change {
    fn eq(&self, other: &Self) -> bool {
        self.field == other.field && self.value.get() == other.value.get()
    }
}

/// Typed view of one change.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeValue {
    /// field `messages`: inbound messages, statuses of our messages, value-level errors.
    Messages(MessagesValue),
    /// field `smb_message_echoes`: messages the business sent from the WhatsApp Business app.
    SmbMessageEchoes(EchoesValue),
    /// field `user_preferences`: marketing opt-out / opt-in.
    UserPreferences(UserPreferencesValue),
    /// field `message_template_status_update`.
    TemplateStatus(TemplateStatusUpdate),
    /// field `account_update`.
    AccountUpdate(AccountUpdate),
    /// field `message_template_quality_update`.
    TemplateQuality(TemplateQualityUpdate),
    /// field `message_template_components_update`.
    TemplateComponents(TemplateComponentsUpdate),
    /// field `template_category_update`.
    TemplateCategory(TemplateCategoryUpdate),
    /// field `calls` (WhatsApp Business Calling): call events and call statuses.
    Calls(CallsValue),
    /// Any other field: the caller archives the raw value.
    Other { field: String },
}

impl Change {
    /// Typed view of `value` according to `field`.
    pub fn parse_value(&self) -> Result<ChangeValue, WebhookError> {
        let raw = self.value.get();
        Ok(match self.field.as_str() {
            "messages" => ChangeValue::Messages(serde_json::from_str(raw).map_err(shape)?),
            "smb_message_echoes" => {
                ChangeValue::SmbMessageEchoes(serde_json::from_str(raw).map_err(shape)?)
            }
            "user_preferences" => {
                ChangeValue::UserPreferences(serde_json::from_str(raw).map_err(shape)?)
            }
            "message_template_status_update" => {
                ChangeValue::TemplateStatus(serde_json::from_str(raw).map_err(shape)?)
            }
            "account_update" => {
                ChangeValue::AccountUpdate(serde_json::from_str(raw).map_err(shape)?)
            }
            "message_template_quality_update" => {
                ChangeValue::TemplateQuality(serde_json::from_str(raw).map_err(shape)?)
            }
            "message_template_components_update" => {
                ChangeValue::TemplateComponents(serde_json::from_str(raw).map_err(shape)?)
            }
            "template_category_update" => {
                ChangeValue::TemplateCategory(serde_json::from_str(raw).map_err(shape)?)
            }
            "calls" => ChangeValue::Calls(serde_json::from_str(raw).map_err(shape)?),
            other => ChangeValue::Other {
                field: other.to_owned(),
            },
        })
    }
}

/// Parses a webhook body. [`WebhookError::NotJson`] if the bytes are not JSON,
/// [`WebhookError::Shape`] if the JSON is not a notification (`object` + `entry[]`).
pub fn parse_notification(body: &[u8]) -> Result<Notification, WebhookError> {
    serde_json::from_slice(body).map_err(classify)
}

// ---------------------------------------------------------------------------------------------
// `messages` field
// ---------------------------------------------------------------------------------------------

/// `value` of a `messages` change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesValue {
    #[serde(default)]
    pub messaging_product: Option<String>,
    pub metadata: Metadata,
    /// Senders of `messages[]` (or recipients, on statuses): `wa_id`, BSUID, profile.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub messages: Vec<RawMessage>,
    #[serde(default)]
    pub statuses: Vec<RawStatus>,
    /// Value-level errors (e.g. an app-level problem not tied to a message).
    #[serde(default)]
    pub errors: Vec<MetaError>,
}

/// The business phone number the change is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub display_phone_number: Option<String>,
    pub phone_number_id: String,
}

/// A WhatsApp user as described in `contacts[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Contact {
    /// Phone number (WhatsApp id); omitted for username users whose number is not shared.
    pub wa_id: Option<String>,
    /// Business-scoped user id (BSUID), e.g. `US.13491208655302741918`.
    pub user_id: Option<String>,
    /// Parent BSUID (only if parent BSUIDs are enabled), e.g. `US.ENT.1181…`.
    pub parent_user_id: Option<String>,
    /// Two-letter country code of the user's number, when sent.
    pub country_code: Option<String>,
    /// Only with the identity change check enabled.
    pub identity_key_hash: Option<String>,
    pub profile: Option<Profile>,
}

/// `contacts[].profile`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    pub name: Option<String>,
    /// WhatsApp username, if the user adopted one.
    pub username: Option<String>,
}

/// One `messages[]` item, kept verbatim; [`RawMessage::parse`] gives the typed view.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawMessage(pub Box<RawValue>);

impl RawMessage {
    pub fn parse(&self) -> Result<InboundMessage, WebhookError> {
        let wire: MessageWire = serde_json::from_str(self.0.get()).map_err(shape)?;
        Ok(wire.into_inbound())
    }
    pub fn raw(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawMessage {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// One `statuses[]` item, kept verbatim; [`RawStatus::parse`] gives the typed view.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawStatus(pub Box<RawValue>);

impl RawStatus {
    pub fn parse(&self) -> Result<Status, WebhookError> {
        serde_json::from_str(self.0.get()).map_err(shape)
    }
    pub fn raw(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawStatus {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// A message sent by a WhatsApp user to the business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// wamid.
    pub id: String,
    /// Sender phone number; omitted for username users whose number is not shared.
    pub from: Option<String>,
    /// Sender BSUID.
    pub from_user_id: Option<String>,
    /// Sender parent BSUID (only if parent BSUIDs are enabled).
    pub from_parent_user_id: Option<String>,
    /// Group id, for messages received in a group (Groups API).
    pub group_id: Option<String>,
    /// Unix seconds (Meta sends a string).
    pub timestamp: i64,
    /// Meta's `type` (`text`, `image`, … or any newer type).
    pub kind: String,
    pub content: MessageContent,
    /// Reply-to / forwarded / product enquiry.
    pub context: Option<Context>,
    /// Click-to-WhatsApp ad or post the user came from.
    pub referral: Option<Referral>,
    /// Message-level errors (e.g. on `unsupported`).
    pub errors: Vec<MetaError>,
}

/// Content of a message, by Meta `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageContent {
    Text {
        body: String,
    },
    Image(Media),
    Video(Media),
    /// `Media::voice` is true for voice notes.
    Audio(Media),
    Document(Media),
    Sticker(Media),
    Location(Location),
    Contacts(Vec<ContactCard>),
    Interactive(Interactive),
    /// Quick-reply button of a template.
    Button {
        payload: String,
        text: String,
    },
    /// `emoji` `None` or `""` means the reaction was removed.
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    Order(Order),
    /// Identifier change (`user_changed_number`, `user_changed_user_id`, …).
    System(SystemChange),
    /// Meta could not deliver the content (`unsupported`; details in `errors`).
    Unsupported,
    /// A `type` this model does not know; the raw JSON carries it.
    Unknown {
        kind: String,
    },
}

/// Media object of image / video / audio / document / sticker messages.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Media {
    /// Media id, to fetch the media URL from the Graph API.
    pub id: Option<String>,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub caption: Option<String>,
    /// Documents only.
    pub filename: Option<String>,
    /// Download URL (newer webhooks; needs the access token).
    pub url: Option<String>,
    /// Audio: true for a voice note.
    pub voice: bool,
    /// Sticker: true if animated.
    pub animated: bool,
}

/// Shared location.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Location {
    #[serde(deserialize_with = "de_f64")]
    pub latitude: f64,
    #[serde(deserialize_with = "de_f64")]
    pub longitude: f64,
    pub name: Option<String>,
    pub address: Option<String>,
    pub url: Option<String>,
}

/// One shared contact card (`contacts` message).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactCard {
    pub name: Option<ContactName>,
    pub phones: Vec<ContactPhone>,
    pub emails: Vec<ContactEmail>,
    pub urls: Vec<ContactUrl>,
    pub addresses: Vec<ContactAddress>,
    pub org: Option<ContactOrg>,
    pub birthday: Option<String>,
    /// vCard text, sent for contact-request replies.
    pub vcard: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactName {
    pub formatted_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub middle_name: Option<String>,
    pub suffix: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactPhone {
    pub phone: Option<String>,
    pub wa_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactEmail {
    pub email: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactUrl {
    pub url: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactAddress {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
    pub country_code: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactOrg {
    pub company: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
}

/// Reply to an interactive message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interactive {
    ButtonReply {
        id: String,
        title: String,
    },
    ListReply {
        id: String,
        title: String,
        description: Option<String>,
    },
    /// WhatsApp Flow or address message reply; `response_json` is a JSON document *as a string*.
    NfmReply {
        /// `flow`, `address_message`, …
        name: Option<String>,
        body: Option<String>,
        response_json: String,
    },
    /// Any other interactive `type` (e.g. `call_permission_reply`); the raw JSON carries it.
    Other {
        kind: String,
    },
}

/// Cart sent from a catalog.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Order {
    pub catalog_id: Option<String>,
    pub text: Option<String>,
    pub product_items: Vec<ProductItem>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductItem {
    pub product_retailer_id: String,
    #[serde(deserialize_with = "de_int")]
    pub quantity: i64,
    #[serde(deserialize_with = "de_f64")]
    pub item_price: f64,
    pub currency: Option<String>,
}

/// `system` message: the user's identifiers changed. Unlike other messages it comes without
/// `contacts[]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemChange {
    pub body: Option<String>,
    /// `user_changed_number`, `user_changed_user_id` (older: `customer_changed_number`,
    /// `customer_identity_changed`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// New phone number / WhatsApp id (for `user_changed_number`).
    pub wa_id: Option<String>,
    /// Deprecated spelling of `wa_id` (before v12).
    #[serde(deserialize_with = "de_opt_string")]
    pub new_wa_id: Option<String>,
    /// New BSUID.
    pub user_id: Option<String>,
    /// New parent BSUID.
    pub parent_user_id: Option<String>,
    pub previous_user_id: Option<String>,
    pub previous_parent_user_id: Option<String>,
    /// Older payloads: the customer's previous id.
    pub customer: Option<String>,
    pub identity: Option<String>,
}

/// `messages[].context`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    /// Sender of the quoted message (the business number, for replies to our messages).
    pub from: Option<String>,
    /// wamid of the quoted message (or of the message holding the tapped button).
    pub id: Option<String>,
    pub forwarded: bool,
    pub frequently_forwarded: bool,
    /// Product the user asked about ("Message business" in a catalog).
    pub referred_product: Option<ReferredProduct>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReferredProduct {
    pub catalog_id: Option<String>,
    pub product_retailer_id: Option<String>,
}

/// `messages[].referral`: Click-to-WhatsApp ad or post.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Referral {
    pub source_url: Option<String>,
    pub source_id: Option<String>,
    /// `ad` or `post`.
    pub source_type: Option<String>,
    pub headline: Option<String>,
    pub body: Option<String>,
    /// `image` or `video`.
    pub media_type: Option<String>,
    pub image_url: Option<String>,
    pub video_url: Option<String>,
    pub thumbnail_url: Option<String>,
    /// Click id, for the Conversions API.
    pub ctwa_clid: Option<String>,
    pub welcome_message: Option<WelcomeMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WelcomeMessage {
    pub text: Option<String>,
}

/// Error object as Meta sends it in webhooks (value-, message- and status-level).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetaError {
    pub code: i64,
    pub title: Option<String>,
    pub message: Option<String>,
    pub error_data: Option<ErrorData>,
    pub href: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorData {
    pub details: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Statuses
// ---------------------------------------------------------------------------------------------

/// Status of a message the business sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// wamid of our message.
    pub id: String,
    pub status: StatusKind,
    #[serde(deserialize_with = "de_int")]
    pub timestamp: i64,
    /// Phone number (or group id) the message was sent to; omitted when sent to a BSUID.
    #[serde(default)]
    pub recipient_id: Option<String>,
    /// Recipient BSUID.
    #[serde(default)]
    pub recipient_user_id: Option<String>,
    #[serde(default)]
    pub recipient_parent_user_id: Option<String>,
    /// `individual` or `group`.
    #[serde(default)]
    pub recipient_type: Option<String>,
    /// Echo of what we put in the send request.
    #[serde(default)]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    pub conversation: Option<StatusConversation>,
    #[serde(default)]
    pub pricing: Option<Pricing>,
    #[serde(default)]
    pub errors: Vec<MetaError>,
}

/// `statuses[].status`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StatusKind {
    Sent,
    Delivered,
    Read,
    Failed,
    /// `played` (voice note), `deleted`, or anything newer.
    Other(String),
}

impl StatusKind {
    /// Delivery rank: sent 1 < delivered 2 < read 3; failed 4; anything else 0.
    pub fn rank(&self) -> u8 {
        match self {
            StatusKind::Sent => 1,
            StatusKind::Delivered => 2,
            StatusKind::Read => 3,
            StatusKind::Failed => 4,
            StatusKind::Other(_) => 0,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            StatusKind::Sent => "sent",
            StatusKind::Delivered => "delivered",
            StatusKind::Read => "read",
            StatusKind::Failed => "failed",
            StatusKind::Other(s) => s,
        }
    }
}

impl From<&str> for StatusKind {
    fn from(s: &str) -> Self {
        match s {
            "sent" => StatusKind::Sent,
            "delivered" => StatusKind::Delivered,
            "read" => StatusKind::Read,
            "failed" => StatusKind::Failed,
            other => StatusKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for StatusKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StatusKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for StatusKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StatusKind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusKind, E> {
                Ok(StatusKind::from(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// `statuses[].conversation` (conversation-based pricing; may be absent under per-message pricing).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusConversation {
    pub id: Option<String>,
    #[serde(deserialize_with = "de_opt_int")]
    pub expiration_timestamp: Option<i64>,
    pub origin: Option<ConversationOrigin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConversationOrigin {
    /// `service`, `marketing`, `utility`, `authentication`, `referral_conversion`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `statuses[].pricing`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Pricing {
    /// Deprecated with per-message pricing, still sent.
    pub billable: Option<bool>,
    /// `CBP` or `PMP`.
    pub pricing_model: Option<String>,
    pub category: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point` (per-message pricing).
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// `smb_message_echoes` field
// ---------------------------------------------------------------------------------------------

/// `value` of a `smb_message_echoes` change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoesValue {
    #[serde(default)]
    pub messaging_product: Option<String>,
    pub metadata: Metadata,
    #[serde(default)]
    pub message_echoes: Vec<RawEcho>,
}

/// One `message_echoes[]` item, kept verbatim; [`RawEcho::parse`] gives the typed view.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawEcho(pub Box<RawValue>);

impl RawEcho {
    pub fn parse(&self) -> Result<EchoMessage, WebhookError> {
        let wire: MessageWire = serde_json::from_str(self.0.get()).map_err(shape)?;
        Ok(wire.into_echo())
    }
    pub fn raw(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for CallsValue {
    fn eq(&self, other: &Self) -> bool {
        let raw = |v: &[Box<RawValue>]| v.iter().map(|r| r.get().to_string()).collect::<Vec<_>>();
        self.messaging_product == other.messaging_product
            && self.metadata == other.metadata
            && self.contacts == other.contacts
            && raw(&self.calls) == raw(&other.calls)
            && raw(&self.statuses) == raw(&other.statuses)
            && self.errors == other.errors
    }
}

impl PartialEq for RawEcho {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// A message the business sent from the WhatsApp Business app (or a linked device).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EchoMessage {
    pub id: String,
    /// The business display number.
    pub from: Option<String>,
    /// The customer's phone number (omitted for username users).
    pub to: Option<String>,
    /// The customer's BSUID.
    pub to_user_id: Option<String>,
    pub timestamp: i64,
    pub kind: String,
    pub content: MessageContent,
}

// ---------------------------------------------------------------------------------------------
// `user_preferences` field
// ---------------------------------------------------------------------------------------------

/// `value` of a `user_preferences` change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserPreferencesValue {
    #[serde(default)]
    pub messaging_product: Option<String>,
    pub metadata: Metadata,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub user_preferences: Vec<UserPreference>,
}

/// One preference change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPreference {
    /// Phone number; may be omitted for username users.
    #[serde(default)]
    pub wa_id: Option<String>,
    /// BSUID.
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub parent_user_id: Option<String>,
    /// e.g. "User requested to stop marketing messages".
    #[serde(default)]
    pub detail: Option<String>,
    /// `marketing_messages`.
    #[serde(default)]
    pub category: Option<String>,
    /// `stop` or `resume`.
    pub value: String,
    #[serde(deserialize_with = "de_int")]
    pub timestamp: i64,
}

// ---------------------------------------------------------------------------------------------
// `message_template_status_update` field
// ---------------------------------------------------------------------------------------------

/// `value` of a `message_template_status_update` change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateStatusUpdate {
    /// `APPROVED`, `REJECTED`, `PENDING`, `PAUSED`, `DISABLED`, `FLAGGED`, `IN_APPEAL`,
    /// `LOCKED`, `REINSTATED`, `ARCHIVED`, `UNARCHIVED`, `DELETED`, `PENDING_DELETION`,
    /// `LIMIT_EXCEEDED`, …
    pub event: String,
    /// Meta sends a number; accepted as number or string, kept as a string.
    #[serde(default, deserialize_with = "de_string")]
    pub message_template_id: String,
    #[serde(default)]
    pub message_template_name: String,
    #[serde(default)]
    pub message_template_language: String,
    /// Rejection / pause reason (`NONE` when approved; `null` when scheduled for deletion).
    #[serde(default)]
    pub reason: Option<String>,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`.
    #[serde(default)]
    pub message_template_category: Option<String>,
    /// Only when disabled: `{"disable_date": …}`.
    #[serde(default)]
    pub disable_info: Option<serde_json::Value>,
    /// Only when paused / locked / unlocked.
    #[serde(default)]
    pub other_info: Option<TemplateOtherInfo>,
    /// Only when rejected with `INVALID_FORMAT`.
    #[serde(default)]
    pub rejection_info: Option<TemplateRejectionInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TemplateOtherInfo {
    /// `FIRST_PAUSE`, `SECOND_PAUSE`, `RATE_LIMITING_PAUSE`, `UNPAUSE`, `DISABLED`.
    pub title: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TemplateRejectionInfo {
    pub reason: Option<String>,
    pub recommendation: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// `account_update` field
// ---------------------------------------------------------------------------------------------

/// `value` of an `account_update` change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountUpdate {
    /// `ACCOUNT_VIOLATION`, `ACCOUNT_RESTRICTION`, `DISABLED_UPDATE`, `ACCOUNT_DELETED`,
    /// `PARTNER_APP_INSTALLED`, `PARTNER_REMOVED`, `BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE`, …
    pub event: String,
    /// Business number concerned (violation / restriction events).
    #[serde(default)]
    pub phone_number: Option<String>,
    /// `BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE`.
    #[serde(default)]
    pub country: Option<String>,
    /// `ACCOUNT_VIOLATION`.
    #[serde(default)]
    pub violation_info: Option<ViolationInfo>,
    /// `ACCOUNT_RESTRICTION`: list of restrictions (a single object is accepted too).
    #[serde(default, deserialize_with = "de_one_or_many")]
    pub restriction_info: Vec<Restriction>,
    /// `DISABLED_UPDATE`: `{"waba_ban_state", "waba_ban_date"}`.
    #[serde(default)]
    pub ban_info: Option<serde_json::Value>,
    /// Partner / ad-account / MM API events.
    #[serde(default)]
    pub waba_info: Option<serde_json::Value>,
    /// `AUTH_INTL_PRICE_ELIGIBILITY_UPDATE`.
    #[serde(default)]
    pub auth_international_rate_eligibility: Option<serde_json::Value>,
    /// `PARTNER_REMOVED`.
    #[serde(default)]
    pub disconnection_info: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ViolationInfo {
    pub violation_type: Option<String>,
    /// What to do about it (calling restrictions, e.g. `USER_INITIATED_CALLS_LOW_PICKUP_RATE`).
    pub remediation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Restriction {
    /// `RESTRICTED_ADD_PHONE_NUMBER_ACTION`, `RESTRICTED_BIZ_INITIATED_MESSAGING`,
    /// `RESTRICTED_CUSTOMER_INITIATED_MESSAGING`.
    pub restriction_type: Option<String>,
    /// Meta documents a Unix timestamp (number); some deliveries carry a date string; it may
    /// be absent. Kept as text either way.
    #[serde(deserialize_with = "de_opt_string")]
    pub expiration: Option<String>,
    pub remediation: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Template quality, components and category updates
// ---------------------------------------------------------------------------------------------

/// `value` of a `message_template_quality_update` change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateQualityUpdate {
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN` (quality pending).
    #[serde(default)]
    pub previous_quality_score: Option<String>,
    pub new_quality_score: String,
    #[serde(default, deserialize_with = "de_string")]
    pub message_template_id: String,
    pub message_template_name: String,
    pub message_template_language: String,
}

/// `value` of a `message_template_components_update` change: the template's content after an
/// edit (every key carries Meta's `message_template_` prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateComponentsUpdate {
    #[serde(default, deserialize_with = "de_string")]
    pub message_template_id: String,
    pub message_template_name: String,
    pub message_template_language: String,
    /// The body text (with `{{1}}` or named placeholders).
    #[serde(default)]
    pub message_template_element: Option<String>,
    /// Only for a template with a text header.
    #[serde(default)]
    pub message_template_title: Option<String>,
    /// Only for a template with a footer.
    #[serde(default)]
    pub message_template_footer: Option<String>,
    /// Only URL and phone-number buttons are reported.
    #[serde(default)]
    pub message_template_buttons: Vec<TemplateButtonUpdate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TemplateButtonUpdate {
    /// `URL`, `PHONE_NUMBER`, `QUICK_REPLY`, `COPY_CODE`, `FLOW`, …
    pub message_template_button_type: String,
    pub message_template_button_text: Option<String>,
    pub message_template_button_url: Option<String>,
    pub message_template_button_phone_number: Option<String>,
}

/// `value` of a `template_category_update` change: a completed change (`previous_category`
/// set, `new_category` the category now) or an impending one (`correct_category` set: the
/// category the template gets at `category_update_timestamp`; `new_category` the current one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateCategoryUpdate {
    #[serde(default, deserialize_with = "de_string")]
    pub message_template_id: String,
    pub message_template_name: String,
    pub message_template_language: String,
    pub new_category: String,
    #[serde(default)]
    pub previous_category: Option<String>,
    #[serde(default)]
    pub correct_category: Option<String>,
    #[serde(default, deserialize_with = "de_opt_int")]
    pub category_update_timestamp: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// `calls` field (WhatsApp Business Calling)
// ---------------------------------------------------------------------------------------------

/// `value` of a `calls` change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallsValue {
    #[serde(default)]
    pub messaging_product: Option<String>,
    pub metadata: Metadata,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// `connect` / `terminate` events, kept verbatim ([`CallEvent`] is the typed view).
    #[serde(default)]
    pub calls: Vec<Box<RawValue>>,
    /// Statuses of business-initiated calls (`RINGING`, `ACCEPTED`, `REJECTED`).
    #[serde(default)]
    pub statuses: Vec<Box<RawValue>>,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

/// One `calls[]` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    /// `wacid.…`
    pub id: String,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub from: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub to: Option<String>,
    #[serde(default)]
    pub from_user_id: Option<String>,
    #[serde(default)]
    pub to_user_id: Option<String>,
    /// `connect` or `terminate`.
    pub event: String,
    #[serde(deserialize_with = "de_int")]
    pub timestamp: i64,
    /// `USER_INITIATED` (the default when absent) or `BUSINESS_INITIATED`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Terminate: `COMPLETED` or `FAILED` (documented as one string, sometimes as a list).
    #[serde(default, deserialize_with = "de_first_of_one_or_many")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "de_opt_int")]
    pub start_time: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_int")]
    pub end_time: Option<i64>,
    /// Seconds, when the call was answered.
    #[serde(default, deserialize_with = "de_opt_int")]
    pub duration: Option<i64>,
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
    #[serde(default)]
    pub biz_opaque_callback_data: Option<String>,
}

impl CallEvent {
    /// Whether the customer called the business.
    pub fn user_initiated(&self) -> bool {
        !self
            .direction
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case("BUSINESS_INITIATED"))
    }

    /// The customer's wa_id and BSUID.
    pub fn customer(&self) -> (Option<&str>, Option<&str>) {
        if self.user_initiated() {
            (self.from.as_deref(), self.from_user_id.as_deref())
        } else {
            (self.to.as_deref(), self.to_user_id.as_deref())
        }
    }

    /// A line for the conversation's history.
    pub fn summary(&self) -> String {
        let who = if self.user_initiated() {
            "Incoming call"
        } else {
            "Outgoing call"
        };
        match self.event.as_str() {
            "connect" => format!("{who}: ringing"),
            "terminate" => match (self.status.as_deref(), self.duration) {
                (Some(st), _) if st.eq_ignore_ascii_case("FAILED") => format!("{who}: failed"),
                (_, Some(d)) if d > 0 => format!("{who}: {} min {} s", d / 60, d % 60),
                _ if self.user_initiated() => "Missed call".to_string(),
                _ => format!("{who}: not answered"),
            },
            other => format!("{who}: {other}"),
        }
    }

    /// A call the customer made that nobody answered.
    pub fn missed(&self) -> bool {
        self.user_initiated() && self.event == "terminate" && self.duration.unwrap_or(0) <= 0
    }
}

/// One `statuses[]` item of a `calls` change (`type: "call"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallStatus {
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `RINGING`, `ACCEPTED`, `REJECTED`.
    pub status: String,
    #[serde(deserialize_with = "de_int")]
    pub timestamp: i64,
    #[serde(default, deserialize_with = "de_opt_string")]
    pub recipient_id: Option<String>,
    #[serde(default)]
    pub recipient_user_id: Option<String>,
    #[serde(default)]
    pub biz_opaque_callback_data: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Message wire format (private): one pass reads `type` and every possible content object;
// only the one matching `type` is present in practice, the others stay `None` at no cost.
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct MessageWire {
    id: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_user_id: Option<String>,
    #[serde(default)]
    from_parent_user_id: Option<String>,
    #[serde(default)]
    group_id: Option<String>,
    // echoes
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    to_user_id: Option<String>,
    #[serde(deserialize_with = "de_int")]
    timestamp: i64,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    referral: Option<Referral>,
    #[serde(default)]
    errors: Vec<MetaError>,
    // content objects, one per `type`
    #[serde(default)]
    text: Option<TextWire>,
    #[serde(default)]
    image: Option<Media>,
    #[serde(default)]
    video: Option<Media>,
    #[serde(default)]
    audio: Option<Media>,
    #[serde(default)]
    document: Option<Media>,
    #[serde(default)]
    sticker: Option<Media>,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    contacts: Option<Vec<ContactCard>>,
    #[serde(default)]
    interactive: Option<InteractiveWire>,
    #[serde(default)]
    button: Option<ButtonWire>,
    #[serde(default)]
    reaction: Option<ReactionWire>,
    #[serde(default)]
    order: Option<Order>,
    #[serde(default)]
    system: Option<SystemChange>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TextWire {
    body: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ButtonWire {
    payload: String,
    text: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReactionWire {
    message_id: String,
    emoji: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InteractiveWire {
    #[serde(rename = "type")]
    kind: String,
    button_reply: Option<ButtonReplyWire>,
    list_reply: Option<ListReplyWire>,
    nfm_reply: Option<NfmReplyWire>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ButtonReplyWire {
    id: String,
    title: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListReplyWire {
    id: String,
    title: String,
    description: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NfmReplyWire {
    name: Option<String>,
    body: Option<String>,
    response_json: String,
}

impl MessageWire {
    fn into_inbound(mut self) -> InboundMessage {
        let content = self.take_content();
        InboundMessage {
            id: self.id,
            from: self.from,
            from_user_id: self.from_user_id,
            from_parent_user_id: self.from_parent_user_id,
            group_id: self.group_id,
            timestamp: self.timestamp,
            kind: self.kind,
            content,
            context: self.context,
            referral: self.referral,
            errors: self.errors,
        }
    }

    fn into_echo(mut self) -> EchoMessage {
        let content = self.take_content();
        EchoMessage {
            id: self.id,
            from: self.from,
            to: self.to,
            to_user_id: self.to_user_id,
            timestamp: self.timestamp,
            kind: self.kind,
            content,
        }
    }

    /// Builds the content from the object matching `type`.
    fn take_content(&mut self) -> MessageContent {
        match self.kind.as_str() {
            "text" => MessageContent::Text {
                body: self.text.take().unwrap_or_default().body,
            },
            "image" => MessageContent::Image(self.image.take().unwrap_or_default()),
            "video" => MessageContent::Video(self.video.take().unwrap_or_default()),
            "audio" => MessageContent::Audio(self.audio.take().unwrap_or_default()),
            "document" => MessageContent::Document(self.document.take().unwrap_or_default()),
            "sticker" => MessageContent::Sticker(self.sticker.take().unwrap_or_default()),
            "location" => MessageContent::Location(self.location.take().unwrap_or_default()),
            "contacts" => MessageContent::Contacts(self.contacts.take().unwrap_or_default()),
            "interactive" => MessageContent::Interactive(
                self.interactive
                    .take()
                    .unwrap_or_default()
                    .into_interactive(),
            ),
            "button" => {
                let b = self.button.take().unwrap_or_default();
                MessageContent::Button {
                    payload: b.payload,
                    text: b.text,
                }
            }
            "reaction" => {
                let r = self.reaction.take().unwrap_or_default();
                MessageContent::Reaction {
                    message_id: r.message_id,
                    emoji: r.emoji,
                }
            }
            "order" => MessageContent::Order(self.order.take().unwrap_or_default()),
            "system" => MessageContent::System(self.system.take().unwrap_or_default()),
            // `unknown` is the pre-v12 name of `unsupported`.
            "unsupported" | "unknown" => MessageContent::Unsupported,
            other => MessageContent::Unknown {
                kind: other.to_owned(),
            },
        }
    }
}

impl InteractiveWire {
    fn into_interactive(self) -> Interactive {
        match (
            self.kind.as_str(),
            self.button_reply,
            self.list_reply,
            self.nfm_reply,
        ) {
            ("button_reply", Some(b), _, _) => Interactive::ButtonReply {
                id: b.id,
                title: b.title,
            },
            ("list_reply", _, Some(l), _) => Interactive::ListReply {
                id: l.id,
                title: l.title,
                description: l.description,
            },
            ("nfm_reply", _, _, Some(n)) => Interactive::NfmReply {
                name: n.name,
                body: n.body,
                response_json: n.response_json,
            },
            _ => Interactive::Other { kind: self.kind },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

impl MessageContent {
    /// Short human text for inbox previews (at most [`SUMMARY_MAX_CHARS`] characters, on one
    /// line): the text body, `"[image] caption"`, `"📍 name"`, the tapped button / row title …
    pub fn summary(&self) -> String {
        let s = match self {
            MessageContent::Text { body } => body.clone(),
            MessageContent::Image(m) => tagged("[image]", m.caption.as_deref()),
            MessageContent::Video(m) => tagged("[video]", m.caption.as_deref()),
            MessageContent::Audio(m) => {
                if m.voice {
                    "[voice message]".to_owned()
                } else {
                    "[audio]".to_owned()
                }
            }
            MessageContent::Document(m) => {
                tagged("[document]", m.filename.as_deref().or(m.caption.as_deref()))
            }
            MessageContent::Sticker(_) => "[sticker]".to_owned(),
            MessageContent::Location(l) => {
                let label = non_empty(l.name.as_deref()).or(non_empty(l.address.as_deref()));
                match label {
                    Some(label) => format!("📍 {label}"),
                    None => format!("📍 {}, {}", l.latitude, l.longitude),
                }
            }
            MessageContent::Contacts(cards) => {
                let first = cards
                    .first()
                    .and_then(|c| c.name.as_ref())
                    .and_then(|n| non_empty(n.formatted_name.as_deref()));
                let mut s = tagged("[contact]", first);
                if cards.len() > 1 {
                    s.push_str(&format!(" +{}", cards.len() - 1));
                }
                s
            }
            MessageContent::Interactive(i) => match i {
                Interactive::ButtonReply { title, .. } | Interactive::ListReply { title, .. } => {
                    title.clone()
                }
                Interactive::NfmReply { name, .. } => match name.as_deref() {
                    Some("address_message") => "[address]".to_owned(),
                    _ => "[form response]".to_owned(),
                },
                Interactive::Other { .. } => "[interactive]".to_owned(),
            },
            MessageContent::Button { text, payload } => {
                if text.is_empty() {
                    payload.clone()
                } else {
                    text.clone()
                }
            }
            MessageContent::Reaction { emoji, .. } => match non_empty(emoji.as_deref()) {
                Some(e) => format!("reacted {e}"),
                None => "[reaction removed]".to_owned(),
            },
            MessageContent::Order(o) => {
                let n = o.product_items.len();
                let mut s = format!("[order] {n} item{}", if n == 1 { "" } else { "s" });
                if let Some(t) = non_empty(o.text.as_deref()) {
                    s.push_str(": ");
                    s.push_str(t);
                }
                s
            }
            MessageContent::System(sys) => match non_empty(sys.body.as_deref()) {
                Some(b) => b.to_owned(),
                None => tagged("[system]", sys.kind.as_deref()),
            },
            MessageContent::Unsupported => "[unsupported message]".to_owned(),
            MessageContent::Unknown { kind } => format!("[{kind}]"),
        };
        one_line_clipped(&s)
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

fn tagged(tag: &str, detail: Option<&str>) -> String {
    match non_empty(detail) {
        Some(d) => format!("{tag} {d}"),
        None => tag.to_owned(),
    }
}

fn one_line_clipped(s: &str) -> String {
    let t = s.trim();
    let clip = t.chars().nth(SUMMARY_MAX_CHARS).is_some();
    let keep = if clip {
        SUMMARY_MAX_CHARS - 1
    } else {
        SUMMARY_MAX_CHARS
    };
    let mut out: String = t
        .chars()
        .take(keep)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clip {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Lenient scalar deserializers (no `serde_json::Value` round trip)
// ---------------------------------------------------------------------------------------------

/// Integer from a JSON number or a string of digits (Meta's timestamps are strings).
struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string of digits")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse::<i64>()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntVisitor).map(Int)
    }
}

fn de_int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(IntVisitor)
}

fn de_opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Int>::deserialize(d)?.map(|i| i.0))
}

/// Float from a JSON number or a numeric string.
struct F64Visitor;

impl Visitor<'_> for F64Visitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a numeric string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        v.trim()
            .parse::<f64>()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

fn de_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(F64Visitor)
}

/// String from a JSON string or number (ids Meta sometimes sends as numbers).
struct StringVisitor;

impl Visitor<'_> for StringVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

struct Str(String);

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StringVisitor).map(Str)
    }
}

fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(StringVisitor)
}

fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Str>::deserialize(d)?.map(|s| s.0))
}

/// A string, or the first of a list of strings.
fn de_first_of_one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(s),
        Some(OneOrMany::Many(v)) => v.into_iter().next(),
    })
}

/// A list, or a single object taken as a list of one; `null` is an empty list.
fn de_one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
    }
    Ok(match Option::<OneOrMany<T>>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::Many(v)) => v,
        Some(OneOrMany::One(t)) => vec![t],
    })
}
