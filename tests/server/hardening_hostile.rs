//! Hostile traffic against a real `tekton-retry serve` process (run by `hack/hostile.sh`; ignored
//! in CI because it opens a thousand connections and takes a minute). Each attack runs against a
//! fresh process, and its peak resident memory (`VmHWM`) is printed:
//!
//! 1. 1,000 TLS connections presenting a ~60 KB client certificate chain and sending nothing;
//! 2. 300 requests, each with a distinct 1 MB `Authorization: Bearer` token (30 at a time);
//! 3. 100 HTTP/1 connections each trickling a 1.9 MB request head that never ends.
//!
//! Figures only: it asserts that the server answered and stayed up, not a memory level.

use tekton_retry_test_support::server as server_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use server_support::*;
use tekton_retry_pki::Ca;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Serve {
    child: tokio::process::Child,
    port: u16,
    serving_ca: Ca,
    _dir: tempfile::TempDir,
}

impl Serve {
    async fn start() -> Serve {
        let front = Ca::new("front-proxy-ca").expect("ca");
        let client = Ca::new("client-ca").expect("ca");
        let kube = FakeKube::new(auth_configmap(&front, &client, &[FRONT_PROXY_CN]));
        let api = kube.serve_http().await;
        let serving_ca = Ca::new("serving-ca").expect("ca");
        let s = serving_ca
            .issue_server(&["localhost", "127.0.0.1"])
            .expect("serving");
        let dir = tempfile::tempdir().expect("dir");
        let (cert, key, kc) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("kubeconfig"),
        );
        std::fs::write(&cert, &s.cert).expect("cert");
        std::fs::write(&key, &s.key).expect("key");
        std::fs::write(
            &kc,
            format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'http://{api}'}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"),
        )
        .expect("kubeconfig");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tekton-retry"))
            .arg("serve")
            .args(["--bind-address", "127.0.0.1"])
            .args(["--secure-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-private-key-file")
            .arg(&key)
            .arg("--kubeconfig")
            .arg(&kc)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn serve");
        let me = Serve {
            child,
            port,
            serving_ca,
            _dir: dir,
        };
        let probe = TestClient::new(
            ([127, 0, 0, 1], port).into(),
            &me.serving_ca.pem.cert,
            None,
            false,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = tokio::time::timeout(Duration::from_secs(2), async {
                tokio::net::TcpStream::connect(("127.0.0.1", port)).await
            })
            .await;
            if matches!(up, Ok(Ok(_))) && probe.get("/readyz").await.status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "serve did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        me
    }

    fn status_kib(&self, field: &str) -> u64 {
        let pid = self.child.id().expect("running");
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        text.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn tls_config(
        &self,
        cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
        alpn: &[u8],
    ) -> Arc<rustls::ClientConfig> {
        let b = trusting(&self.serving_ca.pem.cert);
        let mut c = match cert {
            Some((chain, key)) => b.with_client_auth_cert(chain, key).expect("client auth"),
            None => b.with_no_client_auth(),
        };
        c.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(c)
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A self-signed client certificate of about `bytes` (a large private extension).
fn big_client_cert(bytes: usize) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mallory");
    params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 55555, 1],
        vec![0x41; bytes],
    )];
    let cert = params.self_signed(&key).expect("cert");
    (
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

fn report(name: &str, baseline: u64, peak: u64, extra: &str) {
    println!(
        "hostile: {name}: baseline RSS {:.1} MiB, peak RSS {:.1} MiB{extra}",
        mib(baseline),
        mib(peak)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "hostile traffic; run by hack/hostile.sh"]
async fn idle_tls_connections_with_big_client_chains() {
    let mut serve = Serve::start().await;
    let baseline = serve.status_kib("VmRSS:");
    let (chain, key) = big_client_cert(60_000);
    println!(
        "hostile: client chain of {} bytes",
        chain.iter().map(|c| c.len()).sum::<usize>()
    );
    let config = serve.tls_config(Some((chain, key)), b"http/1.1");
    let mut conns = Vec::new();
    let mut refused = 0;
    let started = Instant::now();
    for _ in 0..1_000 {
        let tcp = match tokio::net::TcpStream::connect(("127.0.0.1", serve.port)).await {
            Ok(t) => t,
            Err(_) => {
                refused += 1;
                continue;
            }
        };
        let connector = tokio_rustls::TlsConnector::from(config.clone());
        match tokio::time::timeout(
            Duration::from_secs(10),
            connector.connect(ServerName::try_from("localhost").expect("name"), tcp),
        )
        .await
        {
            Ok(Ok(tls)) => conns.push(tls),
            _ => refused += 1,
        }
    }
    let opened = started.elapsed();
    let during = serve.status_kib("VmRSS:");
    // Idle past the first-request timeout (10 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut closed = 0;
    for c in conns.iter_mut() {
        let mut b = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(20), c.read(&mut b)).await
        {
            closed += 1;
        }
    }
    let peak = serve.status_kib("VmHWM:");
    report(
        "1,000 idle TLS connections with 60 KB client chains",
        baseline,
        peak,
        &format!(
            " (RSS {:.1} MiB with all open; {} handshakes in {:.1}s, {refused} refused; {closed} of {} closed by the server 12 s later)",
            mib(during),
            conns.len(),
            opened.as_secs_f64(),
            conns.len()
        ),
    );
    assert!(serve.alive(), "serve survived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "hostile traffic; run by hack/hostile.sh"]
async fn many_huge_bearer_tokens() {
    let mut serve = Serve::start().await;
    let baseline = serve.status_kib("VmRSS:");
    let client = Arc::new(TestClient::new(
        ([127, 0, 0, 1], serve.port).into(),
        &serve.serving_ca.pem.cert,
        None,
        false,
    ));
    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(30));
    let mut tasks = Vec::new();
    for i in 0..300 {
        let client = client.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.expect("sem");
            let token = format!("{i:06}{}", "t".repeat(1_000_000 - 6));
            let req = http::Request::get("/apis")
                .header("authorization", format!("Bearer {token}"))
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .expect("req");
            client.send(req).await.status.as_u16()
        }));
    }
    let mut codes = std::collections::BTreeMap::new();
    for t in tasks {
        *codes.entry(t.await.expect("task")).or_insert(0) += 1;
    }
    let took = started.elapsed();
    let after = serve.status_kib("VmRSS:");
    let peak = serve.status_kib("VmHWM:");
    report(
        "300 requests with distinct 1 MB bearer tokens",
        baseline,
        peak,
        &format!(
            " (answers {codes:?} in {:.1}s; RSS {:.1} MiB after)",
            took.as_secs_f64(),
            mib(after)
        ),
    );
    assert_eq!(codes.get(&401), Some(&300), "every request is a 401");
    assert!(serve.alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "hostile traffic; run by hack/hostile.sh"]
