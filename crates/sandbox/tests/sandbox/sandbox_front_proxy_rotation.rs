//! The front proxy's client CA rotated in `kube-system/extension-apiserver-authentication` (as
//! kube-apiserver publishes it) reaches `serve` by its watch of that ConfigMap: requests through
//! the aggregation layer work again within seconds, far sooner than the fallback re-read
//! (`--authentication-config-resync`, 1 minute), and with only the rights the
//! `extension-apiserver-authentication-reader` Role gives (list/watch by `metadata.name`).

use tekton_retry_test_support::sandbox as sandbox_support;

use std::time::{Duration, Instant};

use sandbox_support::*;
use serde_json::json;

#[tokio::test]
async fn a_rotated_front_proxy_ca_arrives_by_the_watch() {
    let sb = start().await;
    let admin = sb.client("admin").expect("client");
    let (code, body) = retry(&admin, "demo-failed", json!({}), "?dryRun=All").await;
    assert_eq!(code, 200, "{body:#}");

    sb.emulator.rotate_front_proxy(false).expect("rotate");
    let rotated = Instant::now();
    let mut trusted_after = None;
    let mut last = None;
    while rotated.elapsed() < Duration::from_secs(20) {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            retry(&admin, "demo-failed", json!({}), "?dryRun=All"),
        )
        .await;
        if let Ok((200, _)) = attempt {
            trusted_after = Some(rotated.elapsed());
            break;
        }
        last = Some(attempt);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let trusted_after = trusted_after.unwrap_or_else(|| {
        panic!("the new front-proxy CA is not trusted 20 s after the rotation (the fallback re-read is 60 s away); last answer: {last:?}")
    });
    assert!(
        trusted_after < Duration::from_secs(20),
        "trusted only after {trusted_after:?}"
    );
    let watches = sb
        .emulator
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.verb == "watch" && r.namespace == "kube-system" && r.resource == "configmaps")
        .count();
    assert!(watches >= 1, "serve watches the ConfigMap");
    eprintln!("rotation effective after {trusted_after:?}");
    sb.shutdown(Duration::from_secs(2)).await;
}
