//! What the inbound function hands to the bots function (`BotsQueue`, FIFO, one message group
//! per conversation): one inbound customer message with the facts the triggers read, or an
//! event of the conversation (closed by staff). Versioned like the other queue bodies.
use serde::{Deserialize, Serialize};

use crate::envelope::{QueuedEnvelope, sha256_hex};
use crate::store::keys;

pub const BOT_JOB_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BotEvent {
    /// A stored inbound customer message.
    Message {
        wamid: String,
        /// Meta's message type (`text`, `interactive`, `button`, `image`, …).
        message_type: String,
        /// Meta's timestamp (ms).
        at_ms: i64,
        /// Text body, or a media caption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Interactive reply id (button / list), or a template quick-reply payload.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_title: Option<String>,
        /// Whether it was the conversation's first customer message, and whether it opened a
        /// 24-hour session, as storing it found (absent: a redelivery, or a job from before:
        /// the bots function reads the conversation).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_inbound: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_start: Option<bool>,
    },
    /// Staff closed the conversation (trigger 13: the rating request).
    Closed { at_ms: i64, staff_id: String },
    /// A bot timer fell due (triggers 8 idle, 11 window closing, 12 no staff reply), armed by
    /// the customer message of `basis_ms`.
    Timer {
        bot_id: String,
        trigger: u8,
        basis_ms: i64,
        due_ms: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotJob {
    pub v: u32,
    pub phone_number_id: String,
    pub customer_id: String,
    /// The bot set's version the inbound function read when it handed the message off (the
    /// bots function's compiled set is current when it is at least that; absent: read it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_version: Option<i64>,
    #[serde(flatten)]
    pub event: BotEvent,
}

impl BotJob {
    pub fn from_body(body: &str) -> Result<Self, String> {
        let job: BotJob = serde_json::from_str(body).map_err(|e| format!("not a bot job: {e}"))?;
        if job.v != BOT_JOB_VERSION {
            return Err(format!(
                "bot job version {} is not {BOT_JOB_VERSION}",
                job.v
            ));
        }
        Ok(job)
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a bot job serializes")
    }

    pub fn conversation_id(&self) -> String {
        keys::conversation_id(&self.phone_number_id, &self.customer_id)
    }

    /// The queue entry: one message group per conversation (answered in order), deduplicated
    /// by the event (a redelivered inbound message hands the same job off again).
    pub fn envelope(&self) -> QueuedEnvelope {
        let (what, label) = match &self.event {
            BotEvent::Message { wamid, .. } => (format!("message:{wamid}"), wamid.clone()),
            BotEvent::Closed { at_ms, .. } => {
                (format!("closed:{at_ms}"), format!("closed {at_ms}"))
            }
            BotEvent::Timer {
                bot_id, basis_ms, ..
            } => (
                format!("timer:{bot_id}:{basis_ms}"),
                format!("timer {bot_id} {basis_ms}"),
            ),
        };
        let conversation = self.conversation_id();
        QueuedEnvelope {
            group_id: sha256_hex(&[&conversation]),
            dedupe_id: sha256_hex(&[&conversation, &what]),
            body: self.to_body(),
            label: format!("bot job {label}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_reads_back_and_names_its_group() {
        let job = BotJob {
            v: BOT_JOB_VERSION,
            phone_number_id: "106540352242922".into(),
            customer_id: "c1".into(),
            set_version: Some(3),
            event: BotEvent::Message {
                wamid: "wamid.1".into(),
                message_type: "text".into(),
                at_ms: 1,
                text: Some("hi".into()),
                reply_id: None,
                reply_title: None,
                first_inbound: Some(true),
                session_start: Some(true),
            },
        };
        assert_eq!(BotJob::from_body(&job.to_body()).unwrap(), job);
        let e = job.envelope();
        assert_eq!(e.group_id.len(), 64);
        assert_ne!(e.group_id, e.dedupe_id);
        assert!(BotJob::from_body(r#"{"v":2}"#).is_err());
    }
}
