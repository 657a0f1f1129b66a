use std::sync::Arc;

use bot_timers::TimersApp;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::config::Config;
use shared::queue::SqsSink;
use shared::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let cfg = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let app = TimersApp {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&aws),
            &cfg.table_name,
            cfg.inbox_shards,
        ),
        jobs: Arc::new(SqsSink::new(
            aws_sdk_sqs::Client::new(&aws),
            Config::require(&cfg.bots_queue_url, "BOTS_QUEUE_URL")?,
        )),
        now_ms: || chrono::Utc::now().timestamp_millis(),
    };
    let app = &app;
    lambda_runtime::run(service_fn(
        move |_event: LambdaEvent<serde_json::Value>| async move {
            let report = app.tick().await?;
            Ok::<serde_json::Value, Error>(serde_json::to_value(report)?)
        },
    ))
    .await
}
