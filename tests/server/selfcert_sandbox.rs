//! `serve` without certificate files and without cert-manager, in the sandbox: it makes its CA and
//! serving certificate in a Secret, keeps its APIService `caBundle` current, the front proxy
//! verifies it with that `caBundle` only (and the name `tekton-retry.tekton-retry.svc`), a rotation
//! with a short validity passes without a failed request, and two replicas started at once agree
//! on one CA.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::{CertificateDer, ServerName};
use sandbox_support::{quick_engine, start_with};
use serde_json::Value;
use tekton_retry::api::APISERVICE_NAME;
use tekton_retry::rbac::CERT_SECRET;
use tekton_retry::server::selfcert::{material, CertMetrics, SelfCert};
use tekton_retry_sandbox::emulator::{Emulator, EmulatorOptions, Gvr};
use tekton_retry_sandbox::faults::{FaultAction, FaultRule, Trigger};
use tekton_retry_sandbox::{Sandbox, SandboxOptions, APISERVICE_YAML};

const NAMESPACE: &str = "tekton-retry";
const SERVICE_DNS: &str = "tekton-retry.tekton-retry.svc";

fn b64(v: &Value) -> String {
    let text = v.as_str().unwrap_or_else(|| panic!("not base64 text: {v}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64");
    String::from_utf8(bytes).expect("PEM is UTF-8")
}

fn secret_data(emu: &Emulator, key: &str) -> String {
    let s = emu
        .store()
        .get(&Gvr::secrets(), NAMESPACE, CERT_SECRET)
        .expect("the certificate Secret exists");
    b64(&s["data"][key])
}

fn apiservice_bundle(emu: &Emulator) -> Option<String> {
    let a = emu
        .store()
        .get(&Gvr::apiservices(), "", APISERVICE_NAME)
        .expect("the APIService exists");
    a["spec"].get("caBundle").map(b64)
}

fn ders(pem: &str) -> Vec<Vec<u8>> {
    material::pem_blocks(pem, "pem").expect("PEM")
}

/// A new TLS connection to `addr` trusting only `ca_pem`, verifying `name`, as the aggregator
/// dials: the leaf the server presented, or the handshake error.
async fn handshake(addr: SocketAddr, ca_pem: &str, name: &str) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for der in ders(ca_pem) {
        roots
            .add(CertificateDer::from(der))
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .ok_or("no peer certificate")?;
    Ok(leaf)
}

fn signed_by(leaf_der: &[u8], ca_pem: &str) -> bool {
    let leaf = material::info_der(leaf_der.to_vec(), "leaf").expect("leaf parses");
    let ca = material::info(ca_pem, "ca").expect("ca parses");
    material::signed_by(&leaf, &ca)
}

/// Discovery of the aggregated group through the front door (front proxy → serve).
async fn through_front_proxy(client: &kube::Client) -> Result<(), String> {
    let req = http::Request::get(format!("/apis/{}", APISERVICE_NAME_GV))
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let text = client.request_text(req).await.map_err(|e| e.to_string())?;
    if text.contains("\"groupVersion\"") {
        Ok(())
    } else {
        Err(format!("unexpected discovery answer: {text}"))
    }
}

const APISERVICE_NAME_GV: &str = "retry.tekton.dev/v1alpha1";

async fn start(validity: Duration, propagation: Duration) -> Sandbox {
    start_with(SandboxOptions {
        seed: false,
        engine: quick_engine(),
        self_cert: Some(SandboxOptions::self_cert_options(
            validity,
            propagation,
            Duration::from_millis(200),
        )),
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_makes_its_certificate_and_the_front_proxy_trusts_only_the_ca_bundle() {
    let sb = start(Duration::from_secs(3600), Duration::from_secs(3)).await;
    let emu = &sb.emulator;
    let bundle = secret_data(emu, "ca-bundle.crt");
    let ca = secret_data(emu, "ca.crt");
    assert_eq!(ders(&bundle), ders(&ca), "one CA to begin with");
    assert_eq!(apiservice_bundle(emu).as_deref(), Some(bundle.as_str()));
    let leaf = material::info(&secret_data(emu, "tls.crt"), "tls.crt").expect("tls.crt");
    assert!(material::signed_by(
        &leaf,
        &material::info(&ca, "ca").expect("ca")
    ));
    assert!(leaf.dns_names.iter().any(|n| n == SERVICE_DNS));

    // The front proxy verifies with exactly the APIService caBundle and the Service's name.
    let (trusted, name) = emu.proxy().backend_trust().expect("a backend");
    assert_eq!(trusted, bundle);
    assert_eq!(name, SERVICE_DNS);
    let admin = sb.client("admin").expect("admin client");
    through_front_proxy(&admin)
        .await
        .expect("request via the front proxy");
    let addr: SocketAddr = sb
        .retry_url()
        .trim_start_matches("https://")
        .parse()
        .expect("addr");
    let served = handshake(addr, &bundle, SERVICE_DNS)
        .await
        .expect("the bundle verifies the server");
    assert!(signed_by(&served, &ca));
    // The verification can fail: another CA, or a name outside the certificate.
    let other = tekton_retry_pki::Ca::new("other").expect("ca");
    assert!(handshake(addr, &other.pem.cert, SERVICE_DNS).await.is_err());
    assert!(handshake(addr, &bundle, "tekton-retry.default.svc")
        .await
        .is_err());

    // A caBundle reset by hand is restored by the next sync; while it is missing the front proxy
    // finds the server unavailable rather than trusting anything.
    emu.store()
        .merge_patch(
            &Gvr::apiservices(),
            "",
            APISERVICE_NAME,
            serde_json::json!({"spec": {"caBundle": null}}),
        )
        .expect("clear caBundle");
    let a = emu.proxy().probe().await;
    assert!(!a.available, "no caBundle: unavailable ({})", a.message);
    assert!(a.message.contains("caBundle"), "{}", a.message);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while apiservice_bundle(emu).as_deref() != Some(bundle.as_str()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "caBundle not restored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(emu.wait_aggregated_available(Duration::from_secs(10)).await);
    sb.shutdown(Duration::from_secs(1)).await;
}

/// Counts of what the rotation loop saw.
#[derive(Debug, Default)]
struct Seen {
    proxied_ok: u64,
    proxied_failed: Vec<String>,
    handshakes_ok: u64,
    handshakes_failed: Vec<String>,
    max_bundle: usize,
    new_leaf_served: bool,
    old_ca_dropped: bool,
}

/// Runs requests through the front proxy and new handshakes with the proxy's current trust until
/// the CA rotated, the new certificate is served and the old CA left the bundle (or `limit`).
async fn watch_rotation(sb: &Sandbox, limit: Duration) -> Seen {
    let emu = &sb.emulator;
    let first_ca = secret_data(emu, "ca.crt");
    let admin = sb.client("admin").expect("admin client");
    let addr: SocketAddr = sb
        .retry_url()
        .trim_start_matches("https://")
        .parse()
        .expect("addr");
    let mut seen = Seen::default();
    let start = tokio::time::Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        match through_front_proxy(&admin).await {
            Ok(()) => seen.proxied_ok += 1,
            Err(e) => seen.proxied_failed.push(e),
        }
        // What a new connection of the front proxy would meet now.
        let (trusted, name) = emu.proxy().backend_trust().expect("backend");
        match handshake(addr, &trusted, &name).await {
            Ok(leaf) => {
                seen.handshakes_ok += 1;
                if !signed_by(&leaf, &first_ca) && !seen.new_leaf_served {
                    eprintln!(
                        "{:?}: new leaf served; proxy trusts {} CAs",
                        start.elapsed(),
                        ders(&trusted).len()
                    );
                    seen.new_leaf_served = true;
                }
            }
            Err(e) => seen.handshakes_failed.push(e),
        }
        if let Some(b) = apiservice_bundle(emu) {
            let cas = ders(&b);
            if cas.len() != seen.max_bundle {
                eprintln!(
                    "{:?}: APIService bundle {} CAs; proxy trusts {}",
                    start.elapsed(),
                    cas.len(),
                    ders(&trusted).len()
                );
            }
            seen.max_bundle = seen.max_bundle.max(cas.len());
            let first = ders(&first_ca);
            if seen.max_bundle >= 2 && !cas.contains(&first[0]) {
                seen.old_ca_dropped = true;
            }
        }
        if seen.new_leaf_served && seen.old_ca_dropped {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_certificate_rotates_without_a_failed_request() {
    // The front proxy re-reads the APIService every 2 s (its probe interval), so a new CA must
    // be in the caBundle longer than that before it signs the served certificate.
    let validity = Duration::from_secs(15);
    let sb = start(validity, Duration::from_secs(3)).await;
    let seen = watch_rotation(&sb, validity + Duration::from_secs(10)).await;
    eprintln!(
        "rotation: {} proxied requests, {} new handshakes, bundle up to {} CAs",
        seen.proxied_ok, seen.handshakes_ok, seen.max_bundle
    );
    assert!(
        seen.max_bundle >= 2,
        "old and new CA trusted together: {seen:?}"
    );
    assert!(
        seen.new_leaf_served,
        "the new certificate was served: {seen:?}"
    );
    assert!(
        seen.old_ca_dropped,
        "the expired CA left the bundle: {seen:?}"
    );
    assert!(
        seen.proxied_failed.is_empty(),
        "requests through the front proxy failed: {:?}",
        seen.proxied_failed
    );
    assert!(
        seen.handshakes_failed.is_empty(),
        "new connections with the front proxy's trust failed: {:?}",
        seen.handshakes_failed
    );
    assert!(seen.proxied_ok > 20 && seen.handshakes_ok > 20, "{seen:?}");
    sb.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_started_at_once_agree_on_one_ca() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = Emulator::start(EmulatorOptions::default())
        .await
        .expect("emulator");
    let apisvc: Value = serde_yaml::from_str(APISERVICE_YAML).expect("apiservice.yaml");
    emu.store()
        .create(&Gvr::apiservices(), apisvc)
        .expect("APIService");
    // Hold the first two creates of the Secret back a little, so that both replicas read "no
    // Secret" and both try to create it.
    emu.faults().add(
        FaultRule::new(
            "create",
            "secrets",
            FaultAction::Latency(Duration::from_millis(300)),
        )
        .trigger(Trigger::FirstN(2)),
    );
    let opts = SandboxOptions::self_cert_options(
        Duration::from_secs(3600),
        Duration::from_secs(1),
        Duration::from_millis(200),
    );
    let start_one = || {
        let client =
            kube::Client::try_from(emu.server_kube_config().expect("config")).expect("client");
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let opts = opts.clone();
        async move {
            let r = SelfCert::start(
                client,
                opts,
                CertMetrics::default(),
                Duration::from_secs(20),
                rx,
            )
            .await;
            (r, _tx)
        }
    };
    let ((a, _ta), (b, _tb)) = tokio::join!(start_one(), start_one());
    let (a, b) = (a.expect("replica a"), b.expect("replica b"));
    assert_eq!(
        emu.faults().count("create", "secrets"),
        2,
        "both replicas tried to create the Secret"
    );
    let ca = secret_data(&emu, "ca.crt");
    for (replica, cert) in [("a", &a), ("b", &b)] {
        let (leaf_pem, _) = cert.serving.borrow().clone();
        let leaf = material::info(&String::from_utf8_lossy(&leaf_pem), "leaf").expect("leaf");
        assert!(
            material::signed_by(&leaf, &material::info(&ca, "ca").expect("ca")),
            "replica {replica} serves a certificate of the Secret's CA"
        );
        assert_eq!(*cert.bundle.borrow(), secret_data(&emu, "ca-bundle.crt"));
    }
    assert_eq!(
        apiservice_bundle(&emu).as_deref(),
        Some(secret_data(&emu, "ca-bundle.crt").as_str())
    );
    assert_eq!(ders(&secret_data(&emu, "ca-bundle.crt")).len(), 1);
    a.task.abort();
    b.task.abort();
    emu.shutdown();
}
