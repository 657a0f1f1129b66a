//! Bot timers (triggers 8 idle, 11 window closing, 12 no staff reply): one item per armed
//! timer in a sharded due-time index, `sk={slot_ms:013}#{conversation id}#{bot id}#{basis_ms}`,
//! where the slot is when it falls due, or when it was armed if that is later (a message Meta
//! delivered late arms timers already due). Two partitions per shard:
//!
//! - `pk=BOTTIMER#{shard}`: timers due more than [`ARM_MARGIN_MS`] after they were armed (all
//!   but the next two). A tick that reaches such a slot starts after its put has surely landed,
//!   so each shard keeps a mark (`sk=MARK`, above every digit key) up to which its tick has
//!   read, the next tick reads from the mark on, and nothing is deleted: items expire by TTL a
//!   day after their slot. A timer costs its put and its conversation's read.
//! - `pk=BOTTIMER#{shard}#SOON`: timers due within the margin (a late message's, a timer of
//!   under five minutes), whose put may land after a tick passed their slot: each tick reads
//!   all of them that are due and deletes what it handled.
//!
//! A timer is armed from one customer message (its `basis_ms`, Meta's timestamp) and never
//! moved: a newer message arms new timers, and a timer whose basis is no longer the
//! conversation's last customer message (or, for trigger 12, that a staff reply answered) is
//! dropped when it falls due: by the tick (`crate::bots::timers::stale_timer`, over the
//! conversations read in a batch) and again by the bots function (it may have gone stale in the
//! queue). Arming is an idempotent put (same key on a redelivery, unless it came late). Firing
//! is once per timer by the job's deterministic dedupe id and the bot state's `handled`
//! record, so overlapping ticks fire it once.
use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use serde::{Deserialize, Serialize};

use super::dynamo::{from_item, is_conditional_failure_update, key, n, s, to_item};
use super::keys;
use super::model::Conversation;
use super::{Store, StoreError};

/// Longer than any arming function runs (inbound 30 s, bots 120 s): a timer due later than
/// this after it was armed is in its partition before any tick reaches its slot.
pub const ARM_MARGIN_MS: i64 = 5 * 60_000;

/// The sort key of a shard's mark (sorts above every `{slot_ms:013}#…` key).
const MARK_SK: &str = "MARK";

/// The two partitions of a shard of the due-time index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerPartition {
    /// Due more than [`ARM_MARGIN_MS`] after arming: read from the shard's mark on.
    Later,
    /// Due within the margin: read whole, deleted when handled.
    Soon,
}

impl TimerPartition {
    pub fn pk(self, shard: u8) -> String {
        match self {
            Self::Later => format!("BOTTIMER#{shard}"),
            Self::Soon => format!("BOTTIMER#{shard}#SOON"),
        }
    }
}

/// What the tick reads of a timer's conversation (a projection).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TimerFacts {
    #[serde(default)]
    pub last_inbound_at: Option<i64>,
    #[serde(default)]
    pub last_staff_reply_at: Option<i64>,
    #[serde(default)]
    pub window_expires_at: Option<i64>,
}

impl From<&Conversation> for TimerFacts {
    fn from(c: &Conversation) -> Self {
        Self {
            last_inbound_at: c.last_inbound_at,
            last_staff_reply_at: c.last_staff_reply_at,
            window_expires_at: c.window_expires_at,
        }
    }
}

/// An armed timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotTimer {
    pub pk: String,
    pub sk: String,
    pub phone_number_id: String,
    pub customer_id: String,
    pub bot_id: String,
    /// `reply_type` of the bot (8, 11 or 12).
    pub trigger: u8,
    /// The customer message it was armed from (Meta's timestamp, ms).
    pub basis_ms: i64,
    pub due_ms: i64,
    /// When it was armed (ms; 0: before this was kept).
    #[serde(default)]
    pub armed_ms: i64,
    /// DynamoDB TTL (seconds).
    pub ttl: i64,
}

impl BotTimer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shard: u8,
        phone_number_id: &str,
        customer_id: &str,
        conversation_id: &str,
        bot_id: &str,
        trigger: u8,
        basis_ms: i64,
        due_ms: i64,
        armed_ms: i64,
    ) -> Self {
        let slot = due_ms.max(armed_ms);
        let partition = if slot > armed_ms + ARM_MARGIN_MS {
            TimerPartition::Later
        } else {
            TimerPartition::Soon
        };
        Self {
            pk: partition.pk(shard),
            sk: format!("{slot:013}#{conversation_id}#{bot_id}#{basis_ms}"),
            phone_number_id: phone_number_id.into(),
            customer_id: customer_id.into(),
            bot_id: bot_id.into(),
            trigger,
            basis_ms,
            due_ms,
            armed_ms,
            ttl: slot / 1000 + 86_400,
        }
    }

    /// Where it sits in the index: its due time, or its arming if later.
    pub fn slot_ms(&self) -> i64 {
        self.due_ms.max(self.armed_ms)
    }
}

