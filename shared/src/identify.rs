//! Sender identification: leads → contacts → staff; converted or deleted leads never match.
use crate::store::model::{PhoneIndex, RelType};

/// Who a WhatsApp sender is in the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Known {
        rel_type: RelType,
        id: String,
        name: Option<String>,
    },
    /// An auto-created lead the CRM has not confirmed yet (identified by our correlation id).
    PendingLead {
        correlation_id: String,
    },
    Unknown,
}

impl Identity {
    pub fn rel_type(&self) -> RelType {
        match self {
            Identity::Known { rel_type, .. } => *rel_type,
            Identity::PendingLead { .. } => RelType::Leads,
            Identity::Unknown => RelType::General,
        }
    }

    pub fn rel_id(&self) -> Option<String> {
        match self {
            Identity::Known { id, .. } => Some(id.clone()),
            Identity::PendingLead { correlation_id } => Some(format!("pending:{correlation_id}")),
            Identity::Unknown => None,
        }
    }
}

fn rank(kind: &str) -> Option<(u8, RelType)> {
    match kind {
        "lead" => Some((0, RelType::Leads)),
        "contact" => Some((1, RelType::Contacts)),
        "staff" => Some((2, RelType::Staff)),
        _ => None,
    }
}

/// Picks the match from every directory entry under the sender's phone: a lead first (unless
/// converted), then a contact, then staff; among equals, the lowest id (stable).
pub fn choose(entries: &[PhoneIndex]) -> Identity {
    entries
        .iter()
        .filter(|e| !(e.kind == "lead" && e.converted))
        .filter_map(|e| rank(&e.kind).map(|(r, t)| (r, t, e)))
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.2.id.cmp(&b.2.id)))
        .map(|(_, rel_type, e)| Identity::Known {
            rel_type,
            id: e.id.clone(),
            name: e.name.clone(),
        })
        .unwrap_or(Identity::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: &str, id: &str, converted: bool) -> PhoneIndex {
        PhoneIndex {
            pk: "PHONE#+1".into(),
            sk: format!("{kind}#{id}"),
            kind: kind.into(),
            id: id.into(),
            name: Some(format!("{kind} {id}")),
            converted,
        }
    }

    #[test]
    fn order_is_leads_contacts_staff() {
        let all = [
            e("staff", "1", false),
            e("contact", "2", false),
            e("lead", "3", false),
        ];
        assert_eq!(choose(&all).rel_type(), RelType::Leads);
        assert_eq!(choose(&all[..2]).rel_type(), RelType::Contacts);
        assert_eq!(choose(&all[..1]).rel_type(), RelType::Staff);
        assert_eq!(choose(&[]), Identity::Unknown);
    }

    #[test]
    fn converted_leads_are_skipped() {
        let all = [e("lead", "3", true), e("contact", "9", false)];
        assert_eq!(
            choose(&all),
            Identity::Known {
                rel_type: RelType::Contacts,
                id: "9".into(),
                name: Some("contact 9".into())
            }
        );
        assert_eq!(choose(&all[..1]), Identity::Unknown);
    }

    #[test]
    fn ties_are_stable() {
        let all = [e("contact", "b", false), e("contact", "a", false)];
        assert_eq!(choose(&all).rel_id().as_deref(), Some("a"));
        assert_eq!(
            Identity::PendingLead {
                correlation_id: "c".into()
            }
            .rel_id()
            .as_deref(),
            Some("pending:c")
        );
    }
}
