//! The command line `make dev`, `make invoke`, `make token` and `make send` run: its errors
//! say what to do. (Its invocations of every function are in `tests/invoke.rs`, against a
//! running stack.)
use std::process::Command;

fn runner() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_local-runner"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    c
}

fn run(c: &mut Command) -> (bool, String) {
    let out = c.output().expect("local-runner runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn without_a_running_stack_invoke_says_to_start_one() {
    let (ok, out) = run(runner().args([
        "--info",
        "/nonexistent/dev.json",
        "invoke",
        "webhook",
        "events/webhook-verify.json",
    ]));
    assert!(!ok);
    assert!(out.contains("is `make dev` running?"), "{out}");
}

#[test]
fn an_unknown_function_is_named() {
    let dir = std::env::temp_dir().join(format!("cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let info = dir.join("dev.json");
    std::fs::write(
        &info,
        r#"{"http_base":"","webhook_url":"","api_base":"","aws_endpoint":"http://127.0.0.1:9",
            "resources":{},"app_secret":"","verify_token":"","jwt_kid":"","jwt_issuer":"",
            "jwt_audience":"","jwt_private_pem":"","functions":[]}"#,
    )
    .unwrap();
    let (ok, out) = run(runner().arg("--info").arg(&info).args([
        "invoke",
        "NoSuchFunction",
        "events/webhook-verify.json",
    ]));
    assert!(!ok);
    assert!(
        out.contains("NoSuchFunction is not a function of template.yaml"),
        "{out}"
    );
}

#[test]
fn every_subcommand_is_documented() {
    let (ok, out) = run(runner().arg("--help"));
    assert!(ok, "{out}");
    for cmd in ["up", "invoke", "mint-token", "send", "crm-event"] {
        assert!(out.contains(cmd), "{cmd} missing from --help:\n{out}");
    }
}
