use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use std::time::Duration;

use inbound::{InboundProcessor, MediaCopier, handle_batch, system_now_ms};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::activity::{ActivityConfig, ActivityLog, meta_known_secrets};
use shared::archive::S3Archive;
use shared::config::Config;
use shared::crm_events::EventBridgeBus;
use shared::media::MediaBucket;
use shared::meta::graph::{GraphClient, GraphConfig};
use shared::phone::PhoneNormalizer;
use shared::secrets::CachedSecret;
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
    let meta_secrets = Arc::new(CachedSecret::new(
        Arc::new(aws_sdk_secretsmanager::Client::new(&aws)),
        Config::require(&cfg.meta_secret_arn, "META_SECRET_ARN")?,
        Duration::from_secs(300),
    ));
    // Every Graph API call (media lookups and downloads) goes to the activity log, flushed
    // before each batch's answer (a frozen Lambda runs no background task).
    let activity = ActivityLog::start(
        Arc::new(store.clone()),
        ActivityConfig::for_source("inbound"),
        meta_known_secrets(
            Arc::new(aws_sdk_secretsmanager::Client::new(&aws)),
            meta_secrets.clone(),
            cfg.notify_secret_arn.as_deref(),
            Duration::from_secs(300),
        ),
    );
    let processor = InboundProcessor {
        store,
        bus: Arc::new(EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&aws),
            Config::require(&cfg.crm_bus_name, "CRM_BUS_NAME")?,
        )),
        phones: PhoneNormalizer::new(&cfg.default_country)?,
        now_ms: system_now_ms,
        media: Some(MediaCopier {
            bucket: MediaBucket::new(
                aws_sdk_s3::Client::new(&aws),
                Config::require(&cfg.media_bucket, "MEDIA_BUCKET")?,
            ),
            graph: Arc::new(
                GraphClient::new(GraphConfig::from_app_config(&cfg))?
                    .with_observer(Arc::new(activity.clone())),
            ),
            meta_secrets,
        }),
    };
    let archive = S3Archive::new(
        aws_sdk_s3::Client::new(&aws),
        Config::require(&cfg.media_bucket, "MEDIA_BUCKET")?,
    );
    let (processor, archive, activity) = (&processor, &archive, &activity);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response = handle_batch(processor, archive, event.payload).await;
        activity.flush().await;
        Ok::<SqsBatchResponse, Error>(response)
    }))
    .await
}
