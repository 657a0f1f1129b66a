//! The campaign sender function (SQS consumer of the send queue, partial batch failures, its
//! concurrency bounded in `template.yaml`): sends each recipient's template once.
//!
//! A recipient is taken with a conditional move pending → sending before Meta is called, so a
//! redelivered record never sends twice; a send whose answer was lost becomes `unknown` and is
//! settled by its first status (`biz_opaque_callback_data` names the recipient). Meta's answer
//! is mapped by its error code ([`shared::campaigns::outcome`]): rate limits put the recipient
//! back to pending and the record back on the queue; a spam limit or a paused template pauses
//! the campaign; a dead token or number stops it (`campaign.stopped`); an opt-out is recorded on
//! the customer. A record of a paused campaign is dropped with its recipient still pending
//! (resume queues the pending ones again); of a cancelled or stopped one, the recipient is
//! skipped. After each batch, every run it touched is finished if nothing of it is left.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use shared::archive::RawArchive;
use shared::campaigns::SendJob;
use shared::campaigns::model::CampaignState;
use shared::campaigns::outcome::{self, Outcome, RecipientStatus};
use shared::campaigns::params::{self, RecipientFields};
use shared::campaigns::runs;
use shared::crm_events::{EventBus, OutboundEvent};
use shared::meta::graph::GraphClient;
use shared::meta::outbound::{OutboundContent, OutboundMessage};
use shared::pacing::{DynamoWindowCounter, Pacer};
use shared::secrets::{CachedSecret, MetaSecrets};
use shared::sending::Outbound;
use shared::sqs_batch::{self, BatchPolicy, Deadline, Ordering, RecordError, RecordHandler};
use shared::store::campaigns::{Campaign, Recipient};
use shared::store::{Store, StoreError};
use tracing::Instrument;

/// Order-free records; 3 s kept to finish runs and answer.
pub const BATCH_POLICY: BatchPolicy = BatchPolicy {
    ordering: Ordering::Independent,
    reserve: Duration::from_secs(3),
};

/// Records of a batch sent at once.
pub const SEND_CONCURRENCY: usize = 10;
/// One send's overall time (pacing wait and Meta's attempts), below the function's timeout.
pub const SEND_BUDGET: Duration = Duration::from_secs(20);
/// How long a campaign read is reused for the next recipients of it: a pause or a cancel
/// reaches the senders within this time (recipients are still moved one by one,
/// conditionally, so none is ever sent twice).
pub const CAMPAIGN_FRESH_MS: i64 = 1_000;

pub struct SenderApp {
    pub store: Store,
    pub graph: Arc<GraphClient>,
    pub meta_secrets: Arc<CachedSecret<MetaSecrets>>,
    pub pacer: Arc<Pacer<DynamoWindowCounter>>,
    pub bus: Arc<dyn EventBus>,
    pub now_ms: fn() -> i64,
    /// campaign id → (campaign, when read).
    campaigns: std::sync::Mutex<std::collections::HashMap<String, (Campaign, i64)>>,
}

fn store_err(e: StoreError) -> RecordError {
    if e.is_permanent() {
        RecordError::Park(e.to_string())
    } else {
        RecordError::Retry(e.to_string())
    }
}

impl SenderApp {
    pub fn new(
        store: Store,
        Outbound {
            graph,
            meta_secrets,
            pacer,
        }: Outbound,
        bus: Arc<dyn EventBus>,
        now_ms: fn() -> i64,
    ) -> Self {
        Self {
            store,
            graph,
            meta_secrets,
            pacer,
            bus,
            now_ms,
            campaigns: Default::default(),
        }
    }

