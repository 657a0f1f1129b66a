//! The bots function: answers each inbound customer message (and each conversation closed by
//! staff) with the bots staff defined, off the message path (`BotsQueue`, FIFO, one message
//! group per conversation: a conversation's messages are answered in order, different
//! conversations in parallel).
//!
//! Answered once, whatever is redelivered: every bot message goes through the outbound layer
//! (`shared::sending`) under an idempotency key derived from (inbound wamid, bot, step), CRM
//! events carry deterministic ids, and the conversation's bot state is saved conditionally on
//! the version read, recording the message as handled. A crash after sending and before
//! saving re-evaluates from the same state, so the same answers come out under the same keys
//! and are not sent again.
mod ai;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::{Map, Value, json};
use shared::archive::RawArchive;
use shared::bots::compiled_set::CompiledSet;
use shared::bots::gate::hold_until;
use shared::bots::job::{BotEvent, BotJob};
use shared::bots::matcher::{CompiledBots, MessageFacts};
use shared::bots::timers::{self, TimerScope, stale_timer, timer_bots};
use shared::bots::{self, BotReply, Customer, Decision, Effect, Inbound, Limits, Trigger};
use shared::credentials::AiMode;
use shared::crm_events::{EventBus, OutboundEvent};
use shared::meta::graph::{ErrorClass, GraphError};
use shared::sending::{Outbound, SendError, SendOutcome, SendRequest};
use shared::sqs_batch::{self, BatchPolicy, Deadline, Ordering, RecordError, RecordHandler};
use shared::store::model::{Conversation, Direction};
use shared::store::{Store, StoreError};
use tracing::Instrument;

pub use ai::{AI_BUDGET, Ai, AiRequest, DEFAULT_FALLBACK};

/// One conversation's records in order; 2 s are kept to answer and flush the activity log.
pub const BATCH_POLICY: BatchPolicy = BatchPolicy {
    ordering: Ordering::PerGroup,
    reserve: Duration::from_secs(2),
};

/// Overall time one bot message may take (pacing wait and Meta's attempts).
pub const SEND_BUDGET: Duration = Duration::from_secs(15);

/// Evaluations of one message when a concurrent change of the bot state (staff closing or
/// releasing the conversation) wins the save.
const MAX_EVALUATIONS: usize = 3;

pub struct BotsApp {
    pub store: Store,
    pub outbound: Outbound,
    pub bus: Arc<dyn EventBus>,
    pub now_ms: fn() -> i64,
    pub limits: Limits,
    /// The AI provider and settings (`None`: no AI configured).
    ai: Option<Ai>,
    /// The compiled trigger set (kept between invocations; recompiled only when the bot set's
    /// version moves).
    compiled: CompiledSet,
}

fn retry(what: &str, e: impl std::fmt::Display) -> RecordError {
    RecordError::Retry(format!("{what}: {e}"))
}

fn store_err(e: StoreError) -> RecordError {
    if e.is_permanent() {
        RecordError::Park(e.to_string())
    } else {
        RecordError::Retry(e.to_string())
    }
}

impl BotsApp {
    pub fn new(
        store: Store,
        outbound: Outbound,
        bus: Arc<dyn EventBus>,
        now_ms: fn() -> i64,
    ) -> Self {
        Self {
            store,
            outbound,
            bus,
            now_ms,
            limits: Limits::default(),
            ai: None,
            compiled: CompiledSet::new(),
        }
    }

    /// Answers with AI too (bot_type 12 and the `auto` / `manual` modes).
    pub fn with_ai(mut self, ai: Ai) -> Self {
        self.ai = Some(ai);
        self
    }

    pub async fn handle_batch(
        &self,
        archive: &dyn RawArchive,
        event: SqsEvent,
        deadline: Deadline,
    ) -> SqsBatchResponse {
        sqs_batch::process(event, BATCH_POLICY, deadline, archive, self).await
    }

    /// The active bots, compiled (see [`CompiledSet`]); `known`: the version the job carries.
    pub async fn bots(&self, known: Option<i64>) -> Result<Arc<CompiledBots>, StoreError> {
        self.compiled.get(&self.store, known).await
    }

