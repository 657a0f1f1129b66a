//! Outbound WhatsApp messages: our own JSON representation (accepted from the staff API), the
//! validation of every limit Meta documents (SYSTEM.md §4) and the exact request body of
//! `POST /{version}/{phone_number_id}/messages`.
//!
//! Our JSON is `{"to", "reply_to"?, "biz_opaque_callback_data"?, "content": {"type": ..., ...}}`
//! where `content` is an [`OutboundContent`] tagged by `type` (snake_case). Template components
//! and parameters, media sources and contact cards use Meta's own shapes, so a payload copied
//! from Meta's documentation is accepted as is.
//!
//! [`OutboundMessage::validate`] checks every limit and names the offending field with a JSON
//! path into *our* representation (`content.sections[0].rows[2].title`). Lengths are counted in
//! characters (Unicode scalar values), as Meta counts them, never in bytes.
//!
//! [`OutboundMessage::to_graph_bytes`] serialises Meta's request body straight from borrowed
//! fields (no intermediate `serde_json::Value`), which keeps the per-send cost to one buffer;
//! [`OutboundMessage::to_graph_json`] gives the same body as a `Value` for tests and logs.

use std::fmt;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Deserializer, Serialize};

// ---------------------------------------------------------------------------------------------
// Limits (SYSTEM.md §4 and Meta's message reference)
// ---------------------------------------------------------------------------------------------

/// Text message body.
pub const TEXT_BODY_MAX: usize = 4096;
/// Body of an interactive (buttons or list) message.
pub const INTERACTIVE_BODY_MAX: usize = 1024;
/// Text header of an interactive message.
pub const HEADER_TEXT_MAX: usize = 60;
/// Footer of an interactive message.
pub const FOOTER_MAX: usize = 60;
/// Media caption.
pub const CAPTION_MAX: usize = 1024;
/// Reply buttons per message.
pub const REPLY_BUTTONS_MAX: usize = 3;
/// Reply button title.
pub const REPLY_BUTTON_TITLE_MAX: usize = 20;
/// Reply button id.
pub const REPLY_BUTTON_ID_MAX: usize = 256;
/// Rows of a list message, all sections together.
pub const LIST_ROWS_MAX: usize = 10;
/// Sections of a list message.
pub const LIST_SECTIONS_MAX: usize = 10;
/// Section title of a list message.
pub const LIST_SECTION_TITLE_MAX: usize = 24;
/// Row title of a list message.
pub const LIST_ROW_TITLE_MAX: usize = 24;
/// Row id of a list message.
pub const LIST_ROW_ID_MAX: usize = 200;
/// Row description of a list message.
pub const LIST_ROW_DESCRIPTION_MAX: usize = 72;
/// Label of the button that opens a list.
pub const LIST_BUTTON_MAX: usize = 20;
/// `biz_opaque_callback_data`.
pub const CALLBACK_DATA_MAX: usize = 512;
/// Template name.
pub const TEMPLATE_NAME_MAX: usize = 512;
/// Text parameter of a template header.
pub const TEMPLATE_HEADER_TEXT_PARAM_MAX: usize = 60;
/// Coupon code of a template copy-code button.
pub const TEMPLATE_COUPON_CODE_MAX: usize = 15;
/// Template button index (Meta accepts 0 to 9).
pub const TEMPLATE_BUTTON_INDEX_MAX: u8 = 9;
/// Recipient (`wa_id`, phone number or BSUID): generous bound against garbage.
pub const RECIPIENT_MAX: usize = 128;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// One message to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Recipient: a `wa_id` / phone number, or a business-scoped user id (`CC.xxxx`), which is
    /// sent to Meta as `recipient` instead of `to`.
    pub to: String,
    /// `wamid` of the message this one replies to (Meta's `context.message_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Our own message id: Meta returns it on every status of this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    pub content: OutboundContent,
}

/// What a message carries. Serialised with a `type` tag in snake_case.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundContent {
    Text {
        body: String,
        #[serde(default)]
        preview_url: bool,
    },
    Template(TemplateMessage),
    /// Interactive reply buttons.
    Buttons {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    /// Interactive list.
    List {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        /// Label of the button that opens the list.
        button: String,
        sections: Vec<ListSection>,
    },
    Media {
        kind: MediaKind,
        source: MediaSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        /// Documents only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
    Location {
        latitude: f64,
        longitude: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    /// Contact cards (a struct variant: an internally tagged enum cannot hold a bare array).
    Contacts {
        contacts: Vec<ContactCard>,
    },
    /// Reaction to a message; an empty `emoji` removes a previous reaction.
    Reaction {
        message_id: String,
        emoji: String,
    },
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    /// Required when the list has more than one section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaKind {
    /// Meta's message `type` (also the key of the media object).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }
    /// Audio and stickers take no caption.
    pub fn accepts_caption(self) -> bool {
        !matches!(self, Self::Audio | Self::Sticker)
    }
}

/// Uploaded media id or public https link; serialised as Meta's `{"id": ..}` / `{"link": ..}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaSource {
    Id(String),
    Link(String),
}

// ----- templates -----------------------------------------------------------------------------

/// A template send: `name`, `language` code (e.g. `en_US`) and the parameters to fill.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateMessage {
    pub name: String,
    pub language: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<TemplateComponent>,
}

