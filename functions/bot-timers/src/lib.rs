//! The bot-timers function (EventBridge Scheduler, every minute): finds the due bot timers in
//! their sharded index and hands each to the bots function's queue as a timer job (FIFO group
//! = its conversation, deduplicated by the timer), then deletes it. The bots function checks
//! the timer still holds (no newer customer message; for "no staff reply", no staff reply
//! since) and answers it once. Nothing due, nothing done: no cron anywhere else.
use std::sync::Arc;

use serde::Serialize;
use shared::bots::job::{BOT_JOB_VERSION, BotEvent, BotJob};
use shared::queue::EnvelopeSink;
use shared::store::bot_timers::BotTimer;
use shared::store::{Store, StoreError};

/// Timers handed off per shard and run (the rest wait for the next minute).
pub const MAX_PER_SHARD: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Timers handed to the bots function.
    pub fired: usize,
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
    /// One tick: every shard's due timers handed off, then deleted. A failure of one shard is
    /// logged and retried next minute (its timers are still there); a failure of all of them
    /// is an error, so the schedule's retry policy and the alarm see it.
    pub async fn tick(&self) -> Result<TickReport, TickError> {
        let now = (self.now_ms)();
        let mut report = TickReport::default();
        let mut last_error = String::new();
        for shard in 0..self.store.shards() {
            match self.shard(shard, now).await {
                Ok(n) => report.fired += n,
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
        if report.fired > 0 {
            tracing::info!(fired = report.fired, "bot timers handed off");
        }
        Ok(report)
    }

    async fn shard(&self, shard: u8, now: i64) -> Result<usize, String> {
        let due = self
            .store
            .due_bot_timers(shard, now, MAX_PER_SHARD)
            .await
            .map_err(|e: StoreError| e.to_string())?;
        if due.is_empty() {
            return Ok(0);
        }
        // Queued first (deduplicated per timer), deleted after: a crash in between fires the
        // timer again next minute, and the bots function answers it once.
        let envelopes: Vec<_> = due.iter().map(|t| job_of(t).envelope()).collect();
        self.jobs
            .send_all(&envelopes)
            .await
            .map_err(|e| e.to_string())?;
        for t in &due {
            self.store
                .delete_bot_timer(t)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(due.len())
    }
}
