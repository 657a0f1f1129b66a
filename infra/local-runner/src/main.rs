#![recursion_limit = "256"]
//! `local-runner up` (what `make dev` runs), plus helpers: `invoke` (`make invoke`),
//! `mint-token`, `send`, `crm-event`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use local_runner::{Stack, StackInfo, StackOptions};

#[derive(Parser)]
#[command(about = "Runs the WhatsApp ↔ CRM system locally against moto server")]
struct Cli {
    /// Where `up` writes the stack info that the other commands read.
    #[arg(long, default_value = ".local/dev.json", global = true)]
    info: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Provision the resources of template.yaml in moto and serve every function.
    Up {
        #[arg(long, default_value = "127.0.0.1:3000")]
        addr: String,
        #[arg(long, default_value = "dev")]
        prefix: String,
        /// Graph API base URL (default: a closed loopback port, so nothing reaches Meta).
        #[arg(long)]
        graph_api: Option<String>,
        /// Serve Meta's Graph API and the AI providers (OpenAI, Gemini) from the local fakes
        /// the tests use: sends are accepted, AI answers echo the customer (`make dev`).
        #[arg(long)]
        fakes: bool,
    },
    /// Invoke a function's `bootstrap` with an event under the Lambda Runtime Interface
    /// Emulator, with the environment the running stack gives it (what `sam local invoke`
    /// does in its container). A staff token placeholder in the event
    /// (`REPLACE_WITH_A_TOKEN_FROM_make_token`) is replaced by a fresh admin token.
    Invoke {
        /// Binary (`webhook`) or logical id (`WebhookFunction`).
        function: String,
        /// The event file, e.g. events/webhook-post.json.
        event: PathBuf,
        /// The bootstrap to run (default: the test build's, target/debug/<binary>).
        #[arg(long)]
        bootstrap: Option<PathBuf>,
    },
    /// Cold starts: each function's bootstrap from `dir`, started afresh `runs` times under
    /// the emulator against its own local stack and invoked once with its first sample event;
    /// reports the medians of init and first-invoke durations and of peak RSS (`make coldstart`).
    Coldstart {
        /// Where the bootstraps are (e.g. target/release).
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "9")]
        runs: usize,
        /// Only these functions (comma-separated); all of them when absent.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Print a staff JWT signed with the development key.
    MintToken {
        #[arg(long, default_value = "1")]
        sub: String,
        #[arg(long)]
        admin: bool,
        /// A permission such as whatsapp_chat:view (repeatable).
        #[arg(long = "perm")]
        perms: Vec<String>,
    },
    /// POST a webhook payload file to the local webhook, signed with the dev app secret.
    Send { file: PathBuf },
    /// Put a CRM event on the local CRM bus (`source = crm`).
    CrmEvent {
        /// detail-type, e.g. contact_created
        detail_type: String,
        /// JSON file with the event's detail
        file: PathBuf,
    },
}

/// How a container (`sam local invoke`) reaches this machine: Docker Desktop names it so, and on
/// Linux `--add-host host.docker.internal:host-gateway` does (see events/README.md).
const SAM_HOST: &str = "host.docker.internal";
use local_runner::emulator::TOKEN_PLACEHOLDER;

