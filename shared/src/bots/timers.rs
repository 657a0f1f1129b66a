//! Timer bots (triggers 8 idle, 11 window closing, 12 no staff reply): which timers a customer
//! message arms, and when they fall due.
//!
//! Every customer message arms one timer per active timer bot that answers the conversation's
//! `rel_type` (an idempotent put of a [`BotTimer`]: the same key on a redelivery). Whoever
//! handles the message arms them: the bots function when the message goes there, the inbound
//! function itself when only timer bots may act on it ([`super::gate`]: no job, no hop). Both
//! build the timers here, so a message armed twice (a redelivery that went the other way)
//! writes the same items.
use super::matcher::CompiledBots;
use super::model::Trigger;
use crate::store::bot_timers::{BotTimer, TimerFacts};
use crate::store::model::RelType;
use crate::store::{Store, StoreError};

/// The timer triggers.
pub const TIMER_TRIGGERS: [Trigger; 3] =
    [Trigger::Idle, Trigger::WindowClosing, Trigger::NoStaffReply];

/// An active timer bot that answers the conversation: what arming its timer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerBot {
    pub bot_id: String,
    pub trigger: Trigger,
    pub minutes: u32,
}

/// The conversation a message arms timers in.
#[derive(Debug, Clone, Copy)]
pub struct TimerScope<'a> {
    pub phone_number_id: &'a str,
    pub customer_id: &'a str,
    pub conversation_id: &'a str,
    /// The due-time index shard of the conversation (`keys::shard_of`).
    pub shard: u8,
}

impl<'a> TimerScope<'a> {
    /// The scope of a conversation, in the index shard of its id among `shards`.
    pub fn new(
        phone_number_id: &'a str,
        customer_id: &'a str,
        conversation_id: &'a str,
        shards: u8,
    ) -> Self {
        Self {
            phone_number_id,
            customer_id,
            conversation_id,
            shard: crate::store::keys::shard_of(conversation_id, shards),
        }
    }
}

/// Puts the timers `bots` arm from the customer message of `at_ms`, at `now_ms` (idempotent).
pub async fn arm(
    store: &Store,
    bots: &[TimerBot],
    scope: &TimerScope<'_>,
    at_ms: i64,
    now_ms: i64,
) -> Result<(), StoreError> {
    for timer in bots.iter().filter_map(|b| b.timer(scope, at_ms, now_ms)) {
        store.arm_bot_timer(&timer).await?;
    }
    Ok(())
}

/// The set's timer bots that answer `rel_type` (a timer bot without `minutes` never fires),
/// in evaluation order within each trigger.
pub fn timer_bots(set: &CompiledBots, rel_type: RelType) -> Vec<TimerBot> {
    TIMER_TRIGGERS
        .iter()
        .flat_map(|&t| set.of_trigger(t))
        .filter(|b| b.answers(rel_type))
        .filter_map(|b| {
            Some(TimerBot {
                bot_id: b.id.clone(),
                trigger: b.reply_type,
                minutes: b.minutes?,
            })
        })
        .collect()
}

impl TimerBot {
    /// The timer the customer message of `at_ms` (Meta's timestamp, ms) arms at `now_ms`.
    pub fn timer(&self, scope: &TimerScope<'_>, at_ms: i64, now_ms: i64) -> Option<BotTimer> {
        let due = due_at(self.trigger, self.minutes, at_ms)?;
        Some(BotTimer::new(
            scope.shard,
            scope.phone_number_id,
            scope.customer_id,
            scope.conversation_id,
            &self.bot_id,
            self.trigger.code(),
            at_ms,
            due,
            now_ms,
        ))
    }
}

/// When a timer bot's timer falls due after the customer message of `at_ms`.
pub fn due_at(trigger: Trigger, minutes: u32, at_ms: i64) -> Option<i64> {
    let m = i64::from(minutes) * 60_000;
    match trigger {
        Trigger::Idle | Trigger::NoStaffReply => Some(at_ms + m),
        Trigger::WindowClosing => Some(at_ms + crate::store::dynamo::WINDOW_MS - m),
        _ => None,
    }
}