/// One component of a template send, in Meta's shape.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateComponent {
    Header {
        parameters: Vec<TemplateParameter>,
    },
    Body {
        parameters: Vec<TemplateParameter>,
    },
    Button {
        sub_type: TemplateButtonKind,
        /// Position of the button in the template (0-9); a string on the wire.
        #[serde(serialize_with = "ser_index", deserialize_with = "de_index")]
        #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0"))]
        index: u8,
        #[serde(default)]
        parameters: Vec<TemplateParameter>,
    },
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateButtonKind {
    QuickReply,
    Url,
    CopyCode,
    Flow,
}

/// A template parameter, in Meta's shape. `parameter_name` is set for templates with named
/// parameters (`{{customer_name}}`) and left out for positional ones (`{{1}}`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateParameter {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    Currency {
        currency: CurrencyValue,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    DateTime {
        date_time: DateTimeValue,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    /// Media header.
    Image {
        image: MediaSource,
    },
    Video {
        video: MediaSource,
    },
    Document {
        document: TemplateDocument,
    },
    /// Location header.
    Location {
        location: TemplateLocation,
    },
    /// Quick-reply button payload.
    Payload {
        payload: String,
    },
    /// Copy-code button.
    CouponCode {
        coupon_code: String,
    },
    /// Flow button action (`flow_token`, `flow_action_data`), passed through.
    Action {
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        action: serde_json::Value,
    },
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyValue {
    pub fallback_value: String,
    /// ISO 4217 code.
    pub code: String,
    /// Amount times 1000.
    pub amount_1000: i64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateTimeValue {
    pub fallback_value: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateDocument {
    #[serde(flatten)]
    pub source: MediaSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateLocation {
    pub latitude: f64,
    pub longitude: f64,
    pub name: String,
    pub address: String,
}

fn ser_index<S: Serializer>(index: &u8, s: S) -> Result<S::Ok, S::Error> {
    // Meta documents the index as a string ("0"); a byte never needs more than three digits.
    let mut buf = [0u8; 3];
    let digits = fmt_u8(*index, &mut buf);
    s.serialize_str(digits)
}

fn fmt_u8(mut n: u8, buf: &mut [u8; 3]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + n % 10;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

fn de_index<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Index {
        Num(u8),
        Str(String),
    }
    match Index::deserialize(d)? {
        Index::Num(n) => Ok(n),
        Index::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("button index {s:?} is not 0-255"))),
    }
}

// ----- contacts ------------------------------------------------------------------------------

/// A contact card, in Meta's shape.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactCard {
    pub name: ContactName,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<ContactPhone>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<ContactEmail>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<ContactAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<ContactUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<ContactOrg>,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactName {
    pub formatted_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactPhone {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// `CELL`, `MAIN`, `IPHONE`, `HOME`, `WORK` …
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactEmail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactUrl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactOrg {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// A limit or rule broken by an outbound message, naming the field by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// JSON path in our representation, e.g. `content.sections[0].rows[2].title`.
    pub field: String,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

type VResult = Result<(), ValidationError>;

/// Character count above `max`? Cheap for ASCII: a string of at most `max` bytes has at most
/// `max` characters, so only longer strings are counted.
#[inline]
fn too_long(s: &str, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None;
    }
    let n = s.chars().count();
    (n > max).then_some(n)
}

fn fail(field: impl Into<String>, reason: impl Into<String>) -> VResult {
    Err(ValidationError::new(field, reason))
}

/// Required, non-blank text of at most `max` characters. `path` is only built on failure.
#[inline]
fn required(path: impl FnOnce() -> String, s: &str, max: usize) -> VResult {
    if s.trim().is_empty() {
        return fail(path(), "must not be empty");
    }
    limit(path, s, max)
}

#[inline]
fn limit(path: impl FnOnce() -> String, s: &str, max: usize) -> VResult {
    match too_long(s, max) {
        None => Ok(()),
        Some(n) => fail(
            path(),
            format!("must be at most {max} characters (got {n})"),
        ),
    }
}

/// Optional text: absent is fine, present must be non-blank and within `max`.
#[inline]
fn optional(path: impl FnOnce() -> String, s: Option<&str>, max: usize) -> VResult {
    match s {
        None => Ok(()),
        Some(s) => required(path, s, max),
    }
}

/// An `https://` URL with a host.
fn https_link(path: impl FnOnce() -> String, link: &str) -> VResult {
    match reqwest::Url::parse(link) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => fail(path(), "must be an https:// URL"),
        Err(e) => fail(path(), format!("is not a valid URL ({e})")),
    }
}

fn media_source(path: &str, source: &MediaSource) -> VResult {
    match source {
        MediaSource::Id(id) => required(|| format!("{path}.id"), id, 256),
        MediaSource::Link(link) => {
            required(|| format!("{path}.link"), link, 2048)?;
            https_link(|| format!("{path}.link"), link)
        }
    }
}

/// Business-scoped user id: two-letter country code, a dot, then letters and digits
/// (`US.13491208655302741918`). Phone numbers and `wa_id`s never contain a dot.
pub fn is_bsuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 4
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_uppercase()
        && b[2] == b'.'
        && b[3..].iter().all(u8::is_ascii_alphanumeric)
}

fn recipient(to: &str) -> VResult {
    required(|| "to".into(), to, RECIPIENT_MAX)?;
    if is_bsuid(to) {
        return Ok(());
    }
    // A wa_id or phone number: digits, optionally with '+', spaces, dashes, dots and brackets
    // as people write them; Meta normalises the rest.
    let ok = to
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'))
        && to.chars().filter(char::is_ascii_digit).count() >= 5;
    if ok {
        Ok(())
    } else {
        fail(
            "to",
            "must be a phone number / wa_id (digits) or a business-scoped user id (CC.xxxx)",
        )
    }
}

impl OutboundMessage {
    /// Check every limit Meta documents before anything is sent.
    pub fn validate(&self) -> Result<(), ValidationError> {
        recipient(&self.to)?;
        if let Some(r) = &self.reply_to {
            required(|| "reply_to".into(), r, 256)?;
            if matches!(self.content, OutboundContent::Reaction { .. }) {
                return fail("reply_to", "a reaction cannot be a reply");
            }
        }
        if let Some(d) = &self.biz_opaque_callback_data {
            limit(|| "biz_opaque_callback_data".into(), d, CALLBACK_DATA_MAX)?;
        }
        self.content.validate()
    }

    /// Meta's request body, serialised without an intermediate `Value`.
    pub fn to_graph_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        // Serialising plain strings, numbers and maps with string keys cannot fail.
        let _ = serde_json::to_writer(&mut out, &GraphBody(self));
        out
    }

    /// Meta's request body as a JSON value (same content as [`Self::to_graph_bytes`]).
    pub fn to_graph_json(&self) -> serde_json::Value {
        serde_json::to_value(GraphBody(self)).unwrap_or(serde_json::Value::Null)
    }

    /// Meta's `type` of this message.
    pub fn graph_type(&self) -> &'static str {
        self.content.graph_type()
    }
}

