//! Configuration from the environment: resource names come from `template.yaml`
//! (or the local runner, which derives the same variables from it).
use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Every setting a function may need. Only what a function uses is required by it:
/// use [`Config::require`] helpers at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    pub inbound_queue_url: Option<String>,
    /// The media function's queue (inbound hands media copies to it).
    pub media_queue_url: Option<String>,
    /// The bots function's queue (inbound hands customer messages to it).
    pub bots_queue_url: Option<String>,
    pub crm_bus_name: Option<String>,
    pub media_bucket: Option<String>,
    pub meta_secret_arn: Option<String>,
    pub api_secret_arn: Option<String>,
    /// Event-notification Meta credentials (`NotifySecret`, falls back to `MetaSecret`).
    pub notify_secret_arn: Option<String>,
    /// AI provider settings and key (`AiSecret`).
    pub ai_secret_arn: Option<String>,
    pub default_country: String,
    pub graph_api_base_url: String,
    pub graph_api_version: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub inbox_shards: u8,
    /// Bound on each Graph API call (`GRAPH_API_TIMEOUT_MS`, default 10 s).
    pub graph_timeout_ms: u64,
    /// Bound on a whole media download (`MEDIA_DOWNLOAD_TIMEOUT_MS`, default 90 s): shorter
    /// than the media function's timeout.
    pub media_download_timeout_ms: u64,
    /// Days messages are kept (`MESSAGE_RETENTION_DAYS`, 0 = forever).
    pub message_retention_days: u32,
    /// The campaign send queue (`CAMPAIGN_SEND_QUEUE_URL`).
    pub campaign_send_queue_url: Option<String>,
    /// EventBridge Scheduler group of campaign runs (`CAMPAIGN_SCHEDULE_GROUP`), the campaign
    /// scheduler function it invokes and the role it assumes to do so.
    pub campaign_schedule_group: Option<String>,
    pub campaign_scheduler_arn: Option<String>,
    pub campaign_scheduler_role_arn: Option<String>,
    /// OpenAI's API base (`OPENAI_BASE_URL`, default `https://api.openai.com/v1`).
    pub openai_base_url: String,
    /// Gemini's API base (`GEMINI_BASE_URL`, default
    /// `https://generativelanguage.googleapis.com/v1beta`).
    pub gemini_base_url: String,
    /// Bound on each AI call (`AI_TIMEOUT_MS`, default 8000).
    pub ai_timeout_ms: u64,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|k| map.get(k).cloned())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let inbox_shards = match get("INBOX_SHARDS") {
            None => 4,
            Some(v) => v
                .parse::<u8>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "INBOX_SHARDS",
                    reason: format!("{v:?} is not a number from 1 to 64"),
                })?,
        };
        Ok(Self {
            table_name: get("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?,
            inbound_queue_url: get("INBOUND_QUEUE_URL"),
            media_queue_url: get("MEDIA_QUEUE_URL"),
            bots_queue_url: get("BOTS_QUEUE_URL"),
            crm_bus_name: get("CRM_BUS_NAME"),
            media_bucket: get("MEDIA_BUCKET"),
            meta_secret_arn: get("META_SECRET_ARN"),
            api_secret_arn: get("API_SECRET_ARN"),
            notify_secret_arn: get("NOTIFY_SECRET_ARN"),
            ai_secret_arn: get("AI_SECRET_ARN"),
            default_country: get("DEFAULT_COUNTRY").unwrap_or_else(|| "US".into()),
            graph_api_base_url: get("GRAPH_API_BASE_URL")
                .unwrap_or_else(|| "https://graph.facebook.com".into()),
            graph_api_version: get("GRAPH_API_VERSION").unwrap_or_else(|| "v25.0".into()),
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "crm".into()),
            jwt_audience: get("JWT_AUDIENCE").unwrap_or_else(|| "whatsapp-api".into()),
            inbox_shards,
            graph_timeout_ms: match get("GRAPH_API_TIMEOUT_MS") {
                None => 10_000,
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (100..=60_000).contains(n))
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "GRAPH_API_TIMEOUT_MS",
                        reason: format!("{v:?} is not a number of milliseconds from 100 to 60000"),
                    })?,
            },
            message_retention_days: match get("MESSAGE_RETENTION_DAYS") {
                None => 0,
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 3650)
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "MESSAGE_RETENTION_DAYS",
                        reason: format!("{v:?} is not a number of days from 0 to 3650"),
                    })?,
            },
            campaign_send_queue_url: get("CAMPAIGN_SEND_QUEUE_URL"),
            campaign_schedule_group: get("CAMPAIGN_SCHEDULE_GROUP"),
            campaign_scheduler_arn: get("CAMPAIGN_SCHEDULER_ARN"),
            campaign_scheduler_role_arn: get("CAMPAIGN_SCHEDULER_ROLE_ARN"),
            openai_base_url: get("OPENAI_BASE_URL")
                .unwrap_or_else(|| "https://api.openai.com/v1".into()),
            gemini_base_url: get("GEMINI_BASE_URL")
                .unwrap_or_else(|| "https://generativelanguage.googleapis.com/v1beta".into()),
            ai_timeout_ms: match get("AI_TIMEOUT_MS") {
                None => 8_000,
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (100..=30_000).contains(n))
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "AI_TIMEOUT_MS",
                        reason: format!("{v:?} is not a number of milliseconds from 100 to 30000"),
                    })?,
            },
            media_download_timeout_ms: match get("MEDIA_DOWNLOAD_TIMEOUT_MS") {
                None => 90_000,
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1_000..=600_000).contains(n))
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "MEDIA_DOWNLOAD_TIMEOUT_MS",
                        reason: format!(
                            "{v:?} is not a number of milliseconds from 1000 to 600000"
                        ),
                    })?,
            },
        })
    }

    pub fn require<'a>(
        value: &'a Option<String>,
        name: &'static str,
    ) -> Result<&'a str, ConfigError> {
        value.as_deref().ok_or(ConfigError::Missing(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_name_is_required_and_defaults_apply() {
        let mut m = HashMap::new();
        assert_eq!(
            Config::from_map(&m),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
        m.insert("TABLE_NAME".into(), "t".into());
        let c = Config::from_map(&m).unwrap();
        assert_eq!(c.inbox_shards, 4);
        assert_eq!(c.graph_api_version, "v25.0");
        assert_eq!(c.inbound_queue_url, None);
        assert_eq!(
            Config::require(&c.inbound_queue_url, "INBOUND_QUEUE_URL"),
            Err(ConfigError::Missing("INBOUND_QUEUE_URL"))
        );
    }

    #[test]
    fn bad_shard_count_is_rejected() {
        let m: HashMap<String, String> = [("TABLE_NAME", "t"), ("INBOX_SHARDS", "0")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert!(matches!(
            Config::from_map(&m),
            Err(ConfigError::Invalid {
                name: "INBOX_SHARDS",
                ..
            })
        ));
    }
}
