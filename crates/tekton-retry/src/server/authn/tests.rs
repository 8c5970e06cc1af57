//! Identity rules of k8s.io/apiserver, the verdict cache, the TokenReview path and the live
//! configuration's state.

use super::*;
use tekton_retry_pki::Ca;

fn chain(pem: &str) -> Vec<CertificateDer<'static>> {
    parse_certs(pem.as_bytes()).expect("pem")
}

fn config(front: &Ca, client: &Ca, allowed: &str) -> AuthConfig {
    let mut data = BTreeMap::new();
    data.insert("client-ca-file".to_string(), client.pem.cert.clone());
    data.insert(
        "requestheader-client-ca-file".to_string(),
        front.pem.cert.clone(),
    );
    data.insert(
        "requestheader-allowed-names".to_string(),
        allowed.to_string(),
    );
    data.insert(
        "requestheader-username-headers".to_string(),
        r#"["X-Remote-User"]"#.to_string(),
    );
    data.insert(
        "requestheader-uid-headers".to_string(),
        r#"["X-Remote-Uid"]"#.to_string(),
    );
    data.insert(
        "requestheader-group-headers".to_string(),
        r#"["X-Remote-Group"]"#.to_string(),
    );
    data.insert(
        "requestheader-extra-headers-prefix".to_string(),
        r#"["X-Remote-Extra-"]"#.to_string(),
    );
    AuthConfig::from_configmap_data(&data).expect("config")
}

/// A ConfigMap's data with the requestheader CA only.
fn requestheader_only(front: &Ca) -> BTreeMap<String, String> {
    let pem = front.pem.cert.clone();
    BTreeMap::from([("requestheader-client-ca-file".to_string(), pem)])
}

// Identity rules of k8s.io/apiserver, one test each.

/// `requestheader_controller.go` `loadRequestHeaderFor`: no `requestheader-uid-headers` key,
/// no uid header.
#[test]
fn no_uid_header_unless_the_configmap_names_one() {
    let (front, client) = cas();
    let data = requestheader_only(&front);
    let cfg = AuthConfig::from_configmap_data(&data).expect("config");
    assert!(cfg
        .requestheader
        .as_ref()
        .is_some_and(|rh| rh.uid_headers.is_empty()));
    let cert = front.issue_client("front-proxy", &[]).expect("cert");
    let (user, _) = authenticate_certificate(&cfg, &chain(&cert.cert), &proxied()).expect("user");
    assert_eq!(user.uid, None, "X-Remote-Uid from an unlisted header");
    let cfg = config(&front, &client, "[]");
    let (user, _) = authenticate_certificate(&cfg, &chain(&cert.cert), &proxied()).expect("user");
    assert_eq!(user.uid.as_deref(), Some("u-1"), "listed: used");
}