impl OutboundContent {
    /// Meta's message `type`.
    pub fn graph_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Template(_) => "template",
            Self::Buttons { .. } | Self::List { .. } => "interactive",
            Self::Media { kind, .. } => kind.as_str(),
            Self::Location { .. } => "location",
            Self::Contacts { .. } => "contacts",
            Self::Reaction { .. } => "reaction",
        }
    }

    /// Is this a free-form message (only allowed inside the 24-hour window)? Templates are
    /// the only kind allowed outside it.
    pub fn needs_open_window(&self) -> bool {
        !matches!(self, Self::Template(_))
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Self::Text { body, .. } => required(|| "content.body".into(), body, TEXT_BODY_MAX),
            Self::Template(t) => t.validate(),
            Self::Buttons {
                body,
                header,
                footer,
                buttons,
            } => {
                required(|| "content.body".into(), body, INTERACTIVE_BODY_MAX)?;
                optional(
                    || "content.header".into(),
                    header.as_deref(),
                    HEADER_TEXT_MAX,
                )?;
                optional(|| "content.footer".into(), footer.as_deref(), FOOTER_MAX)?;
                validate_buttons(buttons)
            }
            Self::List {
                body,
                header,
                footer,
                button,
                sections,
            } => {
                required(|| "content.body".into(), body, INTERACTIVE_BODY_MAX)?;
                optional(
                    || "content.header".into(),
                    header.as_deref(),
                    HEADER_TEXT_MAX,
                )?;
                optional(|| "content.footer".into(), footer.as_deref(), FOOTER_MAX)?;
                required(|| "content.button".into(), button, LIST_BUTTON_MAX)?;
                validate_sections(sections)
            }
            Self::Media {
                kind,
                source,
                caption,
                filename,
            } => {
                media_source("content.source", source)?;
                if let Some(c) = caption {
                    if !kind.accepts_caption() {
                        return fail(
                            "content.caption",
                            format!("not allowed on {} messages", kind.as_str()),
                        );
                    }
                    limit(|| "content.caption".into(), c, CAPTION_MAX)?;
                }
                if let Some(f) = filename {
                    if *kind != MediaKind::Document {
                        return fail("content.filename", "only allowed on document messages");
                    }
                    required(|| "content.filename".into(), f, 240)?;
                }
                Ok(())
            }
            Self::Location {
                latitude,
                longitude,
                name,
                address,
            } => {
                coordinates("content", *latitude, *longitude)?;
                optional(|| "content.name".into(), name.as_deref(), 1000)?;
                optional(|| "content.address".into(), address.as_deref(), 1000)
            }
            Self::Contacts { contacts } => validate_contacts(contacts),
            Self::Reaction { message_id, emoji } => {
                required(|| "content.message_id".into(), message_id, 256)?;
                // Empty removes the reaction; otherwise one emoji (possibly a ZWJ sequence).
                limit(|| "content.emoji".into(), emoji, 16)?;
                if emoji
                    .chars()
                    .any(|c| c.is_ascii_alphanumeric() || c.is_whitespace())
                {
                    return fail("content.emoji", "must be a single emoji or empty");
                }
                Ok(())
            }
        }
    }
}

