//! Readiness and the authentication ConfigMap under API trouble: a configuration once loaded is
//! kept (and the server stays ready) through API errors; readiness fails before a first valid
//! configuration, and when the API has been silent past `--authentication-config-max-staleness`.
//! Changes arrive by a watch of the one ConfigMap (by `metadata.name` field selector), not by the
//! periodic re-read.

use tekton_retry_test_support::server as server_support;

use std::time::Duration;

use server_support::*;
use tekton_retry_pki::Ca;

/// The retry route as the front proxy calls it, for checking that authentication still works.
async fn front_proxy_retry(proxy: &TestClient) -> u16 {
    proxy
        .post(
            &retry_path("demo", "demo-failed"),
            &[("X-Remote-User", "alice")],
            "",
        )
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn a_loaded_configuration_stays_ready_through_api_errors() {
    let mut h = Harness::start_tuned(|k| k.resync = Duration::from_millis(50)).await;
    let proxy = h.front_proxy();
    assert_eq!(front_proxy_retry(&proxy).await, 201);

    h.kube.set_configmap_fails(true);
    let failed_from = h.kube.configmap_gets();
    assert!(
        eventually(20, || h.kube.configmap_gets() >= failed_from + 10).await,
        "the server keeps re-reading the ConfigMap"
    );
    // Ten failed re-reads in a row (and a cut watch): still ready, still authenticating with the
    // configuration it had.
    assert!(h.handle.as_ref().expect("handle").ready());
    let readyz = h.client(None).get("/readyz?verbose").await;
    assert_eq!(readyz.status, 200, "{}", readyz.text());
    assert!(readyz
        .text()
        .contains("[+]extension-apiserver-authentication ok"));
    assert!(readyz.text().contains("[+]kubernetes-api ok"));
    assert_eq!(front_proxy_retry(&proxy).await, 201);
    h.shutdown().await;
}

#[tokio::test]
async fn readiness_waits_for_a_first_valid_configuration() {
    let front = Ca::new("front-proxy-ca").expect("ca");
    let mut h = Harness::start_with(Knobs {
        resync: Duration::from_millis(50),
        wait_ready: false,
        configmap_fails: true,
        ..Default::default()
    })
    .await;
    // The API answers, but with a ConfigMap that does not parse.
    let mut broken = auth_configmap(&front, &h.client_ca, &[FRONT_PROXY_CN]);
    broken.insert(
        "requestheader-allowed-names".into(),
        "front-proxy-client".into(),
    );
    h.kube.set_configmap(broken);
    h.kube.set_configmap_fails(false);
    let from = h.kube.configmap_gets();
    assert!(eventually(20, || h.kube.configmap_gets() >= from + 3).await);
    let readyz = h.client(None).get("/readyz").await;
    assert_eq!(readyz.status, 500, "{}", readyz.text());
    assert!(
        readyz
            .text()
            .contains("[-]extension-apiserver-authentication failed"),
        "{}",
        readyz.text()
    );
    assert!(
        readyz.text().contains("[+]kubernetes-api ok"),
        "the API did answer: {}",
        readyz.text()
    );

    h.kube
        .set_configmap(auth_configmap(&h.front_ca, &h.client_ca, &[FRONT_PROXY_CN]));
    let handle = h.handle.as_ref().expect("handle");
    assert!(handle.wait_ready(Duration::from_secs(20)).await);
    let proxy = h.front_proxy();
    assert_eq!(front_proxy_retry(&proxy).await, 201);
    h.shutdown().await;
}

#[tokio::test]
async fn readiness_fails_when_the_api_is_silent_past_the_bound() {
    let mut h = Harness::start_with(Knobs {
        resync: Duration::from_millis(50),
        max_staleness: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let proxy = h.front_proxy();
    h.kube.set_configmap_fails(true);
    let handle = h.handle.take().expect("handle");
    assert!(
        eventually(20, || !handle.ready()).await,
        "not ready once the API has been silent past the bound"
    );
    let readyz = h.client(None).get("/readyz").await;
    assert_eq!(readyz.status, 500);
    assert!(
        readyz.text().contains("[-]kubernetes-api failed"),
        "{}",
        readyz.text()
    );
    assert!(readyz
        .text()
        .contains("[+]extension-apiserver-authentication ok"));
    // The configuration loaded before is still used.
    assert_eq!(front_proxy_retry(&proxy).await, 201);

    h.kube.set_configmap_fails(false);
    assert!(
        handle.wait_ready(Duration::from_secs(20)).await,
        "ready again once the API answers"
    );
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn configmap_changes_arrive_by_watch() {
    // The fallback re-read is an hour away: a rotation seen within seconds came by the watch.
    let mut h = Harness::start_tuned(|k| k.resync = Duration::from_secs(3600)).await;
    let new_front = Ca::new("front-proxy-ca-2").expect("ca");
    h.kube
        .set_configmap(auth_configmap(&new_front, &h.client_ca, &[FRONT_PROXY_CN]));
    let cert = new_front.issue_client(FRONT_PROXY_CN, &[]).expect("cert");
    let new_proxy = h.client(Some(&cert));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut trusted = false;
    while tokio::time::Instant::now() < deadline {
        if front_proxy_retry(&new_proxy).await == 201 {
            trusted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(trusted, "the rotated requestheader CA arrived by the watch");
    let watches = h.kube.configmap_watches();
    assert!(
        watches.iter().all(|q| q
            .contains("fieldSelector=metadata.name%3Dextension-apiserver-authentication")),
        "{watches:?}"
    );
    assert!(
        h.kube.configmap_gets() <= 1,
        "at most the first fallback read (1 s before the first load) was made: {}",
        h.kube.configmap_gets()
    );
    h.shutdown().await;
}
