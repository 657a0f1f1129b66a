//! Delivery statuses: the ranked upsert of a message's status item (`WAMID#{wamid}`).
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::dynamo::{Store, StoreError, is_conditional_failure_update, key, n, s};
use super::keys;

/// Outcome of a status upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOutcome {
    /// The status was a step forward (the stored status changed).
    pub advanced: bool,
    /// The status the item had before (None: first status, or a placeholder was created).
    pub previous: Option<String>,
    /// The notification log entry of this message (`{pk}|{sk}`), when it is a notification.
    pub notification: Option<String>,
}

pub struct StatusUpdate<'a> {
    pub wamid: &'a str,
    pub status: &'a str,
    pub rank: u8,
    pub timestamp_ms: i64,
    pub recipient: Option<&'a str>,
    pub errors_json: Option<String>,
    pub pricing_json: Option<String>,
    pub biz_opaque_callback_data: Option<&'a str>,
}

impl Store {
    /// Ranked status upsert: raises the status only forward (sent < delivered < read; failed
    /// keeps its errors), sets each stage's time once, and creates a placeholder when the status
    /// arrives before its message.
    pub async fn apply_status(&self, u: &StatusUpdate<'_>) -> Result<StatusOutcome, StoreError> {
        let stage = match u.status {
            "sent" => Some("sent_at"),
            "delivered" => Some("delivered_at"),
            "read" => Some("read_at"),
            "failed" => Some("failed_at"),
            _ => None,
        };
        let k = key(keys::wamid_pk(u.wamid), keys::WAMID_SK);
        let mut set = vec!["#st = :st".to_string(), "status_rank = :r".into()];
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(k.clone()))
            .condition_expression("attribute_not_exists(status_rank) OR status_rank < :r")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(u.status))
            .expression_attribute_values(":r", n(u.rank as i64))
            // All of it: a notification's log pointer comes back without another read.
            .return_values(ReturnValue::AllOld);
        if let Some(stage) = stage {
            set.push(format!("{stage} = if_not_exists({stage}, :t)"));
            b = b.expression_attribute_values(":t", n(u.timestamp_ms));
        }
        if let Some(e) = &u.errors_json {
            set.push("errors = :e".into());
            b = b.expression_attribute_values(":e", s(e));
        }
        if let Some(p) = &u.pricing_json {
            set.push("pricing = :pr".into());
            b = b.expression_attribute_values(":pr", s(p));
        }
        if let Some(r) = u.recipient {
            set.push("recipient = if_not_exists(recipient, :rc)".into());
            b = b.expression_attribute_values(":rc", s(r));
        }
        if let Some(c) = u.biz_opaque_callback_data {
            set.push(
                "biz_opaque_callback_data = if_not_exists(biz_opaque_callback_data, :bo)".into(),
            );
            b = b.expression_attribute_values(":bo", s(c));
        }
        match b
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await
        {
            Ok(out) => {
                let mut old = out.attributes.unwrap_or_default();
                let mut text = |k: &str| match old.remove(k) {
                    Some(AttributeValue::S(s)) => Some(s),
                    _ => None,
                };
                Ok(StatusOutcome {
                    advanced: true,
                    previous: text("status"),
                    notification: text("notif_log"),
                })
            }
            Err(e) if is_conditional_failure_update(&e) => {
                // A later status is already stored: only record this stage's time (once).
                let mut set = Vec::new();
                let mut b = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(k));
                if let Some(stage) = stage {
                    set.push(format!("{stage} = if_not_exists({stage}, :t)"));
                    b = b.expression_attribute_values(":t", n(u.timestamp_ms));
                }
                if let Some(p) = &u.pricing_json {
                    set.push("pricing = if_not_exists(pricing, :pr)".into());
                    b = b.expression_attribute_values(":pr", s(p));
                }
                if !set.is_empty() {
                    b.update_expression(format!("SET {}", set.join(", ")))
                        .send()
                        .await
                        .map_err(StoreError::sdk)?;
                }
                Ok(StatusOutcome {
                    advanced: false,
                    previous: None,
                    notification: None,
                })
            }
            Err(e) => Err(StoreError::sdk(e)),
        }
    }
}
