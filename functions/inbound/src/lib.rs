//! Inbound function: consumes the FIFO inbound queue (one envelope per record).
//!
//! Per record: message → customer (aliases) → identification (leads → contacts → staff, else
//! auto-lead or general) → one transaction storing message + wamid + conversation → last
//! activity / 24-hour window. Statuses are ranked upserts. Failure semantics (SYSTEM.md §5): a
//! record that fails holds back every later record of its message group in the batch; a record
//! that can never succeed is parked in S3 and acknowledged.
use shared::store::notifications::NotifyStatus;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::archive::RawArchive;
use shared::bots::gate::{BotsGate, Candidate, HANDOFF_HOLD_MS, HOLD_FRESH_MS, HandOff};
use shared::bots::job::{BOT_JOB_VERSION, BotEvent, BotJob};
use shared::bots::matcher::MessageFacts;
use shared::bots::timers::{self, TimerScope};
use shared::crm_events::{EventBus, LeadCreated};
use shared::envelope::QueuedEnvelope;
use shared::envelope::{Envelope, EnvelopeKind};
use shared::identify::{self, Identity};
use shared::media::{MEDIA_JOB_VERSION, MediaJob};
use shared::meta::webhook::{Interactive, MessageContent, RawMessage, RawStatus};
use shared::phone::PhoneNormalizer;
use shared::queue::EnvelopeSink;
use shared::sqs_batch::{self, BatchPolicy, Deadline, Ordering, RecordError, RecordHandler};
use shared::store::dynamo::{
    AcceptedOutbound, ConversationFacts, NewMessage, StatusUpdate, StoreOutcome,
};
use shared::store::model::{Customer, Direction, MediaState, MessageItem, RelType, SendState};
use shared::store::templates::{CategoryChange, TemplateRef};
use shared::store::{Store, StoreError, keys};
use tracing::Instrument;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// May succeed later (AWS unavailable, throttled …): the record is retried.
    #[error("retryable: {0}")]
    Retryable(String),
    /// Can never succeed (unparseable, unsupported version …): the record is parked.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for ProcessError {
    fn from(e: StoreError) -> Self {
        if e.is_permanent() {
            ProcessError::Permanent(e.to_string())
        } else {
            ProcessError::Retryable(e.to_string())
        }
    }
}

/// Port: what is done with one envelope.
#[async_trait::async_trait]
pub trait Processor: Send + Sync {
    async fn process(&self, envelope: &Envelope) -> Result<(), ProcessError>;
}

/// The FIFO batch semantics (shared by every consumer), independent of what processing does.
pub async fn handle_batch(
    processor: &dyn Processor,
    archive: &dyn RawArchive,
    event: SqsEvent,
    deadline: Deadline,
) -> SqsBatchResponse {
    sqs_batch::process(
        event,
        BATCH_POLICY,
        deadline,
        archive,
        &EnvelopeRecords(processor),
    )
    .await
}

/// Each record is one envelope for the processor.
struct EnvelopeRecords<'a>(&'a dyn Processor);

#[async_trait::async_trait]
impl RecordHandler for EnvelopeRecords<'_> {
    async fn handle(&self, record: &SqsMessage) -> Result<(), RecordError> {
        process_record(self.0, record).await.map_err(|e| match e {
            ProcessError::Retryable(m) => RecordError::Retry(m),
            ProcessError::Permanent(m) => RecordError::Park(m),
        })
    }
}

/// FIFO (group = conversation); 2 s are kept to answer and flush the activity log.
pub const BATCH_POLICY: BatchPolicy = BatchPolicy {
    ordering: Ordering::PerGroup,
    reserve: std::time::Duration::from_secs(2),
};

async fn process_record(
    processor: &dyn Processor,
    record: &SqsMessage,
) -> Result<(), ProcessError> {
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| ProcessError::Permanent("record has no body".into()))?;
    let env = Envelope::from_body(body).map_err(|e| ProcessError::Permanent(e.to_string()))?;
    processor.process(&env).await
}

/// The real processing, over the store and the CRM bus.
pub struct InboundProcessor {
    pub store: Store,
    pub bus: Arc<dyn EventBus>,
    pub phones: PhoneNormalizer,
    pub now_ms: fn() -> i64,
    /// The media function's queue: a media message's copy to S3 is handed off there, so it
    /// never holds back the conversation (absent: media stays at Meta, referenced by id).
    pub media_jobs: Option<Arc<dyn EnvelopeSink>>,
    /// The bots function's queue: each inbound customer message is handed off there to be
    /// answered (absent: no bot answers).
    pub bot_jobs: Option<Arc<dyn EnvelopeSink>>,
    /// Whether a message goes to the bots function at all (not when no bot is active and AI
    /// is off: nothing there would answer).
    pub bots_gate: BotsGate,
    /// Campaigns' labels for their messages in conversations (read once per process).
    pub campaign_labels: shared::campaigns::delivery::Labels,
}