    /// The campaign, read at most once per [`CAMPAIGN_FRESH_MS`].
    async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        let now = (self.now_ms)();
        if let Some((c, at)) = self
            .campaigns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            && (0..CAMPAIGN_FRESH_MS).contains(&(now - at))
        {
            return Ok(Some(c.clone()));
        }
        let c = self.store.campaign(id).await?;
        let mut cache = self.campaigns.lock().unwrap_or_else(|p| p.into_inner());
        match &c {
            Some(c) => {
                if cache.len() > 100 {
                    cache.clear();
                }
                cache.insert(id.to_string(), (c.clone(), now));
            }
            None => {
                cache.remove(id);
            }
        }
        Ok(c)
    }

    /// Forgets a campaign read, after this sender changed its state.
    fn forget_campaign(&self, id: &str) {
        self.campaigns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub async fn handle_batch(
        &self,
        archive: &dyn RawArchive,
        event: SqsEvent,
        deadline: Deadline,
    ) -> SqsBatchResponse {
        // The runs of this batch (not of others running at the same time).
        let touched: BTreeSet<(String, u32)> = event
            .records
            .iter()
            .filter_map(|r| serde_json::from_str::<SendJob>(r.body.as_deref()?).ok())
            .map(|j| (j.campaign_id, j.run))
            .collect();
        // The records of a batch are independent recipients: sent side by side (each waits
        // for its pace and for Meta), so a sender is not one send at a time.
        let response = sqs_batch::process_concurrently(
            event,
            BATCH_POLICY.reserve,
            deadline,
            archive,
            self,
            SEND_CONCURRENCY,
        )
        .await;
        for (campaign_id, run) in touched {
            if let Err(e) = runs::finish_if_done(
                &self.store,
                self.bus.as_ref(),
                &campaign_id,
                run,
                (self.now_ms)(),
            )
            .await
            {
                // The next batch (or a status) of this run tries again.
                tracing::warn!(campaign_id = %campaign_id, run, error = %e, "run end not recorded yet");
            }
        }
        response
    }

    /// Moves the recipient and its run's counters (pending → … counted once: only the caller
    /// whose conditional move applied counts it).
    async fn settle(
        &self,
        r: &Recipient,
        from: &[RecipientStatus],
        to: RecipientStatus,
        set: &[(&str, AttributeValue)],
    ) -> Result<bool, RecordError> {
        let before = self
            .store
            .move_recipient(r.key(), from, to, set, (self.now_ms)())
            .await
            .map_err(store_err)?;
        let Some(before) = before else {
            return Ok(false);
        };
        self.store
            .count(
                &r.campaign_id,
                r.run,
                r.shard,
                &[(before.status.as_str(), -1), (to.as_str(), 1)],
            )
            .await
            .map_err(store_err)?;
        Ok(true)
    }

    async fn send_one(&self, job: &SendJob) -> Result<(), RecordError> {
        let Some(c) = self.campaign(&job.campaign_id).await.map_err(store_err)? else {
            tracing::warn!("no such campaign: the record is dropped");
            return Ok(());
        };
        let Some(r) = self
            .store
            .recipient(&job.campaign_id, job.run, &job.phone)
            .await
            .map_err(store_err)?
        else {
            tracing::warn!("no such recipient: the record is dropped");
            return Ok(());
        };
        match c.state {
            CampaignState::Paused => {
                // Left pending: resume queues it again.
                tracing::info!("campaign paused: the recipient waits for resume");
                return Ok(());
            }
            CampaignState::Cancelled | CampaignState::Stopped => {
                let why = format!("the campaign was {}", c.state.as_str());
                self.settle(
                    &r,
                    &[RecipientStatus::Pending],
                    RecipientStatus::Skipped,
                    &[("error", AttributeValue::S(why))],
                )
                .await?;
                return Ok(());
            }
            _ => {}
        }
        // Ours from here: a redelivered record finds it taken and stops.
        if !self
            .settle(
                &r,
                &[RecipientStatus::Pending],
                RecipientStatus::Sending,
                &[],
            )
            .await?
        {
            tracing::info!(status = r.status.as_str(), "recipient already taken");
            return Ok(());
        }
        let fields = RecipientFields {
            name: r.name.clone(),
            phone: Some(r.phone.clone()),
            extra: r.fields.clone(),
        };
        let template = match params::render(&c.spec.template, &fields) {
            Ok(t) => t,
            Err(e) => {
                self.settle(
                    &r,
                    &[RecipientStatus::Sending],
                    RecipientStatus::Failed,
                    &[("error", AttributeValue::S(e.to_string()))],
                )
                .await?;
                return Ok(());
            }
        };
        let msg = OutboundMessage {
            to: shared::phone::PhoneNormalizer::digits(&r.phone),
            reply_to: None,
            biz_opaque_callback_data: Some(r.callback_id()),
            content: OutboundContent::Template(template),
        };
        let outcome = self.call_meta(&c, &msg).await;
        self.apply(&c, &r, outcome).await
    }

    async fn call_meta(&self, c: &Campaign, msg: &OutboundMessage) -> Outcome {
        let token = match self.meta_secrets.get().await {
            Ok(s) if !s.access_token.is_empty() => s.access_token.expose().to_string(),
            Ok(_) => {
                return Outcome::StopCampaign {
                    code: 0,
                    reason: "no Meta access token is configured".into(),
                };
            }
            Err(e) => {
                return Outcome::Retry {
                    delay_s: 30,
                    reason: format!("secrets: {e}"),
                };
            }
        };
        if let Err(e) = self.pacer.acquire(&c.phone_number_id, None).await {
            return Outcome::Retry {
                delay_s: 2,
                reason: e.to_string(),
            };
        }
        let sent = self
            .graph
            .send_within(
                &c.phone_number_id,
                &token,
                msg,
                Instant::now() + SEND_BUDGET,
            )
            .await;
        outcome::classify(sent.as_ref().map(|a| a.wamid.clone()))
    }

    async fn apply(&self, c: &Campaign, r: &Recipient, o: Outcome) -> Result<(), RecordError> {
        shared::metrics::count("CampaignSends", 1)
            .dim("Outcome", o.as_str())
            .dim("PhoneNumberId", c.phone_number_id.as_str())
            .emit();
        let now = (self.now_ms)();
        let sending = [RecipientStatus::Sending];
        let error = |code: Option<i64>, reason: &str| {
            let mut v = vec![("error", AttributeValue::S(reason.to_string()))];
            if let Some(c) = code {
                v.push(("error_code", AttributeValue::N(c.to_string())));
            }
            v
        };
        match o {
            Outcome::Sent { wamid } => {
                self.settle(
                    r,
                    &sending,
                    RecipientStatus::Success,
                    &[("wamid", AttributeValue::S(wamid))],
                )
                .await?;
            }
            Outcome::Failed { code, reason } => {
                tracing::warn!(code, reason = %reason, "campaign send failed");
                self.settle(r, &sending, RecipientStatus::Failed, &error(code, &reason))
                    .await?;
            }
            Outcome::Invalid { code, reason } => {
                self.settle(r, &sending, RecipientStatus::Invalid, &error(code, &reason))
                    .await?;
            }
            Outcome::OptedOut { code, reason } => {
                self.settle(
                    r,
                    &sending,
                    RecipientStatus::Failed,
                    &error(Some(code), &reason),
                )
                .await?;
                if let Some(customer) = self
                    .store
                    .customer_by_alias(shared::store::keys::AliasKind::E164, &r.phone)
                    .await
                    .map_err(store_err)?
                {
                    self.store
                        .set_marketing_preference(&customer.customer_id, true, now)
                        .await
                        .map_err(store_err)?;
                }
            }
            Outcome::Unknown { reason } => {
                tracing::warn!(reason = %reason, "campaign send outcome unknown: settled by its status");
                self.settle(r, &sending, RecipientStatus::Unknown, &[])
                    .await?;
            }
            Outcome::Retry { delay_s, reason } => {
                self.settle(r, &sending, RecipientStatus::Pending, &error(None, &reason))
                    .await?;
                return Err(RecordError::Retry(format!(
                    "not accepted, again in about {delay_s} s: {reason}"
                )));
            }
            Outcome::PauseCampaign { code, reason } => {
                self.forget_campaign(&c.id);
                self.settle(
                    r,
                    &sending,
                    RecipientStatus::Pending,
                    &error(Some(code), &reason),
                )
                .await?;
                if self
                    .store
                    .move_campaign(
                        &c.id,
                        &[CampaignState::Running, CampaignState::Scheduled],
                        CampaignState::Paused,
                        Some(&reason),
                        now,
                    )
                    .await
                    .map_err(store_err)?
                {
                    tracing::warn!(code, reason = %reason, "campaign paused by Meta's answer");
                }
            }
            Outcome::StopCampaign { code, reason } => {
                self.forget_campaign(&c.id);
                // Not sent, and a stopped campaign is never resumed: the recipient failed (with
                // Meta's code), so the run ends once the records still queued are skipped.
                self.settle(
                    r,
                    &sending,
                    RecipientStatus::Failed,
                    &error(Some(code), &reason),
                )
                .await?;
                if self
                    .store
                    .move_campaign(
                        &c.id,
                        &[
                            CampaignState::Running,
                            CampaignState::Scheduled,
                            CampaignState::Paused,
                        ],
                        CampaignState::Stopped,
                        Some(&reason),
                        now,
                    )
                    .await
                    .map_err(store_err)?
                {
                    tracing::error!(code, reason = %reason, "campaign stopped");
                }
                // Published on every stop seen (the event id dedupes).
                self.bus
                    .publish(&[OutboundEvent {
                        detail_type: "campaign.stopped".into(),
                        detail: json!({
                            "event_id": format!("campaign.stopped:{}:{}", c.id, r.run),
                            "campaign_id": c.id,
                            "name": c.spec.name,
                            "run": r.run,
                            "phone_number_id": c.phone_number_id,
                            "error_code": code,
                            "reason": reason,
                            "at": now,
                        }),
                    }])
                    .await
                    .map_err(|e| RecordError::Retry(format!("CRM bus: {e}")))?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl RecordHandler for SenderApp {
    async fn handle(&self, record: &SqsMessage) -> Result<(), RecordError> {
        let job: SendJob = serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| RecordError::Park(format!("not a send job: {e}")))?;
        let span =
            tracing::info_span!("campaign_send", campaign_id = %job.campaign_id, run = job.run);
        self.send_one(&job).instrument(span).await
    }
}
