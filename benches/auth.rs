//! The per-request authentication and authorization path of `serve` with a warm
//! SubjectAccessReview cache, and the whole request pipeline (`handler::handle`) without the
//! network: what every request through kube-apiserver's front proxy pays in the server.
//!
//! The authentication ConfigMap and the SubjectAccessReview come from the server tests' fake
//! Kubernetes API (`tekton-retry-test-support`), answered in-process; one review warms the cache before
//! timing, and the bench checks that no further review is made while it runs.

use tekton_retry_test_support::server as server_support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::Full;
use rustls::pki_types::CertificateDer;
use server_support::{auth_configmap, success, FakeKube, FRONT_PROXY_CN};
use tekton_retry::api::{ApiError, PipelineRunRetry};
use tekton_retry::retry::{RetryRequest, RetryService};
use tekton_retry::server::authn::{authenticate_certificate, AuthConfig, AuthState, Authenticator};
use tekton_retry::server::authz::{Attributes, Authorizer};
use tekton_retry::server::handler::{self, ConnInfo, Shared};
use tekton_retry::server::health::Health;
use tekton_retry::server::Metrics;
use tekton_retry_pki::Ca;

const RETRY_PATH: &str =
    "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/demo-failed/retry";

/// An engine that answers at once (the engine is not what is measured here).
struct Instant;

impl RetryService for Instant {
    fn retry(&self, req: RetryRequest) -> BoxFuture<'static, Result<PipelineRunRetry, ApiError>> {
        Box::pin(async move { Ok(success(&req)) })
    }

    fn history(
        &self,
        _namespace: String,
        name: String,
        _audit_id: Option<String>,
    ) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        Box::pin(async move { Err(ApiError::not_found(format!("{name}: not measured here"))) })
    }
}

fn der_chain(pem: &str) -> Vec<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .map(|c| c.expect("pem"))
        .collect()
}

/// The headers kube-apiserver's front proxy adds for a user.
fn front_proxy_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-remote-user", HeaderValue::from_static("alice"));
    h.append("x-remote-group", HeaderValue::from_static("dev"));
    h.append(
        "x-remote-group",
        HeaderValue::from_static("system:authenticated"),
    );
    h.insert(
        "x-remote-extra-scopes",
        HeaderValue::from_static("retry-runs"),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(
        "audit-id",
        HeaderValue::from_static("6d1a4c07-8d84-4b2e-9a56-0f3ad1a1f7a1"),
    );
    h
}

fn request(method: &str, path: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(Bytes::from_static(body)))
        .expect("request");
    *r.headers_mut() = front_proxy_headers();
    r
}

fn bench_auth(c: &mut Criterion) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    // kube clients start their buffer task on creation.
    let _enter = rt.enter();
    let front_ca = Ca::new("front-proxy-ca").expect("ca");
    let client_ca = Ca::new("client-ca").expect("ca");
    let data = auth_configmap(&front_ca, &client_ca, &[FRONT_PROXY_CN]);
    let kube = FakeKube::new(data.clone());
    let config = AuthConfig::from_configmap_data(&data).expect("config");
    let front = der_chain(
        &front_ca
            .issue_client(FRONT_PROXY_CN, &[])
            .expect("cert")
            .cert,
    );
    let direct = der_chain(&client_ca.issue_client("bob", &["dev"]).expect("cert").cert);
    let headers = front_proxy_headers();

    let mut group = c.benchmark_group("auth");
    group.bench_function("authn/requestheader", |b| {
        b.iter(|| authenticate_certificate(&config, black_box(&front), black_box(&headers)))
    });
    group.bench_function("authn/client_cert", |b| {
        b.iter(|| {
            authenticate_certificate(&config, black_box(&direct), black_box(&HeaderMap::new()))
        })
    });

    let state = Arc::new(AuthState::default());
    state.set(config.clone());
    let metrics = Arc::new(Metrics::new());
    let authn = Authenticator::new(state.clone(), kube.client(), Duration::from_secs(60));
    // A TTL far beyond the bench's duration: every timed call is a cache hit.
    let authz = Authorizer::new(kube.client(), Duration::from_secs(3600), metrics.clone());
    let attrs = Attributes::retry("demo", "demo-failed");
    let audit = "6d1a4c07-8d84-4b2e-9a56-0f3ad1a1f7a1";
    let (user, _) = rt
        .block_on(authn.authenticate(&front, &headers))
        .expect("the front proxy's user");
    rt.block_on(authz.authorize(&user, &attrs, audit))
        .expect("allowed");
    let reviews = kube.sar_calls().len();
    group.bench_function("authn+authz/warm", |b| {
        b.to_async(&rt).iter(|| async {
            let (user, _) = authn
                .authenticate(black_box(&front), black_box(&headers))
                .await
                .expect("user");
            authz
                .authorize(&user, &attrs, audit)
                .await
                .expect("allowed");
        })
    });

    let shared = Arc::new(Shared {
        authn,
        authz,
        retry: Arc::new(Instant),
        metrics,
        health: Arc::new(Health::new(state, Duration::from_secs(300))),
        request_timeout: Duration::from_secs(60),
        in_flight: tokio::sync::Semaphore::new(400),
    });
    let conn = Arc::new(ConnInfo {
        peer_certs: front.clone(),
        http2: false,
    });
    group.bench_function("handle/discovery", |b| {
        b.to_async(&rt).iter(|| {
            let req = request("GET", "/apis/retry.tekton.dev/v1alpha1", b"");
            handler::handle(shared.clone(), conn.clone(), req)
        })
    });
    group.bench_function("handle/retry", |b| {
        b.to_async(&rt).iter(|| {
            let req = request("POST", RETRY_PATH, br#"{"spec":{"reason":"flaky"}}"#);
            handler::handle(shared.clone(), conn.clone(), req)
        })
    });
    group.finish();
    let resp = rt.block_on(handler::handle(
        shared.clone(),
        conn.clone(),
        request("POST", RETRY_PATH, b"{}"),
    ));
    assert_eq!(resp.status().as_u16(), 201, "the retry route answered");
    assert_eq!(
        kube.sar_calls().len(),
        reviews,
        "the timed requests hit the SubjectAccessReview cache"
    );
}

criterion_group!(benches, bench_auth);
criterion_main!(benches);
