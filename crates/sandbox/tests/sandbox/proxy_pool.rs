//! The sandbox's front proxy keeps connections to the retry server alive between requests, as
//! kube-aggregator's pooled transport does.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::time::Duration;

use sandbox_support::*;

async fn discovery(client: &kube::Client) -> String {
    let req = http::Request::get("/apis/retry.tekton.dev/v1alpha1")
        .body(Vec::new())
        .expect("request");
    client
        .request_text(req)
        .await
        .expect("discovery through the front proxy")
}

#[tokio::test]
async fn proxied_requests_reuse_the_backend_connection() {
    let sb = start_unseeded().await;
    let admin = sb.client("admin").expect("client");
    assert!(discovery(&admin).await.contains("pipelineruns/retry"));
    let before = sb.emulator.proxy().backend_connects();
    for _ in 0..20 {
        assert!(discovery(&admin).await.contains("pipelineruns/retry"));
    }
    let opened = sb.emulator.proxy().backend_connects() - before;
    // Sequential requests go over one idle connection (a concurrent availability probe may need
    // one more).
    assert!(
        opened <= 2,
        "{opened} new connections for 20 sequential requests"
    );

    // A backend set again starts from new connections, and they work.
    let before_clear = sb.emulator.proxy().backend_connects();
    sb.emulator.proxy().clear_backend();
    sb.emulator
        .set_aggregated_backend(&sb.retry_url(), sb.retry_ca_pem())
        .expect("backend");
    assert!(
        sb.emulator
            .wait_aggregated_available(Duration::from_secs(20))
            .await
    );
    assert!(discovery(&admin).await.contains("pipelineruns/retry"));
    assert!(
        sb.emulator.proxy().backend_connects() > before_clear,
        "the connections pooled for the old backend were reused"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn concurrent_requests_each_get_a_connection() {
    let sb = start_unseeded().await;
    let admin = sb.client("admin").expect("client");
    let answers = futures::future::join_all((0..16).map(|_| discovery(&admin))).await;
    assert!(answers.iter().all(|a| a.contains("pipelineruns/retry")));
    // Connections busy with an answer are not handed out again, so each request was answered;
    // once idle they are reused.
    let before = sb.emulator.proxy().backend_connects();
    for _ in 0..10 {
        discovery(&admin).await;
    }
    assert!(sb.emulator.proxy().backend_connects() - before <= 2);
    sb.shutdown(Duration::from_secs(2)).await;
}
