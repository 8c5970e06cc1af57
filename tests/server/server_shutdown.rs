//! `tekton-retry serve --shutdown-delay`: on SIGTERM readiness turns false at once while the
//! listener keeps accepting and answering (requests routed before the Service endpoints update
//! still get answers); after the delay the listener closes and the process exits cleanly.

use tekton_retry_test_support::server as server_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use server_support::*;
use tekton_retry::api::UserInfo;
use tekton_retry_pki::Ca;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The shutdown delay of the process under test.
const DELAY: Duration = Duration::from_secs(6);

/// A retry request as carol (bearer token): authenticated, authorized, answered by the engine.
async fn retry_answer(client: &TestClient) -> u16 {
    client
        .post(
            &retry_path("demo", "demo-failed"),
            &[("Authorization", "Bearer s3cret-token-value")],
            "",
        )
        .await
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_false_and_keeps_serving_for_the_delay() {
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
        .args(["--bind-address", "127.0.0.1", "--secure-port"])
        .arg(port.to_string())
        .arg("--tls-cert-file")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-private-key-file")
        .arg(dir.path().join("tls.key"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg(format!("--shutdown-delay={}s", DELAY.as_secs()))
        .arg("--shutdown-grace-period=5s")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
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
    // The fake API has no such run: the real engine answers 404 after authn and authz.
    assert_eq!(retry_answer(&client).await, 404);

    let pid = child.id().expect("pid");
    let term = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());

    // Readiness turns false at once (on new connections: the listener still accepts).
    let mut unready_after = None;
    while term.elapsed() < Duration::from_secs(2) {
        if client.get("/readyz").await.status == 500 {
            unready_after = Some(term.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let unready_after = unready_after.expect("/readyz answered 500 within 2 s of SIGTERM");
    let readyz = client.get("/readyz").await;
    assert!(
        readyz.text().contains("[-]shutdown failed"),
        "{}",
        readyz.text()
    );
    assert_eq!(client.get("/livez").await.status, 200, "still live");

    // Half-way through the delay: new connections are still accepted and requests answered.
    tokio::time::sleep((DELAY / 2).saturating_sub(term.elapsed())).await;
    assert!(
        term.elapsed() < DELAY - Duration::from_secs(1),
        "the test itself was too slow to check within the delay"
    );
    assert_eq!(
        retry_answer(&client).await,
        404,
        "a request routed during the delay is answered"
    );

    // After the delay the listener closes and the process exits.
    let mut closed_after = None;
    while term.elapsed() < DELAY + Duration::from_secs(20) {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            closed_after = Some(term.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let closed_after = closed_after.expect("the listener closed after the delay");
    assert!(
        closed_after >= DELAY / 2,
        "closed after {closed_after:?}, before the delay was over"
    );
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    eprintln!("readiness false after {unready_after:?}; listener closed after {closed_after:?} (delay {DELAY:?})");
}
