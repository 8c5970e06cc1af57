//! The router's classification of paths, what each route answers and who may call it, and the
//! retry route's handling around the engine (a fake [`RetryService`]).

use super::*;
use crate::server::test_engine::TestEngine;

#[test]
fn parses_routes() {
    assert_eq!(
        Route::parse(
            "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/demo-failed/retry"
        ),
        Route::Retry {
            namespace: "demo".into(),
            name: "demo-failed".into()
        }
    );
    assert_eq!(
        Route::parse("/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/x"),
        Route::NotFound
    );
    assert_eq!(
        Route::parse("/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/x/retry/y"),
        Route::NotFound
    );
    assert_eq!(
        Route::parse("/apis/retry.tekton.dev/v1alpha1/namespaces//pipelineruns/x/retry"),
        Route::BadName {
            namespace: "".into(),
            name: "x".into()
        }
    );
    assert_eq!(
        Route::parse("/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/x/history"),
        Route::History {
            namespace: "demo".into(),
            name: "x".into()
        }
    );
    assert!(!Route::History {
        namespace: "demo".into(),
        name: "x".into()
    }
    .allows(&Method::POST));
    assert_eq!(Route::parse("/apis"), Route::Public(PublicDoc::Apis));
    assert_eq!(
        Route::parse("/apis/retry.tekton.dev/"),
        Route::Public(PublicDoc::Group)
    );
    assert_eq!(
        Route::parse("/apis/retry.tekton.dev/v1alpha1"),
        Route::Public(PublicDoc::GroupVersion)
    );
    assert_eq!(
        Route::parse("/openapi/v3/apis/retry.tekton.dev/v1alpha1"),
        Route::Public(PublicDoc::OpenApiV3GroupVersion)
    );
    assert_eq!(
        Route::parse("/readyz"),
        Route::Health {
            kind: HealthKind::Readyz,
            check: None
        }
    );
    assert_eq!(
        Route::parse("/livez/ping"),
        Route::Health {
            kind: HealthKind::Livez,
            check: Some("ping".into())
        }
    );
    assert_eq!(Route::parse("/metrics"), Route::Metrics);
    assert_eq!(
        Route::parse(
            "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/x%2F..%2Fy/retry"
        ),
        Route::BadName {
            namespace: "demo".into(),
            name: "x%2F..%2Fy".into()
        }
    );
    assert_eq!(Route::parse("/api"), Route::NotFound);
    assert_eq!(Route::parse("/apis/other.group"), Route::NotFound);
}

#[test]
fn dry_run_values() {
    assert_eq!(dry_run(None).ok(), Some(false));
    assert_eq!(dry_run(Some("dryRun=All")).ok(), Some(true));
    assert_eq!(dry_run(Some("pretty=true&dryRun=All")).ok(), Some(true));
    assert_eq!(dry_run(Some("dryRun=all")).map_err(|e| e.code()), Err(400));
    assert_eq!(dry_run(Some("dryRun=")).map_err(|e| e.code()), Err(400));
    assert_eq!(
        dry_run(Some("dryRun=All&dryRun=x")).map_err(|e| e.code()),
        Err(400)
    );
}

#[test]
fn names() {
    assert!(is_dns1123_subdomain("demo-failed"));
    assert!(is_dns1123_subdomain("a.b-c"));
    assert!(!is_dns1123_subdomain("Demo"));
    assert!(!is_dns1123_subdomain("-a"));
    assert!(!is_dns1123_subdomain("a%2Fb"));
    assert!(!is_dns1123_subdomain(""));
}

const RUN_PATH: &str = "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/x";

