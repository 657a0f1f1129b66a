//! Local runner: the whole system on one machine, wired as in `template.yaml`.
//!
//! - provisions in moto server exactly the resources of `template.yaml` (through the derived
//!   spec `infra/local-resources.json`), each name prefixed so several stacks can coexist;
//! - seeds development secrets and a development signing key for staff tokens;
//! - serves the HTTP API routes (webhook + staff API) on 127.0.0.1 with the same handler code;
//! - drives each SQS event source into its handler as Lambda would;
//! - ticks each EventBridge Scheduler schedule (moto never fires them), see [`schedule`].
//!
//! The integration tests start one [`Stack`] each.
pub mod driver;
pub mod emulator;
pub mod provision;
pub mod run_schedules;
pub mod schedule;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use inbound::{InboundProcessor, Processor, handle_batch};
use serde::{Deserialize, Serialize};
use shared::archive::S3Archive;
use shared::auth::{DevKeyPair, StaffClaims};
use shared::config::Config;
use shared::crm_events::EventBridgeBus;
use shared::media::MediaBucket;
use shared::meta::graph::{GraphClient, GraphConfig};
use shared::phone::PhoneNormalizer;
use shared::queue::SqsSink;
use shared::secrets::{CachedSecret, SecretSource};
use shared::sending::Outbound;
use shared::store::Store;

use crate::driver::SqsDriver;
use crate::provision::Resolved;
use crate::spec::Spec;

pub const DEV_APP_SECRET: &str = "dev-app-secret";
pub const DEV_VERIFY_TOKEN: &str = "dev-verify-token";
pub const DEV_ACCESS_TOKEN: &str = "dev-access-token-not-a-real-meta-token";
pub const DEV_KID: &str = "dev-key-1";
/// Graph API base URL of a local stack unless overridden: a closed port on loopback.
pub const LOCAL_GRAPH_API: &str = "http://127.0.0.1:9";

/// Wraps the inbound processor (tests use it to inject faults).
pub type ProcessorWrapper = Arc<dyn Fn(Arc<dyn Processor>) -> Arc<dyn Processor> + Send + Sync>;
/// Wraps the inbound function's CRM bus (tests use it to inject faults).
pub type BusWrapper = Arc<
    dyn Fn(Arc<dyn shared::crm_events::EventBus>) -> Arc<dyn shared::crm_events::EventBus>
        + Send
        + Sync,
>;

#[derive(Clone)]
pub struct StackOptions {
    /// Resource name prefix (`dev` for `make dev`; unique per test).
    pub prefix: String,
    pub http_addr: SocketAddr,
    /// How soon a failed queue record comes back (Lambda: the visibility timeout).
    pub retry_after: Duration,
    /// Secrets are re-read this often (short locally, so rotations show at once).
    pub secret_ttl: Duration,
    pub inbound_wrapper: Option<ProcessorWrapper>,
    pub inbound_bus_wrapper: Option<BusWrapper>,
    /// Overrides of function environment values (e.g. `DEFAULT_COUNTRY`).
    pub env_overrides: HashMap<String, String>,
    /// Tests only: `127.0.0.1:port` of a fake Meta allowed to serve media over http.
    pub media_test_host: Option<String>,
    /// Invocations running at once per queue (Lambda's concurrent invocations of an event
    /// source; a FIFO queue's run hold different message groups).
    pub concurrency_per_queue: usize,
    /// Attempts before the media function gives a copy up as `failed`.
    pub media_max_attempts: u32,
    /// Tests only: a shorter function timeout than `template.yaml`'s for every queue consumer.
    pub timeout_override: Option<Duration>,
    /// Tests only: another overall budget for a staff send than `staff_api::SEND_BUDGET`.
    pub send_budget: Option<Duration>,
    /// Tests only: another largest inline CSV than `staff_api::CSV_INLINE_BYTES`.
    pub csv_inline_bytes: Option<usize>,
    /// Benchmarks only: queues (logical ids) whose consumers do not run, so what is queued
    /// stays there.
    pub idle_queues: Vec<String>,
    /// Whether the template's schedules tick and due run-time schedules fire by themselves
    /// (request-counting tests turn this off so nothing runs but the flow they measure).
    pub schedule_ticks: bool,
}

impl StackOptions {
    /// Meta's Graph API is `graph`, a local fake (its base URL and pinned version), which may
    /// also serve media over http.
    pub fn with_fake_graph(mut self, graph: &fakes::graph::FakeGraph) -> Self {
        self.env_overrides
            .insert("GRAPH_API_BASE_URL".into(), graph.base_url.clone());
        self.env_overrides
            .insert("GRAPH_API_VERSION".into(), fakes::graph::VERSION.into());
        self.media_test_host = Some(graph.base_url.trim_start_matches("http://").to_string());
        self
    }

