//! The bot data model (as stored and as the staff API shows it) and its validation.
//!
//! Validation is complete: every rule is checked and a failure names the offending field with a
//! JSON path into [`Bot`] (`response.menu.options[2].title`). Meta's limits are checked by
//! building the message the response sends and running [`OutboundContent::validate`] on it, so
//! the bots and the staff API's own sends share one definition of them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::meta::outbound::{
    ContactCard, ListRow, ListSection, MediaKind, OutboundContent, ReplyButton, TemplateMessage,
    ValidationError,
};
use crate::store::model::RelType;

use super::normalize::normalize;

/// Longest bot name.
pub const NAME_MAX: usize = 100;
/// Longest trigger phrase / keyword list.
pub const TRIGGER_MAX: usize = 1000;
/// Deepest menu (the main menu is level 1).
pub const MENU_DEPTH_MAX: usize = 5;
/// Most nodes in a flow.
pub const FLOW_NODES_MAX: usize = 200;
/// Longest rating question.
pub const RATING_QUESTION_MAX: usize = 1024;
/// Longest AI instructions.
pub const AI_INSTRUCTIONS_MAX: usize = 8000;
/// Longest synonym group name.
pub const GROUP_NAME_MAX: usize = 100;
/// Most words in a synonym group.
pub const GROUP_WORDS_MAX: usize = 500;
/// Longest word of a synonym group.
pub const GROUP_WORD_MAX: usize = 100;

// ---------------------------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------------------------

/// Trigger (`reply_type`, the seed's codes). Serialized as the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
pub enum Trigger {
    /// The message equals the phrase.
    Exact = 1,
    /// The message contains the phrase (on word boundaries).
    Contains = 2,
    /// First inbound message of the conversation.
    FirstMessage = 3,
    /// Any of the keywords (or of the words of a `@group`).
    Keyword = 4,
    /// Any message while the business is open.
    WithinHours = 5,
    /// Any message while the business is closed.
    OutsideHours = 6,
    /// First inbound message of a 24-hour session.
    SessionStart = 7,
    /// Timer: the customer has been idle for `minutes`.
    Idle = 8,
    /// The customer asks for a human.
    HumanRequest = 9,
    /// Any word of the named synonym groups.
    Synonym = 10,
    /// Timer: the 24-hour window closes in `minutes`.
    WindowClosing = 11,
    /// Timer: no staff reply for `minutes`.
    NoStaffReply = 12,
    /// Event: staff closed the conversation.
    Closed = 13,
}

