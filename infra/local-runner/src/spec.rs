//! The local resource spec (`infra/local-resources.json`), derived from `template.yaml` by
//! `infra/derive_resources.py` (and checked to match it by `make test`).
use std::collections::BTreeMap;

use serde::Deserialize;

pub const SPEC_JSON: &str = include_str!("../../local-resources.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Spec {
    pub tables: Vec<TableSpec>,
    pub queues: Vec<QueueSpec>,
    pub buses: Vec<Named>,
    pub rules: Vec<RuleSpec>,
    /// EventBridge Scheduler schedules (moto never fires them: the runner ticks them).
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    /// EventBridge Scheduler schedule groups (the schedules in them are made at run time,
    /// e.g. campaign runs; the runner fires the due ones).
    #[serde(default)]
    pub schedule_groups: Vec<Named>,
    pub buckets: Vec<Named>,
    pub secrets: Vec<SecretSpec>,
    pub functions: Vec<FunctionSpec>,
}

impl Spec {
    pub fn load() -> Self {
        serde_json::from_str(SPEC_JSON).expect("infra/local-resources.json is valid")
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }

    pub fn function_by_binary(&self, binary: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.binary == binary)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    pub logical_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AttributeDefinition {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KeyElement {
    pub name: String,
    pub key_type: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GsiSpec {
    pub name: String,
    pub key_schema: Vec<KeyElement>,
    pub projection: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TableSpec {
    pub logical_id: String,
    pub attribute_definitions: Vec<AttributeDefinition>,
    pub key_schema: Vec<KeyElement>,
    #[serde(default)]
    pub gsis: Vec<GsiSpec>,
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Redrive {
    pub dlq: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueueSpec {
    pub logical_id: String,
    pub fifo: bool,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub redrive: Option<Redrive>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RuleTarget {
    pub queue: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RuleSpec {
    pub logical_id: String,
    pub bus: String,
    pub pattern: serde_json::Value,
    pub targets: Vec<RuleTarget>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ScheduleSpec {
    pub logical_id: String,
    /// Logical id of the function it invokes.
    pub function: String,
    /// `rate(1 hour)`, `cron(…)`.
    pub expression: String,
    /// The target's `Input` (JSON text), if any.
    #[serde(default)]
    pub input: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SecretSpec {
    pub logical_id: String,
    #[serde(default)]
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    Ref {
        r#ref: String,
    },
    GetAtt {
        getatt: (String, String),
    },
    /// The ARN of an IAM role of the template (moto enforces no IAM: a name only).
    RoleArn {
        role_arn: String,
    },
    /// The ARN of a function of the template.
    FunctionArn {
        function_arn: String,
    },
    /// A `Fn::Sub` over pseudo parameters (`${AWS::StackName}` …).
    Sub {
        sub: String,
    },
    Value {
        value: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
pub struct SqsSource {
    pub queue: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    /// `FunctionName` (pseudo parameters unresolved), when the template names it.
    #[serde(default)]
    pub function_name: Option<String>,
    pub timeout: u64,
    /// `MemorySize` in MB (what the emulator reports to the function).
    pub memory_size: u32,
    pub environment: BTreeMap<String, EnvValue>,
    #[serde(default)]
    pub sqs_sources: Vec<SqsSource>,
    #[serde(default)]
    pub http_routes: Vec<HttpRoute>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_declares_the_functions_the_runner_wires() {
        let spec = Spec::load();
        for bin in ["webhook", "inbound", "directory", "staff-api"] {
            assert!(
                spec.function_by_binary(bin).is_some(),
                "{bin} missing from template.yaml"
            );
        }
        let inbound = spec.function_by_binary("inbound").unwrap();
        assert!(
            inbound
                .sqs_sources
                .iter()
                .all(|s| s.report_batch_item_failures)
        );
        let q = spec
            .queues
            .iter()
            .find(|q| q.logical_id == inbound.sqs_sources[0].queue)
            .unwrap();
        assert!(q.fifo, "inbound queue must be FIFO");
        assert!(q.redrive.is_some(), "inbound queue must have a DLQ");
    }

    #[test]
    fn templates_are_synced_hourly() {
        let spec = Spec::load();
        let s = spec
            .schedules
            .iter()
            .find(|s| s.function == "TemplateSyncFunction")
            .expect("a schedule for TemplateSyncFunction");
        assert_eq!(s.expression, "rate(1 hour)");
        assert_eq!(
            spec.function(&s.function).map(|f| f.binary.as_str()),
            Some("template-sync")
        );
    }
}
