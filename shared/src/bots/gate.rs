//! Whether an inbound message goes to the bots function at all.
//!
//! The hop costs a FIFO send, receive and delete, an invocation, its logs and three reads (≈ 2.4
//! USD per million messages). It is made only when something there may answer:
//!
//! 1. AI is on (`AiSecret`, cached as the bots function caches it): it may answer anything;
//! 2. the conversation is held for the bots (`bots_hold_until`, read with the conversation
//!    when the message is stored: no extra read): a job handed off and perhaps not answered
//!    yet ([`HANDOFF_HOLD_MS`], set by the inbound function before each hand-off, so a
//!    customer typing ahead of a menu, or answering while a job waits for its retry, is never
//!    judged on a state not saved yet), or a menu, a flow or a rating request in progress
//!    (set by the bots function to the state's expiry, [`hold_until`], before it answers);
//! 3. else a bot is marked active (the bot set's head, [`crate::store::bots::BotSetHead`]: one
//!    strongly consistent read) and an active bot's trigger matches the message (the same
//!    compiled triggers as the bots function's, [`super::compiled_set`]).
//!
//! When nothing but timer bots can act on the message (every customer message arms their
//! timers, [`super::timers`]), the gate answers [`HandOff::Arm`]: the inbound function puts the
//! timers itself, as the bots function would have, and makes no hop.
//!
//! Anything unknown hands off: a head whose active bots were never counted, AI settings that
//! cannot be read now, a head or set that cannot be read now, a redelivered message (whether it
//! was the conversation's first or opened a session, and its hold, are not known again: and a
//! redelivery means the first attempt failed, perhaps before the hold was written), the first
//! message of a conversation from before the hold existed (the bots function then holds it if
//! a menu, flow or rating is in progress there). A message skipped is
//! one the bots function would have answered with nothing and no effect, its state kept (a
//! unit test walks every trigger kind, message shape and idle state). What differs: a menu or
//! flow past its expiry is cleared from the bot state by the next message that goes, not by the
//! first after it expired (the same answers). The "first message" trigger reads the
//! conversation's own record of its first customer message (`first_inbound_wamid`), and the
//! job carries the flags the inbound function computed, so both judge a message alike.
use std::sync::Arc;

use super::compiled_set::CompiledSet;
use super::engine::{FLOW_EXPIRE_MS, RATING_EXPIRE_MS};
use super::matcher::{CompiledBots, MessageFacts};
use super::timers::{TimerBot, timer_bots};
use super::{BotResponse, BotState};
use crate::credentials::AiSettings;
use crate::secrets::{CachedSecret, SecretError};
use crate::store::Store;
use crate::store::bots::BotSetHead;

/// What the gate decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOff {
    /// Send the job; `set_version` is the bot set's version read (the bots function then
    /// needs no read of its own to know its compiled set is current).
    Send { set_version: Option<i64> },
    /// Only these timer bots may act on the message: the caller arms their timers (no job).
    Arm(Vec<TimerBot>),
    /// Nothing can answer: no job.
    Skip,
}

/// Whether AI may answer, as far as the gate can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiSwitch {
    On,
    Off,
    /// The settings could not be read now.
    Unknown,
}

/// The decision from what was read (`head`: `None` when AI settled it without a read).
pub fn decide(ai: AiSwitch, head: Option<&BotSetHead>) -> HandOff {
    match (ai, head) {
        (AiSwitch::On | AiSwitch::Unknown, _) | (_, None) => HandOff::Send { set_version: None },
        (AiSwitch::Off, Some(h)) if h.may_answer() => HandOff::Send {
            set_version: Some(h.version),
        },
        (AiSwitch::Off, Some(_)) => HandOff::Skip,
    }
}

/// How long a conversation is held for the bots after a hand-off: twice as long as a job may be
/// pending on its own (`BotsQueue`: 5 receives, 360 s apart), for the jobs before it in its
/// FIFO group and throttling.
pub const HANDOFF_HOLD_MS: i64 = 60 * 60_000;

/// A hold with at least `HANDOFF_HOLD_MS - HOLD_FRESH_MS` left is not moved by a hand-off.
pub const HOLD_FRESH_MS: i64 = 5 * 60_000;

