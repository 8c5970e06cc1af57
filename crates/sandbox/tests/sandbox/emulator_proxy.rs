//! The aggregator front proxy as a backend sees it: a TLS backend in the test requires a client
//! certificate from the requestheader CA and echoes what it receives.

use crate::running_emulator::*;
use tekton_retry_test_support::emulator as emulator_support;

use std::time::Duration;

use emulator_support::*;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::Value;
use tekton_retry::api::UserInfo;

const RETRY: &str = "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/x/retry";

async fn post(c: &kube::Client, body: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut b = http::Request::post(RETRY);
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let req = b.body(body.as_bytes().to_vec()).expect("req");
    let resp = c.send(req.map(Into::into)).await.expect("response");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    // JSON when the answer is JSON, else the plain text (kube-aggregator's own errors).
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(Value::String(text)),
    )
}

/// What the backend saw of the (first) retry request.
fn seen_retry(be: &Backend) -> Seen {
    let seen = be.seen.lock().expect("lock");
    seen.iter()
        .find(|s| s.path.ends_with("/retry"))
        .cloned()
        .expect("seen")
}

#[tokio::test]
async fn unavailable_until_a_backend_is_set() {
    let (emu, c) = with_admin().await;
    let (code, body) = post(&c, "{}", &[]).await;
    // handler_proxy.go proxyError: http.Error(w, "service unavailable", 503).
    assert_eq!(code, 503);
    assert_eq!(body, Value::String("service unavailable\n".into()));
    assert!(!emu.aggregated_availability().available);
    let groups = c.list_api_groups().await.expect("groups");
    assert!(!groups.groups.iter().any(|g| g.name == "retry.tekton.dev"));
}

/// The data of ConfigMap `extension-apiserver-authentication` in `cms` (kube-system).
async fn authentication_data(cms: &Api<ConfigMap>) -> std::collections::BTreeMap<String, String> {
    cms.get("extension-apiserver-authentication")
        .await
        .expect("published")
        .data
        .expect("data")
}

#[tokio::test]
async fn proxied_request_carries_the_user_and_the_front_proxy_certificate() {
    let emu = started().await;
    let be = serve_backend(&emu).await;
    let c = client(&emu, "admin");
    let body = r#"{"apiVersion":"retry.tekton.dev/v1alpha1","kind":"PipelineRunRetry","spec":{"reason":"r"}}"#;
    let (code, answer) = post(
        &c,
        body,
        &[
            ("X-Remote-User", "evil"),
            ("X-Remote-Group", "system:masters"),
            ("X-Remote-Extra-Scopes", "all"),
            ("Content-Type", "application/json"),
        ],
    )
    .await;
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["user"], "admin");
    let seen = be.seen.lock().expect("lock").clone();
    let s = seen
        .iter()
        .find(|s| s.path.ends_with("/retry"))
        .expect("the backend saw the retry");
    assert_eq!(s.method, "POST");
    assert_eq!(s.client_cn, "front-proxy-client");
    assert_eq!(s.all("x-remote-user"), ["admin"]);
    assert_eq!(
        s.all("x-remote-group"),
        ["system:masters", "system:authenticated"]
    );
    assert!(
        s.all("x-remote-extra-scopes").is_empty(),
        "incoming X-Remote-* are dropped"
    );
    assert!(s.one("authorization").is_none());
    assert!(s.one("audit-id").is_some_and(|v| !v.is_empty()));
    assert_eq!(s.one("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(s.one("x-forwarded-proto"), Some("https"));
    assert_eq!(s.one("x-forwarded-uri"), Some(RETRY));
    assert_eq!(
        s.one("x-forwarded-host"),
        Some(emu.addr().to_string().as_str())
    );
    assert_eq!(
        s.one("transfer-encoding"),
        Some("chunked"),
        "the body is streamed chunked"
    );
    assert!(s.one("content-length").is_none());
    assert_eq!(s.body, body);

    // The probes: system:kube-aggregator with no groups, for discovery and OpenAPI v3.
    let probes: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.path == "/apis/retry.tekton.dev/v1alpha1")
        .collect();
    assert!(!probes.is_empty());
    for p in &probes {
        assert_eq!(p.all("x-remote-user"), ["system:kube-aggregator"]);
        assert!(p.all("x-remote-group").is_empty());
        assert_eq!(p.client_cn, "front-proxy-client");
    }
    assert!(seen.iter().any(|s| s.path == "/openapi/v3"));
    assert_eq!(emu.aggregated_availability().openapi_v3_status, Some(200));

    // Discovery now lists the group (legacy and aggregated), with the parent resource.
    let groups = c.list_api_groups().await.expect("groups");
    assert!(groups.groups.iter().any(|g| g.name == "retry.tekton.dev"));
    let d = kube::discovery::Discovery::new(c.clone())
        .run_aggregated()
        .await
        .expect("aggregated");
    let g = d
        .get("retry.tekton.dev")
        .expect("group in aggregated discovery");
    let (ar, caps) = g
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.plural == "pipelineruns")
        .expect("parent");
    assert_eq!(ar.kind, "PipelineRunRetry");
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "retry"));
}

