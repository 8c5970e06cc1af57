//! The `tekton-retry serve` binary end to end: flags, kubeconfig, readiness, one access-log line per
//! request without the bearer token, and a clean exit on SIGTERM.

use tekton_retry_test_support::server as server_support;

use std::process::Stdio;
use std::time::Duration;

use server_support::*;
use tekton_retry::api::UserInfo;
use tekton_retry_pki::Ca;
use tokio::io::AsyncReadExt;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

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
    let front = Ca::new("front-proxy-ca").expect("ca");
    let client_ca = Ca::new("client-ca").expect("ca");
    let serving = Ca::new("serving-ca").expect("ca");
    let kube = FakeKube::new(auth_configmap(&front, &client_ca, &[FRONT_PROXY_CN]));
    kube.add_token(
        "s3cret-token-value",
        UserInfo::new("carol", &["system:authenticated"]),
    );
    let api = kube.serve_http().await;

    let dir = tempfile::tempdir().expect("tempdir");
    let cert = serving
        .issue_server(&["localhost", "127.0.0.1"])
        .expect("cert");
    std::fs::write(dir.path().join("tls.crt"), &cert.cert).expect("write");
    std::fs::write(dir.path().join("tls.key"), &cert.key).expect("write");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'http://{api}'}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ),
    )
    .expect("write");
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tekton-retry"))
        .arg("serve")
        .args([
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            &port.to_string(),
        ])
        .arg("--tls-cert-file")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-private-key-file")
        .arg(dir.path().join("tls.key"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .env("TEKTON_RETRY_LOG_FORMAT", "json")
        .env("TEKTON_RETRY_SHUTDOWN_GRACE_PERIOD", "5s")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let client = TestClient::new(addr, &serving.pem.cert, None, false);
    let mut ready = false;
    for _ in 0..1200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok()
            && client.get("/readyz").await.status == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "serve became ready");
    let a = client
        .post(
            &retry_path("demo", "demo-failed"),
            &[
                ("Authorization", "Bearer s3cret-token-value"),
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

    let pid = child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
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
        !logs.contains("s3cret-token-value"),
        "the token never appears in the logs"
    );
    assert!(!logs.contains("PRIVATE KEY"), "no key material in the logs");
}