/// Why a due timer no longer holds (`None`: it does): a newer customer message re-armed the
/// timers, a staff reply answered (12), or the window it warns about already closed (11).
pub fn stale_timer(
    conv: &TimerFacts,
    trigger: u8,
    basis_ms: i64,
    now_ms: i64,
) -> Option<&'static str> {
    if conv.last_inbound_at.is_some_and(|t| t > basis_ms) {
        return Some("newer_message");
    }
    if trigger == Trigger::NoStaffReply.code()
        && conv.last_staff_reply_at.is_some_and(|t| t >= basis_ms)
    {
        return Some("staff_replied");
    }
    if trigger == Trigger::WindowClosing.code()
        && conv.window_expires_at.is_none_or(|e| e <= now_ms)
    {
        return Some("window_closed");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::testutil::*;

    #[test]
    fn each_timer_bot_answering_the_conversation_arms_one_timer() {
        let timer = |id: &str, t: Trigger, minutes: Option<u32>, rel: &[RelType]| {
            let mut b = text_bot(id, t, None, "x");
            b.minutes = minutes;
            b.rel_types = rel.to_vec();
            b
        };
        let set = CompiledBots::compile(
            &[
                timer("idle", Trigger::Idle, Some(30), &[]),
                timer(
                    "closing",
                    Trigger::WindowClosing,
                    Some(60),
                    &[RelType::Leads],
                ),
                timer(
                    "staff",
                    Trigger::NoStaffReply,
                    Some(10),
                    &[RelType::Contacts],
                ),
                timer("never", Trigger::Idle, None, &[]),
                text_bot("kw", Trigger::Keyword, Some("price"), "x"),
            ],
            &[],
        );
        let ids = |rel| -> Vec<String> {
            timer_bots(&set, rel)
                .into_iter()
                .map(|t| t.bot_id)
                .collect()
        };
        assert_eq!(ids(RelType::Leads), ["idle", "closing"]);
        assert_eq!(ids(RelType::Contacts), ["idle", "staff"]);
        assert_eq!(ids(RelType::General), ["idle"]);

        let scope = TimerScope {
            phone_number_id: "pn",
            customer_id: "c1",
            conversation_id: "conv1",
            shard: 3,
        };
        let at = 1_700_000_000_000;
        let armed: Vec<BotTimer> = timer_bots(&set, RelType::Leads)
            .iter()
            .filter_map(|t| t.timer(&scope, at, at))
            .collect();
        assert_eq!(armed[0].due_ms, at + 30 * 60_000);
        assert_eq!(armed[0].trigger, 8);
        assert_eq!(armed[0].pk, "BOTTIMER#3");
        assert_eq!(
            armed[1].due_ms,
            at + crate::store::dynamo::WINDOW_MS - 60 * 60_000
        );
        assert_eq!(
            armed[1].sk,
            format!("{:013}#conv1#closing#{at}", armed[1].due_ms)
        );
        // The same message arms the same items (a redelivery puts them again, same keys).
        let again = timer_bots(&set, RelType::Leads)[0]
            .timer(&scope, at, at + 60_000)
            .unwrap();
        assert_eq!((&again.pk, &again.sk), (&armed[0].pk, &armed[0].sk));
        assert_eq!(due_at(Trigger::Keyword, 5, at), None);
        // A message delivered late arms a timer already due: in now's slot, due as it was.
        let late = timer_bots(&set, RelType::Leads)[0]
            .timer(&scope, at, at + 3_600_000)
            .unwrap();
        assert_eq!(late.due_ms, at + 30 * 60_000);
        assert_eq!(late.slot_ms(), at + 3_600_000);
        assert!(late.sk.starts_with(&format!("{:013}#", at + 3_600_000)));
    }
}
