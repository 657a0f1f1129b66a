use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::config::Config;
use shared::meta::graph::{GraphClient, GraphConfig};
use shared::secrets::CachedSecret;
use shared::store::Store;
use template_sync::TemplateSyncApp;

/// The Meta secret is re-read at most this often (a rotated token is used within it).
const SECRET_TTL: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let cfg = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let app = TemplateSyncApp {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&aws),
            &cfg.table_name,
            cfg.inbox_shards,
        ),
        graph: Arc::new(GraphClient::new(GraphConfig::from_app_config(&cfg))?),
        meta_secrets: Arc::new(CachedSecret::new(
            Arc::new(aws_sdk_secretsmanager::Client::new(&aws)),
            Config::require(&cfg.meta_secret_arn, "META_SECRET_ARN")?,
            SECRET_TTL,
        )),
        now_ms: || chrono::Utc::now().timestamp_millis(),
    };
    let app = &app;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let report = app.handle(event.payload).await?;
            Ok::<serde_json::Value, Error>(serde_json::to_value(report)?)
        },
    ))
    .await
}
