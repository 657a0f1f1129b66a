//! Notifications function: CRM hook events (EventBridge rule on the CRM bus → SQS) → the active
//! mappings of the hook → their approved templates → the event's contact, lead or staff member.
//!
//! Each (occurrence, mapping, recipient) is sent at most once: its idempotency key goes through
//! the send-intent record of the outbound layer (a redelivered event finds the intent and sends
//! nothing; a lost answer is settled by the first status). What cannot succeed by retrying — no
//! credentials, no sender number, no usable phone, a template not approved, a parameter without
//! a value, Meta refusing the message — is a recorded failure (`notification.failed` on the CRM
//! bus, the log) and the record is acknowledged; what may succeed later (the number's pace,
//! Meta's rate limits and temporary errors, the store, the bus) is retried through the queue
//! (then its DLQ). Opted-out customers get no MARKETING template (`skipped`).
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::archive::RawArchive;
use shared::campaigns::params;
use shared::credentials::{EffectiveCredentials, NotifySecrets, effective_notify_credentials};
use shared::crm_events::{EventBus, OutboundEvent};
use shared::meta::outbound::{OutboundContent, TemplateMessage};
use shared::notifications::render::EventFields;
use shared::notifications::{self, Occurrence};
use shared::phone::PhoneNormalizer;
use shared::secrets::{CachedSecret, MetaSecrets};
use shared::sending::{Outbound, SendError, SendOutcome, SendRequest};
use shared::sqs_batch::{self, BatchPolicy, Deadline, Ordering, RecordError, RecordHandler};
use shared::store::model::SendState;
use shared::store::notifications::{
    LOG_TTL_DAYS, NotificationLog, NotificationMapping, NotifyStatus, log_pk, log_sk,
};
use shared::store::{Store, StoreError};

/// A standard queue: each event stands alone; 25 s are kept to answer (one send's budget).
pub const BATCH_POLICY: BatchPolicy = BatchPolicy {
    ordering: Ordering::Independent,
    reserve: Duration::from_secs(25),
};
/// One send's overall time (pacing wait and Meta's attempts).
pub const SEND_BUDGET: Duration = Duration::from_secs(20);
/// How long the mappings read are used before they are read again.
pub const MAPPINGS_FRESH_MS: i64 = 60_000;

/// The EventBridge envelope as delivered to an SQS target.
#[derive(Debug, Deserialize)]
pub struct BusEnvelope {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub time: Option<String>,
    pub detail: Value,
}

/// The credentials notifications use: their own set, or the inbox's.
pub struct NotifyCredentials {
    pub notify: Option<Arc<CachedSecret<NotifySecrets>>>,
    pub inbox: Arc<CachedSecret<MetaSecrets>>,
}

impl NotifyCredentials {
    pub async fn effective(&self) -> Result<EffectiveCredentials, String> {
        let inbox = self.inbox.get().await.map_err(|e| e.to_string())?;
        let notify = match &self.notify {
            Some(n) => n.get().await.map_err(|e| e.to_string())?,
            None => Arc::new(NotifySecrets::default()),
        };
        Ok(effective_notify_credentials(&notify, &inbox))
    }
}

pub struct NotifyApp {
    pub store: Store,
    pub phones: Arc<PhoneNormalizer>,
    pub outbound: Outbound,
    pub credentials: NotifyCredentials,
    pub bus: Arc<dyn EventBus>,
    pub now_ms: fn() -> i64,
    mappings: Mutex<Option<(Arc<Vec<NotificationMapping>>, i64)>>,
}

/// What became of one notification (before it is logged and published).
#[derive(Debug, Clone, PartialEq)]
pub struct Result1 {
    pub status: NotifyStatus,
    pub wamid: Option<String>,
    pub error_code: Option<i64>,
    pub reason: Option<String>,
}

impl Result1 {
    fn failed(reason: impl Into<String>) -> Self {
        Self {
            status: NotifyStatus::Failed,
            wamid: None,
            error_code: None,
            reason: Some(reason.into()),
        }
    }
}

/// One notification's facts, for the log and the bus.
struct Attempt<'a> {
    occurrence: &'a Occurrence<'a>,
    mapping: &'a NotificationMapping,
    event_at: i64,
    key: String,
    recipient_id: Option<String>,
    phone: Option<String>,
    sender: Option<String>,
    /// Its log entry `(pk, sk)`, claimed before the send (the send's intent points at it).
    slot: Option<(String, String)>,
}

/// Why a record goes back to the queue.
struct Retry(String);

