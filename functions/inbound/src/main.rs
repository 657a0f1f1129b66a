use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use inbound::{InboundProcessor, handle_batch, system_now_ms};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::archive::S3Archive;
use shared::bots::gate::BotsGate;
use shared::config::Config;
use shared::crm_events::EventBridgeBus;
use shared::phone::PhoneNormalizer;
use shared::queue::SqsSink;
use shared::secrets::CachedSecret;
use shared::sqs_batch::Deadline;
use shared::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let cfg = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let processor = InboundProcessor {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&aws),
            &cfg.table_name,
            cfg.inbox_shards,
        )
        .with_message_retention_days(cfg.message_retention_days),
        bus: Arc::new(EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&aws),
            Config::require(&cfg.crm_bus_name, "CRM_BUS_NAME")?,
        )),
        phones: PhoneNormalizer::new(&cfg.default_country)?,
        campaign_labels: Default::default(),
        now_ms: system_now_ms,
        // Media copies run in the media function, never in the conversation's FIFO group.
        media_jobs: Some(Arc::new(SqsSink::new(
            aws_sdk_sqs::Client::new(&aws),
            Config::require(&cfg.media_queue_url, "MEDIA_QUEUE_URL")?,
        ))),
        // Bot answers run in the bots function, never in the conversation's inbound group.
        bot_jobs: Some(Arc::new(SqsSink::new(
            aws_sdk_sqs::Client::new(&aws),
            Config::require(&cfg.bots_queue_url, "BOTS_QUEUE_URL")?,
        ))),
        // AI settings cached as the bots function caches them.
        bots_gate: BotsGate::new(cfg.ai_secret_arn.as_deref().map(|arn| {
            Arc::new(CachedSecret::new(
                Arc::new(aws_sdk_secretsmanager::Client::new(&aws)),
                arn,
                Duration::from_secs(60),
            ))
        })),
    };
    let archive = S3Archive::new(
        aws_sdk_s3::Client::new(&aws),
        Config::require(&cfg.media_bucket, "MEDIA_BUCKET")?,
    );
    let (processor, archive) = (&processor, &archive);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = Deadline::from_epoch_ms(event.context.deadline);
        Ok::<SqsBatchResponse, Error>(
            handle_batch(processor, archive, event.payload, deadline).await,
        )
    }))
    .await
}
