//! Keep-alive connections from the front proxy to the aggregated backend, as kube-aggregator's
//! proxy transport keeps them (`staging/src/k8s.io/kube-aggregator/pkg/apiserver/handler_proxy.go`
//! builds one `http.Transport` per APIService, which pools connections): a request reuses an idle
//! HTTP/1.1 connection when there is one instead of a new TCP connection and TLS handshake.
//!
//! Connections belong to one backend and one front-proxy identity ([`PoolKey`]): when either
//! changes (a new backend, a rotated client certificate) the idle connections are dropped, so the
//! backend always sees the current identity on the next request.

use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use crate::emulator::http::{Body, BoxError};

/// Idle connections kept at most.
const MAX_IDLE: usize = 64;

/// What a pooled connection was made for: backend URL, backend CA, the name verified and the
/// client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolKey {
    pub url: String,
    pub ca_pem: String,
    /// The name the backend's certificate must be valid for (sent as SNI).
    pub server_name: String,
    pub client_cert_pem: String,
}

struct State {
    key: Option<PoolKey>,
    config: Option<Arc<rustls::ClientConfig>>,
    idle: Vec<SendRequest<Body>>,
}

/// The pool. Counts new connections, for tests.
pub struct BackendPool {
    state: Mutex<State>,
    connects: std::sync::atomic::AtomicU64,
}

impl Default for BackendPool {
    fn default() -> Self {
        BackendPool {
            state: Mutex::new(State {
                key: None,
                config: None,
                idle: Vec::new(),
            }),
            connects: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl BackendPool {
    /// New TCP+TLS connections made so far.
    pub fn connects(&self) -> u64 {
        self.connects.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops every idle connection.
    pub fn clear(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.idle.clear();
        s.key = None;
        s.config = None;
    }

    /// Sends `req` to `host:port` over an idle connection of `key` or a new one; `config` builds
    /// the TLS client configuration when the key changed.
    pub async fn send(
        &self,
        key: &PoolKey,
        host: &str,
        port: u16,
        config: impl FnOnce() -> Result<Arc<rustls::ClientConfig>, BoxError>,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, BoxError> {
        let (cfg, idle) = self.checkout(key, config)?;
        let req = match idle {
            Some(mut sender) => match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.checkin(key, sender);
                    return Ok(resp);
                }
                // The connection closed under us before the request went out: use a new one.
                Err(mut e) => match e.take_message() {
                    Some(req) => req,
                    None => return Err(Box::new(e.into_error())),
                },
            },
            None => req,
        };
        let mut sender = self.connect(cfg, host, &key.server_name, port).await?;
        let resp = sender.send_request(req).await?;
        self.checkin(key, sender);
        Ok(resp)
    }

    fn checkout(
        &self,
        key: &PoolKey,
        config: impl FnOnce() -> Result<Arc<rustls::ClientConfig>, BoxError>,
    ) -> Result<(Arc<rustls::ClientConfig>, Option<SendRequest<Body>>), BoxError> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.key.as_ref() != Some(key) || s.config.is_none() {
            s.idle.clear();
            s.config = Some(config()?);
            s.key = Some(key.clone());
        }
        let cfg = s.config.clone().ok_or("no TLS configuration")?;
        s.idle.retain(|c| !c.is_closed());
        // A connection whose previous answer is still being read is not ready yet: skip it.
        let found = s.idle.iter().rposition(|c| c.is_ready());
        Ok((cfg, found.map(|i| s.idle.swap_remove(i))))
    }

    fn checkin(&self, key: &PoolKey, sender: SendRequest<Body>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.key.as_ref() == Some(key) && !sender.is_closed() && s.idle.len() < MAX_IDLE {
            s.idle.push(sender);
        }
    }

    async fn connect(
        &self,
        cfg: Arc<rustls::ClientConfig>,
        host: &str,
        server_name: &str,
        port: u16,
    ) -> Result<SendRequest<Body>, BoxError> {
        self.connects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        connect_http1((host, port), server_name, cfg).await
    }
}

/// An HTTP/1.1 client over a new TLS connection to `addr` (no Nagle delay), checking the server's
/// certificate against `server_name`; a spawned task drives the connection until it closes.
pub async fn connect_http1<B>(
    addr: impl tokio::net::ToSocketAddrs,
    server_name: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> Result<SendRequest<B>, BoxError>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}