    /// The CRM record's fields the placeholders read (`{{lead.name}}`, …).
    async fn record_fields(&self, conv: &Conversation) -> Result<Map<String, Value>, StoreError> {
        let mut fields = Map::new();
        if let Some(id) = conv.rel_id.as_deref() {
            let kind = match conv.rel_type.as_str() {
                "leads" => "lead",
                "contacts" => "contact",
                "staff" => "staff",
                _ => "",
            };
            if !kind.is_empty()
                && let Some(r) = self.store.directory_record(kind, id).await?
            {
                fields.insert("id".into(), json!(r.id));
                if let Some(n) = r.name {
                    fields.insert("name".into(), json!(n));
                }
                if let Some(p) = r.phone_raw {
                    fields.insert("phone".into(), json!(p));
                }
            }
        }
        Ok(fields)
    }

    async fn process(&self, job: &BotJob) -> Result<(), RecordError> {
        let (pnid, cid) = (job.phone_number_id.as_str(), job.customer_id.as_str());
        let Some(conv) = self
            .store
            .conversation(pnid, cid)
            .await
            .map_err(store_err)?
        else {
            tracing::warn!(conversation_id = %job.conversation_id(), "no such conversation: nothing to answer");
            return Ok(());
        };
        let profile = self.store.customer(cid).await.map_err(store_err)?;
        let fields = self.record_fields(&conv).await.map_err(store_err)?;
        let name = conv
            .customer_name
            .clone()
            .or_else(|| profile.as_ref().and_then(|p| p.name.clone()));
        let customer = Customer {
            name: name.as_deref(),
            phone: conv.customer_phone.as_deref(),
            wa_id: conv.wa_id.as_deref(),
            rel_type: conv.rel_type,
            fields: &fields,
            opted_out: profile.as_ref().is_some_and(|p| p.marketing_opt_out),
        };
        let set = self.bots(job.set_version).await.map_err(store_err)?;
        let ai_settings = self.ai_settings().await?;
        let ai_auto = ai_settings.as_ref().is_some_and(|s| s.mode == AiMode::Auto);
        for _ in 0..MAX_EVALUATIONS {
            let stored = self.store.bot_state(pnid, cid).await.map_err(store_err)?;
            let (decision, handled, key_base) = match &job.event {
                BotEvent::Message {
                    wamid,
                    at_ms,
                    text,
                    reply_id,
                    reply_title,
                    first_inbound,
                    session_start,
                    ..
                } => {
                    if stored.has_handled(wamid) {
                        tracing::info!(wamid = %wamid, "already answered");
                        return Ok(());
                    }
                    let facts = MessageFacts {
                        text: text.as_deref(),
                        reply_id: reply_id.as_deref(),
                        reply_title: reply_title.as_deref(),
                        rel_type: conv.rel_type,
                        // As storing found them (the gate judged the message on them);
                        // from the conversation for a redelivery.
                        first_ever: first_inbound
                            .unwrap_or_else(|| first_ever(&conv, stored.version, wamid)),
                        session_start: session_start
                            .unwrap_or(conv.session_started_at == Some(*at_ms)),
                        at: chrono::DateTime::from_timestamp_millis(*at_ms)
                            .unwrap_or_else(chrono::Utc::now),
                    };
                    let inbound = Inbound {
                        wamid,
                        facts,
                        customer: Customer { ..customer },
                        last_staff_reply_at: conv.last_staff_reply_at,
                        ai_auto,
                    };
                    (
                        bots::evaluate(&set, &inbound, &stored.state, &self.limits),
                        Some(wamid.as_str()),
                        format!("bot:{wamid}"),
                    )
                }
                BotEvent::Closed { at_ms, .. } => (
                    bots::on_closed(&set, &Customer { ..customer }, &stored.state, *at_ms),
                    None,
                    format!("bot:closed:{at_ms}"),
                ),
                BotEvent::Timer {
                    bot_id,
                    trigger,
                    basis_ms,
                    ..
                } => {
                    let key = format!("timer:{bot_id}:{basis_ms}");
                    if stored.has_handled(&key) {
                        return Ok(());
                    }
                    if let Some(why) =
                        stale_timer(&(&conv).into(), *trigger, *basis_ms, (self.now_ms)())
                    {
                        tracing::info!(bot_id = %bot_id, reason = why, "bot timer no longer holds");
                        return Ok(());
                    }
                    let d = bots::on_timer(
                        &set,
                        bot_id,
                        &Customer { ..customer },
                        &stored.state,
                        (self.now_ms)(),
                        &self.limits,
                    );
                    if *trigger == Trigger::NoStaffReply.code() && d.silenced.is_none() {
                        self.publish(
                            "conversation.unanswered",
                            format!(
                                "conversation.unanswered:{}:{basis_ms}",
                                conv.conversation_id
                            ),
                            &conv,
                            json!({"since": basis_ms, "bot_id": bot_id, "at": (self.now_ms)()}),
                        )
                        .await?;
                    }
                    (d, None, format!("bot:{key}"))
                }
            };
            let handled_key = match &job.event {
                BotEvent::Timer {
                    bot_id, basis_ms, ..
                } => Some(format!("timer:{bot_id}:{basis_ms}")),
                _ => handled.map(str::to_string),
            };
            // Closing ended a hand-over: the inbox shows it too.
            if stored.state.handed_over.is_some() && decision.state.handed_over.is_none() {
                self.store
                    .set_handover(pnid, cid, None, (self.now_ms)())
                    .await
                    .map_err(store_err)?;
            }
            if let Some(why) = &decision.silenced {
                tracing::info!(reason = %why, "bots silent");
            }
            // A menu, flow or rating request in progress takes any message: the inbound
            // function must hand them all over until it expires (held before it is sent, so no
            // answer to it can come first).
            if let Some(until) = hold_until(&decision.state, &set)
                && conv.bots_hold_until.is_none_or(|h| h < until)
            {
                self.store
                    .hold_bots(pnid, cid, until)
                    .await
                    .map_err(store_err)?;
            }
            self.apply(&conv, &key_base, &decision).await?;
            let mut asked_ai = false;
            if let BotEvent::Message {
                wamid, at_ms, text, ..
            } = &job.event
                && let Some(req) = ai_request(
                    &decision,
                    ai_settings.as_deref(),
                    wamid,
                    *at_ms,
                    text.as_deref(),
                )
                && let Some(settings) = &ai_settings
            {
                self.answer_with_ai(&conv, &key_base, settings, &req)
                    .await?;
                asked_ai = true;
            }
            if let BotEvent::Message { at_ms, .. } = &job.event {
                self.arm_timers(&set, &conv, *at_ms).await?;
            }
            if !asked_ai && changes_nothing(&stored, &decision, conv.first_inbound_wamid.is_some())
            {
                // Nothing to remember: no answer to deduplicate on a redelivery, the same
                // state. A write per message saved (most messages meet no bot).
                return Ok(());
            }
            if self
                .store
                .save_bot_state(pnid, cid, &stored, &decision.state, handled_key.as_deref())
                .await
                .map_err(store_err)?
            {
                return Ok(());
            }
            tracing::info!("bot state changed meanwhile; evaluating again");
        }
        Err(RecordError::Retry(
            "the bot state kept changing during evaluation".into(),
        ))
    }

