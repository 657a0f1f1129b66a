//! Creates, in the local AWS (moto), exactly the resources `template.yaml` declares.
use std::collections::{BTreeMap, HashMap};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::spec::{EnvValue, Spec};

/// What a CloudFormation `Ref` / `GetAtt` of a resource resolves to locally.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Resolved {
    pub kind: String,
    /// Table / queue / bus / bucket / secret name.
    pub name: String,
    pub arn: String,
    /// Queue URL.
    pub url: Option<String>,
}

impl Resolved {
    /// `Ref` semantics: table→name, queue→URL, bus→name, bucket→name, secret→ARN.
    pub fn r#ref(&self) -> String {
        match self.kind.as_str() {
            "queue" => self.url.clone().unwrap_or_default(),
            "secret" => self.arn.clone(),
            _ => self.name.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("provisioning {resource} failed: {reason}")]
pub struct ProvisionError {
    pub resource: String,
    pub reason: String,
}

fn err(resource: &str, e: impl std::fmt::Display) -> ProvisionError {
    ProvisionError {
        resource: resource.to_string(),
        reason: e.to_string(),
    }
}

fn dbg_err<E: std::error::Error + 'static, R: std::fmt::Debug>(
    resource: &str,
    e: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> ProvisionError {
    err(resource, aws_sdk_dynamodb::error::DisplayErrorContext(&e))
}

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";

/// Creates every resource of `spec`, names prefixed with `prefix`. `secret_values` gives the
/// initial JSON of each secret by logical id.
pub async fn provision(
    aws: &SdkConfig,
    spec: &Spec,
    prefix: &str,
    secret_values: &HashMap<String, serde_json::Value>,
) -> Result<HashMap<String, Resolved>, ProvisionError> {
    let mut out: HashMap<String, Resolved> = HashMap::new();
    let ddb = aws_sdk_dynamodb::Client::new(aws);
    for t in &spec.tables {
        let name = format!("{prefix}-{}", t.logical_id);
        let ks = |k: &crate::spec::KeyElement| {
            KeySchemaElement::builder()
                .attribute_name(&k.name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .expect("key schema")
        };
        let mut req = ddb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(t.key_schema.iter().map(ks).collect()))
            .set_attribute_definitions(Some(
                t.attribute_definitions
                    .iter()
                    .map(|a| {
                        AttributeDefinition::builder()
                            .attribute_name(&a.name)
                            .attribute_type(ScalarAttributeType::from(a.kind.as_str()))
                            .build()
                            .expect("attribute definition")
                    })
                    .collect(),
            ));
        for g in &t.gsis {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&g.name)
                    .set_key_schema(Some(g.key_schema.iter().map(ks).collect()))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(g.projection.as_str()))
                            .build(),
                    )
                    .build()
                    .expect("gsi"),
            );
        }
        let created = req.send().await.map_err(|e| dbg_err(&name, e))?;
        let arn = created
            .table_description()
            .and_then(|d| d.table_arn())
            .unwrap_or_default()
            .to_string();
        if let Some(attr) = &t.ttl_attribute {
            ddb.update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attr)
                        .enabled(true)
                        .build()
                        .expect("ttl"),
                )
                .send()
                .await
                .map_err(|e| dbg_err(&name, e))?;
        }
        out.insert(
            t.logical_id.clone(),
            Resolved {
                kind: "table".into(),
                name,
                arn,
                url: None,
            },
        );
    }

    let sqs = aws_sdk_sqs::Client::new(aws);
    // The spec lists each DLQ before the queue that uses it.
    for q in &spec.queues {
        let name = if q.fifo {
            format!("{prefix}-{}.fifo", q.logical_id)
        } else {
            format!("{prefix}-{}", q.logical_id)
        };
        let mut attrs: BTreeMap<String, String> = q.attributes.clone();
        if q.fifo {
            attrs.insert("FifoQueue".into(), "true".into());
        }
        if let Some(r) = &q.redrive {
            let dlq = out
                .get(&r.dlq)
                .ok_or_else(|| err(&name, format!("DLQ {} not created before", r.dlq)))?;
            attrs.insert(
                "RedrivePolicy".into(),
                serde_json::json!({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": r.max_receive_count}).to_string(),
            );
        }
        let mut req = sqs.create_queue().queue_name(&name);
        for (k, v) in attrs {
            req = req.attributes(QueueAttributeName::from(k.as_str()), v);
        }
        let url = req
            .send()
            .await
            .map_err(|e| dbg_err(&name, e))?
            .queue_url
            .unwrap_or_default();
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
        out.insert(
            q.logical_id.clone(),
            Resolved {
                kind: "queue".into(),
                name,
                arn,
                url: Some(url),
            },
        );
    }

    let eb = aws_sdk_eventbridge::Client::new(aws);
    for b in &spec.buses {
        let name = format!("{prefix}-{}", b.logical_id);
        let arn = eb
            .create_event_bus()
            .name(&name)
            .send()
            .await
            .map_err(|e| dbg_err(&name, e))?
            .event_bus_arn
            .unwrap_or_default();
        out.insert(
            b.logical_id.clone(),
            Resolved {
                kind: "bus".into(),
                name,
                arn,
                url: None,
            },
        );
    }
    for r in &spec.rules {
        let name = format!("{prefix}-{}", r.logical_id);
        let bus = out
            .get(&r.bus)
            .ok_or_else(|| err(&name, format!("bus {} unknown", r.bus)))?
            .name
            .clone();
        eb.put_rule()
            .name(&name)
            .event_bus_name(&bus)
            .event_pattern(r.pattern.to_string())
            .send()
            .await
            .map_err(|e| dbg_err(&name, e))?;
        for (i, t) in r.targets.iter().enumerate() {
            let q = out
                .get(&t.queue)
                .ok_or_else(|| err(&name, format!("queue {} unknown", t.queue)))?;
            let target = aws_sdk_eventbridge::types::Target::builder()
                .id(format!("t{i}"))
                .arn(&q.arn)
                .build()
                .map_err(|e| err(&name, e))?;
            let o = eb
                .put_targets()
                .rule(&name)
                .event_bus_name(&bus)
                .targets(target)
                .send()
                .await
                .map_err(|e| dbg_err(&name, e))?;
            if o.failed_entry_count() > 0 {
                return Err(err(&name, "PutTargets reported failed entries"));
            }
        }
        out.insert(
            r.logical_id.clone(),
            Resolved {
                kind: "rule".into(),
                name,
                ..Default::default()
            },
        );
    }

    let s3 = aws_sdk_s3::Client::new(aws);
    for b in &spec.buckets {
        let name = format!("{prefix}-{}", b.logical_id).to_lowercase();
        s3.create_bucket()
            .bucket(&name)
            .send()
            .await
            .map_err(|e| dbg_err(&name, e))?;
        out.insert(
            b.logical_id.clone(),
            Resolved {
                kind: "bucket".into(),
                arn: format!("arn:aws:s3:::{name}"),
                name,
                url: None,
            },
        );
    }

    let scheduler = aws_sdk_scheduler::Client::new(aws);
    for g in &spec.schedule_groups {
        let name = format!("{prefix}-{}", g.logical_id);
        let arn = scheduler
            .create_schedule_group()
            .name(&name)
            .send()
            .await
            .map_err(|e| err(&name, aws_sdk_scheduler::error::DisplayErrorContext(&e)))?
            .schedule_group_arn;
        out.insert(
            g.logical_id.clone(),
            Resolved {
                kind: "schedule_group".into(),
                name,
                arn,
                url: None,
            },
        );
    }
    for f in &spec.functions {
        let name = function_name(f, prefix);
        out.insert(
            f.logical_id.clone(),
            Resolved {
                kind: "function".into(),
                arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"),
                name,
                url: None,
            },
        );
    }

    let sm = aws_sdk_secretsmanager::Client::new(aws);
    for s in &spec.secrets {
        let name = format!("{prefix}/{}", s.logical_id);
        let value = secret_values
            .get(&s.logical_id)
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        let arn = sm
            .create_secret()
            .name(&name)
            .secret_string(value.to_string())
            .send()
            .await
            .map_err(|e| dbg_err(&name, e))?
            .arn
            .unwrap_or_default();
        out.insert(
            s.logical_id.clone(),
            Resolved {
                kind: "secret".into(),
                name,
                arn,
                url: None,
            },
        );
    }
    Ok(out)
}

/// A function's name: its `FunctionName` (pseudo parameters filled) or `{prefix}-{logical id}`.
pub fn function_name(f: &crate::spec::FunctionSpec, prefix: &str) -> String {
    match &f.function_name {
        Some(n) => fill_pseudo(n, prefix),
        None => format!("{prefix}-{}", f.logical_id),
    }
}

/// `${AWS::…}` pseudo parameters with their local values (the stack name is the prefix).
pub fn fill_pseudo(text: &str, prefix: &str) -> String {
    text.replace("${AWS::Partition}", "aws")
        .replace("${AWS::Region}", REGION)
        .replace("${AWS::AccountId}", ACCOUNT)
        .replace("${AWS::StackName}", prefix)
}

/// The local ARN of an IAM role of the template.
pub fn role_arn(logical_id: &str, prefix: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{prefix}-{logical_id}")
}

/// A function's environment as Lambda would see it, with every `Ref`/`GetAtt` resolved.
pub fn function_env(
    spec: &Spec,
    binary: &str,
    resolved: &HashMap<String, Resolved>,
    prefix: &str,
) -> Result<HashMap<String, String>, ProvisionError> {
    let f = spec
        .function_by_binary(binary)
        .ok_or_else(|| err(binary, "function not in template.yaml"))?;
    let mut env = HashMap::new();
    for (k, v) in &f.environment {
        let value = match v {
            EnvValue::Value { value } => value.clone(),
            EnvValue::Ref { r#ref } => resolved
                .get(r#ref)
                .ok_or_else(|| err(k, format!("unknown Ref {ref}", ref = r#ref)))?
                .r#ref(),
            EnvValue::RoleArn { role_arn: id } => role_arn(id, prefix),
            EnvValue::FunctionArn { function_arn } => resolved
                .get(function_arn)
                .ok_or_else(|| err(k, format!("unknown function {function_arn}")))?
                .arn
                .clone(),
            EnvValue::Sub { sub } => fill_pseudo(sub, prefix),
            EnvValue::GetAtt { getatt: (id, attr) } => {
                let r = resolved
                    .get(id)
                    .ok_or_else(|| err(k, format!("unknown GetAtt {id}")))?;
                match attr.as_str() {
                    "Arn" => r.arn.clone(),
                    "QueueUrl" => r.url.clone().unwrap_or_default(),
                    "QueueName" | "Name" => r.name.clone(),
                    other => {
                        return Err(err(
                            k,
                            format!("GetAtt attribute {other} not supported locally"),
                        ));
                    }
                }
            }
        };
        env.insert(k.clone(), value);
    }
    Ok(env)
}