#[test]
fn each_route_has_its_label_methods_and_permission() {
    let r = Route::parse;
    let retry = r(&format!("{RUN_PATH}/retry"));
    let history = r(&format!("{RUN_PATH}/history"));
    let bad = r(&format!("{RUN_PATH}%2F..%2Fy/retry"));
    let gv = "/apis/retry.tekton.dev/v1alpha1";
    // (route, label, answers GET, answers POST, needs a review)
    #[rustfmt::skip]
    let table = [
        (r("/healthz/"), "health", true, false, false),
        (r("/readyz/informer-sync"), "health", true, false, false),
        (Route::Metrics, "metrics", true, false, true),
        (r("/apis"), "discovery", true, false, false),
        (r(&format!("{gv}/")), "discovery", true, false, false),
        (r("/openapi/v2"), "openapi", true, false, false),
        (r("/openapi/v3"), "openapi", true, false, false),
        (r(&format!("/openapi/v3{gv}")), "openapi", true, false, false),
        (retry.clone(), "retry", false, true, true),
        (history.clone(), "history", true, false, true),
        (bad, "unknown", true, true, false),
        (r("/api/v1"), "unknown", true, true, false),
    ];
    for (route, label, get, post, reviewed) in table {
        assert_eq!(route.label(), label, "{route:?}");
        assert_eq!(route.allows(&Method::GET), get, "{route:?} GET");
        assert_eq!(route.allows(&Method::HEAD), get, "{route:?} HEAD");
        assert_eq!(route.allows(&Method::POST), post, "{route:?} POST");
        assert_eq!(route.authorization().is_some(), reviewed, "{route:?}");
    }
    assert_eq!(retry.authorization(), Some(Attributes::retry("demo", "x")));
    assert_eq!(
        history.authorization(),
        Some(Attributes::history("demo", "x"))
    );
    assert_eq!(
        Route::Metrics.authorization(),
        Some(Attributes::NonResource {
            verb: "get".into(),
            path: "/metrics".into()
        })
    );
    assert!(!retry.allows(&Method::DELETE));
}

#[test]
fn every_health_endpoint_and_its_checks_are_routed() {
    for kind in [HealthKind::Healthz, HealthKind::Livez, HealthKind::Readyz] {
        let base = format!("/{}", kind.name());
        assert_eq!(Route::parse(&base), Route::Health { kind, check: None });
        assert_eq!(
            Route::parse(&format!("{base}/ping")),
            Route::Health {
                kind,
                check: Some("ping".into())
            }
        );
    }
    assert_eq!(
        [HealthKind::Healthz, HealthKind::Livez, HealthKind::Readyz].map(HealthKind::name),
        ["healthz", "livez", "readyz"]
    );
    let bad = |namespace: &str, name: &str| Route::BadName {
        namespace: namespace.into(),
        name: name.into(),
    };
    let ns = "/apis/retry.tekton.dev/v1alpha1/namespaces";
    let table = [
        ("/".to_string(), Route::NotFound),
        ("/openapi/v2".into(), Route::Public(PublicDoc::OpenApiV2)),
        (
            "/openapi/v3/".into(),
            Route::Public(PublicDoc::OpenApiV3Index),
        ),
        // Another resource or subresource of the group is not ours, whatever its names.
        (format!("{ns}/demo/taskruns/x/retry"), Route::NotFound),
        (format!("{RUN_PATH}/status"), Route::NotFound),
        (format!("{ns}/demo/pipelineruns/X/status"), Route::NotFound),
        (
            format!("{ns}/demo/pipelineruns/X/history"),
            bad("demo", "X"),
        ),
        (format!("{ns}/Demo/pipelineruns/x/retry"), bad("Demo", "x")),
    ];
    for (path, route) in table {
        assert_eq!(Route::parse(&path), route, "{path}");
    }
}

#[test]
fn a_method_a_route_does_not_serve_is_a_405_that_names_the_one_it_does() {
    let retry = Route::parse(&format!("{RUN_PATH}/retry"));
    let e = method_not_allowed(&Method::GET, &retry);
    assert_eq!(e.code(), 405);
    assert!(
        e.message.ends_with("GET is not supported here, use POST"),
        "{}",
        e.message
    );
    let e = method_not_allowed(&Method::POST, &Route::parse("/apis"));
    assert!(
        e.message.ends_with("POST is not supported here, use GET"),
        "{}",
        e.message
    );
}