fn coordinates(prefix: &str, latitude: f64, longitude: f64) -> VResult {
    if !(latitude.is_finite() && (-90.0..=90.0).contains(&latitude)) {
        return fail(format!("{prefix}.latitude"), "must be between -90 and 90");
    }
    if !(longitude.is_finite() && (-180.0..=180.0).contains(&longitude)) {
        return fail(
            format!("{prefix}.longitude"),
            "must be between -180 and 180",
        );
    }
    Ok(())
}

fn validate_buttons(buttons: &[ReplyButton]) -> VResult {
    if buttons.is_empty() {
        return fail("content.buttons", "at least one button is required");
    }
    if buttons.len() > REPLY_BUTTONS_MAX {
        return fail(
            "content.buttons",
            format!(
                "at most {REPLY_BUTTONS_MAX} buttons (got {})",
                buttons.len()
            ),
        );
    }
    for (i, b) in buttons.iter().enumerate() {
        required(
            || format!("content.buttons[{i}].id"),
            &b.id,
            REPLY_BUTTON_ID_MAX,
        )?;
        required(
            || format!("content.buttons[{i}].title"),
            &b.title,
            REPLY_BUTTON_TITLE_MAX,
        )?;
        if buttons[..i].iter().any(|o| o.id == b.id) {
            return fail(
                format!("content.buttons[{i}].id"),
                "must be unique among the buttons",
            );
        }
        if buttons[..i].iter().any(|o| o.title == b.title) {
            return fail(
                format!("content.buttons[{i}].title"),
                "must be unique among the buttons",
            );
        }
    }
    Ok(())
}

fn validate_sections(sections: &[ListSection]) -> VResult {
    if sections.is_empty() {
        return fail("content.sections", "at least one section is required");
    }
    if sections.len() > LIST_SECTIONS_MAX {
        return fail(
            "content.sections",
            format!(
                "at most {LIST_SECTIONS_MAX} sections (got {})",
                sections.len()
            ),
        );
    }
    let total: usize = sections.iter().map(|s| s.rows.len()).sum();
    if total > LIST_ROWS_MAX {
        return fail(
            "content.sections",
            format!("at most {LIST_ROWS_MAX} rows in all sections together (got {total})"),
        );
    }
    let several = sections.len() > 1;
    for (si, s) in sections.iter().enumerate() {
        match &s.title {
            Some(t) => required(
                || format!("content.sections[{si}].title"),
                t,
                LIST_SECTION_TITLE_MAX,
            )?,
            None if several => {
                return fail(
                    format!("content.sections[{si}].title"),
                    "required when the list has more than one section",
                );
            }
            None => {}
        }
        if s.rows.is_empty() {
            return fail(
                format!("content.sections[{si}].rows"),
                "at least one row is required",
            );
        }
        for (ri, r) in s.rows.iter().enumerate() {
            required(
                || format!("content.sections[{si}].rows[{ri}].id"),
                &r.id,
                LIST_ROW_ID_MAX,
            )?;
            required(
                || format!("content.sections[{si}].rows[{ri}].title"),
                &r.title,
                LIST_ROW_TITLE_MAX,
            )?;
            if let Some(d) = &r.description {
                limit(
                    || format!("content.sections[{si}].rows[{ri}].description"),
                    d,
                    LIST_ROW_DESCRIPTION_MAX,
                )?;
            }
            // Row ids identify the choice in the reply webhook: unique across the whole list.
            let dup = sections[..si]
                .iter()
                .flat_map(|o| o.rows.iter())
                .chain(s.rows[..ri].iter())
                .any(|o| o.id == r.id);
            if dup {
                return fail(
                    format!("content.sections[{si}].rows[{ri}].id"),
                    "must be unique in the list",
                );
            }
        }
    }
    Ok(())
}

