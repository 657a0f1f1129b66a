#![recursion_limit = "256"]
use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::activity::{MetaCalls, start_meta_calls};
use shared::config::Config;
use shared::meta::graph::{GraphClient, GraphConfig};
use shared::store::Store;
use template_sync::TemplateSyncApp;

/// The Meta secret is re-read at most this often (a rotated token is used within it).
const SECRET_TTL: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let cfg = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&aws),
        &cfg.table_name,
        cfg.inbox_shards,
    );
    // Every Graph API call goes to the activity log, flushed before the invocation returns.
    let MetaCalls {
        meta_secrets,
        notify_secrets,
        activity,
    } = start_meta_calls(
        Arc::new(store.clone()),
        "template-sync",
        Arc::new(aws_sdk_secretsmanager::Client::new(&aws)),
        Config::require(&cfg.meta_secret_arn, "META_SECRET_ARN")?,
        cfg.notify_secret_arn.as_deref(),
        SECRET_TTL,
    );
    let app = TemplateSyncApp {
        store,
        graph: Arc::new(
            GraphClient::new(GraphConfig::from_app_config(&cfg))?
                .with_observer(Arc::new(activity.clone())),
        ),
        meta_secrets,
        notify_secrets,
        now_ms: || chrono::Utc::now().timestamp_millis(),
    };
    let (app, activity) = (&app, &activity);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let report = app.handle(event.payload).await;
            activity.flush().await;
            Ok::<serde_json::Value, Error>(serde_json::to_value(report?)?)
        },
    ))
    .await
}
