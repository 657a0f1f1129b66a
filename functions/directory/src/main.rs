#![recursion_limit = "256"]
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use directory::DirectoryApp;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::archive::S3Archive;
use shared::config::Config;
use shared::phone::PhoneNormalizer;
use shared::sqs_batch::Deadline;
use shared::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let cfg = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let app = DirectoryApp {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&aws),
            &cfg.table_name,
            cfg.inbox_shards,
        ),
        phones: PhoneNormalizer::new(&cfg.default_country)?,
        now_ms: || chrono::Utc::now().timestamp_millis(),
    };
    let archive = S3Archive::new(
        aws_sdk_s3::Client::new(&aws),
        Config::require(&cfg.media_bucket, "MEDIA_BUCKET")?,
    );
    let (app, archive) = (&app, &archive);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = Deadline::from_epoch_ms(event.context.deadline);
        Ok::<SqsBatchResponse, Error>(app.handle_batch(archive, event.payload, deadline).await)
    }))
    .await
}