    /// No queue consumer runs: what the functions queue stays there (for invocations under
    /// the emulator, which act as the consumers).
    pub fn with_idle_queues(mut self) -> Self {
        self.idle_queues = Spec::load()
            .queues
            .iter()
            .map(|q| q.logical_id.clone())
            .collect();
        self
    }

    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            retry_after: Duration::from_secs(1),
            secret_ttl: Duration::from_secs(2),
            inbound_wrapper: None,
            inbound_bus_wrapper: None,
            // Locally nothing reaches Meta unless asked to: a closed loopback port (set
            // GRAPH_API_BASE_URL here, e.g. to a fake Graph API, to change it).
            env_overrides: HashMap::from([(
                "GRAPH_API_BASE_URL".to_string(),
                LOCAL_GRAPH_API.to_string(),
            )]),
            media_test_host: None,
            concurrency_per_queue: 4,
            media_max_attempts: media::MAX_ATTEMPTS,
            timeout_override: None,
            send_budget: None,
            csv_inline_bytes: None,
            idle_queues: Vec::new(),
            schedule_ticks: true,
        }
    }
}

/// Everything a developer (or a test) needs to talk to the running stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StackInfo {
    pub http_base: String,
    pub webhook_url: String,
    pub api_base: String,
    pub aws_endpoint: String,
    pub resources: HashMap<String, Resolved>,
    pub app_secret: String,
    pub verify_token: String,
    pub jwt_kid: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwt_private_pem: String,
    /// Every function of `template.yaml` with the environment it runs with in this stack.
    #[serde(default)]
    pub functions: Vec<FunctionInfo>,
}

/// A function of the stack as Lambda would configure it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionInfo {
    pub logical_id: String,
    /// The cargo binary (its `bootstrap`).
    pub binary: String,
    pub name: String,
    pub memory_size: u32,
    pub timeout: u64,
    /// `Environment.Variables` of `template.yaml`, resolved against this stack.
    pub environment: BTreeMap<String, String>,
}

impl StackInfo {
    /// A function by binary (`webhook`) or logical id (`WebhookFunction`).
    pub fn function(&self, name: &str) -> Option<&FunctionInfo> {
        self.functions
            .iter()
            .find(|f| f.binary == name || f.logical_id == name)
    }

    /// The whole process environment of `f` under the Runtime Interface Emulator: Lambda's own
    /// variables, the template's, and where AWS is (this stack's moto, with local credentials).
    pub fn lambda_environment(&self, f: &FunctionInfo) -> BTreeMap<String, String> {
        let mut env = emulator::lambda_env(&f.name, f.memory_size, f.timeout, provision::REGION);
        env.extend(f.environment.clone());
        env.insert("AWS_ENDPOINT_URL".into(), self.aws_endpoint.clone());
        env.insert("AWS_ACCESS_KEY_ID".into(), "local".into());
        env.insert("AWS_SECRET_ACCESS_KEY".into(), "local".into());
        env
    }

    /// SAM CLI's `--env-vars` file for this stack: per logical id, the variables the template
    /// declares, with loopback addresses as a container reaches the host (`host`, e.g.
    /// `host.docker.internal`).
    pub fn sam_env_vars(&self, host: &str) -> serde_json::Value {
        let container = |v: &str| v.replace("127.0.0.1", host).replace("localhost", host);
        let mut out = serde_json::Map::new();
        for f in &self.functions {
            let mut vars = serde_json::Map::new();
            for (k, v) in &f.environment {
                vars.insert(k.clone(), container(v).into());
            }
            vars.insert(
                "AWS_ENDPOINT_URL".into(),
                container(&self.aws_endpoint).into(),
            );
            out.insert(f.logical_id.clone(), vars.into());
        }
        out.into()
    }

    pub fn resource(&self, logical_id: &str) -> &Resolved {
        self.resources
            .get(logical_id)
            .unwrap_or_else(|| panic!("{logical_id} is not a resource of template.yaml"))
    }

    /// A staff token signed with the development key.
    pub fn mint_token(&self, sub: &str, admin: bool, perms: &[&str]) -> String {
        let claims = StaffClaims::new(
            sub,
            admin,
            perms,
            &self.jwt_issuer,
            &self.jwt_audience,
            3600,
        );
        shared::auth::sign_ed25519(&self.jwt_kid, &self.jwt_private_pem, &claims)
            .expect("dev token signs")
    }
}

pub struct Stack {
    pub info: StackInfo,
    pub aws: SdkConfig,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    schedules: schedule::Schedules,
    run_schedules: Arc<run_schedules::RunSchedules>,
    /// Functions invoked directly (by run-time schedules), by logical id.
    invokable: HashMap<String, (run_schedules::InvokeHandler, Duration)>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("AWS_ENDPOINT_URL is not set: start moto server first (make dev / make test do)")]
    NoEndpoint,
    #[error(transparent)]
    Provision(#[from] provision::ProvisionError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("http server: {0}")]
    Http(String),
    #[error("scheduled run failed: {0}")]
    Schedule(String),
}

