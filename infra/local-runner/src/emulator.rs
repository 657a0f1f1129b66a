//! A function's `bootstrap` run under AWS's Lambda Runtime Interface Emulator, outside any
//! container: what `sam local invoke` runs inside its container, and what Lambda's custom
//! runtime (`provided.al2023`) does in the cloud.
//!
//! The `aws-sam-cli` package of the project's venv ships the emulator as a plain binary
//! (`samcli/local/rapid/aws-lambda-rie-<arch>`). One [`invoke`] starts it on two free loopback
//! ports with the function's environment (and nothing else of this process's), posts the event
//! to `/2015-03-31/functions/function/invocations`, and returns the answer with everything the
//! function and the emulator printed: the JSON logs, the `REPORT` line (init and invoke
//! durations) and the function process's peak RSS.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(
        "the Lambda Runtime Interface Emulator is not in the venv ({0}): run `make venv` (aws-sam-cli ships it)"
    )]
    NoEmulator(String),
    #[error("{0}: no such bootstrap (build it first: `make invoke` does)")]
    NoBootstrap(String),
    #[error("emulator: {0}")]
    Io(#[from] std::io::Error),
    #[error("the emulator did not listen on {0} within 10 s; its output:\n{1}")]
    NotListening(String, String),
    #[error("invoke: {0}")]
    Http(String),
    #[error("the emulator exited before listening ({0}); its output:\n{1}")]
    Exited(String, String),
}

/// Every sample invocation of `events/`: (file, function binary). `tests/invoke.rs` runs them
/// all and checks each answer; `coldstart` takes each function's first.
pub const SAMPLES: &[(&str, &str)] = &[
    ("webhook-verify.json", "webhook"),
    ("webhook-post.json", "webhook"),
    ("staff-list-conversations.json", "staff-api"),
    ("inbound-sqs.json", "inbound"),
    ("media-sqs.json", "media"),
    ("bots-sqs.json", "bots"),
    ("bot-timers-schedule.json", "bot-timers"),
    ("template-sync-schedule.json", "template-sync"),
    ("directory-sqs.json", "directory"),
    ("campaign-scheduler-run.json", "campaign-scheduler"),
    ("campaign-sender-sqs.json", "campaign-sender"),
    ("notifications-sqs.json", "notifications"),
];

/// The placeholder of a staff token in `events/staff-list-conversations.json`.
pub const TOKEN_PLACEHOLDER: &str = "REPLACE_WITH_A_TOKEN_FROM_make_token";

/// The emulator binary for this machine's architecture, under `root/.venv`.
pub fn find_rie(root: &Path) -> Result<PathBuf, EmulatorError> {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    };
    let name = format!("aws-lambda-rie-{arch}");
    let lib = root.join(".venv").join("lib");
    let pythons = std::fs::read_dir(&lib)
        .map_err(|_| EmulatorError::NoEmulator(lib.display().to_string()))?;
    for entry in pythons.flatten() {
        let p = entry
            .path()
            .join("site-packages/samcli/local/rapid")
            .join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(EmulatorError::NoEmulator(format!(
        "{}/python3.*/site-packages/samcli/local/rapid/{name}",
        lib.display()
    )))
}

/// What one invocation answered and printed.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// HTTP status of the emulator's answer (200 unless the function failed or timed out).
    pub status: u16,
    /// The function's answer (for an HTTP function, the API Gateway response JSON).
    pub body: String,
    /// Everything the function and the emulator printed, in order.
    pub logs: String,
    /// `Init Duration` of the `REPORT` line (a cold start).
    pub init_ms: Option<f64>,
    /// `Duration` of the `REPORT` line.
    pub duration_ms: Option<f64>,
    /// Peak resident memory of the function process (`VmHWM`), in KiB.
    pub peak_rss_kb: Option<u64>,
    /// Of its resident memory after the invocation, the pages mapped from files (`RssFile`:
    /// mostly the bootstrap's own code and data, which the kernel maps 64 KB around each page
    /// touched), in KiB; the rest is the process's own (heap, stacks, relocated data).
    pub file_rss_kb: Option<u64>,
}

impl Invocation {
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_str(&self.body)
            .map_err(|e| format!("the answer is not JSON ({e}): {}", self.body))
    }
}

/// Lambda's own variables for a function (what the service sets besides `Environment`).
pub fn lambda_env(
    function_name: &str,
    memory_mb: u32,
    timeout_s: u64,
    region: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("AWS_LAMBDA_FUNCTION_NAME".into(), function_name.into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_TIMEOUT".into(), timeout_s.to_string()),
        ("AWS_REGION".into(), region.into()),
        ("AWS_DEFAULT_REGION".into(), region.into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        ("TZ".into(), ":UTC".into()),
    ])
}

