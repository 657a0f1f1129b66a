//! `sam local invoke`, proven without Docker: every function's `bootstrap` (this test build's)
//! runs under AWS's Lambda Runtime Interface Emulator — what SAM runs inside its container —
//! with the environment `template.yaml` gives it in a local stack, and answers every sample of
//! `events/`. `make invoke FN=… EVENT=…` is the same path from the command line (its CLI is
//! exercised here too).
use std::path::{Path, PathBuf};
use std::time::Duration;

use integration_tests::{fake_graph, options_with_graph, start_with};
use local_runner::emulator::{self, Invocation};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where cargo put this test build's binaries (`target/debug`): `cargo test --workspace` builds
/// every function's binary before it runs any test (each function has integration tests).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .to_path_buf()
}

fn sample(name: &str) -> String {
    let p = repo().join("events").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The samples that are not a function's invocation, and what they are for.
const NOT_INVOCATIONS: &[(&str, &str)] = &[
    (
        "webhook-text.json",
        "Meta's raw body (make send); webhook-post.json carries it",
    ),
    (
        "crm-contact-created-detail.json",
        "a CRM event's detail (make crm-event); directory-sqs.json carries it",
    ),
    (
        "crm-after-invoice-added-detail.json",
        "a CRM event's detail (make crm-event); notifications-sqs.json carries it",
    ),
];

/// Every sample invocation: (file, function binary).
const INVOCATIONS: &[(&str, &str)] = emulator::SAMPLES;

#[test]
fn every_sample_and_every_function_is_covered() {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("events"))
        .expect("events/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    for f in &files {
        assert!(
            INVOCATIONS.iter().any(|(n, _)| n == f) || NOT_INVOCATIONS.iter().any(|(n, _)| n == f),
            "events/{f} is neither invoked here nor listed as a raw body: add it to tests/invoke.rs"
        );
    }
    for f in local_runner::spec::Spec::load().functions {
        assert!(
            INVOCATIONS.iter().any(|(_, b)| *b == f.binary),
            "{} ({}) has no sample event invoked here: add one to events/",
            f.logical_id,
            f.binary
        );
    }
}

