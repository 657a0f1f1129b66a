//! CRM event notifications (the seed's `whatsapp_api` module): the CRM publishes its hook events
//! on the CRM bus; each active mapping of the hook sends its approved template to the event's
//! contact, lead or assigned staff member, with parameters rendered from the event.
//!
//! The event's `detail` (JSON Schemas in `schemas/crm/`) carries the hook's `record` (also
//! readable under its kind: `{invoice.number}` is `record.number` of `after_invoice_added`,
//! `{lead.name}` is `record.name` of `lead_created`) and the people it concerns with their
//! phones: `contact` (the customer's primary contact), `lead`, `staff` (the assigned staff
//! member). `after_cron_run` carries the CRM's due `reminders`,
//! each shaped like an event of its own (a `category`, the record, its people); each reminder
//! is sent through the mappings of `after_cron_run` whose category is the reminder's.
pub mod render;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The CRM hooks a mapping can answer (the seed's list).
pub const HOOKS: [&str; 10] = [
    "lead_created",
    "web_to_lead_form_submitted",
    "contact_created",
    "after_invoice_added",
    "after_add_task",
    "after_add_project",
    "proposal_created",
    "after_payment_added",
    "ticket_created",
    "after_cron_run",
];

/// The hook whose detail carries due reminders.
pub const CRON_HOOK: &str = "after_cron_run";

/// Mapping categories (the seed's list).
pub const CATEGORIES: [&str; 9] = [
    "leads",
    "contacts",
    "invoice",
    "task",
    "project",
    "proposal",
    "payment",
    "ticket",
    "reminders",
];

/// The kind of record a hook's `record` is (what placeholders call it).
pub fn record_root(hook: &str) -> Option<&'static str> {
    Some(match hook {
        "lead_created" | "web_to_lead_form_submitted" => "lead",
        "contact_created" => "contact",
        "after_invoice_added" => "invoice",
        "after_add_task" => "task",
        "after_add_project" => "project",
        "proposal_created" => "proposal",
        "after_payment_added" => "payment",
        "ticket_created" => "ticket",
        _ => return None,
    })
}

/// The kind of record a reminder of a category is.
pub fn category_root(category: &str) -> Option<&'static str> {
    Some(match category {
        "leads" => "lead",
        "contacts" => "contact",
        "invoice" => "invoice",
        "task" => "task",
        "project" => "project",
        "proposal" => "proposal",
        "payment" => "payment",
        "ticket" => "ticket",
        _ => return None,
    })
}

/// Reads `detail[root]`, or its `record` when `root` names the record's kind.
pub fn part<'v>(detail: &'v Value, root: &str, record_root: Option<&str>) -> Option<&'v Value> {
    detail.get(root).or_else(|| {
        (record_root == Some(root))
            .then(|| detail.get("record"))
            .flatten()
    })
}

/// Who receives a mapping's template.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendTo {
    /// The customer's primary contact (`detail.contact`).
    Contact,
    /// The lead (`detail.lead`).
    Lead,
    /// The assigned staff member (`detail.staff`).
    Staff,
}

impl SendTo {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Lead => "lead",
            Self::Staff => "staff",
        }
    }
}

/// One notification to make from an event: the event itself, or one reminder of
/// `after_cron_run`.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence<'a> {
    /// The event id, or `{event_id}:{reminder id}` for a reminder: part of the send's
    /// idempotency key.
    pub id: String,
    pub hook: &'a str,
    /// A reminder's category (`None` for other hooks).
    pub category: Option<String>,
    /// What placeholders and recipients are read from.
    pub detail: &'a Value,
    /// What the detail's `record` is (`lead`, `invoice`, …).
    pub record_root: Option<&'static str>,
}

