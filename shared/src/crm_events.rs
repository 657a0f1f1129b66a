//! Events exchanged with the CRM over EventBridge.
//!
//! - From the CRM (`source = "crm"`, `detail-type` = hook name): the directory reads
//!   `lead_*`, `contact_*`, `staff_*` (schemas in `schemas/crm/`).
//! - From us (`source = "whatsapp"`): `lead.created`, … (schemas in `schemas/whatsapp/`).
//!
//! Every `detail` carries a deterministic `event_id`; receivers dedupe on it.
use std::time::Duration;

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const OUR_SOURCE: &str = "whatsapp";
pub const CRM_SOURCE: &str = "crm";

/// An event we publish on the CRM bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundEvent {
    pub detail_type: String,
    pub detail: Value,
}

impl OutboundEvent {
    pub fn event_id(&self) -> Option<&str> {
        self.detail.get("event_id").and_then(Value::as_str)
    }
}

/// `lead.created`: an auto-created lead for an unknown number. The CRM creates the lead and
/// echoes `correlation_id` back in its own `lead_created`, which links the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadCreated {
    pub event_id: String,
    pub correlation_id: String,
    pub phone: Option<String>,
    pub wa_id: Option<String>,
    pub bsuid: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub source: Option<String>,
    pub assignee: Option<String>,
    pub phone_number_id: String,
    pub conversation_id: String,
    pub first_message_at: i64,
}

impl LeadCreated {
    pub fn into_event(self) -> OutboundEvent {
        OutboundEvent {
            detail_type: "lead.created".into(),
            detail: serde_json::to_value(self).expect("event serialises"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrmEventError {
    #[error("detail-type {0:?} is not a directory event")]
    UnknownType(String),
    #[error("event detail is invalid: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryKind {
    Lead,
    Contact,
    Staff,
}

impl DirectoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryKind::Lead => "lead",
            DirectoryKind::Contact => "contact",
            DirectoryKind::Staff => "staff",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryOp {
    Upsert,
    Delete,
    Convert,
}

/// The record carried by a directory event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrmRecord {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The CRM's phone field (any format; Perfex calls it `phonenumber`).
    #[serde(default, alias = "phonenumber", alias = "phone_number")]
    pub phone: Option<String>,
    /// Echo of our `lead.created` correlation id, for leads we asked the CRM to create.
    #[serde(default, alias = "whatsapp_correlation_id")]
    pub correlation_id: Option<String>,
}

/// The CRM sends ids as numbers or strings.
fn id_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "id must be a non-empty string or number, got {other}"
        ))),
    }
}

/// A directory upkeep event, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryChange {
    pub event_id: String,
    pub kind: DirectoryKind,
    pub op: DirectoryOp,
    pub updated_at_ms: i64,
    pub record: CrmRecord,
}

#[derive(Deserialize)]
struct DirectoryDetail {
    event_id: String,
    updated_at: Value,
    record: CrmRecord,
}

/// `updated_at` as RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC, the CRM's MySQL form), or Unix seconds / ms.
pub fn parse_timestamp_ms(v: &Value) -> Result<i64, CrmEventError> {
    let bad = || CrmEventError::Invalid(format!("updated_at {v} is not a timestamp"));
    match v {
        Value::Number(n) => n.as_i64().and_then(seconds_or_ms).ok_or_else(bad),
        Value::String(s) => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                return Ok(t.timestamp_millis());
            }
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
                return Ok(t.and_utc().timestamp_millis());
            }
            s.parse::<i64>()
                .map(|x| if x < 100_000_000_000 { x * 1000 } else { x })
                .map_err(|_| bad())
        }
        _ => Err(bad()),
    }
}

/// Unix seconds (until the year 5138) or milliseconds; negative times are refused.
fn seconds_or_ms(x: i64) -> Option<i64> {
    match x {
        ..0 => None,
        0..100_000_000_000 => Some(x * 1000),
        _ => Some(x),
    }
}

impl DirectoryChange {
    pub fn parse(detail_type: &str, detail: &Value) -> Result<Self, CrmEventError> {
        let (kind, op) = match detail_type {
            "lead_created" | "lead_updated" => (DirectoryKind::Lead, DirectoryOp::Upsert),
            "lead_deleted" => (DirectoryKind::Lead, DirectoryOp::Delete),
            "lead_converted" => (DirectoryKind::Lead, DirectoryOp::Convert),
            "contact_created" | "contact_updated" => (DirectoryKind::Contact, DirectoryOp::Upsert),
            "contact_deleted" => (DirectoryKind::Contact, DirectoryOp::Delete),
            "staff_created" | "staff_updated" => (DirectoryKind::Staff, DirectoryOp::Upsert),
            "staff_deleted" => (DirectoryKind::Staff, DirectoryOp::Delete),
            other => return Err(CrmEventError::UnknownType(other.to_string())),
        };
        let d: DirectoryDetail = serde_json::from_value(detail.clone())
            .map_err(|e| CrmEventError::Invalid(e.to_string()))?;
        if d.event_id.trim().is_empty() || d.event_id.len() > 200 {
            return Err(CrmEventError::Invalid(
                "event_id must be 1..=200 characters".into(),
            ));
        }
        Ok(Self {
            event_id: d.event_id,
            kind,
            op,
            updated_at_ms: parse_timestamp_ms(&d.updated_at)?,
            record: d.record,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    #[error("{0} events were not accepted by the bus: {1}")]
    Rejected(usize, String),
}

/// Port: publishing to the CRM bus.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, events: &[OutboundEvent]) -> Result<(), BusError>;
}

pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }
}