impl From<StoreError> for Retry {
    fn from(e: StoreError) -> Self {
        Retry(e.to_string())
    }
}

impl NotifyApp {
    pub fn new(
        store: Store,
        phones: Arc<PhoneNormalizer>,
        outbound: Outbound,
        credentials: NotifyCredentials,
        bus: Arc<dyn EventBus>,
        now_ms: fn() -> i64,
    ) -> Self {
        Self {
            store,
            phones,
            outbound,
            credentials,
            bus,
            now_ms,
            mappings: Mutex::new(None),
        }
    }

    pub async fn handle_batch(
        &self,
        archive: &dyn RawArchive,
        event: SqsEvent,
        deadline: Deadline,
    ) -> SqsBatchResponse {
        // Events are independent: handled side by side, each waiting on Meta.
        sqs_batch::process_concurrently(event, BATCH_POLICY.reserve, deadline, archive, self, 10)
            .await
    }

    /// The mappings, read at most once per [`MAPPINGS_FRESH_MS`].
    async fn mappings(&self) -> Result<Arc<Vec<NotificationMapping>>, StoreError> {
        let now = (self.now_ms)();
        if let Some((m, at)) = self
            .mappings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && (0..MAPPINGS_FRESH_MS).contains(&(now - at))
        {
            return Ok(m.clone());
        }
        let m = Arc::new(self.store.notification_mappings().await?);
        *self.mappings.lock().unwrap_or_else(|p| p.into_inner()) = Some((m.clone(), now));
        Ok(m)
    }