    /// Sends the replies and carries out the effects of a decision; idempotent.
    async fn apply(
        &self,
        conv: &Conversation,
        key_base: &str,
        d: &Decision,
    ) -> Result<(), RecordError> {
        let now = (self.now_ms)();
        let mut sent_by: BTreeMap<&str, i64> = BTreeMap::new();
        for r in &d.replies {
            if self.send(conv, key_base, r, now).await? {
                *sent_by.entry(r.bot_id.as_str()).or_default() += 1;
            }
        }
        for e in &d.effects {
            match e {
                Effect::Fired { bot_id } => {
                    let n = sent_by.get(bot_id.as_str()).copied().unwrap_or(0);
                    if n > 0 {
                        self.store
                            .count_bot_sends(bot_id, n, now)
                            .await
                            .map_err(store_err)?;
                    }
                }
                Effect::Handover { bot_id, reason } => {
                    self.store
                        .set_handover(&conv.phone_number_id, &conv.customer_id, Some(reason), now)
                        .await
                        .map_err(store_err)?;
                    let transcript = self.transcript(conv).await?;
                    self.publish(
                        "conversation.handover",
                        format!("conversation.handover:{key_base}"),
                        conv,
                        json!({"reason": reason, "bot_id": bot_id, "transcript": transcript, "at": now}),
                    )
                    .await?;
                }
                Effect::Rated { bot_id, stars } => {
                    self.store
                        .set_rating(&conv.phone_number_id, &conv.customer_id, *stars, now)
                        .await
                        .map_err(store_err)?;
                    self.publish(
                        "conversation.rated",
                        format!("conversation.rated:{key_base}"),
                        conv,
                        json!({"rating": stars, "bot_id": bot_id, "at": now}),
                    )
                    .await?;
                }
                Effect::TicketRequested {
                    bot_id,
                    subject,
                    description,
                    priority,
                    variables,
                } => {
                    self.request_ticket(
                        conv,
                        key_base,
                        bot_id,
                        subject,
                        description,
                        priority,
                        variables,
                        "bot",
                    )
                    .await?;
                }
                // Answered after the bot messages (`ai::answer_with_ai`).
                Effect::AiReply { .. } => {}
            }
        }
        Ok(())
    }

