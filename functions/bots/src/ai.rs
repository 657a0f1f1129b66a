//! AI answers (bot_type 12, and the `auto` / `manual` modes of `/settings/ai`).
//!
//! - `auto`: the AI answers what an AI bot matched, and every customer message no other bot
//!   answered. Its reply is sent through the outbound layer under the key of (inbound wamid,
//!   bot, `ai`), so a redelivered message is answered once (the provider is not even asked
//!   again when that send exists). When the provider fails (timeout, error, unusable answer)
//!   the customer gets the fallback text under the same key instead.
//! - `manual`: the answer is stored on the conversation as a suggestion (and in its history as
//!   an internal `ai_suggestion` note) for staff to send or dismiss; nothing is sent.
//! - A support request the AI collected (its JSON answer's `ticket`) is published once as
//!   `ticket.requested` (`auto` only) and the customer is told its reference.
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::ai::{self, AiAnswer, AiClient, Context, Line};
use shared::bots::BotReply;
use shared::credentials::{AiMode, AiSettings};
use shared::meta::outbound::OutboundContent;
use shared::secrets::{CachedSecret, SecretError};
use shared::store::keys;
use shared::store::model::{AiSuggestion, Conversation, Direction, MessageItem};

use super::{BotsApp, RecordError, store_err};

/// The AI's part of one evaluation: at most one AI answer per customer message.
pub const AI_BUDGET: Duration = Duration::from_secs(12);
/// Sent when the AI fails and the settings name no fallback.
pub const DEFAULT_FALLBACK: &str =
    "Sorry, I can't answer that right now. A member of our team will get back to you soon.";
/// Messages of the conversation read for the context.
const HISTORY: usize = 30;

/// The provider client and the AI settings (`AiSecret`, cached).
pub struct Ai {
    pub client: AiClient,
    pub settings: CachedSecret<AiSettings>,
}

/// One AI answer asked for by an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiRequest {
    /// The AI bot that matched (`None`: the `auto` / `manual` mode answering an unanswered
    /// message).
    pub bot_id: Option<String>,
    pub instructions: Option<String>,
    /// The customer message answered, its time and text.
    pub wamid: String,
    pub at_ms: i64,
    pub text: Option<String>,
}

impl BotsApp {
    /// The AI settings when AI is configured and enabled (`None` otherwise). A failed read of
    /// the secret is retried with the record; a secret that is not the settings' JSON turns AI
    /// off (logged as an error) rather than holding back every bot.
    pub(crate) async fn ai_settings(&self) -> Result<Option<Arc<AiSettings>>, RecordError> {
        let Some(ai) = &self.ai else {
            return Ok(None);
        };
        match ai.settings.get().await {
            Ok(s) => Ok(s.enabled.then_some(s)),
            // Settings no reader can use must not hold back every bot: AI is off, loudly.
            Err(e @ SecretError::Invalid { .. }) => {
                tracing::error!(error = %e, "AI settings unreadable: AI is off until they are saved again");
                Ok(None)
            }
            Err(e) => Err(RecordError::Retry(format!("AI settings: {e}"))),
        }
    }

    /// Carries out one AI request: send (auto) or suggest (manual).
    pub(crate) async fn answer_with_ai(
        &self,
        conv: &Conversation,
        key_base: &str,
        settings: &AiSettings,
        req: &AiRequest,
    ) -> Result<(), RecordError> {
        let Some(ai) = &self.ai else {
            return Ok(());
        };
        let bot = req.bot_id.as_deref().unwrap_or("ai");
        match settings.mode {
            AiMode::Auto => {
                if conv.window_expires_at.is_none_or(|e| e <= (self.now_ms)()) {
                    // Only a template could go out: the provider is not asked for nothing.
                    tracing::info!(bot_id = bot, "AI not asked: the 24-hour window is closed");
                    return Ok(());
                }
                let key = format!("{key_base}:{bot}:ai");
                let msg_id = keys::outbound_message_id(&conv.conversation_id, &key);
                if self
                    .store
                    .intent(&msg_id)
                    .await
                    .map_err(store_err)?
                    .is_some()
                {
                    tracing::info!(bot_id = bot, "AI answer already sent");
                    return Ok(());
                }
                let answer = self.ask(ai, conv, settings, req).await?;
                let text = match &answer {
                    Ok(a) => a.reply.clone(),
                    Err(e) => {
                        tracing::warn!(bot_id = bot, class = e.class(), error = %e, "AI failed: the fallback text is sent");
                        let f = settings.fallback_text.trim();
                        if f.is_empty() {
                            DEFAULT_FALLBACK.to_string()
                        } else {
                            f.to_string()
                        }
                    }
                };
                let now = (self.now_ms)();
                let sent = self
                    .send(
                        conv,
                        key_base,
                        &BotReply {
                            bot_id: bot.to_string(),
                            step: "ai".into(),
                            content: OutboundContent::Text {
                                body: text,
                                preview_url: false,
                            },
                        },
                        now,
                    )
                    .await?;
                if let Ok(AiAnswer {
                    ticket: Some(t), ..
                }) = &answer
                {
                    let ticket_ref = self
                        .request_ticket(
                            conv,
                            key_base,
                            bot,
                            &t.subject,
                            &t.description,
                            &t.priority,
                            &Default::default(),
                            "ai",
                        )
                        .await?;
                    self.send(
                        conv,
                        key_base,
                        &BotReply {
                            bot_id: bot.to_string(),
                            step: "ai:ticket".into(),
                            content: OutboundContent::Text {
                                body: format!(
                                    "Your request was passed to our team (reference {ticket_ref})."
                                ),
                                preview_url: false,
                            },
                        },
                        now,
                    )
                    .await?;
                }
                if sent && let Some(id) = &req.bot_id {
                    self.store
                        .count_bot_sends(id, 1, now)
                        .await
                        .map_err(store_err)?;
                }
            }
            AiMode::Manual => {
                let id = format!(
                    "sug_{}",
                    &shared::envelope::sha256_hex(&[key_base, bot, "suggestion"])[..16]
                );
                if conv.ai_suggestion.as_ref().is_some_and(|s| s.id == id) {
                    return Ok(());
                }
                match self.ask(ai, conv, settings, req).await? {
                    Ok(a) => self.suggest(conv, &id, &a, req).await?,
                    Err(e) => {
                        tracing::warn!(bot_id = bot, class = e.class(), error = %e, "AI failed: no suggestion");
                    }
                }
            }
        }
        Ok(())
    }