async fn slow_huge_request_heads() {
    let mut serve = Serve::start().await;
    let baseline = serve.status_kib("VmRSS:");
    let config = serve.tls_config(None, b"http/1.1");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let config = config.clone();
        let port = serve.port;
        tasks.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            let mut tls = tokio_rustls::TlsConnector::from(config)
                .connect(ServerName::try_from("localhost").expect("name"), tcp)
                .await
                .expect("handshake");
            let _ = tls
                .write_all(b"GET /apis HTTP/1.1\r\nhost: localhost\r\nx-junk: ")
                .await;
            // 1.9 MB in 16 KiB pieces, one every 50 ms (~6 s), never ending the head.
            let chunk = vec![b'a'; 16 * 1024];
            let mut sent = 0usize;
            while sent < 1_900_000 {
                let w = tokio::time::timeout(Duration::from_secs(15), tls.write_all(&chunk)).await;
                if !matches!(w, Ok(Ok(()))) {
                    break;
                }
                sent += chunk.len();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut out)).await;
            let answer = String::from_utf8_lossy(&out)
                .lines()
                .next()
                .unwrap_or("(closed without an answer)")
                .to_string();
            (sent, answer)
        }));
    }
    let mut answers = std::collections::BTreeMap::new();
    let mut max_sent = 0;
    for t in tasks {
        let (sent, answer) = t.await.expect("task");
        max_sent = max_sent.max(sent);
        *answers.entry(answer).or_insert(0) += 1;
    }
    let peak = serve.status_kib("VmHWM:");
    report(
        "100 slow 1.9 MB request heads",
        baseline,
        peak,
        &format!(
            " (at most {max_sent} bytes accepted from one client; answers {answers:?}; {:.1}s)",
            started.elapsed().as_secs_f64()
        ),
    );
    assert!(serve.alive());
}