fn validate_contacts(contacts: &[ContactCard]) -> VResult {
    if contacts.is_empty() {
        return fail("content.contacts", "at least one contact is required");
    }
    for (i, c) in contacts.iter().enumerate() {
        required(
            || format!("content.contacts[{i}].name.formatted_name"),
            &c.name.formatted_name,
            1000,
        )?;
        if let Some(b) = &c.birthday
            && !is_iso_date(b)
        {
            return fail(
                format!("content.contacts[{i}].birthday"),
                "must be a date as YYYY-MM-DD",
            );
        }
    }
    Ok(())
}

fn is_iso_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
}

/// Named parameter: lowercase letters, digits and underscores.
fn is_parameter_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl TemplateMessage {
    pub fn validate(&self) -> Result<(), ValidationError> {
        required(|| "content.name".into(), &self.name, TEMPLATE_NAME_MAX)?;
        if !self
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return fail(
                "content.name",
                "must contain only lowercase letters, digits and underscores",
            );
        }
        required(|| "content.language".into(), &self.language, 16)?;
        if !self
            .language
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return fail("content.language", "must be a language code such as en_US");
        }

        // Named and positional parameters cannot be mixed in one template.
        let mut naming: Option<bool> = None;
        let mut seen_header = false;
        let mut seen_body = false;
        for (ci, c) in self.components.iter().enumerate() {
            match c {
                TemplateComponent::Header { parameters } => {
                    if std::mem::replace(&mut seen_header, true) {
                        return fail(
                            format!("content.components[{ci}]"),
                            "only one header component is allowed",
                        );
                    }
                    if parameters.len() > 1 {
                        return fail(
                            format!("content.components[{ci}].parameters"),
                            "a header takes at most one parameter",
                        );
                    }
                    validate_params(ci, parameters, true, &mut naming)?;
                }
                TemplateComponent::Body { parameters } => {
                    if std::mem::replace(&mut seen_body, true) {
                        return fail(
                            format!("content.components[{ci}]"),
                            "only one body component is allowed",
                        );
                    }
                    validate_params(ci, parameters, false, &mut naming)?;
                }
                TemplateComponent::Button {
                    sub_type,
                    index,
                    parameters,
                } => {
                    if *index > TEMPLATE_BUTTON_INDEX_MAX {
                        return fail(
                            format!("content.components[{ci}].index"),
                            format!("must be 0 to {TEMPLATE_BUTTON_INDEX_MAX}"),
                        );
                    }
                    let dup = self.components[..ci].iter().any(
                        |o| matches!(o, TemplateComponent::Button { index: oi, .. } if oi == index),
                    );
                    if dup {
                        return fail(
                            format!("content.components[{ci}].index"),
                            "each button index may be filled only once",
                        );
                    }
                    validate_button_params(ci, *sub_type, parameters)?;
                }
            }
        }
        Ok(())
    }
}

fn validate_params(
    ci: usize,
    params: &[TemplateParameter],
    header: bool,
    naming: &mut Option<bool>,
) -> VResult {
    let p = |pi: usize, f: &str| format!("content.components[{ci}].parameters[{pi}]{f}");
    for (pi, param) in params.iter().enumerate() {
        let name = match param {
            TemplateParameter::Text {
                text,
                parameter_name,
            } => {
                let max = if header {
                    TEMPLATE_HEADER_TEXT_PARAM_MAX
                } else {
                    32_768
                };
                required(|| p(pi, ".text"), text, max)?;
                if !header && (text.contains(['\n', '\t']) || text.contains("     ")) {
                    return fail(
                        p(pi, ".text"),
                        "must not contain new lines, tabs or more than 4 consecutive spaces",
                    );
                }
                parameter_name.as_deref()
            }
            TemplateParameter::Currency {
                currency,
                parameter_name,
            } => {
                required(
                    || p(pi, ".currency.fallback_value"),
                    &currency.fallback_value,
                    1024,
                )?;
                if currency.code.len() != 3
                    || !currency.code.bytes().all(|b| b.is_ascii_uppercase())
                {
                    return fail(
                        p(pi, ".currency.code"),
                        "must be an ISO 4217 code such as USD",
                    );
                }
                parameter_name.as_deref()
            }
            TemplateParameter::DateTime {
                date_time,
                parameter_name,
            } => {
                required(
                    || p(pi, ".date_time.fallback_value"),
                    &date_time.fallback_value,
                    1024,
                )?;
                parameter_name.as_deref()
            }
            TemplateParameter::Image { image: s } | TemplateParameter::Video { video: s } => {
                if !header {
                    return fail(p(pi, ".type"), "media parameters belong in the header");
                }
                let key = if matches!(param, TemplateParameter::Image { .. }) {
                    ".image"
                } else {
                    ".video"
                };
                media_source(&p(pi, key), s)?;
                continue;
            }
            TemplateParameter::Document { document } => {
                if !header {
                    return fail(p(pi, ".type"), "media parameters belong in the header");
                }
                media_source(&p(pi, ".document"), &document.source)?;
                optional(
                    || p(pi, ".document.filename"),
                    document.filename.as_deref(),
                    240,
                )?;
                continue;
            }
            TemplateParameter::Location { location } => {
                if !header {
                    return fail(p(pi, ".type"), "a location parameter belongs in the header");
                }
                coordinates(&p(pi, ".location"), location.latitude, location.longitude)?;
                required(|| p(pi, ".location.name"), &location.name, 1000)?;
                required(|| p(pi, ".location.address"), &location.address, 1000)?;
                continue;
            }
            TemplateParameter::Payload { .. }
            | TemplateParameter::CouponCode { .. }
            | TemplateParameter::Action { .. } => {
                return fail(
                    p(pi, ".type"),
                    "button parameters belong in a button component",
                );
            }
        };
        let named = name.is_some();
        match naming {
            None => *naming = Some(named),
            Some(prev) if *prev != named => {
                return fail(
                    p(pi, ".parameter_name"),
                    "named and positional parameters cannot be mixed",
                );
            }
            Some(_) => {}
        }
        if let Some(n) = name {
            if !is_parameter_name(n) {
                return fail(
                    p(pi, ".parameter_name"),
                    "must contain only lowercase letters, digits and underscores",
                );
            }
            let dup = params[..pi].iter().any(|o| param_name(o) == Some(n));
            if dup {
                return fail(p(pi, ".parameter_name"), "must be unique in the component");
            }
        }
    }
    Ok(())
}

