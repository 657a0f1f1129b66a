use std::sync::Arc;
use std::time::Duration;

use shared::archive::S3Archive;
use shared::config::Config;
use shared::queue::SqsSink;
use shared::secrets::CachedSecret;
use webhook::{WebhookApp, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let cfg = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let app = WebhookApp {
        secrets: Arc::new(CachedSecret::new(
            Arc::new(aws_sdk_secretsmanager::Client::new(&aws)),
            Config::require(&cfg.meta_secret_arn, "META_SECRET_ARN")?,
            Duration::from_secs(300),
        )),
        sink: Arc::new(SqsSink::new(
            aws_sdk_sqs::Client::new(&aws),
            Config::require(&cfg.inbound_queue_url, "INBOUND_QUEUE_URL")?,
        )),
        archive: Arc::new(S3Archive::new(
            aws_sdk_s3::Client::new(&aws),
            Config::require(&cfg.media_bucket, "MEDIA_BUCKET")?,
        )),
    };
    lambda_http::run(lambda::service(Arc::new(app))).await
}