/// Go's `pkix.Name.FillFromRDNSequence` keeps the last CN: `CN=front-proxy-client,
/// CN=mallory` is mallory, for the allowed names and for the user name.
#[test]
fn the_last_cn_counts_as_in_go() {
    let (front, client) = cas();
    let cfg = config(&front, &client, r#"["front-proxy-client"]"#);
    let sneaky = front
        .issue_client_two_cns("front-proxy-client", "mallory")
        .expect("cert");
    assert!(
        authenticate_certificate(&cfg, &chain(&sneaky.cert), &proxied()).is_none(),
        "not trusted as the front proxy"
    );
    let honest = front
        .issue_client_two_cns("mallory", "front-proxy-client")
        .expect("cert");
    assert!(authenticate_certificate(&cfg, &chain(&honest.cert), &proxied()).is_some());
    let user = client.issue_client_two_cns("alice", "bob").expect("cert");
    let (u, how) =
        authenticate_certificate(&cfg, &chain(&user.cert), &HeaderMap::new()).expect("user");
    assert_eq!((u.username.as_str(), how), ("bob", AuthMethod::ClientCert));
}

/// `AuthenticatedGroupAdder.AuthenticateRequest` skips `system:anonymous` and members of
/// `system:unauthenticated`.
#[test]
fn anonymous_users_get_no_authenticated_group() {
    let anon = with_authenticated_group(UserInfo::new(ANONYMOUS, &[]));
    assert!(anon.groups.is_empty(), "{:?}", anon.groups);
    let unauth = with_authenticated_group(UserInfo::new("x", &[ALL_UNAUTHENTICATED]));
    assert_eq!(unauth.groups, vec![ALL_UNAUTHENTICATED]);
    let once = with_authenticated_group(UserInfo::new("y", &[ALL_AUTHENTICATED]));
    assert_eq!(once.groups, vec![ALL_AUTHENTICATED]);
    let alice = with_authenticated_group(UserInfo::new("alice", &["dev"]));
    assert_eq!(alice.groups, vec!["dev", ALL_AUTHENTICATED]);
    // Through the front proxy as well.
    let (front, client) = cas();
    let cfg = config(&front, &client, "[]");
    let cert = front.issue_client("p", &[]).expect("cert");
    let mut h = HeaderMap::new();
    h.insert("x-remote-user", ANONYMOUS.parse().expect("v"));
    h.insert("x-remote-group", ALL_UNAUTHENTICATED.parse().expect("v"));
    let (user, _) = authenticate_certificate(&cfg, &chain(&cert.cert), &h).expect("user");
    assert_eq!(user.groups, vec![ALL_UNAUTHENTICATED]);
}

#[tokio::test]
async fn tokens_over_the_limit_are_refused_without_a_review() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let svc = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            Err::<http::Response<kube::client::Body>, std::io::Error>(std::io::Error::other(
                "no API in this test",
            ))
        }
    });
    let state = Arc::new(AuthState::default());
    state.set(AuthConfig::default());
    let authn = Authenticator::with_limits(
        state,
        kube::Client::new(svc, "default"),
        Duration::from_secs(60),
        TokenLimits {
            max_token_bytes: 100,
            ..TokenLimits::default()
        },
    );
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Bearer {}", "t".repeat(101)).parse().expect("v"),
    );
    assert!(authn.authenticate(&[], &h).await.is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no TokenReview");
    h.insert(
        "authorization",
        format!("Bearer {}", "t".repeat(100)).parse().expect("v"),
    );
    assert!(authn.authenticate(&[], &h).await.is_none());
    assert!(calls.load(Ordering::SeqCst) > 0, "at the limit: reviewed");
}

fn proxied() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-remote-user", "alice".parse().expect("v"));
    h.append("x-remote-group", "dev,ops".parse().expect("v"));
    h.append("x-remote-group", "qa".parse().expect("v"));
    h.append(
        "x-remote-extra-acme.com%2fproject",
        "p1".parse().expect("v"),
    );
    h.append("X-Remote-Extra-Scopes", "a".parse().expect("v"));
    h.append("X-Remote-Extra-Scopes", "b".parse().expect("v"));
    h.insert("x-remote-uid", "u-1".parse().expect("v"));
    h
}

