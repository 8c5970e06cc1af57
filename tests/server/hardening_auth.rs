//! Authentication and authorization bypass attempts against the real sandbox:
//! the real `serve` code with the real engine, the emulator's SubjectAccessReview and policy, and
//! requests sent either through the front proxy or straight at the retry server with the
//! front-proxy client certificate (which makes the `X-Remote-*` headers trusted). Every retry here
//! is a dry run (`?dryRun=All`), so an answer of 200 means "authenticated and authorized".
//! Each threat has one test: `server_auth` covers, against a fake API, forged `X-Remote-*` headers
//! without the front-proxy certificate (none, another CA, a CN not allowed, expired), client-CA
//! users and `Impersonate-*` headers, obs-fold, and old TLS or plain HTTP; this file covers what
//! needs the real policy and SubjectAccessReview: duplicate headers, huge group lists, control
//! characters, the front door's impersonation rule, namespaces and runs, the decision cache's key,
//! and path tricks.

use tekton_retry_test_support::sandbox as sandbox_support;
use tekton_retry_test_support::server as server_support;

use std::net::SocketAddr;
use std::time::Duration;

use sandbox_support::*;
use serde_json::json;
use server_support::{retry_path, TestClient};
use tekton_retry::api::UserInfo;
use tekton_retry_sandbox::policy::{Rule, Subject};
use tekton_retry_sandbox::{Sandbox, SandboxOptions};

/// The retry server's own address (bypassing the front proxy).
fn retry_addr(sb: &Sandbox) -> SocketAddr {
    sb.retry_url()
        .trim_start_matches("https://")
        .parse()
        .expect("address")
}

/// A client straight to the retry server presenting the front proxy's client certificate.
fn as_front_proxy(sb: &Sandbox) -> TestClient {
    TestClient::new(
        retry_addr(sb),
        sb.retry_ca_pem(),
        Some(&sb.emulator.front_proxy_client().client),
        false,
    )
}

fn dry(ns: &str, name: &str) -> String {
    format!("{}?dryRun=All", retry_path(ns, name))
}

/// A sandbox without the Tekton simulator's seed churn mattering: seeded, recorder on.
async fn sandbox() -> Sandbox {
    start_with(SandboxOptions {
        engine: patient_engine(),
        ..Default::default()
    })
    .await
}

/// [`sandbox`] where `subject` may retry `runs` ([`grant`]), and a client [`as_front_proxy`].
async fn sandbox_granting(subject: Subject, binding: &str, runs: &[&str]) -> (Sandbox, TestClient) {
    let sb = sandbox().await;
    grant(&sb, subject, binding, runs);
    let c = as_front_proxy(&sb);
    (sb, c)
}

/// How many SubjectAccessReviews the retry server has sent so far.
fn reviews(sb: &Sandbox) -> usize {
    sb.emulator
        .faults()
        .requests()
        .iter()
        .filter(|r| r.verb == "create" && r.resource == "subjectaccessreviews")
        .count()
}

fn user(name: &str) -> Subject {
    Subject::User(name.into())
}

fn group(name: &str) -> Subject {
    Subject::Group(name.into())
}

/// Lets `subject` retry the runs named `runs` in the test namespace (every run there if none):
/// the binding `binding` of a [`retry_rule`].
fn grant(sb: &Sandbox, subject: Subject, binding: &str, runs: &[&str]) {
    let rule = retry_rule(&[NS]);
    let rule = if runs.is_empty() {
        rule
    } else {
        rule.named(runs)
    };
    sb.emulator.policy().bind(subject, binding, vec![rule]);
}

/// A client with the bearer `token` that does not replay requests.
fn token_client(sb: &Sandbox, token: &str) -> kube::Client {
    let mut cfg = sb.emulator.kube_config_token(token).expect("config");
    cfg.default_retry = false;
    kube::Client::try_from(cfg).expect("client")
}

/// `create pipelineruns/retry` in `namespaces` (a RoleBinding of `tekton-retry-edit`).
fn retry_rule(namespaces: &[&str]) -> Rule {
    Rule::resources(&["retry.tekton.dev"], &["pipelineruns/retry"], &["create"])
        .in_namespaces(namespaces)
}

