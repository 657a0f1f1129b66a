//! One message sent through the outbound layer, by staff (the staff API) or by a bot (the bots
//! function): the same guarantees for both.
//!
//! The send is recorded as an intent under a key derived from the conversation and the
//! caller's idempotency key BEFORE Meta is called, so a retried request never sends twice; a
//! send whose answer was lost is marked `unknown` and settled by its first status (the inbound
//! function matches `biz_opaque_callback_data`), never re-sent blindly. The number's pace is
//! shared with every other sender, and one overall deadline bounds pacing and every attempt.
use std::sync::Arc;
use std::time::Instant;

use crate::meta::graph::{GraphClient, GraphError};
use crate::meta::outbound::{OutboundContent, OutboundMessage, ValidationError};
use crate::pacing::{DynamoWindowCounter, PaceError, Pacer};
use crate::secrets::{CachedSecret, MetaSecrets};
use crate::store::dynamo::AcceptedOutbound;
use crate::store::model::{Conversation, SendIntent, SendState};
use crate::store::{Store, StoreError, keys};

/// What a sender needs to reach Meta.
#[derive(Clone)]
pub struct Outbound {
    pub graph: Arc<GraphClient>,
    pub meta_secrets: Arc<CachedSecret<MetaSecrets>>,
    /// Per-number pace shared with every other sender (campaigns included).
    pub pacer: Arc<Pacer<DynamoWindowCounter>>,
}

impl Outbound {
    /// The Graph API as every sending function wires it: each call reported to `observer`
    /// (the activity log, which redacts the credentials) and paced per business number through
    /// the table, with the pace shared by every sender of the stack.
    pub fn wired(
        store: &Store,
        graph: crate::meta::graph::GraphConfig,
        meta_secrets: Arc<CachedSecret<MetaSecrets>>,
        observer: Arc<dyn crate::meta::graph::CallObserver>,
    ) -> Result<Self, GraphError> {
        let pacer = crate::pacing::table_pacer(store);
        Ok(Self {
            graph: Arc::new(crate::pacing::paced_graph(
                GraphClient::new(graph)?.with_observer(observer),
                &pacer,
            )),
            meta_secrets,
            pacer,
        })
    }
}

/// One send.
pub struct SendRequest<'a> {
    /// The conversation (it may not be stored yet: a business-initiated first message).
    pub conversation: &'a Conversation,
    pub content: OutboundContent,
    /// `wamid` quoted by this message.
    pub reply_to: Option<String>,
    /// The caller's idempotency key (a staff request's key; a bot's (inbound wamid, bot, step)).
    pub key: &'a str,
    pub staff_id: Option<&'a str>,
    /// Recorded on the message: `api` (staff), `bot`, …
    pub source: &'a str,
    /// Everything (pacing wait and Meta attempts) ends by then.
    pub deadline: Instant,
    pub now_ms: i64,
    /// Another access token than the connection settings' (event notifications use theirs).
    pub token: Option<&'a str>,
    /// An event notification's log entry (`pk|sk`), kept on the intent.
    pub notification_log: Option<&'a str>,
}

/// How a send ended.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// Meta accepted it (the intent carries the `wamid`).
    Accepted(SendIntent),
    /// Meta's answer was lost: the first status settles it.
    Unknown(SendIntent),
    /// The same key was used before: the first send's record, nothing sent now.
    Repeated(SendIntent),
}