/// The notifications an event asks for (a reminder without an id is named by its position).
pub fn occurrences<'a>(hook: &'a str, event_id: &str, detail: &'a Value) -> Vec<Occurrence<'a>> {
    if hook != CRON_HOOK {
        return vec![Occurrence {
            id: event_id.to_string(),
            hook,
            category: None,
            detail,
            record_root: record_root(hook),
        }];
    }
    detail
        .get("reminders")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .enumerate()
                .map(|(i, r)| Occurrence {
                    id: format!(
                        "{event_id}:{}",
                        scalar(r.get("id")).unwrap_or_else(|| i.to_string())
                    ),
                    hook,
                    category: r
                        .get("category")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    detail: r,
                    record_root: r
                        .get("category")
                        .and_then(Value::as_str)
                        .and_then(category_root),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a mapping answers an occurrence (an inactive one answers nothing).
pub fn answers(active: bool, hooks: &[String], category: &str, o: &Occurrence<'_>) -> bool {
    active
        && hooks.iter().any(|h| h == o.hook)
        && (o.hook != CRON_HOOK || o.category.as_deref() == Some(category))
}

/// The person a notification goes to, as the event describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub kind: SendTo,
    pub id: Option<String>,
    pub name: Option<String>,
    /// As the CRM wrote it (`phonenumber`, or `phone`).
    pub phone: Option<String>,
}

/// The `send_to` person of an occurrence (`None`: the event names nobody of that kind).
pub fn recipient(detail: &Value, record_root: Option<&str>, to: SendTo) -> Option<Person> {
    let p = part(detail, to.as_str(), record_root)?.as_object()?;
    let text = |k: &str| {
        p.get(k)
            .and_then(|v| scalar(Some(v)))
            .filter(|s| !s.trim().is_empty())
    };
    Some(Person {
        kind: to,
        id: text("id"),
        name: text("name").or_else(|| {
            let full = [text("firstname"), text("lastname")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            Some(full).filter(|f| !f.is_empty())
        }),
        phone: text("phonenumber").or_else(|| text("phone")),
    })
}

/// A string or number as text.
pub(crate) fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The idempotency key of one send: (occurrence, mapping, recipient).
pub fn send_key(occurrence_id: &str, mapping_id: &str, to: SendTo, phone_e164: &str) -> String {
    let h = crate::envelope::sha256_hex(&[occurrence_id, mapping_id, to.as_str(), phone_e164]);
    format!("notif:{}", &h[..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cron_run_is_one_occurrence_per_reminder() {
        let d = json!({"reminders": [
            {"id": 7, "category": "invoice", "invoice": {"number": "INV-7"}},
            {"category": "task", "task": {"name": "Call"}}
        ]});
        let o = occurrences(CRON_HOOK, "ev1", &d);
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].id, "ev1:7");
        assert_eq!(o[0].category.as_deref(), Some("invoice"));
        assert_eq!(o[1].id, "ev1:1");
        assert!(occurrences(CRON_HOOK, "ev1", &json!({})).is_empty());
        let one = occurrences("lead_created", "ev2", &d);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].id, "ev2");
    }

    #[test]
    fn mappings_answer_their_hooks_and_reminders_of_their_category() {
        let d = json!({"reminders": [{"id": 1, "category": "invoice"}]});
        let o = &occurrences(CRON_HOOK, "e", &d)[0];
        let hooks = vec![CRON_HOOK.to_string()];
        assert!(answers(true, &hooks, "invoice", o));
        assert!(!answers(true, &hooks, "task", o));
        assert!(!answers(false, &hooks, "invoice", o));
        let lead = json!({});
        let o = &occurrences("lead_created", "e", &lead)[0];
        assert!(answers(true, &["lead_created".into()], "leads", o));
        assert!(!answers(true, &["contact_created".into()], "leads", o));
    }

    #[test]
    fn recipients_come_from_the_event() {
        let d = json!({"contact": {"id": 4, "firstname": "Ana", "lastname": "Lima", "phonenumber": "+1 650 555 0101"},
                       "staff": {"id": "2", "name": "Rui", "phonenumber": ""}});
        let c = recipient(&d, None, SendTo::Contact).unwrap();
        assert_eq!(c.id.as_deref(), Some("4"));
        assert_eq!(c.name.as_deref(), Some("Ana Lima"));
        assert_eq!(c.phone.as_deref(), Some("+1 650 555 0101"));
        assert_eq!(recipient(&d, None, SendTo::Staff).unwrap().phone, None);
        assert!(recipient(&d, None, SendTo::Lead).is_none());
        // The hook's record is its kind's person: lead_created's record is the lead.
        let l = json!({"record": {"id": 9, "name": "Rui", "phonenumber": "+351 912 345 678"}});
        let o = &occurrences("lead_created", "e", &l)[0];
        let lead = recipient(o.detail, o.record_root, SendTo::Lead).unwrap();
        assert_eq!(lead.id.as_deref(), Some("9"));
        assert!(recipient(o.detail, o.record_root, SendTo::Contact).is_none());
    }

    #[test]
    fn send_keys_differ_by_each_part() {
        let k = send_key("e", "m", SendTo::Lead, "+1");
        assert_eq!(k, send_key("e", "m", SendTo::Lead, "+1"));
        assert_ne!(k, send_key("e2", "m", SendTo::Lead, "+1"));
        assert_ne!(k, send_key("e", "m2", SendTo::Lead, "+1"));
        assert_ne!(k, send_key("e", "m", SendTo::Staff, "+1"));
        assert!(k.starts_with("notif:") && k.len() == 38);
    }
}
