//! The authorizer against a fake SubjectAccessReview API reached through a real `kube::Client`:
//! what it asks, what it caches and for how long, and what a denial or a failed review answers.

use super::*;

#[test]
fn forbidden_message_matches_kube_apiserver() {
    let a = Attributes::retry("demo", "demo-failed");
    assert_eq!(
        a.forbidden_message("bob", ""),
        r#"pipelineruns.retry.tekton.dev "demo-failed" is forbidden: User "bob" cannot create resource "pipelineruns/retry" in API group "retry.tekton.dev" in the namespace "demo""#
    );
    let m = Attributes::NonResource {
        verb: "get".into(),
        path: "/metrics".into(),
    };
    assert_eq!(
        m.forbidden_message("bob", "no"),
        r#"forbidden: User "bob" cannot get path "/metrics": no"#
    );
}

#[test]
fn go_quoting() {
    assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(go_quote("x\ny"), r#""x\ny""#);
    // Other control characters as Go's %q writes them; a space and printable text as they are.
    assert_eq!(go_quote("a\u{1}\u{1f} \u{7f}~"), r#""a\x01\x1f \x7f~""#);
}

#[test]
fn spec_carries_the_full_user() {
    let mut u = UserInfo::new("alice", &["dev"]);
    u.uid = Some("u1".into());
    u.extra.insert("scopes".into(), vec!["a".into()]);
    let s = Attributes::retry("ns", "n").to_spec(&u);
    assert_eq!(s.user.as_deref(), Some("alice"));
    assert_eq!(s.uid.as_deref(), Some("u1"));
    assert_eq!(s.groups, Some(vec!["dev".to_string()]));
    assert_eq!(
        s.extra
            .as_ref()
            .and_then(|e| e.get("scopes"))
            .map(|v| v.len()),
        Some(1)
    );
    let ra = s.resource_attributes.expect("resource attributes");
    assert_eq!(ra.subresource.as_deref(), Some("retry"));
    assert_eq!(ra.group.as_deref(), Some("retry.tekton.dev"));
    assert_eq!(ra.namespace.as_deref(), Some("ns"));
    assert_eq!(ra.name.as_deref(), Some("n"));
}

use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};

/// What the fake API answers a review: an HTTP status and a body.
type Policy = dyn Fn(&SubjectAccessReviewSpec) -> (u16, Value) + Send + Sync;

/// An authorizer whose reviews `policy` answers; the reviews it received.
fn authorizer(
    ttl: Duration,
    policy: impl Fn(&SubjectAccessReviewSpec) -> (u16, Value) + Send + Sync + 'static,
) -> (
    Authorizer,
    Arc<Metrics>,
    Arc<Mutex<Vec<SubjectAccessReviewSpec>>>,
) {
    let policy: Arc<Policy> = Arc::new(policy);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reviews = seen.clone();
    let svc = tower::service_fn(move |req: Request<Body>| {
        let (policy, reviews) = (policy.clone(), reviews.clone());
        async move {
            assert_eq!(req.uri().path(), review::SUBJECT_ACCESS_REVIEWS);
            let bytes = req
                .into_body()
                .collect_bytes()
                .await
                .map_err(std::io::Error::other)?;
            let sar: SubjectAccessReview =
                serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
            let (code, body) = policy(&sar.spec);
            reviews.lock().expect("reviews").push(sar.spec);
            Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string().into_bytes()))
                .map_err(std::io::Error::other)
        }
    });
    let metrics = Arc::new(Metrics::new());
    let authz = Authorizer::new(kube::Client::new(svc, "default"), ttl, metrics.clone());
    (authz, metrics, seen)
}

fn answer(allowed: bool, denied: bool, reason: &str) -> (u16, Value) {
    (
        201,
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {}, "status": {"allowed": allowed, "denied": denied, "reason": reason}}),
    )
}

const HOUR: Duration = Duration::from_secs(3600);

/// Asks `authz` whether bob may retry run `i` (the fake API allows it).
async fn ask(authz: &Authorizer, i: usize) {
    let bob = UserInfo::new("bob", &[]);
    let run = Attributes::retry("ns", &format!("run-{i}"));
    authz.authorize(&bob, &run, "ask").await.expect("allowed");
}

/// [`ask`] about each of `runs`.
async fn fill(authz: &Authorizer, runs: std::ops::Range<usize>) {
    for i in runs {
        ask(authz, i).await;
    }
}

#[tokio::test]
async fn system_masters_are_allowed_without_a_review() {
    let (authz, _, seen) = authorizer(HOUR, |_| answer(false, true, "no"));
    let admin = UserInfo::new("admin", &["system:masters"]);
    authz
        .authorize(&admin, &Attributes::retry("ns", "run"), "a1")
        .await
        .expect("allowed");
    assert!(seen.lock().expect("seen").is_empty());
}

