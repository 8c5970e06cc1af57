//! The request pipeline without a network: [`handle`] called with requests, authenticated by
//! bearer tokens that a fake TokenReview API knows, authorized by a fake SubjectAccessReview API,
//! in front of a fake engine.

use std::sync::Mutex;

use http::Request;
use http_body_util::BodyExt;
use serde_json::json;

use super::*;
use crate::server::authn::{AuthConfig, AuthState};
use crate::server::test_engine::TestEngine;
use crate::server::test_reviews::review_api;

struct Server {
    shared: Arc<Shared>,
    engine: Arc<TestEngine>,
}

fn server(in_flight: usize, request_timeout: Duration, engine_delay: Duration) -> Server {
    let (client, _) = review_api();
    let state = Arc::new(AuthState::default());
    state.set(AuthConfig::default());
    let metrics = Arc::new(Metrics::new());
    let engine = TestEngine::echo(engine_delay);
    let shared = Arc::new(Shared {
        authn: Authenticator::new(state.clone(), client.clone(), Duration::from_secs(60)),
        authz: Authorizer::new(client, Duration::from_secs(60), metrics.clone()),
        retry: engine.clone(),
        metrics,
        health: Arc::new(Health::new(state, Duration::from_secs(300))),
        request_timeout,
        in_flight: tokio::sync::Semaphore::new(in_flight),
    });
    Server { shared, engine }
}

fn quick() -> Server {
    server(8, Duration::from_secs(30), Duration::ZERO)
}

const RUN: &str = "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/run";

/// A request as `token` (none: anonymous) with `body`.
fn request(method: Method, path: &str, token: Option<&str>, body: &str) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::new(Bytes::from(body.to_string())))
        .expect("request")
}

async fn send(s: &Server, req: Request<Full<Bytes>>) -> (u16, http::HeaderMap, String) {
    let resp = handle(s.shared.clone(), Arc::new(ConnInfo::default()), req).await;
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (code, headers, String::from_utf8_lossy(&body).into_owned())
}

