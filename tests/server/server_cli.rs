//! The `tekton-retry serve` binary end to end: flags, kubeconfig, readiness, one access-log line per
//! request without the bearer token, and a clean exit on SIGTERM.

use tekton_retry_test_support::server as server_support;

use std::process::Stdio;

use server_support::*;
use tokio::io::AsyncReadExt;

#[test]
fn help_explains_every_flag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tekton-retry"))
        .args(["serve", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bind-address",
        "--secure-port",
        "--tls-cert-file",
        "--tls-private-key-file",
        "--kubeconfig",
        "--authorization-cache-ttl",
        "--authentication-cache-ttl",
        "--log-format",
        "--shutdown-grace-period",
        "--request-timeout",
        "--shutdown-delay",
        "--authentication-config-resync",
        "--authentication-config-max-staleness",
        "--archive-logs",
        "TEKTON_RETRY_SECURE_PORT",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_logs_and_stops_on_sigterm() {
    let files = ServeFiles::new().await;
    let mut child = files
        .command(env!("CARGO_BIN_EXE_tekton-retry"))
        .env("TEKTON_RETRY_LOG_FORMAT", "json")
        .env("TEKTON_RETRY_SHUTDOWN_GRACE_PERIOD", "5s")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let kube = &files.kube;
    let client = files.ready_client().await;
    let a = client
        .post(
            &retry_path("demo", "demo-failed"),
            &[
                ("Authorization", &format!("Bearer {CAROL_TOKEN}")),
                ("Audit-ID", "audit-cli-1"),
            ],
            "",
        )
        .await;
    // After authn and authz the real engine answers: the fake API has no such PipelineRun.
    let message = a.expect_status(404, "NotFound");
    assert!(
        message.contains("pipelineruns.tekton.dev \"demo-failed\" not found"),
        "{message}"
    );
    assert_eq!(kube.token_calls(), 1);
    assert_eq!(kube.sar_calls().len(), 1);

    sigterm(&child);
    assert_clean_exit(&mut child).await;
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .await
        .expect("read");
    let access: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "tekton_retry::access")
        .collect();
    let line = access
        .iter()
        .find(|v| v["audit_id"] == "audit-cli-1")
        .unwrap_or_else(|| panic!("access log line:\n{logs}"));
    assert_eq!(line["user"], "carol");
    assert_eq!(line["verb"], "create");
    assert_eq!(line["code"], 404);
    assert_eq!(line["path"], retry_path("demo", "demo-failed"));
    assert!(line["latency_ms"].is_number());
    assert!(
        !logs.contains(CAROL_TOKEN),
        "the token never appears in the logs"
    );
    assert!(!logs.contains("PRIVATE KEY"), "no key material in the logs");
}