fn read_info(path: &PathBuf) -> Result<StackInfo, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e} (is `make dev` running?)", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    shared::telemetry::init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Up {
            addr,
            prefix,
            graph_api,
            fakes,
        } => {
            let mut opts = StackOptions::new(prefix);
            let mut fake_urls = Vec::new();
            if fakes {
                let graph = fakes::graph::FakeGraph::start().await;
                let ai = fakes::ai::FakeAi::start().await;
                opts = opts.with_fake_graph(&graph);
                for (k, v) in [
                    ("OPENAI_BASE_URL", ai.openai_base_url()),
                    ("GEMINI_BASE_URL", ai.gemini_base_url()),
                ] {
                    opts.env_overrides.insert(k.into(), v);
                }
                fake_urls.push(("fake Graph API", graph.base_url.clone()));
                fake_urls.push(("fake AI", ai.base_url.clone()));
            }
            if let Some(url) = graph_api {
                opts.env_overrides.insert("GRAPH_API_BASE_URL".into(), url);
            }
            opts.http_addr = addr.parse()?;
            let stack = Stack::start(opts).await?;
            if let Some(dir) = cli.info.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&cli.info, serde_json::to_string_pretty(&stack.info)?)?;
            let sam_env = cli.info.with_file_name("sam-env.json");
            std::fs::write(
                &sam_env,
                serde_json::to_string_pretty(&stack.info.sam_env_vars(SAM_HOST))?,
            )?;
            let i = &stack.info;
            println!("\nWhatsApp ↔ CRM running locally");
            println!("  webhook        {}", i.webhook_url);
            println!("  staff API      {}", i.api_base);
            println!("  AWS endpoint   {}", i.aws_endpoint);
            println!("  verify token   {}", i.verify_token);
            println!("  app secret     {}   (dev only)", i.app_secret);
            println!("  resources:");
            let mut names: Vec<_> = i.resources.iter().collect();
            names.sort_by_key(|(k, _)| k.as_str());
            for (logical, r) in names {
                println!("    {logical:<20} {}", r.url.as_deref().unwrap_or(&r.name));
            }
            for (what, url) in &fake_urls {
                println!("  {what:<14} {url}");
            }
            println!("  stack info     {}", cli.info.display());
            println!("  sam env-vars   {}", sam_env.display());
            println!(
                "\nTry: make send EVENT=events/webhook-text.json   |   make token PERMS=whatsapp_chat:view\n"
            );
            tokio::signal::ctrl_c().await?;
            println!("stopping");
        }
        Cmd::Invoke {
            function,
            event,
            bootstrap,
        } => {
            let info = read_info(&cli.info)?;
            let f = info
                .function(&function)
                .ok_or_else(|| format!("{function} is not a function of template.yaml"))?;
            let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
            let bootstrap =
                bootstrap.unwrap_or_else(|| PathBuf::from(target).join("debug").join(&f.binary));
            let rie = local_runner::emulator::find_rie(&std::env::current_dir()?)?;
            let text = std::fs::read_to_string(&event)
                .map_err(|e| format!("{}: {e}", event.display()))?
                .replace(TOKEN_PLACEHOLDER, &info.mint_token("1", true, &[]));
            let out = local_runner::emulator::invoke(
                &rie,
                &bootstrap,
                &info.lambda_environment(f),
                text.as_bytes(),
                std::time::Duration::from_secs(f.timeout + 5),
            )
            .await?;
            eprint!("{}", out.logs);
            eprintln!(
                "{} · init {} ms · invoke {} ms · peak RSS {} KiB",
                f.logical_id,
                out.init_ms.map_or("?".into(), |v| format!("{v:.1}")),
                out.duration_ms.map_or("?".into(), |v| format!("{v:.1}")),
                out.peak_rss_kb.map_or("?".into(), |v| v.to_string()),
            );
            println!("{}", out.body);
            if out.status != 200 {
                return Err(format!("the emulator answered {}", out.status).into());
            }
        }
        Cmd::Coldstart { dir, runs, only } => coldstart(&dir, runs.max(1), &only).await?,
        Cmd::MintToken { sub, admin, perms } => {
            let info = read_info(&cli.info)?;
            let perms: Vec<&str> = perms.iter().map(String::as_str).collect();
            println!("{}", info.mint_token(&sub, admin, &perms));
        }
        Cmd::Send { file } => {
            let info = read_info(&cli.info)?;
            let body = std::fs::read(&file)?;
            let sig = shared::meta::signature::sign(info.app_secret.as_bytes(), &body);
            let resp = reqwest::Client::new()
                .post(&info.webhook_url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await?;
            println!("{} {}", resp.status(), resp.text().await?);
        }
        Cmd::CrmEvent { detail_type, file } => {
            let info = read_info(&cli.info)?;
            let detail = std::fs::read_to_string(&file)?;
            serde_json::from_str::<serde_json::Value>(&detail)?;
            let (aws, _) = local_runner::aws_config().await?;
            let out = aws_sdk_eventbridge::Client::new(&aws)
                .put_events()
                .entries(
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .event_bus_name(&info.resource("CrmBus").name)
                        .source("crm")
                        .detail_type(detail_type)
                        .detail(detail)
                        .build(),
                )
                .send()
                .await?;
            println!("failed entries: {}", out.failed_entry_count());
        }
    }
    Ok(())
}