/// A customer message as the gate weighs it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// What the triggers read (`None`: a redelivery, which always goes: whether it was the
    /// first or opened a session, and the conversation's hold, are not known again).
    pub facts: Option<MessageFacts<'a>>,
    /// The conversation predates the hold (see `StoredFacts::predates_hold`): it goes, and the
    /// bots function holds it if something is in progress.
    pub predates_hold: bool,
    /// The conversation's `bots_hold_until` as read when the message was stored.
    pub held_until: Option<i64>,
    /// The message's time (ms), or now if earlier: what the hold is compared with.
    pub at_ms: i64,
}

/// What the active bots may do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// A trigger matches it, or its facts are not known (`None`): the bots function judges.
    Trigger,
    /// No trigger matches; these timer bots answer the conversation, so it arms their timers.
    Timers(Vec<TimerBot>),
    /// Nothing.
    Nothing,
}

/// What the set's active bots may do with the message (see [`Reach`]).
pub fn reach(set: &CompiledBots, facts: Option<&MessageFacts<'_>>) -> Reach {
    let Some(f) = facts else {
        return Reach::Trigger;
    };
    if !set.matching(f).is_empty() {
        return Reach::Trigger;
    }
    let timers = timer_bots(set, f.rel_type);
    if timers.is_empty() {
        Reach::Nothing
    } else {
        Reach::Timers(timers)
    }
}

/// Until when the state takes any message whatever it says (ms; `None`: no menu, flow or rating
/// request in progress): the latest of its menu's expiry (the menu bot's `expire_minutes`; an hour when the bot is no
/// longer in the set, past which its menu is gone anyway), its flow's and its rating request's.
pub fn hold_until(state: &BotState, set: &CompiledBots) -> Option<i64> {
    let menu = state.menu.as_ref().map(|m| {
        let minutes = set
            .get(&m.bot_id)
            .and_then(|(_, b)| match &b.response {
                BotResponse::Menu { settings, .. } => Some(i64::from(settings.expire_minutes)),
                _ => None,
            })
            .unwrap_or(60);
        m.at_ms + minutes * 60_000
    });
    let flow = state.flow.as_ref().map(|f| f.at_ms + FLOW_EXPIRE_MS);
    let rating = state.rating.as_ref().map(|r| r.at_ms + RATING_EXPIRE_MS);
    // One more second: the engine's comparisons are inclusive.
    [menu, flow, rating]
        .into_iter()
        .flatten()
        .max()
        .map(|t| t + 1_000)
}

/// The inbound function's gate: the AI settings (when AI is configured) and the compiled
/// triggers.
pub struct BotsGate {
    ai: Option<Arc<CachedSecret<AiSettings>>>,
    set: CompiledSet,
}

impl BotsGate {
    pub fn new(ai: Option<Arc<CachedSecret<AiSettings>>>) -> Self {
        Self {
            ai,
            set: CompiledSet::new(),
        }
    }

    /// AI as the bots function would see it: enabled settings; settings that no reader can use
    /// are off (the bots function turns AI off for them too, loudly).
    pub async fn ai(&self) -> AiSwitch {
        let Some(ai) = &self.ai else {
            return AiSwitch::Off;
        };
        match ai.get().await {
            Ok(s) if s.enabled => AiSwitch::On,
            Ok(_) | Err(SecretError::Invalid { .. }) => AiSwitch::Off,
            Err(e) => {
                tracing::warn!(error = %e, "AI settings unreadable now: the message goes to the bots");
                AiSwitch::Unknown
            }
        }
    }

