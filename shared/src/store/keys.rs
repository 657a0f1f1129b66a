//! Every key of the table, in one place.
use sha2::{Digest, Sha256};

pub const CONV_SK: &str = "CONV";
pub const WAMID_SK: &str = "WAMID";
pub const PROFILE_SK: &str = "PROFILE";
pub const ALIAS_SK: &str = "ALIAS";
pub const RECORD_SK: &str = "RECORD";
pub const CLAIM_SK: &str = "CLAIM";
pub const EVENT_SK: &str = "EVENT";
pub const SETTINGS_PK: &str = "SETTINGS";
pub const MSG_PREFIX: &str = "MSG#";

/// Seconds an idempotency marker outlives Meta's 7-day retry window.
pub const MARKER_TTL_SECS: i64 = 8 * 24 * 3600;

/// A conversation's public id: `{phone_number_id}:{customer_id}`.
pub fn conversation_id(phone_number_id: &str, customer_id: &str) -> String {
    format!("{phone_number_id}:{customer_id}")
}

/// Splits a public conversation id back into (phone_number_id, customer_id).
pub fn parse_conversation_id(id: &str) -> Option<(&str, &str)> {
    let (a, b) = id.split_once(':')?;
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
    (ok(a) && ok(b)).then_some((a, b))
}

pub fn conversation_pk(phone_number_id: &str, customer_id: &str) -> String {
    format!("CONV#{phone_number_id}#{customer_id}")
}

pub fn message_sk(timestamp_ms: i64, wamid: &str) -> String {
    format!("{MSG_PREFIX}{timestamp_ms:013}#{wamid}")
}

pub fn wamid_pk(wamid: &str) -> String {
    format!("WAMID#{wamid}")
}

pub fn customer_pk(customer_id: &str) -> String {
    format!("CUST#{customer_id}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasKind {
    WaId,
    Bsuid,
    E164,
}

impl AliasKind {
    pub fn tag(self) -> &'static str {
        match self {
            AliasKind::WaId => "WA",
            AliasKind::Bsuid => "BSUID",
            AliasKind::E164 => "E164",
        }
    }
}

pub fn alias_pk(kind: AliasKind, value: &str) -> String {
    format!("ALIAS#{}#{value}", kind.tag())
}

pub fn phone_pk(canonical_e164: &str) -> String {
    format!("PHONE#{canonical_e164}")
}

pub fn directory_pk(kind: &str, id: &str) -> String {
    format!("DIR#{kind}#{id}")
}

pub fn lead_claim_pk(identity: &str) -> String {
    format!("LEADCLAIM#{identity}")
}

pub fn event_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

pub fn template_pk(waba_id: &str) -> String {
    format!("TPL#{waba_id}")
}

/// Seconds a pacing window item outlives its second (DynamoDB TTL deletes it afterwards).
pub const PACE_TTL_SECS: i64 = 300;

/// Partition of a business number's pacing windows (see [`crate::pacing`]).
pub fn pace_pk(phone_number_id: &str) -> String {
    format!("PACE#{phone_number_id}")
}

/// One pacing window: the unix second, zero-padded so windows sort by time.
pub fn pace_sk(window_second: i64) -> String {
    format!("{window_second:010}")
}

/// GSI1 partition of an inbox: sharded so one busy `rel_type` is not one hot partition.
pub fn inbox_pk(rel_type: &str, shard: u8) -> String {
    format!("INBOX#{rel_type}#{shard}")
}

pub fn inbox_sk(last_activity_ms: i64, conversation_id: &str) -> String {
    format!("{last_activity_ms:013}#{conversation_id}")
}

/// Stable shard of a conversation.
pub fn shard_of(conversation_id: &str, shards: u8) -> u8 {
    let d = Sha256::digest(conversation_id.as_bytes());
    d[0] % shards.max(1)
}

/// Deterministic customer id from the first identifier seen (`wa:…` or `bsuid:…`), so two
/// retries of the same first message agree on it.
pub fn customer_id_for(first_identity: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("whatsapp-customer:{first_identity}").as_bytes(),
    )
    .simple()
    .to_string()
}

/// Deterministic correlation id of an auto-created lead, from the claimed identity.
pub fn lead_correlation_id(identity: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("whatsapp-auto-lead:{identity}").as_bytes(),
    )
    .to_string()
}

pub const OUT_SK: &str = "OUT";

pub fn send_intent_pk(msg_id: &str) -> String {
    format!("OUT#{msg_id}")
}

/// Our id of an outbound message: deterministic from the conversation and the caller's
/// idempotency key, so a retried request maps to the same intent.
pub fn outbound_message_id(conversation_id: &str, idempotency_key: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("whatsapp-outbound:{conversation_id}:{idempotency_key}").as_bytes(),
    )
    .simple()
    .to_string()
}

/// Sort key of a template under [`template_pk`]: `{name}#{language}` (names never hold `#`).
pub fn template_sk(name: &str, language: &str) -> String {
    format!("{name}#{language}")
}

pub const TEMPLATE_SYNC_SK: &str = "SYNC";

/// The last template sync of a WABA (when, and what it found).
pub fn template_sync_pk(waba_id: &str) -> String {
    format!("TPLSYNC#{waba_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time() {
        assert!(message_sk(999, "b") < message_sk(1000, "a"));
        assert!(inbox_sk(1_700_000_000_000, "x") < inbox_sk(1_700_000_000_001, "a"));
        assert_eq!(pace_sk(1_749_416_384), "1749416384");
        assert!(pace_sk(999_999_999) < pace_sk(1_000_000_000));
    }

    #[test]
    fn conversation_ids_round_trip() {
        let id = conversation_id("106540352242922", &customer_id_for("wa:16505551234"));
        let (p, c) = parse_conversation_id(&id).unwrap();
        assert_eq!(p, "106540352242922");
        assert_eq!(c, customer_id_for("wa:16505551234"));
        assert_eq!(parse_conversation_id("no-colon"), None);
        assert_eq!(parse_conversation_id("a:b#c"), None);
        assert_eq!(parse_conversation_id(":b"), None);
    }

    #[test]
    fn ids_are_deterministic() {
        assert_eq!(customer_id_for("wa:1"), customer_id_for("wa:1"));
        assert_ne!(customer_id_for("wa:1"), customer_id_for("wa:2"));
        assert_eq!(lead_correlation_id("+1"), lead_correlation_id("+1"));
        for s in 1..=8u8 {
            assert!(shard_of("abc", s) < s);
        }
    }
}
