//! Quick replies: canned answers staff pick in the inbox, with placeholders filled when sent.
//!
//! Keys: every quick reply lives in one partition (`pk=QUICKREPLIES`, `sk={id}`, ids sort by
//! creation), so the list is one Query; a shortcut is unique through a claim item
//! (`pk=QRSHORTCUT#{shortcut}`, `sk=CLAIM`) written in the same transaction as the reply.
//!
//! Placeholders in a body: `{{customer_name}}`, `{{customer_first_name}}`,
//! `{{customer_phone}}`, `{{staff_id}}` ([`PLACEHOLDERS`]); spaces inside the braces are allowed
//! (`{{ customer_name }}`). Anything else between `{{` and `}}` is refused when the reply is
//! saved and when it is sent.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::crud::{CrudError, TxOutcome};
use super::dynamo::{Store, StoreError, n};

pub const QUICK_REPLIES_PK: &str = "QUICKREPLIES";

/// Placeholders a quick reply body may use, with what fills them.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "customer_name",
        "the customer's WhatsApp profile name (or the CRM name)",
    ),
    (
        "customer_first_name",
        "the first word of the customer's name",
    ),
    (
        "customer_phone",
        "the customer's number in E.164 (+16505551234)",
    ),
    ("staff_id", "the id of the staff member who sends it"),
];