fn free_port() -> Result<u16, std::io::Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Invokes `bootstrap` once with `event` under the emulator `rie`, with exactly `env` as the
/// process environment; `timeout` bounds the whole invocation. The two ports are picked free
/// just before the emulator starts: one taken meanwhile by another process makes the emulator
/// exit, and the invocation is made again on other ports (three tries).
pub async fn invoke(
    rie: &Path,
    bootstrap: &Path,
    env: &BTreeMap<String, String>,
    event: &[u8],
    timeout: Duration,
) -> Result<Invocation, EmulatorError> {
    if !bootstrap.is_file() {
        return Err(EmulatorError::NoBootstrap(bootstrap.display().to_string()));
    }
    let mut tries = 0;
    loop {
        tries += 1;
        match invoke_on_free_ports(rie, bootstrap, env, event, timeout).await {
            Err(EmulatorError::Exited(..)) if tries < 3 => continue,
            r => return r,
        }
    }
}

async fn invoke_on_free_ports(
    rie: &Path,
    bootstrap: &Path,
    env: &BTreeMap<String, String>,
    event: &[u8],
    timeout: Duration,
) -> Result<Invocation, EmulatorError> {
    let (port, api_port) = (free_port()?, free_port()?);
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(rie);
    cmd.arg("--runtime-interface-emulator-address")
        .arg(&addr)
        .arg("--runtime-api-address")
        .arg(format!("127.0.0.1:{api_port}"))
        .arg(bootstrap)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pid = child.id().unwrap_or_default();
    let logs = Arc::new(Mutex::new(String::new()));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(collect(BufReader::new(out), logs.clone())));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(collect(BufReader::new(err), logs.clone())));
    }
    let result = async {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(EmulatorError::Exited(
                    status.to_string(),
                    logs.lock().expect("logs").clone(),
                ));
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(EmulatorError::NotListening(
                    addr.clone(),
                    logs.lock().expect("logs").clone(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let resp = reqwest::Client::new()
            .post(format!(
                "http://{addr}/2015-03-31/functions/function/invocations"
            ))
            .body(event.to_vec())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| EmulatorError::Http(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .map_err(|e| EmulatorError::Http(e.to_string()))?;
        // The REPORT line follows the answer; the function process is still alive for /proc.
        let waited = Instant::now();
        while !logs.lock().expect("logs").contains("REPORT RequestId")
            && waited.elapsed() < Duration::from_secs(2)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let functions = children(pid);
        let (peak_rss_kb, file_rss_kb) = functions
            .iter()
            .filter_map(|f| {
                let status = std::fs::read_to_string(format!("/proc/{f}/status")).ok()?;
                Some((
                    status_kb(&status, "VmHWM:")?,
                    status_kb(&status, "RssFile:"),
                ))
            })
            .max()
            .map_or((None, None), |(peak, file)| (Some(peak), file));
        // The function first (else it reports the emulator's connection closing), then the rest.
        for f in functions {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &f.to_string()])
                .status();
        }
        Ok((status, body, peak_rss_kb, file_rss_kb))
    }
    .await;
    // The emulator and the function run in their own process group: stop both.
    if pid != 0 {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
    }
    for r in readers {
        let _ = tokio::time::timeout(Duration::from_secs(1), r).await;
    }
    let (status, body, peak_rss_kb, file_rss_kb) = result?;
    let logs = logs.lock().expect("logs").clone();
    Ok(Invocation {
        status,
        body,
        init_ms: first_field(&logs, "INIT REPORT(durationMs:"),
        duration_ms: logs
            .lines()
            .find(|l| l.contains("INVOKE RTDONE("))
            .and_then(|l| first_field(l, "duration:")),
        peak_rss_kb,
        file_rss_kb,
        logs,
    })
}

async fn collect<R: tokio::io::AsyncRead + Unpin>(reader: BufReader<R>, into: Arc<Mutex<String>>) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut logs = into.lock().expect("logs");
        logs.push_str(&line);
        logs.push('\n');
    }
}

/// The number after the first `name` in `text`: the emulator's `INIT REPORT(durationMs: 175.5)`
/// (the init phase; the `Init Duration` of its `REPORT` line is not that) and
/// `INVOKE RTDONE(status: success, produced bytes: 0, duration: 17.4ms)`.
fn first_field(text: &str, name: &str) -> Option<f64> {
    let at = text.find(name)? + name.len();
    let digits: String = text[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse().ok()
}

/// Direct children of `pid` (the function process under the emulator).
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid …; comm may hold spaces: split after the last ')'.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// A line's value in KiB of a `/proc/{pid}/status` (`VmHWM:`, `RssFile:`).
fn status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulators_reports_are_read() {
        let init = "02 Dec 2026 03:00:16,315 [INFO] (rapid) INIT REPORT(durationMs: 175.525000)";
        assert_eq!(first_field(init, "INIT REPORT(durationMs:"), Some(175.525));
        let done = "[INFO] (rapid) INVOKE RTDONE(status: success, produced bytes: 0, duration: 2017.490000ms)";
        assert_eq!(first_field(done, "duration:"), Some(2017.49));
        assert_eq!(first_field("INIT START", "INIT REPORT(durationMs:"), None);
    }
}