fn param_name(p: &TemplateParameter) -> Option<&str> {
    match p {
        TemplateParameter::Text { parameter_name, .. }
        | TemplateParameter::Currency { parameter_name, .. }
        | TemplateParameter::DateTime { parameter_name, .. } => parameter_name.as_deref(),
        _ => None,
    }
}

fn validate_button_params(
    ci: usize,
    kind: TemplateButtonKind,
    params: &[TemplateParameter],
) -> VResult {
    let path = || format!("content.components[{ci}].parameters");
    let one = |what: &str| -> VResult {
        if params.len() == 1 {
            Ok(())
        } else {
            fail(path(), format!("exactly one {what} parameter is required"))
        }
    };
    let first = || format!("content.components[{ci}].parameters[0]");
    match kind {
        TemplateButtonKind::QuickReply => {
            one("payload")?;
            match &params[0] {
                TemplateParameter::Payload { payload } => {
                    required(|| format!("{}.payload", first()), payload, 1000)
                }
                _ => fail(
                    format!("{}.type", first()),
                    "a quick_reply button takes a payload",
                ),
            }
        }
        TemplateButtonKind::Url => {
            one("text")?;
            match &params[0] {
                TemplateParameter::Text {
                    text,
                    parameter_name: None,
                } => required(|| format!("{}.text", first()), text, 2000),
                TemplateParameter::Text { .. } => fail(
                    format!("{}.parameter_name", first()),
                    "a url button parameter is positional",
                ),
                _ => fail(
                    format!("{}.type", first()),
                    "a url button takes a text parameter",
                ),
            }
        }
        TemplateButtonKind::CopyCode => {
            one("coupon_code")?;
            match &params[0] {
                TemplateParameter::CouponCode { coupon_code } => required(
                    || format!("{}.coupon_code", first()),
                    coupon_code,
                    TEMPLATE_COUPON_CODE_MAX,
                ),
                _ => fail(
                    format!("{}.type", first()),
                    "a copy_code button takes a coupon_code",
                ),
            }
        }
        TemplateButtonKind::Flow => {
            one("action")?;
            match &params[0] {
                TemplateParameter::Action { action } if action.is_object() => Ok(()),
                TemplateParameter::Action { .. } => {
                    fail(format!("{}.action", first()), "must be an object")
                }
                _ => fail(format!("{}.type", first()), "a flow button takes an action"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Meta's request body
// ---------------------------------------------------------------------------------------------

/// Serialises an [`OutboundMessage`] as Meta's `/messages` request body, borrowing everything.
pub struct GraphBody<'a>(pub &'a OutboundMessage);

#[derive(Serialize)]
struct Context<'a> {
    message_id: &'a str,
}

#[derive(Serialize)]
struct TextObj<'a> {
    preview_url: bool,
    body: &'a str,
}

#[derive(Serialize)]
struct Lang<'a> {
    code: &'a str,
}

#[derive(Serialize)]
struct TemplateObj<'a> {
    name: &'a str,
    language: Lang<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    components: &'a [TemplateComponent],
}

#[derive(Serialize)]
struct TextPart<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct TextHeader<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct Interactive<'a, A: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<TextHeader<'a>>,
    body: TextPart<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    footer: Option<TextPart<'a>>,
    action: A,
}

#[derive(Serialize)]
struct ButtonsAction<'a> {
    buttons: ButtonList<'a>,
}

struct ButtonList<'a>(&'a [ReplyButton]);