impl SendOutcome {
    pub fn intent(&self) -> &SendIntent {
        match self {
            Self::Accepted(i) | Self::Unknown(i) | Self::Repeated(i) => i,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Outside the 24-hour window only a template may be sent (the message says when it closed).
    #[error("the 24-hour customer service window {0}; only an approved template can be sent")]
    WindowClosed(String),
    #[error("the customer has no WhatsApp id")]
    NoRecipient,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("this idempotency key was already used for a different message in this conversation")]
    KeyReused,
    /// The connection settings lack what a send needs.
    #[error("{0}")]
    NotConnected(String),
    #[error("Meta credentials are unavailable")]
    SecretsUnavailable,
    /// The number's pace is exhausted (or the pacing store failed); nothing was sent.
    #[error("the number's sending pace is exhausted: {0}")]
    Paced(PaceError),
    /// Meta refused it, or could not be reached (certainly not sent).
    #[error(transparent)]
    Refused(GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The conversation of (business number, customer number) for a business-initiated send: the
/// stored one (`true`), or a new one (`false`) filed under the CRM record the number belongs
/// to (`rel_type` from the directory), written first when `write_new` (so a lost answer can be
/// settled into it by the first status; a send that will be refused needs none).
pub async fn conversation_for(
    store: &Store,
    phone_number_id: &str,
    e164: &str,
    write_new: bool,
    now: i64,
) -> Result<(Conversation, bool), StoreError> {
    let wa_id = crate::phone::PhoneNormalizer::digits(e164);
    let customer = store
        .resolve_customer(
            Some(phone_number_id),
            Some(&wa_id),
            None,
            Some(e164),
            None,
            now,
        )
        .await?;
    if let Some(c) = store
        .conversation(phone_number_id, &customer.customer_id)
        .await?
    {
        return Ok((c, true));
    }
    let found = crate::identify::choose(
        &store
            .directory_by_phone(&crate::phone::PhoneNormalizer::canonical_key(e164))
            .await?,
    );
    let new = Conversation {
        pk: keys::conversation_pk(phone_number_id, &customer.customer_id),
        sk: keys::CONV_SK.into(),
        gsi1pk: None,
        gsi1sk: None,
        conversation_id: keys::conversation_id(phone_number_id, &customer.customer_id),
        phone_number_id: phone_number_id.to_string(),
        customer_id: customer.customer_id.clone(),
        wa_id: customer.wa_id.clone(),
        bsuid: customer.bsuid.clone(),
        customer_phone: customer.e164.clone(),
        customer_name: match &found {
            crate::identify::Identity::Known { name, .. } => name.clone(),
            _ => customer.name.clone(),
        },
        rel_type: found.rel_type(),
        rel_id: found.rel_id(),
        unread: 0,
        message_count: 0,
        last_message_at: None,
        last_message_preview: None,
        last_inbound_at: None,
        window_expires_at: None,
        session_started_at: None,
        assignee: None,
        last_inbound_wamid: None,
        first_inbound_wamid: None,
        bots_hold_until: None,
        tickets: Vec::new(),
        created_at: now,
        handed_over_at: None,
        handover_reason: None,
        closed_at: None,
        rating: None,
        last_staff_reply_at: None,
        ai_suggestion: None,
    };
    if write_new {
        Ok((store.create_conversation(&new).await?, false))
    } else {
        Ok((new, false))
    }
}

/// Short text of an outbound message for previews.
pub fn summary_of(c: &OutboundContent) -> String {
    let v = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
    let pick = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    pick("body")
        .or_else(|| pick("caption"))
        .or_else(|| pick("name").map(|n| format!("[template] {n}")))
        .unwrap_or_else(|| format!("[{}]", c.graph_type()))
}

impl Outbound {
    /// The access token of the connection settings.
    pub async fn token(&self) -> Result<String, SendError> {
        let s = self.meta_secrets.get().await.map_err(|e| {
            tracing::error!(error = %e, "Meta credentials unavailable");
            SendError::SecretsUnavailable
        })?;
        if s.access_token.is_empty() {
            return Err(SendError::NotConnected(
                "no Meta access token is configured (connection settings)".into(),
            ));
        }
        Ok(s.access_token.expose().to_string())
    }

    /// Sends once per (conversation, key); see the module documentation.
    pub async fn send(&self, store: &Store, r: SendRequest<'_>) -> Result<SendOutcome, SendError> {
        let conv = r.conversation;
        let now = r.now_ms;
        if r.content.needs_open_window() && conv.window_expires_at.is_none_or(|exp| exp <= now) {
            let when = conv
                .window_expires_at
                .map(|t| {
                    format!(
                        "closed at {}",
                        chrono::DateTime::from_timestamp_millis(t)
                            .map(|d| d.to_rfc3339())
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "is not open (the customer never wrote)".into());
            return Err(SendError::WindowClosed(when));
        }
        let to = conv
            .wa_id
            .clone()
            .or_else(|| conv.bsuid.clone())
            .ok_or(SendError::NoRecipient)?;
        let msg_id = keys::outbound_message_id(&conv.conversation_id, r.key);
        let msg = OutboundMessage {
            to: to.clone(),
            reply_to: r.reply_to,
            biz_opaque_callback_data: Some(msg_id.clone()),
            content: r.content,
        };
        msg.validate()?;
        let intent = SendIntent {
            pk: keys::send_intent_pk(&msg_id),
            sk: keys::OUT_SK.into(),
            msg_id: msg_id.clone(),
            conversation_id: conv.conversation_id.clone(),
            phone_number_id: conv.phone_number_id.clone(),
            customer_id: conv.customer_id.clone(),
            to,
            staff_id: r.staff_id.map(str::to_string),
            kind: msg.graph_type().to_string(),
            summary: summary_of(&msg.content),
            request: msg.to_graph_json().to_string(),
            state: SendState::Pending,
            wamid: None,
            error_code: None,
            error_class: None,
            error_message: None,
            notification_log: r.notification_log.map(str::to_string),
            created_at: now,
            updated_at: now,
        };
        if let Some(existing) = store.record_intent(&intent).await? {
            // A retried request: never send twice. A refusal that was certainly not accepted
            // and is worth retrying (rate limit, unreachable) may be sent again.
            let retryable_failure = existing.state == SendState::Failed
                && matches!(
                    existing.error_class.as_deref(),
                    Some("rate_limited" | "temporary" | "not_sent")
                );
            if existing.request != intent.request {
                // The same key for another message: answering from the first would hide that
                // the second was never sent.
                return Err(SendError::KeyReused);
            }
            if !retryable_failure
                || !store
                    .finish_intent(
                        &msg_id,
                        SendState::Pending,
                        None,
                        None,
                        now,
                        &[SendState::Failed],
                    )
                    .await?
            {
                tracing::info!(msg_id = %msg_id, state = ?existing.state, "duplicate send answered from its intent");
                return Ok(SendOutcome::Repeated(existing));
            }
        }
        let token = match r.token {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => self.token().await?,
        };
        if let Err(e) = self.pacer.acquire(&conv.phone_number_id, None).await {
            // Not sent: recorded as a retryable refusal, so the same request may be retried.
            store
                .finish_intent(
                    &msg_id,
                    SendState::Failed,
                    None,
                    Some((0, "rate_limited", &e.to_string())),
                    now,
                    &[SendState::Pending],
                )
                .await?;
            return Err(SendError::Paced(e));
        }
        let span =
            tracing::info_span!("send", msg_id = %msg_id, phone_number_id = %conv.phone_number_id);
        let _g = span.enter();
        match self
            .graph
            .send_within(&conv.phone_number_id, &token, &msg, r.deadline)
            .await
        {
            Ok(acc) => {
                // Stored before the intent is marked accepted: a crash here leaves the intent
                // pending and its first status settles it.
                store
                    .store_outbound(&AcceptedOutbound {
                        conversation: conv,
                        wamid: &acc.wamid,
                        kind: &intent.kind,
                        timestamp_ms: now,
                        summary: &intent.summary,
                        raw: &intent.request,
                        staff_id: r.staff_id,
                        source: r.source,
                        now_ms: now,
                    })
                    .await?;
                store
                    .finish_intent(
                        &msg_id,
                        SendState::Accepted,
                        Some(&acc.wamid),
                        None,
                        now,
                        &[SendState::Pending, SendState::Unknown],
                    )
                    .await?;
                tracing::info!(wamid = %acc.wamid, source = r.source, "send accepted by Meta");
                Ok(SendOutcome::Accepted(SendIntent {
                    state: SendState::Accepted,
                    wamid: Some(acc.wamid),
                    ..intent
                }))
            }
            Err(GraphError::Unknown(reason)) => {
                store
                    .finish_intent(
                        &msg_id,
                        SendState::Unknown,
                        None,
                        None,
                        now,
                        &[SendState::Pending],
                    )
                    .await?;
                tracing::warn!(reason = %reason, "send outcome unknown; waiting for a status to settle it");
                Ok(SendOutcome::Unknown(SendIntent {
                    state: SendState::Unknown,
                    ..intent
                }))
            }
            Err(e) => {
                let class = match &e {
                    GraphError::Meta { class, .. } => class.as_str().to_string(),
                    GraphError::NotSent(_) => "not_sent".into(),
                    _ => "refused".into(),
                };
                let code = e.meta_code().unwrap_or(0);
                store
                    .finish_intent(
                        &msg_id,
                        SendState::Failed,
                        None,
                        Some((code, &class, &e.to_string())),
                        now,
                        &[SendState::Pending],
                    )
                    .await?;
                tracing::warn!(code, class = %class, "send refused");
                Err(SendError::Refused(e))
            }
        }
    }
}
