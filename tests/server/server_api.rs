//! The served API over real TLS: discovery (also through kube-rs), OpenAPI, request bodies,
//! routing, HTTP/2, error shapes, the request timeout and graceful shutdown.

use tekton_retry_test_support::server as server_support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{Full, StreamBody};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroup, APIGroupList, APIResourceList};
use server_support::*;
use tekton_retry::api::{ApiError, Cause, FinallyPolicy, MAX_BODY_BYTES};

/// A started [`Harness`] and a client as `admin` (group `ops`).
async fn start_as_admin() -> (Harness, TestClient) {
    let h = Harness::start().await;
    let c = admin(&h);
    (h, c)
}

fn admin(h: &Harness) -> TestClient {
    h.client_as("admin", &["ops"])
}

#[tokio::test]
async fn discovery_documents_parse_into_kubernetes_types() {
    let (mut h, c) = start_as_admin().await;
    let list: APIGroupList =
        serde_json::from_value(c.get("/apis").await.json()).expect("APIGroupList");
    assert_eq!(list.groups.len(), 1);
    assert_eq!(list.groups[0].name, "retry.tekton.dev");
    let g: APIGroup =
        serde_json::from_value(c.get("/apis/retry.tekton.dev").await.json()).expect("APIGroup");
    assert_eq!(g.versions[0].group_version, "retry.tekton.dev/v1alpha1");
    let r: APIResourceList =
        serde_json::from_value(c.get("/apis/retry.tekton.dev/v1alpha1").await.json())
            .expect("APIResourceList");
    let names: Vec<_> = r
        .resources
        .iter()
        .map(|x| (x.name.as_str(), x.verbs.clone(), x.kind.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("pipelineruns", vec![], "PipelineRunRetry"),
            (
                "pipelineruns/retry",
                vec!["create".to_string()],
                "PipelineRunRetry"
            ),
            (
                "pipelineruns/history",
                vec!["get".to_string()],
                "PipelineRunRetryHistory"
            )
        ]
    );

    let mut req = Request::get("/apis");
    req = req.header(
        "Accept",
        kube::core::discovery::v2::ACCEPT_AGGREGATED_DISCOVERY_V2,
    );
    let a = c
        .send(req.body(Full::new(Bytes::new())).expect("req"))
        .await;
    assert_eq!(
        a.header("content-type"),
        Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    );
    let v2: kube::core::discovery::v2::APIGroupDiscoveryList =
        serde_json::from_value(a.json()).expect("v2 list");
    let res = &v2.items[0].versions[0].resources[0];
    assert_eq!(res.resource.as_deref(), Some("pipelineruns"));
    assert_eq!(res.subresources[0].subresource.as_deref(), Some("retry"));
    assert_eq!(res.subresources[0].verbs, vec!["create"]);
    h.shutdown().await;
}

#[tokio::test]
async fn kube_rs_discovery_accepts_the_group() {
    let mut h = Harness::start().await;
    let client = h.kube_client("admin", &[]).await;
    for aggregated in [false, true] {
        let d = kube::Discovery::new(client.clone()).filter(&["retry.tekton.dev"]);
        let d = if aggregated {
            d.run_aggregated().await
        } else {
            d.run().await
        }
        .expect("discovery");
        assert!(d.has_group("retry.tekton.dev"), "aggregated={aggregated}");
        let group = d.groups().next().expect("group");
        assert_eq!(group.preferred_version(), Some("v1alpha1"));
        let (ar, caps) = group.recommended_kind("PipelineRunRetry").expect("kind");
        assert_eq!(ar.plural, "pipelineruns");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        let sub = caps
            .subresources
            .iter()
            .find(|(r, _)| r.plural == "pipelineruns/retry" || r.plural == "retry");
        assert!(
            sub.is_some(),
            "retry subresource found (aggregated={aggregated}): {:?}",
            caps.subresources
        );
    }
    // The single-group helper too.
    let g = kube::discovery::group(&client, "retry.tekton.dev")
        .await
        .expect("group");
    assert_eq!(g.name(), "retry.tekton.dev");
    h.shutdown().await;
}