#[test]
fn dns_subdomains_at_their_limits() {
    let label = "a".repeat(63);
    let longest = [label.as_str(); 4].join(".");
    let longest = &longest[..253];
    assert!(is_dns1123_subdomain(longest.trim_end_matches('.')));
    assert!(!is_dns1123_subdomain(&format!("{longest}a")));
    assert!(is_dns1123_subdomain("1a"));
    assert!(!is_dns1123_subdomain("a-"));
    assert!(!is_dns1123_subdomain("a..b"));
    assert!(!is_dns1123_subdomain("a_b"));
}

fn engine(outcome: fn(&RetryRequest) -> Result<PipelineRunRetry, ApiError>) -> Arc<TestEngine> {
    TestEngine::new(outcome, std::time::Duration::ZERO)
}

async fn post(
    engine: Arc<TestEngine>,
    query: &str,
    content_type: &str,
    body: &str,
) -> Result<(u16, PipelineRunRetry), ApiError> {
    let (parts, ()) = http::Request::post(format!("{RUN_PATH}/retry{query}"))
        .header(http::header::CONTENT_TYPE, content_type)
        .body(())
        .expect("request")
        .into_parts();
    let body = http_body_util::Full::new(bytes::Bytes::from(body.to_string()));
    let user = UserInfo::new("bob", &["dev"]);
    retry(
        engine,
        "demo".into(),
        "x".into(),
        &parts,
        body,
        user,
        "audit-1".into(),
    )
    .await
}

#[tokio::test]
async fn the_retry_route_passes_the_request_to_the_engine_and_answers_201_or_200_for_a_dry_run() {
    let e = engine(|req| {
        Ok(PipelineRunRetry {
            spec: req.spec.clone(),
            ..Default::default()
        })
    });
    let body = r#"{"spec": {"restartTasks": ["b"]}}"#;
    let (code, out) = post(e.clone(), "", "application/json", body)
        .await
        .expect("ok");
    assert_eq!(code, 201);
    assert_eq!(out.spec.restart_tasks, ["b"]);
    let (code, _) = post(e.clone(), "?dryRun=All", "application/json", body)
        .await
        .expect("ok");
    assert_eq!(code, 200);
    let seen = e.seen.lock().expect("seen");
    assert_eq!(seen.len(), 2);
    let first = &seen[0];
    assert_eq!(
        (first.namespace.as_str(), first.name.as_str()),
        ("demo", "x")
    );
    assert_eq!(first.user.username, "bob");
    assert_eq!(first.audit_id.as_deref(), Some("audit-1"));
    assert!(!first.dry_run && seen[1].dry_run);
}

#[tokio::test]
async fn the_retry_route_refuses_bad_requests_before_the_engine_and_passes_on_its_errors() {
    let e = engine(|_| Err(ApiError::conflict("busy")));
    let bad = [
        ("?dryRun=yes", "application/json", "{}", 400),
        ("", "text/plain", "{}", 415),
        ("", "application/json", "{not json", 400),
        (
            "",
            "application/json",
            r#"{"metadata": {"name": "other"}}"#,
            400,
        ),
    ];
    for (query, content_type, body, code) in bad {
        let err = post(e.clone(), query, content_type, body)
            .await
            .expect_err("refused");
        assert_eq!(
            err.code(),
            code,
            "{query} {content_type} {body}: {}",
            err.message
        );
    }
    assert!(
        e.seen.lock().expect("seen").is_empty(),
        "the engine was not called"
    );
    let err = post(e.clone(), "", "application/json", "")
        .await
        .expect_err("engine");
    assert_eq!((err.code(), err.message.as_str()), (409, "busy"));
}

#[tokio::test]
async fn an_engine_that_panics_is_a_500_that_says_a_retry_is_safe() {
    let e = engine(|_| panic!("the engine broke"));
    // The engine's future runs in a task of its own: its panic ends that task, not the route.
    let err = post(e, "", "application/json", "")
        .await
        .expect_err("failed");
    assert_eq!(err.code(), 500);
    assert!(
        err.message.contains("safe to send the request again"),
        "{}",
        err.message
    );
}
