//! `tekton-retry serve --shutdown-delay`: on SIGTERM readiness turns false at once while the
//! listener keeps accepting and answering (requests routed before the Service endpoints update
//! still get answers); after the delay the listener closes and the process exits cleanly.

use tekton_retry_test_support::server as server_support;

use std::time::{Duration, Instant};

use server_support::*;

/// The shutdown delay of the process under test.
const DELAY: Duration = Duration::from_secs(6);

/// A retry request as carol (bearer token): authenticated, authorized, answered by the engine.
async fn retry_answer(client: &TestClient) -> u16 {
    client
        .post(
            &retry_path("demo", "demo-failed"),
            &[("Authorization", &format!("Bearer {CAROL_TOKEN}"))],
            "",
        )
        .await
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_false_and_keeps_serving_for_the_delay() {
    let files = ServeFiles::new().await;
    let mut child = files
        .command(env!("CARGO_BIN_EXE_tekton-retry"))
        .arg(format!("--shutdown-delay={}s", DELAY.as_secs()))
        .arg("--shutdown-grace-period=5s")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let addr = files.addr();
    let client = files.ready_client().await;
    // The fake API has no such run: the real engine answers 404 after authn and authz.
    assert_eq!(retry_answer(&client).await, 404);

    let term = Instant::now();
    sigterm(&child);

    // Readiness turns false at once (on new connections: the listener still accepts).
    let mut unready_after = None;
    while term.elapsed() < Duration::from_secs(2) {
        if client.get("/readyz").await.status == 500 {
            unready_after = Some(term.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let unready_after = unready_after.expect("/readyz answered 500 within 2 s of SIGTERM");
    let readyz = client.get("/readyz").await;
    assert!(
        readyz.text().contains("[-]shutdown failed"),
        "{}",
        readyz.text()
    );
    assert_eq!(client.get("/livez").await.status, 200, "still live");

    // Half-way through the delay: new connections are still accepted and requests answered.
    tokio::time::sleep((DELAY / 2).saturating_sub(term.elapsed())).await;
    assert!(
        term.elapsed() < DELAY - Duration::from_secs(1),
        "the test itself was too slow to check within the delay"
    );
    assert_eq!(
        retry_answer(&client).await,
        404,
        "a request routed during the delay is answered"
    );

    // After the delay the listener closes and the process exits.
    let mut closed_after = None;
    while term.elapsed() < DELAY + Duration::from_secs(20) {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            closed_after = Some(term.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let closed_after = closed_after.expect("the listener closed after the delay");
    assert!(
        closed_after >= DELAY / 2,
        "closed after {closed_after:?}, before the delay was over"
    );
    assert_clean_exit(&mut child).await;
    eprintln!("readiness false after {unready_after:?}; listener closed after {closed_after:?} (delay {DELAY:?})");
}