impl Serialize for ButtonList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Reply<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            reply: &'a ReplyButton,
        }
        s.collect_seq(self.0.iter().map(|b| Reply {
            kind: "reply",
            reply: b,
        }))
    }
}

#[derive(Serialize)]
struct ListAction<'a> {
    button: &'a str,
    sections: &'a [ListSection],
}

struct MediaObj<'a> {
    source: &'a MediaSource,
    caption: Option<&'a str>,
    filename: Option<&'a str>,
}

impl Serialize for MediaObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.source {
            MediaSource::Id(id) => m.serialize_entry("id", id)?,
            MediaSource::Link(link) => m.serialize_entry("link", link)?,
        }
        if let Some(c) = self.caption {
            m.serialize_entry("caption", c)?;
        }
        if let Some(f) = self.filename {
            m.serialize_entry("filename", f)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct LocationObj<'a> {
    latitude: f64,
    longitude: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
}

#[derive(Serialize)]
struct ReactionObj<'a> {
    message_id: &'a str,
    emoji: &'a str,
}

fn interactive<'a, A: Serialize>(
    kind: &'static str,
    body: &'a str,
    header: Option<&'a str>,
    footer: Option<&'a str>,
    action: A,
) -> Interactive<'a, A> {
    Interactive {
        kind,
        header: header.map(|text| TextHeader { kind: "text", text }),
        body: TextPart { text: body },
        footer: footer.map(|text| TextPart { text }),
        action,
    }
}

