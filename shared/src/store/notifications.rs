//! Event-notification mappings and the notification log.
//!
//! Keys:
//! - a mapping: `pk=NOTIFMAP`, `sk={id}` (ids sort by creation): the whole set is one Query,
//!   read by the notifications function at most once a minute;
//! - a log entry: `pk=NOTIFLOG#{yyyy-mm-dd}` (the UTC day of the event), `sk={event time
//!   ms:013}#{send key}`, `ttl` [`LOG_TTL_DAYS`] later. The event's own time and the send's
//!   idempotency key make the entry of a redelivered event the same item, so it is written
//!   over, never twice; a day's entries are one partition, read newest first.
use serde::{Deserialize, Serialize};

use super::crud::{CrudError, TxOutcome};
use super::dynamo::{Store, StoreError, applied, n, s};
use crate::meta::outbound::TemplateMessage;
use crate::notifications::SendTo;

pub const MAPPINGS_PK: &str = "NOTIFMAP";
/// How long log entries are kept.
pub const LOG_TTL_DAYS: i64 = 90;

/// One mapping: a CRM hook (or a reminder category) → an approved template → a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationMapping {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub name: String,
    /// One of [`crate::notifications::CATEGORIES`].
    pub category: String,
    /// The hooks it answers (of [`crate::notifications::HOOKS`]).
    pub hooks: Vec<String>,
    pub send_to: SendTo,
    /// The template with its parameters as placeholders over the event
    /// (`{invoice.number}`, `{lead.name:first|there}`).
    pub template: TemplateMessage,
    /// `MARKETING`, `UTILITY`, … as stored when the mapping was saved: opted-out customers get
    /// no marketing template.
    #[serde(default)]
    pub template_category: Option<String>,
    /// The sender; `None`: the notification credentials' number (or the default number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    pub active: bool,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped by every write: the condition of the next one.
    #[serde(default)]
    pub version: i64,
}

/// What happened to one notification.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyStatus {
    /// Accepted by Meta.
    Sent,
    /// Meta's answer was lost: the first status settles it.
    Unknown,
    /// Not sent, for the reason given (no retry helps).
    Failed,
    /// Deliberately not sent (an opted-out customer and a marketing template).
    Skipped,
    Delivered,
    Read,
}

impl NotifyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Unknown => "unknown",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Delivered => "delivered",
            Self::Read => "read",
        }
    }

    pub fn parse(v: &str) -> Option<Self> {
        [
            Self::Sent,
            Self::Unknown,
            Self::Failed,
            Self::Skipped,
            Self::Delivered,
            Self::Read,
        ]
        .into_iter()
        .find(|s| s.as_str() == v)
    }
}

/// One line of the notification log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationLog {
    pub pk: String,
    pub sk: String,
    /// The send's idempotency key.
    pub key: String,
    /// The CRM's event id (with the reminder id for a reminder).
    pub event_id: String,
    pub hook: String,
    pub mapping_id: String,
    pub send_to: SendTo,
    /// The person's CRM id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// E.164, when the person had a usable number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub template: String,
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    pub status: NotifyStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The event's time (ms).
    pub event_at: i64,
    pub updated_at: i64,
    pub ttl: i64,
}

pub fn log_pk(event_at_ms: i64) -> String {
    let day = chrono::DateTime::from_timestamp_millis(event_at_ms)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into());
    format!("NOTIFLOG#{day}")
}

pub fn log_sk(event_at_ms: i64, key: &str) -> String {
    format!("{:013}#{key}", event_at_ms.max(0))
}

fn concurrent() -> CrudError {
    CrudError::conflict(
        "concurrent_update",
        "the mapping changed since it was read; read it again",
    )
}

impl Store {
    /// Every mapping, in creation order.
    pub async fn notification_mappings(&self) -> Result<Vec<NotificationMapping>, StoreError> {
        self.partition_all(MAPPINGS_PK).await
    }

    pub async fn notification_mapping(
        &self,
        id: &str,
    ) -> Result<Option<NotificationMapping>, StoreError> {
        self.get(MAPPINGS_PK.into(), id).await
    }

    pub async fn create_notification_mapping(
        &self,
        m: &NotificationMapping,
    ) -> Result<(), CrudError> {
        if !self.put_new(m).await? {
            return Err(CrudError::conflict(
                "already_exists",
                format!("mapping {} already exists", m.id),
            ));
        }
        Ok(())
    }

    /// Replaces `old` by `new` (same id), unless it changed since `old` was read.
    pub async fn update_notification_mapping(
        &self,
        old: &NotificationMapping,
        new: &NotificationMapping,
    ) -> Result<NotificationMapping, CrudError> {
        let mut new = new.clone();
        new.version = old.version + 1;
        let item = self.tx_put(
            &new,
            Some("attribute_exists(pk) AND version = :v"),
            vec![(":v", n(old.version))],
        )?;
        match self.transact(vec![item]).await? {
            TxOutcome::Done => Ok(new),
            _ => Err(concurrent()),
        }
    }

    pub async fn delete_notification_mapping(&self, id: &str) -> Result<(), CrudError> {
        let old = self
            .notification_mapping(id)
            .await?
            .ok_or_else(|| CrudError::NotFound(format!("mapping {id}")))?;
        let item = self.tx_delete(
            old.pk.clone(),
            &old.sk,
            Some("version = :v"),
            vec![(":v", n(old.version))],
        )?;
        match self.transact(vec![item]).await? {
            TxOutcome::Done => Ok(()),
            _ => Err(concurrent()),
        }
    }