pub fn shortcut_claim_pk(shortcut: &str) -> String {
    format!("QRSHORTCUT#{shortcut}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuickReply {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortcut: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    pub updated_at: i64,
    /// Bumped by every write: the condition of the next one (optimistic locking).
    #[serde(default)]
    pub version: i64,
}

impl QuickReply {
    pub fn new(
        id: String,
        title: String,
        body: String,
        shortcut: Option<String>,
        staff_id: &str,
        now_ms: i64,
    ) -> Self {
        Self {
            pk: QUICK_REPLIES_PK.into(),
            sk: id.clone(),
            id,
            title,
            body,
            shortcut,
            created_by: staff_id.into(),
            created_at: now_ms,
            updated_by: None,
            updated_at: now_ms,
            version: 1,
        }
    }
}

/// Fills the placeholders of a quick reply body from `vars` (name without braces → value).
///
/// An unknown placeholder, a known one without a value, or an unclosed `{{` is an error that
/// names it; text outside placeholders is kept as written.
pub fn render_quick_reply(body: &str, vars: &HashMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            format!(
                "unclosed placeholder at \"{}\": write {{{{name}}}}",
                crate::store::dynamo::truncate(&rest[start..], 20)
            )
        })?;
        let name = after[..end].trim();
        if !PLACEHOLDERS.iter().any(|(p, _)| *p == name) {
            return Err(format!(
                "unknown placeholder {{{{{name}}}}}; known placeholders: {}",
                placeholder_list()
            ));
        }
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => {
                return Err(format!(
                    "placeholder {{{{{name}}}}} has no value for this conversation"
                ));
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks that a body only uses known placeholders (values are not needed yet).
pub fn check_placeholders(body: &str) -> Result<(), String> {
    let all: HashMap<&str, String> = PLACEHOLDERS
        .iter()
        .map(|(p, _)| (*p, String::new()))
        .collect();
    render_quick_reply(body, &all).map(|_| ())
}

fn placeholder_list() -> String {
    PLACEHOLDERS
        .iter()
        .map(|(p, _)| format!("{{{{{p}}}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Quick replies in creation order, after the id `after`.
    pub async fn quick_replies(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<QuickReply>, Option<String>), StoreError> {
        self.partition_page(QUICK_REPLIES_PK, after, limit).await
    }

    pub async fn quick_reply(&self, id: &str) -> Result<Option<QuickReply>, StoreError> {
        self.get(QUICK_REPLIES_PK.into(), id).await
    }

    /// Creates a quick reply (its shortcut claimed in the same transaction).
    pub async fn create_quick_reply(&self, q: &QuickReply) -> Result<(), CrudError> {
        let mut items = vec![self.tx_put(q, Some("attribute_not_exists(pk)"), vec![])?];
        items.extend(self.tx_claim_moves(
            None,
            q.shortcut.as_deref().map(shortcut_claim_pk),
            &q.id,
        )?);
        match self.transact(items).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::ConditionFailed(0) => Err(CrudError::conflict(
                "already_exists",
                format!("quick reply {} already exists", q.id),
            )),
            TxOutcome::ConditionFailed(_) => Err(self.shortcut_taken(q).await),
            TxOutcome::Conflict => Err(concurrent()),
        }
    }

    /// Replaces `old` by `new` (same id): fails with `concurrent_update` if it changed since
    /// `old` was read, `shortcut_taken` if the new shortcut belongs to another reply.
    pub async fn update_quick_reply(
        &self,
        old: &QuickReply,
        new: &QuickReply,
    ) -> Result<(), CrudError> {
        let mut new = new.clone();
        new.version = old.version + 1;
        let mut items = vec![self.tx_put(
            &new,
            Some("attribute_exists(pk) AND version = :v"),
            vec![(":v", n(old.version))],
        )?];
        items.extend(self.tx_claim_moves(
            old.shortcut.as_deref().map(shortcut_claim_pk),
            new.shortcut.as_deref().map(shortcut_claim_pk),
            &new.id,
        )?);
        match self.transact(items).await? {
            TxOutcome::Done => Ok(()),
            TxOutcome::ConditionFailed(0) | TxOutcome::Conflict => Err(concurrent()),
            TxOutcome::ConditionFailed(_) => Err(self.shortcut_taken(&new).await),
        }
    }

    /// Deletes a quick reply and releases its shortcut; `NotFound` when there is none.
    pub async fn delete_quick_reply(&self, id: &str) -> Result<(), CrudError> {
        let old = self
            .quick_reply(id)
            .await?
            .ok_or_else(|| CrudError::NotFound("quick reply".into()))?;
        let mut items = vec![self.tx_delete(
            old.pk.clone(),
            &old.sk,
            Some("version = :v"),
            vec![(":v", n(old.version))],
        )?];
        items.extend(self.tx_claim_moves(
            old.shortcut.as_deref().map(shortcut_claim_pk),
            None,
            id,
        )?);
        match self.transact(items).await? {
            TxOutcome::Done => Ok(()),
            _ => Err(concurrent()),
        }
    }

    async fn shortcut_taken(&self, q: &QuickReply) -> CrudError {
        let sc = q.shortcut.clone().unwrap_or_default();
        let owner = self
            .claim_owner(shortcut_claim_pk(&sc))
            .await
            .ok()
            .flatten();
        CrudError::conflict(
            "shortcut_taken",
            match owner {
                Some(o) => format!("shortcut {sc:?} is already used by quick reply {o}"),
                None => format!("shortcut {sc:?} is already used by another quick reply"),
            },
        )
    }
}

pub(crate) fn concurrent() -> CrudError {
    CrudError::conflict(
        "concurrent_update",
        "the item was changed by someone else at the same time; reload it and retry",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<&'static str, String> {
        HashMap::from([
            ("customer_name", "Ana Souza".to_string()),
            ("customer_phone", "+5511987654321".to_string()),
            ("staff_id", "7".to_string()),
        ])
    }

    #[test]
    fn fills_known_placeholders() {
        let r = render_quick_reply(
            "Hi {{customer_name}}, this is {{ staff_id }} about {{customer_phone}}.",
            &vars(),
        )
        .unwrap();
        assert_eq!(r, "Hi Ana Souza, this is 7 about +5511987654321.");
        assert_eq!(
            render_quick_reply("no placeholders {}", &vars()).unwrap(),
            "no placeholders {}"
        );
        assert_eq!(render_quick_reply("", &vars()).unwrap(), "");
        assert_eq!(
            render_quick_reply("é {{staff_id}}ü", &vars()).unwrap(),
            "é 7ü"
        );
    }

    #[test]
    fn unknown_missing_or_unclosed_placeholders_are_errors() {
        let e = render_quick_reply("Hi {{customer_nme}}", &vars()).unwrap_err();
        assert!(e.contains("unknown placeholder {{customer_nme}}"), "{e}");
        assert!(e.contains("{{customer_name}}"), "lists the known ones: {e}");
        let e = render_quick_reply("Hi {{customer_first_name}}", &vars()).unwrap_err();
        assert!(e.contains("{{customer_first_name}} has no value"), "{e}");
        let e = render_quick_reply("Hi {{customer_name", &vars()).unwrap_err();
        assert!(e.contains("unclosed placeholder"), "{e}");
        assert!(check_placeholders("{{customer_first_name}} ok").is_ok());
        assert!(check_placeholders("{{x}}").is_err());
    }
}
