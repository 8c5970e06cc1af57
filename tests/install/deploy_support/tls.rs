//! A TLS handshake with the certificates from `hack/gen-certs.sh`, as kube-apiserver makes it: the
//! client trusts only the APIService caBundle (`ca.crt`) and dials `tekton-retry.tekton-retry.svc`.
//!
//! [`start_server`] starts the real server loaded with `tls.crt`/`tls.key`; [`get_over_tls`] speaks
//! plain HTTP/1.1 (`GET /livez`) the way a probe does.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &Path) -> Vec<CertificateDer<'static>> {
    let mut rd = io::BufReader::new(std::fs::File::open(pem).expect("open certificate"));
    rustls_pemfile::certs(&mut rd)
        .collect::<Result<_, _>>()
        .expect("parse certificate PEM")
}

/// Starts the real retry server (`tekton_retry::server::Server`, as `tekton-retry serve` does) on
/// 127.0.0.1 with the given serving certificate and key files. Its Kubernetes API is unreachable,
/// which `/livez` does not need. Runs until the handle is dropped with the test's runtime.
pub async fn start_server(cert: &Path, key_file: &Path) -> tekton_retry::server::ServerHandle {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new("https://127.0.0.1:1".parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    let opts = tekton_retry::server::ServerOptions::new(
        client.clone(),
        tekton_retry::server::TlsSource::Files {
            cert: cert.to_path_buf(),
            key: key_file.to_path_buf(),
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    let engine = tekton_retry::retry::Engine::new(client, Default::default());
    let handle = tekton_retry::server::Server::start(
        opts,
        Arc::new(engine),
        Arc::new(tekton_retry::server::metrics::Metrics::new()),
    )
    .await
    .expect("the server starts with the generated certificate");
    handle
}

/// Connects to `addr` over TLS trusting only the CA certificates in `ca_pem`, verifying the server
/// as `server_name`, sends `GET path`, and returns the raw HTTP response. The error is the
/// handshake's (or the connection's) failure.
pub async fn get_over_tls(
    addr: SocketAddr,
    ca_pem: &Path,
    server_name: &str,
    path: &str,
) -> io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs(ca_pem) {
        roots
            .add(ca)
            .expect("CA certificate is usable as a trust anchor");
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = connector.connect(name, tcp).await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: {server_name}\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}