pub async fn aws_config() -> Result<(SdkConfig, String), StackError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").map_err(|_| StackError::NoEndpoint)?;
    let aws = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(provision::REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "local-runner",
        ))
        .load()
        .await;
    Ok((aws, endpoint))
}

/// The Graph client's configuration for a function (tests may allow a fake Meta on loopback
/// to serve media over http; nothing else is ever allowed).
fn graph_config(cfg: &Config, media_test_host: &Option<String>) -> GraphConfig {
    let mut g = GraphConfig::from_app_config(cfg);
    g.allow_insecure_test_host = media_test_host
        .clone()
        .filter(|h| h.starts_with("127.0.0.1:"));
    g
}

fn cfg_err(e: impl std::fmt::Display) -> StackError {
    StackError::Config(e.to_string())
}

impl Stack {
    pub async fn start(opts: StackOptions) -> Result<Self, StackError> {
        let (aws, endpoint) = aws_config().await?;
        let spec = Spec::load();
        let key: DevKeyPair = shared::auth::generate_ed25519(DEV_KID).map_err(cfg_err)?;
        let cursor_key = hex::encode(rand::random::<[u8; 32]>());
        let secrets = HashMap::from([
            (
                "MetaSecret".to_string(),
                serde_json::json!({
                    "access_token": DEV_ACCESS_TOKEN,
                    "app_secret": DEV_APP_SECRET,
                    "verify_token": DEV_VERIFY_TOKEN,
                    "waba_id": "102290129340398",
                    "app_id": "dev-app",
                    "business_id": "dev-business",
                }),
            ),
            (
                "ApiSecret".to_string(),
                serde_json::json!({"cursor_key": cursor_key, "jwt_keys": [key.public_config()]}),
            ),
        ]);
        let resources = provision::provision(&aws, &spec, &opts.prefix, &secrets).await?;
        let env_of = |binary: &str| -> Result<HashMap<String, String>, StackError> {
            let mut env = provision::function_env(&spec, binary, &resources, &opts.prefix)?;
            env.extend(opts.env_overrides.clone());
            Ok(env)
        };
        let now: fn() -> i64 = || chrono::Utc::now().timestamp_millis();
        let sm: Arc<dyn SecretSource> = Arc::new(aws_sdk_secretsmanager::Client::new(&aws));
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let s3 = aws_sdk_s3::Client::new(&aws);
        let ddb = aws_sdk_dynamodb::Client::new(&aws);
        let mut tasks = Vec::new();

        // --- webhook (HTTP) ---
        let wcfg = Config::from_map(&env_of("webhook")?).map_err(cfg_err)?;
        let webhook_app = webhook::WebhookApp {
            secrets: Arc::new(CachedSecret::new(
                sm.clone(),
                Config::require(&wcfg.meta_secret_arn, "META_SECRET_ARN").map_err(cfg_err)?,
                opts.secret_ttl,
            )),
            sink: Arc::new(SqsSink::new(
                sqs.clone(),
                Config::require(&wcfg.inbound_queue_url, "INBOUND_QUEUE_URL").map_err(cfg_err)?,
            )),
            archive: Arc::new(S3Archive::new(
                s3.clone(),
                Config::require(&wcfg.media_bucket, "MEDIA_BUCKET").map_err(cfg_err)?,
            )),
        };

        // --- staff API (HTTP) ---
        let scfg = Config::from_map(&env_of("staff-api")?).map_err(cfg_err)?;
        let shared::activity::MetaCalls {
            meta_secrets: staff_meta_secrets,
            activity: staff_activity,
            ..
        } = shared::activity::start_meta_calls(
            Arc::new(Store::new(ddb.clone(), &scfg.table_name, scfg.inbox_shards)),
            "staff-api",
            sm.clone(),
            Config::require(&scfg.meta_secret_arn, "META_SECRET_ARN").map_err(cfg_err)?,
            scfg.notify_secret_arn.as_deref(),
            opts.secret_ttl,
        );
        let staff_outbound = Outbound::wired(
            &Store::new(ddb.clone(), &scfg.table_name, scfg.inbox_shards),
            graph_config(&scfg, &opts.media_test_host),
            staff_meta_secrets.clone(),
            Arc::new(staff_activity.clone()),
        )
        .map_err(cfg_err)?;
        let staff_app = staff_api::StaffApp::new(
            Store::new(ddb.clone(), &scfg.table_name, scfg.inbox_shards)
                .with_message_retention_days(scfg.message_retention_days),
            PhoneNormalizer::new(&scfg.default_country).map_err(cfg_err)?,
            Arc::new(CachedSecret::new(
                sm.clone(),
                Config::require(&scfg.api_secret_arn, "API_SECRET_ARN").map_err(cfg_err)?,
                opts.secret_ttl,
            )),
            scfg.jwt_issuer.clone(),
            scfg.jwt_audience.clone(),
            now,
        )
        .with_messaging(staff_api::inbox::Messaging::new(
            staff_outbound,
            Arc::new(EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(&aws),
                Config::require(&scfg.crm_bus_name, "CRM_BUS_NAME").map_err(cfg_err)?,
            )),
        ));
        let staff_app = match opts.send_budget {
            Some(b) => staff_app.with_send_budget(b),
            None => staff_app,
        };
        let staff_app = match opts.csv_inline_bytes {
            Some(b) => staff_app.with_csv_inline_bytes(b),
            None => staff_app,
        };
        let staff_app = staff_app.with_bot_jobs(Arc::new(SqsSink::new(
            sqs.clone(),
            Config::require(&scfg.bots_queue_url, "BOTS_QUEUE_URL").map_err(cfg_err)?,
        )));
        let scheduler_client = aws_sdk_scheduler::Client::new(&aws);
        let staff_app = match scfg.campaign_schedule_group {
            Some(_) => staff_app.with_campaign_schedules(Arc::new(
                shared::campaigns::schedules::EventBridgeSchedules::from_config(
                    scheduler_client.clone(),
                    &scfg,
                )
                .map_err(cfg_err)?,
            )),
            None => staff_app,
        };
        let staff_app = staff_app.with_media(MediaBucket::new(
            s3.clone(),
            Config::require(&scfg.media_bucket, "MEDIA_BUCKET").map_err(cfg_err)?,
        ));
        let staff_app = staff_app.with_settings(staff_api::settings::SettingsBackend {
            secrets: Arc::new(aws_sdk_secretsmanager::Client::new(&aws)),
            meta_secret_id: Config::require(&scfg.meta_secret_arn, "META_SECRET_ARN")
                .map_err(cfg_err)?
                .to_string(),
            notify_secret_id: scfg.notify_secret_arn.clone(),
            ai_secret_id: scfg.ai_secret_arn.clone(),
        });
        // As on Lambda: what the Graph calls logged is written before the answer.
        let staff_router = staff_api::activity::flush_after(
            staff_api::router(Arc::new(staff_app)),
            staff_activity,
        );
        let router = webhook::router(Arc::new(webhook_app)).merge(staff_router);
        let listener = tokio::net::TcpListener::bind(opts.http_addr)
            .await
            .map_err(|e| StackError::Http(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StackError::Http(e.to_string()))?;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "local HTTP server stopped");
            }
        }));

        // --- inbound (SQS FIFO) ---
        let icfg = Config::from_map(&env_of("inbound")?).map_err(cfg_err)?;
        let mut inbound_bus: Arc<dyn shared::crm_events::EventBus> = Arc::new(EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(&aws),
            Config::require(&icfg.crm_bus_name, "CRM_BUS_NAME").map_err(cfg_err)?,
        ));
        if let Some(w) = &opts.inbound_bus_wrapper {
            inbound_bus = w(inbound_bus);
        }
        let mut processor: Arc<dyn Processor> = Arc::new(InboundProcessor {
            store: Store::new(ddb.clone(), &icfg.table_name, icfg.inbox_shards)
                .with_message_retention_days(icfg.message_retention_days),
            bus: inbound_bus,
            phones: PhoneNormalizer::new(&icfg.default_country).map_err(cfg_err)?,
            campaign_labels: Default::default(),
            now_ms: now,
            media_jobs: Some(Arc::new(SqsSink::new(
                sqs.clone(),
                Config::require(&icfg.media_queue_url, "MEDIA_QUEUE_URL").map_err(cfg_err)?,
            ))),
            bot_jobs: Some(Arc::new(SqsSink::new(
                sqs.clone(),
                Config::require(&icfg.bots_queue_url, "BOTS_QUEUE_URL").map_err(cfg_err)?,
            ))),
            bots_gate: shared::bots::gate::BotsGate::new(
                icfg.ai_secret_arn
                    .as_deref()
                    .map(|arn| Arc::new(CachedSecret::new(sm.clone(), arn, opts.secret_ttl))),
            ),
        });
        if let Some(w) = &opts.inbound_wrapper {
            processor = w(processor);
        }
        let inbound_archive = Arc::new(S3Archive::new(
            s3.clone(),
            Config::require(&icfg.media_bucket, "MEDIA_BUCKET").map_err(cfg_err)?,
        ));
        let inbound_handler: driver::BatchHandler = Arc::new(move |event, deadline| {
            let (p, a) = (processor.clone(), inbound_archive.clone());
            Box::pin(async move { handle_batch(p.as_ref(), a.as_ref(), event, deadline).await })
        });

        // --- directory (EventBridge rule → SQS) ---
        let dcfg = Config::from_map(&env_of("directory")?).map_err(cfg_err)?;
        let directory_app = Arc::new(directory::DirectoryApp {
            store: Store::new(ddb.clone(), &dcfg.table_name, dcfg.inbox_shards),
            phones: PhoneNormalizer::new(&dcfg.default_country).map_err(cfg_err)?,
            now_ms: now,
        });
        let directory_archive = Arc::new(S3Archive::new(
            s3.clone(),
            Config::require(&dcfg.media_bucket, "MEDIA_BUCKET").map_err(cfg_err)?,
        ));
        let directory_handler: driver::BatchHandler = Arc::new(move |event, deadline| {
            let (d, a) = (directory_app.clone(), directory_archive.clone());
            Box::pin(async move { d.handle_batch(a.as_ref(), event, deadline).await })
        });

        // --- media (SQS, copies inbound media from Meta to S3) ---
        let mcfg = Config::from_map(&env_of("media")?).map_err(cfg_err)?;
        let shared::activity::MetaCalls {
            meta_secrets: media_meta_secrets,
            activity: media_activity,
            ..
        } = shared::activity::start_meta_calls(
            Arc::new(Store::new(ddb.clone(), &mcfg.table_name, mcfg.inbox_shards)),
            "media",
            sm.clone(),
            Config::require(&mcfg.meta_secret_arn, "META_SECRET_ARN").map_err(cfg_err)?,
            mcfg.notify_secret_arn.as_deref(),
            opts.secret_ttl,
        );
        let media_bucket = Config::require(&mcfg.media_bucket, "MEDIA_BUCKET").map_err(cfg_err)?;
        let media_app = Arc::new(media::MediaApp {
            store: Store::new(ddb.clone(), &mcfg.table_name, mcfg.inbox_shards),
            bucket: MediaBucket::new(s3.clone(), media_bucket),
            graph: Arc::new(
                GraphClient::new(graph_config(&mcfg, &opts.media_test_host))
                    .map_err(cfg_err)?
                    .with_observer(Arc::new(media_activity.clone())),
            ),
            meta_secrets: media_meta_secrets,
            now_ms: now,
            max_attempts: opts.media_max_attempts,
        });
        let media_archive = Arc::new(S3Archive::new(s3.clone(), media_bucket));
        let media_handler: driver::BatchHandler = Arc::new(move |event, deadline| {
            let (m, a, log) = (
                media_app.clone(),
                media_archive.clone(),
                media_activity.clone(),
            );
            Box::pin(async move {
                let resp = m.handle_batch(a.as_ref(), event, deadline).await;
                log.flush().await;
                resp
            })
        });

        // --- bots (SQS FIFO, answers customer messages) ---
        let bcfg = Config::from_map(&env_of("bots")?).map_err(cfg_err)?;
        let shared::activity::MetaCalls {
            meta_secrets: bots_meta_secrets,
            activity: bots_activity,
            ..
        } = shared::activity::start_meta_calls(
            Arc::new(Store::new(ddb.clone(), &bcfg.table_name, bcfg.inbox_shards)),
            "bots",
            sm.clone(),
            Config::require(&bcfg.meta_secret_arn, "META_SECRET_ARN").map_err(cfg_err)?,
            bcfg.notify_secret_arn.as_deref(),
            opts.secret_ttl,
        );
        let bots_store = Store::new(ddb.clone(), &bcfg.table_name, bcfg.inbox_shards);
        let bots_outbound = Outbound::wired(
            &bots_store,
            graph_config(&bcfg, &opts.media_test_host),
            bots_meta_secrets,
            Arc::new(bots_activity.clone()),
        )
        .map_err(cfg_err)?;
        let bots_app = bots::BotsApp::new(
            bots_store,
            bots_outbound,
            Arc::new(EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(&aws),
                Config::require(&bcfg.crm_bus_name, "CRM_BUS_NAME").map_err(cfg_err)?,
            )),
            now,
        );
        let bots_app = Arc::new(match bcfg.ai_secret_arn.as_deref() {
            Some(arn) => bots_app.with_ai(bots::Ai {
                client: shared::ai::AiClient::new(shared::ai::AiConfig::from_app_config(&bcfg))
                    .map_err(cfg_err)?,
                settings: CachedSecret::new(sm.clone(), arn, opts.secret_ttl),
            }),
            None => bots_app,
        });
        let bots_archive = Arc::new(S3Archive::new(
            s3.clone(),
            Config::require(&bcfg.media_bucket, "MEDIA_BUCKET").map_err(cfg_err)?,
        ));
        let bots_handler: driver::BatchHandler = Arc::new(move |event, deadline| {
            let (b, a, log) = (
                bots_app.clone(),
                bots_archive.clone(),
                bots_activity.clone(),
            );
            Box::pin(async move {
                let resp = b.handle_batch(a.as_ref(), event, deadline).await;
                log.flush().await;
                resp
            })
        });

        // --- campaign sender (SQS, standard queue) ---
        let ccfg = Config::from_map(&env_of("campaign-sender")?).map_err(cfg_err)?;
        let shared::activity::MetaCalls {
            meta_secrets: sender_meta_secrets,
            activity: sender_activity,
            ..
        } = shared::activity::start_meta_calls(
            Arc::new(Store::new(ddb.clone(), &ccfg.table_name, ccfg.inbox_shards)),
            "campaigns",
            sm.clone(),
            Config::require(&ccfg.meta_secret_arn, "META_SECRET_ARN").map_err(cfg_err)?,
            ccfg.notify_secret_arn.as_deref(),
            opts.secret_ttl,
        );
        let sender_store = Store::new(ddb.clone(), &ccfg.table_name, ccfg.inbox_shards);
        let sender_outbound = Outbound::wired(
            &sender_store,
            graph_config(&ccfg, &opts.media_test_host),
            sender_meta_secrets,
            Arc::new(sender_activity.clone()),
        )
        .map_err(cfg_err)?;
        let sender_app = Arc::new(campaign_sender::SenderApp::new(
            sender_store,
            sender_outbound,
            Arc::new(EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(&aws),
                Config::require(&ccfg.crm_bus_name, "CRM_BUS_NAME").map_err(cfg_err)?,
            )),
            now,
        ));
        let sender_archive = Arc::new(S3Archive::new(
            s3.clone(),
            Config::require(&ccfg.media_bucket, "MEDIA_BUCKET").map_err(cfg_err)?,
        ));
        let sender_handler: driver::BatchHandler = Arc::new(move |event, deadline| {
            let (app, a, log) = (
                sender_app.clone(),
                sender_archive.clone(),
                sender_activity.clone(),
            );
            Box::pin(async move {
                let resp = app.handle_batch(a.as_ref(), event, deadline).await;
                log.flush().await;
                resp
            })
        });

        // --- notifications (SQS, standard queue, fed by the CRM bus rule) ---
        let ncfg = Config::from_map(&env_of("notifications")?).map_err(cfg_err)?;
        let shared::activity::MetaCalls {
            meta_secrets: notify_meta_secrets,
            notify_secrets,
            activity: notify_activity,
        } = shared::activity::start_meta_calls(
            Arc::new(Store::new(ddb.clone(), &ncfg.table_name, ncfg.inbox_shards)),
            "notifications",
            sm.clone(),
            Config::require(&ncfg.meta_secret_arn, "META_SECRET_ARN").map_err(cfg_err)?,
            ncfg.notify_secret_arn.as_deref(),
            opts.secret_ttl,
        );
        let notify_store = Store::new(ddb.clone(), &ncfg.table_name, ncfg.inbox_shards);
        let notify_outbound = Outbound::wired(
            &notify_store,
            graph_config(&ncfg, &opts.media_test_host),
            notify_meta_secrets.clone(),
            Arc::new(notify_activity.clone()),
        )
        .map_err(cfg_err)?;
        let notify_app = Arc::new(notifications::NotifyApp::new(
            notify_store,
            Arc::new(PhoneNormalizer::new(&ncfg.default_country).map_err(cfg_err)?),
            notify_outbound,
            notifications::NotifyCredentials {
                notify: notify_secrets,
                inbox: notify_meta_secrets,
            },
            Arc::new(EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(&aws),
                Config::require(&ncfg.crm_bus_name, "CRM_BUS_NAME").map_err(cfg_err)?,
            )),
            now,
        ));
        let notify_archive = Arc::new(S3Archive::new(
            s3.clone(),
            Config::require(&ncfg.media_bucket, "MEDIA_BUCKET").map_err(cfg_err)?,
        ));
        let notify_handler: driver::BatchHandler = Arc::new(move |event, deadline| {
            let (app, a, log) = (
                notify_app.clone(),
                notify_archive.clone(),
                notify_activity.clone(),
            );
            Box::pin(async move {
                let resp = app.handle_batch(a.as_ref(), event, deadline).await;
                log.flush().await;
                resp
            })
        });

        // --- campaign scheduler (invoked by run-time schedules) ---
        let pcfg = Config::from_map(&env_of("campaign-scheduler")?).map_err(cfg_err)?;
        let scheduler_app = Arc::new(campaign_scheduler::SchedulerApp {
            store: Store::new(ddb.clone(), &pcfg.table_name, pcfg.inbox_shards),
            sends: Arc::new(SqsSink::new(
                sqs.clone(),
                Config::require(&pcfg.campaign_send_queue_url, "CAMPAIGN_SEND_QUEUE_URL")
                    .map_err(cfg_err)?,
            )),
            phones: Arc::new(PhoneNormalizer::new(&pcfg.default_country).map_err(cfg_err)?),
            schedules: Arc::new(
                shared::campaigns::schedules::EventBridgeSchedules::from_config(
                    scheduler_client.clone(),
                    &pcfg,
                )
                .map_err(cfg_err)?,
            ),
            bus: Arc::new(EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(&aws),
                Config::require(&pcfg.crm_bus_name, "CRM_BUS_NAME").map_err(cfg_err)?,
            )),
            now_ms: now,
            page_size: campaign_scheduler::PAGE_SIZE,
        });
        let scheduler_handler: run_schedules::InvokeHandler = Arc::new(move |input, deadline| {
            let app = scheduler_app.clone();
            Box::pin(async move {
                let input: shared::campaigns::schedules::RunInput =
                    serde_json::from_value(input).map_err(|e| e.to_string())?;
                let report = app
                    .handle(input, deadline)
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::to_value(report).map_err(|e| e.to_string())
            })
        });
        let mut invokable: HashMap<String, (run_schedules::InvokeHandler, Duration)> =
            HashMap::new();
        let mut by_logical_id: HashMap<String, (run_schedules::InvokeHandler, Duration)> =
            HashMap::new();
        for f in &spec.functions {
            if f.binary == "campaign-scheduler" {
                let arn = resources
                    .get(&f.logical_id)
                    .map(|r| r.arn.clone())
                    .unwrap_or_default();
                let timeout = opts
                    .timeout_override
                    .unwrap_or(Duration::from_secs(f.timeout));
                invokable.insert(arn, (scheduler_handler.clone(), timeout));
                by_logical_id.insert(f.logical_id.clone(), (scheduler_handler.clone(), timeout));
            }
        }
        let run_schedules = Arc::new(run_schedules::RunSchedules::new(
            scheduler_client.clone(),
            spec.schedule_groups
                .iter()
                .filter_map(|g| resources.get(&g.logical_id).map(|r| r.name.clone()))
                .collect(),
            invokable,
        ));
        if opts.schedule_ticks {
            tasks.push(run_schedules.clone().spawn());
        }

        // Every SQS event source of template.yaml gets a driver.
        for f in &spec.functions {
            for src in &f.sqs_sources {
                if opts.idle_queues.contains(&src.queue) {
                    continue;
                }
                let handler = match f.binary.as_str() {
                    "inbound" => inbound_handler.clone(),
                    "directory" => directory_handler.clone(),
                    "media" => media_handler.clone(),
                    "bots" => bots_handler.clone(),
                    "campaign-sender" => sender_handler.clone(),
                    "notifications" => notify_handler.clone(),
                    other => {
                        return Err(StackError::Config(format!(
                            "no local handler for SQS function {other}"
                        )));
                    }
                };
                let q = resources
                    .get(&src.queue)
                    .ok_or_else(|| cfg_err(format!("queue {} unknown", src.queue)))?;
                let d = SqsDriver {
                    client: sqs.clone(),
                    queue_url: q.url.clone().unwrap_or_default(),
                    queue_arn: q.arn.clone(),
                    batch_size: src.batch_size,
                    report_batch_item_failures: src.report_batch_item_failures,
                    retry_after: opts.retry_after,
                    timeout: opts
                        .timeout_override
                        .unwrap_or(Duration::from_secs(f.timeout)),
                    concurrency: opts.concurrency_per_queue,
                    handler,
                };
                tasks.extend(d.spawn());
            }
        }

        // Every schedule of template.yaml is ticked here (moto never fires them).
        let mut scheduled = Vec::new();
        for sch in &spec.schedules {
            let f = spec.function(&sch.function).ok_or_else(|| {
                cfg_err(format!(
                    "schedule {} invokes an unknown function",
                    sch.logical_id
                ))
            })?;
            let handler: schedule::ScheduleHandler = match f.binary.as_str() {
                "template-sync" => {
                    let tcfg = Config::from_map(&env_of("template-sync")?).map_err(cfg_err)?;
                    let app = Arc::new(template_sync::TemplateSyncApp {
                        store: Store::new(ddb.clone(), &tcfg.table_name, tcfg.inbox_shards),
                        graph: Arc::new(
                            GraphClient::new(GraphConfig::from_app_config(&tcfg))
                                .map_err(cfg_err)?,
                        ),
                        meta_secrets: Arc::new(CachedSecret::new(
                            sm.clone(),
                            Config::require(&tcfg.meta_secret_arn, "META_SECRET_ARN")
                                .map_err(cfg_err)?,
                            opts.secret_ttl,
                        )),
                        notify_secrets: tcfg.notify_secret_arn.as_deref().map(|arn| {
                            Arc::new(CachedSecret::new(sm.clone(), arn, opts.secret_ttl))
                        }),
                        now_ms: now,
                    });
                    Arc::new(move |input| {
                        let app = app.clone();
                        Box::pin(async move {
                            let report = app.handle(input).await.map_err(|e| e.to_string())?;
                            serde_json::to_value(report).map_err(|e| e.to_string())
                        })
                    })
                }
                "bot-timers" => {
                    let tcfg = Config::from_map(&env_of("bot-timers")?).map_err(cfg_err)?;
                    let app = Arc::new(bot_timers::TimersApp {
                        store: Store::new(ddb.clone(), &tcfg.table_name, tcfg.inbox_shards),
                        jobs: Arc::new(SqsSink::new(
                            sqs.clone(),
                            Config::require(&tcfg.bots_queue_url, "BOTS_QUEUE_URL")
                                .map_err(cfg_err)?,
                        )),
                        now_ms: now,
                    });
                    Arc::new(move |_input| {
                        let app = app.clone();
                        Box::pin(async move {
                            let report = app.tick().await.map_err(|e| e.to_string())?;
                            serde_json::to_value(report).map_err(|e| e.to_string())
                        })
                    })
                }
                other => {
                    return Err(StackError::Config(format!(
                        "no local handler for scheduled function {other}"
                    )));
                }
            };
            scheduled.push((sch.clone(), handler));
        }
        let schedules = schedule::Schedules::new(scheduled);
        if opts.schedule_ticks {
            tasks.extend(schedules.spawn_ticks());
        }

        let mut functions = Vec::new();
        for f in &spec.functions {
            functions.push(FunctionInfo {
                logical_id: f.logical_id.clone(),
                binary: f.binary.clone(),
                name: provision::function_name(f, &opts.prefix),
                memory_size: f.memory_size,
                timeout: f.timeout,
                environment: env_of(&f.binary)?.into_iter().collect(),
            });
        }
        let http_base = format!("http://{addr}");
        let info = StackInfo {
            functions,
            webhook_url: format!("{http_base}{}", webhook::WEBHOOK_PATH),
            api_base: format!("{http_base}{}", staff_api::API_PREFIX),
            http_base,
            aws_endpoint: endpoint,
            resources,
            app_secret: DEV_APP_SECRET.into(),
            verify_token: DEV_VERIFY_TOKEN.into(),
            jwt_kid: key.kid.clone(),
            jwt_issuer: scfg.jwt_issuer.clone(),
            jwt_audience: scfg.jwt_audience.clone(),
            jwt_private_pem: key.private_pem.clone(),
        };
        Ok(Stack {
            info,
            aws,
            tasks,
            schedules,
            run_schedules,
            invokable: by_logical_id,
        })
    }

    /// Fires the run-time schedules (campaign runs) that are due now, as EventBridge Scheduler
    /// would; the runner also does this every second.
    pub async fn fire_due_schedules(&self) -> Result<Vec<run_schedules::Fired>, StackError> {
        self.run_schedules
            .fire_due(chrono::Utc::now())
            .await
            .map_err(StackError::Schedule)
    }

    /// Invokes a function that run-time schedules target (e.g. `CampaignSchedulerFunction`)
    /// with `input`, as a schedule firing would (a late or repeated delivery, in tests).
    pub async fn invoke(
        &self,
        function_logical_id: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, StackError> {
        let (handler, timeout) = self.invokable.get(function_logical_id).ok_or_else(|| {
            StackError::Config(format!("{function_logical_id} is not invoked locally"))
        })?;
        handler(input, shared::sqs_batch::Deadline::after(*timeout))
            .await
            .map_err(StackError::Schedule)
    }

    /// As [`Stack::invoke`], with `remaining` left before the invocation's deadline (a late
    /// start, close to the function's timeout).
    pub async fn invoke_within(
        &self,
        function_logical_id: &str,
        input: serde_json::Value,
        remaining: Duration,
    ) -> Result<serde_json::Value, StackError> {
        let (handler, _) = self.invokable.get(function_logical_id).ok_or_else(|| {
            StackError::Config(format!("{function_logical_id} is not invoked locally"))
        })?;
        handler(input, shared::sqs_batch::Deadline::after(remaining))
            .await
            .map_err(StackError::Schedule)
    }

    /// Runs the function a schedule of `template.yaml` invokes, now, as a tick would (e.g.
    /// `run_schedule("TemplateSyncFunction")`); returns the function's result.
    pub async fn run_schedule(
        &self,
        function_logical_id: &str,
    ) -> Result<serde_json::Value, StackError> {
        self.schedules
            .run(function_logical_id)
            .await
            .map_err(StackError::Schedule)
    }
}