    /// Handles one event body: every mapping that answers it, each recipient once.
    pub async fn handle_body(&self, body: &str) -> Result<(), RecordError> {
        let env: BusEnvelope = serde_json::from_str(body)
            .map_err(|e| RecordError::Park(format!("not an EventBridge envelope: {e}")))?;
        if env.source != shared::crm_events::CRM_SOURCE {
            return Err(RecordError::Park(format!(
                "source {:?} is not the CRM",
                env.source
            )));
        }
        if !notifications::HOOKS.contains(&env.detail_type.as_str()) {
            return Err(RecordError::Park(format!(
                "{:?} is not a notification hook",
                env.detail_type
            )));
        }
        let event_id = env
            .detail
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(env.id.clone())
            .ok_or_else(|| RecordError::Park("the event has no event_id and no id".into()))?;
        let event_at = env
            .time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|| (self.now_ms)());
        let mappings = self
            .mappings()
            .await
            .map_err(|e| RecordError::Retry(e.to_string()))?;
        let occurrences = notifications::occurrences(&env.detail_type, &event_id, &env.detail);
        let mut retry = Vec::new();
        let mut answered = 0;
        for o in &occurrences {
            for m in mappings
                .iter()
                .filter(|m| notifications::answers(m.active, &m.hooks, &m.category, o))
            {
                answered += 1;
                if let Err(Retry(why)) = self.notify(o, m, event_at).await {
                    retry.push(why);
                }
            }
        }
        if answered == 0 {
            tracing::info!(event_id = %event_id, hook = %env.detail_type, "no active mapping answers this event: nothing sent");
        }
        if retry.is_empty() {
            Ok(())
        } else {
            // The others are done and will be found done (their intents) on redelivery.
            Err(RecordError::Retry(retry.join("; ")))
        }
    }

    /// One mapping for one occurrence: logged and published unless it must be retried.
    async fn notify(
        &self,
        o: &Occurrence<'_>,
        m: &NotificationMapping,
        event_at: i64,
    ) -> Result<(), Retry> {
        let person = notifications::recipient(o.detail, o.record_root, m.send_to);
        let raw_phone = person.as_ref().and_then(|p| p.phone.clone());
        let e164 = raw_phone.as_deref().map(|p| self.phones.to_e164(p));
        let phone = e164.as_ref().and_then(|r| r.as_ref().ok()).cloned();
        let mut attempt = Attempt {
            occurrence: o,
            mapping: m,
            event_at,
            key: notifications::send_key(&o.id, &m.id, m.send_to, phone.as_deref().unwrap_or("")),
            recipient_id: person.as_ref().and_then(|p| p.id.clone()),
            phone: phone.clone(),
            sender: None,
            slot: None,
        };
        let result = match (&person, raw_phone.as_deref(), e164) {
            (None, _, _) => Result1::failed(format!(
                "the event names no {} to send to",
                m.send_to.as_str()
            )),
            (Some(_), None, _) => {
                Result1::failed(format!("the {} has no phone number", m.send_to.as_str()))
            }
            (Some(_), Some(raw), Some(Err(e))) => Result1::failed(format!(
                "the {}'s phone {raw:?} is not a usable number: {e}",
                m.send_to.as_str()
            )),
            _ => {
                self.send(&mut attempt, phone.as_deref().unwrap_or(""))
                    .await?
            }
        };
        self.record(&mut attempt, &result).await
    }

    /// Checks and sends; `Err` only for what a retry may fix.
    async fn send(&self, a: &mut Attempt<'_>, e164: &str) -> Result<Result1, Retry> {
        let m = a.mapping;
        let creds = match self.credentials.effective().await {
            Ok(c) => c,
            Err(e) => return Err(Retry(format!("credentials unreadable: {e}"))),
        };
        if !creds.missing.is_empty() {
            return Ok(Result1::failed(format!(
                "the {} credentials lack {} ({})",
                creds.source.as_str(),
                creds.missing.join(", "),
                creds.reason
            )));
        }
        let sender = match m
            .phone_number_id
            .clone()
            .or_else(|| creds.phone_number_id.clone())
        {
            Some(s) => s,
            None => match self.store.default_number_id().await? {
                Some(s) => s,
                None => {
                    return Ok(Result1::failed(
                        "phone_number_id not set: the mapping names no sender, the notification credentials have none and there is no default number",
                    ));
                }
            },
        };
        a.sender = Some(sender.clone());
        let t = &m.template;
        let stored = self
            .store
            .template(&creds.waba_id, &t.name, &t.language)
            .await?;
        let Some(stored) = stored else {
            return Ok(Result1::failed(format!(
                "template {} ({}) is not among the templates of WABA {}",
                t.name, t.language, creds.waba_id
            )));
        };
        if stored.status.as_deref() != Some("APPROVED") {
            return Ok(Result1::failed(format!(
                "template {} ({}) is {}, not APPROVED",
                t.name,
                t.language,
                stored.status.as_deref().unwrap_or("of unknown status")
            )));
        }
        let marketing = stored.category.as_deref() == Some("MARKETING");
        if marketing
            && self
                .store
                .marketing_opted_out(&[e164])
                .await?
                .contains(e164)
        {
            return Ok(Result1 {
                status: NotifyStatus::Skipped,
                wamid: None,
                error_code: None,
                reason: Some(
                    "the customer stopped marketing messages and the template is MARKETING".into(),
                ),
            });
        }
        let rendered = match render(t, a.occurrence) {
            Ok(r) => r,
            Err(e) => return Ok(Result1::failed(e)),
        };
        if let Err(e) = shared::templates::check_template_send(&stored, &rendered) {
            return Ok(Result1::failed(format!("the template does not fit: {e}")));
        }
        let now = (self.now_ms)();
        let (conversation, _) =
            shared::sending::conversation_for(&self.store, &sender, e164, true, now).await?;
        let token = creds.access_token.expose().to_string();
        let (pk, sk) = self.slot(a).await?;
        let pointer = format!("{pk}|{sk}");
        let sent = self
            .outbound
            .send(
                &self.store,
                SendRequest {
                    conversation: &conversation,
                    content: OutboundContent::Template(rendered),
                    reply_to: None,
                    key: &a.key,
                    staff_id: None,
                    source: "notification",
                    deadline: Instant::now() + SEND_BUDGET,
                    now_ms: now,
                    token: Some(&token),
                    notification_log: Some(&pointer),
                },
            )
            .await;
        outcome(sent)
    }

    /// Where the attempt's log entry lives (claimed once per send key, see
    /// `Store::notification_log_slot`).
    async fn slot(&self, a: &mut Attempt<'_>) -> Result<(String, String), Retry> {
        if let Some(slot) = &a.slot {
            return Ok(slot.clone());
        }
        let ttl = (self.now_ms)() / 1000 + LOG_TTL_DAYS * 86_400;
        let slot = self
            .store
            .notification_log_slot(
                &a.key,
                &log_pk(a.event_at),
                &log_sk(a.event_at, &a.key),
                ttl,
            )
            .await?;
        a.slot = Some(slot.clone());
        Ok(slot)
    }

    /// Logs the result and tells the CRM.
    async fn record(&self, a: &mut Attempt<'_>, r: &Result1) -> Result<(), Retry> {
        let m = a.mapping;
        let now = (self.now_ms)();
        let ttl = now / 1000 + LOG_TTL_DAYS * 86_400;
        let (pk, sk) = self.slot(a).await?;
        let entry = NotificationLog {
            pk,
            sk,
            key: a.key.clone(),
            event_id: a.occurrence.id.clone(),
            hook: a.occurrence.hook.to_string(),
            mapping_id: m.id.clone(),
            send_to: m.send_to,
            recipient_id: a.recipient_id.clone(),
            phone: a.phone.clone(),
            template: m.template.name.clone(),
            language: m.template.language.clone(),
            phone_number_id: a.sender.clone(),
            status: r.status,
            wamid: r.wamid.clone(),
            error_code: r.error_code,
            reason: r.reason.clone(),
            event_at: a.event_at,
            updated_at: now,
            ttl,
        };
        self.store.put_notification_log(&entry).await?;
        if let (NotifyStatus::Sent, Some(wamid)) = (r.status, &r.wamid) {
            // Its delivery statuses (through the webhook) update this entry.
            self.store
                .link_notification(wamid, &entry.pk, &entry.sk)
                .await?;
        }
        let detail_type = match r.status {
            NotifyStatus::Sent | NotifyStatus::Unknown => "notification.sent",
            _ => "notification.failed",
        };
        shared::metrics::count("Notifications", 1)
            .dim("Outcome", r.status.as_str())
            .emit();
        match r.status {
            NotifyStatus::Failed => {
                tracing::warn!(key = %a.key, mapping = %m.id, reason = r.reason.as_deref().unwrap_or(""), "notification failed")
            }
            s => tracing::info!(key = %a.key, mapping = %m.id, status = s.as_str(), "notification"),
        }
        self.bus
            .publish(&[OutboundEvent {
                detail_type: detail_type.into(),
                detail: json!({
                    "event_id": format!("{detail_type}:{}", a.key),
                    "crm_event_id": a.occurrence.id,
                    "hook": a.occurrence.hook,
                    "mapping_id": m.id,
                    "send_to": m.send_to,
                    "recipient_id": a.recipient_id,
                    "phone": a.phone,
                    "template": {"name": m.template.name, "language": m.template.language},
                    "phone_number_id": a.sender,
                    "status": r.status,
                    "wamid": r.wamid,
                    "error_code": r.error_code,
                    "reason": r.reason,
                    "at": now,
                }),
            }])
            .await
            .map_err(|e| Retry(format!("CRM bus: {e}")))
    }
}

