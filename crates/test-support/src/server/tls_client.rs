//! A TLS client for the server under test: one connection per request, optional client
//! certificate and HTTP/2, answers read whole.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tekton_retry_pki::CertPem;

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The header `name` as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        super::header(&self.headers, name)
    }
    /// Asserts the HTTP code (the body shown if not); returns the answer.
    pub fn assert_code(&self, code: u16) -> &Self {
        assert_eq!(self.status.as_u16(), code, "{}", self.text());
        self
    }
    /// Asserts a `metav1.Status` with this code and reason; returns its message.
    pub fn expect_status(&self, code: u16, reason: &str) -> String {
        self.assert_code(code);
        assert_eq!(self.header("content-type"), Some("application/json"));
        let s: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status =
            serde_json::from_slice(&self.body).expect("a metav1.Status");
        assert_eq!(s.code, Some(code as i32));
        assert_eq!(s.reason.as_deref(), Some(reason));
        assert_eq!(s.status.as_deref(), Some("Failure"));
        s.message.unwrap_or_default()
    }
}

/// A rustls client configuration (ring, safe default versions) trusting the CAs in `ca_pem`, before
/// its client authentication is chosen.
pub fn trusting(
    ca_pem: &str,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.expect("ca")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
}

/// An HTTP/2 connection of a [`TestClient`], sending bodies of type `B`.
pub type H2Connection<B> = hyper::client::conn::http2::Connection<
    TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    B,
    TokioExecutor,
>;

/// A TLS client opening one connection per request.
pub struct TestClient {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    pub http2: bool,
}

impl TestClient {
    pub fn new(addr: SocketAddr, ca_pem: &str, cert: Option<&CertPem>, http2: bool) -> Self {
        let builder = trusting(ca_pem);
        let mut config = match cert {
            Some(c) => {
                let chain: Vec<CertificateDer<'static>> =
                    rustls_pemfile::certs(&mut c.cert.as_bytes())
                        .collect::<Result<_, _>>()
                        .expect("chain");
                let key = rustls_pemfile::private_key(&mut c.key.as_bytes())
                    .expect("key")
                    .expect("a key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        TestClient {
            addr,
            config: Arc::new(config),
            http2,
        }
    }

    /// A new connection speaking HTTP/2 (the client must be made for h2): its request sender, and
    /// the connection, which the caller drives (spawns or awaits).
    pub async fn h2_handshake<B>(
        &self,
    ) -> (hyper::client::conn::http2::SendRequest<B>, H2Connection<B>)
    where
        B: http_body::Body + Unpin + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let io = TokioIo::new(self.connect().await);
        hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2")
    }

    /// A new TLS connection to the server (ALPN as the client was made).
    pub async fn connect(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake")
    }

    /// The server's certificate chain as seen in a fresh handshake.
    pub async fn peer_certificate(&self) -> Vec<CertificateDer<'static>> {
        let tls = self.connect().await;
        tls.get_ref().1.peer_certificates().expect("certs").to_vec()
    }

    /// Sends `req` (path-only URI is fine) on a new connection.
    pub async fn send<B>(&self, mut req: Request<B>) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tls = self.connect().await;
        let io = TokioIo::new(tls);
        let authority = format!("localhost:{}", self.addr.port());
        let uri: http::Uri = format!("https://{authority}{}", req.uri())
            .parse()
            .expect("uri");
        *req.uri_mut() = uri;
        let resp = if self.http2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .expect("h2 handshake");
            tokio::spawn(conn);
            sender.send_request(req).await.expect("response")
        } else {
            req.headers_mut()
                .insert("host", authority.parse().expect("host"));
            *req.uri_mut() = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .parse()
                .expect("uri");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("h1 handshake");
            tokio::spawn(conn);
            sender.send_request(req).await.expect("response")
        };
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
            version: parts.version,
        }
    }

    /// Writes raw bytes on a new TLS connection and returns what comes back until the server
    /// closes it (or 10 s pass).
    pub async fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let mut tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        tls.write_all(bytes).await.expect("write");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
        out
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(
            Request::get(path)
                .body(Full::new(Bytes::new()))
                .expect("req"),
        )
        .await
    }

    /// POST to the retry route with `headers` and `body`.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut b = Request::post(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(
            b.body(Full::new(Bytes::from(body.to_string())))
                .expect("req"),
        )
        .await
    }
}
