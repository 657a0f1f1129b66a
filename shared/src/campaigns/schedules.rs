//! Each planned run of a campaign is one EventBridge Scheduler schedule, `at(…)` in UTC, in the
//! stack's campaign schedule group, invoking the campaign scheduler function with
//! `{"campaign_id", "run"}` and deleting itself after it fired (`ActionAfterCompletion:
//! DELETE`). Saving, pausing or cancelling a campaign creates, moves or deletes it. Delivery is
//! at least once and may be late: the scheduler function claims the run atomically and checks
//! the campaign's state, so a schedule firing twice, late or after a cancel does no harm.
use aws_sdk_scheduler::error::ProvideErrorMetadata;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a run's schedule hands the scheduler function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInput {
    pub campaign_id: String,
    pub run: u32,
}

/// A run's schedule: `cmp-{campaign id}-{run}` (Scheduler allows 64 characters).
pub fn schedule_name(campaign_id: &str, run: u32) -> String {
    format!("cmp-{campaign_id}-{run}")
}

/// The schedule that continues a fan-out the scheduler could not finish before its deadline
/// (or resumes a paused run): `cmp-{campaign id}-{run}-p{page}`.
pub fn continuation_name(campaign_id: &str, run: u32, page: u32) -> String {
    format!("cmp-{campaign_id}-{run}-p{page}")
}

/// `at(yyyy-mm-ddThh:mm:ss)` of a time, in UTC (seconds kept; Scheduler fires within the minute).
pub fn at_expression(at: DateTime<Utc>) -> String {
    format!("at({})", at.format("%Y-%m-%dT%H:%M:%S"))
}

/// Parses an `at(…)` expression back (the local runner fires due ones).
pub fn parse_at(expression: &str) -> Option<DateTime<Utc>> {
    let inner = expression.strip_prefix("at(")?.strip_suffix(')')?;
    chrono::NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

#[derive(Debug, thiserror::Error)]
#[error("EventBridge Scheduler: {0}")]
pub struct ScheduleError(pub String);

/// Port: where run schedules live.
#[async_trait::async_trait]
pub trait RunSchedules: Send + Sync {
    /// Creates (or moves) the schedule `name` to fire `input` at `at`.
    async fn plan(
        &self,
        name: &str,
        input: &RunInput,
        at: DateTime<Utc>,
    ) -> Result<(), ScheduleError>;
    /// Deletes the schedule `name` (nothing when there is none).
    async fn forget(&self, name: &str) -> Result<(), ScheduleError>;
}

/// Schedules in EventBridge Scheduler.
pub struct EventBridgeSchedules {
    pub client: aws_sdk_scheduler::Client,
    /// `CAMPAIGN_SCHEDULE_GROUP`.
    pub group: String,
    /// The campaign scheduler function's ARN (`CAMPAIGN_SCHEDULER_ARN`).
    pub target_arn: String,
    /// The role Scheduler assumes to invoke it (`CAMPAIGN_SCHEDULER_ROLE_ARN`).
    pub role_arn: String,
}

impl EventBridgeSchedules {
    /// From the function's configuration (`CAMPAIGN_SCHEDULE_GROUP`, `CAMPAIGN_SCHEDULER_ARN`,
    /// `CAMPAIGN_SCHEDULER_ROLE_ARN`).
    pub fn from_config(
        client: aws_sdk_scheduler::Client,
        cfg: &crate::config::Config,
    ) -> Result<Self, crate::config::ConfigError> {
        use crate::config::Config;
        Ok(Self {
            client,
            group: Config::require(&cfg.campaign_schedule_group, "CAMPAIGN_SCHEDULE_GROUP")?
                .to_string(),
            target_arn: Config::require(&cfg.campaign_scheduler_arn, "CAMPAIGN_SCHEDULER_ARN")?
                .to_string(),
            role_arn: Config::require(
                &cfg.campaign_scheduler_role_arn,
                "CAMPAIGN_SCHEDULER_ROLE_ARN",
            )?
            .to_string(),
        })
    }
}

fn describe<E: ProvideErrorMetadata + std::fmt::Debug>(e: &E) -> String {
    format!(
        "{}: {}",
        e.code().unwrap_or("error"),
        e.message().unwrap_or("no message")
    )
}

#[async_trait::async_trait]
impl RunSchedules for EventBridgeSchedules {
    async fn plan(
        &self,
        name: &str,
        input: &RunInput,
        at: DateTime<Utc>,
    ) -> Result<(), ScheduleError> {
        let input = serde_json::to_string(input).map_err(|e| ScheduleError(e.to_string()))?;
        let target = Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(5)
                    .maximum_event_age_in_seconds(3600)
                    .build(),
            )
            .build()
            .map_err(|e| ScheduleError(e.to_string()))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| ScheduleError(e.to_string()))?;
        let created = self
            .client
            .create_schedule()
            .name(name)
            .group_name(&self.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window.clone())
            .target(target.clone())
            .action_after_completion(ActionAfterCompletion::Delete)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConflictException") => self
                .client
                .update_schedule()
                .name(name)
                .group_name(&self.group)
                .schedule_expression(at_expression(at))
                .schedule_expression_timezone("UTC")
                .flexible_time_window(window)
                .target(target)
                .action_after_completion(ActionAfterCompletion::Delete)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ScheduleError(describe(&e))),
            Err(e) => Err(ScheduleError(describe(&e))),
        }
    }

    async fn forget(&self, name: &str) -> Result<(), ScheduleError> {
        match self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(ScheduleError(describe(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn at_expressions_round_trip() {
        let t = Utc.with_ymd_and_hms(2026, 3, 20, 9, 0, 5).unwrap();
        assert_eq!(at_expression(t), "at(2026-03-20T09:00:05)");
        assert_eq!(parse_at(&at_expression(t)), Some(t));
        assert_eq!(parse_at("rate(1 minute)"), None);
        assert!(schedule_name("0191a2b3c4d5e6f708192a3b", 12).len() <= 64);
    }
}