#[test]
fn requestheader_user_from_an_allowed_front_proxy() {
    let (front, client) = cas();
    let cfg = config(&front, &client, r#"["front-proxy"]"#);
    let cert = front.issue_client("front-proxy", &[]).expect("cert");
    let (user, method) =
        authenticate_certificate(&cfg, &chain(&cert.cert), &proxied()).expect("user");
    assert_eq!(method, AuthMethod::RequestHeader);
    assert_eq!(user.username, "alice");
    assert_eq!(user.uid.as_deref(), Some("u-1"));
    assert_eq!(user.groups, vec!["dev,ops", "qa", ALL_AUTHENTICATED]);
    assert_eq!(
        user.extra.get("acme.com/project"),
        Some(&vec!["p1".to_string()])
    );
    assert_eq!(
        user.extra.get("scopes"),
        Some(&vec!["a".to_string(), "b".to_string()])
    );
}

#[test]
fn requestheader_ignored_for_a_cn_not_allowed_or_another_ca() {
    let (front, client) = cas();
    let cfg = config(&front, &client, r#"["front-proxy"]"#);
    let wrong_cn = front.issue_client("someone", &[]).expect("cert");
    assert!(authenticate_certificate(&cfg, &chain(&wrong_cn.cert), &proxied()).is_none());
    let other = Ca::new("front")
        .expect("ca")
        .issue_client("front-proxy", &[])
        .expect("cert");
    assert!(authenticate_certificate(&cfg, &chain(&other.cert), &proxied()).is_none());
    assert!(authenticate_certificate(&cfg, &[], &proxied()).is_none());
}

#[test]
fn empty_allowed_names_accepts_any_cn_of_the_ca() {
    let (front, client) = cas();
    let cfg = config(&front, &client, "[]");
    let cert = front.issue_client("anything", &[]).expect("cert");
    let (user, _) = authenticate_certificate(&cfg, &chain(&cert.cert), &proxied()).expect("user");
    assert_eq!(user.username, "alice");
}

#[test]
fn client_ca_cert_is_cn_and_orgs_and_headers_are_ignored() {
    let (front, client) = cas();
    let cfg = config(&front, &client, "[]");
    // One O only: rcgen 0.14's DistinguishedName keeps one value per attribute type.
    let cert = client.issue_client("bob", &["team-a"]).expect("cert");
    let (user, method) =
        authenticate_certificate(&cfg, &chain(&cert.cert), &proxied()).expect("user");
    assert_eq!(method, AuthMethod::ClientCert);
    assert_eq!(user.username, "bob");
    assert_eq!(user.groups, vec!["team-a", ALL_AUTHENTICATED]);
    assert!(user.extra.is_empty() && user.uid.is_none());
}

/// A client whose requests nobody answers: certificate authentication makes no API calls.
fn offline_client() -> kube::Client {
    let svc = tower::service_fn(|_req: http::Request<kube::client::Body>| async {
        Err::<http::Response<kube::client::Body>, std::io::Error>(std::io::Error::other(
            "no API in this test",
        ))
    });
    kube::Client::new(svc, "default")
}

fn as_user(name: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-remote-user", name.parse().expect("v"));
    h
}

/// An authenticator over a requestheader CA and a client CA, the front proxy's names
/// limited to `allowed`, its verdicts cached for `ttl`.
struct Cached {
    front: Ca,
    client: Ca,
    state: Arc<AuthState>,
    authn: Authenticator,
}

fn cached(allowed: &str, ttl: Duration) -> Cached {
    let (front, client) = cas();
    let state = Arc::new(AuthState::default());
    state.set(config(&front, &client, allowed));
    let authn = Authenticator::new(state.clone(), offline_client(), ttl);
    Cached {
        front,
        client,
        state,
        authn,
    }
}

/// The chain of a front proxy certificate `front-proxy-client` from `front`, valid from
/// `not_before` for `validity`.
fn front_proxy(
    front: &Ca,
    not_before: time::OffsetDateTime,
    validity: time::Duration,
) -> Vec<CertificateDer<'static>> {
    let cert = front
        .issue_client_valid("front-proxy-client", &[], not_before, validity)
        .expect("cert");
    chain(&cert.cert)
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn an_hour() -> time::Duration {
    time::Duration::hours(1)
}

fn a_day() -> time::Duration {
    time::Duration::days(1)
}

/// Whether `authn` takes `proxy`'s request for alice.
async fn admits_alice(authn: &Authenticator, proxy: &[CertificateDer<'static>]) -> bool {
    authn.authenticate(proxy, &as_user("alice")).await.is_some()
}

#[tokio::test]
async fn verdicts_are_reused_but_users_come_from_each_request() {
    let Cached {
        front,
        client,
        authn,
        ..
    } = cached(r#"["front-proxy-client"]"#, Duration::from_secs(60));
    let proxy = front_proxy(&front, now() - an_hour(), a_day());
    for name in ["alice", "bob", "alice"] {
        let (user, how) = authn
            .authenticate(&proxy, &as_user(name))
            .await
            .expect("user");
        assert_eq!(user.username, name);
        assert_eq!(how, AuthMethod::RequestHeader);
    }
    assert_eq!(
        authn.certs.lock().expect("lock").len(),
        1,
        "one chain, one verdict"
    );
    // Without the headers the front proxy's own certificate is no user (not the client CA's).
    assert!(authn
        .authenticate(&proxy, &HeaderMap::new())
        .await
        .is_none());
    let bob = chain(&client.issue_client("bob", &["dev"]).expect("cert").cert);
    let (user, how) = authn
        .authenticate(&bob, &as_user("mallory"))
        .await
        .expect("user");
    assert_eq!(
        (user.username.as_str(), how),
        ("bob", AuthMethod::ClientCert)
    );
}

#[tokio::test]
async fn a_new_configuration_invalidates_the_verdicts() {
    let Cached {
        front,
        client,
        state,
        authn,
    } = cached("[]", Duration::from_secs(60));
    let proxy = front_proxy(&front, now() - an_hour(), a_day());
    assert!(admits_alice(&authn, &proxy).await);
    // The requestheader CA rotates to another one: the old chain is refused at once.
    let rotated = Ca::new("front-2").expect("ca");
    state.set(config(&rotated, &client, "[]"));
    assert!(!admits_alice(&authn, &proxy).await);
    // Only allowed names may send the headers once the list is set.
    state.set(config(&front, &client, r#"["someone-else"]"#));
    assert!(!admits_alice(&authn, &proxy).await);
}

/// A requestheader (front-proxy) CA and a client CA.
fn cas() -> (Ca, Ca) {
    (
        Ca::new("front").expect("ca"),
        Ca::new("client").expect("ca"),
    )
}

/// Sleeps until the wall clock is past `t` by a second (certificate times have one-second
/// precision).
async fn sleep_past(t: time::OffsetDateTime) {
    let wait = t + time::Duration::seconds(1) - time::OffsetDateTime::now_utc();
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
}

#[tokio::test]
async fn a_cached_verdict_ends_with_the_chain_it_was_made_for() {
    // A verdict cache TTL far longer than the chain's remaining validity.
    let Cached { front, authn, .. } = cached("[]", Duration::from_secs(600));
    let not_before = now() - an_hour();
    let validity = an_hour() + time::Duration::seconds(2);
    let proxy = front_proxy(&front, not_before, validity);
    assert!(admits_alice(&authn, &proxy).await);
    sleep_past(not_before + validity).await;
    assert!(
        !admits_alice(&authn, &proxy).await,
        "a cached verdict outlived the chain's notAfter"
    );
}

#[tokio::test]
async fn a_cached_verdict_is_looked_at_again_after_the_cache_ttl() {
    let Cached { front, authn, .. } = cached("[]", Duration::from_millis(200));
    // Not valid yet: refused, and that verdict is cached.
    let not_before = now() + time::Duration::seconds(2);
    let proxy = front_proxy(&front, not_before, a_day());
    assert!(!admits_alice(&authn, &proxy).await);
    assert_eq!(
        authn.certs.lock().expect("lock").len(),
        1,
        "the verdict is cached"
    );
    // Once valid, the refusal must not be reused beyond the TTL.
    sleep_past(not_before).await;
    assert!(
        admits_alice(&authn, &proxy).await,
        "a cached refusal outlived the cache TTL"
    );
}

#[test]
fn verdict_records_the_chain_validity() {
    let (front, client) = cas();
    let cfg = config(&front, &client, "[]");
    let proxy = chain(&front.issue_client("p", &[]).expect("cert").cert);
    let v = certificate_verdict(&cfg, &proxy).expect("verdict");
    assert!(v.requestheader && !v.client_ca);
    let until = v.valid_until.expect("notAfter");
    let days = until
        .duration_since(SystemTime::now())
        .expect("in the future")
        .as_secs()
        / 86_400;
    assert!((363..=365).contains(&days), "{days} days");
}

#[test]
fn expired_and_future_certs_are_refused() {
    let (front, client) = cas();
    let cfg = config(&front, &client, "[]");
    let now = time::OffsetDateTime::now_utc();
    let expired = front
        .issue_client_valid(
            "p",
            &[],
            now - time::Duration::days(10),
            time::Duration::days(1),
        )
        .expect("cert");
    let future = client
        .issue_client_valid(
            "bob",
            &[],
            now + time::Duration::days(10),
            time::Duration::days(1),
        )
        .expect("cert");
    assert!(authenticate_certificate(&cfg, &chain(&expired.cert), &proxied()).is_none());
    assert!(authenticate_certificate(&cfg, &chain(&future.cert), &HeaderMap::new()).is_none());
}

#[test]
fn first_user_header_wins_and_empty_values_are_skipped() {
    let (front, client) = cas();
    let cfg = config(&front, &client, "[]");
    let cert = front.issue_client("p", &[]).expect("cert");
    let mut h = HeaderMap::new();
    h.append("x-remote-user", "first".parse().expect("v"));
    h.append("x-remote-user", "second".parse().expect("v"));
    h.append("x-remote-group", "".parse().expect("v"));
    h.append("x-remote-group", "g".parse().expect("v"));
    let (user, _) = authenticate_certificate(&cfg, &chain(&cert.cert), &h).expect("user");
    assert_eq!(user.username, "first");
    assert_eq!(user.groups, vec!["g", ALL_AUTHENTICATED]);
    // An empty user header is no user: the front proxy certificate alone is not a user either
    // (it is not from the client CA).
    let mut h = HeaderMap::new();
    h.insert("x-remote-user", "".parse().expect("v"));
    assert!(authenticate_certificate(&cfg, &chain(&cert.cert), &h).is_none());
}

#[test]
fn extra_key_unescaping_follows_go() {
    // One bad escape anywhere keeps the whole key as it came (url.PathUnescape fails). First, so
    // that a scan that steps wrong fails here rather than looping on the cases below.
    assert_eq!(
        unescape_extra_key("ab%41%"),
        "ab%41%",
        "a bad one after a good one"
    );
    assert_eq!(unescape_extra_key("a%4"), "a%4", "cut short at the end");
    assert_eq!(
        unescape_extra_key("a%4g%41"),
        "a%4g%41",
        "a bad one before a good one"
    );
    assert_eq!(unescape_extra_key("%41"), "A", "an escape at the start");
    assert_eq!(unescape_extra_key("acme.com%2fproject"), "acme.com/project");
    assert_eq!(unescape_extra_key("100%"), "100%");
    assert_eq!(unescape_extra_key("a%zzb%2F"), "a%zzb%2F");
    assert_eq!(unescape_extra_key("plain"), "plain");
}

#[test]
fn bearer_parsing() {
    let mut h = HeaderMap::new();
    h.insert("authorization", "bearer  abc ".parse().expect("v"));
    assert_eq!(bearer_token(&h), Some("abc"));
    h.insert("authorization", "Basic abc".parse().expect("v"));
    assert_eq!(bearer_token(&h), None);
    h.insert("authorization", "Bearer ".parse().expect("v"));
    assert_eq!(bearer_token(&h), None);
}

#[test]
fn configmap_lists_must_be_json_arrays() {
    let front = Ca::new("front").expect("ca");
    let mut data = requestheader_only(&front);
    data.insert(
        "requestheader-allowed-names".to_string(),
        "front-proxy".to_string(),
    );
    assert!(AuthConfig::from_configmap_data(&data).is_err());
    data.insert(
        "requestheader-allowed-names".to_string(),
        r#"["front-proxy"]"#.to_string(),
    );
    let cfg = AuthConfig::from_configmap_data(&data).expect("ok");
    let rh = cfg.requestheader.expect("requestheader");
    assert_eq!(rh.allowed_names, vec!["front-proxy"]);
    assert_eq!(rh.username_headers, vec!["X-Remote-User"]);
    assert!(cfg.client_ca.is_none());
}

// The TokenReview path, against the fake API of `test_reviews`.

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("v"),
    );
    h
}

fn reviewing() -> (Authenticator, Arc<std::sync::atomic::AtomicUsize>) {
    let (client, calls) = crate::server::test_reviews::review_api();
    let state = Arc::new(AuthState::default());
    state.set(AuthConfig::default());
    (
        Authenticator::new(state, client, Duration::from_secs(60)),
        calls,
    )
}

#[tokio::test]
async fn a_token_is_the_user_its_review_names_and_the_answer_is_kept() {
    let (authn, calls) = reviewing();
    let (user, how) = authn
        .authenticate(&[], &bearer("bob-token"))
        .await
        .expect("bob");
    assert_eq!(how, AuthMethod::Token);
    assert_eq!(user.username, "bob");
    assert_eq!(user.uid.as_deref(), Some("uid-bob"));
    assert_eq!(user.groups, ["dev", ALL_AUTHENTICATED]);
    assert_eq!(user.extra["scopes.example.dev"], ["read"]);
    // An empty uid is no uid.
    let (admin, _) = authn
        .authenticate(&[], &bearer("admin-token"))
        .await
        .expect("admin");
    assert_eq!(admin.uid, None);
    assert_eq!(authn.token_cache_size().0, 2);
    assert!(authn.token_cache_size().1 > 0, "the answers take bytes");
    // Asked again: answered from the cache.
    authn
        .authenticate(&[], &bearer("bob-token"))
        .await
        .expect("bob");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_review_that_does_not_authenticate_a_named_user_is_no_user() {
    let (authn, calls) = reviewing();
    for token in ["unknown-token", "nameless-token", "contradiction-token"] {
        assert!(
            authn.authenticate(&[], &bearer(token)).await.is_none(),
            "{token}"
        );
    }
    // Refusals are kept too (as k8s.io/apiserver's cache keeps them).
    assert_eq!(authn.token_cache_size().0, 3);
    assert!(authn
        .authenticate(&[], &bearer("unknown-token"))
        .await
        .is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

// The verdict cache.

#[tokio::test]
async fn a_verdict_is_taken_from_the_cache_while_fresh_and_made_again_once_stale() {
    let Cached { front, authn, .. } = cached("[]", Duration::from_secs(60));
    let proxy = front_proxy(&front, now() - an_hour(), a_day());
    assert!(admits_alice(&authn, &proxy).await);
    // Mark the cached verdict: the next request must use it, not verify the chain again.
    let mark = |authn: &Authenticator, change: &dyn Fn(&mut CachedVerdict)| {
        let mut certs = authn.certs.lock().expect("lock");
        certs.values_mut().for_each(change);
    };
    mark(&authn, &|c| c.verdict.requestheader = false);
    assert!(
        !admits_alice(&authn, &proxy).await,
        "the cached verdict was not used"
    );
    // Older than the TTL: made again.
    mark(&authn, &|c| c.at = Instant::now() - Duration::from_secs(61));
    assert!(
        admits_alice(&authn, &proxy).await,
        "a stale verdict was used"
    );
    // Past the chain's recorded notAfter: made again.
    mark(&authn, &|c| {
        c.verdict.requestheader = false;
        c.verdict.valid_until = Some(SystemTime::now() - Duration::from_secs(1));
    });
    assert!(
        admits_alice(&authn, &proxy).await,
        "an expired verdict was used"
    );
}

#[tokio::test]
async fn the_verdict_cache_keeps_one_verdict_a_chain_and_starts_over_when_full() {
    let Cached {
        front,
        client,
        authn,
        ..
    } = cached("[]", Duration::from_secs(60));
    let proxy = front_proxy(&front, now() - an_hour(), a_day());
    let bob = chain(&client.issue_client("bob", &["dev"]).expect("cert").cert);
    assert!(admits_alice(&authn, &proxy).await);
    assert!(authn.authenticate(&bob, &HeaderMap::new()).await.is_some());
    assert_eq!(authn.certs.lock().expect("lock").len(), 2);
    {
        let mut certs = authn.certs.lock().expect("lock");
        let template = certs
            .values()
            .next()
            .map(|c| (c.config.clone(), c.verdict.clone()));
        let (config, verdict) = template.expect("a verdict");
        for i in certs.len()..CERT_CACHE_MAX {
            let key = vec![CertificateDer::from(i.to_be_bytes().to_vec())];
            let at = Instant::now();
            let (config, verdict) = (config.clone(), verdict.clone());
            certs.insert(
                key,
                CachedVerdict {
                    config,
                    at,
                    verdict,
                },
            );
        }
    }
    let carol = chain(&client.issue_client("carol", &[]).expect("cert").cert);
    assert!(authn
        .authenticate(&carol, &HeaderMap::new())
        .await
        .is_some());
    assert_eq!(
        authn.certs.lock().expect("lock").len(),
        1,
        "cleared, then carol's"
    );
}

// The live configuration's state, as readiness reads it.

#[test]
fn the_state_reports_the_last_error_until_the_api_answers_again() {
    let state = AuthState::default();
    assert!(!state.loaded());
    assert_eq!(state.last_error(), None);
    assert!(!state.confirmed_within(Duration::from_secs(60)));
    state.fail("watch: connection refused".into());
    assert_eq!(
        state.last_error().as_deref(),
        Some("watch: connection refused")
    );
    state.confirm(Some("client-ca-file: no certificate".into()));
    assert_eq!(
        state.last_error().as_deref(),
        Some("client-ca-file: no certificate")
    );
    assert!(state.confirmed_within(Duration::from_secs(60)));
    state.confirm(None);
    assert_eq!(state.last_error(), None);
    state.set(AuthConfig::default());
    assert!(state.loaded());
}

#[test]
fn the_tls_hint_names_both_cas_and_a_verifier_says_how_many_it_holds() {
    let (front, client) = cas();
    let cfg = config(&front, &client, "[]");
    assert_eq!(cfg.hint_subjects().len(), 2);
    let only_client = AuthConfig {
        requestheader: None,
        ..cfg.clone()
    };
    assert_eq!(only_client.hint_subjects().len(), 1);
    let ca = cfg.client_ca.expect("client CA");
    assert_eq!(format!("{ca:?}"), "CaVerifier(1 CA)");
}

#[test]
fn an_empty_list_value_is_an_empty_list() {
    let (front, _) = cas();
    let mut data = requestheader_only(&front);
    data.insert("requestheader-group-headers".to_string(), "  ".to_string());
    let cfg = AuthConfig::from_configmap_data(&data).expect("config");
    let rh = cfg.requestheader.expect("requestheader");
    assert!(rh.group_headers.is_empty());
    assert_eq!(
        rh.username_headers,
        ["X-Remote-User"],
        "absent: the default"
    );
}
