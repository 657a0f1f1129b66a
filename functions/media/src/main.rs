use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use media::{MAX_ATTEMPTS, MediaApp};
use shared::activity::{MetaCalls, start_meta_calls};
use shared::archive::S3Archive;
use shared::config::Config;
use shared::media::MediaBucket;
use shared::meta::graph::{GraphClient, GraphConfig};
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
    // Every Graph API call (media lookups and downloads) goes to the activity log, flushed
    // before each batch's answer (a frozen Lambda runs no background task).
    let MetaCalls {
        meta_secrets,
        activity,
        ..
    } = start_meta_calls(
        Arc::new(store.clone()),
        "media",
        sm,
        Config::require(&cfg.meta_secret_arn, "META_SECRET_ARN")?,
        cfg.notify_secret_arn.as_deref(),
        Duration::from_secs(300),
    );
    let bucket = Config::require(&cfg.media_bucket, "MEDIA_BUCKET")?;
    let app = MediaApp {
        store,
        bucket: MediaBucket::new(aws_sdk_s3::Client::new(&aws), bucket),
        graph: Arc::new(
            GraphClient::new(GraphConfig::from_app_config(&cfg))?
                .with_observer(Arc::new(activity.clone())),
        ),
        meta_secrets,
        now_ms: || chrono::Utc::now().timestamp_millis(),
        max_attempts: MAX_ATTEMPTS,
    };
    let archive = S3Archive::new(aws_sdk_s3::Client::new(&aws), bucket);
    let (app, archive, activity) = (&app, &archive, &activity);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = Deadline::from_epoch_ms(event.context.deadline);
        let response = app.handle_batch(archive, event.payload, deadline).await;
        activity.flush().await;
        Ok::<SqsBatchResponse, Error>(response)
    }))
    .await
}