impl Serialize for GraphBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("messaging_product", "whatsapp")?;
        map.serialize_entry("recipient_type", "individual")?;
        if is_bsuid(&m.to) {
            map.serialize_entry("recipient", &m.to)?;
        } else {
            map.serialize_entry("to", &m.to)?;
        }
        if let Some(id) = &m.reply_to {
            map.serialize_entry("context", &Context { message_id: id })?;
        }
        if let Some(d) = &m.biz_opaque_callback_data {
            map.serialize_entry("biz_opaque_callback_data", d)?;
        }
        let ty = m.content.graph_type();
        map.serialize_entry("type", ty)?;
        match &m.content {
            OutboundContent::Text { body, preview_url } => map.serialize_entry(
                ty,
                &TextObj {
                    preview_url: *preview_url,
                    body,
                },
            )?,
            OutboundContent::Template(t) => map.serialize_entry(
                ty,
                &TemplateObj {
                    name: &t.name,
                    language: Lang { code: &t.language },
                    components: &t.components,
                },
            )?,
            OutboundContent::Buttons {
                body,
                header,
                footer,
                buttons,
            } => map.serialize_entry(
                ty,
                &interactive(
                    "button",
                    body,
                    header.as_deref(),
                    footer.as_deref(),
                    ButtonsAction {
                        buttons: ButtonList(buttons),
                    },
                ),
            )?,
            OutboundContent::List {
                body,
                header,
                footer,
                button,
                sections,
            } => map.serialize_entry(
                ty,
                &interactive(
                    "list",
                    body,
                    header.as_deref(),
                    footer.as_deref(),
                    ListAction { button, sections },
                ),
            )?,
            OutboundContent::Media {
                source,
                caption,
                filename,
                ..
            } => map.serialize_entry(
                ty,
                &MediaObj {
                    source,
                    caption: caption.as_deref(),
                    filename: filename.as_deref(),
                },
            )?,
            OutboundContent::Location {
                latitude,
                longitude,
                name,
                address,
            } => map.serialize_entry(
                ty,
                &LocationObj {
                    latitude: *latitude,
                    longitude: *longitude,
                    name: name.as_deref(),
                    address: address.as_deref(),
                },
            )?,
            OutboundContent::Contacts { contacts } => map.serialize_entry(ty, contacts)?,
            OutboundContent::Reaction { message_id, emoji } => {
                map.serialize_entry(ty, &ReactionObj { message_id, emoji })?
            }
        }
        map.end()
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(content: OutboundContent) -> OutboundMessage {
        OutboundMessage {
            to: "15551234567".into(),
            reply_to: None,
            biz_opaque_callback_data: None,
            content,
        }
    }

    #[test]
    fn our_json_round_trips_and_reads_the_documented_shape() {
        let input = json!({
            "to": "15551234567",
            "reply_to": "wamid.X",
            "biz_opaque_callback_data": "msg-1",
            "content": {
                "type": "template",
                "name": "order_update",
                "language": "en_US",
                "components": [
                    {"type": "header", "parameters": [{"type": "document", "document": {"link": "https://x.example/a.pdf", "filename": "a.pdf"}}]},
                    {"type": "body", "parameters": [{"type": "text", "text": "Ada", "parameter_name": "name"}]},
                    {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "STOP"}]},
                    {"type": "button", "sub_type": "url", "index": 1, "parameters": [{"type": "text", "text": "abc"}]}
                ]
            }
        });
        let m: OutboundMessage = serde_json::from_value(input).unwrap();
        m.validate().unwrap();
        let again: OutboundMessage =
            serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        assert_eq!(m, again);
        let OutboundContent::Template(t) = &m.content else {
            panic!()
        };
        assert!(matches!(
            &t.components[0],
            TemplateComponent::Header { parameters } if matches!(&parameters[0],
                TemplateParameter::Document { document } if document.source == MediaSource::Link("https://x.example/a.pdf".into()))
        ));
        assert!(matches!(
            t.components[3],
            TemplateComponent::Button { index: 1, .. }
        ));
    }

    #[test]
    fn graph_body_has_meta_envelope_and_bytes_match_json() {
        let mut m = msg(OutboundContent::Text {
            body: "hi".into(),
            preview_url: true,
        });
        m.reply_to = Some("wamid.IN".into());
        m.biz_opaque_callback_data = Some("our-1".into());
        let v = m.to_graph_json();
        assert_eq!(
            v,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "15551234567",
                "context": {"message_id": "wamid.IN"},
                "biz_opaque_callback_data": "our-1",
                "type": "text",
                "text": {"preview_url": true, "body": "hi"}
            })
        );
        let from_bytes: serde_json::Value = serde_json::from_slice(&m.to_graph_bytes()).unwrap();
        assert_eq!(v, from_bytes);
    }

    #[test]
    fn bsuid_goes_to_recipient() {
        assert!(is_bsuid("US.13491208655302741918"));
        assert!(!is_bsuid("15551234567"));
        assert!(!is_bsuid("us.123"));
        let mut m = msg(OutboundContent::Text {
            body: "hi".into(),
            preview_url: false,
        });
        m.to = "US.13491208655302741918".into();
        m.validate().unwrap();
        let v = m.to_graph_json();
        assert_eq!(v["recipient"], "US.13491208655302741918");
        assert!(v.get("to").is_none());
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        // 20 emoji titles are 80 bytes but 20 characters: allowed.
        let title = "😀".repeat(20);
        let m = msg(OutboundContent::Buttons {
            body: "b".into(),
            header: None,
            footer: None,
            buttons: vec![ReplyButton {
                id: "a".into(),
                title: title.clone(),
            }],
        });
        m.validate().unwrap();
        let m = msg(OutboundContent::Buttons {
            body: "b".into(),
            header: None,
            footer: None,
            buttons: vec![ReplyButton {
                id: "a".into(),
                title: format!("{title}😀"),
            }],
        });
        let e = m.validate().unwrap_err();
        assert_eq!(e.field, "content.buttons[0].title");
        assert!(e.to_string().starts_with("content.buttons[0].title: "));
        assert!(e.reason.contains("21"), "{e}");
    }

    #[test]
    fn index_serialises_as_string() {
        let c = TemplateComponent::Button {
            sub_type: TemplateButtonKind::QuickReply,
            index: 7,
            parameters: vec![],
        };
        assert_eq!(serde_json::to_value(&c).unwrap()["index"], "7");
        let mut buf = [0u8; 3];
        assert_eq!(fmt_u8(0, &mut buf), "0");
        assert_eq!(fmt_u8(255, &mut buf), "255");
    }

    #[test]
    fn mixed_named_and_positional_is_refused() {
        let m = msg(OutboundContent::Template(TemplateMessage {
            name: "t".into(),
            language: "en".into(),
            components: vec![TemplateComponent::Body {
                parameters: vec![
                    TemplateParameter::Text {
                        text: "a".into(),
                        parameter_name: Some("first".into()),
                    },
                    TemplateParameter::Text {
                        text: "b".into(),
                        parameter_name: None,
                    },
                ],
            }],
        }));
        let e = m.validate().unwrap_err();
        assert_eq!(
            e.field,
            "content.components[0].parameters[1].parameter_name"
        );
    }

    #[test]
    fn reaction_rules() {
        let ok = msg(OutboundContent::Reaction {
            message_id: "wamid.1".into(),
            emoji: String::new(),
        });
        ok.validate().unwrap();
        let mut reply = ok.clone();
        reply.reply_to = Some("wamid.2".into());
        assert_eq!(reply.validate().unwrap_err().field, "reply_to");
        let bad = msg(OutboundContent::Reaction {
            message_id: "wamid.1".into(),
            emoji: "ok".into(),
        });
        assert_eq!(bad.validate().unwrap_err().field, "content.emoji");
    }

    #[test]
    fn recipient_must_look_like_a_number_or_bsuid() {
        let mut m = msg(OutboundContent::Text {
            body: "x".into(),
            preview_url: false,
        });
        m.to = "+1 (650) 555-1234".into();
        m.validate().unwrap();
        m.to = "someone@example.com".into();
        assert_eq!(m.validate().unwrap_err().field, "to");
        m.to = String::new();
        assert_eq!(m.validate().unwrap_err().field, "to");
    }
}
