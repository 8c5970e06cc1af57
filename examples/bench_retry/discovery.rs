//! Keep-alive load on `GET /apis/retry.tekton.dev/v1alpha1` straight at the retry server (no
//! front proxy): a few HTTP/1.1 connections over TLS with a client certificate, each sending its
//! next request as soon as the previous answer is read.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use tekton_retry_pki::CertPem;
use tekton_retry_sandbox::emulator::aggregator::backend_pool::connect_http1;

pub const PATH: &str = "/apis/retry.tekton.dev/v1alpha1";

/// What the load found.
pub struct Report {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

/// A TLS client configuration trusting `ca_pem` and presenting `client`.
pub fn tls_config(ca_pem: &str, client: &CertPem) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c?)?;
    }
    let chain: Vec<_> =
        rustls_pemfile::certs(&mut client.cert.as_bytes()).collect::<Result<_, _>>()?;
    let key = rustls_pemfile::private_key(&mut client.key.as_bytes())?
        .context("no private key in the client certificate")?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> anyhow::Result<Sender> {
    connect_http1(addr, &addr.ip().to_string(), tls)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}

async fn one(sender: &mut Sender, host: &str) -> anyhow::Result<()> {
    sender.ready().await?;
    let req = Request::get(PATH)
        .header(http::header::HOST, host)
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::new())?;
    let resp = sender.send_request(req).await?;
    let ok = resp.status() == http::StatusCode::OK;
    let body = resp.into_body().collect().await?.to_bytes();
    anyhow::ensure!(ok && !body.is_empty(), "unexpected answer");
    Ok(())
}

/// `total` requests over `connections` keep-alive connections (at most `limit` long).
pub async fn run(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    connections: usize,
    total: usize,
    limit: Duration,
) -> anyhow::Result<Report> {
    let host = addr.to_string();
    let mut senders = Vec::new();
    for _ in 0..connections.max(1) {
        let mut s = connect(addr, tls.clone()).await?;
        one(&mut s, &host).await.context("warm-up request")?;
        senders.push(s);
    }
    let left = Arc::new(AtomicUsize::new(total));
    let errors = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let deadline = began + limit;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut s| {
            let left = left.clone();
            let errors = errors.clone();
            let host = host.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(total / connections.max(1) + 1);
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let t = Instant::now();
                    match one(&mut s, &host).await {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    if Instant::now() > deadline {
                        break;
                    }
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    Ok(Report {
        requests: latencies.len(),
        errors: errors.load(Ordering::Relaxed),
        elapsed: began.elapsed(),
        latencies,
    })
}
