//! A TLS handshake with the certificates from `hack/gen-certs.sh`, as kube-apiserver makes it: the
//! client trusts only the APIService caBundle (`ca.crt`) and dials `tekton-retry.tekton-retry.svc`.
//!
//! [`start_server`] is a stand-in HTTPS server loaded with `tls.crt`/`tls.key`. To test the real
//! server instead, make it start `tekton-retry serve --tls-cert-file CERT --tls-private-key-file KEY`
//! on a free port and return that address: [`get_over_tls`] speaks plain HTTP/1.1 (`GET /readyz`),
//! so the callers need no change.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &Path) -> Vec<CertificateDer<'static>> {
    let mut rd = io::BufReader::new(std::fs::File::open(pem).expect("open certificate"));
    rustls_pemfile::certs(&mut rd)
        .collect::<Result<_, _>>()
        .expect("parse certificate PEM")
}

fn key(pem: &Path) -> PrivateKeyDer<'static> {
    let mut rd = io::BufReader::new(std::fs::File::open(pem).expect("open key"));
    rustls_pemfile::private_key(&mut rd)
        .expect("parse key PEM")
        .expect("a private key in the PEM file")
}

/// Starts an HTTPS server on 127.0.0.1 with the given serving certificate and key; it answers
/// every request with `200 ok`. Runs until the test's runtime stops.
pub async fn start_server(cert: &Path, key_file: &Path) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs(cert), key(key_file))
        .expect("the serving certificate and key belong together");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A failed handshake is the client's to report.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = tls.write_all(reply).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
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
