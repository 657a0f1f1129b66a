//! Whether an inbound message goes to the bots function at all.
//!
//! The hop costs a FIFO send, receive and delete, an invocation, its logs and four reads (≈ 2.5
//! USD per million messages). It is skipped when nothing there can answer: no bot is marked
//! active (the bot set's head, [`crate::store::bots::BotSetHead`]) and AI is off (`AiSecret`,
//! cached like the bots function caches it). Anything unknown hands off: a head whose active
//! bots were never counted, an AI secret that cannot be read now. What the bots function
//! would have done for such a message with no active bot and AI off is nothing, except for a
//! rating request still pending from a bot deactivated since (its answer is then not thanked
//! nor recorded) and the first-message marker, which the conversation keeps itself
//! (`first_inbound_wamid`).
use std::sync::Arc;

use crate::credentials::AiSettings;
use crate::secrets::{CachedSecret, SecretError};
use crate::store::bots::BotSetHead;
use crate::store::{Store, StoreError};

/// What the gate decided for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOff {
    /// Send the job; `set_version` is the bot set's version read (the bots function then
    /// needs no read of its own to know its compiled set is current).
    Send { set_version: Option<i64> },
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

/// The inbound function's gate: the AI settings (when AI is configured) and the store.
pub struct BotsGate {
    ai: Option<Arc<CachedSecret<AiSettings>>>,
}

impl BotsGate {
    pub fn new(ai: Option<Arc<CachedSecret<AiSettings>>>) -> Self {
        Self { ai }
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

    /// The decision for one message: the AI switch first (cached), the set's head only when
    /// AI is off (one strongly consistent read).
    pub async fn decide(&self, store: &Store) -> Result<HandOff, StoreError> {
        let ai = self.ai().await;
        if ai != AiSwitch::Off {
            return Ok(decide(ai, None));
        }
        let head = store.bot_set_head().await?;
        Ok(decide(ai, Some(&head)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
