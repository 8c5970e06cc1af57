//! The properties every input parser of tekton-retry must keep, whatever the input. Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, nightly, long runs) and
//! the proptest properties in CI (`tests/hardening_props.rs`, stable): each function panics when a
//! property is broken, and a panic inside the code under test is a finding as well.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::Value;
use tekton_retry::api::{RetrySpec, KIND, MAX_BODY_BYTES};
use tekton_retry::retry::planner::{attempt_status_reset, plan};
use tekton_retry::retry::{Claim, PlanInput, PlanLimits};
use tekton_retry::server::authn::{
    from_request_headers, unescape_extra_key, AuthConfig, RequestHeaderConfig,
};
use tekton_retry::server::body;
use tekton_retry::server::routes::{dry_run, is_dns1123_subdomain, Route};

/// The body decoder (`server::body`): a body is a `PipelineRunRetry` or a 400, never anything
/// else; what decodes re-encodes to something that decodes to the same request.
pub fn body_decode(bytes: &[u8]) {
    if bytes.len() > MAX_BODY_BYTES {
        return;
    }
    match body::decode(bytes, "demo", "run") {
        Ok(req) => {
            let again = serde_json::to_vec(&req).expect("a decoded request encodes");
            let back = body::decode(&again, "demo", "run")
                .unwrap_or_else(|e| panic!("re-decoding {req:?} failed: {}", e.message));
            assert_eq!(back, req, "decode(encode(decode(x))) == decode(x)");
        }
        Err(e) => {
            assert_eq!(e.code(), 400, "a bad body is a 400: {}", e.message);
            assert!(!e.message.is_empty());
            assert!(
                e.message.contains(KIND)
                    || e.message.contains("must")
                    || e.message.contains("match"),
                "the message says what is wrong: {}",
                e.message
            );
        }
    }
    // The same bytes as a Content-Type value: accepted or a 415, never a panic.
    if let Ok(v) = HeaderValue::from_bytes(bytes) {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, v);
        if let Err(e) = body::check_content_type(&h) {
            assert_eq!(e.code(), 415, "{}", e.message);
        }
    }
}

/// The router (`server::routes`): any path maps to one route; a retry route names a non-empty
/// namespace and run without `/`; the query's `dryRun` is `All`, absent, or a 400.
pub fn route_parse(input: &str) {
    let (path, query) = match input.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (input, None),
    };
    let route = Route::parse(path);
    let _ = route.label();
    for m in [Method::GET, Method::POST, Method::HEAD, Method::DELETE] {
        let _ = route.allows(&m);
    }
    if let Route::Retry { namespace, name } | Route::History { namespace, name } = &route {
        // The router lets through only names the API server cannot decode into another path.
        for part in [namespace, name] {
            assert!(is_dns1123_subdomain(part), "{input:?} -> {route:?}");
        }
    }
    if let Route::Retry { .. } = &route {
        assert!(
            path.ends_with("/retry"),
            "only the retry subresource is a retry: {input:?}"
        );
        assert!(route.allows(&Method::POST) && !route.allows(&Method::GET));
    }
    match dry_run(query) {
        Ok(true) => assert!(query.is_some_and(|q| q.contains("dryRun=All"))),
        Ok(false) => {}
        Err(e) => assert_eq!(e.code(), 400, "{}", e.message),
    }
}

fn requestheader_config() -> &'static RequestHeaderConfig {
    static CONFIG: OnceLock<RequestHeaderConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let ca = tekton_retry_pki::Ca::new("front-proxy-ca").expect("a CA");
        let mut data = std::collections::BTreeMap::new();
        data.insert("requestheader-client-ca-file".to_string(), ca.pem.cert);
        // The uid header is read only when the ConfigMap names it (as kube-apiserver publishes it).
        data.insert(
            "requestheader-uid-headers".to_string(),
            "[\"X-Remote-Uid\"]".to_string(),
        );
        AuthConfig::from_configmap_data(&data)
            .expect("config")
            .requestheader
            .expect("requestheader config")
    })
}

