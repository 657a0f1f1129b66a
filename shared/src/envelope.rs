//! The versioned queue envelope, and the split of one webhook notification into envelopes.
//!
//! One envelope per message, status, error set, echo, preference or other change, each carrying
//! its item's raw JSON verbatim (so no field Meta adds is ever dropped) plus the context the
//! consumer needs (business account, number, matching contact).
//! FIFO group = the conversation (business number + customer), dedupe id = the wamid; both are
//! hex SHA-256 digests so they always fit SQS's 128-character limit and character set.
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::meta::webhook::{ChangeValue, Contact, Notification};

pub const ENVELOPE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeKind {
    /// One `messages[]` item of the `messages` field.
    Message,
    /// One `statuses[]` item.
    Status,
    /// The value-level `errors[]` of a `messages` change.
    Errors,
    /// One `message_echoes[]` item of `smb_message_echoes`.
    Echo,
    /// One `user_preferences[]` item.
    UserPreference,
    /// A `message_template_status_update` change value.
    TemplateStatus,
    /// An `account_update` change value.
    AccountUpdate,
}

/// What goes on the inbound queue (owned form, as the consumer reads it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub v: u32,
    pub kind: EnvelopeKind,
    /// `entry[].id`: the WhatsApp Business Account id.
    pub waba_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    /// The `contacts[]` entry matching the sender of a message (or the preference's user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// When the webhook received the notification (Unix ms); Meta's own timestamps are in the item.
    pub received_at_ms: i64,
    /// The item exactly as Meta sent it.
    pub item: Box<RawValue>,
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    v: u32,
    kind: EnvelopeKind,
    waba_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_number_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_phone_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<&'a Contact>,
    received_at_ms: i64,
    item: &'a RawValue,
}

/// One envelope ready for `SendMessageBatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEnvelope {
    pub group_id: String,
    pub dedupe_id: String,
    pub body: String,
    /// For logs: the wamid or the change kind.
    pub label: String,
}

/// Something in the notification that could not be understood: archived raw, then acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparsed {
    pub reason: String,
    pub raw: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Split {
    pub queued: Vec<QueuedEnvelope>,
    pub unparsed: Vec<Unparsed>,
}

pub fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// FIFO group of a conversation: business number + customer identifier as Meta names it
/// (wa_id, or the BSUID for username users).
pub fn conversation_group(phone_number_id: &str, customer: &str) -> String {
    sha256_hex(&["conv", phone_number_id, customer])
}

/// FIFO group, dedupe id and log label of one envelope.
struct Ids {
    group_id: String,
    dedupe_id: String,
    label: String,
}

struct Ctx<'a> {
    waba_id: &'a str,
    phone_number_id: Option<&'a str>,
    display_phone_number: Option<&'a str>,
    received_at_ms: i64,
}

impl Ctx<'_> {
    fn push(
        &self,
        out: &mut Split,
        kind: EnvelopeKind,
        contact: Option<&Contact>,
        item: &RawValue,
        ids: Ids,
    ) {
        let Ids {
            group_id,
            dedupe_id,
            label,
        } = ids;
        let env = EnvelopeOut {
            v: ENVELOPE_VERSION,
            kind,
            waba_id: self.waba_id,
            phone_number_id: self.phone_number_id,
            display_phone_number: self.display_phone_number,
            contact,
            received_at_ms: self.received_at_ms,
            item,
        };
        let body = serde_json::to_string(&env).expect("envelope serialises");
        out.queued.push(QueuedEnvelope {
            group_id,
            dedupe_id,
            body,
            label,
        });
    }
}

fn find_contact<'c>(
    contacts: &'c [Contact],
    wa_id: Option<&str>,
    user_id: Option<&str>,
) -> Option<&'c Contact> {
    contacts
        .iter()
        .find(|c| {
            (wa_id.is_some() && c.wa_id.as_deref() == wa_id)
                || (user_id.is_some() && c.user_id.as_deref() == user_id)
        })
        .or(if contacts.len() == 1 {
            contacts.first()
        } else {
            None
        })
}

