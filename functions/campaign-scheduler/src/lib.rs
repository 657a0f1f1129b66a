//! The campaign scheduler function: invoked by a run's EventBridge Scheduler schedule with
//! `{"campaign_id", "run"}`, it claims the run (two starts of one run make one run), plans the
//! next run of a recurring or custom campaign, and fans the run out: it reads the recipients
//! page by page from their source, normalises and deduplicates their numbers (one recipient
//! per number and run), marks numbers that cannot be WhatsApp numbers invalid (3) and
//! opted-out customers of a marketing template skipped, writes the recipients in batches and
//! queues the pending ones on the send queue in batches of 10.
//!
//! Each page is committed by one transaction that moves the run's cursor (conditional on the
//! page it read) together with the page's counters, so a crash anywhere redoes at most that
//! page: recipients already written are found and not written again, pending ones are queued
//! again (the sender's pending → sending step makes a duplicate harmless), and the counters
//! count each recipient once. Close to its deadline it plans a continuation schedule a minute
//! later and stops; a schedule that fires late, twice, or after a cancel changes nothing.
//!
//! A cancel (or a stop on a dead token) ends the run in progress: the fan-out is closed at the
//! page it stands at (whether it met the cancel itself or was waiting for its continuation),
//! the pending recipients are skipped with the reason, and the run finishes with its totals.
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use shared::campaigns::SendJob;
use shared::campaigns::audience::{self, Candidate, Cursor};
use shared::campaigns::model::CampaignState;
use shared::campaigns::outcome::RecipientStatus;
use shared::campaigns::runs::{self, RunError};
use shared::campaigns::schedules::{
    RunInput, RunSchedules, ScheduleError, continuation_name, schedule_name,
};
use shared::crm_events::EventBus;
use shared::envelope::QueuedEnvelope;
use shared::phone::PhoneNormalizer;
use shared::queue::EnvelopeSink;
use shared::sqs_batch::Deadline;
use shared::store::campaigns::{Campaign, Recipient, RunState, recipient_pk, recipient_shard};
use shared::store::{Store, StoreError};
use tracing::Instrument;

/// Candidates read per page.
pub const PAGE_SIZE: usize = 100;
/// Time kept before the deadline: no page starts within it.
pub const RESERVE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("send queue: {0}")]
    Queue(String),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("the campaign kept changing while its run was claimed")]
    Contended,
}

/// What one invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub campaign_id: String,
    pub run: u32,
    /// `fanned_out`, `continued` (a continuation is planned), `finished` (nothing to send),
    /// or why nothing was done: `no_campaign`, `paused`, `cancelled`, `stopped`, `finished`,
    /// `stale_schedule`, `already_started`, `taken_over`.
    pub outcome: String,
    pub pages: u32,
    pub written: usize,
    pub queued: usize,
    pub invalid: usize,
    pub skipped: usize,
}

pub struct SchedulerApp {
    pub store: Store,
    pub sends: Arc<dyn EnvelopeSink>,
    pub phones: Arc<PhoneNormalizer>,
    pub schedules: Arc<dyn RunSchedules>,
    pub bus: Arc<dyn EventBus>,
    pub now_ms: fn() -> i64,
    pub page_size: usize,
}

/// Where a run's fan-out stands: the cursor of page `page` as committed (none before the first
/// page: the audience's start; none after the last: done).
fn cursor_at(campaign: &Campaign, cursor: Option<&str>, page: u32) -> Option<Cursor> {
    match cursor {
        Some(json) => serde_json::from_str(json).ok(),
        None if page == 0 => Some(audience::start(&campaign.spec)),
        None => None,
    }
}

fn report(input: &RunInput, outcome: &str) -> RunReport {
    RunReport {
        campaign_id: input.campaign_id.clone(),
        run: input.run,
        outcome: outcome.into(),
        ..RunReport::default()
    }
}

impl SchedulerApp {
    pub async fn handle(
        &self,
        input: RunInput,
        deadline: Deadline,
    ) -> Result<RunReport, SchedulerError> {
        let span =
            tracing::info_span!("campaign_run", campaign_id = %input.campaign_id, run = input.run);
        self.run(input, deadline).instrument(span).await
    }