    /// Where the log entry of a send key lives: the first `(pk, sk)` asked for it (a claim
    /// `NOTIFKEY#{key}` kept as long as the log), so an event the CRM published twice (two
    /// envelopes, two times) still logs its one send once.
    pub async fn notification_log_slot(
        &self,
        key: &str,
        pk: &str,
        sk: &str,
        ttl: i64,
    ) -> Result<(String, String), StoreError> {
        let mut item = super::dynamo::key(format!("NOTIFKEY#{key}"), "KEY");
        item.insert("log_pk".into(), s(pk));
        item.insert("log_sk".into(), s(sk));
        item.insert("ttl".into(), n(ttl));
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match r {
            Ok(_) => Ok((pk.to_string(), sk.to_string())),
            Err(e) => {
                if let aws_sdk_dynamodb::error::SdkError::ServiceError(se) = &e
                    && let aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) = se.err()
                    && let Some(old) = c.item()
                {
                    let text = |k: &str| old.get(k).and_then(|v| v.as_s().ok()).cloned();
                    if let (Some(p), Some(s)) = (text("log_pk"), text("log_sk")) {
                        return Ok((p, s));
                    }
                }
                Err(StoreError::sdk(e))
            }
        }
    }

    /// Writes a log entry (the same event and send write the same item), unless the entry
    /// already reached `delivered` or `read` (a redelivered event never moves it back).
    pub async fn put_notification_log(&self, e: &NotificationLog) -> Result<(), StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(super::dynamo::to_item(e)?))
            .condition_expression("attribute_not_exists(pk) OR NOT (#st IN (:d, :r))")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":d", s("delivered"))
            .expression_attribute_values(":r", s("read"))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if super::dynamo::is_conditional_failure_put(&e) => Ok(()),
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    /// Points the message's status item at its log entry, so its delivery statuses update it.
    pub async fn link_notification(
        &self,
        wamid: &str,
        log_pk: &str,
        log_sk: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::dynamo::key(
                super::keys::wamid_pk(wamid),
                super::keys::WAMID_SK,
            )))
            .update_expression("SET notif_log = :p")
            .expression_attribute_values(":p", s(format!("{log_pk}|{log_sk}")))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// A send whose answer was lost (logged `unknown`) was accepted after all: its first status
    /// named it (`biz_opaque_callback_data`). The entry (`pointer`, `pk|sk`) becomes `sent` with
    /// the `wamid`, which is pointed at the entry so its later statuses update it. Nothing
    /// changes an entry that is not `unknown` or does not exist (yet).
    pub async fn notification_settled(
        &self,
        pointer: &str,
        wamid: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let Some((pk, sk)) = pointer.split_once('|') else {
            return Ok(());
        };
        self.link_notification(wamid, pk, sk).await?;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::dynamo::key(pk.to_string(), sk)))
            .update_expression("SET #st = :sent, wamid = :w, updated_at = :now")
            .condition_expression("#st = :unknown")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":sent", s(NotifyStatus::Sent.as_str()))
            .expression_attribute_values(":unknown", s(NotifyStatus::Unknown.as_str()))
            .expression_attribute_values(":w", s(wamid))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        applied(r).map(|_| ())
    }

    /// A delivery status of a notification's message (`pointer` from
    /// [`Self::link_notification`]): `delivered` and `read` move the entry forward only;
    /// `failed` records Meta's error unless it was delivered or read already.
    pub async fn notification_delivery(
        &self,
        pointer: &str,
        status: NotifyStatus,
        error: Option<(i64, &str)>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let Some((pk, sk)) = pointer.split_once('|') else {
            return Ok(());
        };
        let later: &[&str] = match status {
            NotifyStatus::Read => &[],
            NotifyStatus::Delivered => &["read"],
            NotifyStatus::Failed => &["delivered", "read"],
            _ => return Ok(()),
        };
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::dynamo::key(pk.to_string(), sk)))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s(status.as_str()))
            .expression_attribute_values(":now", n(now_ms));
        let mut cond = "attribute_exists(pk)".to_string();
        if !later.is_empty() {
            let names: Vec<String> = (0..later.len()).map(|i| format!(":l{i}")).collect();
            cond.push_str(&format!(" AND NOT (#st IN ({}))", names.join(", ")));
            for (name, v) in names.iter().zip(later) {
                b = b.expression_attribute_values(name, s(*v));
            }
        }
        let mut set = "SET #st = :st, updated_at = :now".to_string();
        if let Some((code, message)) = error {
            set.push_str(", error_code = :c, reason = :m");
            b = b
                .expression_attribute_values(":c", n(code))
                .expression_attribute_values(":m", s(message));
        }
        let r = b
            .update_expression(set)
            .condition_expression(cond)
            .send()
            .await;
        applied(r).map(|_| ())
    }

    /// The entries of one UTC day, newest first, from the sort key `before` (exclusive).
    pub async fn notification_log_day(
        &self,
        day_pk: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<NotificationLog>, Option<String>), StoreError> {
        self.partition_page_back(day_pk, before, limit.clamp(1, 200))
            .await
    }
}