/// The requestheader parser (`server::authn`): from any set of header lines, the user is the
/// first non-empty `X-Remote-User` value (or nobody), groups are every non-empty
/// `X-Remote-Group` value in order, the uid the first `X-Remote-Uid`, and extras come only from
/// `X-Remote-Extra-<non-empty key>`. Lines that are not valid headers are skipped, as hyper
/// would refuse them.
pub fn requestheader(lines: &[(Vec<u8>, Vec<u8>)]) {
    let mut h = HeaderMap::new();
    for (k, v) in lines {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k), HeaderValue::from_bytes(v)) {
            h.append(k, v);
        }
    }
    let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let user = from_request_headers(requestheader_config(), &h);
    let first_user = h.get("x-remote-user").map(text).filter(|u| !u.is_empty());
    match (&user, &first_user) {
        (None, None) => {}
        (Some(u), Some(name)) => {
            assert_eq!(&u.username, name);
            let groups: Vec<String> = h
                .get_all("x-remote-group")
                .iter()
                .map(text)
                .filter(|g| !g.is_empty())
                .collect();
            assert_eq!(u.groups, groups);
            let uid = h.get("x-remote-uid").map(text).filter(|x| !x.is_empty());
            assert_eq!(u.uid, uid);
            let extra_lines = h
                .iter()
                .filter(|(k, _)| {
                    k.as_str()
                        .strip_prefix("x-remote-extra-")
                        .is_some_and(|rest| !rest.is_empty())
                })
                .count();
            assert_eq!(u.extra.values().map(Vec::len).sum::<usize>(), extra_lines);
            assert!(u.extra.keys().all(|k| !k.is_empty()));
        }
        _ => panic!("user {user:?} but first X-Remote-User {first_user:?}"),
    }
    // Any header name suffix unescapes without a panic, and plain keys are kept as they are.
    for (k, _) in h.iter() {
        let s = k.as_str();
        let out = unescape_extra_key(s);
        if !s.contains('%') {
            assert_eq!(out, s);
        }
    }
}

/// The planner's input as the fuzzer and the properties give it: one JSON object
/// `{"run", "children", "pipeline", "spec", "pvcs", "now"}`; missing parts are empty.
pub fn planner_json(doc: &Value) {
    let run = doc.get("run").cloned().unwrap_or(Value::Null);
    let children: Vec<Value> = match doc.get("children") {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let pipeline = doc.get("pipeline").filter(|p| !p.is_null()).cloned();
    let spec: RetrySpec = doc
        .get("spec")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .unwrap_or_default();
    let pvcs: Option<BTreeSet<String>> = doc
        .get("pvcs")
        .and_then(|p| serde_json::from_value(p.clone()).ok());
    let now = doc
        .get("now")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| {
            chrono::DateTime::parse_from_rfc3339("2026-11-26T20:00:00Z")
                .expect("time")
                .with_timezone(&chrono::Utc)
        });
    planner(
        &run,
        &children,
        pipeline.as_ref(),
        &spec,
        pvcs.as_ref(),
        now,
    );
}

/// The planner (`retry::planner::plan`): any PipelineRun and children give a plan or a 4xx
/// refusal, never a panic or a 5xx; a plan starts attempt ≥ 2, deletes each run at most once,
/// deletes only runs it was given, and never both keeps and re-runs a task.
pub fn planner(
    run: &Value,
    children: &[Value],
    pipeline: Option<&Value>,
    spec: &RetrySpec,
    pvcs: Option<&BTreeSet<String>>,
    now: chrono::DateTime<chrono::Utc>,
) {
    let input = PlanInput {
        pipeline_run: run,
        children,
        pipeline,
        existing_pvcs: pvcs,
        spec,
        record: None,
        now,
        limits: PlanLimits::default(),
    };
    match plan(&input) {
        Err(e) => {
            let code = e.code();
            assert!((400..500).contains(&code), "a refusal is a 4xx: {code} {e}");
            assert!(!e.to_string().is_empty());
        }
        Ok(p) => {
            assert!(p.attempt >= 2, "attempt {}", p.attempt);
            let mut seen = BTreeSet::new();
            for c in p.all_deletions() {
                assert!(
                    seen.insert((c.name.clone(), c.uid.clone())),
                    "{} deleted twice",
                    c.name
                );
                assert!(
                    children.iter().any(|v| {
                        v.pointer("/metadata/name").and_then(Value::as_str) == Some(&c.name)
                    }),
                    "{} is not one of the given children",
                    c.name
                );
            }
            for kept in &p.preserved {
                assert!(
                    !p.retried.iter().any(|r| &r.name == kept),
                    "{kept} both kept and re-run"
                );
            }
            let record = p.record(Claim {
                namespace: "fuzz",
                name: "run",
                by: "fuzzer",
                reason: None,
                finally: None,
                start: String::new(),
            });
            let patch = attempt_status_reset(run, &record, chrono::Utc::now());
            assert!(patch.is_object(), "{patch:#}");
        }
    }
}
