use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use notifications::{NotifyApp, NotifyCredentials};
use shared::activity::{MetaCalls, start_meta_calls};
use shared::archive::S3Archive;
use shared::config::Config;
use shared::crm_events::EventBridgeBus;
use shared::meta::graph::GraphConfig;
use shared::phone::PhoneNormalizer;
use shared::sending::Outbound;
use shared::sqs_batch::Deadline;
use shared::store::Store;

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
    let sm = Arc::new(aws_sdk_secretsmanager::Client::new(&aws));
    // Every Graph API call goes to the activity log, flushed before each batch's answer.
    let MetaCalls {
        meta_secrets,
        notify_secrets,
        activity,
    } = start_meta_calls(
        Arc::new(store.clone()),
        "notifications",
        sm,
        Config::require(&cfg.meta_secret_arn, "META_SECRET_ARN")?,
        cfg.notify_secret_arn.as_deref(),
        Duration::from_secs(300),
    );
    let outbound = Outbound::wired(
        &store,
        GraphConfig::from_app_config(&cfg),
        meta_secrets.clone(),
        Arc::new(activity.clone()),
    )?;
    let app = NotifyApp::new(
        store,
        Arc::new(PhoneNormalizer::new(&cfg.default_country)?),
        outbound,
        NotifyCredentials {
            notify: notify_secrets,
            inbox: meta_secrets,
        },
        Arc::new(EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&aws),
            Config::require(&cfg.crm_bus_name, "CRM_BUS_NAME")?,
        )),
        || chrono::Utc::now().timestamp_millis(),
    );
    let archive = S3Archive::new(
        aws_sdk_s3::Client::new(&aws),
        Config::require(&cfg.media_bucket, "MEDIA_BUCKET")?,
    );
    let (app, archive, activity) = (&app, &archive, &activity);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = Deadline::from_epoch_ms(event.context.deadline);
        let response = app.handle_batch(archive, event.payload, deadline).await;
        activity.flush().await;
        Ok::<SqsBatchResponse, Error>(response)
    }))
    .await
}
