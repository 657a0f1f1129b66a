//! Inbound function: consumes the FIFO inbound queue (one envelope per record).
//!
//! Per record: message → customer (aliases) → identification (leads → contacts → staff, else
//! auto-lead or general) → one transaction storing message + wamid + conversation → last
//! activity / 24-hour window. Statuses are ranked upserts. Failure semantics (SYSTEM.md §5): a
//! record that fails holds back every later record of its message group in the batch; a record
//! that can never succeed is parked in S3 and acknowledged.
use std::collections::HashSet;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use shared::archive::RawArchive;
use shared::crm_events::{EventBus, LeadCreated};
use shared::envelope::{Envelope, EnvelopeKind};
use shared::identify::{self, Identity};
use shared::media::{InboundMedia, MediaBucket, MediaError};
use shared::meta::graph::{GraphClient, GraphError};
use shared::meta::webhook::{MessageContent, RawMessage, RawStatus};
use shared::phone::PhoneNormalizer;
use shared::secrets::{CachedSecret, MetaSecrets};
use shared::store::dynamo::{
    AcceptedOutbound, Activity, ConversationFacts, NewMessage, StatusUpdate, StoreOutcome,
};
use shared::store::model::{Customer, Direction, MessageItem, RelType, SendState};
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
        match e {
            StoreError::Dynamo(m) => ProcessError::Retryable(m),
            StoreError::Corrupt(m) => ProcessError::Permanent(m),
        }
    }
}

/// Port: what is done with one envelope.
#[async_trait::async_trait]
pub trait Processor: Send + Sync {
    async fn process(&self, envelope: &Envelope) -> Result<(), ProcessError>;
}

/// The FIFO batch semantics, independent of what processing does.
pub async fn handle_batch(
    processor: &dyn Processor,
    archive: &dyn RawArchive,
    event: SqsEvent,
) -> SqsBatchResponse {
    let mut failed_groups: HashSet<String> = HashSet::new();
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_default();
        if !group.is_empty() && failed_groups.contains(&group) {
            // Keep the group's order: a later record never overtakes a failed one.
            failures.push(item_failure(&id));
            continue;
        }
        match process_record(processor, &record).await {
            Ok(()) => {}
            Err(ProcessError::Permanent(reason)) => {
                let body = record.body.clone().unwrap_or_default();
                let parked = serde_json::json!({"message_id": id, "group": group, "reason": reason, "body": body});
                match archive
                    .archive("parked", &reason, parked.to_string().as_bytes())
                    .await
                {
                    Ok(key) => {
                        tracing::error!(message_id = %id, key = %key, reason = %reason, "record parked")
                    }
                    Err(e) => {
                        tracing::error!(message_id = %id, error = %e, "record could not be parked; retrying");
                        failed_groups.insert(group);
                        failures.push(item_failure(&id));
                    }
                }
            }
            Err(ProcessError::Retryable(reason)) => {
                tracing::warn!(message_id = %id, reason = %reason, "record failed; it and the rest of its group will be retried");
                failed_groups.insert(group);
                failures.push(item_failure(&id));
            }
        }
    }
    let mut resp = SqsBatchResponse::default();
    resp.batch_item_failures = failures;
    resp
}

fn item_failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_string();
    f
}

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
    /// Copies inbound media to S3 (absent: media stays at Meta, referenced by id).
    pub media: Option<MediaCopier>,
}

