#![recursion_limit = "256"]
use std::sync::Arc;

use shared::config::Config;
use shared::phone::PhoneNormalizer;
use shared::secrets::CachedSecret;
use shared::store::Store;
use staff_api::{SECRET_TTL, StaffApp, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let cfg = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let app = StaffApp::new(
        Store::new(
            aws_sdk_dynamodb::Client::new(&aws),
            &cfg.table_name,
            cfg.inbox_shards,
        ),
        PhoneNormalizer::new(&cfg.default_country)?,
        Arc::new(CachedSecret::new(
            Arc::new(aws_sdk_secretsmanager::Client::new(&aws)),
            Config::require(&cfg.api_secret_arn, "API_SECRET_ARN")?,
            SECRET_TTL,
        )),
        cfg.jwt_issuer.clone(),
        cfg.jwt_audience.clone(),
        || chrono::Utc::now().timestamp_millis(),
    );
    lambda_http::run(lambda::service(Arc::new(app))).await
}
