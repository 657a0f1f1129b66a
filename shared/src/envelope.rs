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

use crate::meta::webhook::{CallEvent, CallStatus, ChangeValue, Contact, Notification};

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
    /// A `message_template_quality_update` change value.
    TemplateQuality,
    /// A `message_template_components_update` change value.
    TemplateComponents,
    /// A `template_category_update` change value.
    TemplateCategory,
    /// One `calls[]` item of the `calls` field (connect / terminate).
    Call,
    /// One `statuses[]` item of the `calls` field (a business-initiated call's status).
    CallStatus,
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
    /// Meta's `entry[].time` (Unix ms) when sent: when the change happened at Meta, which orders
    /// changes that carry no timestamp of their own (template status, account updates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_time_ms: Option<i64>,
    /// The item exactly as Meta sent it.
    pub item: Box<RawValue>,
}

impl Envelope {
    /// When the change happened: Meta's `entry[].time`, else when we received it.
    pub fn happened_at_ms(&self) -> i64 {
        self.entry_time_ms.unwrap_or(self.received_at_ms)
    }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_time_ms: Option<i64>,
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
    entry_time_ms: Option<i64>,
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
            entry_time_ms: self.entry_time_ms,
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

/// The `contacts[]` of one change, indexed by wa_id and BSUID (a batch can carry 1000 of each).
struct ContactIndex<'c> {
    contacts: &'c [Contact],
    by_id: std::collections::HashMap<&'c str, &'c Contact>,
}

impl<'c> ContactIndex<'c> {
    fn new(contacts: &'c [Contact]) -> Self {
        let mut by_id = std::collections::HashMap::with_capacity(if contacts.len() > 1 {
            contacts.len() * 2
        } else {
            0
        });
        if contacts.len() > 1 {
            for c in contacts {
                // First one wins, as a scan in order would.
                for id in [c.wa_id.as_deref(), c.user_id.as_deref()]
                    .into_iter()
                    .flatten()
                {
                    by_id.entry(id).or_insert(c);
                }
            }
        }
        Self { contacts, by_id }
    }

    /// The contact of a sender (by wa_id, else BSUID); a change with one contact has only that one.
    fn find(&self, wa_id: Option<&str>, user_id: Option<&str>) -> Option<&'c Contact> {
        if let [only] = self.contacts {
            return Some(only);
        }
        wa_id
            .and_then(|w| self.by_id.get(w))
            .or_else(|| user_id.and_then(|u| self.by_id.get(u)))
            .copied()
    }
}

