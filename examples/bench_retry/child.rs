//! The real `tekton-retry serve` binary as a child process against the sandbox's API emulator,
//! so that its memory is its own (the bench process also holds the emulator and the simulator).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use tekton_retry_pki::Ca;
use tekton_retry_sandbox::emulator::aggregator::backend_pool::connect_http1;
use tekton_retry_sandbox::policy::server_user;
use tekton_retry_sandbox::Sandbox;

/// A running `serve` process.
pub struct ServeProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub ca_pem: String,
    /// From spawning the process (the API already reachable) to `/readyz` answering 200.
    pub ready_after: Duration,
    _dir: tempfile::TempDir,
}

impl ServeProcess {
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `tekton-retry` binary next to this example (`target/<profile>/tekton-retry`).
pub fn default_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("tekton-retry");
    bin.is_file().then_some(bin)
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Starts `bin serve` with the server's identity against `sb`'s emulator, pinned to `cpu` with
/// `taskset` when given, and waits until `/readyz` passes.
pub async fn start(
    sb: &Sandbox,
    bin: &Path,
    cpu: Option<usize>,
    max_concurrent_retries: usize,
    log: &Path,
) -> anyhow::Result<ServeProcess> {
    let dir = tempfile::tempdir()?;
    let ca = Ca::new("bench-serving-ca")?;
    let serving = ca.issue_server(&["127.0.0.1", "localhost"])?;
    let (cert, key, kubeconfig) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("kubeconfig"),
    );
    std::fs::write(&cert, &serving.cert)?;
    std::fs::write(&key, &serving.key)?;
    std::fs::write(
        &kubeconfig,
        sb.emulator.kubeconfig_yaml(&server_user().username)?,
    )?;
    let port = free_port()?;
    let mut cmd = match cpu {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.arg("-c").arg(c.to_string()).arg(bin);
            t
        }
        None => Command::new(bin),
    };
    cmd.arg("serve")
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-private-key-file")
        .arg(&key)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg(format!("--max-concurrent-retries={max_concurrent_retries}"))
        // One JSON object per line, so that the bench can read serve's own latency per request.
        .arg("--log-format=json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    let began = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut p = ServeProcess {
        child,
        addr,
        ca_pem: ca.pem.cert.clone(),
        ready_after: Duration::ZERO,
        _dir: dir,
    };
    let tls = no_client_cert(&p.ca_pem)?;
    loop {
        if ready(addr, tls.clone()).await {
            p.ready_after = began.elapsed();
            return Ok(p);
        }
        if let Some(status) = p.child.try_wait()? {
            bail!("serve exited with {status}; see {}", log.display());
        }
        if began.elapsed() > Duration::from_secs(30) {
            bail!("serve not ready after 30s; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn no_client_cert(ca_pem: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    ))
}

/// Whether `GET /readyz` answers 200 (health needs no authentication).
async fn ready(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> bool {
    let attempt = async {
        let mut sender = connect_http1(addr, &addr.ip().to_string(), tls)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        let req = Request::get("/readyz")
            .header(http::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())?;
        let resp = sender.send_request(req).await?;
        Ok::<bool, anyhow::Error>(resp.status() == http::StatusCode::OK)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Ok(true))
    )
}

/// `serve`'s own latency of each `POST …/pipelineruns/<name>/retry` in its access log (from the
/// request reaching its handler to the answer), by run name.
pub fn handler_latencies(log: &Path) -> std::collections::HashMap<String, Duration> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "tekton_retry::access" && v["verb"] == "create")
        .filter_map(|v| {
            let name = v["path"]
                .as_str()?
                .strip_suffix("/retry")?
                .rsplit('/')
                .next()?;
            let ms = v["latency_ms"].as_f64()?;
            Some((name.to_string(), Duration::from_secs_f64(ms / 1000.0)))
        })
        .collect()
}
