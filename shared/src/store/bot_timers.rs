//! Bot timers (triggers 8 idle, 11 window closing, 12 no staff reply): one item per armed
//! timer in a sharded due-time index, `pk=BOTTIMER#{shard}`, `sk={slot_ms:013}#{conversation
//! id}#{bot id}#{basis_ms}`, where the slot is when it falls due, or when it was armed if that
//! is later (a message Meta delivered late arms timers already due: they go in now's slot).
//!
//! A timer is armed from one customer message (its `basis_ms`, Meta's timestamp) and never
//! moved: a newer message arms new timers, and a timer whose basis is no longer the
//! conversation's last customer message (or, for trigger 12, that a staff reply answered) is
//! dropped when it falls due: by the tick (`crate::bots::timers::stale_timer`, over the
//! conversations read in a batch) and again by the bots function (it may have gone stale in the
//! queue). Arming is an idempotent put (same key on a redelivery, unless it came late).
//!
//! Nothing is deleted: each shard keeps a mark (`sk=MARK`, above every digit key) up to which
//! its tick has looked, and the next tick reads from the mark on. A put still in flight when a
//! tick passed its slot (it can only be one armed within [`TIMER_LOOKBACK_MS`] of the mark) is
//! read again by the next tick, so nothing armed is missed; items expire by TTL a day after
//! their slot. Firing is once per timer by the job's deterministic dedupe id and the bot
//! state's `handled` record, so overlapping ticks, or a timer read twice, fire it once.
use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::dynamo::{from_item, is_conditional_failure_update, key, n, s, to_item};
use super::keys;
use super::model::Conversation;
use super::{Store, StoreError};

/// Longer than any arming function runs (inbound 30 s, bots 120 s): a put of a timer armed
/// before `mark - TIMER_LOOKBACK_MS` has landed by the time a tick sets `mark`.
pub const TIMER_LOOKBACK_MS: i64 = 5 * 60_000;

/// The sort key of a shard's mark (sorts above every `{slot_ms:013}#…` key).
const MARK_SK: &str = "MARK";

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
        Self {
            pk: timer_pk(shard),
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

    /// Whether a tick that looked up to `mark` may not have seen it: its slot is past the mark,
    /// or its put may still have been in flight then.
    pub fn unseen_at(&self, mark: Option<i64>) -> bool {
        mark.is_none_or(|m| self.slot_ms() > m || self.armed_ms > m - TIMER_LOOKBACK_MS)
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

    /// A page of a shard's timers whose slot is in `from_ms..=now_ms`, oldest first, at most
    /// `limit`, after the page that ended at `after_sk`; and whether more may follow.
    pub async fn due_bot_timers(
        &self,
        shard: u8,
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
            .expression_attribute_values(":p", s(timer_pk(shard)))
            .expression_attribute_values(":from", s(format!("{:013}", from_ms.max(0))))
            // Every key due at now_ms sorts below "{now_ms + 1:013}" (and the mark above it).
            .expression_attribute_values(":due", s(format!("{:013}", now_ms + 1)))
            .set_exclusive_start_key(after_sk.map(|sk| key(timer_pk(shard), sk)))
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
            .get::<Mark>(timer_pk(shard), MARK_SK)
            .await?
            .map(|m| m.mark))
    }

    /// Moves a shard's mark forward to `to_ms` (never back: overlapping ticks).
    pub async fn move_bot_timer_mark(&self, shard: u8, to_ms: i64) -> Result<(), StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(timer_pk(shard), MARK_SK)))
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

    /// The conversations of `timers`, by (phone number id, customer id): one strongly
    /// consistent read each, 100 per request. An erased conversation is absent.
    pub async fn timer_conversations(
        &self,
        timers: &[BotTimer],
    ) -> Result<HashMap<(String, String), Conversation>, StoreError> {
        let ids: BTreeSet<(&str, &str)> = timers
            .iter()
            .map(|t| (t.phone_number_id.as_str(), t.customer_id.as_str()))
            .collect();
        let items = self
            .batch_get(
                ids.iter()
                    .map(|(p, c)| key(keys::conversation_pk(p, c), keys::CONV_SK))
                    .collect(),
                None,
            )
            .await?;
        items
            .into_iter()
            .map(|it| {
                let c: Conversation = from_item(it)?;
                Ok(((c.phone_number_id.clone(), c.customer_id.clone()), c))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_takes_what_the_last_one_may_not_have_seen() {
        let t = |due: i64, armed: i64| BotTimer::new(0, "pn", "c", "conv", "b", 8, 0, due, armed);
        let mark = 10 * 60_000;
        // Never looked: everything.
        assert!(t(1, 0).unseen_at(None));
        // Due by the mark and armed long before it: seen.
        assert!(!t(mark, 0).unseen_at(Some(mark)));
        assert!(!t(mark - 1, mark - TIMER_LOOKBACK_MS).unseen_at(Some(mark)));
        // Due after the mark.
        assert!(t(mark + 1, 0).unseen_at(Some(mark)));
        // Armed so close to the mark that its put may have landed after that tick's query.
        assert!(t(0, mark - TIMER_LOOKBACK_MS + 1).unseen_at(Some(mark)));
        // Late arming takes the arming's slot: inside the next tick's range.
        let late = t(60_000, mark - 1_000);
        assert_eq!(late.slot_ms(), mark - 1_000);
        assert!(late.slot_ms() >= mark - TIMER_LOOKBACK_MS);
        assert!(late.unseen_at(Some(mark)));
        // The mark's key sorts above every timer's.
        assert!(MARK_SK > t(i64::from(u32::MAX) * 1000, 0).sk.as_str());
    }
}
