//! Authentication and authorization of the server over real TLS, against a fake Kubernetes API at
//! the HTTP boundary. Threats that need the real policy and SubjectAccessReview (the decision
//! cache's key among them) are in `hardening_auth`; each threat has one test.

use tekton_retry_test_support::server as server_support;

use std::io::{Read, Write};
use std::time::Duration;

use server_support::*;
use tekton_retry::api::UserInfo;

fn proxied_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("X-Remote-User", "alice"),
        ("X-Remote-Group", "dev"),
        ("X-Remote-Group", "system:authenticated"),
        ("X-Remote-Extra-Acme.com%2Fproject", "p1"),
        ("X-Remote-Extra-Scopes", "view"),
        ("X-Remote-Extra-Scopes", "edit"),
        ("X-Remote-Uid", "uid-alice"),
    ]
}

#[tokio::test]
async fn front_proxy_user_reaches_the_handler() {
    let mut h = Harness::start().await;
    let a = h
        .front_proxy()
        .post(&retry_path("demo", "demo-failed"), &proxied_headers(), "")
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let calls = h.engine.calls();
    assert_eq!(calls.len(), 1);
    // Exactly the proxied identity: the extra key unescaped and lowercased, values in order.
    let mut alice = UserInfo::new("alice", &["dev", "system:authenticated"]);
    alice.uid = Some("uid-alice".into());
    alice.extra = [
        ("acme.com/project", vec!["p1"]),
        ("scopes", vec!["view", "edit"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(calls[0].user, alice);
    assert_eq!(
        (calls[0].namespace.as_str(), calls[0].name.as_str()),
        ("demo", "demo-failed")
    );
    // The SubjectAccessReview was for this user and the subresource.
    let sar = h.kube.sar_calls();
    assert_eq!(sar.len(), 1);
    assert_eq!(sar[0].user.as_deref(), Some("alice"));
    assert_eq!(sar[0].uid.as_deref(), Some("uid-alice"));
    assert_eq!(
        sar[0]
            .extra
            .as_ref()
            .and_then(|e| e.get("scopes"))
            .map(|v| v.len()),
        Some(2)
    );
    let ra = sar[0]
        .resource_attributes
        .clone()
        .expect("resource attributes");
    assert_eq!(ra.verb.as_deref(), Some("create"));
    assert_eq!(ra.group.as_deref(), Some("retry.tekton.dev"));
    assert_eq!(ra.resource.as_deref(), Some("pipelineruns"));
    assert_eq!(ra.subresource.as_deref(), Some("retry"));
    assert_eq!(ra.namespace.as_deref(), Some("demo"));
    assert_eq!(ra.name.as_deref(), Some("demo-failed"));
    h.shutdown().await;
}

#[tokio::test]
async fn forged_remote_user_is_ignored() {
    let mut h = Harness::start().await;
    let forged = [
        ("X-Remote-User", "admin"),
        ("X-Remote-Group", "system:masters"),
    ];
    let path = retry_path("demo", "demo-failed");
    // No client certificate.
    h.client(None)
        .post(&path, &forged, "")
        .await
        .expect_status(401, "Unauthorized");
    // A certificate with the allowed CN from another CA.
    let other = tekton_retry_pki::Ca::new("front-proxy-ca").expect("ca");
    let cert = other.issue_client(FRONT_PROXY_CN, &[]).expect("cert");
    h.client(Some(&cert))
        .post(&path, &forged, "")
        .await
        .expect_status(401, "Unauthorized");
    // A requestheader-CA certificate whose CN is not allowed.
    let cert = h.front_ca.issue_client("mallory", &[]).expect("cert");
    h.client(Some(&cert))
        .post(&path, &forged, "")
        .await
        .expect_status(401, "Unauthorized");
    // Expired and not-yet-valid front proxy certificates.
    let now = time::OffsetDateTime::now_utc();
    let expired = h
        .front_ca
        .issue_client_valid(
            FRONT_PROXY_CN,
            &[],
            now - time::Duration::days(30),
            time::Duration::days(1),
        )
        .expect("cert");
    h.client(Some(&expired))
        .post(&path, &forged, "")
        .await
        .expect_status(401, "Unauthorized");
    let future = h
        .front_ca
        .issue_client_valid(
            FRONT_PROXY_CN,
            &[],
            now + time::Duration::days(30),
            time::Duration::days(1),
        )
        .expect("cert");
    h.client(Some(&future))
        .post(&path, &forged, "")
        .await
        .expect_status(401, "Unauthorized");
    assert!(h.engine.calls().is_empty(), "the handler was never called");
    assert!(
        h.kube.sar_calls().is_empty(),
        "no SubjectAccessReview for unauthenticated requests"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn remote_and_impersonation_headers_never_change_the_user() {
    let mut h = Harness::start().await;
    let headers = [
        ("X-Remote-User", "admin"),
        ("X-Remote-Group", "system:masters"),
        ("Impersonate-User", "admin"),
        ("Impersonate-Group", "system:masters"),
    ];
    let a = h
        .client_as("bob", &["team-a"])
        .post(&retry_path("demo", "r1"), &headers, "")
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let user = h.engine.calls()[0].user.clone();
    assert_eq!(user.username, "bob");
    assert_eq!(user.groups, vec!["team-a", "system:authenticated"]);
    assert!(user.uid.is_none() && user.extra.is_empty());
    assert_eq!(
        h.kube.sar_calls()[0].user.as_deref(),
        Some("bob"),
        "reviewed as bob, not as the impersonated user"
    );
    // Through the front proxy, the user is X-Remote-User; Impersonate-* headers change nothing.
    let a = h
        .front_proxy()
        .post(
            &retry_path("demo", "r1"),
            &[
                ("X-Remote-User", "viewer"),
                ("Impersonate-User", "admin"),
                ("Impersonate-Group", "system:masters"),
                ("Impersonate-Uid", "admin-uid"),
                ("Impersonate-Extra-Scopes", "all"),
            ],
            "",
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let user = h.engine.calls()[1].user.clone();
    assert_eq!(user.username, "viewer");
    assert!(user.uid.is_none() && user.extra.is_empty(), "{user:?}");
    assert_eq!(h.kube.sar_calls()[1].user.as_deref(), Some("viewer"));
    h.shutdown().await;
}

#[tokio::test]
async fn bearer_token_goes_through_token_review_and_is_cached() {
    let mut h = Harness::start().await;
    let mut carol = UserInfo::new(
        "system:serviceaccount:ci:runner",
        &["system:serviceaccounts", "system:authenticated"],
    );
    carol.uid = Some("sa-uid".into());
    h.kube.add_token("good-token", carol.clone());
    let c = h.client(None);
    let auth = [
        ("Authorization", "Bearer good-token"),
        ("Audit-ID", "caller-chosen-id"),
    ];
    assert_eq!(c.post(&retry_path("ci", "r1"), &auth, "").await.status, 201);
    assert_eq!(c.post(&retry_path("ci", "r2"), &auth, "").await.status, 201);
    assert_eq!(
        h.kube.token_calls(),
        1,
        "the second request used the cached TokenReview"
    );
    let ids = h.kube.review_audit_ids();
    assert!(
        !ids.is_empty() && ids.iter().all(|id| id == "caller-chosen-id"),
        "SubjectAccessReviews (made for an authenticated caller) carry its Audit-ID: {ids:?}"
    );
    // The caller is not authenticated when its token is reviewed: its Audit-ID must not label
    // the TokenReview (kube-apiserver gives the review its own).
    assert_eq!(
        h.kube.token_review_audit_ids(),
        vec![String::new()],
        "the TokenReview carries no Audit-ID"
    );
    let users: Vec<_> = h.engine.calls().into_iter().map(|c| c.user).collect();
    assert_eq!(users, vec![carol.clone(), carol]);
    let bad = [
        ("Authorization", "Bearer wrong"),
        ("X-Remote-User", "admin"),
    ];
    c.post(&retry_path("ci", "r3"), &bad, "")
        .await
        .expect_status(401, "Unauthorized");
    assert_eq!(h.engine.calls().len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn denial_is_403_with_kube_apiserver_message_and_nothing_done() {
    let mut h = Harness::start().await;
    h.kube.deny_all();
    let a = h
        .client_as("bob", &[])
        .post(&retry_path("demo", "demo-failed"), &[], "")
        .await;
    let msg = a.expect_status(403, "Forbidden");
    assert_eq!(
        msg,
        r#"pipelineruns.retry.tekton.dev "demo-failed" is forbidden: User "bob" cannot create resource "pipelineruns/retry" in API group "retry.tekton.dev" in the namespace "demo""#
    );
    assert_eq!(a.json()["details"]["name"], "demo-failed");
    assert!(h.engine.calls().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn review_outage_is_500_and_nothing_done() {
    let mut h = Harness::start().await;
    h.kube.set_policy(|_| SarAnswer::Fail);
    let c = h.client_as("bob", &[]);
    c.post(&retry_path("demo", "demo-failed"), &[], "")
        .await
        .expect_status(500, "InternalError");
    assert!(h.engine.calls().is_empty());
    // Failures are not cached: once the API is back, the same request goes through.
    h.kube.set_policy(|_| SarAnswer::Allow);
    assert_eq!(
        c.post(&retry_path("demo", "demo-failed"), &[], "")
            .await
            .status,
        201
    );
    h.shutdown().await;
}

#[tokio::test]
async fn system_masters_need_no_review() {
    let mut h = Harness::start().await;
    h.kube.set_policy(|_| SarAnswer::Deny("no".into()));
    assert_eq!(
        h.client_as("root", &["system:masters"])
            .post(&retry_path("demo", "x"), &[], "")
            .await
            .status,
        201
    );
    assert!(h.kube.sar_calls().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn decision_cache_expires_after_its_ttl() {
    let mut h = Harness::start_tuned(|k| k.authz_ttl = Duration::from_millis(300)).await;
    let c = h.client_as("bob", &[]);
    assert_eq!(c.post(&retry_path("demo", "a"), &[], "").await.status, 201);
    assert_eq!(h.kube.sar_calls().len(), 1);
    // Revoke: the cached allow may still answer within the TTL, but after it the review is redone.
    h.kube.deny_all();
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.post(&retry_path("demo", "a"), &[], "")
        .await
        .expect_status(403, "Forbidden");
    assert_eq!(h.kube.sar_calls().len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn discovery_is_public_for_the_aggregator_without_groups() {
    let mut h = Harness::start().await;
    h.kube.deny_all();
    let fp = h.front_proxy();
    for path in [
        "/apis",
        "/apis/retry.tekton.dev",
        "/apis/retry.tekton.dev/v1alpha1",
        "/openapi/v2",
        "/openapi/v3",
        "/openapi/v3/apis/retry.tekton.dev/v1alpha1",
    ] {
        let mut req = http::Request::get(path);
        req = req.header("X-Remote-User", "system:kube-aggregator");
        let a = fp
            .send(
                req.body(http_body_util::Full::new(bytes::Bytes::new()))
                    .expect("req"),
            )
            .await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        a.json();
    }
    assert!(h.kube.sar_calls().is_empty(), "no review for public paths");
    // But an unauthenticated caller still gets a 401.
    h.client(None)
        .get("/apis")
        .await
        .expect_status(401, "Unauthorized");
    h.shutdown().await;
}

#[tokio::test]
async fn metrics_require_authorization_of_the_path() {
    let mut h = Harness::start().await;
    let c = h.client_as("prometheus", &[]);
    h.kube.deny_all();
    let msg = c.get("/metrics").await.expect_status(403, "Forbidden");
    assert_eq!(
        msg,
        r#"forbidden: User "prometheus" cannot get path "/metrics""#
    );
    let sar = h.kube.sar_calls();
    let nra = sar[0]
        .non_resource_attributes
        .clone()
        .expect("non-resource attributes");
    assert_eq!(
        (nra.verb.as_deref(), nra.path.as_deref()),
        (Some("get"), Some("/metrics"))
    );
    assert!(sar[0].resource_attributes.is_none());
    h.kube.set_policy(|s| {
        if s.user.as_deref() == Some("scraper") {
            SarAnswer::Allow
        } else {
            SarAnswer::Deny(String::new())
        }
    });
    let a = h.client_as("scraper", &[]).get("/metrics").await;
    assert_eq!(a.status, 200);
    let text = a.text();
    assert!(
        text.contains(
            "tekton_retry_apiserver_requests_total{verb=\"get\",code=\"403\",route=\"metrics\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("tekton_retry_authorization_cache_total{result=\"miss\"}"),
        "{text}"
    );
    assert!(
        text.contains("tekton_retry_apiserver_requests_in_flight 1"),
        "{text}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn health_needs_no_certificate() {
    let mut h = Harness::start().await;
    let c = h.client(None);
    for path in ["/healthz", "/livez", "/readyz"] {
        let a = c.get(path).await;
        assert_eq!(
            (a.status.as_u16(), a.text()),
            (200, "ok".to_string()),
            "{path}"
        );
    }
    let a = c.get("/readyz?verbose").await;
    assert_eq!(a.status, 200);
    assert!(
        a.text()
            .contains("[+]extension-apiserver-authentication ok"),
        "{}",
        a.text()
    );
    assert!(a.text().ends_with("readyz check passed\n"));
    h.shutdown().await;
}

/// A minimal ClientHello for `version` (0x0301 TLS 1.0, 0x0302 TLS 1.1, 0x0303 TLS 1.2) offering
/// ECDHE-ECDSA-AES128-GCM-SHA256 with the extensions that suite needs.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut hello = version.to_vec();
    hello.extend_from_slice(&[7u8; 32]); // random
    hello.push(0); // session id
    hello.extend_from_slice(&[0x00, 0x02, 0xc0, 0x2b]); // cipher suites
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
    let ext: &[u8] = &[
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // supported_groups
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04, // signature_algorithms
    ];
    hello.extend_from_slice(&[0x00, ext.len() as u8]);
    hello.extend_from_slice(ext);
    let mut hs = vec![0x01, 0x00, (hello.len() >> 8) as u8, hello.len() as u8];
    hs.extend_from_slice(&hello);
    let mut rec = vec![
        0x16,
        version[0],
        version[1],
        (hs.len() >> 8) as u8,
        hs.len() as u8,
    ];
    rec.extend_from_slice(&hs);
    rec
}

#[tokio::test]
async fn old_tls_and_plain_http_are_refused() {
    let mut h = Harness::start().await;
    let addr = h.addr;
    let replies = tokio::task::spawn_blocking(move || {
        let exchange = |bytes: &[u8]| {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            s.write_all(bytes).expect("write");
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            buf.truncate(n);
            buf
        };
        [
            exchange(&client_hello([0x03, 0x03])),
            exchange(&client_hello([0x03, 0x02])),
            exchange(&client_hello([0x03, 0x01])),
            exchange(
                b"POST /apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/demo-failed/retry HTTP/1.1\r\nHost: x\r\nX-Remote-User: admin\r\nX-Remote-Group: system:masters\r\nContent-Length: 0\r\n\r\n",
            ),
        ]
    })
    .await
    .expect("join");
    let [tls12, tls11, tls10, http] = replies;
    // The same hello as TLS 1.2 gets a ServerHello (handshake record 22, message type 2) ...
    assert_eq!(
        (tls12.first(), tls12.get(5)),
        (Some(&22), Some(&2)),
        "TLS 1.2 accepted with a ServerHello: {tls12:?}"
    );
    // ... as TLS 1.1 and 1.0 a fatal protocol_version alert (record 21, level 2, description 70).
    assert_eq!(tls11, vec![21, 3, 3, 0, 2, 2, 70], "TLS 1.1 refused");
    assert_eq!(
        (tls10.first(), tls10.get(5), tls10.get(6)),
        (Some(&21), Some(&2), Some(&70)),
        "TLS 1.0 refused: {tls10:?}"
    );
    // No HTTP answer at all — not even a 401, which a plaintext listener would send — only a TLS
    // alert record (21) or a closed connection.
    let text = String::from_utf8_lossy(&http);
    assert!(
        http.is_empty() || http.first() == Some(&21),
        "no plain HTTP answer: {text}"
    );
    assert!(h.engine.calls().is_empty(), "nothing was retried");
    h.shutdown().await;
}

#[tokio::test]
async fn header_injection_is_rejected_by_the_parser() {
    let mut h = Harness::start().await;
    let fp = h.front_proxy();
    let path = retry_path("demo", "demo-failed");
    // A folded header line (obs-fold) and a bare CR inside a value: never parsed as headers.
    for injected in [
        "X-Remote-User: alice\r\n X-Remote-Group: system:masters\r\n",
        "X-Remote-User: alice\rX-Remote-Group: system:masters\r\n",
    ] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\n{injected}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let out = String::from_utf8_lossy(&fp.raw(req.as_bytes()).await).into_owned();
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    }
    assert!(h.engine.calls().is_empty());
    // The same request without the injection is served (the raw client itself works).
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nX-Remote-User: alice\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let out = String::from_utf8_lossy(&fp.raw(req.as_bytes()).await).into_owned();
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    assert_eq!(h.engine.calls().len(), 1);
    h.shutdown().await;
}
