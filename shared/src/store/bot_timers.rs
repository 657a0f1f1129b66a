//! Bot timers (triggers 8 idle, 11 window closing, 12 no staff reply): one item per armed
//! timer in a sharded due-time index, `pk=BOTTIMER#{shard}`, `sk={due_ms:013}#{conversation
//! id}#{bot id}#{basis_ms}`. The tick queries each shard for what is due (`sk <` now) and hands
//! each timer to the bots function, then deletes it.
//!
//! A timer is armed from one customer message (its `basis_ms`, Meta's timestamp) and never
//! moved: a newer message arms new timers, and the bots function drops a timer whose basis is
//! no longer the conversation's last customer message (or, for trigger 12, that a staff reply
//! answered) when it fires. Arming is an idempotent put (same key on a redelivery); firing is
//! once per timer by the job's deterministic dedupe id and the bot state's `handled` record, so
//! two overlapping ticks fire it once. Items expire by TTL a day after they were due.
use serde::{Deserialize, Serialize};

use super::dynamo::{from_item, key, s, to_item};
use super::{Store, StoreError};

pub fn timer_pk(shard: u8) -> String {
    format!("BOTTIMER#{shard}")
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
    ) -> Self {
        Self {
            pk: timer_pk(shard),
            sk: format!("{due_ms:013}#{conversation_id}#{bot_id}#{basis_ms}"),
            phone_number_id: phone_number_id.into(),
            customer_id: customer_id.into(),
            bot_id: bot_id.into(),
            trigger,
            basis_ms,
            due_ms,
            ttl: due_ms / 1000 + 86_400,
        }
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

    /// Timers of a shard due at `now_ms` or before, oldest first, at most `limit`.
    pub async fn due_bot_timers(
        &self,
        shard: u8,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<BotTimer>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND sk < :due")
            .expression_attribute_values(":p", s(timer_pk(shard)))
            // Every key due at now_ms sorts below "{now_ms + 1:013}".
            .expression_attribute_values(":due", s(format!("{:013}", now_ms + 1)))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Removes a fired timer (already gone: fine).
    pub async fn delete_bot_timer(&self, t: &BotTimer) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(t.pk.clone(), t.sk.clone())))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }
}