/// Splits a parsed notification into queue envelopes; anything not understood goes to `unparsed`.
/// `raw_body` is the request body `n` was parsed from (archived whole when its object is unknown).
/// A Graph API object id as Meta sends them (WABA ids, phone number ids): digits only.
pub fn is_meta_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit())
}

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
                // Meta sends whole seconds: taken as the end of that second, so a template sync
                // that started within it never undoes the change. A value that is not a
                // plausible time is not used.
                entry_time_ms: entry
                    .time
                    .filter(|t| (1..=10_000_000_000).contains(t))
                    .map(|t| t * 1000 + 999),
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
            // Ids become keys (conversations, templates, business events): anything that is not
            // a Meta id (Meta's documentation samples carry `<BUSINESS_PHONE_NUMBER_ID>`) is
            // archived, so every stored conversation can be opened through the staff API.
            let pnid_of = match &value {
                ChangeValue::Messages(v) => Some(v.metadata.phone_number_id.as_str()),
                ChangeValue::SmbMessageEchoes(v) => Some(v.metadata.phone_number_id.as_str()),
                ChangeValue::Calls(v) => Some(v.metadata.phone_number_id.as_str()),
                ChangeValue::UserPreferences(v) => Some(v.metadata.phone_number_id.as_str()),
                _ => None,
            };
            if !is_meta_id(&entry.id) || pnid_of.is_some_and(|p| !is_meta_id(p)) {
                out.unparsed.push(unparsed(format!(
                    "field {}: entry.id {:?} / metadata.phone_number_id {:?} is not a Meta id",
                    change.field,
                    entry.id,
                    pnid_of.unwrap_or("")
                )));
                continue;
            }
            match value {
                ChangeValue::Messages(v) => {
                    let pnid = v.metadata.phone_number_id.as_str();
                    ctx.phone_number_id = Some(pnid);
                    ctx.display_phone_number = v.metadata.display_phone_number.as_deref();
                    let contacts = ContactIndex::new(&v.contacts);
                    for raw in &v.messages {
                        match raw.parse() {
                            Ok(m) => {
                                let who = m
                                    .from
                                    .as_deref()
                                    .or(m.from_user_id.as_deref())
                                    .unwrap_or("");
                                let contact =
                                    contacts.find(m.from.as_deref(), m.from_user_id.as_deref());
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
                    let contacts = ContactIndex::new(&v.contacts);
                    for p in &v.user_preferences {
                        let raw =
                            serde_json::value::to_raw_value(p).expect("preference serialises");
                        let contact = contacts.find(p.wa_id.as_deref(), p.user_id.as_deref());
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
                ChangeValue::TemplateQuality(_)
                | ChangeValue::TemplateComponents(_)
                | ChangeValue::TemplateCategory(_) => {
                    let (kind, label) = match &value {
                        ChangeValue::TemplateQuality(_) => (
                            EnvelopeKind::TemplateQuality,
                            "message_template_quality_update",
                        ),
                        ChangeValue::TemplateComponents(_) => (
                            EnvelopeKind::TemplateComponents,
                            "message_template_components_update",
                        ),
                        _ => (EnvelopeKind::TemplateCategory, "template_category_update"),
                    };
                    // One group with the status updates: a WABA's template changes in order.
                    ctx.push(
                        &mut out,
                        kind,
                        None,
                        &change.value,
                        Ids {
                            group_id: sha256_hex(&["waba", &entry.id, "templates"]),
                            dedupe_id: sha256_hex(&[label, &entry.id, change.value.get()]),
                            label: label.into(),
                        },
                    )
                }
                ChangeValue::Calls(v) => {
                    let pnid = v.metadata.phone_number_id.as_str();
                    ctx.phone_number_id = Some(pnid);
                    ctx.display_phone_number = v.metadata.display_phone_number.as_deref();
                    let contacts = ContactIndex::new(&v.contacts);
                    for raw in &v.calls {
                        match serde_json::from_str::<CallEvent>(raw.get()) {
                            Ok(c) => {
                                let (wa_id, bsuid) = c.customer();
                                let who = wa_id.or(bsuid).unwrap_or("");
                                ctx.push(
                                    &mut out,
                                    EnvelopeKind::Call,
                                    contacts.find(wa_id, bsuid),
                                    raw,
                                    Ids {
                                        group_id: conversation_group(pnid, who),
                                        dedupe_id: sha256_hex(&["call", &c.id, &c.event]),
                                        label: c.id.clone(),
                                    },
                                );
                            }
                            Err(e) => out.unparsed.push(Unparsed {
                                reason: format!("call: {e}"),
                                raw: raw.get().to_string(),
                            }),
                        }
                    }
                    for raw in &v.statuses {
                        match serde_json::from_str::<CallStatus>(raw.get()) {
                            Ok(st) => {
                                let who = st
                                    .recipient_id
                                    .as_deref()
                                    .or(st.recipient_user_id.as_deref())
                                    .unwrap_or("");
                                let ts = st.timestamp.to_string();
                                ctx.push(
                                    &mut out,
                                    EnvelopeKind::CallStatus,
                                    None,
                                    raw,
                                    Ids {
                                        group_id: conversation_group(pnid, who),
                                        dedupe_id: sha256_hex(&[
                                            "callstatus",
                                            &st.id,
                                            &st.status,
                                            &ts,
                                        ]),
                                        label: st.id.clone(),
                                    },
                                );
                            }
                            Err(e) => out.unparsed.push(Unparsed {
                                reason: format!("call status: {e}"),
                                raw: raw.get().to_string(),
                            }),
                        }
                    }
                    if !v.errors.is_empty() && v.calls.is_empty() && v.statuses.is_empty() {
                        out.unparsed
                            .push(unparsed("calls change with errors only".to_string()));
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::webhook::parse_notification;

    fn split_str(body: &str) -> Split {
        split(&parse_notification(body.as_bytes()).unwrap(), body, 7)
    }

    const TWO: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{
        "messaging_product":"whatsapp","metadata":{"display_phone_number":"1555","phone_number_id":"106540352242922"},
        "contacts":[{"profile":{"name":"A"},"wa_id":"111"},{"profile":{"name":"B"},"wa_id":"222"},{"profile":{"name":"U"},"user_id":"US.abc"}],
        "messages":[
          {"from":"222","id":"wamid.2","timestamp":"2","type":"text","text":{"body":"b"},"x_new_field":{"kept":true}},
          {"from":"111","id":"wamid.1","timestamp":"1","type":"text","text":{"body":"a"}},
          {"from_user_id":"US.abc","id":"wamid.3","timestamp":"3","type":"text","text":{"body":"u"}},
          {"from":"333","timestamp":"4","type":"text","text":{"body":"no id"}}],
        "statuses":[{"id":"wamid.9","status":"read","timestamp":"9","recipient_id":"111"}]}}]}]}"#;

    #[test]
    fn ids_that_are_not_meta_ids_are_archived_not_queued() {
        for (waba, pnid) in [
            ("102290129340398", "<BUSINESS_PHONE_NUMBER_ID>"),
            ("<WHATSAPP_BUSINESS_ACCOUNT_ID>", "106540352242922"),
            ("102290129340398", "1065#40"),
        ] {
            let body = format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"field":"messages","value":{{
                "messaging_product":"whatsapp","metadata":{{"display_phone_number":"1555","phone_number_id":"{pnid}"}},
                "messages":[{{"from":"111","id":"wamid.1","timestamp":"1","type":"text","text":{{"body":"a"}}}}]}}}}]}}]}}"#
            );
            let out = split_str(&body);
            assert!(out.queued.is_empty(), "{waba} / {pnid}");
            assert_eq!(out.unparsed.len(), 1);
            assert!(out.unparsed[0].reason.contains("is not a Meta id"));
        }
    }

    #[test]
    fn one_envelope_per_item_with_its_contact_and_raw_json() {
        let s = split_str(TWO);
        assert_eq!(s.queued.len(), 4, "{s:?}");
        assert_eq!(s.unparsed.len(), 1, "the message without an id is archived");
        let envs: Vec<Envelope> = s
            .queued
            .iter()
            .map(|q| Envelope::from_body(&q.body).unwrap())
            .collect();
        let name = |e: &Envelope| {
            e.contact
                .as_ref()
                .and_then(|c| c.profile.as_ref())
                .and_then(|p| p.name.clone())
        };
        assert_eq!(name(&envs[0]).as_deref(), Some("B"));
        assert_eq!(name(&envs[1]).as_deref(), Some("A"));
        assert_eq!(
            name(&envs[2]).as_deref(),
            Some("U"),
            "BSUID-only sender matched by user_id"
        );
        assert_eq!(envs[3].kind, EnvelopeKind::Status);
        assert!(envs[3].contact.is_none());
        // Unknown fields travel verbatim.
        assert!(envs[0].item.get().contains("x_new_field"));
        assert_eq!(envs[0].phone_number_id.as_deref(), Some("106540352242922"));
        assert_eq!(envs[0].waba_id, "102290129340398");
        assert_eq!(envs[0].received_at_ms, 7);
    }

    #[test]
    fn groups_follow_the_conversation_and_ids_fit_sqs() {
        let s = split_str(TWO);
        for q in &s.queued {
            for id in [&q.group_id, &q.dedupe_id] {
                assert_eq!(id.len(), 64);
                assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
        // The status to 111 shares the group of 111's conversation; 222 has its own.
        assert_eq!(s.queued[1].group_id, s.queued[3].group_id);
        assert_ne!(s.queued[0].group_id, s.queued[1].group_id);
        assert_eq!(s.queued[1].dedupe_id, sha256_hex(&["msg", "wamid.1"]));
        // The same payload splits to the same ids (redeliveries dedupe).
        assert_eq!(split_str(TWO).queued, s.queued);
    }

    #[test]
    fn unknown_objects_and_fields_are_unparsed_not_dropped() {
        let s = split_str(r#"{"object":"page","entry":[]}"#);
        assert!(s.queued.is_empty());
        assert_eq!(s.unparsed[0].raw, r#"{"object":"page","entry":[]}"#);
        let s = split_str(
            r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"calls","value":{"a":1}}]}]}"#,
        );
        assert!(s.queued.is_empty());
        assert!(s.unparsed[0].raw.contains("\"calls\"") && s.unparsed[0].raw.contains("{\"a\":1}"));
    }

    #[test]
    fn envelope_versions_are_checked() {
        assert_eq!(
            Envelope::from_body(
                r#"{"v":2,"kind":"message","waba_id":"W","received_at_ms":1,"item":{}}"#
            )
            .unwrap_err(),
            EnvelopeError::Version(2)
        );
        assert!(matches!(
            Envelope::from_body("nope"),
            Err(EnvelopeError::Invalid(_))
        ));
    }
}