#[tokio::test]
async fn forbidden_users_never_reach_the_backend_and_extras_are_escaped() {
    let emu = started().await;
    let be = serve_backend(&emu).await;
    let viewer = client(&emu, "viewer");
    let (code, body) = post(&viewer, "{}", &[]).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        r#"pipelineruns.retry.tekton.dev "x" is forbidden: User "viewer" cannot create resource "pipelineruns/retry" in API group "retry.tekton.dev" in the namespace "demo""#
    );
    assert!(!be
        .seen
        .lock()
        .expect("lock")
        .iter()
        .any(|s| s.path.ends_with("/retry")));

    let mut alice = UserInfo::new("alice", &["system:masters"]);
    alice.uid = Some("uid-1".into());
    alice
        .extra
        .insert("example.org/scope k".into(), vec!["a".into(), "b".into()]);
    emu.policy().add_token("alice", alice);
    let mut cfg = emu.kube_config_token("alice").expect("cfg");
    cfg.default_retry = false;
    let c = kube::Client::try_from(cfg).expect("client");
    let (code, _) = post(&c, "", &[]).await;
    assert_eq!(code, 201);
    let s = seen_retry(&be);
    assert_eq!(s.all("x-remote-user"), ["alice"]);
    assert_eq!(s.all("x-remote-uid"), ["uid-1"]);
    assert_eq!(s.all("x-remote-extra-example.org%2fscope%20k"), ["a", "b"]);
    assert!(
        s.one("authorization").is_none(),
        "the bearer token is not forwarded"
    );

    // Impersonation is resolved by the front door: the backend sees the impersonated user only.
    be.seen.lock().expect("lock").clear();
    let admin = client(&emu, "admin");
    let (code, _) = post(
        &admin,
        "{}",
        &[
            ("Impersonate-User", "carol"),
            ("Impersonate-Group", "system:masters"),
            ("Audit-ID", "audit-from-client"),
        ],
    )
    .await;
    assert_eq!(code, 201);
    let s = seen_retry(&be);
    assert_eq!(s.all("x-remote-user"), ["carol"]);
    assert_eq!(
        s.all("x-remote-group"),
        ["system:masters", "system:authenticated"]
    );
    assert!(s.one("impersonate-user").is_none() && s.one("impersonate-group").is_none());
    assert_eq!(
        s.all("audit-id"),
        ["audit-from-client"],
        "the client's audit ID is forwarded"
    );
}

#[tokio::test]
async fn authentication_configmap_and_rotation() {
    let (emu, c) = with_admin().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "kube-system");
    let data = authentication_data(&cms).await;
    let id = emu.front_proxy_client();
    assert_eq!(
        data["requestheader-client-ca-file"],
        id.requestheader_ca_pem
    );
    assert_eq!(data["client-ca-file"], emu.client_ca_pem());
    assert_eq!(
        data["requestheader-allowed-names"],
        r#"["front-proxy-client"]"#
    );
    assert_eq!(
        data["requestheader-username-headers"],
        r#"["X-Remote-User"]"#
    );
    assert_eq!(data["requestheader-group-headers"], r#"["X-Remote-Group"]"#);
    assert_eq!(
        data["requestheader-extra-headers-prefix"],
        r#"["X-Remote-Extra-"]"#
    );
    assert_eq!(data["requestheader-uid-headers"], r#"["X-Remote-Uid"]"#);
    // The retry server's identity may read it (and only it) in kube-system.
    let sa = kube::Client::try_from(emu.server_kube_config().expect("cfg")).expect("client");
    Api::<ConfigMap>::namespaced(sa, "kube-system")
        .get("extension-apiserver-authentication")
        .await
        .expect("server reads it");

    let be = backend(&id.requestheader_ca_pem).await;
    emu.set_aggregated_backend(&be.url, &be.ca_pem)
        .expect("set backend");
    assert!(emu.wait_aggregated_available(Duration::from_secs(20)).await);
    let rotated = emu.rotate_front_proxy(false).expect("rotate");
    assert_ne!(rotated.requestheader_ca_pem, id.requestheader_ca_pem);
    let data = authentication_data(&cms).await;
    assert_eq!(
        data["requestheader-client-ca-file"],
        rotated.requestheader_ca_pem
    );
    // The backend still trusts the old CA only: the new client certificate is refused.
    let (code, body) = post(&c, "{}", &[]).await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.as_str().is_some_and(|t| !t.trim().is_empty()),
        "a plain-text transport error: {body}"
    );
    // The backend reloads the published bundle: requests work again.
    *be.trusted.lock().expect("lock") = rotated.requestheader_ca_pem.clone();
    let (code, _) = post(&c, "{}", &[]).await;
    assert_eq!(code, 201);
    // An overlapping rotation publishes both CAs.
    let both = emu.rotate_front_proxy(true).expect("rotate");
    assert!(both
        .requestheader_ca_pem
        .contains(rotated.requestheader_ca_pem.trim()));
}

#[tokio::test]
async fn backend_going_away_makes_the_group_unavailable() {
    let emu = started().await;
    let be = serve_backend(&emu).await;
    // Point at a closed port: the next probe marks it unavailable, requests get 503.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = format!("https://{}", closed.local_addr().expect("addr"));
    drop(closed);
    emu.set_aggregated_backend(&dead, &be.ca_pem).expect("set");
    let a = emu.proxy().probe().await;
    assert!(!a.available);
    assert!(
        a.message.starts_with("failing or missing response"),
        "{}",
        a.message
    );
    let (code, _) = post(&client(&emu, "admin"), "{}", &[]).await;
    assert_eq!(code, 503);
}