    /// Asks the provider (the outer error: reading the conversation failed, retried).
    async fn ask(
        &self,
        ai: &Ai,
        conv: &Conversation,
        settings: &AiSettings,
        req: &AiRequest,
    ) -> Result<Result<AiAnswer, ai::AiError>, RecordError> {
        let history = self
            .store
            .recent_messages(&conv.phone_number_id, &conv.customer_id, HISTORY)
            .await
            .map_err(store_err)?;
        // The message answered goes last, whatever the history's order says (our sends are
        // stored at their millisecond, Meta's messages at their second, so a bot's answer to
        // the previous message can sort after this one).
        let current = history
            .iter()
            .find(|m| m.wamid == req.wamid)
            .map(|m| ai::prompt::message_text(&m.raw, &m.summary))
            .or_else(|| req.text.clone());
        let mut texts: Vec<(bool, String)> = history
            .iter()
            .filter(|m| m.direction != Direction::Internal && m.wamid != req.wamid)
            .map(|m| {
                (
                    m.direction == Direction::Inbound,
                    ai::prompt::message_text(&m.raw, &m.summary),
                )
            })
            .collect();
        if let Some(c) = current {
            texts.push((true, c));
        }
        let lines: Vec<Line> = texts
            .iter()
            .map(|(c, t)| Line {
                from_customer: *c,
                text: t,
            })
            .collect();
        let prompt = ai::prompt::build(
            &Context {
                system_prompt: &settings.system_prompt,
                instructions: req.instructions.as_deref(),
                customer_name: conv.customer_name.as_deref(),
                ticket_open: !conv.tickets.is_empty(),
            },
            &lines,
            &ai.client.config().limits,
        );
        Ok(ai
            .client
            .answer(settings, &prompt, Instant::now() + AI_BUDGET)
            .await)
    }

    /// Stores a suggestion on the conversation and in its history.
    async fn suggest(
        &self,
        conv: &Conversation,
        id: &str,
        a: &AiAnswer,
        req: &AiRequest,
    ) -> Result<(), RecordError> {
        let now = (self.now_ms)();
        let s = AiSuggestion {
            id: id.to_string(),
            text: a.reply.clone(),
            for_wamid: Some(req.wamid.clone()),
            bot_id: req.bot_id.clone(),
            at: now,
        };
        self.store
            .put_history_note(&MessageItem {
                pk: keys::conversation_pk(&conv.phone_number_id, &conv.customer_id),
                // Right after the message it answers: a redelivery writes the same note.
                sk: keys::message_sk(req.at_ms + 1, &format!("ai:{id}")),
                wamid: format!("ai:{id}"),
                conversation_id: conv.conversation_id.clone(),
                direction: Direction::Internal,
                kind: "ai_suggestion".into(),
                timestamp: now,
                summary: shared::bots::render::clip(a.reply.clone(), 200),
                raw: json!({"suggestion_id": id, "text": a.reply, "for": req.wamid, "ticket": a.ticket})
                    .to_string(),
                source: "ai".into(),
                context_wamid: Some(req.wamid.clone()),
                staff_id: None,
                stored_at: now,
                media_id: None,
                media_state: None,
                media_error: None,
            })
            .await
            .map_err(store_err)?;
        self.store
            .set_ai_suggestion(&conv.phone_number_id, &conv.customer_id, &s)
            .await
            .map_err(store_err)?;
        tracing::info!(suggestion_id = id, "AI suggestion stored for staff");
        Ok(())
    }
}
