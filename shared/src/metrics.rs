//! Business and operational metrics in CloudWatch's embedded metric format (EMF): one JSON
//! line on stdout per observation, which CloudWatch Logs turns into metrics — no API call, no
//! agent, nothing on the request's path but a `println!`.
//!
//! Every metric is dimensioned by `Function` (the Lambda function's name, as `AWS/Lambda` names
//! it) and by what the observation adds (`Outcome`, `Reason`, `PhoneNumberId`,
//! `MetaErrorCode`…), each extra dimension also alone with `Function`, so a dashboard or an
//! alarm can read one slice without knowing the others. The namespace is `METRICS_NAMESPACE`
//! (`template.yaml`: `{stack}/WhatsApp`).
//!
//! Lines are written under Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set, also under the Runtime
//! Interface Emulator) or when `EMF_METRICS=1` (`make dev`); the test suite's in-process stacks
//! stay quiet.
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

struct Settings {
    enabled: bool,
    namespace: String,
    function: String,
}

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok();
        Settings {
            enabled: function.is_some()
                || std::env::var("EMF_METRICS").is_ok_and(|v| v == "1" || v == "true"),
            namespace: std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "WhatsApp".into()),
            function: function.unwrap_or_else(|| "local".into()),
        }
    })
}

/// One observation: a few values sharing the same dimensions.
#[must_use = "an observation is written by .emit()"]
#[derive(Debug, Clone, Default)]
pub struct Observation {
    dimensions: Vec<(&'static str, String)>,
    /// Dimensions also published without `Function` (stack-wide alarms).
    stack_wide: Vec<&'static str>,
    values: Vec<(&'static str, f64, Unit)>,
}

/// Starts an observation of `name` counted `n` times.
pub fn count(name: &'static str, n: u64) -> Observation {
    Observation::default().count(name, n)
}

/// Starts an observation of a duration.
pub fn millis(name: &'static str, d: std::time::Duration) -> Observation {
    Observation::default().millis(name, d)
}

impl Observation {
    pub fn count(mut self, name: &'static str, n: u64) -> Self {
        self.values.push((name, n as f64, Unit::Count));
        self
    }

    pub fn millis(mut self, name: &'static str, d: std::time::Duration) -> Self {
        self.values
            .push((name, d.as_secs_f64() * 1000.0, Unit::Milliseconds));
        self
    }

    /// Adds a dimension (keep its values few: outcomes, reasons, codes, business numbers).
    pub fn dim(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    /// Adds a dimension that is also published alone, stack-wide (e.g. `MetaErrorCode`, so
    /// one alarm watches token errors of every function).
    pub fn dim_stack_wide(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.stack_wide.push(name);
        self.dim(name, value)
    }

    /// The EMF document of this observation at `timestamp_ms`.
    pub fn document(&self, namespace: &str, function: &str, timestamp_ms: i64) -> Value {
        let mut sets = vec![json!(["Function"])];
        for (name, _) in &self.dimensions {
            sets.push(json!(["Function", name]));
        }
        if self.dimensions.len() > 1 {
            let mut all = vec!["Function"];
            all.extend(self.dimensions.iter().map(|(n, _)| *n));
            sets.push(json!(all));
        }
        for name in &self.stack_wide {
            sets.push(json!([name]));
        }
        let metrics: Vec<Value> = self
            .values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut doc = Map::new();
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": sets,
                    "Metrics": metrics,
                }],
            }),
        );
        doc.insert("Function".into(), function.into());
        for (name, value) in &self.dimensions {
            doc.insert((*name).into(), value.clone().into());
        }
        for (name, value, _) in &self.values {
            doc.insert((*name).into(), json!(value));
        }
        Value::Object(doc)
    }

    /// Writes the observation (one line on stdout), when metrics are on.
    pub fn emit(self) {
        let s = settings();
        if !s.enabled || self.values.is_empty() {
            return;
        }
        let doc = self.document(
            &s.namespace,
            &s.function,
            chrono::Utc::now().timestamp_millis(),
        );
        println!("{doc}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_cloudwatch_emf() {
        let doc = count("WebhookRequests", 1)
            .count("EnvelopesQueued", 3)
            .dim("Outcome", "accepted")
            .document("dev/WhatsApp", "dev-webhook", 1_764_633_600_000);
        assert_eq!(
            doc,
            json!({
                "_aws": {
                    "Timestamp": 1_764_633_600_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "dev/WhatsApp",
                        "Dimensions": [["Function"], ["Function", "Outcome"]],
                        "Metrics": [
                            {"Name": "WebhookRequests", "Unit": "Count"},
                            {"Name": "EnvelopesQueued", "Unit": "Count"}
                        ]
                    }]
                },
                "Function": "dev-webhook",
                "Outcome": "accepted",
                "WebhookRequests": 1.0,
                "EnvelopesQueued": 3.0
            })
        );
    }

    #[test]
    fn every_dimension_is_a_slice_of_its_own_and_all_together() {
        let doc = millis("GraphLatency", std::time::Duration::from_micros(12_500))
            .dim("Kind", "send")
            .dim("PhoneNumberId", "106540352242922")
            .document("ns", "f", 0);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([
                ["Function"],
                ["Function", "Kind"],
                ["Function", "PhoneNumberId"],
                ["Function", "Kind", "PhoneNumberId"]
            ])
        );
        assert_eq!(doc["GraphLatency"], 12.5);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
        let doc = count("MetaErrors", 1)
            .dim_stack_wide("MetaErrorCode", "190")
            .document("ns", "f", 0);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([
                ["Function"],
                ["Function", "MetaErrorCode"],
                ["MetaErrorCode"]
            ])
        );
        assert_eq!(doc["MetaErrorCode"], "190");
    }
}
