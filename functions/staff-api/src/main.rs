#![recursion_limit = "256"]
use std::sync::Arc;

use shared::config::Config;
use shared::crm_events::EventBridgeBus;
use shared::meta::graph::GraphConfig;
use shared::phone::PhoneNormalizer;
use shared::secrets::CachedSecret;
use shared::sending::Outbound;
use shared::store::Store;
use staff_api::inbox::Messaging;
use staff_api::{SECRET_TTL, StaffApp};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let cfg = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    // One Secrets Manager client for the API, Meta, notification and AI secrets.
    let secrets_client = Arc::new(aws_sdk_secretsmanager::Client::new(&aws));
    let app = StaffApp::new(
        Store::new(
            aws_sdk_dynamodb::Client::new(&aws),
            &cfg.table_name,
            cfg.inbox_shards,
        )
        .with_message_retention_days(cfg.message_retention_days),
        PhoneNormalizer::new(&cfg.default_country)?,
        Arc::new(CachedSecret::new(
            secrets_client.clone(),
            Config::require(&cfg.api_secret_arn, "API_SECRET_ARN")?,
            SECRET_TTL,
        )),
        cfg.jwt_issuer.clone(),
        cfg.jwt_audience.clone(),
        || chrono::Utc::now().timestamp_millis(),
    );
    // Activity log of every Graph API call, written before each answer (flush_after below).
    let shared::activity::MetaCalls {
        meta_secrets,
        activity,
        ..
    } = shared::activity::start_meta_calls(
        Arc::new(app.store.clone()),
        "staff-api",
        secrets_client.clone(),
        Config::require(&cfg.meta_secret_arn, "META_SECRET_ARN")?,
        cfg.notify_secret_arn.as_deref(),
        SECRET_TTL,
    );
    let app = app.with_settings(staff_api::settings::SettingsBackend {
        secrets: secrets_client,
        meta_secret_id: Config::require(&cfg.meta_secret_arn, "META_SECRET_ARN")?.to_string(),
        notify_secret_id: cfg.notify_secret_arn.clone(),
        ai_secret_id: cfg.ai_secret_arn.clone(),
    });
    let outbound = Outbound::wired(
        &app.store,
        GraphConfig::from_app_config(&cfg),
        meta_secrets,
        Arc::new(activity.clone()),
    )?;
    let app = app.with_messaging(Messaging::new(
        outbound,
        Arc::new(EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&aws),
            Config::require(&cfg.crm_bus_name, "CRM_BUS_NAME")?,
        )),
    ));
    let app = app.with_media(shared::media::MediaBucket::new(
        aws_sdk_s3::Client::new(&aws),
        Config::require(&cfg.media_bucket, "MEDIA_BUCKET")?,
    ));
    let app = app.with_bot_jobs(Arc::new(shared::queue::SqsSink::new(
        aws_sdk_sqs::Client::new(&aws),
        Config::require(&cfg.bots_queue_url, "BOTS_QUEUE_URL")?,
    )));
    let app = match cfg.campaign_schedule_group {
        Some(_) => app.with_campaign_schedules(Arc::new(
            shared::campaigns::schedules::EventBridgeSchedules::from_config(
                aws_sdk_scheduler::Client::new(&aws),
                &cfg,
            )?,
        )),
        None => app,
    };
    let router = staff_api::activity::flush_after(staff_api::router(Arc::new(app)), activity);
    lambda_http::run(shared::http_edge::service(router)).await
}