impl Trigger {
    pub const ALL: [Trigger; 13] = [
        Self::Exact,
        Self::Contains,
        Self::FirstMessage,
        Self::Keyword,
        Self::WithinHours,
        Self::OutsideHours,
        Self::SessionStart,
        Self::Idle,
        Self::HumanRequest,
        Self::Synonym,
        Self::WindowClosing,
        Self::NoStaffReply,
        Self::Closed,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// Fired by the bot timers, not by a message: idle (8), window closing (11), no staff
    /// reply (12).
    pub fn is_timer(self) -> bool {
        matches!(self, Self::Idle | Self::WindowClosing | Self::NoStaffReply)
    }

    /// Evaluated against an inbound message (1–7, 9, 10).
    pub fn is_message(self) -> bool {
        !self.is_timer() && self != Self::Closed
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// An unknown `reply_type` / `bot_type` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown code {0}")]
pub struct UnknownCode(pub u8);

impl TryFrom<u8> for Trigger {
    type Error = UnknownCode;
    fn try_from(code: u8) -> Result<Self, Self::Error> {
        Self::from_code(code).ok_or(UnknownCode(code))
    }
}

impl From<Trigger> for u8 {
    fn from(t: Trigger) -> u8 {
        t.code()
    }
}

/// Response (`bot_type`, the seed's codes 1–7, 11, 12, 13). Serialized as the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
pub enum ResponseKind {
    Text = 1,
    Template = 2,
    Menu = 3,
    Flow = 4,
    Media = 5,
    Location = 6,
    Buttons = 7,
    Contacts = 11,
    Ai = 12,
    Rating = 13,
}

impl ResponseKind {
    pub const ALL: [ResponseKind; 10] = [
        Self::Text,
        Self::Template,
        Self::Menu,
        Self::Flow,
        Self::Media,
        Self::Location,
        Self::Buttons,
        Self::Contacts,
        Self::Ai,
        Self::Rating,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The `type` tag of the matching [`BotResponse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Template => "template",
            Self::Menu => "menu",
            Self::Flow => "flow",
            Self::Media => "media",
            Self::Location => "location",
            Self::Buttons => "buttons",
            Self::Contacts => "contacts",
            Self::Ai => "ai",
            Self::Rating => "rating",
        }
    }

    /// Keeps a conversation state (menu position, flow position, pending rating) or hands the
    /// message to the AI: only one such response answers a message.
    pub fn is_stateful(self) -> bool {
        matches!(self, Self::Menu | Self::Flow | Self::Rating | Self::Ai)
    }
}

impl TryFrom<u8> for ResponseKind {
    type Error = UnknownCode;
    fn try_from(code: u8) -> Result<Self, Self::Error> {
        Self::from_code(code).ok_or(UnknownCode(code))
    }
}

impl From<ResponseKind> for u8 {
    fn from(t: ResponseKind) -> u8 {
        t.code()
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl fmt::Display for ResponseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

    fn codes(codes: Vec<u8>, description: &str) -> RefOr<Schema> {
        RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some(codes))
                .description(Some(description))
                .build(),
        ))
    }

    impl utoipa::PartialSchema for super::Trigger {
        fn schema() -> RefOr<Schema> {
            codes(
                super::Trigger::ALL.iter().map(|t| t.code()).collect(),
                "Trigger (`reply_type`): 1 exact, 2 contains, 3 first message, 4 keyword, \
                 5 within business hours, 6 outside business hours, 7 session start, 8 idle, \
                 9 human request, 10 synonym, 11 window closing, 12 no staff reply, 13 closed",
            )
        }
    }
    impl utoipa::ToSchema for super::Trigger {}

    impl utoipa::PartialSchema for super::ResponseKind {
        fn schema() -> RefOr<Schema> {
            codes(
                super::ResponseKind::ALL.iter().map(|t| t.code()).collect(),
                "Response (`bot_type`): 1 text, 2 template, 3 menu, 4 flow, 5 media, \
                 6 location, 7 buttons, 11 contacts, 12 AI, 13 rating",
            )
        }
    }
    impl utoipa::ToSchema for super::ResponseKind {}
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// What a bot answers, by kind (stored with `"type"`: "text", "template", …).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BotResponse {
    /// Placeholders allowed.
    Text {
        text: String,
    },
    /// Text parameters may hold placeholders.
    Template {
        template: TemplateMessage,
    },
    Menu {
        menu: MenuNode,
        #[serde(default)]
        settings: MenuSettings,
    },
    Flow {
        nodes: Vec<FlowNode>,
        edges: Vec<FlowEdge>,
    },
    Media {
        kind: MediaKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
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
    Buttons {
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    Contacts {
        contacts: Vec<ContactCard>,
    },
    Ai {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instructions: Option<String>,
    },
    Rating {
        question: String,
        #[serde(default)]
        style: RatingStyle,
    },
}

impl BotResponse {
    pub fn kind(&self) -> ResponseKind {
        match self {
            Self::Text { .. } => ResponseKind::Text,
            Self::Template { .. } => ResponseKind::Template,
            Self::Menu { .. } => ResponseKind::Menu,
            Self::Flow { .. } => ResponseKind::Flow,
            Self::Media { .. } => ResponseKind::Media,
            Self::Location { .. } => ResponseKind::Location,
            Self::Buttons { .. } => ResponseKind::Buttons,
            Self::Contacts { .. } => ResponseKind::Contacts,
            Self::Ai { .. } => ResponseKind::Ai,
            Self::Rating { .. } => ResponseKind::Rating,
        }
    }
}

/// How a rating is asked.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatingStyle {
    /// A list of five rows (5 to 1 stars).
    #[default]
    List,
    /// Three reply buttons: 1, 3 and 5 stars.
    Buttons,
}

/// One level of a list menu.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuNode {
    /// Placeholders allowed.
    pub body: String,
    /// Label of the list button (≤ 20).
    pub button: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    pub options: Vec<MenuOption>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuOption {
    /// Unique in its level; the list row id.
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Text sent when chosen (placeholders allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub submenu: Option<MenuNode>,
    /// Choosing it hands the conversation over to a human.
    #[serde(default)]
    pub handover: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MenuSettings {
    /// Minutes of inactivity after which the position is forgotten (default 30).
    pub expire_minutes: u32,
    /// Words that go back one level (default `["0", "back", "volver", "zuruck"]`), compared
    /// normalized.
    pub back: Vec<String>,
    /// Words that go to the main menu (default `["menu", "#", "main"]`).
    pub main: Vec<String>,
    /// Answer to an invalid choice (default "Sorry, that is not one of the options.").
    pub invalid: String,
}

impl Default for MenuSettings {
    fn default() -> Self {
        Self {
            expire_minutes: 30,
            back: ["0", "back", "volver", "zuruck"].map(String::from).to_vec(),
            main: ["menu", "#", "main"].map(String::from).to_vec(),
            invalid: "Sorry, that is not one of the options.".into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Flows (React Flow's shape)
// ---------------------------------------------------------------------------------------------

/// A node, in React Flow's shape (`{id, type, data, position}`), so a visual editor loads and
/// saves it as is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowNode {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: FlowNodeKind,
    #[serde(default)]
    pub data: FlowNodeData,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<FlowPosition>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FlowPosition {
    pub x: f64,
    pub y: f64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowNodeKind {
    /// Where the flow begins (exactly one); its `text`, if any, is sent.
    Start,
    /// Sends `text`, then goes on.
    Message,
    /// Asks `text` with `options` (≤ 3: buttons, else a list) and waits for the choice.
    Question,
    /// Asks `text` and waits for an answer stored into `variable`.
    Input,
    /// Goes on by the first true condition, else by the `else` edge.
    Condition,
    /// Sets `variable` to `value`.
    SetVariable,
    /// Hands the conversation over to a human (ends the flow).
    Handover,
    /// Asks the CRM for a ticket, then goes on (or ends).
    Ticket,
    /// Ends the flow (sending `text`, if any).
    End,
}

impl FlowNodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Message => "message",
            Self::Question => "question",
            Self::Input => "input",
            Self::Condition => "condition",
            Self::SetVariable => "set_variable",
            Self::Handover => "handover",
            Self::Ticket => "ticket",
            Self::End => "end",
        }
    }
}

/// A node's settings; all optional, their meaning by kind (validation checks what each kind
/// needs).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowNodeData {
    /// Message / question / input prompt (placeholders and `{{var}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Question: ≤ 3 → buttons, else a list (≤ 10); each choice has an edge whose
    /// `sourceHandle` is the choice id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<FlowChoice>,
    /// Input: the variable the answer is stored into; set_variable: its name; question: the
    /// variable that receives the chosen title (optional).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// Input: what the answer must be (default text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<InputValidation>,
    /// Input / question: the reply to an invalid answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// set_variable: the value (may use `{{var}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Condition: the first true one wins → the edge with `sourceHandle` = its id; else the
    /// edge with `sourceHandle` "else".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<FlowCondition>,
    /// Handover: the reason given to staff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Ticket subject (may use `{{var}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Ticket description (may use `{{var}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Ticket priority (default "medium").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowChoice {
    pub id: String,
    pub title: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowCondition {
    pub id: String,
    pub variable: String,
    pub op: ConditionOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionOp {
    /// Equal after normalisation (case and accents ignored).
    Equals,
    NotEquals,
    /// The normalized value occurs in the normalized variable.
    Contains,
    /// The variable is set and not blank.
    Exists,
    /// Numeric comparison (false when either side is not a number).
    GreaterThan,
    LessThan,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputValidation {
    /// Any non-blank text.
    #[default]
    Text,
    Email,
    /// A number (`12`, `-3.5`, `3,5`).
    Number,
    /// A phone number: 6 to 15 digits, `+`, spaces, dashes, dots and brackets allowed.
    Phone,
    /// `YYYY-MM-DD` or `DD/MM/YYYY` (stored as `YYYY-MM-DD`).
    Date,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowEdge {
    pub id: String,
    pub source: String,
    pub target: String,
    #[serde(
        default,
        rename = "sourceHandle",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_handle: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Business hours, bots, synonym groups
// ---------------------------------------------------------------------------------------------

/// Business hours: `"mon-fri 09:00-17:00; sat 10:00-14:00"` (days `mon`..`sun`, ranges and
/// lists; a range across midnight such as `22:00-02:00` belongs to the day it starts), an IANA
/// zone, and holidays (`YYYY-MM-DD`, closed all day, in the zone).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    pub schedule: String,
    pub timezone: String,
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// A bot as stored and as the API shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bot {
    pub id: String,
    pub name: String,
    pub reply_type: Trigger,
    /// 1, 2: the phrase; 4: keywords separated by commas (a keyword may name a synonym group
    /// as `@group`); 9: keywords (empty → defaults: human, agent, person, operator, humano,
    /// agente, asesor…); 10: synonym group names separated by commas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// 8: idle minutes; 11: minutes before the 24-hour window closes; 12: minutes without a
    /// staff reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    /// 5, 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHours>,
    pub bot_type: ResponseKind,
    pub response: BotResponse,
    /// `rel_type`s it answers (empty: all).
    #[serde(default)]
    pub rel_types: Vec<RelType>,
    /// Lower first (ties: id).
    #[serde(default)]
    pub priority: i32,
    pub is_bot_active: bool,
    /// Marketing template: never sent to a customer who opted out.
    #[serde(default)]
    pub marketing: bool,
    #[serde(default)]
    pub send_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<i64>,
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
}

impl Bot {
    /// Does it answer customers of this `rel_type`?
    pub fn answers(&self, rel_type: RelType) -> bool {
        self.rel_types.is_empty() || self.rel_types.contains(&rel_type)
    }
}

/// A named group of words that mean the same (triggers 4 and 10).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynonymGroup {
    pub id: String,
    pub name: String,
    pub words: Vec<String>,
    #[serde(default)]
    pub version: i64,
}

/// A bot (or synonym group) that breaks a rule, naming the field by its JSON path
/// (`response.menu.options[2].title`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BotInvalid {
    pub field: String,
    pub reason: String,
}

impl BotInvalid {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub(crate) type Check = Result<(), BotInvalid>;

pub(crate) fn fail(field: impl Into<String>, reason: impl Into<String>) -> Check {
    Err(BotInvalid::new(field, reason))
}

/// Non-blank text of at most `max` characters.
pub(crate) fn required(field: impl FnOnce() -> String, s: &str, max: usize) -> Check {
    if s.trim().is_empty() {
        return fail(field(), "must not be empty");
    }
    at_most(field, s, max)
}

/// At most `max` characters (Unicode scalar values, as Meta counts).
pub(crate) fn at_most(field: impl FnOnce() -> String, s: &str, max: usize) -> Check {
    if s.len() <= max {
        return Ok(());
    }
    let n = s.chars().count();
    if n > max {
        return fail(
            field(),
            format!("must be at most {max} characters (got {n})"),
        );
    }
    Ok(())
}

/// Optional text: absent is fine, present must be non-blank and within `max`.
pub(crate) fn optional(field: impl FnOnce() -> String, s: Option<&str>, max: usize) -> Check {
    match s {
        None => Ok(()),
        Some(s) => required(field, s, max),
    }
}

/// The items of a comma-separated list, trimmed, blanks left out.
pub(crate) fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split([',', ';', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The synonym group called `name` (compared normalized; a leading `@` is ignored), or whose
/// id is `name`.
pub(crate) fn find_group<'a>(groups: &'a [SynonymGroup], name: &str) -> Option<&'a SynonymGroup> {
    let name = name.trim().trim_start_matches('@').trim();
    if name.is_empty() {
        return None;
    }
    let n = normalize(name);
    groups
        .iter()
        .find(|g| g.id == name)
        .or_else(|| groups.iter().find(|g| normalize(&g.name) == n))
}

/// Default keywords of a human request (trigger 9 with no trigger).
pub const HUMAN_KEYWORDS: &[&str] = &[
    "human",
    "agent",
    "person",
    "operator",
    "representative",
    "real person",
    "talk to someone",
    "humano",
    "agente",
    "asesor",
    "asesora",
    "persona",
    "operador",
    "ejecutivo",
    "atendente",
    "mensch",
    "mitarbeiter",
    "berater",
];

/// A variable name of a flow: `[a-z_][a-z0-9_]{0,31}`.
pub fn is_variable_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

impl SynonymGroup {
    pub fn validate(&self) -> Result<(), BotInvalid> {
        required(|| "name".into(), &self.name, GROUP_NAME_MAX)?;
        if normalize(&self.name).is_empty() {
            return fail("name", "must contain letters or digits");
        }
        if self.name.contains(',') {
            return fail("name", "must not contain commas");
        }
        if self.words.is_empty() {
            return fail("words", "at least one word is required");
        }
        if self.words.len() > GROUP_WORDS_MAX {
            return fail(
                "words",
                format!("at most {GROUP_WORDS_MAX} words (got {})", self.words.len()),
            );
        }
        for (i, w) in self.words.iter().enumerate() {
            required(|| format!("words[{i}]"), w, GROUP_WORD_MAX)?;
            if normalize(w).is_empty() {
                return fail(format!("words[{i}]"), "must contain letters or digits");
            }
        }
        Ok(())
    }
}

impl Bot {
    /// Every rule of a bot, the first broken one named by its JSON path.
    pub fn validate(&self, synonyms: &[SynonymGroup]) -> Result<(), BotInvalid> {
        required(|| "name".into(), &self.name, NAME_MAX)?;
        self.validate_trigger(synonyms)?;
        if self.bot_type != self.response.kind() {
            return fail(
                "bot_type",
                format!(
                    "is {} ({}) but the response is a {} ({})",
                    self.bot_type.code(),
                    self.bot_type.as_str(),
                    self.response.kind().as_str(),
                    self.response.kind().code()
                ),
            );
        }
        self.response.validate()
    }

    fn validate_trigger(&self, synonyms: &[SynonymGroup]) -> Check {
        use Trigger::*;
        let trigger = self.trigger.as_deref().filter(|t| !t.trim().is_empty());
        if let Some(t) = trigger {
            at_most(|| "trigger".into(), t, TRIGGER_MAX)?;
        }
        match self.reply_type {
            Exact | Contains => {
                let Some(t) = trigger else {
                    return fail("trigger", "the phrase is required for this trigger");
                };
                if normalize(t).is_empty() {
                    return fail("trigger", "must contain letters or digits");
                }
            }
            Keyword | Synonym | HumanRequest => {
                let Some(t) = trigger else {
                    if self.reply_type == HumanRequest {
                        return Ok(());
                    }
                    return fail(
                        "trigger",
                        if self.reply_type == Keyword {
                            "keywords are required for this trigger"
                        } else {
                            "synonym group names are required for this trigger"
                        },
                    );
                };
                let mut any = false;
                for item in split_list(t) {
                    any = true;
                    let group = self.reply_type == Synonym || item.starts_with('@');
                    if group {
                        if find_group(synonyms, item).is_none() {
                            return fail(
                                "trigger",
                                format!(
                                    "no synonym group is called {:?}",
                                    item.trim_start_matches('@')
                                ),
                            );
                        }
                    } else if normalize(item).is_empty() {
                        return fail(
                            "trigger",
                            format!("keyword {item:?} has no letters or digits"),
                        );
                    }
                }
                if !any {
                    return fail("trigger", "must name at least one keyword or group");
                }
            }
            Idle | NoStaffReply => minutes(self.minutes, 1440)?,
            WindowClosing => minutes(self.minutes, 1439)?,
            WithinHours | OutsideHours => match &self.business_hours {
                None => return fail("business_hours", "required for this trigger"),
                Some(h) => {
                    h.compile()?;
                }
            },
            FirstMessage | SessionStart | Closed => {}
        }
        Ok(())
    }
}

fn minutes(m: Option<u32>, max: u32) -> Check {
    match m {
        None => fail("minutes", "required for this trigger"),
        Some(m) if (1..=max).contains(&m) => Ok(()),
        Some(m) => fail("minutes", format!("must be 1 to {max} (got {m})")),
    }
}

/// Maps a field of an [`OutboundContent`] validation (`content.x`) onto the response.
fn outbound(e: ValidationError, map: impl Fn(&str) -> String) -> BotInvalid {
    let rest = e.field.strip_prefix("content.").unwrap_or(&e.field);
    BotInvalid::new(map(rest), e.reason)
}

impl BotResponse {
    /// Meta's limits and the response's own rules, fields named `response.…`.
    pub fn validate(&self) -> Result<(), BotInvalid> {
        let direct = |f: &str| format!("response.{f}");
        match self {
            Self::Text { text } => required(
                || "response.text".into(),
                text,
                crate::meta::outbound::TEXT_BODY_MAX,
            ),
            Self::Template { template } => {
                required(|| "response.template.name".into(), &template.name, 512)?;
                required(
                    || "response.template.language".into(),
                    &template.language,
                    16,
                )?;
                template
                    .validate()
                    .map_err(|e| outbound(e, |f| format!("response.template.{f}")))
            }
            Self::Menu { menu, settings } => {
                validate_menu(menu, "response.menu", 1)?;
                validate_menu_settings(settings)
            }
            Self::Flow { nodes, edges } => super::flow::validate_flow(nodes, edges),
            Self::Media { link, media_id, .. } => {
                match (link.as_deref(), media_id.as_deref()) {
                    (None, None) => {
                        return fail("response.link", "either link or media_id is required");
                    }
                    (Some(_), Some(_)) => {
                        return fail(
                            "response.media_id",
                            "give either link or media_id, not both",
                        );
                    }
                    _ => {}
                }
                let content = super::render::raw_content(self).expect("media renders");
                content.validate().map_err(|e| {
                    outbound(e, |f| match f {
                        "source.link" => "response.link".into(),
                        "source.id" => "response.media_id".into(),
                        f => direct(f),
                    })
                })
            }
            Self::Location { .. } | Self::Buttons { .. } | Self::Contacts { .. } => {
                let content = super::render::raw_content(self).expect("renders");
                content.validate().map_err(|e| outbound(e, direct))
            }
            Self::Ai { instructions } => optional(
                || "response.instructions".into(),
                instructions.as_deref(),
                AI_INSTRUCTIONS_MAX,
            ),
            Self::Rating { question, .. } => {
                required(|| "response.question".into(), question, RATING_QUESTION_MAX)
            }
        }
    }
}

fn validate_menu(node: &MenuNode, path: &str, depth: usize) -> Check {
    if depth > MENU_DEPTH_MAX {
        return fail(
            path,
            format!("menus nest at most {MENU_DEPTH_MAX} levels deep"),
        );
    }
    if node.options.is_empty() {
        return fail(format!("{path}.options"), "at least one option is required");
    }
    for (i, o) in node.options.iter().enumerate() {
        let op = || format!("{path}.options[{i}]");
        if node.options[..i].iter().any(|p| p.id == o.id) && !o.id.trim().is_empty() {
            return fail(format!("{}.id", op()), "must be unique in its menu");
        }
        if let Some(r) = &o.reply {
            required(
                || format!("{}.reply", op()),
                r,
                crate::meta::outbound::TEXT_BODY_MAX,
            )?;
        }
        if o.reply.is_none() && o.submenu.is_none() && !o.handover {
            return fail(
                op(),
                "needs a reply, a submenu or a handover (choosing it would do nothing)",
            );
        }
    }
    // Meta's list limits, on the list this level is sent as.
    let list = OutboundContent::List {
        body: node.body.clone(),
        header: node.header.clone(),
        footer: node.footer.clone(),
        button: node.button.clone(),
        sections: vec![ListSection {
            title: None,
            rows: node
                .options
                .iter()
                .map(|o| ListRow {
                    id: o.id.clone(),
                    title: o.title.clone(),
                    description: o.description.clone(),
                })
                .collect(),
        }],
    };
    list.validate().map_err(|e| {
        outbound(e, |f| {
            if f == "sections" {
                return format!("{path}.options");
            }
            if let Some(rest) = f.strip_prefix("sections[0].rows") {
                return format!("{path}.options{rest}");
            }
            format!("{path}.{f}")
        })
    })?;
    for (i, o) in node.options.iter().enumerate() {
        if let Some(sub) = &o.submenu {
            validate_menu(sub, &format!("{path}.options[{i}].submenu"), depth + 1)?;
        }
    }
    Ok(())
}

fn validate_menu_settings(s: &MenuSettings) -> Check {
    if !(1..=10_080).contains(&s.expire_minutes) {
        return fail(
            "response.settings.expire_minutes",
            "must be 1 to 10080 (a week)",
        );
    }
    for (name, words) in [("back", &s.back), ("main", &s.main)] {
        for (i, w) in words.iter().enumerate() {
            required(|| format!("response.settings.{name}[{i}]"), w, 50)?;
        }
    }
    required(
        || "response.settings.invalid".into(),
        &s.invalid,
        crate::meta::outbound::TEXT_BODY_MAX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text_bot(id: &str, t: Trigger, trigger: Option<&str>, text: &str) -> Bot {
        Bot {
            id: id.into(),
            name: format!("bot {id}"),
            reply_type: t,
            trigger: trigger.map(String::from),
            minutes: None,
            business_hours: None,
            bot_type: ResponseKind::Text,
            response: BotResponse::Text { text: text.into() },
            rel_types: vec![],
            priority: 0,
            is_bot_active: true,
            marketing: false,
            send_count: 0,
            last_fired_at: None,
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn groups() -> Vec<SynonymGroup> {
        vec![SynonymGroup {
            id: "g1".into(),
            name: "Greetings".into(),
            words: vec!["hi".into(), "hello".into(), "hola".into()],
            version: 1,
        }]
    }

    #[test]
    fn codes_serialize_as_numbers() {
        let b = text_bot("a", Trigger::Keyword, Some("price"), "x");
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["reply_type"], 4);
        assert_eq!(v["bot_type"], 1);
        assert_eq!(v["response"], json!({"type": "text", "text": "x"}));
        let back: Bot = serde_json::from_value(v).unwrap();
        assert_eq!(back, b);
        for t in Trigger::ALL {
            assert_eq!(Trigger::try_from(t.code()).unwrap(), t);
        }
        for k in ResponseKind::ALL {
            assert_eq!(ResponseKind::try_from(k.code()).unwrap(), k);
        }
        assert!(serde_json::from_value::<Trigger>(json!(14)).is_err());
        assert!(serde_json::from_value::<ResponseKind>(json!(8)).is_err());
        assert!(Trigger::Idle.is_timer() && Trigger::WindowClosing.is_timer());
        assert!(Trigger::NoStaffReply.is_timer() && !Trigger::Closed.is_timer());
        assert!(!Trigger::Exact.is_timer());
    }

    #[test]
    fn deserializes_the_documented_shapes() {
        let b: Bot = serde_json::from_value(json!({
            "id": "b1", "name": "Menu", "reply_type": 1, "trigger": "menu", "bot_type": 3,
            "is_bot_active": true,
            "response": {"type": "menu", "menu": {"body": "Choose", "button": "Options",
                "options": [{"id": "1", "title": "Sales", "reply": "Sales here"}]}}
        }))
        .unwrap();
        b.validate(&[]).unwrap();
        let BotResponse::Menu { settings, .. } = &b.response else {
            panic!()
        };
        assert_eq!(settings, &MenuSettings::default());
        let f: BotResponse = serde_json::from_value(json!({
            "type": "flow",
            "nodes": [
                {"id": "s", "type": "start", "position": {"x": 0, "y": 0}},
                {"id": "q", "type": "question", "data": {"text": "Pick", "options": [{"id": "a", "title": "A"}]}},
                {"id": "e", "type": "end"}
            ],
            "edges": [
                {"id": "e1", "source": "s", "target": "q"},
                {"id": "e2", "source": "q", "target": "e", "sourceHandle": "a"}
            ]
        }))
        .unwrap();
        f.validate().unwrap();
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["edges"][1]["sourceHandle"], "a");
        assert_eq!(v["nodes"][1]["type"], "question");
    }

    fn err(b: &Bot) -> String {
        b.validate(&groups()).unwrap_err().field
    }

    #[test]
    fn validation_names_the_field() {
        let mut b = text_bot("a", Trigger::Exact, Some("hi"), "x");
        b.validate(&groups()).unwrap();
        b.name = " ".into();
        assert_eq!(err(&b), "name");
        b.name = "n".repeat(101);
        assert_eq!(err(&b), "name");
        b.name = "ok".into();
        b.trigger = None;
        assert_eq!(err(&b), "trigger");
        b.trigger = Some("!!!".into());
        assert_eq!(err(&b), "trigger");
        b.trigger = Some("x".repeat(1001));
        assert_eq!(err(&b), "trigger");
        b.trigger = Some("hi".into());
        b.bot_type = ResponseKind::Menu;
        assert_eq!(err(&b), "bot_type");
        b.bot_type = ResponseKind::Text;
        b.response = BotResponse::Text {
            text: "x".repeat(4097),
        };
        assert_eq!(err(&b), "response.text");
    }

    #[test]
    fn keyword_and_synonym_triggers_need_existing_groups() {
        let mut b = text_bot("a", Trigger::Keyword, Some("price, @greetings"), "x");
        b.validate(&groups()).unwrap();
        b.trigger = Some("price, @nope".into());
        assert_eq!(err(&b), "trigger");
        b.trigger = Some(" , ".into());
        assert_eq!(err(&b), "trigger");
        let mut s = text_bot("s", Trigger::Synonym, Some("greetings"), "x");
        s.validate(&groups()).unwrap();
        s.trigger = Some("g1".into());
        s.validate(&groups()).unwrap();
        s.trigger = Some("greetings, farewells".into());
        assert_eq!(err(&s), "trigger");
        s.trigger = None;
        assert_eq!(err(&s), "trigger");
        let h = text_bot("h", Trigger::HumanRequest, None, "x");
        h.validate(&[]).unwrap();
    }

    #[test]
    fn timers_need_minutes_in_range() {
        for (t, max) in [
            (Trigger::Idle, 1440),
            (Trigger::WindowClosing, 1439),
            (Trigger::NoStaffReply, 1440),
        ] {
            let mut b = text_bot("a", t, None, "x");
            assert_eq!(err(&b), "minutes");
            b.minutes = Some(0);
            assert_eq!(err(&b), "minutes");
            b.minutes = Some(max + 1);
            assert_eq!(err(&b), "minutes");
            b.minutes = Some(max);
            b.validate(&[]).unwrap();
        }
    }

    #[test]
    fn hours_triggers_need_valid_hours() {
        let mut b = text_bot("a", Trigger::WithinHours, None, "x");
        assert_eq!(err(&b), "business_hours");
        b.business_hours = Some(BusinessHours {
            schedule: "mon-fri 09:00-17:00".into(),
            timezone: "Europe/Madrid".into(),
            holidays: vec![],
        });
        b.validate(&[]).unwrap();
        b.business_hours.as_mut().unwrap().timezone = "Mars/Olympus".into();
        assert_eq!(err(&b), "business_hours.timezone");
        b.business_hours.as_mut().unwrap().timezone = "UTC".into();
        b.business_hours.as_mut().unwrap().schedule = "mon-fri 9-17".into();
        assert_eq!(err(&b), "business_hours.schedule");
        b.business_hours.as_mut().unwrap().schedule = "mon 09:00-10:00".into();
        b.business_hours.as_mut().unwrap().holidays = vec!["2025-02-30".into()];
        assert_eq!(err(&b), "business_hours.holidays[0]");
    }

    fn menu_bot(menu: MenuNode) -> Bot {
        let mut b = text_bot("m", Trigger::Exact, Some("menu"), "");
        b.bot_type = ResponseKind::Menu;
        b.response = BotResponse::Menu {
            menu,
            settings: MenuSettings::default(),
        };
        b
    }

    fn opt(id: &str, title: &str) -> MenuOption {
        MenuOption {
            id: id.into(),
            title: title.into(),
            description: None,
            reply: Some(format!("you chose {title}")),
            submenu: None,
            handover: false,
        }
    }

    fn level(options: Vec<MenuOption>) -> MenuNode {
        MenuNode {
            body: "Choose".into(),
            button: "Options".into(),
            header: None,
            footer: None,
            options,
        }
    }

    #[test]
    fn menu_rules() {
        let mut m = level(vec![opt("1", "Sales"), opt("2", "Support")]);
        menu_bot(m.clone()).validate(&[]).unwrap();
        m.options[1].id = "1".into();
        assert_eq!(err(&menu_bot(m.clone())), "response.menu.options[1].id");
        m.options[1].id = "2".into();
        m.options[1].title = "t".repeat(25);
        assert_eq!(err(&menu_bot(m.clone())), "response.menu.options[1].title");
        m.options[1].title = "Support".into();
        m.options[0].description = Some("d".repeat(73));
        assert_eq!(
            err(&menu_bot(m.clone())),
            "response.menu.options[0].description"
        );
        m.options[0].description = None;
        m.button = "b".repeat(21);
        assert_eq!(err(&menu_bot(m.clone())), "response.menu.button");
        m.button = "Options".into();
        m.header = Some("h".repeat(61));
        assert_eq!(err(&menu_bot(m.clone())), "response.menu.header");
        m.header = None;
        let many = (0..11).map(|i| opt(&i.to_string(), "x")).collect();
        assert_eq!(err(&menu_bot(level(many))), "response.menu.options");
        assert_eq!(err(&menu_bot(level(vec![]))), "response.menu.options");
        let mut nothing = opt("1", "x");
        nothing.reply = None;
        assert_eq!(
            err(&menu_bot(level(vec![nothing]))),
            "response.menu.options[0]"
        );
        // Depth: 5 levels are fine, 6 are not.
        let mut deep = level(vec![opt("a", "leaf")]);
        for _ in 0..4 {
            let mut o = opt("a", "more");
            o.submenu = Some(deep);
            deep = level(vec![o]);
        }
        menu_bot(deep.clone()).validate(&[]).unwrap();
        let mut o = opt("a", "more");
        o.submenu = Some(deep);
        let e = err(&menu_bot(level(vec![o])));
        assert!(e.ends_with(".submenu"), "{e}");
        // A nested error names the nested field.
        let mut sub = opt("s", "Sub");
        sub.submenu = Some(level(vec![opt("x", "y"), opt("x", "z")]));
        assert_eq!(
            err(&menu_bot(level(vec![sub]))),
            "response.menu.options[0].submenu.options[1].id"
        );
    }

    #[test]
    fn response_limits() {
        let mut b = text_bot("a", Trigger::Exact, Some("x"), "");
        let mut check = |r: BotResponse| {
            b.bot_type = r.kind();
            b.response = r;
            b.validate(&[]).err().map(|e| e.field)
        };
        let btn = |id: &str, t: &str| ReplyButton {
            id: id.into(),
            title: t.into(),
        };
        let buttons = |bs: Vec<ReplyButton>| BotResponse::Buttons {
            body: "b".into(),
            header: None,
            footer: None,
            buttons: bs,
        };
        assert_eq!(check(buttons(vec![btn("a", "A")])), None);
        assert_eq!(check(buttons(vec![])).as_deref(), Some("response.buttons"));
        assert_eq!(
            check(buttons(vec![
                btn("a", "A"),
                btn("b", "B"),
                btn("c", "C"),
                btn("d", "D")
            ]))
            .as_deref(),
            Some("response.buttons")
        );
        assert_eq!(
            check(buttons(vec![btn("a", "A"), btn("a", "B")])).as_deref(),
            Some("response.buttons[1].id")
        );
        assert_eq!(
            check(buttons(vec![btn("a", &"t".repeat(21))])).as_deref(),
            Some("response.buttons[0].title")
        );
        assert_eq!(
            check(buttons(vec![btn(&"i".repeat(257), "A")])).as_deref(),
            Some("response.buttons[0].id")
        );
        let media = |link: Option<&str>, id: Option<&str>| BotResponse::Media {
            kind: MediaKind::Image,
            link: link.map(String::from),
            media_id: id.map(String::from),
            caption: None,
            filename: None,
        };
        assert_eq!(check(media(Some("https://x.example/a.png"), None)), None);
        assert_eq!(check(media(None, Some("123"))), None);
        assert_eq!(check(media(None, None)).as_deref(), Some("response.link"));
        assert_eq!(
            check(media(Some("https://x.example/a.png"), Some("1"))).as_deref(),
            Some("response.media_id")
        );
        assert_eq!(
            check(media(Some("http://x.example/a.png"), None)).as_deref(),
            Some("response.link")
        );
        let tpl = |name: &str, lang: &str| BotResponse::Template {
            template: TemplateMessage {
                name: name.into(),
                language: lang.into(),
                components: vec![],
            },
        };
        assert_eq!(check(tpl("hello_world", "en_US")), None);
        assert_eq!(
            check(tpl("", "en_US")).as_deref(),
            Some("response.template.name")
        );
        assert_eq!(
            check(tpl("hello", "")).as_deref(),
            Some("response.template.language")
        );
        assert_eq!(
            check(BotResponse::Location {
                latitude: 91.0,
                longitude: 0.0,
                name: None,
                address: None
            })
            .as_deref(),
            Some("response.latitude")
        );
        assert_eq!(
            check(BotResponse::Contacts { contacts: vec![] }).as_deref(),
            Some("response.contacts")
        );
        assert_eq!(
            check(BotResponse::Rating {
                question: String::new(),
                style: RatingStyle::List
            })
            .as_deref(),
            Some("response.question")
        );
        assert_eq!(
            check(BotResponse::Rating {
                question: "q".repeat(1025),
                style: RatingStyle::List
            })
            .as_deref(),
            Some("response.question")
        );
        assert_eq!(check(BotResponse::Ai { instructions: None }), None);
    }

    #[test]
    fn synonym_group_rules() {
        let mut g = groups().remove(0);
        g.validate().unwrap();
        g.words.push(" ".into());
        assert_eq!(g.validate().unwrap_err().field, "words[3]");
        g.words.clear();
        assert_eq!(g.validate().unwrap_err().field, "words");
        g.words = vec!["a".into()];
        g.name = "a,b".into();
        assert_eq!(g.validate().unwrap_err().field, "name");
    }

    #[test]
    fn variable_names() {
        assert!(is_variable_name("email"));
        assert!(is_variable_name("_x1"));
        assert!(!is_variable_name("1x"));
        assert!(!is_variable_name("Email"));
        assert!(!is_variable_name(""));
        assert!(!is_variable_name(&"a".repeat(33)));
    }
}