    /// The decision for one message (see the module): the AI switch first (cached), the hold,
    /// then the set's head, then the compiled triggers. A read that fails hands off.
    pub async fn decide(&self, store: &Store, c: &Candidate<'_>) -> HandOff {
        let ai = self.ai().await;
        if ai != AiSwitch::Off {
            return decide(ai, None);
        }
        if c.facts.is_none() || c.predates_hold || c.held_until.is_some_and(|t| t > c.at_ms) {
            return HandOff::Send { set_version: None };
        }
        let head = match store.bot_set_head().await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "bot set unreadable now: the message goes to the bots");
                return HandOff::Send { set_version: None };
            }
        };
        let by_head = decide(ai, Some(&head));
        if by_head == HandOff::Skip || !head.tracked {
            return by_head;
        }
        match self.set.get(store, Some(head.version)).await {
            Ok(set) => match reach(&set, c.facts.as_ref()) {
                Reach::Trigger => by_head,
                Reach::Timers(timers) => HandOff::Arm(timers),
                Reach::Nothing => HandOff::Skip,
            },
            Err(e) => {
                tracing::warn!(error = %e, "bot set unreadable now: the message goes to the bots");
                by_head
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::Trigger;

    /// Whether a conversation's bot state would take a message whatever it says.
    fn in_progress(state: &BotState) -> bool {
        state.menu.is_some() || state.flow.is_some() || state.rating.is_some()
    }

    fn head(version: i64, tracked: bool, active: &[&str]) -> BotSetHead {
        BotSetHead {
            version,
            tracked,
            active_ids: active.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn only_a_known_silence_skips_the_bots() {
        let send = |v| HandOff::Send { set_version: v };
        // Never a bot, AI off.
        assert_eq!(
            decide(AiSwitch::Off, Some(&head(0, true, &[]))),
            HandOff::Skip
        );
        // Bots saved, none active (all deactivated or deleted).
        assert_eq!(
            decide(AiSwitch::Off, Some(&head(7, true, &[]))),
            HandOff::Skip
        );
        // One active: the set's version travels with the job.
        assert_eq!(
            decide(AiSwitch::Off, Some(&head(7, true, &["b1"]))),
            send(Some(7))
        );
        // Saved before the head kept its active bots: unknown until counted.
        assert_eq!(
            decide(AiSwitch::Off, Some(&head(3, false, &[]))),
            send(Some(3))
        );
        // AI answers what no bot does; an unreadable switch hands off.
        assert_eq!(decide(AiSwitch::On, None), send(None));
        assert_eq!(decide(AiSwitch::Unknown, None), send(None));
        assert_eq!(decide(AiSwitch::On, Some(&head(0, true, &[]))), send(None));
        // Nothing read: hand off.
        assert_eq!(decide(AiSwitch::Off, None), send(None));
    }

    /// What the engine decides for `facts` over `state` (no staff reply, AI off).
    fn evaluated(
        set: &CompiledBots,
        facts: MessageFacts<'_>,
        state: &BotState,
    ) -> crate::bots::Decision {
        let f = crate::bots::testutil::fields();
        crate::bots::evaluate(
            set,
            &crate::bots::Inbound {
                wamid: "wamid.x",
                facts,
                customer: crate::bots::testutil::customer(&f),
                last_staff_reply_at: None,
                ai_auto: false,
            },
            state,
            &crate::bots::Limits::default(),
        )
    }

    /// The gate's promise: a message it skips is one the bots function would have answered
    /// with nothing, no effect and the state as it was — over every trigger kind, message
    /// shape and state without anything in progress.
    #[test]
    fn a_skipped_message_is_one_the_bots_would_not_have_answered() {
        use crate::bots::Handover;
        use crate::bots::model::Bot;
        use crate::bots::testutil::*;
        use crate::store::model::RelType;

        let mut within = text_bot("w", Trigger::WithinHours, None, "open");
        within.business_hours = Some(hours("mon-fri 09:00-17:00", "Europe/Madrid"));
        let mut outside = text_bot("o", Trigger::OutsideHours, None, "closed");
        outside.business_hours = within.business_hours.clone();
        let mut staff_only = text_bot("st", Trigger::Contains, Some("invoice"), "x");
        staff_only.rel_types = vec![RelType::Staff];
        let mut idle = text_bot("i", Trigger::Idle, None, "still there?");
        idle.minutes = Some(30);
        let groups = [group("g1", "price", &["price", "cost", "precio"])];
        let candidates = [
            text_bot("e", Trigger::Exact, Some("hello"), "hi"),
            text_bot("c", Trigger::Contains, Some("opening hours"), "9-5"),
            text_bot("k", Trigger::Keyword, Some("refund, @price"), "..."),
            text_bot("y", Trigger::Synonym, Some("price"), "..."),
            text_bot("h", Trigger::HumanRequest, None, "a human"),
            text_bot("f", Trigger::FirstMessage, None, "welcome"),
            text_bot("s", Trigger::SessionStart, None, "welcome back"),
            text_bot("cl", Trigger::Closed, None, "rate us"),
            within,
            outside,
            staff_only,
            idle,
        ];
        let sets: Vec<Vec<Bot>> = (0..candidates.len())
            .map(|i| vec![candidates[i].clone()])
            .chain([candidates.to_vec(), vec![]])
            .collect();
        let texts = [
            Some("hello"),
            Some("Hello!"),
            Some("what are your opening hours?"),
            Some("I want a refund"),
            Some("¿Precio?"),
            Some("can I talk to an agent"),
            Some("my invoice"),
            Some("thanks"),
            Some("   "),
            None,
        ];
        let evenings = [t0(), t0() + chrono::Duration::hours(8)];
        let states = [
            BotState::default(),
            BotState {
                handed_over: Some(Handover {
                    bot_id: None,
                    reason: "asked".into(),
                    at_ms: 0,
                }),
                rated: Some(4),
                ..BotState::default()
            },
        ];
        let mut skipped = 0;
        for bots in &sets {
            let set = CompiledBots::compile(bots, &groups);
            for text in texts {
                for reply in [None, Some(("opt_1", "Opening hours"))] {
                    for (first_ever, session_start) in [(false, false), (true, true), (false, true)]
                    {
                        for at in evenings {
                            let facts = MessageFacts {
                                text,
                                reply_id: reply.map(|r| r.0),
                                reply_title: reply.map(|r| r.1),
                                rel_type: RelType::Leads,
                                first_ever,
                                session_start,
                                at,
                            };
                            for state in &states {
                                // Timers only: the message arms them (the same items either
                                // way) and does nothing else.
                                if reach(&set, Some(&facts)) == Reach::Trigger || in_progress(state)
                                {
                                    continue;
                                }
                                skipped += 1;
                                let d = evaluated(&set, facts, state);
                                assert!(
                                    d.replies.is_empty()
                                        && d.effects.is_empty()
                                        && d.state == *state,
                                    "skipped, yet the bots would act: {bots:?} {facts:?} {state:?} → {d:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(skipped > 100, "{skipped}");
    }

    /// The hold a menu, a flow or a rating request sets lasts exactly as long as the engine
    /// still lets the state take a message that no trigger matches.
    #[test]
    fn a_state_in_progress_holds_the_conversation_while_the_engine_would_use_it() {
        use crate::bots::testutil::*;
        use crate::bots::{MenuPosition, PendingRating};
        let settings = crate::bots::MenuSettings {
            expire_minutes: 15,
            ..Default::default()
        };
        let menu_bot = with_response(
            text_bot("m", Trigger::Keyword, Some("menu"), "x"),
            BotResponse::Menu {
                menu: sample_menu(),
                settings,
            },
        );
        let set = CompiledBots::compile(&[menu_bot], &[]);
        let at = t0().timestamp_millis();
        let answered = |state: &BotState, text: &'static str, when: i64| {
            let mut facts = text_facts(text);
            facts.at = chrono::DateTime::from_timestamp_millis(when).unwrap();
            assert_eq!(reach(&set, Some(&facts)), Reach::Nothing);
            !evaluated(&set, facts, state).replies.is_empty()
        };
        let in_menu = BotState {
            menu: Some(MenuPosition {
                bot_id: "m".into(),
                path: vec![],
                at_ms: at,
            }),
            ..BotState::default()
        };
        let until = hold_until(&in_menu, &set).unwrap();
        assert_eq!(until, at + 15 * 60_000 + 1_000);
        assert!(answered(&in_menu, "Sales", until - 1_001));
        assert!(!answered(&in_menu, "Sales", until));
        let rating = BotState {
            rating: Some(PendingRating {
                bot_id: "r".into(),
                at_ms: at,
            }),
            ..BotState::default()
        };
        let until = hold_until(&rating, &set).unwrap();
        assert!(answered(&rating, "5", until - 1_001));
        assert!(!answered(&rating, "5", until));
        // The latest of several; nothing in progress holds nothing.
        let both = BotState {
            menu: in_menu.menu.clone(),
            rating: rating.rating.clone(),
            ..BotState::default()
        };
        assert_eq!(hold_until(&both, &set), Some(until));
        assert_eq!(hold_until(&BotState::default(), &set), None);
        // A menu whose bot left the set: an hour, past which it is gone anyway.
        let gone = CompiledBots::compile(&[], &[]);
        assert_eq!(hold_until(&in_menu, &gone), Some(at + 3_600_000 + 1_000));
    }

    #[test]
    fn timer_bots_alone_are_armed_here_and_unknown_facts_go() {
        use crate::bots::testutil::*;
        use crate::store::model::RelType;
        let mut idle = text_bot("i", Trigger::Idle, None, "still there?");
        idle.minutes = Some(30);
        let armed = Reach::Timers(vec![TimerBot {
            bot_id: "i".into(),
            trigger: Trigger::Idle,
            minutes: 30,
        }]);
        let set = CompiledBots::compile(std::slice::from_ref(&idle), &[]);
        assert_eq!(reach(&set, Some(&text_facts("thanks"))), armed);
        // A timer bot for staff conversations arms nothing in a lead's.
        let mut staff_idle = idle.clone();
        staff_idle.rel_types = vec![RelType::Staff];
        let set = CompiledBots::compile(&[staff_idle], &[]);
        assert_eq!(reach(&set, Some(&text_facts("thanks"))), Reach::Nothing);
        // A trigger that matches sends the message to the bots (they arm the timers too).
        let hello = text_bot("e", Trigger::Exact, Some("hello"), "hi");
        let set = CompiledBots::compile(&[idle, hello.clone()], &[]);
        assert_eq!(reach(&set, Some(&text_facts("hello"))), Reach::Trigger);
        assert_eq!(reach(&set, Some(&text_facts("thanks"))), armed);
        let set = CompiledBots::compile(&[hello], &[]);
        assert_eq!(reach(&set, Some(&text_facts("thanks"))), Reach::Nothing);
        assert_eq!(reach(&set, Some(&text_facts("hello"))), Reach::Trigger);
        assert_eq!(reach(&set, None), Reach::Trigger);
        // A menu, a flow or a pending rating takes any message.
        assert!(!in_progress(&BotState::default()));
        let menu = BotState {
            menu: Some(crate::bots::MenuPosition {
                bot_id: "m".into(),
                path: vec![],
                at_ms: 0,
            }),
            ..BotState::default()
        };
        assert!(in_progress(&menu));
    }

    #[tokio::test]
    async fn the_ai_switch_reads_the_settings_as_the_bots_function_does() {
        use crate::secrets::SecretSource;
        /// The secret's text, or `None`: Secrets Manager does not answer.
        struct Fixed(Option<&'static str>);
        #[async_trait::async_trait]
        impl SecretSource for Fixed {
            async fn secret_string(&self, id: &str) -> Result<String, SecretError> {
                self.0.map(str::to_string).ok_or(SecretError::Unavailable {
                    id: id.into(),
                    reason: "timeout".into(),
                })
            }
        }
        let gate = |r: Option<&'static str>| {
            BotsGate::new(Some(Arc::new(CachedSecret::new(
                Arc::new(Fixed(r)),
                "ai",
                std::time::Duration::from_secs(60),
            ))))
        };
        assert_eq!(BotsGate::new(None).ai().await, AiSwitch::Off);
        assert_eq!(gate(Some("{}")).ai().await, AiSwitch::Off);
        assert_eq!(
            gate(Some(r#"{"enabled": true, "mode": "manual"}"#))
                .ai()
                .await,
            AiSwitch::On
        );
        assert_eq!(gate(Some("not json")).ai().await, AiSwitch::Off);
        assert_eq!(gate(None).ai().await, AiSwitch::Unknown);
    }
}
