//! Rotation without restart: the CAs in the authentication ConfigMap and the serving certificate
//! on disk (mounted like a Secret: files behind a `..data` symlink that is swapped atomically).

use tekton_retry_test_support::server as server_support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use server_support::*;
use tekton_retry::server::TlsSource;
use tekton_retry_pki::{Ca, CertPem};

#[tokio::test]
async fn rotated_cas_in_the_configmap_take_effect() {
    let mut h = Harness::start().await;
    let path = retry_path("demo", "demo-failed");
    let hdr = [("X-Remote-User", "alice")];
    let old_proxy = h.front_proxy();
    assert_eq!(old_proxy.post(&path, &hdr, "").await.status, 201);
    let old_user = h.client_ca.issue_client("bob", &[]).expect("cert");
    assert_eq!(
        h.client(Some(&old_user)).post(&path, &[], "").await.status,
        201
    );

    let new_front = Ca::new("front-proxy-ca-2").expect("ca");
    let new_client = Ca::new("client-ca-2").expect("ca");
    h.kube
        .set_configmap(auth_configmap(&new_front, &new_client, &[FRONT_PROXY_CN]));
    let new_proxy_cert = new_front.issue_client(FRONT_PROXY_CN, &[]).expect("cert");
    let new_proxy = h.client(Some(&new_proxy_cert));
    let mut ok = false;
    for _ in 0..600 {
        if new_proxy.post(&path, &hdr, "").await.status == 201 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the new requestheader CA is trusted without restart");
    old_proxy
        .post(&path, &hdr, "")
        .await
        .expect_status(401, "Unauthorized");
    h.client(Some(&old_user))
        .post(&path, &[], "")
        .await
        .expect_status(401, "Unauthorized");
    let new_user = new_client.issue_client("bob", &[]).expect("cert");
    assert_eq!(
        h.client(Some(&new_user)).post(&path, &[], "").await.status,
        201
    );

    // The TLS CertificateRequest now advertises the new CAs (Go clients pick their certificate by it).
    let hints = handshake_hints(&h, &new_user).await;
    let subject_of = |ca: &Ca| {
        let der = rustls_pemfile::certs(&mut ca.pem.cert.as_bytes())
            .next()
            .expect("pem")
            .expect("der");
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).expect("x509");
        cert.subject().as_raw().to_vec()
    };
    assert!(
        hints.contains(&subject_of(&new_front)),
        "requestheader CA advertised"
    );
    assert!(
        hints.contains(&subject_of(&new_client)),
        "client CA advertised"
    );
    assert!(
        !hints.contains(&subject_of(&h.front_ca)),
        "the old CA is no longer advertised"
    );
    h.shutdown().await;
}

/// Records the CA subjects the server advertises and presents `cert`.
#[derive(Debug)]
struct RecordingResolver {
    key: Arc<CertifiedKey>,
    hints: Mutex<Vec<Vec<u8>>>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        *self.hints.lock().expect("lock") = root_hint_subjects.iter().map(|s| s.to_vec()).collect();
        Some(self.key.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

async fn handshake_hints(h: &Harness, cert: &CertPem) -> Vec<Vec<u8>> {
    let key = tekton_retry::server::tls::certified_key(cert.cert.as_bytes(), cert.key.as_bytes())
        .expect("key");
    let resolver = Arc::new(RecordingResolver {
        key,
        hints: Mutex::new(Vec::new()),
    });
    let config = trusting(&h.serving_ca.pem.cert).with_client_cert_resolver(resolver.clone());
    let tcp = tokio::net::TcpStream::connect(h.addr)
        .await
        .expect("connect");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").expect("name"),
            tcp,
        )
        .await
        .expect("handshake");
    // TLS 1.3 sends the CertificateRequest before the handshake completes on the client side.
    use tokio::io::AsyncWriteExt;
    let _ = tls
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let hints = resolver.hints.lock().expect("lock").clone();
    hints
}

/// Writes `pair` as a new timestamped directory and points `..data` at it, like the kubelet.
fn secret_mount_write(dir: &Path, generation: u32, pair: &CertPem) {
    let ts = dir.join(format!("..2026_11_26_{generation:02}"));
    std::fs::create_dir(&ts).expect("mkdir");
    std::fs::write(ts.join("tls.crt"), &pair.cert).expect("write");
    std::fs::write(ts.join("tls.key"), &pair.key).expect("write");
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(ts.file_name().expect("name"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap");
    for f in ["tls.crt", "tls.key"] {
        let link = dir.join(f);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{f}"), &link).expect("symlink");
        }
    }
}

fn der(pem: &str) -> CertificateDer<'static> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .expect("pem")
        .expect("der")
}

#[tokio::test]
async fn serving_certificate_rotated_on_disk_is_served_without_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The harness makes its own serving CA; issue both certificates from one CA of ours and trust it.
    let ca = Ca::new("serving-ca").expect("ca");
    let first = ca.issue_server(&["localhost", "127.0.0.1"]).expect("cert");
    secret_mount_write(dir.path(), 1, &first);
    let knobs = Knobs {
        tls: Some(TlsSource::Files {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        }),
        // Long enough that only the directory watch can explain a prompt reload.
        tls_recheck: Duration::from_secs(3600),
        ..Knobs::default()
    };
    let mut h = Harness::start_with(knobs).await;
    let client = TestClient::new(h.addr, &ca.pem.cert, None, false);
    assert_eq!(client.peer_certificate().await[0], der(&first.cert));

    // A half-written update (certificate without a matching key) is not served: once the
    // reloader has looked at it (it counts the pair invalid), the first certificate still is.
    let scraper = h.client_ca.issue_client("scraper", &[]).expect("cert");
    let scraper = TestClient::new(h.addr, &ca.pem.cert, Some(&scraper), false);
    let reloads = |result: &str| {
        format!("tekton_retry_serving_certificate_reloads_total{{result=\"{result}\"}}")
    };
    let broken = CertPem {
        cert: ca.issue_server(&["localhost"]).expect("cert").cert,
        key: first.key.clone(),
    };
    secret_mount_write(dir.path(), 2, &broken);
    let mut metrics = String::new();
    for _ in 0..600 {
        metrics = scraper.get("/metrics").await.text();
        if metrics.contains(&reloads("invalid")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics.contains(&reloads("invalid")), "{metrics}");
    assert!(!metrics.contains(&reloads("reloaded")), "{metrics}");
    assert_eq!(
        client.peer_certificate().await[0],
        der(&first.cert),
        "a mismatched pair is ignored"
    );
    assert_eq!(client.get("/livez").await.status, 200);

    let second = ca.issue_server(&["localhost", "127.0.0.1"]).expect("cert");
    secret_mount_write(dir.path(), 3, &second);
    let mut served = Vec::new();
    for _ in 0..600 {
        served = client.peer_certificate().await;
        if served[0] == der(&second.cert) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        served[0],
        der(&second.cert),
        "a new handshake sees the rotated certificate"
    );
    assert_eq!(client.get("/livez").await.status, 200);
    let metrics = scraper.get("/metrics").await.text();
    assert!(
        metrics.contains(&format!("{} 1", reloads("reloaded"))),
        "{metrics}"
    );
    h.shutdown().await;
}