/// What copying inbound media needs.
pub struct MediaCopier {
    pub bucket: MediaBucket,
    pub graph: Arc<GraphClient>,
    pub meta_secrets: Arc<CachedSecret<MetaSecrets>>,
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

/// Media that can never be fetched (refused host, gone, too large) is parked; the rest retried.
fn media_failure(e: MediaError) -> ProcessError {
    match e {
        MediaError::Graph(g) => match &g {
            GraphError::Refused(_) | GraphError::Validation(_) | GraphError::BadResponse(_) => {
                permanent(g)
            }
            GraphError::Meta { code: 100, .. }
            | GraphError::Meta {
                http_status: 404, ..
            } => permanent(g),
            _ => ProcessError::Retryable(g.to_string()),
        },
        MediaError::Storage(m) => ProcessError::Retryable(m),
        MediaError::Store(s) => s.into(),
    }
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
        if !claim.emitted {
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
            self.bus
                .publish(&[event.into_event()])
                .await
                .map_err(|e| ProcessError::Retryable(e.to_string()))?;
            self.store.mark_claim_emitted(&identity_key).await?;
            tracing::info!(correlation_id = %claim.correlation_id, "auto-lead requested (lead.created)");
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
                .resolve_customer(wa_id, bsuid, e164.as_deref(), name, now)
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
                    now,
                )
                .await?;
            tracing::info!(
                rel_type = identity.rel_type().as_str(),
                duplicate = outcome == StoreOutcome::Duplicate,
                "inbound message stored"
            );
            if let (Some(mc), Some((media_id, filename))) = (&self.media, media_of(&m.content)) {
                let secrets = mc
                    .meta_secrets
                    .get()
                    .await
                    .map_err(|e| ProcessError::Retryable(e.to_string()))?;
                let item = shared::media::copy_inbound(
                    &self.store,
                    &mc.bucket,
                    &mc.graph,
                    secrets.access_token.expose(),
                    &InboundMedia {
                        media_id,
                        phone_number_id: pnid,
                        customer_id: &customer.customer_id,
                        wamid: &m.id,
                        filename,
                        now_ms: now,
                    },
                )
                .await
                .map_err(media_failure)?;
                tracing::info!(media_id, bytes = item.size, "media copied to S3");
            }
            Ok(())
        }
        .instrument(span)
        .await
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
        now: i64,
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
            raw: env.item.get().to_string(),
            source: source.to_string(),
            context_wamid,
            staff_id: None,
            stored_at: now,
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
        };
        let outcome = self.store.store_message(&new).await?;
        // Idempotent and order-free, so it also runs for a redelivery (a crash may have
        // happened between the transaction and this step).
        self.store
            .touch_conversation(&Activity {
                phone_number_id: pnid,
                customer_id: &customer.customer_id,
                at_ms: ts,
                preview: &summary,
                inbound,
                shard,
                rel_type,
                wamid,
            })
            .await?;
        Ok(outcome)
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
            if let Some(cb) = s.biz_opaque_callback_data.as_deref() {
                self.settle_send(cb, &s.id).await?;
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

    /// A status names our send (`biz_opaque_callback_data` = our message id): a send whose
    /// answer was lost (`unknown`) or whose process died before recording it (`pending`) is
    /// settled now — Meta had accepted it — and its message stored.
    async fn settle_send(&self, msg_id: &str, wamid: &str) -> Result<(), ProcessError> {
        let Some(intent) = self.store.intent(msg_id).await? else {
            return Ok(());
        };
        if !matches!(intent.state, SendState::Unknown | SendState::Pending) {
            return Ok(());
        }
        let Some(conv) = self
            .store
            .conversation(&intent.phone_number_id, &intent.customer_id)
            .await?
        else {
            return Ok(());
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
        Ok(())
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
            let now = (self.now_ms)();
            let e164 = PhoneNormalizer::from_wa_id(to).ok();
            let customer = self
                .store
                .resolve_customer(Some(to), None, e164.as_deref(), None, now)
                .await?;
            let identity = self
                .identify(&customer, pnid, e.timestamp * 1000, false)
                .await?;
            self.store_message(
                env,
                pnid,
                &customer,
                &identity,
                &e.id,
                &e.kind,
                e.timestamp * 1000,
                e.content.summary(),
                Direction::Outbound,
                "smb_echo",
                None,
                now,
            )
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
            .resolve_customer(wa_id, bsuid, e164.as_deref(), name, (self.now_ms)())
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
                at_ms: env.received_at_ms,
            })
            .await?;
        tracing::info!(template = %t.message_template_name, language = %t.message_template_language, event = %t.event, applied, "template status");
        Ok(())
    }
}