/// This machine's CA bundle (one PEM file of every trusted root).
fn ca_bundle() -> Result<PathBuf, String> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .ok_or_else(|| "no CA bundle file on this machine".to_string())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

async fn coldstart(
    dir: &std::path::Path,
    runs: usize,
    only: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    use local_runner::emulator;
    let graph = fakes::graph::FakeGraph::start().await;
    graph.set_account("102290129340398", &["106540352242922"]);
    let mut opts = StackOptions::new(format!("cold{}", std::process::id()))
        .with_fake_graph(&graph)
        .with_idle_queues();
    opts.schedule_ticks = false;
    let stack = Stack::start(opts).await?;
    let info = &stack.info;
    let rie = emulator::find_rie(&std::env::current_dir()?)?;
    // Each run starts the function twice: with this machine's CA certificates as found (a
    // Debian-like system has a directory of ~150 hashed files, each read at every load of the
    // roots), and with the layout of Lambda's `provided.al2023` image: one CA bundle file and no
    // hashed directory (`/etc/pki/tls/certs/ca-bundle.crt`; `SSL_CERT_FILE`, `SSL_CERT_DIR`).
    let bundle = ca_bundle()?;
    let no_hashed_dir = std::env::temp_dir().join("coldstart-no-hashed-ca-dir");
    std::fs::create_dir_all(&no_hashed_dir)?;
    println!(
        "{:<20} {:>9} {:>10} {:>12} {:>14} {:>13} {:>13}   (median of {runs} cold starts)",
        "function",
        "size MB",
        "init ms",
        "init ms (1)",
        "1st invoke ms",
        "peak RSS MB",
        "file RSS (2)"
    );
    let mut seen = std::collections::BTreeSet::new();
    for (file, binary) in emulator::SAMPLES {
        if !seen.insert(*binary) || !(only.is_empty() || only.iter().any(|o| o == binary)) {
            continue;
        }
        let f = info
            .function(binary)
            .ok_or_else(|| format!("{binary} is not in template.yaml"))?;
        let bootstrap = dir.join(binary);
        let size = std::fs::metadata(&bootstrap)
            .map_err(|e| format!("{}: {e}", bootstrap.display()))?
            .len();
        let event = std::fs::read_to_string(PathBuf::from("events").join(file))?
            .replace(TOKEN_PLACEHOLDER, &info.mint_token("1", true, &[]));
        let host_env = info.lambda_environment(f);
        let mut al2023_env = host_env.clone();
        al2023_env.insert("SSL_CERT_FILE".into(), bundle.display().to_string());
        al2023_env.insert("SSL_CERT_DIR".into(), no_hashed_dir.display().to_string());
        let (mut init, mut init_bundle, mut first, mut rss, mut file_rss) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            for (env, al2023) in [(&host_env, false), (&al2023_env, true)] {
                let out = emulator::invoke(
                    &rie,
                    &bootstrap,
                    env,
                    event.as_bytes(),
                    std::time::Duration::from_secs(f.timeout + 5),
                )
                .await?;
                if out.status != 200 {
                    return Err(format!(
                        "{binary}: the emulator answered {}\n{}",
                        out.status, out.logs
                    )
                    .into());
                }
                if al2023 {
                    init_bundle.extend(out.init_ms);
                } else {
                    init.extend(out.init_ms);
                    first.extend(out.duration_ms);
                    rss.extend(out.peak_rss_kb.map(|k| k as f64 / 1024.0));
                    file_rss.extend(out.file_rss_kb.map(|k| k as f64 / 1024.0));
                }
            }
        }
        let show = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1}"));
        println!(
            "{binary:<20} {:>9.1} {:>10} {:>12} {:>14} {:>13} {:>13}",
            size as f64 / 1_048_576.0,
            show(median(init)),
            show(median(init_bundle)),
            show(median(first)),
            show(median(rss)),
            show(median(file_rss)),
        );
    }
    println!("(1) with one CA bundle file and no hashed directory, as on provided.al2023");
    println!(
        "(2) of the resident memory after the invocation, the MB mapped from files (the bootstrap's \
         code and data; the kernel maps 64 KB around each page touched): the rest is the process's own"
    );
    Ok(())
}