    async fn run(&self, input: RunInput, deadline: Deadline) -> Result<RunReport, SchedulerError> {
        let Some(campaign) = self.store.campaign(&input.campaign_id).await? else {
            return Ok(report(&input, "no_campaign"));
        };
        match campaign.state {
            CampaignState::Paused => return Ok(report(&input, "paused")),
            CampaignState::Cancelled | CampaignState::Stopped
                if input.run <= campaign.runs_started =>
            {
                // The run in progress ends: what was not sent is skipped.
                return self.sweep(&input, &campaign, deadline).await;
            }
            s if s.is_final() => return Ok(report(&input, s.as_str())),
            _ => {}
        }
        let planned = campaign.next_run == Some(input.run);
        let started = input.run <= campaign.runs_started;
        if !planned && !started {
            tracing::info!("a schedule of a run no longer planned: nothing to do");
            return Ok(report(&input, "stale_schedule"));
        }
        let now = (self.now_ms)();
        let (claimed, run) = self
            .store
            .claim_run(&input.campaign_id, input.run, now)
            .await?;
        if claimed {
            self.started(&input, campaign).await?;
        } else if run.state == RunState::Sending {
            // Resumed after a pause: the pending recipients go on the queue again.
            return self.requeue(&input, deadline).await;
        } else if run.state != RunState::FanningOut {
            return Ok(report(&input, "already_started"));
        }
        self.fan_out(&input, run.cursor.as_deref(), run.page, deadline)
            .await
    }

    /// The run is ours: the campaign is running, and its next run (if any) is planned.
    async fn started(&self, input: &RunInput, mut c: Campaign) -> Result<(), SchedulerError> {
        for _ in 0..5 {
            let next = input.run + 1;
            let next_at = c.spec.run_at(
                next,
                chrono::DateTime::from_timestamp_millis(c.saved_at).unwrap_or_default(),
            );
            c.state = CampaignState::Running;
            c.runs_started = c.runs_started.max(input.run);
            c.next_run = next_at.map(|_| next);
            c.next_run_at = next_at.map(|t| t.timestamp_millis());
            c.updated_at = (self.now_ms)();
            if self.store.save_campaign(&mut c).await? {
                if let Some(at) = next_at {
                    self.schedules
                        .plan(
                            &schedule_name(&c.id, next),
                            &RunInput {
                                campaign_id: c.id.clone(),
                                run: next,
                            },
                            at,
                        )
                        .await?;
                }
                tracing::info!(next_run = ?c.next_run, "campaign run started");
                return Ok(());
            }
            match self.store.campaign(&input.campaign_id).await? {
                Some(fresh) if !fresh.state.is_final() => c = fresh,
                // Cancelled (or gone) meanwhile: the fan-out sees it and stops.
                _ => return Ok(()),
            }
        }
        Err(SchedulerError::Contended)
    }

    async fn fan_out(
        &self,
        input: &RunInput,
        cursor: Option<&str>,
        mut page: u32,
        deadline: Deadline,
    ) -> Result<RunReport, SchedulerError> {
        let mut rep = report(input, "fanned_out");
        let Some(campaign) = self.store.campaign(&input.campaign_id).await? else {
            return Ok(report(input, "no_campaign"));
        };
        let mut at = cursor_at(&campaign, cursor, page);
        while let Some(cur) = at.take() {
            if deadline.remaining().is_some_and(|left| left < RESERVE) {
                let when = chrono::Utc::now() + chrono::Duration::minutes(1);
                self.schedules
                    .plan(
                        &continuation_name(&input.campaign_id, input.run, page),
                        input,
                        when,
                    )
                    .await?;
                tracing::info!(page, "deadline close: the fan-out continues in a minute");
                rep.outcome = "continued".into();
                return Ok(rep);
            }
            // Every tenth page, a pause stops the fan-out (resume continues it); a cancel or a
            // stop ends the run here.
            if page > 0 && page.is_multiple_of(10) {
                match self.store.campaign(&input.campaign_id).await? {
                    Some(c) if c.state == CampaignState::Paused => {
                        rep.outcome = "paused".into();
                        return Ok(rep);
                    }
                    Some(c) if !c.state.is_final() => {}
                    Some(c) => return self.sweep(input, &c, deadline).await,
                    None => {
                        rep.outcome = "no_campaign".into();
                        return Ok(rep);
                    }
                }
            }
            let (candidates, next) =
                audience::page(&self.store, &campaign.spec, &cur, self.page_size).await?;
            let next_json = next
                .as_ref()
                .map(|n| serde_json::to_string(n).expect("a cursor serialises"));
            let counted = self
                .page(&campaign, input.run, page, candidates, &mut rep)
                .await?;
            if !self
                .store
                .commit_fanout_page(
                    &input.campaign_id,
                    input.run,
                    page,
                    next_json.as_deref(),
                    &counted,
                    (self.now_ms)(),
                )
                .await?
            {
                // Another invocation of this run committed the page first: it carries on.
                rep.outcome = "taken_over".into();
                return Ok(rep);
            }
            rep.pages += 1;
            page += 1;
            at = next;
        }
        let now = (self.now_ms)();
        if runs::finish_if_done(
            &self.store,
            self.bus.as_ref(),
            &input.campaign_id,
            input.run,
            now,
        )
        .await?
        .is_some()
        {
            rep.outcome = "finished".into();
        }
        tracing::info!(
            pages = rep.pages,
            written = rep.written,
            queued = rep.queued,
            invalid = rep.invalid,
            skipped = rep.skipped,
            "fan-out done"
        );
        Ok(rep)
    }