/// Splits a parsed notification into queue envelopes; anything not understood goes to `unparsed`.
/// `raw_body` is the request body `n` was parsed from (archived whole when its object is unknown).
pub fn split(n: &Notification, raw_body: &str, received_at_ms: i64) -> Split {
    let mut out = Split::default();
    if n.object != "whatsapp_business_account" {
        out.unparsed.push(Unparsed {
            reason: format!("unknown object {:?}", n.object),
            raw: raw_body.to_string(),
        });
        return out;
    }
    for entry in &n.entry {
        for change in &entry.changes {
            let mut ctx = Ctx {
                waba_id: &entry.id,
                phone_number_id: None,
                display_phone_number: None,
                received_at_ms,
            };
            let unparsed = |reason: String| Unparsed {
                reason,
                raw: format!(
                    "{{\"waba_id\":{},\"field\":{},\"value\":{}}}",
                    serde_json::to_string(&entry.id).unwrap_or_default(),
                    serde_json::to_string(&change.field).unwrap_or_default(),
                    change.value.get()
                ),
            };
            let value = match change.parse_value() {
                Ok(v) => v,
                Err(e) => {
                    out.unparsed
                        .push(unparsed(format!("field {}: {e}", change.field)));
                    continue;
                }
            };
            match value {
                ChangeValue::Messages(v) => {
                    let pnid = v.metadata.phone_number_id.as_str();
                    ctx.phone_number_id = Some(pnid);
                    ctx.display_phone_number = v.metadata.display_phone_number.as_deref();
                    for raw in &v.messages {
                        match raw.parse() {
                            Ok(m) => {
                                let who = m
                                    .from
                                    .as_deref()
                                    .or(m.from_user_id.as_deref())
                                    .unwrap_or("");
                                let contact = find_contact(
                                    &v.contacts,
                                    m.from.as_deref(),
                                    m.from_user_id.as_deref(),
                                );
                                ctx.push(
                                    &mut out,
                                    EnvelopeKind::Message,
                                    contact,
                                    &raw.0,
                                    Ids {
                                        group_id: conversation_group(pnid, who),
                                        dedupe_id: sha256_hex(&["msg", &m.id]),
                                        label: m.id.clone(),
                                    },
                                );
                            }
                            Err(e) => out.unparsed.push(Unparsed {
                                reason: format!("message: {e}"),
                                raw: raw.raw().to_string(),
                            }),
                        }
                    }
                    for raw in &v.statuses {
                        match raw.parse() {
                            Ok(s) => {
                                let who = s
                                    .recipient_id
                                    .as_deref()
                                    .or(s.recipient_user_id.as_deref())
                                    .unwrap_or("");
                                let ts = s.timestamp.to_string();
                                ctx.push(
                                    &mut out,
                                    EnvelopeKind::Status,
                                    None,
                                    &raw.0,
                                    Ids {
                                        group_id: conversation_group(pnid, who),
                                        dedupe_id: sha256_hex(&[
                                            "status",
                                            &s.id,
                                            s.status.as_str(),
                                            &ts,
                                        ]),
                                        label: s.id.clone(),
                                    },
                                );
                            }
                            Err(e) => out.unparsed.push(Unparsed {
                                reason: format!("status: {e}"),
                                raw: raw.raw().to_string(),
                            }),
                        }
                    }
                    if !v.errors.is_empty() {
                        let raw =
                            serde_json::value::to_raw_value(&v.errors).expect("errors serialise");
                        ctx.push(
                            &mut out,
                            EnvelopeKind::Errors,
                            None,
                            &raw,
                            Ids {
                                group_id: sha256_hex(&["errors", pnid]),
                                dedupe_id: sha256_hex(&["errors", pnid, raw.get()]),
                                label: "errors".into(),
                            },
                        );
                    }
                }
                ChangeValue::SmbMessageEchoes(v) => {
                    let pnid = v.metadata.phone_number_id.as_str();
                    ctx.phone_number_id = Some(pnid);
                    ctx.display_phone_number = v.metadata.display_phone_number.as_deref();
                    for raw in &v.message_echoes {
                        match raw.parse() {
                            Ok(e) => ctx.push(
                                &mut out,
                                EnvelopeKind::Echo,
                                None,
                                &raw.0,
                                Ids {
                                    group_id: conversation_group(
                                        pnid,
                                        e.to.as_deref().unwrap_or(""),
                                    ),
                                    dedupe_id: sha256_hex(&["msg", &e.id]),
                                    label: e.id.clone(),
                                },
                            ),
                            Err(e) => out.unparsed.push(Unparsed {
                                reason: format!("echo: {e}"),
                                raw: raw.raw().to_string(),
                            }),
                        }
                    }
                }
                ChangeValue::UserPreferences(v) => {
                    let pnid = v.metadata.phone_number_id.as_str();
                    ctx.phone_number_id = Some(pnid);
                    ctx.display_phone_number = v.metadata.display_phone_number.as_deref();
                    for p in &v.user_preferences {
                        let raw =
                            serde_json::value::to_raw_value(p).expect("preference serialises");
                        let contact =
                            find_contact(&v.contacts, p.wa_id.as_deref(), p.user_id.as_deref());
                        let who = p.wa_id.as_deref().or(p.user_id.as_deref()).unwrap_or("");
                        ctx.push(
                            &mut out,
                            EnvelopeKind::UserPreference,
                            contact,
                            &raw,
                            Ids {
                                group_id: conversation_group(pnid, who),
                                dedupe_id: sha256_hex(&["pref", pnid, raw.get()]),
                                label: "user_preferences".into(),
                            },
                        );
                    }
                }
                ChangeValue::TemplateStatus(_) => ctx.push(
                    &mut out,
                    EnvelopeKind::TemplateStatus,
                    None,
                    &change.value,
                    Ids {
                        group_id: sha256_hex(&["waba", &entry.id, "templates"]),
                        dedupe_id: sha256_hex(&["tpl", &entry.id, change.value.get()]),
                        label: "message_template_status_update".into(),
                    },
                ),
                ChangeValue::AccountUpdate(_) => ctx.push(
                    &mut out,
                    EnvelopeKind::AccountUpdate,
                    None,
                    &change.value,
                    Ids {
                        group_id: sha256_hex(&["waba", &entry.id, "account"]),
                        dedupe_id: sha256_hex(&["acct", &entry.id, change.value.get()]),
                        label: "account_update".into(),
                    },
                ),
                ChangeValue::Other { field } => {
                    out.unparsed
                        .push(unparsed(format!("field {field:?} is not handled")));
                }
            }
        }
    }
    out
}

impl Envelope {
    pub fn from_body(body: &str) -> Result<Self, EnvelopeError> {
        let env: Envelope =
            serde_json::from_str(body).map_err(|e| EnvelopeError::Invalid(e.to_string()))?;
        if env.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(env.v));
        }
        Ok(env)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("not a queue envelope: {0}")]
    Invalid(String),
    #[error("envelope version {0} is not supported by this consumer")]
    Version(u32),
}