impl Store {
    /// Arms a timer (idempotent).
    pub async fn arm_bot_timer(&self, t: &BotTimer) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(t)?))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// A page of a shard partition's timers whose slot is in `from_ms..=now_ms`, oldest first,
    /// at most `limit`, after the page that ended at `after_sk`; and whether more may follow.
    pub async fn due_bot_timers(
        &self,
        shard: u8,
        partition: TimerPartition,
        from_ms: i64,
        now_ms: i64,
        after_sk: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<BotTimer>, bool), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND sk BETWEEN :from AND :due")
            .expression_attribute_values(":p", s(partition.pk(shard)))
            .expression_attribute_values(":from", s(format!("{:013}", from_ms.max(0))))
            // Every key due at now_ms sorts below "{now_ms + 1:013}" (and the mark above it).
            .expression_attribute_values(":due", s(format!("{:013}", now_ms + 1)))
            .set_exclusive_start_key(after_sk.map(|sk| key(partition.pk(shard), sk)))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let more = out.last_evaluated_key.is_some();
        let timers = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok((timers, more))
    }

    /// Up to where a shard's tick has looked (ms; `None`: never).
    pub async fn bot_timer_mark(&self, shard: u8) -> Result<Option<i64>, StoreError> {
        #[derive(Deserialize)]
        struct Mark {
            mark: i64,
        }
        Ok(self
            .get::<Mark>(TimerPartition::Later.pk(shard), MARK_SK)
            .await?
            .map(|m| m.mark))
    }

    /// Moves a shard's mark forward to `to_ms` (never back: overlapping ticks).
    pub async fn move_bot_timer_mark(&self, shard: u8, to_ms: i64) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(TimerPartition::Later.pk(shard), MARK_SK)))
            .update_expression("SET mark = :m")
            .condition_expression("attribute_not_exists(mark) OR mark < :m")
            .expression_attribute_values(":m", n(to_ms))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure_update(&e) => Ok(()),
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    /// What the tick needs of the conversations of `timers`, by (phone number id, customer
    /// id): one strongly consistent read each, 100 per request. An erased conversation is
    /// absent; one whose attributes cannot be read is `None` (its timers go to the bots
    /// function, which reads it whole).
    pub async fn timer_facts(
        &self,
        timers: &[BotTimer],
    ) -> Result<HashMap<(String, String), Option<TimerFacts>>, StoreError> {
        #[derive(Deserialize)]
        struct Ids {
            phone_number_id: String,
            customer_id: String,
        }
        let ids: BTreeSet<(&str, &str)> = timers
            .iter()
            .map(|t| (t.phone_number_id.as_str(), t.customer_id.as_str()))
            .collect();
        let items = self
            .batch_get(
                ids.iter()
                    .map(|(p, c)| key(keys::conversation_pk(p, c), keys::CONV_SK))
                    .collect(),
                Some(
                    "phone_number_id, customer_id, last_inbound_at, last_staff_reply_at, \
                     window_expires_at",
                ),
            )
            .await?;
        let mut found = HashMap::new();
        for item in items {
            let Ok(id) = from_item::<Ids>(item.clone()) else {
                tracing::warn!("a timer's conversation has no ids: skipped");
                continue;
            };
            let facts = from_item::<TimerFacts>(item)
                .inspect_err(|e| tracing::warn!(error = %e, "a timer's conversation unreadable"))
                .ok();
            found.insert((id.phone_number_id, id.customer_id), facts);
        }
        Ok(found)
    }

    /// Removes handled timers of the `Soon` partition (already gone: fine), 25 per
    /// `BatchWriteItem`.
    pub async fn delete_bot_timers(&self, timers: &[BotTimer]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(timers.len());
        for t in timers {
            let delete = DeleteRequest::builder()
                .set_key(Some(key(t.pk.clone(), t.sk.clone())))
                .build()
                .map_err(|e| StoreError::Dynamo(e.to_string()))?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.batch_write(requests).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_due_soon_after_its_arming_goes_where_every_tick_reads() {
        let t = |due: i64, armed: i64| BotTimer::new(2, "pn", "c", "conv", "b", 8, 0, due, armed);
        let armed = 1_000_000_000;
        // Thirty minutes ahead: read from the mark on, never deleted.
        let later = t(armed + 30 * 60_000, armed);
        assert_eq!(later.pk, "BOTTIMER#2");
        assert_eq!(later.slot_ms(), armed + 30 * 60_000);
        // A minute ahead, or already due (a late message): in the partition read whole, filed
        // at the arming when already due.
        assert_eq!(t(armed + 60_000, armed).pk, "BOTTIMER#2#SOON");
        let late = t(armed - 60_000, armed);
        assert_eq!(late.pk, "BOTTIMER#2#SOON");
        assert_eq!(late.slot_ms(), armed);
        assert!(late.sk.starts_with(&format!("{armed:013}#")));
        assert_eq!(t(armed + ARM_MARGIN_MS, armed).pk, "BOTTIMER#2#SOON");
        assert_eq!(t(armed + ARM_MARGIN_MS + 1, armed).pk, "BOTTIMER#2");
        // The mark's key sorts above every timer's.
        assert!(MARK_SK > t(i64::from(u32::MAX) * 1000, 0).sk.as_str());
    }
}