/// The embedded-metric-format documents the function printed.
fn emf(out: &Invocation) -> Vec<Value> {
    out.logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

/// The one EMF document carrying `metric`, checked against CloudWatch's format: namespace,
/// the `Function` dimension in every set, each dimension and metric present as a member.
fn metric(out: &Invocation, namespace: &str, function: &str, name: &str) -> Value {
    let docs: Vec<Value> = emf(out)
        .into_iter()
        .filter(|d| d.get(name).is_some())
        .collect();
    assert_eq!(docs.len(), 1, "one {name} document\n{}", out.logs);
    let d = docs.into_iter().next().expect("one");
    let cw = &d["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(cw["Namespace"], namespace, "{d}");
    assert!(
        d["_aws"]["Timestamp"]
            .as_i64()
            .is_some_and(|t| t > 1_700_000_000_000),
        "{d}"
    );
    assert_eq!(d["Function"], function, "{d}");
    for set in cw["Dimensions"].as_array().expect("dimension sets") {
        for dim in set.as_array().expect("a set") {
            assert!(
                d[dim.as_str().expect("name")].is_string(),
                "{dim} missing: {d}"
            );
        }
    }
    for m in cw["Metrics"].as_array().expect("metrics") {
        assert!(d[m["Name"].as_str().expect("name")].is_number(), "{m}: {d}");
        assert!(
            ["Count", "Milliseconds"].contains(&m["Unit"].as_str().expect("unit")),
            "{m}"
        );
    }
    d
}

fn no_failed_items(file: &str, out: &Invocation) {
    let v = out
        .json()
        .unwrap_or_else(|e| panic!("{file}: {e}\n{}", out.logs));
    assert_eq!(
        v["batchItemFailures"],
        serde_json::json!([]),
        "{file}: failed items\n{}",
        out.logs
    );
}

fn http_answer(file: &str, out: &Invocation) -> (u64, String) {
    let v = out
        .json()
        .unwrap_or_else(|e| panic!("{file}: {e}\n{}", out.logs));
    (
        v["statusCode"].as_u64().unwrap_or_default(),
        v["body"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_its_samples_under_the_runtime_interface_emulator() {
    let rie = emulator::find_rie(&repo()).expect("the emulator ships with aws-sam-cli");
    let graph = fake_graph::FakeGraph::start().await;
    graph.set_account("102290129340398", &["106540352242922"]);
    // What the bootstraps queue stays queued, for this test to see.
    let t = start_with(options_with_graph(&graph, 5_000).with_idle_queues()).await;
    let info = t.info().clone();

    for (file, binary) in INVOCATIONS {
        let f = info.function(binary).expect("a function of the stack");
        let bootstrap = bin_dir().join(binary);
        let mut event = sample(file);
        if *file == "staff-list-conversations.json" {
            event = event.replace(
                emulator::TOKEN_PLACEHOLDER,
                &info.mint_token("7", false, &["whatsapp_chat:view"]),
            );
        }
        let out = emulator::invoke(
            &rie,
            &bootstrap,
            &info.lambda_environment(f),
            event.as_bytes(),
            Duration::from_secs(f.timeout + 10),
        )
        .await
        .unwrap_or_else(|e| panic!("{file} → {binary}: {e}"));
        assert_eq!(out.status, 200, "{file}: {}\n{}", out.body, out.logs);
        assert!(
            out.init_ms.is_some(),
            "{file}: the emulator reported no init phase\n{}",
            out.logs
        );
        // What the function prints are tracing JSON lines (CloudWatch's JSON log format).
        for line in out.logs.lines().filter(|l| l.starts_with('{')) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{file}: a log line is not JSON ({e}): {line}"));
            if v.get("_aws").is_some() {
                continue; // a metric (checked below)
            }
            assert!(v["level"].is_string(), "{file}: {line}");
            assert!(v["message"].is_string(), "{file}: {line}");
        }
        // `${AWS::StackName}/WhatsApp`, the stack being this test's prefix.
        let ns = f.environment["METRICS_NAMESPACE"].clone();
        assert!(ns.ends_with("/WhatsApp") && !ns.starts_with('$'), "{ns}");
        match *file {
            "webhook-verify.json" => {
                assert_eq!(http_answer(file, &out), (200, "1158201444".into()));
            }
            "webhook-post.json" => {
                assert_eq!(http_answer(file, &out), (200, "EVENT_RECEIVED".into()));
                let m = metric(&out, &ns, &f.name, "WebhookRequests");
                assert_eq!(
                    (m["Outcome"].as_str(), m["WebhookRequests"].as_f64()),
                    (Some("accepted"), Some(1.0))
                );
                assert_eq!(
                    metric(&out, &ns, &f.name, "EnvelopesQueued")["EnvelopesQueued"],
                    1.0
                );
                let url = info.resource("InboundQueue").url.clone().expect("url");
                let queued = t
                    .sqs()
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .expect("receive")
                    .messages
                    .unwrap_or_default();
                assert_eq!(queued.len(), 1, "one envelope on the inbound queue");
                assert!(
                    queued[0]
                        .body()
                        .unwrap_or_default()
                        .contains("HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=")
                );
            }
            "staff-list-conversations.json" => {
                let (status, body) = http_answer(file, &out);
                assert_eq!(status, 200, "{body}\n{}", out.logs);
                let v: Value = serde_json::from_str(&body).expect("JSON page");
                assert!(v["data"].is_array(), "{body}");
            }
            "inbound-sqs.json" => {
                no_failed_items(file, &out);
                let c = t.conversation_of("16505551234").await;
                assert_eq!(c["rel_type"], "general", "{c}");
                let m = metric(&out, &ns, &f.name, "InboundMessages");
                assert_eq!(m["Outcome"], "stored", "{m}");
                assert_eq!(m["RelType"], "general", "{m}");
                assert_eq!(
                    m["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                    serde_json::json!([
                        ["Function"],
                        ["Function", "Outcome"],
                        ["Function", "RelType"],
                        ["Function", "Outcome", "RelType"]
                    ])
                );
            }
            "bot-timers-schedule.json" => {
                let v = out.json().expect("report");
                assert_eq!(v["failed_shards"], 0, "{v}");
                assert!(v["fired"].is_u64(), "{v}");
            }
            "template-sync-schedule.json" => {
                let v = out.json().expect("report");
                assert!(v.is_object() && v.get("error").is_none(), "{v}");
            }
            "campaign-scheduler-run.json" => {
                let v = out.json().expect("report");
                assert_eq!(v["outcome"], "no_campaign", "{v}");
            }
            _ => no_failed_items(file, &out),
        }
    }

    // `make invoke`'s command line: the running stack's info file, the event, the answer.
    let dir = std::env::temp_dir().join(format!("invoke-{}", integration_tests::unique_prefix()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let info_path = dir.join("dev.json");
    std::fs::write(&info_path, serde_json::to_string(&info).expect("info")).expect("write");
    let runner = bin_dir().join("local-runner");
    let out = tokio::process::Command::new(&runner)
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", bin_dir().parent().expect("target"))
        .arg("--info")
        .arg(&info_path)
        .args(["invoke", "WebhookFunction", "events/webhook-verify.json"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", runner.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1158201444"), "{stdout}\n{stderr}");
    assert!(stderr.contains("INIT REPORT"), "{stderr}");
    // SAM's --env-vars file: every function, the endpoint as a container reaches the host.
    let sam = info.sam_env_vars("host.docker.internal");
    for f in &info.functions {
        let vars = &sam[&f.logical_id];
        assert!(
            vars["AWS_ENDPOINT_URL"]
                .as_str()
                .is_some_and(|u| u.starts_with("http://host.docker.internal:")),
            "{vars}"
        );
        assert_eq!(vars["TABLE_NAME"], f.environment["TABLE_NAME"].as_str());
        assert!(!vars.to_string().contains("127.0.0.1"), "{vars}");
    }
}