fn status_of(body: &str) -> (String, String) {
    let v: Value = serde_json::from_str(body).expect("a Status");
    assert_eq!(v["kind"], "Status", "{body}");
    (
        v["reason"].as_str().unwrap_or_default().to_string(),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn health_needs_no_credentials_and_only_get() {
    let s = quick();
    let (code, headers, body) = send(&s, request(Method::GET, "/livez", None, "")).await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    let (code, _, body) = send(&s, request(Method::POST, "/livez", None, "")).await;
    assert_eq!(code, 405);
    assert_eq!(status_of(&body).0, "MethodNotAllowed");
}

#[tokio::test]
async fn without_credentials_every_other_route_is_a_401_status() {
    let s = quick();
    for path in ["/apis", "/metrics", &format!("{RUN}/retry"), "/nowhere"] {
        let (code, headers, body) = send(&s, request(Method::GET, path, None, "")).await;
        assert_eq!(code, 401, "{path}");
        assert_eq!(
            status_of(&body),
            ("Unauthorized".into(), "Unauthorized".into())
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-cache, private");
    }
    let (code, _, _) = send(&s, request(Method::GET, "/apis", Some("unknown"), "")).await;
    assert_eq!(code, 401);
}

#[tokio::test]
async fn the_audit_id_is_the_callers_when_sane_else_a_new_one() {
    let s = quick();
    let with = |id: &str| {
        let mut r = request(Method::GET, "/livez", None, "");
        r.headers_mut()
            .insert("audit-id", HeaderValue::from_str(id).expect("value"));
        r
    };
    let (_, headers, _) = send(&s, with("abc-123")).await;
    assert_eq!(headers["audit-id"], "abc-123");
    for insane in ["a b".to_string(), "x".repeat(129)] {
        let (_, headers, _) = send(&s, with(&insane)).await;
        let id = headers["audit-id"].to_str().expect("id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{insane:?} gave {id}");
    }
    let (_, headers, _) = send(&s, request(Method::GET, "/livez", None, "")).await;
    assert!(uuid::Uuid::parse_str(headers["audit-id"].to_str().expect("id")).is_ok());
}

#[tokio::test]
async fn unknown_paths_bad_names_and_methods_are_answered_before_any_review() {
    let s = quick();
    let cases = [
        (Method::GET, "/nowhere".to_string(), 404, "NotFound"),
        (
            Method::POST,
            format!("{RUN}%2F..%2Fx/retry"),
            400,
            "BadRequest",
        ),
        (Method::GET, format!("{RUN}/retry"), 405, "MethodNotAllowed"),
        (Method::DELETE, "/apis".to_string(), 405, "MethodNotAllowed"),
    ];
    for (method, path, code, reason) in cases {
        // eve is denied every review: an answer other than 403 shows none was made.
        let (got, _, body) = send(&s, request(method.clone(), &path, Some("eve-token"), "")).await;
        assert_eq!(
            (got, status_of(&body).0.as_str()),
            (code, reason),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn the_retry_route_is_reviewed_then_answered_by_the_engine() {
    let s = quick();
    let body = r#"{"spec": {"restartTasks": ["b"]}}"#;
    let (code, _, answer) = send(
        &s,
        request(
            Method::POST,
            &format!("{RUN}/retry"),
            Some("eve-token"),
            body,
        ),
    )
    .await;
    assert_eq!(code, 403);
    assert!(
        status_of(&answer)
            .1
            .contains("User \"eve\" cannot create resource \"pipelineruns/retry\""),
        "{answer}"
    );
    assert!(s.engine.seen.lock().expect("seen").is_empty());

    let (code, headers, answer) = send(
        &s,
        request(
            Method::POST,
            &format!("{RUN}/retry"),
            Some("bob-token"),
            body,
        ),
    )
    .await;
    assert_eq!(code, 201, "{answer}");
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(v["spec"]["restartTasks"], json!(["b"]));
    let seen = s.engine.seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].user.username, "bob");
    assert!(seen[0]
        .user
        .groups
        .iter()
        .any(|g| g == "system:authenticated"));

    let (code, _, answer) = send(
        &s,
        request(
            Method::GET,
            &format!("{RUN}/history"),
            Some("bob-token"),
            "",
        ),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&answer).expect("json")["name"],
        "demo/run"
    );

    let text = s.shared.metrics.encode().expect("metrics");
    for sample in [
        r#"tekton_retry_apiserver_requests_total{verb="create",code="403",route="retry"} 1"#,
        r#"tekton_retry_apiserver_requests_total{verb="create",code="201",route="retry"} 1"#,
        r#"tekton_retry_apiserver_requests_total{verb="get",code="200",route="history"} 1"#,
    ] {
        assert!(text.contains(sample), "{sample}\n{text}");
    }
}

#[tokio::test]
async fn metrics_are_served_to_whoever_may_get_the_path() {
    let s = quick();
    let (code, headers, text) =
        send(&s, request(Method::GET, "/metrics", Some("bob-token"), "")).await;
    assert_eq!(code, 200);
    assert_eq!(
        headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(
        text.contains("tekton_retry_apiserver_requests_in_flight 1"),
        "{text}"
    );
    let (code, _, body) = send(&s, request(Method::GET, "/metrics", Some("eve-token"), "")).await;
    assert_eq!(code, 403);
    assert_eq!(
        status_of(&body).1,
        r#"forbidden: User "eve" cannot get path "/metrics": no binding"#
    );
}

#[tokio::test]
async fn discovery_is_served_to_any_authenticated_user_aggregated_when_asked_for_at_apis() {
    let s = quick();
    let aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    let get = |path: &str, accept: Option<&str>| {
        let mut r = request(Method::GET, path, Some("eve-token"), "");
        if let Some(a) = accept {
            r.headers_mut()
                .insert("accept", HeaderValue::from_str(a).expect("accept"));
        }
        r
    };
    let (code, headers, body) = send(&s, get("/apis", None)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(headers["vary"], "Accept");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["kind"],
        "APIGroupList"
    );
    let (_, _, body) = send(&s, get("/apis", Some(aggregated))).await;
    let kind = serde_json::from_str::<Value>(&body).expect("json")["kind"].clone();
    assert_eq!(kind, "APIGroupDiscoveryList");
    // Only /apis has an aggregated form here: the group document stays as it is.
    let (_, _, body) = send(&s, get("/apis/retry.tekton.dev", Some(aggregated))).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["kind"],
        "APIGroup"
    );
}

#[tokio::test]
async fn a_full_server_answers_429_except_to_system_masters() {
    let s = server(0, Duration::from_secs(30), Duration::ZERO);
    let (code, headers, body) =
        send(&s, request(Method::GET, "/apis", Some("bob-token"), "")).await;
    assert_eq!(code, 429);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(status_of(&body).0, "TooManyRequests");
    let (code, _, _) = send(&s, request(Method::GET, "/apis", Some("admin-token"), "")).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_request_over_its_time_is_a_504_that_says_the_retry_goes_on() {
    let s = server(8, Duration::from_millis(50), Duration::from_secs(5));
    let (code, _, body) = send(
        &s,
        request(Method::POST, &format!("{RUN}/retry"), Some("bob-token"), ""),
    )
    .await;
    assert_eq!(code, 504);
    let (reason, message) = status_of(&body);
    assert_eq!(reason, "Timeout");
    assert!(
        message.contains("a retry that had started keeps going"),
        "{message}"
    );
}

#[tokio::test]
async fn methods_outside_the_standard_set_share_one_metrics_label() {
    let s = quick();
    for (method, verb) in [
        (Method::POST, "post"),
        (Method::PUT, "put"),
        (Method::PATCH, "patch"),
        (Method::DELETE, "delete"),
        (Method::HEAD, "head"),
        (Method::OPTIONS, "options"),
        (Method::from_bytes(b"BREW").expect("method"), "other"),
    ] {
        send(&s, request(method, "/nowhere", None, "")).await;
        let text = s.shared.metrics.encode().expect("metrics");
        let sample = format!(
            r#"tekton_retry_apiserver_requests_total{{verb="{verb}",code="401",route="unknown"}} 1"#
        );
        assert!(text.contains(&sample), "{sample}\n{text}");
    }
}

/// Log lines written while `f` runs on this thread.
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_access_log_line_per_request_with_its_latency_in_milliseconds_health_at_debug() {
    let s = quick();
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || Captured(writer.clone()))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    send(&s, request(Method::GET, "/livez", None, "")).await;
    send(&s, request(Method::GET, "/apis", None, "")).await;
    let text = String::from_utf8_lossy(&buf.lock().expect("log")).into_owned();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tekton_retry::access"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("DEBUG")
            && lines[0].contains("path=\"/livez\"")
            && lines[0].contains("code=200"),
        "{text}"
    );
    assert!(
        lines[1].contains(" INFO ")
            && lines[1].contains("path=\"/apis\"")
            && lines[1].contains("code=401"),
        "{text}"
    );
    for line in lines {
        let ms: f64 = line
            .split("latency_ms=")
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no latency in {line}"));
        // Milliseconds: more than a nanosecond, less than the second no request here takes.
        assert!(ms > 1e-6 && ms < 1000.0, "{line}");
    }
}

/// Answers an anonymous POST whose body is `chunks` chunks of 1 KiB; returns the code and how
/// many chunks the server read.
async fn unread_body_of(chunks: usize) -> (u16, usize) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    let stream = futures::stream::iter((0..chunks).map(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::from(vec![b'x'; 1024])))
    }));
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{RUN}/retry"))
        .body(http_body_util::StreamBody::new(stream))
        .expect("request");
    let resp = handle(quick().shared, Arc::new(ConnInfo::default()), req).await;
    (resp.status().as_u16(), read.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_small_body_the_answer_did_not_need_is_read_to_its_end_and_a_large_one_is_given_up() {
    // 10 KiB: read to the end, so that an HTTP/2 client sees the 401 rather than a reset.
    assert_eq!(unread_body_of(10).await, (401, 10));
    // 100 KiB: given up after about DRAIN_MAX_BYTES.
    let (code, read) = unread_body_of(100).await;
    assert_eq!(code, 401);
    assert!(read <= DRAIN_MAX_BYTES / 1024 + 1, "{read} chunks read");
}