#[tokio::test]
async fn duplicate_user_headers_take_the_first_and_never_merge() {
    let (sb, c) = sandbox_granting(user("carol"), "carol-retry", &[]).await;
    // A request with two user headers, in this order.
    let two_users = |first: &'static str, second: &'static str| {
        let (c, path) = (&c, dry(NS, "demo-failed"));
        async move {
            let who = [("X-Remote-User", first), ("X-Remote-User", second)];
            c.post(&path, &who, "").await
        }
    };
    // kube-apiserver's requestheader authenticator takes `h.Get(name)`: the first value
    // (`headerrequest/requestheader.go` `headerValue`). A second user header is never the user.
    let msg = two_users("mallory", "carol")
        .await
        .expect_status(403, "Forbidden");
    assert!(msg.contains("User \"mallory\""), "{msg}");
    two_users("carol", "admin").await.assert_code(200);
    // An empty first value is no user at all (not the second one): the front-proxy certificate
    // is not a client-CA user either, so 401.
    two_users("", "carol")
        .await
        .expect_status(401, "Unauthorized");
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_user_in_a_thousand_groups_is_reviewed_with_all_of_them() {
    let (sb, c) = sandbox_granting(group("group-999"), "last-group-retry", &[]).await;
    let names: Vec<String> = (0..1000).map(|i| format!("group-{i}")).collect();
    let mut headers = vec![("X-Remote-User", "dave")];
    headers.extend(names.iter().map(|g| ("X-Remote-Group", g.as_str())));
    let a = c.post(&dry(NS, "demo-failed"), &headers, "").await;
    assert_eq!(
        a.status,
        200,
        "the 1000th group grants the retry: {}",
        a.text()
    );
    // Over HTTP/2 as well.
    let h2 = TestClient::new(
        retry_addr(&sb),
        sb.retry_ca_pem(),
        Some(&sb.emulator.front_proxy_client().client),
        true,
    );
    let a = h2.post(&dry(NS, "demo-failed"), &headers, "").await;
    assert_eq!(a.status, 200, "HTTP/2: {}", a.text());
    // Past the HTTP/1.1 header-line limit (`MAX_HTTP1_HEADERS`) the request is refused whole
    // with 431, never cut short (a user with groups silently dropped would be a different user);
    // HTTP/2 has no line limit.
    let many: Vec<String> = (0..tekton_retry::server::MAX_HTTP1_HEADERS)
        .map(|i| format!("group-{i}"))
        .collect();
    let mut too_many = vec![("X-Remote-User", "dave")];
    too_many.extend(many.iter().map(|g| ("X-Remote-Group", g.as_str())));
    let a = c.post(&dry(NS, "demo-failed"), &too_many, "").await;
    assert_eq!(a.status, 431, "{}", a.text());
    let a = h2.post(&dry(NS, "demo-failed"), &too_many, "").await;
    assert_eq!(a.status, 200, "HTTP/2 has no line limit: {}", a.text());
    // The same user without the last group is refused: no group was lost or invented.
    let last = headers.pop();
    let a = c.post(&dry(NS, "demo-failed"), &headers, "").await;
    a.expect_status(403, "Forbidden");
    assert_eq!(last, Some(("X-Remote-Group", "group-999")));
    // End to end: a token user in 1000 groups through the front door (which sends one
    // `X-Remote-Group` line per group over HTTP/1.1, as kube-aggregator does).
    let group_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    sb.emulator
        .policy()
        .add_token("many-groups", UserInfo::new("frank", &group_refs));
    let client = token_client(&sb, "many-groups");
    let (code, body) = retry(&client, "demo-failed", json!({}), "?dryRun=All").await;
    assert_eq!(code, 200, "{body:#}");
    sb.shutdown(Duration::from_secs(2)).await;
}

/// The user `name` whose group and extra `scopes` carry CR/LF followed by a header line.
fn with_header_lines_in_group_and_extra(name: &str) -> UserInfo {
    let mut user = UserInfo::new(name, &["team\r\nX-Remote-User: admin"]);
    user.extra
        .insert("scopes".into(), vec!["x\r\nImpersonate-User: admin".into()]);
    user
}

#[tokio::test]
async fn control_characters_in_an_identity_never_become_headers() {
    let sb = sandbox().await;
    // A token user whose name and group carry CR/LF (an authenticator that does not validate
    // them): the front proxy cannot put them in a header, and the retry server must not end up
    // with another identity. The emulator authorizes this user at the front door, so what is
    // tested is what reaches the retry server.
    let evil = "eve\r\nX-Remote-Group: system:masters";
    let policy = sb.emulator.policy();
    policy.add_token("evil-token", with_header_lines_in_group_and_extra(evil));
    grant(&sb, user(evil), "evil-front-door", &[]);
    let client = token_client(&sb, "evil-token");
    let (code, body) = retry(&client, "demo-failed", json!({}), "?dryRun=All").await;
    assert_eq!(code, 401, "{body:#}");
    // A user whose name is clean but whose group and extra carry CR/LF: the proxy drops those
    // values, and the retry server sees exactly "eve" (not an injected admin or group).
    policy.add_token("eve-token", with_header_lines_in_group_and_extra("eve"));
    grant(&sb, user("eve"), "eve-retry", &[]);
    let client = token_client(&sb, "eve-token");
    let (code, body) = retry(&client, "demo-failed", json!({}), "").await;
    assert_eq!(code, 201, "{body:#}");
    let run = get(&runs(&sb.client("admin").expect("admin")), "demo-failed").await;
    assert_eq!(last_retry(&run)["by"], "eve", "{run:#}");
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn the_front_door_refuses_impersonation_by_a_viewer() {
    // The retry server itself never honours Impersonate-* headers (`server_auth`); here the
    // cluster's own front door: the viewer may not impersonate, so nothing reaches the server.
    let sb = sandbox().await;
    let mut cfg = sb.emulator.kube_config("viewer").expect("config");
    cfg.auth_info.impersonate = Some("admin".into());
    cfg.default_retry = false;
    let client = kube::Client::try_from(cfg).expect("client");
    let (code, body) = retry(&client, "demo-failed", json!({}), "?dryRun=All").await;
    assert_eq!(code, 403, "{body:#}");
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn allowed_in_one_namespace_denied_in_another() {
    let sb = sandbox().await;
    sb.emulator.add_user("carol", &["team-a"]);
    grant(&sb, user("carol"), "carol-retry-demo", &[]);
    // Through the front door (the emulator authorizes first, as kube-apiserver does) ...
    let carol = client_no_replay(&sb, "carol");
    let (code, body) = retry(&carol, "demo-failed", json!({}), "?dryRun=All").await;
    assert_eq!(code, 200, "{body:#}");
    // ... and straight at the retry server, whose own SubjectAccessReview decides.
    let c = as_front_proxy(&sb);
    let who = [("X-Remote-User", "carol"), ("X-Remote-Group", "team-a")];
    c.post(&dry(NS, "demo-failed"), &who, "")
        .await
        .assert_code(200);
    let a = c.post(&dry("team-b", "demo-failed"), &who, "").await;
    let msg = a.expect_status(403, "Forbidden");
    assert_eq!(
        msg,
        r#"pipelineruns.retry.tekton.dev "demo-failed" is forbidden: User "carol" cannot create resource "pipelineruns/retry" in API group "retry.tekton.dev" in the namespace "team-b""#
    );
    // A run that does not exist where the caller may not retry is 403, not 404: the answer
    // tells nothing about which runs exist.
    c.post(&dry("team-b", "no-such-run"), &who, "")
        .await
        .expect_status(403, "Forbidden");
    let a = c.post(&dry(NS, "no-such-run"), &who, "").await;
    assert_eq!(a.status, 404, "{}", a.text());
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_rule_for_one_run_allows_only_that_run() {
    let (sb, c) = sandbox_granting(user("erin"), "erin-one-run", &["demo-failed"]).await;
    let who = [("X-Remote-User", "erin")];
    c.post(&dry(NS, "demo-failed"), &who, "")
        .await
        .assert_code(200);
    c.post(&dry(NS, "demo-cancelled"), &who, "")
        .await
        .expect_status(403, "Forbidden");
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn the_decision_cache_never_answers_for_another_user_group_extra_namespace_or_name() {
    let (sb, c) = sandbox_granting(group("retriers"), "retriers-one-run", &["demo-failed"]).await;
    let allowed: Vec<(&str, &str)> = vec![
        ("X-Remote-User", "alice"),
        ("X-Remote-Group", "retriers"),
        ("X-Remote-Extra-Scopes", "view"),
    ];
    c.post(&dry(NS, "demo-failed"), &allowed, "")
        .await
        .assert_code(200);
    let after_first = reviews(&sb);
    assert!(after_first >= 1);
    // The identical request is answered from the cache (so the cache is on and what follows
    // tests its key, not its absence).
    c.post(&dry(NS, "demo-failed"), &allowed, "")
        .await
        .assert_code(200);
    assert_eq!(reviews(&sb), after_first, "served from the cache");

    // Each differing attribute is a new review and a denial, never the cached allow.
    let bob = [("X-Remote-User", "bob"), ("X-Remote-Extra-Scopes", "view")];
    let alice_alone = [
        ("X-Remote-User", "alice"),
        ("X-Remote-Extra-Scopes", "view"),
    ];
    let group_as_user = [("X-Remote-User", "retriers"), ("X-Remote-Group", "alice")];
    let group_as_extra = [
        ("X-Remote-User", "alice"),
        ("X-Remote-Extra-Retriers", "retriers"),
    ];
    let other_identities: [(&str, &[(&str, &str)]); 4] = [
        ("another user without the group", &bob),
        ("the same user without the group", &alice_alone),
        ("the group name as the user name", &group_as_user),
        ("the group as an extra", &group_as_extra),
    ];
    let other_runs = [
        ("another namespace", "team-b", "demo-failed"),
        ("another run", NS, "demo-cancelled"),
    ];
    let denied = (other_identities.into_iter())
        .map(|(what, headers)| (what, headers, NS, "demo-failed"))
        .chain(other_runs.map(|(what, ns, name)| (what, &allowed[..], ns, name)));
    for (what, headers, ns, name) in denied {
        let before = reviews(&sb);
        let a = c.post(&dry(ns, name), headers, "").await;
        assert_eq!(a.status, 403, "{what}: {}", a.text());
        assert_eq!(reviews(&sb), before + 1, "{what}: reviewed, not cached");
        // Asked twice, the denial is cached too, and still a denial.
        let a = c.post(&dry(ns, name), headers, "").await;
        assert_eq!(a.status, 403, "{what} (again): {}", a.text());
        assert_eq!(reviews(&sb), before + 1, "{what} (again): from the cache");
    }
    // Another extra value or uid is another user: reviewed again (the policy ignores both, so
    // it is allowed, but not from the cache).
    for (what, extra) in [
        ("another extra value", ("X-Remote-Extra-Scopes", "admin")),
        ("a uid", ("X-Remote-Uid", "alice-2")),
        (
            "another extra key",
            ("X-Remote-Extra-Acme.com%2Fteam", "view"),
        ),
    ] {
        let mut h = allowed.clone();
        h.push(extra);
        let before = reviews(&sb);
        let a = c.post(&dry(NS, "demo-failed"), &h, "").await;
        assert_eq!(a.status, 200, "{what}: {}", a.text());
        assert_eq!(reviews(&sb), before + 1, "{what}: reviewed, not cached");
    }
    // Percent-encoding of an extra key is decoded before it is a key (kube-apiserver's
    // `unescapeExtraKey`): `%61cme.com%2Fteam` is `acme.com/team` as `Acme.com%2Fteam` is, the same
    // user, so the second is a cache hit. (The two header names differ even lowercased, so a cache
    // keyed on the raw header would miss here.)
    let mut h = allowed.clone();
    h.push(("X-Remote-Extra-%61cme.com%2Fteam", "view"));
    let before = reviews(&sb);
    c.post(&dry(NS, "demo-failed"), &h, "")
        .await
        .assert_code(200);
    assert_eq!(reviews(&sb), before, "the same decoded extra key");
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn path_tricks_in_the_namespace_or_name_are_refused_before_any_review() {
    let (sb, c) = sandbox_granting(user("carol"), "carol-retry-demo", &[]).await;
    let who = [("X-Remote-User", "carol")];
    let before = reviews(&sb);
    // A name that, decoded by the API server the engine calls, would address another namespace's
    // run (a confused deputy: reviewed for `demo`, acted on elsewhere), and other non-names.
    for (ns, name) in [
        (
            NS,
            "x%2F..%2F..%2F..%2Fnamespaces%2Fteam-b%2Fpipelineruns%2Fdemo-failed",
        ),
        (NS, "demo-failed%2Fstatus"),
        (NS, ".."),
        (NS, "Demo-Failed"),
        ("demo%2F..%2Fteam-b", "demo-failed"),
        ("..", "demo-failed"),
    ] {
        let a = c
            .post(
                &format!(
                    "/apis/retry.tekton.dev/v1alpha1/namespaces/{ns}/pipelineruns/{name}/retry?dryRun=All"
                ),
                &who,
                "",
            )
            .await;
        assert!(
            a.status == 400 || a.status == 404,
            "{ns}/{name}: {} {}",
            a.status,
            a.text()
        );
        assert_eq!(a.json()["kind"], "Status", "{ns}/{name}");
    }
    assert_eq!(
        reviews(&sb),
        before,
        "nothing was reviewed, so nothing was done"
    );
    let run = get(&runs(&sb.client("admin").expect("admin")), "demo-failed").await;
    assert!(is_failed(&run));
    sb.shutdown(Duration::from_secs(2)).await;
}