    /// Publishes `ticket.requested` once per (message, bot) and notes the ticket on the
    /// conversation; returns its reference.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn request_ticket(
        &self,
        conv: &Conversation,
        key_base: &str,
        bot_id: &str,
        subject: &str,
        description: &str,
        priority: &str,
        variables: &BTreeMap<String, String>,
        requested_by: &str,
    ) -> Result<String, RecordError> {
        let now = (self.now_ms)();
        let ticket_ref = format!(
            "tkt_{}",
            &shared::envelope::sha256_hex(&[key_base, bot_id, "ticket"])[..16]
        );
        let transcript = self.transcript(conv).await?;
        // The CRM's priorities; a flow's own word (or an empty variable) is medium.
        let priority = match priority.trim().to_lowercase().as_str() {
            p @ ("low" | "medium" | "high" | "urgent") => p.to_string(),
            _ => "medium".to_string(),
        };
        self.publish(
            "ticket.requested",
            format!("ticket.requested:{ticket_ref}"),
            conv,
            json!({
                "ticket_ref": ticket_ref,
                "subject": subject,
                "description": description,
                "priority": priority,
                "variables": variables,
                "bot_id": bot_id,
                "transcript": transcript,
                "requested_by": requested_by,
                "at": now,
            }),
        )
        .await?;
        self.store
            .add_ticket(&conv.phone_number_id, &conv.customer_id, &ticket_ref)
            .await
            .map_err(store_err)?;
        Ok(ticket_ref)
    }

    /// Arms the timers of the active timer bots from the customer message of `at_ms`
    /// (idempotent: same keys on a redelivery, and the same the inbound function arms).
    async fn arm_timers(
        &self,
        set: &CompiledBots,
        conv: &Conversation,
        at_ms: i64,
    ) -> Result<(), RecordError> {
        let scope = TimerScope::new(
            &conv.phone_number_id,
            &conv.customer_id,
            &conv.conversation_id,
            self.store.shards(),
        );
        let bots = timer_bots(set, conv.rel_type);
        timers::arm(&self.store, &bots, &scope, at_ms, (self.now_ms)())
            .await
            .map_err(store_err)
    }

    /// Sends one bot message: `true` when sent now; `false` when it went before (same key) or
    /// cannot be sent for a reason retrying cannot fix (logged); an error when it may succeed
    /// later (the record is retried; the key keeps the messages already sent from going twice).
    async fn send(
        &self,
        conv: &Conversation,
        key_base: &str,
        r: &BotReply,
        now: i64,
    ) -> Result<bool, RecordError> {
        let key = format!("{key_base}:{}:{}", r.bot_id, r.step);
        let sent = self
            .outbound
            .send(
                &self.store,
                SendRequest {
                    conversation: conv,
                    content: r.content.clone(),
                    reply_to: None,
                    key: &key,
                    staff_id: None,
                    source: "bot",
                    deadline: Instant::now() + SEND_BUDGET,
                    now_ms: now,
                    token: None,
                    notification_log: None,
                },
            )
            .await;
        match sent {
            // Sent before (a redelivery after a crash): not counted again.
            Ok(SendOutcome::Repeated(_)) => {
                tracing::info!(bot_id = %r.bot_id, step = %r.step, "bot message already sent");
                Ok(false)
            }
            Ok(outcome) => {
                tracing::info!(bot_id = %r.bot_id, step = %r.step, state = ?outcome.intent().state, "bot message");
                shared::metrics::count("BotAnswers", 1)
                    .dim("Outcome", "sent")
                    .emit();
                Ok(true)
            }
            Err(SendError::Refused(e)) if retryable(&e) => Err(retry("bot send", e)),
            Err(
                e @ (SendError::Paced(_) | SendError::SecretsUnavailable | SendError::Store(_)),
            ) => Err(retry("bot send", e)),
            Err(e) => {
                tracing::warn!(bot_id = %r.bot_id, step = %r.step, error = %e, "bot message not sent");
                Ok(false)
            }
        }
    }

    /// The recent messages, oldest first, for the CRM.
    async fn transcript(&self, conv: &Conversation) -> Result<Vec<Value>, RecordError> {
        Ok(self
            .store
            .recent_messages(&conv.phone_number_id, &conv.customer_id, 20)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|m| m.direction != Direction::Internal)
            .map(|m| json!({"at": m.timestamp, "direction": m.direction, "type": m.kind, "text": m.summary}))
            .collect())
    }

    async fn publish(
        &self,
        detail_type: &str,
        event_id: String,
        conv: &Conversation,
        extra: Value,
    ) -> Result<(), RecordError> {
        let mut detail = json!({
            "event_id": event_id,
            "conversation_id": conv.conversation_id,
            "phone_number_id": conv.phone_number_id,
            "rel_type": conv.rel_type,
            "rel_id": conv.rel_id,
            "customer": {"id": conv.customer_id, "name": conv.customer_name, "phone": conv.customer_phone, "wa_id": conv.wa_id},
        });
        if let (Some(d), Value::Object(x)) = (detail.as_object_mut(), extra) {
            d.extend(x);
        }
        self.bus
            .publish(&[OutboundEvent {
                detail_type: detail_type.into(),
                detail,
            }])
            .await
            .map_err(|e| retry("CRM bus", e))
    }
}