#[async_trait::async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[OutboundEvent]) -> Result<(), BusError> {
        for chunk in events.chunks(10) {
            let mut pending: Vec<&OutboundEvent> = chunk.iter().collect();
            let mut attempt = 0;
            loop {
                let entries: Vec<PutEventsRequestEntry> = pending
                    .iter()
                    .map(|e| {
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&self.bus_name)
                            .source(OUR_SOURCE)
                            .detail_type(&e.detail_type)
                            .detail(e.detail.to_string())
                            .build()
                    })
                    .collect();
                let out = self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await;
                let reason = match out {
                    Ok(o) if o.failed_entry_count() == 0 => break,
                    Ok(o) => {
                        // Results are positional: keep the entries that carry an error code.
                        let results = o.entries();
                        let mut reasons = Vec::new();
                        pending = pending
                            .into_iter()
                            .zip(results.iter())
                            .filter(|(_, r)| r.error_code().is_some())
                            .map(|(e, r)| {
                                reasons.push(r.error_code().unwrap_or_default().to_string());
                                e
                            })
                            .collect();
                        reasons.join(",")
                    }
                    Err(e) => DisplayErrorContext(&e).to_string(),
                };
                attempt += 1;
                if attempt >= 5 {
                    return Err(if pending.len() == chunk.len() {
                        BusError::Unavailable(reason)
                    } else {
                        BusError::Rejected(pending.len(), reason)
                    });
                }
                tracing::warn!(attempt, reason = %reason, "PutEvents failed, retrying");
                tokio::time::sleep(crate::queue::backoff(attempt) + Duration::from_millis(0)).await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_directory_events() {
        let c = DirectoryChange::parse(
            "contact_updated",
            &json!({"event_id":"e1","updated_at":"2026-11-25 10:00:00","record":{"id":42,"name":"Ana","phonenumber":"+55 11 91234-5678"}}),
        )
        .unwrap();
        assert_eq!(c.kind, DirectoryKind::Contact);
        assert_eq!(c.op, DirectoryOp::Upsert);
        assert_eq!(c.record.id, "42");
        assert_eq!(c.record.phone.as_deref(), Some("+55 11 91234-5678"));
        assert_eq!(c.updated_at_ms, 1_795_600_800_000);
        let d = DirectoryChange::parse(
            "lead_deleted",
            &json!({"event_id":"e2","updated_at":1795600800,"record":{"id":"7"}}),
        )
        .unwrap();
        assert_eq!(d.op, DirectoryOp::Delete);
        assert_eq!(d.updated_at_ms, 1_795_600_800_000);
    }

    #[test]
    fn rejects_bad_directory_events() {
        assert!(matches!(
            DirectoryChange::parse("invoice_paid", &json!({})),
            Err(CrmEventError::UnknownType(_))
        ));
        assert!(matches!(
            DirectoryChange::parse(
                "lead_updated",
                &json!({"event_id":"e","updated_at":"yesterday","record":{"id":"1"}})
            ),
            Err(CrmEventError::Invalid(_))
        ));
        assert!(matches!(
            DirectoryChange::parse(
                "lead_updated",
                &json!({"event_id":"e","updated_at":1,"record":{"id":""}})
            ),
            Err(CrmEventError::Invalid(_))
        ));
        assert!(matches!(
            DirectoryChange::parse("lead_updated", &json!({"updated_at":1,"record":{"id":"1"}})),
            Err(CrmEventError::Invalid(_))
        ));
    }

    #[test]
    fn timestamps_in_all_forms() {
        assert_eq!(
            parse_timestamp_ms(&json!("2026-11-25T10:00:00Z")).unwrap(),
            1_795_600_800_000
        );
        assert_eq!(
            parse_timestamp_ms(&json!(1_795_600_800_123i64)).unwrap(),
            1_795_600_800_123
        );
        assert_eq!(
            parse_timestamp_ms(&json!("1795600800")).unwrap(),
            1_795_600_800_000
        );
    }
}
