//! The bot-timers function (EventBridge Scheduler, every minute): reads each shard of the
//! due-time index (`shared::store::bot_timers`): its timers due later than a few minutes after
//! their arming from where its last tick read (the shard's mark), its timers due soon after
//! their arming whole. It drops the timers that no longer hold (a newer customer message
//! superseded them, staff answered, the window closed: most timers, since every customer
//! message arms its own), after one batch read of their conversations, hands the others to the
//! bots function's queue as timer jobs (FIFO group = its conversation, deduplicated by the
//! timer), then moves the mark and deletes the soon ones it handled. The bots function checks
//! again that the timer holds (it may have gone stale in the queue) and answers it once.
//! Nothing due, nothing done: no cron anywhere else.
use std::sync::Arc;

use serde::Serialize;
use shared::bots::job::{BOT_JOB_VERSION, BotEvent, BotJob};
use shared::bots::timers::stale_timer;
use shared::queue::EnvelopeSink;
use shared::store::bot_timers::{BotTimer, TimerPartition};
use shared::store::{Store, StoreError};

/// Timers read per query page, and pages per shard and tick (the rest wait for the next
/// minute): 10,000 timers of a shard falling due in a minute.
pub const PAGE: usize = 1000;
pub const MAX_PAGES: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Timers handed to the bots function.
    pub fired: usize,
    /// Timers that no longer held, dropped.
    pub dropped: usize,
    /// Shards that failed (their timers wait for the next tick).
    pub failed_shards: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error("every shard failed: {0}")]
    AllFailed(String),
}

pub struct TimersApp {
    pub store: Store,
    pub jobs: Arc<dyn EnvelopeSink>,
    pub now_ms: fn() -> i64,
}

pub fn job_of(t: &BotTimer) -> BotJob {
    BotJob {
        v: BOT_JOB_VERSION,
        phone_number_id: t.phone_number_id.clone(),
        customer_id: t.customer_id.clone(),
        set_version: None,
        event: BotEvent::Timer {
            bot_id: t.bot_id.clone(),
            trigger: t.trigger,
            basis_ms: t.basis_ms,
            due_ms: t.due_ms,
        },
    }
}

impl TimersApp {
    /// One tick: every shard's due timers that still hold handed off. A failure of one shard is
    /// logged and retried next minute (its timers are still there); a failure of all of them
    /// is an error, so the schedule's retry policy and the alarm see it.
    pub async fn tick(&self) -> Result<TickReport, TickError> {
        let now = (self.now_ms)();
        let mut report = TickReport::default();
        let mut last_error = String::new();
        for shard in 0..self.store.shards() {
            match self.shard(shard, now).await {
                Ok((fired, dropped)) => {
                    report.fired += fired;
                    report.dropped += dropped;
                }
                Err(e) => {
                    tracing::error!(shard, error = %e, "bot timers of a shard not handed off");
                    report.failed_shards += 1;
                    last_error = e.to_string();
                }
            }
        }
        if report.failed_shards == usize::from(self.store.shards()) && report.failed_shards > 0 {
            return Err(TickError::AllFailed(last_error));
        }
        if report.fired + report.dropped > 0 {
            tracing::info!(
                fired = report.fired,
                dropped = report.dropped,
                "bot timers handed off"
            );
        }
        Ok(report)
    }

    /// One shard's due timers: (handed off, dropped).
    async fn shard(&self, shard: u8, now: i64) -> Result<(usize, usize), String> {
        let err = |e: StoreError| e.to_string();
        let mark = self.store.bot_timer_mark(shard).await.map_err(err)?;
        // Never read: everything the TTL keeps.
        let from = mark.map_or(now - 2 * 86_400_000, |m| m + 1);
        let (mut fired, mut dropped) = (0, 0);
        let mut after: Option<String> = None;
        let mut to = now;
        let mut found = false;
        for page in 1..=MAX_PAGES {
            let (due, more) = self
                .store
                .due_bot_timers(
                    shard,
                    TimerPartition::Later,
                    from,
                    now,
                    after.as_deref(),
                    PAGE,
                )
                .await
                .map_err(err)?;
            found |= !due.is_empty();
            let (f, d) = self.hand_off(&due, now).await?;
            fired += f;
            dropped += d;
            match due.last() {
                Some(last) if more => {
                    if page == MAX_PAGES {
                        // The rest next minute: up to just before this page's last slot (the
                        // page may have left timers of that slot unread).
                        to = last.slot_ms() - 1;
                        tracing::warn!(shard, "more bot timers due than a tick reads");
                    }
                    after = Some(last.sk.clone());
                }
                _ => break,
            }
        }
        if found || mark.is_none() {
            self.store
                .move_bot_timer_mark(shard, to)
                .await
                .map_err(err)?;
        }
        // Due soon after their arming: all that are due (what a page leaves waits a minute),
        // deleted once handed off.
        let (soon, _) = self
            .store
            .due_bot_timers(shard, TimerPartition::Soon, 0, now, None, PAGE)
            .await
            .map_err(err)?;
        if !soon.is_empty() {
            let (f, d) = self.hand_off(&soon, now).await?;
            fired += f;
            dropped += d;
            self.store.delete_bot_timers(&soon).await.map_err(err)?;
        }
        Ok((fired, dropped))
    }

    /// Due timers: those that still hold queued (deduplicated per timer; the mark moves and
    /// the soon ones are deleted after, so a crash in between reads them again and the bots
    /// function answers each once), the others dropped.
    async fn hand_off(&self, due: &[BotTimer], now: i64) -> Result<(usize, usize), String> {
        if due.is_empty() {
            return Ok((0, 0));
        }
        let facts = self
            .store
            .timer_facts(due)
            .await
            .map_err(|e| e.to_string())?;
        let holding: Vec<&BotTimer> = due
            .iter()
            .filter(|t| {
                match facts.get(&(t.phone_number_id.clone(), t.customer_id.clone())) {
                    // An erased conversation has nothing to answer.
                    None => false,
                    // Unreadable here: the bots function reads it whole.
                    Some(None) => true,
                    Some(Some(f)) => stale_timer(f, t.trigger, t.basis_ms, now).is_none(),
                }
            })
            .collect();
        let envelopes: Vec<_> = holding.iter().map(|t| job_of(t).envelope()).collect();
        if !envelopes.is_empty() {
            self.jobs
                .send_all(&envelopes)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok((holding.len(), due.len() - holding.len()))
    }
}
