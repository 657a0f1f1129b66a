//! One-time EventBridge Scheduler schedules made at run time (campaign runs): moto stores them
//! and fires none, so the runner lists the schedule groups of `template.yaml` every second and
//! invokes the target of each due `at(…)` schedule as Scheduler would — the target's `Input` as
//! the event, the function's timeout as its deadline — then deletes it
//! (`ActionAfterCompletion: DELETE`). A failed invocation is tried again on the next passes,
//! up to the retry policy's attempts (5 here), then the schedule is dropped, as Scheduler
//! drops an event without a DLQ. Tests fire the due ones at once with
//! [`crate::Stack::fire_due_schedules`].
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use shared::campaigns::schedules::parse_at;
use shared::sqs_batch::Deadline;
use tokio::sync::Mutex;

/// A function invoked with an event: its JSON result or its error text.
pub type InvokeHandler =
    Arc<dyn Fn(Value, Deadline) -> BoxFuture<'static, Result<Value, String>> + Send + Sync>;

/// Attempts of one schedule's invocation before it is dropped.
pub const MAX_ATTEMPTS: u32 = 5;

/// What firing one schedule did.
#[derive(Debug, Clone)]
pub struct Fired {
    pub name: String,
    pub input: Value,
    pub result: Result<Value, String>,
}

pub struct RunSchedules {
    client: aws_sdk_scheduler::Client,
    groups: Vec<String>,
    /// Function ARN → its handler and timeout.
    targets: HashMap<String, (InvokeHandler, Duration)>,
    /// One firing pass at a time (a due schedule fires once per pass).
    pass: Mutex<HashMap<String, u32>>,
}

impl RunSchedules {
    pub fn new(
        client: aws_sdk_scheduler::Client,
        groups: Vec<String>,
        targets: HashMap<String, (InvokeHandler, Duration)>,
    ) -> Self {
        Self {
            client,
            groups,
            targets,
            pass: Mutex::new(HashMap::new()),
        }
    }

    /// Fires every schedule due at `now`.
    pub async fn fire_due(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<Fired>, String> {
        let mut attempts = self.pass.lock().await;
        let mut fired = Vec::new();
        for group in &self.groups {
            let mut names = Vec::new();
            let mut token = None;
            loop {
                let out = self
                    .client
                    .list_schedules()
                    .group_name(group)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| aws_sdk_scheduler::error::DisplayErrorContext(&e).to_string())?;
                names.extend(
                    out.schedules()
                        .iter()
                        .filter_map(|s| s.name().map(str::to_string)),
                );
                token = out.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            for name in names {
                let s = match self
                    .client
                    .get_schedule()
                    .name(&name)
                    .group_name(group)
                    .send()
                    .await
                {
                    Ok(s) => s,
                    // Deleted meanwhile (a cancel).
                    Err(_) => continue,
                };
                let Some(at) = s.schedule_expression().and_then(parse_at) else {
                    continue;
                };
                if at > now {
                    continue;
                }
                let Some(target) = s.target() else { continue };
                let input: Value = target
                    .input()
                    .and_then(|i| serde_json::from_str(i).ok())
                    .unwrap_or(Value::Null);
                let result = match self.targets.get(target.arn()) {
                    Some((handler, timeout)) => {
                        handler(input.clone(), Deadline::after(*timeout)).await
                    }
                    None => Err(format!("no local function has the ARN {}", target.arn())),
                };
                let n = attempts.entry(name.clone()).or_default();
                *n += 1;
                if result.is_ok() || *n >= MAX_ATTEMPTS {
                    attempts.remove(&name);
                    let _ = self
                        .client
                        .delete_schedule()
                        .name(&name)
                        .group_name(group)
                        .send()
                        .await;
                }
                match &result {
                    Ok(v) => tracing::info!(schedule = %name, result = %v, "schedule fired"),
                    Err(e) => {
                        tracing::error!(schedule = %name, error = %e, "scheduled invocation failed")
                    }
                }
                fired.push(Fired {
                    name,
                    input,
                    result,
                });
            }
        }
        Ok(fired)
    }

    /// Fires the due schedules every second, forever.
    pub fn spawn(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = self.fire_due(chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "listing the run-time schedules failed");
                }
            }
        })
    }
}