/// The AI answer an evaluation asks for: the AI bot that matched (or, in `auto` mode, the
/// engine's "nothing else answered"), or in `manual` mode a suggestion for any customer text
/// no bot answered (a hand-over included: the suggestion is for staff).
pub fn ai_request(
    d: &Decision,
    settings: Option<&shared::credentials::AiSettings>,
    wamid: &str,
    at_ms: i64,
    text: Option<&str>,
) -> Option<AiRequest> {
    let s = settings?;
    let asked = d.effects.iter().find_map(|e| match e {
        Effect::AiReply {
            bot_id,
            instructions,
        } => Some((bot_id.clone(), instructions.clone())),
        _ => None,
    });
    let (bot_id, instructions) = match asked {
        Some(a) => a,
        None if s.mode == AiMode::Manual && d.replies.is_empty() && text.is_some() => (None, None),
        None => return None,
    };
    Some(AiRequest {
        bot_id,
        instructions,
        wamid: wamid.to_string(),
        at_ms,
        text: text.map(str::to_string),
    })
}

/// Whether `wamid` is the conversation's first customer message: the conversation keeps it
/// (`first_inbound_wamid`, so a message the bots never saw still counts); in a conversation
/// from before it did, the bot state's absence stands for it.
pub fn first_ever(conv: &Conversation, stored_version: i64, wamid: &str) -> bool {
    match conv.first_inbound_wamid.as_deref() {
        Some(first) => first == wamid,
        None => stored_version == 0,
    }
}

/// Saving would change nothing that matters: the decision sent nothing, did nothing and left
/// the state as it was — and the "first message ever" needs no remembering (the conversation
/// keeps its first message, `first_kept`, or a state is stored already: its version marks
/// that the conversation was seen).
fn changes_nothing(
    stored: &shared::store::bots::StoredBotState,
    decision: &Decision,
    first_kept: bool,
) -> bool {
    (first_kept || stored.version > 0)
        && decision.replies.is_empty()
        && decision.effects.is_empty()
        && decision.state == stored.state
}

