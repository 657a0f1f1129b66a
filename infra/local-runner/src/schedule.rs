//! EventBridge Scheduler, locally: moto never fires schedules, so the runner ticks each
//! schedule of `template.yaml` (a tokio interval per `rate(…)` expression) and invokes the
//! same library code as the Lambda. Tests trigger a tick at once with [`Schedules::run`]
//! (`Stack::run_schedule`).
//!
//! The first tick comes one period after start, as on AWS (a schedule created now first fires
//! a period later); `cron(…)` schedules are not ticked automatically, only on demand.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::spec::ScheduleSpec;

/// A scheduled function: its input in, its JSON result or error text out.
pub type ScheduleHandler = Arc<
    dyn Fn(serde_json::Value) -> BoxFuture<'static, Result<serde_json::Value, String>>
        + Send
        + Sync,
>;

/// The period of a `rate(n unit)` expression; `None` for anything else.
pub fn rate_period(expression: &str) -> Option<Duration> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let secs = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

struct Entry {
    spec: ScheduleSpec,
    handler: ScheduleHandler,
}

/// Every schedule of the stack, by the logical id of the function it invokes.
#[derive(Default, Clone)]
pub struct Schedules {
    by_function: Arc<HashMap<String, Entry>>,
}

impl Schedules {
    pub fn new(entries: Vec<(ScheduleSpec, ScheduleHandler)>) -> Self {
        let map = entries
            .into_iter()
            .map(|(spec, handler)| (spec.function.clone(), Entry { spec, handler }))
            .collect();
        Self {
            by_function: Arc::new(map),
        }
    }

    fn input(spec: &ScheduleSpec) -> serde_json::Value {
        spec.input
            .as_deref()
            .and_then(|i| serde_json::from_str(i).ok())
            .unwrap_or_else(|| serde_json::json!({}))
    }

    /// One tokio task per `rate(…)` schedule, ticking it forever.
    pub fn spawn_ticks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for e in self.by_function.values() {
            let Some(period) = rate_period(&e.spec.expression) else {
                tracing::warn!(schedule = %e.spec.logical_id, expression = %e.spec.expression,
                    "schedule not ticked locally (only rate(…) is); run it on demand");
                continue;
            };
            let (spec, handler) = (e.spec.clone(), e.handler.clone());
            tasks.push(tokio::spawn(async move {
                let mut every =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    match handler(Self::input(&spec)).await {
                        Ok(out) => {
                            tracing::info!(schedule = %spec.logical_id, result = %out, "scheduled run done")
                        }
                        Err(e) => {
                            tracing::error!(schedule = %spec.logical_id, error = %e, "scheduled run failed")
                        }
                    }
                }
            }));
        }
        tasks
    }

    /// Runs the schedule of a function now (as a tick would) and returns its result.
    pub async fn run(&self, function: &str) -> Result<serde_json::Value, String> {
        let e = self
            .by_function
            .get(function)
            .ok_or_else(|| format!("no schedule invokes {function} in template.yaml"))?;
        (e.handler)(Self::input(&e.spec)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(rate_period("rate(1 hour)"), Some(Duration::from_secs(3600)));
        assert_eq!(
            rate_period("rate(5 minutes)"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            rate_period("rate(2 days)"),
            Some(Duration::from_secs(172_800))
        );
        assert_eq!(rate_period("rate(0 hours)"), None);
        assert_eq!(rate_period("cron(0 * * * ? *)"), None);
        assert_eq!(rate_period("rate(1 fortnight)"), None);
    }

    #[tokio::test]
    async fn run_invokes_the_handler_with_the_input() {
        let handler: ScheduleHandler =
            Arc::new(|input| Box::pin(async move { Ok(serde_json::json!({"got": input})) }));
        let s = Schedules::new(vec![(
            ScheduleSpec {
                logical_id: "S".into(),
                function: "F".into(),
                expression: "rate(1 hour)".into(),
                input: Some(r#"{"a":1}"#.into()),
            },
            handler,
        )]);
        assert_eq!(
            s.run("F").await.unwrap(),
            serde_json::json!({"got": {"a": 1}})
        );
        assert!(s.run("G").await.unwrap_err().contains("no schedule"));
    }
}