#[tokio::test]
async fn the_review_asks_for_exactly_the_request_and_an_allow_is_cached_for_the_ttl() {
    let (authz, metrics, seen) = authorizer(HOUR, |_| answer(true, false, ""));
    let bob = UserInfo::new("bob", &["dev"]);
    let retry = Attributes::retry("ns", "run");
    authz.authorize(&bob, &retry, "a1").await.expect("allowed");
    authz.authorize(&bob, &retry, "a2").await.expect("cached");
    let reviews = seen.lock().expect("seen").clone();
    assert_eq!(reviews.len(), 1, "the second answer came from the cache");
    let asked = |verb: &str, subresource: &str| ResourceAttributes {
        verb: Some(verb.into()),
        group: Some("retry.tekton.dev".into()),
        version: Some("v1alpha1".into()),
        resource: Some("pipelineruns".into()),
        subresource: Some(subresource.into()),
        namespace: Some("ns".into()),
        name: Some("run".into()),
        ..Default::default()
    };
    assert_eq!(
        reviews[0].resource_attributes,
        Some(asked("create", "retry"))
    );
    assert_eq!(reviews[0].user.as_deref(), Some("bob"));
    let text = metrics.encode().expect("metrics");
    assert!(
        text.contains(r#"tekton_retry_authorization_cache_total{result="hit"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tekton_retry_authorization_cache_total{result="miss"} 1"#),
        "{text}"
    );

    // Another name, another user or another subresource is another question.
    authz
        .authorize(&bob, &Attributes::retry("ns", "other"), "a3")
        .await
        .expect("ok");
    authz
        .authorize(&UserInfo::new("carol", &["dev"]), &retry, "a4")
        .await
        .expect("ok");
    authz
        .authorize(&bob, &Attributes::history("ns", "run"), "a5")
        .await
        .expect("ok");
    let reviews = seen.lock().expect("seen").clone();
    assert_eq!(reviews.len(), 4);
    assert_eq!(
        reviews[3].resource_attributes,
        Some(asked("get", "history"))
    );
}

#[tokio::test]
async fn a_decision_older_than_the_ttl_is_asked_again() {
    let (authz, _, seen) = authorizer(Duration::ZERO, |_| answer(true, false, ""));
    let bob = UserInfo::new("bob", &[]);
    let retry = Attributes::retry("ns", "run");
    authz.authorize(&bob, &retry, "a1").await.expect("allowed");
    authz.authorize(&bob, &retry, "a2").await.expect("allowed");
    assert_eq!(seen.lock().expect("seen").len(), 2);
}

#[tokio::test]
async fn a_denial_is_a_403_naming_the_missing_permission_and_is_cached_too() {
    let (authz, _, seen) = authorizer(HOUR, |_| answer(false, false, "no binding"));
    let bob = UserInfo::new("bob", &[]);
    let e = authz
        .authorize(&bob, &Attributes::retry("ns", "run"), "a1")
        .await
        .expect_err("denied");
    assert_eq!(e.code(), 403);
    assert_eq!(
        e.message,
        r#"pipelineruns.retry.tekton.dev "run" is forbidden: User "bob" cannot create resource "pipelineruns/retry" in API group "retry.tekton.dev" in the namespace "ns": no binding"#
    );
    assert_eq!(e.name.as_deref(), Some("run"));
    let e = authz
        .authorize(&bob, &Attributes::retry("ns", "run"), "a2")
        .await
        .expect_err("denied again");
    assert_eq!(e.code(), 403);
    assert_eq!(seen.lock().expect("seen").len(), 1, "the denial was cached");

    let metrics = Attributes::NonResource {
        verb: "get".into(),
        path: "/metrics".into(),
    };
    let e = authz
        .authorize(&bob, &metrics, "a3")
        .await
        .expect_err("denied");
    assert_eq!(e.name, None);
    assert_eq!(
        seen.lock().expect("seen")[1].non_resource_attributes,
        Some(NonResourceAttributes {
            verb: Some("get".into()),
            path: Some("/metrics".into()),
        })
    );
}

#[tokio::test]
async fn a_review_that_fails_or_contradicts_itself_is_a_500_and_is_not_cached() {
    let bob = UserInfo::new("bob", &[]);
    let retry = Attributes::retry("ns", "run");
    for (answer, says) in [
        (answer(true, true, ""), "both allowed and denied"),
        (
            (
                201,
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {}}),
            ),
            "has no status",
        ),
        (
            (
                500,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "reason": "InternalError", "message": "etcd down"}),
            ),
            "could not be completed",
        ),
    ] {
        let (authz, _, seen) = authorizer(HOUR, move |_| answer.clone());
        for id in ["a1", "a2"] {
            let e = authz.authorize(&bob, &retry, id).await.expect_err("failed");
            assert_eq!(e.code(), 500, "{says}");
            assert!(e.message.contains(says), "{}", e.message);
        }
        assert_eq!(seen.lock().expect("seen").len(), 2, "{says}: not cached");
    }
}

#[tokio::test]
async fn a_full_cache_keeps_its_fresh_decisions_until_one_more_would_not_fit() {
    let (authz, _, seen) = authorizer(HOUR, |_| answer(true, false, ""));
    fill(&authz, 0..CACHE_MAX).await;
    ask(&authz, 0).await;
    assert_eq!(
        seen.lock().expect("seen").len(),
        CACHE_MAX,
        "all still cached"
    );
    // One more decision does not fit: the fresh ones are dropped to make room.
    ask(&authz, CACHE_MAX).await;
    ask(&authz, 0).await;
    assert_eq!(seen.lock().expect("seen").len(), CACHE_MAX + 2);
}

#[tokio::test]
async fn a_full_cache_drops_its_stale_decisions_and_keeps_the_fresh_ones() {
    // The TTL only has to outlast the few reviews after the wait (milliseconds).
    let ttl = Duration::from_secs(3);
    let (authz, _, seen) = authorizer(ttl, |_| answer(true, false, ""));
    let stale = CACHE_MAX - 10;
    fill(&authz, 0..stale).await;
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    fill(&authz, stale..CACHE_MAX).await;
    // Full: one more decision drops the stale ones, and the fresh ones stay cached.
    ask(&authz, CACHE_MAX).await;
    let reviews = seen.lock().expect("seen").len();
    ask(&authz, CACHE_MAX - 1).await;
    assert_eq!(
        seen.lock().expect("seen").len(),
        reviews,
        "a fresh decision was kept"
    );
}