/// What a bot reads of a customer message (`None`: bots never answer it — reactions, system
/// messages, unsupported content).
fn bot_event(wamid: &str, kind: &str, at_ms: i64, c: &MessageContent) -> Option<BotEvent> {
    let (text, reply_id, reply_title) = match c {
        MessageContent::Text { body } => (Some(body.clone()), None, None),
        MessageContent::Image(m)
        | MessageContent::Video(m)
        | MessageContent::Document(m)
        | MessageContent::Audio(m)
        | MessageContent::Sticker(m) => (m.caption.clone(), None, None),
        MessageContent::Interactive(Interactive::ButtonReply { id, title })
        | MessageContent::Interactive(Interactive::ListReply { id, title, .. }) => {
            (None, Some(id.clone()), Some(title.clone()))
        }
        MessageContent::Interactive(Interactive::NfmReply { body, .. }) => {
            (body.clone(), None, None)
        }
        MessageContent::Button { payload, text } => {
            (None, Some(payload.clone()), Some(text.clone()))
        }
        MessageContent::Location(_) | MessageContent::Contacts(_) => (None, None, None),
        MessageContent::Order(o) => (o.text.clone(), None, None),
        MessageContent::Interactive(Interactive::Other { .. })
        | MessageContent::Reaction { .. }
        | MessageContent::System(_)
        | MessageContent::Unsupported
        | MessageContent::Unknown { .. } => return None,
    };
    Some(BotEvent::Message {
        wamid: wamid.to_string(),
        message_type: kind.to_string(),
        at_ms,
        text,
        reply_id,
        reply_title,
        first_inbound: None,
        session_start: None,
    })
}

/// The media id (and file name) of a media message.
fn media_of(c: &MessageContent) -> Option<(&str, Option<&str>)> {
    match c {
        MessageContent::Image(m)
        | MessageContent::Video(m)
        | MessageContent::Audio(m)
        | MessageContent::Document(m)
        | MessageContent::Sticker(m) => m.id.as_deref().map(|id| (id, m.filename.as_deref())),
        _ => None,
    }
}

/// How long one invocation holds the right to announce an auto-lead.
pub const EMIT_LEASE_MS: i64 = 60_000;

/// Largest raw message kept on the message item (DynamoDB items hold 400 KB in all).
pub const RAW_CAP_BYTES: usize = 100_000;

/// The raw message as Meta sent it, or, over [`RAW_CAP_BYTES`], a marker with its size and
/// hash (the summary and typed fields are still stored).
pub fn capped_raw(raw: &str) -> String {
    if raw.len() <= RAW_CAP_BYTES {
        return raw.to_string();
    }
    tracing::warn!(
        bytes = raw.len(),
        "raw message over the cap; stored as a marker"
    );
    serde_json::json!({
        "truncated": true,
        "bytes": raw.len(),
        "sha256": shared::envelope::sha256_hex(&[raw]),
    })
    .to_string()
}

pub fn system_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn permanent(e: impl std::fmt::Display) -> ProcessError {
    ProcessError::Permanent(e.to_string())
}

#[async_trait::async_trait]
impl Processor for InboundProcessor {
    async fn process(&self, env: &Envelope) -> Result<(), ProcessError> {
        match env.kind {
            EnvelopeKind::Message => self.message(env).await,
            EnvelopeKind::Status => self.status(env).await,
            EnvelopeKind::Echo => self.echo(env).await,
            EnvelopeKind::UserPreference => self.preference(env).await,
            EnvelopeKind::TemplateStatus => self.template_status(env).await,
            EnvelopeKind::TemplateQuality => self.template_quality(env).await,
            EnvelopeKind::TemplateComponents => self.template_components(env).await,
            EnvelopeKind::TemplateCategory => self.template_category(env).await,
            EnvelopeKind::Call => self.call(env).await,
            EnvelopeKind::CallStatus => self.call_status(env).await,
            EnvelopeKind::AccountUpdate => {
                let dedupe = shared::envelope::sha256_hex(&[env.item.get()]);
                self.store
                    .record_business_event(
                        &format!("ACCOUNT#{}", env.waba_id),
                        &dedupe,
                        "account_update",
                        env.item.get(),
                        env.received_at_ms,
                    )
                    .await?;
                tracing::warn!(waba_id = %env.waba_id, "account_update recorded");
                Ok(())
            }
            EnvelopeKind::Errors => {
                let pnid = env.phone_number_id.as_deref().unwrap_or("unknown");
                let dedupe = shared::envelope::sha256_hex(&[env.item.get()]);
                self.store
                    .record_business_event(
                        &format!("WABAERR#{pnid}"),
                        &dedupe,
                        "errors",
                        env.item.get(),
                        env.received_at_ms,
                    )
                    .await?;
                tracing::error!(phone_number_id = %pnid, errors = %env.item.get(), "Meta reported errors for the number");
                Ok(())
            }
        }
    }
}