#[tokio::test]
async fn openapi_documents_are_served() {
    let (mut h, c) = start_as_admin().await;
    let idx = c.get("/openapi/v3").await.json();
    let url = idx["paths"]["apis/retry.tekton.dev/v1alpha1"]["serverRelativeURL"]
        .as_str()
        .expect("url")
        .to_string();
    let doc = c.get(&url).await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.0.0");
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    assert!(schemas
        .values()
        .any(|s| s["x-kubernetes-group-version-kind"][0]["kind"] == "PipelineRunRetry"));
    assert_eq!(c.get("/openapi/v2").await.json()["swagger"], "2.0");
    h.shutdown().await;
}

#[tokio::test]
async fn bodies_empty_default_full_and_refused() {
    let (mut h, c) = start_as_admin().await;
    let path = retry_path("demo", "demo-failed");
    assert_eq!(c.post(&path, &[], "").await.status, 201);
    assert_eq!(
        c.post(&path, &[("Content-Type", "application/json")], "{}")
            .await
            .status,
        201
    );
    let full = r#"{"apiVersion":"retry.tekton.dev/v1alpha1","kind":"PipelineRunRetry","metadata":{"name":"demo-failed"},"spec":{"reason":"registry back","finally":"Keep","restartTasks":["a"],"preconditions":{"attempt":1}}}"#;
    let a = c
        .post(
            &path,
            &[("Content-Type", "application/json; charset=utf-8")],
            full,
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text());
    let created = a.json();
    assert_eq!(created["kind"], "PipelineRunRetry");
    assert_eq!(created["status"]["attempt"], 2);
    let calls = h.engine.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].spec, Default::default());
    assert_eq!(calls[1].spec, Default::default());
    assert_eq!(calls[2].spec.reason.as_deref(), Some("registry back"));
    assert_eq!(calls[2].spec.finally, Some(FinallyPolicy::Keep));
    assert_eq!(
        calls[2].spec.preconditions.as_ref().and_then(|p| p.attempt),
        Some(1)
    );

    for (body, ct, code, reason) in [
        ("{not json", None, 400, "BadRequest"),
        (r#"{"spec":{"restartTask":["a"]}}"#, None, 400, "BadRequest"),
        (
            r#"{"apiVersion":"v1","kind":"PipelineRunRetry"}"#,
            None,
            400,
            "BadRequest",
        ),
        (
            r#"{"metadata":{"name":"someone-else"}}"#,
            None,
            400,
            "BadRequest",
        ),
        (
            "spec: {}",
            Some("application/yaml"),
            415,
            "UnsupportedMediaType",
        ),
    ] {
        let headers: Vec<(&str, &str)> = ct.map(|t| vec![("Content-Type", t)]).unwrap_or_default();
        let a = c.post(&path, &headers, body).await;
        let msg = a.expect_status(code, reason);
        assert!(!msg.is_empty());
    }
    let msg = c
        .post(&path, &[], r#"{"spec":{"restartTask":["a"]}}"#)
        .await
        .expect_status(400, "BadRequest");
    assert!(
        msg.contains("restartTask"),
        "names the unknown field: {msg}"
    );
    assert_eq!(
        h.engine.calls().len(),
        3,
        "refused bodies never reach the engine"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn body_limit_and_chunked_bodies() {
    let (mut h, c) = start_as_admin().await;
    let path = retry_path("demo", "demo-failed");
    // Exactly 1 MiB (JSON padded with spaces) is accepted; one byte more is 413.
    let json = r#"{"spec":{"reason":"x"}}"#;
    let mut body = json.to_string();
    body.push_str(&" ".repeat(MAX_BODY_BYTES - json.len()));
    assert_eq!(c.post(&path, &[], &body).await.status, 201);
    body.push(' ');
    c.post(&path, &[], &body)
        .await
        .expect_status(413, "RequestEntityTooLarge");

    // Chunked, no Content-Length, no Content-Type (what `kubectl create --raw -f` sends).
    let chunks = vec![
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(
            b"{\"spec\":",
        ))),
        Ok(http_body::Frame::data(Bytes::from_static(
            b"{\"reason\":\"chunked\"}}",
        ))),
    ];
    let req = Request::post(path.as_str())
        .body(StreamBody::new(futures::stream::iter(chunks)))
        .expect("req");
    assert!(req.headers().get("content-length").is_none());
    let a = c.send(req).await;
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(
        h.engine
            .calls()
            .last()
            .and_then(|r| r.spec.reason.clone())
            .as_deref(),
        Some("chunked")
    );

    // A chunked body that grows past the limit is cut off while streaming.
    let big = (0..(MAX_BODY_BYTES / 65536 + 2))
        .map(|_| {
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from(vec![
                b' ';
                65536
            ])))
        })
        .collect::<Vec<_>>();
    let req = Request::post(path.as_str())
        .body(StreamBody::new(futures::stream::iter(big)))
        .expect("req");
    c.send(req)
        .await
        .expect_status(413, "RequestEntityTooLarge");
    assert_eq!(h.engine.calls().len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn dry_run_methods_and_unknown_paths() {
    let (mut h, c) = start_as_admin().await;
    let path = retry_path("demo", "demo-failed");
    let a = c.post(&format!("{path}?dryRun=All"), &[], "").await;
    assert_eq!(a.status, 200, "a dry run answers 200");
    assert_eq!(a.json()["status"]["dryRun"], true);
    assert!(h.engine.calls()[0].dry_run);
    let msg = c
        .post(&format!("{path}?dryRun=server"), &[], "")
        .await
        .expect_status(400, "BadRequest");
    assert!(msg.contains("All"), "{msg}");
    c.get(&path).await.expect_status(405, "MethodNotAllowed");
    let del = Request::delete(path.as_str())
        .body(Full::new(Bytes::new()))
        .expect("req");
    c.send(del).await.expect_status(405, "MethodNotAllowed");
    c.post("/apis", &[], "")
        .await
        .expect_status(405, "MethodNotAllowed");
    c.get("/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/demo-failed")
        .await
        .expect_status(404, "NotFound");
    c.get("/api/v1/pods").await.expect_status(404, "NotFound");
    c.post(&retry_path("Demo", "x"), &[], "")
        .await
        .expect_status(400, "BadRequest");
    assert_eq!(h.engine.calls().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn engine_errors_keep_their_status_shape_and_audit_id_is_forwarded() {
    let (mut h, c) = start_as_admin().await;
    h.engine.answer_with(|r| {
        Err(ApiError::conflict(format!(
            "pipelinerun {} is still running: wait until it is done",
            r.name
        ))
        .with_name(r.name.clone()))
    });
    let a = c
        .post(
            &retry_path("demo", "demo-running"),
            &[("Audit-ID", "audit-123")],
            "",
        )
        .await;
    let msg = a.expect_status(409, "Conflict");
    assert_eq!(
        msg,
        "pipelinerun demo-running is still running: wait until it is done"
    );
    assert_eq!(a.header("audit-id"), Some("audit-123"));
    assert_eq!(h.engine.calls()[0].audit_id.as_deref(), Some("audit-123"));
    assert_eq!(
        h.kube.review_audit_ids(),
        vec!["audit-123".to_string()],
        "the SubjectAccessReview carried it too"
    );

    h.engine.answer_with(|_| {
        Err(
            ApiError::new(tekton_retry::api::StatusReason::TooManyRequests, "busy")
                .with_retry_after(7),
        )
    });
    let a = c.post(&retry_path("demo", "x"), &[], "").await;
    a.expect_status(429, "TooManyRequests");
    assert_eq!(a.header("retry-after"), Some("7"));
    assert_eq!(a.json()["details"]["retryAfterSeconds"], 7);
    // Without Audit-ID the server makes one up, and hands the same one to the engine.
    let generated = a.header("audit-id").expect("audit id").to_string();
    assert_eq!(
        h.engine.calls()[1].audit_id.as_deref(),
        Some(generated.as_str())
    );

    h.engine.answer_with(|r| {
        Err(ApiError::invalid(
            format!("PipelineRunRetry \"{}\" is invalid", r.name),
            vec![Cause::invalid(
                "spec.restartTasks[0]",
                "no pipeline task \"zz\"",
            )],
        )
        .with_name(r.name.clone()))
    });
    let a = c.post(&retry_path("demo", "demo-failed"), &[], "").await;
    a.expect_status(422, "Invalid");
    assert_eq!(
        a.json()["details"]["causes"][0]["field"],
        "spec.restartTasks[0]"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn http2_and_large_headers() {
    let mut h = Harness::start().await;
    let cert = h.front_ca.issue_client(FRONT_PROXY_CN, &[]).expect("cert");
    let c = h.client_h2(Some(&cert));
    let groups: Vec<String> = (0..1000)
        .map(|i| format!("group-{i:04}-{}", "x".repeat(40)))
        .collect();
    let mut req =
        Request::post(retry_path("demo", "demo-failed").as_str()).header("X-Remote-User", "alice");
    for g in &groups {
        req = req.header("X-Remote-Group", g.as_str());
    }
    let a = c
        .send(req.body(Full::new(Bytes::new())).expect("req"))
        .await;
    assert_eq!(a.version, http::Version::HTTP_2);
    assert_eq!(a.status, 201, "{}", a.text());
    let user = h.engine.calls()[0].user.clone();
    assert_eq!(
        user.groups.len(),
        1001,
        "1000 groups plus system:authenticated"
    );
    assert_eq!(user.groups[999], groups[999]);
    // HTTP/1.1 with 300 headers.
    let c1 = h.client(Some(&cert));
    let mut req =
        Request::post(retry_path("demo", "demo-failed").as_str()).header("X-Remote-User", "alice");
    for g in groups.iter().take(300) {
        req = req.header("X-Remote-Group", g.as_str());
    }
    let a = c1
        .send(req.body(Full::new(Bytes::new())).expect("req"))
        .await;
    assert_eq!(a.version, http::Version::HTTP_11);
    assert_eq!(a.status, 201, "{}", a.text());
    h.shutdown().await;
}

#[tokio::test]
async fn timeout_is_504_and_the_retry_keeps_going() {
    let mut h = Harness::start_tuned(|k| k.request_timeout = Duration::from_millis(300)).await;
    let gate = h.engine.hold();
    let c = admin(&h);
    let msg = c
        .post(&retry_path("demo", "slow"), &[], "")
        .await
        .expect_status(504, "Timeout");
    assert!(msg.contains("keeps going"), "{msg}");
    assert_eq!(h.engine.calls().len(), 1);
    assert_eq!(h.engine.finished(), 0);
    gate.add_permits(1);
    assert!(
        eventually(20, || h.engine.finished() == 1).await,
        "the engine call completed after the 504"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut h = Harness::start().await;
    let gate = h.engine.hold();
    let c = admin(&h);
    let path = retry_path("demo", "demo-failed");
    let in_flight = tokio::spawn(async move { c.post(&path, &[], "").await.status });
    assert!(
        eventually(20, || h.engine.calls().len() == 1).await,
        "request reached the engine"
    );
    let handle = h.handle.take().expect("handle");
    let probe = handle.ready_probe();
    let addr = handle.addr();
    let shutdown = tokio::spawn(handle.shutdown(Duration::from_secs(60)));
    assert!(
        eventually(20, || !probe.ready()).await,
        "not ready once shutdown began"
    );
    let mut refused = false;
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(refused, "no new connections once shutdown began");
    assert!(
        !in_flight.is_finished() && !shutdown.is_finished(),
        "the engine has not answered yet"
    );
    gate.add_permits(1);
    assert_eq!(
        in_flight.await.expect("join"),
        201,
        "the in-flight retry finished"
    );
    shutdown.await.expect("shutdown");
    assert!(!probe.ready());
}