/// Meta refusals worth retrying (the record is retried; nothing was sent).
fn retryable(e: &GraphError) -> bool {
    match e {
        GraphError::Meta { class, .. } => {
            matches!(class, ErrorClass::Temporary | ErrorClass::RateLimited)
        }
        GraphError::NotSent(_) => true,
        _ => false,
    }
}

#[async_trait::async_trait]
impl RecordHandler for BotsApp {
    async fn handle(&self, record: &SqsMessage) -> Result<(), RecordError> {
        let job = BotJob::from_body(record.body.as_deref().unwrap_or_default())
            .map_err(RecordError::Park)?;
        let span = tracing::info_span!("bots", conversation_id = %job.conversation_id());
        self.process(&job).instrument(span).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::bots::BotState;
    use shared::credentials::AiSettings;
    use shared::meta::outbound::OutboundContent;

    fn decision(replies: usize, effects: Vec<Effect>) -> Decision {
        Decision {
            replies: (0..replies)
                .map(|i| BotReply {
                    bot_id: "b".into(),
                    step: format!("s{i}"),
                    content: OutboundContent::Text {
                        body: "x".into(),
                        preview_url: false,
                    },
                })
                .collect(),
            effects,
            state: BotState::default(),
            silenced: None,
        }
    }

    fn settings(mode: AiMode) -> AiSettings {
        AiSettings {
            enabled: true,
            mode,
            ..AiSettings::default()
        }
    }

    #[test]
    fn what_the_ai_is_asked_for() {
        let ai_bot = Effect::AiReply {
            bot_id: Some("ai1".into()),
            instructions: Some("be brief".into()),
        };
        let (auto, manual) = (settings(AiMode::Auto), settings(AiMode::Manual));
        // AI off: never.
        assert_eq!(
            ai_request(&decision(0, vec![ai_bot.clone()]), None, "w", 1, Some("hi")),
            None
        );
        // An AI bot matched: asked, in either mode, with the bot's instructions.
        for s in [&auto, &manual] {
            let r = ai_request(
                &decision(0, vec![ai_bot.clone()]),
                Some(s),
                "w",
                1,
                Some("hi"),
            )
            .unwrap();
            assert_eq!(
                (r.bot_id.as_deref(), r.instructions.as_deref()),
                (Some("ai1"), Some("be brief"))
            );
        }
        // Nothing matched: auto only when the engine asked (rule 4); manual suggests for any
        // unanswered text, never for a message a bot answered or one without text.
        assert_eq!(
            ai_request(&decision(0, vec![]), Some(&auto), "w", 1, Some("hi")),
            None
        );
        assert!(ai_request(&decision(0, vec![]), Some(&manual), "w", 1, Some("hi")).is_some());
        assert_eq!(
            ai_request(&decision(1, vec![]), Some(&manual), "w", 1, Some("hi")),
            None
        );
        assert_eq!(
            ai_request(&decision(0, vec![]), Some(&manual), "w", 1, None),
            None
        );
    }

    #[test]
    fn a_silent_decision_over_a_stored_state_is_not_saved() {
        use shared::store::bots::StoredBotState;
        let stored = |version| StoredBotState {
            version,
            ..StoredBotState::default()
        };
        assert!(changes_nothing(&stored(3), &decision(0, vec![]), false));
        // In a conversation that does not keep its first message, the first message ever is
        // remembered (the version marks it), whatever was decided.
        assert!(!changes_nothing(&stored(0), &decision(0, vec![]), false));
        // One that keeps it needs no state for that.
        assert!(changes_nothing(&stored(0), &decision(0, vec![]), true));
        // An answer (deduplicated on a redelivery), an effect or a new state is saved.
        for first_kept in [false, true] {
            assert!(!changes_nothing(
                &stored(3),
                &decision(1, vec![]),
                first_kept
            ));
            let handover = Effect::Handover {
                bot_id: None,
                reason: "asked".into(),
            };
            assert!(!changes_nothing(
                &stored(3),
                &decision(0, vec![handover]),
                first_kept
            ));
            let mut moved = decision(0, vec![]);
            moved.state.rated = Some(5);
            assert!(!changes_nothing(&stored(3), &moved, first_kept));
        }
    }
}