impl InboundProcessor {
    fn pnid<'a>(&self, env: &'a Envelope) -> Result<&'a str, ProcessError> {
        env.phone_number_id
            .as_deref()
            .ok_or_else(|| permanent("envelope has no phone_number_id"))
    }

    /// Who this customer is in the CRM; creates a lead claim (and `lead.created`) for an unknown
    /// number when auto-lead is on and `may_create` holds.
    async fn identify(
        &self,
        customer: &Customer,
        pnid: &str,
        first_message_at: i64,
        may_create: bool,
    ) -> Result<Identity, ProcessError> {
        let phone_key = customer.e164.as_deref().map(PhoneNormalizer::canonical_key);
        if let Some(k) = &phone_key {
            let found = identify::choose(&self.store.directory_by_phone(k).await?);
            if found != Identity::Unknown {
                return Ok(found);
            }
        }
        let identity_key = match (&phone_key, &customer.bsuid) {
            (Some(k), _) => k.clone(),
            (None, Some(b)) => format!("bsuid:{b}"),
            (None, None) => return Ok(Identity::Unknown),
        };
        if let Some(claim) = self.store.lead_claim(&identity_key).await?
            && claim.emitted
        {
            return Ok(match claim.lead_id {
                Some(id) => Identity::Known {
                    rel_type: RelType::Leads,
                    id,
                    name: customer.name.clone(),
                },
                None => Identity::PendingLead {
                    correlation_id: claim.correlation_id,
                },
            });
        }
        let settings = self.store.auto_lead_settings().await?;
        if !settings.enabled || !may_create {
            return Ok(Identity::Unknown);
        }
        // Claim first (conditional write), then announce: two retries or two numbers can never
        // create two leads. A claim whose event was not yet sent is (re)sent with the same id.
        let claim = self
            .store
            .claim_lead(
                &identity_key,
                &customer.customer_id,
                &keys::conversation_id(pnid, &customer.customer_id),
                (self.now_ms)(),
            )
            .await?;
        // One invocation announces it (a lease), even when two business numbers' messages
        // from this customer are processed at once.
        if !claim.emitted
            && self
                .store
                .take_emit_lease(&identity_key, (self.now_ms)(), EMIT_LEASE_MS)
                .await?
        {
            let event = LeadCreated {
                event_id: format!("lead.created:{}", claim.correlation_id),
                correlation_id: claim.correlation_id.clone(),
                phone: customer.e164.clone(),
                wa_id: customer.wa_id.clone(),
                bsuid: customer.bsuid.clone(),
                name: customer.name.clone(),
                status: settings.status.clone(),
                source: settings.source.clone(),
                assignee: settings.assignee.clone(),
                phone_number_id: pnid.to_string(),
                conversation_id: keys::conversation_id(pnid, &customer.customer_id),
                first_message_at,
            };
            if let Err(e) = self.bus.publish(&[event.into_event()]).await {
                // Given back so this record's retry announces it at once.
                self.store.release_emit_lease(&identity_key).await?;
                return Err(ProcessError::Retryable(e.to_string()));
            }
            self.store.mark_claim_emitted(&identity_key).await?;
            tracing::info!(correlation_id = %claim.correlation_id, "auto-lead requested (lead.created)");
            shared::metrics::count("AutoLeads", 1).emit();
        }
        Ok(Identity::PendingLead {
            correlation_id: claim.correlation_id,
        })
    }

    async fn message(&self, env: &Envelope) -> Result<(), ProcessError> {
        let pnid = self.pnid(env)?;
        let m = RawMessage(env.item.clone()).parse().map_err(permanent)?;
        let span =
            tracing::info_span!("message", wamid = %m.id, phone_number_id = %pnid, kind = %m.kind);
        async {
            let contact = env.contact.as_ref();
            let wa_id = m.from.as_deref().filter(|s| !s.is_empty());
            let bsuid = m
                .from_user_id
                .as_deref()
                .or_else(|| contact.and_then(|c| c.user_id.as_deref()));
            let name = contact
                .and_then(|c| c.profile.as_ref())
                .and_then(|p| p.name.as_deref());
            let e164 = wa_id.and_then(|w| PhoneNormalizer::from_wa_id(w).ok());
            let now = (self.now_ms)();
            let ts = m.timestamp * 1000;
            let mut customer = self
                .store
                .resolve_customer(Some(pnid), wa_id, bsuid, e164.as_deref(), name, now)
                .await?;
            if let MessageContent::System(sys) = &m.content
                && let Some(new_wa) = sys.new_wa_id.as_deref().filter(|n| Some(*n) != wa_id)
            {
                let new_e164 = PhoneNormalizer::from_wa_id(new_wa).ok();
                self.store
                    .move_number(&customer.customer_id, wa_id, new_wa, new_e164.as_deref())
                    .await?;
                tracing::info!("customer changed number; aliases moved");
                customer.wa_id = Some(new_wa.to_string());
                customer.e164 = new_e164;
            }
            let identity = self.identify(&customer, pnid, ts, true).await?;
            let outcome = self
                .store_message(
                    env,
                    pnid,
                    &customer,
                    &identity,
                    &m.id,
                    &m.kind,
                    ts,
                    m.content.summary(),
                    Direction::Inbound,
                    "inbound",
                    m.context.as_ref().and_then(|c| c.id.clone()),
                    media_of(&m.content).map(|(id, _)| id),
                    now,
                    true,
                )
                .await?;
            tracing::info!(
                rel_type = identity.rel_type().as_str(),
                duplicate = outcome == StoreOutcome::Duplicate,
                "inbound message stored"
            );
            shared::metrics::count("InboundMessages", 1)
                .dim(
                    "Outcome",
                    if outcome == StoreOutcome::Duplicate {
                        "duplicate"
                    } else {
                        "stored"
                    },
                )
                .dim("RelType", identity.rel_type().as_str())
                .emit();
            // Handed off again on a redelivery too: a crash may have come between the store and
            // the hand-off, and the media function copies each media once.
            if let (Some(jobs), Some((media_id, filename))) =
                (&self.media_jobs, media_of(&m.content))
            {
                let job = MediaJob {
                    v: MEDIA_JOB_VERSION,
                    media_id: media_id.to_string(),
                    phone_number_id: pnid.to_string(),
                    customer_id: customer.customer_id.clone(),
                    wamid: m.id.clone(),
                    msg_pk: keys::conversation_pk(pnid, &customer.customer_id),
                    msg_sk: keys::message_sk(ts, &m.id),
                    filename: filename.map(str::to_string),
                };
                jobs.send_all(&[QueuedEnvelope {
                    group_id: String::new(),
                    dedupe_id: String::new(),
                    body: job.to_body(),
                    label: format!("media {media_id}"),
                }])
                .await
                .map_err(|e| ProcessError::Retryable(format!("media hand-off: {e}")))?;
                tracing::info!(media_id, "media copy handed to the media queue");
            }
            // Also on a redelivery (a crash may have come between the store and the hand-off);
            // the bots function answers each message once.
            if let (Some(jobs), Some(event)) =
                (&self.bot_jobs, bot_event(&m.id, &m.kind, ts, &m.content))
            {
                self.hand_to_bots(
                    jobs.as_ref(),
                    pnid,
                    &customer,
                    identity.rel_type(),
                    event,
                    outcome,
                )
                .await?;
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Hands a stored customer message to the bots function, when something there may answer
    /// it (`shared::bots::gate`); the conversation is held for the bots first, so the messages
    /// after it go too until the job is surely answered.
    async fn hand_to_bots(
        &self,
        jobs: &dyn EnvelopeSink,
        pnid: &str,
        customer: &Customer,
        rel_type: RelType,
        mut event: BotEvent,
        outcome: StoreOutcome,
    ) -> Result<(), ProcessError> {
        let now = (self.now_ms)();
        let stored = match outcome {
            StoreOutcome::Stored(s) => Some(s),
            // A redelivery: whether it was the first or opened a session is not known again,
            // and it goes.
            StoreOutcome::Duplicate => None,
        };
        if let (
            BotEvent::Message {
                first_inbound,
                session_start,
                ..
            },
            Some(s),
        ) = (&mut event, stored)
        {
            // The job carries what storing found, so the bots judge the message alike.
            *first_inbound = Some(s.first_inbound);
            *session_start = Some(s.session_start);
        }
        let (facts, at_ms) = match (&event, stored) {
            (
                BotEvent::Message {
                    text,
                    reply_id,
                    reply_title,
                    at_ms,
                    ..
                },
                Some(s),
            ) => (
                Some(MessageFacts {
                    text: text.as_deref(),
                    reply_id: reply_id.as_deref(),
                    reply_title: reply_title.as_deref(),
                    rel_type,
                    first_ever: s.first_inbound,
                    session_start: s.session_start,
                    at: chrono::DateTime::from_timestamp_millis(*at_ms)
                        .unwrap_or_else(chrono::Utc::now),
                }),
                (*at_ms).min(now),
            ),
            _ => (None, now),
        };
        let held_until = stored.and_then(|s| s.bots_hold_until);
        let candidate = Candidate {
            facts,
            predates_hold: stored.is_some_and(|s| s.predates_hold),
            held_until,
            at_ms,
        };
        let set_version = match self.bots_gate.decide(&self.store, &candidate).await {
            HandOff::Skip => {
                tracing::debug!("no bot may answer and AI is off: not handed to the bots");
                return Ok(());
            }
            HandOff::Arm(bots) => {
                // What the bots function would have done with it, without the hop.
                let conversation_id = keys::conversation_id(pnid, &customer.customer_id);
                let scope = TimerScope::new(
                    pnid,
                    &customer.customer_id,
                    &conversation_id,
                    self.store.shards(),
                );
                // (Only a stored message has facts, so only a message is armed from.)
                let BotEvent::Message { at_ms, .. } = &event else {
                    return Ok(());
                };
                timers::arm(&self.store, &bots, &scope, *at_ms, now)
                    .await
                    .map_err(|e| ProcessError::Retryable(format!("bot timer: {e}")))?;
                tracing::debug!(timers = bots.len(), "only timer bots may act: armed here");
                return Ok(());
            }
            HandOff::Send { set_version } => set_version,
        };
        // (Not rewritten while the last hold is fresh: a burst of messages writes it once.)
        if held_until.is_none_or(|h| h < now + HANDOFF_HOLD_MS - HOLD_FRESH_MS) {
            self.store
                .hold_bots(pnid, &customer.customer_id, now + HANDOFF_HOLD_MS)
                .await
                .map_err(|e| ProcessError::Retryable(format!("bot hold: {e}")))?;
        }
        let job = BotJob {
            v: BOT_JOB_VERSION,
            phone_number_id: pnid.to_string(),
            customer_id: customer.customer_id.clone(),
            set_version,
            event,
        };
        jobs.send_all(&[job.envelope()])
            .await
            .map_err(|e| ProcessError::Retryable(format!("bot hand-off: {e}")))
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_message(
        &self,
        env: &Envelope,
        pnid: &str,
        customer: &Customer,
        identity: &Identity,
        wamid: &str,
        kind: &str,
        ts: i64,
        summary: String,
        direction: Direction,
        source: &str,
        context_wamid: Option<String>,
        media_id: Option<&str>,
        now: i64,
        opens_window: bool,
    ) -> Result<StoreOutcome, ProcessError> {
        let conv_id = keys::conversation_id(pnid, &customer.customer_id);
        let shard = keys::shard_of(&conv_id, self.store.shards());
        let rel_type = identity.rel_type();
        let msg = MessageItem {
            pk: keys::conversation_pk(pnid, &customer.customer_id),
            sk: keys::message_sk(ts, wamid),
            wamid: wamid.to_string(),
            conversation_id: conv_id,
            direction,
            kind: kind.to_string(),
            timestamp: ts,
            summary: shared::store::dynamo::truncate(&summary, 1000),
            raw: capped_raw(env.item.get()),
            source: source.to_string(),
            context_wamid,
            staff_id: None,
            stored_at: now,
            media_id: media_id.map(str::to_string),
            media_state: media_id.map(|_| MediaState::Pending),
            media_error: None,
        };
        let inbound = direction == Direction::Inbound;
        let new = NewMessage {
            message: msg,
            conversation: ConversationFacts {
                phone_number_id: pnid.to_string(),
                customer: customer.clone(),
                rel_type,
                rel_id: identity.rel_id(),
                shard,
                now_ms: now,
            },
            unread: inbound,
            opens_window: inbound && opens_window,
        };
        Ok(self.store.store_message(&new).await?)
    }

    async fn status(&self, env: &Envelope) -> Result<(), ProcessError> {
        let s = RawStatus(env.item.clone()).parse().map_err(permanent)?;
        let span = tracing::info_span!("status", wamid = %s.id, phone_number_id = env.phone_number_id.as_deref().unwrap_or(""), status = s.status.as_str());
        async {
            let errors_json = (!s.errors.is_empty())
                .then(|| serde_json::to_string(&s.errors).unwrap_or_default());
            let pricing_json = s
                .pricing
                .as_ref()
                .map(|p| serde_json::to_string(p).unwrap_or_default());
            let out = self
                .store
                .apply_status(&StatusUpdate {
                    wamid: &s.id,
                    status: s.status.as_str(),
                    rank: s.status.rank(),
                    timestamp_ms: s.timestamp * 1000,
                    recipient: s.recipient_id.as_deref().or(s.recipient_user_id.as_deref()),
                    errors_json,
                    pricing_json,
                    biz_opaque_callback_data: s.biz_opaque_callback_data.as_deref(),
                })
                .await?;
            // A notification whose send this status settles (its answer had been lost).
            let mut settled_notification = None;
            if let Some(cb) = s.biz_opaque_callback_data.as_deref() {
                if cb.starts_with("cmp:") {
                    let e = s.errors.first();
                    shared::campaigns::delivery::apply(
                        &self.store,
                        &shared::campaigns::delivery::CampaignStatus {
                            callback: cb,
                            wamid: &s.id,
                            status: s.status.as_str(),
                            rank: s.status.rank(),
                            at_ms: s.timestamp * 1000,
                            error: e.map(|e| {
                                (
                                    e.code,
                                    e.message
                                        .as_deref()
                                        .or(e.title.as_deref())
                                        .unwrap_or("failed"),
                                )
                            }),
                        },
                        (self.now_ms)(),
                    )
                    .await?;
                    // The first status of a campaign message puts it in its conversation (so
                    // does one that does not advance: a redelivery after a failure here, or an
                    // out-of-order status; storing is idempotent on the wamid).
                    if out.previous.is_none() {
                        self.campaign_message(
                            env,
                            cb,
                            &s.id,
                            s.recipient_id.as_deref(),
                            s.timestamp * 1000,
                        )
                        .await?;
                    }
                } else {
                    settled_notification = self.settle_send(cb, &s.id).await?;
                }
            }
            // A notification's message: its log entry follows its delivery.
            let pointer = out
                .notification
                .as_deref()
                .or(settled_notification.as_deref());
            if let (true, Some(pointer)) = (out.advanced, pointer) {
                let status = match s.status.as_str() {
                    "delivered" => Some(NotifyStatus::Delivered),
                    "read" => Some(NotifyStatus::Read),
                    "failed" => Some(NotifyStatus::Failed),
                    _ => None,
                };
                if let Some(status) = status {
                    let e = s.errors.first();
                    self.store
                        .notification_delivery(
                            pointer,
                            status,
                            e.map(|e| {
                                (
                                    e.code,
                                    e.message
                                        .as_deref()
                                        .or(e.title.as_deref())
                                        .unwrap_or("failed"),
                                )
                            }),
                            (self.now_ms)(),
                        )
                        .await?;
                }
            }
            if let Some(e) = s.errors.first() {
                tracing::warn!(
                    code = e.code,
                    title = e.title.as_deref().unwrap_or(""),
                    "message failed"
                );
            }
            tracing::info!(
                advanced = out.advanced,
                previous = out.previous.as_deref().unwrap_or(""),
                "status applied"
            );
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Stores a message the business sent to `wa_id` (from the business app, or a campaign's) in
    /// the customer's conversation: the customer is found or created, identified without
    /// creating a lead, and the message stored outbound (no unread, no window).
    #[allow(clippy::too_many_arguments)]
    async fn store_sent(
        &self,
        env: &Envelope,
        pnid: &str,
        wa_id: &str,
        wamid: &str,
        kind: &str,
        at_ms: i64,
        summary: String,
        source: &str,
    ) -> Result<(Customer, StoreOutcome), ProcessError> {
        let now = (self.now_ms)();
        let e164 = PhoneNormalizer::from_wa_id(wa_id).ok();
        let customer = self
            .store
            .resolve_customer(Some(pnid), Some(wa_id), None, e164.as_deref(), None, now)
            .await?;
        let identity = self.identify(&customer, pnid, at_ms, false).await?;
        let outcome = self
            .store_message(
                env,
                pnid,
                &customer,
                &identity,
                wamid,
                kind,
                at_ms,
                summary,
                Direction::Outbound,
                source,
                None,
                None,
                now,
                false,
            )
            .await?;
        Ok((customer, outcome))
    }

    /// Stores a campaign's message in the customer's conversation with the sending number (its
    /// first status proves Meta took it; the sender itself never touches conversations, so a
    /// send is never held up or repeated by them). Written as sent by the business: no unread,
    /// no service window, bots not silenced; idempotent on the wamid, so the statuses that
    /// follow, or a redelivery, change nothing.
    async fn campaign_message(
        &self,
        env: &Envelope,
        callback: &str,
        wamid: &str,
        recipient: Option<&str>,
        at_ms: i64,
    ) -> Result<(), ProcessError> {
        let Some((campaign_id, run, phone)) = shared::store::campaigns::parse_callback(callback)
        else {
            return Ok(());
        };
        let Some(campaign) = self.campaign_labels.get(&self.store, campaign_id).await? else {
            return Ok(());
        };
        let pnid = env
            .phone_number_id
            .clone()
            .unwrap_or_else(|| campaign.phone_number_id.clone());
        // Meta's wa_id for the recipient (it may differ from the number we sent to).
        let wa_id = recipient
            .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_string)
            .unwrap_or_else(|| phone.trim_start_matches('+').to_string());
        let raw = serde_json::json!({
            "type": "template",
            "template": {"name": campaign.template, "language": {"code": campaign.language}},
            "campaign": {"id": campaign.campaign_id, "name": campaign.name, "run": run},
        });
        let record = Envelope {
            item: serde_json::value::RawValue::from_string(raw.to_string())
                .map_err(|e| permanent(e.to_string()))?,
            ..env.clone()
        };
        let (_, outcome) = self
            .store_sent(
                &record,
                &pnid,
                &wa_id,
                wamid,
                "template",
                at_ms,
                format!("[template] {}", campaign.template),
                "campaign",
            )
            .await?;
        tracing::info!(
            campaign_id,
            run,
            duplicate = outcome == StoreOutcome::Duplicate,
            "campaign message stored in its conversation"
        );
        Ok(())
    }

    /// A status names our send (`biz_opaque_callback_data` = our message id): a send whose
    /// answer was lost (`unknown`) or whose process died before recording it (`pending`) is
    /// settled now — Meta had accepted it — and its message stored; an event notification's
    /// log entry becomes `sent` (its pointer is answered, for this status to move it on).
    async fn settle_send(&self, msg_id: &str, wamid: &str) -> Result<Option<String>, ProcessError> {
        let Some(intent) = self.store.intent(msg_id).await? else {
            return Ok(None);
        };
        if !matches!(intent.state, SendState::Unknown | SendState::Pending) {
            return Ok(None);
        }
        let Some(conv) = self
            .store
            .conversation(&intent.phone_number_id, &intent.customer_id)
            .await?
        else {
            return Ok(None);
        };
        let now = (self.now_ms)();
        self.store
            .store_outbound(&AcceptedOutbound {
                conversation: &conv,
                wamid,
                kind: &intent.kind,
                timestamp_ms: intent.created_at,
                summary: &intent.summary,
                raw: &intent.request,
                staff_id: intent.staff_id.as_deref(),
                source: "api",
                now_ms: now,
            })
            .await?;
        let settled = self
            .store
            .finish_intent(
                msg_id,
                SendState::Accepted,
                Some(wamid),
                None,
                now,
                &[SendState::Unknown, SendState::Pending],
            )
            .await?;
        tracing::info!(msg_id, settled, "send settled from its status");
        if let Some(pointer) = &intent.notification_log {
            self.store.notification_settled(pointer, wamid, now).await?;
        }
        Ok(intent.notification_log)
    }

    async fn echo(&self, env: &Envelope) -> Result<(), ProcessError> {
        let pnid = self.pnid(env)?;
        let e = shared::meta::webhook::RawEcho(env.item.clone())
            .parse()
            .map_err(permanent)?;
        let span = tracing::info_span!("echo", wamid = %e.id, phone_number_id = %pnid);
        async {
            let to =
                e.to.as_deref()
                    .ok_or_else(|| permanent("echo has no recipient"))?;
            let (customer, _) = self
                .store_sent(
                    env,
                    pnid,
                    to,
                    &e.id,
                    &e.kind,
                    e.timestamp * 1000,
                    e.content.summary(),
                    "smb_echo",
                )
                .await?;
            // A person answered from the business app: bots keep quiet for a while.
            self.store
                .note_staff_reply(pnid, &customer.customer_id, e.timestamp * 1000)
                .await?;
            tracing::info!("message sent from the business app stored");
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn preference(&self, env: &Envelope) -> Result<(), ProcessError> {
        let p: shared::meta::webhook::UserPreference =
            serde_json::from_str(env.item.get()).map_err(permanent)?;
        let wa_id = p.wa_id.as_deref();
        let bsuid = p.user_id.as_deref();
        if wa_id.is_none() && bsuid.is_none() {
            return Err(permanent("user preference names no user"));
        }
        let e164 = wa_id.and_then(|w| PhoneNormalizer::from_wa_id(w).ok());
        let name = env
            .contact
            .as_ref()
            .and_then(|c| c.profile.as_ref())
            .and_then(|p| p.name.as_deref());
        let customer = self
            .store
            .resolve_customer(
                env.phone_number_id.as_deref(),
                wa_id,
                bsuid,
                e164.as_deref(),
                name,
                (self.now_ms)(),
            )
            .await?;
        let opt_out = match p.value.as_str() {
            "stop" => true,
            "resume" => false,
            other => return Err(permanent(format!("unknown preference value {other:?}"))),
        };
        let applied = self
            .store
            .set_marketing_preference(&customer.customer_id, opt_out, p.timestamp * 1000)
            .await?;
        tracing::info!(customer_id = %customer.customer_id, opt_out, applied, category = p.category.as_deref().unwrap_or(""), "marketing preference");
        Ok(())
    }

    async fn template_status(&self, env: &Envelope) -> Result<(), ProcessError> {
        let t: shared::meta::webhook::TemplateStatusUpdate =
            serde_json::from_str(env.item.get()).map_err(permanent)?;
        if t.message_template_name.is_empty()
            || t.message_template_language.is_empty()
            || t.message_template_name.contains('#')
        {
            return Err(permanent(
                "template status update without a usable template name or language",
            ));
        }
        // Same item as the template sync writes: status, reason and time only (newest wins).
        let applied = self
            .store
            .apply_template_status(&shared::store::templates::TemplateStatusChange {
                waba_id: &env.waba_id,
                name: &t.message_template_name,
                language: &t.message_template_language,
                event: &t.event,
                reason: t.reason.as_deref(),
                template_id: Some(t.message_template_id.as_str()),
                category: t.message_template_category.as_deref(),
                raw: env.item.get(),
                // Meta's time of the change, so a re-sent older status never undoes a newer one.
                at_ms: env.happened_at_ms(),
            })
            .await?;
        tracing::info!(template = %t.message_template_name, language = %t.message_template_language, event = %t.event, applied, "template status");
        Ok(())
    }

    /// The template an update names, refused when it names none usable.
    fn template_ref<'a>(
        env: &'a Envelope,
        name: &'a str,
        language: &'a str,
    ) -> Result<TemplateRef<'a>, ProcessError> {
        if name.is_empty() || language.is_empty() || name.contains('#') {
            return Err(permanent(
                "template update without a usable template name or language",
            ));
        }
        Ok(TemplateRef {
            waba_id: &env.waba_id,
            name,
            language,
        })
    }

    async fn template_quality(&self, env: &Envelope) -> Result<(), ProcessError> {
        let q: shared::meta::webhook::TemplateQualityUpdate =
            serde_json::from_str(env.item.get()).map_err(permanent)?;
        let t = Self::template_ref(env, &q.message_template_name, &q.message_template_language)?;
        let applied = self
            .store
            .apply_template_quality(
                &t,
                &q.new_quality_score,
                q.previous_quality_score.as_deref(),
                env.happened_at_ms(),
            )
            .await?;
        tracing::info!(template = %t.name, language = %t.language, quality = %q.new_quality_score, applied, "template quality");
        Ok(())
    }

    async fn template_category(&self, env: &Envelope) -> Result<(), ProcessError> {
        let c: shared::meta::webhook::TemplateCategoryUpdate =
            serde_json::from_str(env.item.get()).map_err(permanent)?;
        let t = Self::template_ref(env, &c.message_template_name, &c.message_template_language)?;
        // A category change alters what a send of the template costs.
        let change = match c.correct_category.as_deref().filter(|x| !x.is_empty()) {
            Some(to) => CategoryChange::Impending {
                to,
                effective_ms: c.category_update_timestamp.map(|s| s * 1000),
            },
            None => CategoryChange::Completed {
                now: &c.new_category,
                previous: c.previous_category.as_deref(),
            },
        };
        let applied = self
            .store
            .apply_template_category(&t, &change, env.happened_at_ms())
            .await?;
        tracing::info!(template = %t.name, language = %t.language, change = ?change, applied, "template category");
        Ok(())
    }

    async fn template_components(&self, env: &Envelope) -> Result<(), ProcessError> {
        let u: shared::meta::webhook::TemplateComponentsUpdate =
            serde_json::from_str(env.item.get()).map_err(permanent)?;
        let t = Self::template_ref(env, &u.message_template_name, &u.message_template_language)?;
        let existing: Vec<serde_json::Value> = self
            .store
            .template(t.waba_id, t.name, t.language)
            .await?
            .and_then(|s| s.components)
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default();
        let merged = shared::templates::components_after_update(&existing, &u);
        let applied = self
            .store
            .apply_template_components(
                &t,
                &serde_json::Value::Array(merged).to_string(),
                env.happened_at_ms(),
            )
            .await?;
        tracing::info!(template = %t.name, language = %t.language, applied, "template components");
        Ok(())
    }

    /// A call (WhatsApp Business Calling) is recorded in its conversation's history, so staff
    /// see answered, missed and failed calls; a missed call counts as unread. Calls do not
    /// move the 24-hour messaging window.
    async fn call(&self, env: &Envelope) -> Result<(), ProcessError> {
        let pnid = self.pnid(env)?;
        let c: shared::meta::webhook::CallEvent =
            serde_json::from_str(env.item.get()).map_err(permanent)?;
        let (wa_id, bsuid) = c.customer();
        let bsuid = bsuid.or_else(|| env.contact.as_ref().and_then(|x| x.user_id.as_deref()));
        let name = env
            .contact
            .as_ref()
            .and_then(|x| x.profile.as_ref())
            .and_then(|p| p.name.as_deref());
        let ts = c.timestamp * 1000;
        let now = (self.now_ms)();
        let (customer, identity) = self
            .call_party(pnid, wa_id, bsuid, name, ts, c.user_initiated(), now)
            .await?;
        let direction = if c.user_initiated() {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let outcome = self
            .store_call_event(
                env,
                pnid,
                &customer,
                &identity,
                &format!("{}#{}", c.id, c.event),
                "call",
                ts,
                c.summary(),
                direction,
                c.missed(),
                now,
            )
            .await?;
        tracing::info!(call_id = %c.id, event = %c.event, duplicate = outcome == StoreOutcome::Duplicate, "call recorded");
        Ok(())
    }

    async fn call_status(&self, env: &Envelope) -> Result<(), ProcessError> {
        let pnid = self.pnid(env)?;
        let st: shared::meta::webhook::CallStatus =
            serde_json::from_str(env.item.get()).map_err(permanent)?;
        let ts = st.timestamp * 1000;
        let now = (self.now_ms)();
        let (customer, identity) = self
            .call_party(
                pnid,
                st.recipient_id.as_deref(),
                st.recipient_user_id.as_deref(),
                None,
                ts,
                false,
                now,
            )
            .await?;
        let summary = format!("Outgoing call: {}", st.status.to_ascii_lowercase());
        self.store_call_event(
            env,
            pnid,
            &customer,
            &identity,
            &format!("{}#{}", st.id, st.status),
            "call_status",
            ts,
            summary,
            Direction::Outbound,
            false,
            now,
        )
        .await?;
        tracing::info!(call_id = %st.id, status = %st.status, "call status recorded");
        Ok(())
    }

    /// The customer on the other end of a call, and who they are in the CRM.
    #[allow(clippy::too_many_arguments)]
    async fn call_party(
        &self,
        pnid: &str,
        wa_id: Option<&str>,
        bsuid: Option<&str>,
        name: Option<&str>,
        ts: i64,
        may_create_lead: bool,
        now: i64,
    ) -> Result<(Customer, Identity), ProcessError> {
        let wa_id = wa_id.filter(|w| !w.is_empty());
        let bsuid = bsuid.filter(|b| !b.is_empty());
        if wa_id.is_none() && bsuid.is_none() {
            return Err(permanent("the call names no customer"));
        }
        let e164 = wa_id.and_then(|w| PhoneNormalizer::from_wa_id(w).ok());
        let customer = self
            .store
            .resolve_customer(Some(pnid), wa_id, bsuid, e164.as_deref(), name, now)
            .await?;
        let identity = self.identify(&customer, pnid, ts, may_create_lead).await?;
        Ok((customer, identity))
    }

    /// Stores a call event as a history item of its conversation (idempotent on its id).
    #[allow(clippy::too_many_arguments)]
    async fn store_call_event(
        &self,
        env: &Envelope,
        pnid: &str,
        customer: &Customer,
        identity: &Identity,
        event_id: &str,
        kind: &str,
        ts: i64,
        summary: String,
        direction: Direction,
        unread: bool,
        now: i64,
    ) -> Result<StoreOutcome, ProcessError> {
        let conv_id = keys::conversation_id(pnid, &customer.customer_id);
        let shard = keys::shard_of(&conv_id, self.store.shards());
        let rel_type = identity.rel_type();
        let new = NewMessage {
            message: MessageItem {
                pk: keys::conversation_pk(pnid, &customer.customer_id),
                sk: keys::message_sk(ts, event_id),
                wamid: event_id.to_string(),
                conversation_id: conv_id,
                direction,
                kind: kind.to_string(),
                timestamp: ts,
                summary,
                raw: capped_raw(env.item.get()),
                source: "calls".into(),
                context_wamid: None,
                staff_id: None,
                stored_at: now,
                media_id: None,
                media_state: None,
                media_error: None,
            },
            conversation: ConversationFacts {
                phone_number_id: pnid.to_string(),
                customer: customer.clone(),
                rel_type,
                rel_id: identity.rel_id(),
                shard,
                now_ms: now,
            },
            unread,
            opens_window: false,
        };
        Ok(self.store.store_message(&new).await?)
    }
}