    /// Queues every pending recipient of a run again (resume; a duplicate is harmless: the
    /// sender's pending → sending move takes each once).
    async fn requeue(
        &self,
        input: &RunInput,
        deadline: Deadline,
    ) -> Result<RunReport, SchedulerError> {
        let mut rep = report(input, "requeued");
        let mut after: Option<String> = None;
        loop {
            if deadline.remaining().is_some_and(|left| left < RESERVE) {
                rep.outcome = "requeue_incomplete".into();
                break;
            }
            let (rows, next) = self
                .store
                .recipients_page(
                    &input.campaign_id,
                    input.run,
                    Some(RecipientStatus::Pending),
                    after.as_deref(),
                    500,
                )
                .await?;
            let jobs: Vec<QueuedEnvelope> = rows
                .iter()
                .map(|r| {
                    SendJob {
                        campaign_id: input.campaign_id.clone(),
                        run: input.run,
                        phone: r.sk.clone(),
                    }
                    .envelope()
                })
                .collect();
            self.sends
                .send_all(&jobs)
                .await
                .map_err(|e| SchedulerError::Queue(e.to_string()))?;
            rep.queued += jobs.len();
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        runs::finish_if_done(
            &self.store,
            self.bus.as_ref(),
            &input.campaign_id,
            input.run,
            (self.now_ms)(),
        )
        .await?;
        tracing::info!(queued = rep.queued, "pending recipients queued again");
        Ok(rep)
    }

    /// Ends the run of a cancelled or stopped campaign: a fan-out still open is closed where it
    /// stands (what it did not write is never sent), its pending recipients are skipped, then
    /// the run is finished.
    async fn sweep(
        &self,
        input: &RunInput,
        campaign: &Campaign,
        deadline: Deadline,
    ) -> Result<RunReport, SchedulerError> {
        let state = campaign.state.as_str();
        let mut rep = report(input, state);
        self.close_fanout(input, campaign, &mut rep).await?;
        let why = format!("the campaign was {state}");
        loop {
            if deadline.remaining().is_some_and(|left| left < RESERVE) {
                break;
            }
            let (rows, _) = self
                .store
                .recipients_page(
                    &input.campaign_id,
                    input.run,
                    Some(RecipientStatus::Pending),
                    None,
                    500,
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let moved = self
                    .store
                    .move_recipient(
                        r.key(),
                        &[RecipientStatus::Pending],
                        RecipientStatus::Skipped,
                        &[(
                            "error",
                            aws_sdk_dynamodb::types::AttributeValue::S(why.clone()),
                        )],
                        (self.now_ms)(),
                    )
                    .await?;
                if moved.is_some() {
                    self.store
                        .count(
                            &r.campaign_id,
                            r.run,
                            r.shard,
                            &[("pending", -1), ("skipped", 1)],
                        )
                        .await?;
                    rep.skipped += 1;
                }
            }
        }
        if let Some(run) = self.store.run(&input.campaign_id, input.run).await?
            && run.state == RunState::Sending
        {
            runs::finish_if_done(
                &self.store,
                self.bus.as_ref(),
                &input.campaign_id,
                input.run,
                (self.now_ms)(),
            )
            .await?;
        }
        Ok(rep)
    }

    /// Closes the run's fan-out if it is still open (a fan-out that met the cancel, or one
    /// waiting for its continuation): the page it stands at is done once more and committed as
    /// the last, so recipients an invocation still in that page wrote are counted, whichever
    /// commit wins; the pages after it are never written. The run moves on to `sending`.
    async fn close_fanout(
        &self,
        input: &RunInput,
        campaign: &Campaign,
        rep: &mut RunReport,
    ) -> Result<(), SchedulerError> {
        for _ in 0..20 {
            let Some(run) = self.store.run(&input.campaign_id, input.run).await? else {
                return Ok(());
            };
            if run.state != RunState::FanningOut {
                return Ok(());
            }
            let counted = match cursor_at(campaign, run.cursor.as_deref(), run.page) {
                Some(cur) => {
                    let (candidates, _) =
                        audience::page(&self.store, &campaign.spec, &cur, self.page_size).await?;
                    self.page(campaign, input.run, run.page, candidates, rep)
                        .await?
                }
                None => BTreeMap::new(),
            };
            if self
                .store
                .commit_fanout_page(
                    &input.campaign_id,
                    input.run,
                    run.page,
                    None,
                    &counted,
                    (self.now_ms)(),
                )
                .await?
            {
                tracing::info!(page = run.page, "fan-out closed: the campaign ended");
                return Ok(());
            }
            // An invocation still fanning out committed that page first: the next one.
        }
        Err(SchedulerError::Contended)
    }

    /// Writes and queues one page; returns the page's counts per shard.
    async fn page(
        &self,
        c: &Campaign,
        run: u32,
        page: u32,
        candidates: Vec<Candidate>,
        rep: &mut RunReport,
    ) -> Result<BTreeMap<u8, BTreeMap<&'static str, i64>>, SchedulerError> {
        let now = (self.now_ms)();
        let mut seen = HashSet::new();
        let mut rows: Vec<Recipient> = Vec::new();
        for cand in candidates {
            let e164 = cand.phone.as_deref().map(|p| self.phones.to_e164(p));
            let (key, status, error) = match e164 {
                Some(Ok(e)) => (
                    PhoneNormalizer::canonical_key(&e),
                    RecipientStatus::Pending,
                    None,
                ),
                Some(Err(e)) => (
                    format!("invalid:{}", cand.source),
                    RecipientStatus::Invalid,
                    Some(format!("not a WhatsApp number: {e}")),
                ),
                None => (
                    format!("invalid:{}", cand.source),
                    RecipientStatus::Invalid,
                    Some("the record has no phone number".to_string()),
                ),
            };
            if !seen.insert(key.clone()) {
                continue;
            }
            let shard = recipient_shard(&key);
            rows.push(Recipient {
                pk: recipient_pk(&c.id, run, shard),
                sk: key.clone(),
                campaign_id: c.id.clone(),
                run,
                shard,
                page,
                phone: if status == RecipientStatus::Invalid {
                    cand.phone.clone().unwrap_or_default()
                } else {
                    key
                },
                source: cand.source,
                name: cand.name,
                fields: BTreeMap::new(),
                status,
                wamid: None,
                error_code: None,
                error,
                delivery: None,
                delivery_rank: 0,
                sent_at: None,
                delivered_at: None,
                read_at: None,
                attempts: 0,
                updated_at: now,
            });
        }
        // Recipients already written: by this page in an attempt that did not commit (kept,
        // counted now), or by an earlier page (a number in two sources: left out).
        let existing = self
            .store
            .recipients_by_key(
                &rows
                    .iter()
                    .map(|r| (r.pk.clone(), r.sk.clone()))
                    .collect::<Vec<_>>(),
            )
            .await?;
        let mut ours: Vec<Recipient> = Vec::new();
        let mut new: Vec<Recipient> = Vec::new();
        for r in rows {
            match existing.iter().find(|e| e.pk == r.pk && e.sk == r.sk) {
                Some(e) if e.page == page => ours.push(e.clone()),
                Some(_) => {}
                None => new.push(r),
            }
        }
        if c.marketing && !new.is_empty() {
            let phones: Vec<&str> = new
                .iter()
                .filter(|r| r.status == RecipientStatus::Pending)
                .map(|r| r.phone.as_str())
                .collect();
            let opted = self.store.marketing_opted_out(&phones).await?;
            for r in new.iter_mut().filter(|r| opted.contains(&r.phone)) {
                r.status = RecipientStatus::Skipped;
                r.error = Some("the customer stopped marketing messages".into());
            }
        }
        self.store.put_recipients(&new).await?;
        ours.extend(new.iter().cloned());
        let jobs: Vec<QueuedEnvelope> = ours
            .iter()
            .filter(|r| r.status == RecipientStatus::Pending)
            .map(|r| {
                SendJob {
                    campaign_id: c.id.clone(),
                    run,
                    phone: r.sk.clone(),
                }
                .envelope()
            })
            .collect();
        self.sends
            .send_all(&jobs)
            .await
            .map_err(|e| SchedulerError::Queue(e.to_string()))?;
        let mut counts: BTreeMap<u8, BTreeMap<&'static str, i64>> = BTreeMap::new();
        for r in &ours {
            // Counted as written: a sender may have moved a pending one on already, and its
            // own counts are relative to pending.
            let initial = match r.status {
                RecipientStatus::Invalid | RecipientStatus::Skipped => r.status,
                _ => RecipientStatus::Pending,
            };
            let shard = counts.entry(r.shard).or_default();
            *shard.entry("total").or_default() += 1;
            *shard.entry(initial.as_str()).or_default() += 1;
            match initial {
                RecipientStatus::Invalid => rep.invalid += 1,
                RecipientStatus::Skipped => rep.skipped += 1,
                _ => {}
            }
        }
        rep.written += ours.len();
        rep.queued += jobs.len();
        Ok(counts)
    }
}