/// The template of a mapping for an occurrence: every placeholder filled.
pub fn render(t: &TemplateMessage, o: &Occurrence<'_>) -> Result<TemplateMessage, String> {
    params::render(t, &EventFields::new(o.detail, o.record_root)).map_err(|e| e.to_string())
}

fn outcome(sent: Result<SendOutcome, SendError>) -> Result<Result1, Retry> {
    let ok = |wamid: Option<String>, status| Result1 {
        status,
        wamid,
        error_code: None,
        reason: None,
    };
    match sent {
        Ok(SendOutcome::Accepted(i)) => Ok(ok(i.wamid, NotifyStatus::Sent)),
        Ok(SendOutcome::Unknown(_)) => Ok(ok(None, NotifyStatus::Unknown)),
        Ok(SendOutcome::Repeated(i)) => match i.state {
            SendState::Accepted => Ok(ok(i.wamid, NotifyStatus::Sent)),
            SendState::Unknown => Ok(ok(None, NotifyStatus::Unknown)),
            // Another delivery of the same event is sending it now: its outcome is reported
            // by that delivery; this one comes back later and finds it.
            SendState::Pending => Err(Retry(
                "the same notification is being sent by another delivery".into(),
            )),
            SendState::Failed => Ok(Result1 {
                status: NotifyStatus::Failed,
                wamid: None,
                error_code: i.error_code,
                reason: i.error_message,
            }),
        },
        Err(SendError::Paced(e)) => Err(Retry(format!("the number's pace: {e}"))),
        Err(SendError::Refused(e)) if e.is_retryable() => Err(Retry(format!("Meta: {e}"))),
        Err(SendError::Refused(e)) => Ok(Result1 {
            status: NotifyStatus::Failed,
            wamid: None,
            error_code: e.meta_code(),
            reason: Some(e.to_string()),
        }),
        Err(SendError::Store(e)) => Err(Retry(e.to_string())),
        Err(SendError::SecretsUnavailable) => Err(Retry("credentials unavailable".into())),
        Err(e) => Ok(Result1::failed(e.to_string())),
    }
}

#[async_trait::async_trait]
impl RecordHandler for NotifyApp {
    async fn handle(&self, record: &SqsMessage) -> Result<(), RecordError> {
        self.handle_body(record.body.as_deref().unwrap_or_default())
            .await
    }
}
