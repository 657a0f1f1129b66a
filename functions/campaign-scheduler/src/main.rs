use std::sync::Arc;

use campaign_scheduler::{PAGE_SIZE, SchedulerApp};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::campaigns::schedules::{EventBridgeSchedules, RunInput};
use shared::config::Config;
use shared::crm_events::EventBridgeBus;
use shared::phone::PhoneNormalizer;
use shared::queue::SqsSink;
use shared::sqs_batch::Deadline;
use shared::store::Store;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let cfg = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let app = SchedulerApp {
        store: Store::new(
            aws_sdk_dynamodb::Client::new(&aws),
            &cfg.table_name,
            cfg.inbox_shards,
        ),
        sends: Arc::new(SqsSink::new(
            aws_sdk_sqs::Client::new(&aws),
            Config::require(&cfg.campaign_send_queue_url, "CAMPAIGN_SEND_QUEUE_URL")?,
        )),
        phones: Arc::new(PhoneNormalizer::new(&cfg.default_country)?),
        schedules: Arc::new(EventBridgeSchedules::from_config(
            aws_sdk_scheduler::Client::new(&aws),
            &cfg,
        )?),
        bus: Arc::new(EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&aws),
            Config::require(&cfg.crm_bus_name, "CRM_BUS_NAME")?,
        )),
        now_ms: || chrono::Utc::now().timestamp_millis(),
        page_size: PAGE_SIZE,
    };
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<RunInput>| async move {
        let deadline = Deadline::from_epoch_ms(event.context.deadline);
        let report = app.handle(event.payload, deadline).await?;
        Ok::<serde_json::Value, Error>(serde_json::to_value(report)?)
    }))
    .await
}
