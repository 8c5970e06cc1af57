//! Connection limits of the secure port, with short test settings: the first-request and idle
//! timeouts, the max-in-flight 429, the HTTP/2 early answer readable by a client still sending
//! its body, and GOAWAY after an unauthenticated HTTP/2 request.

use tekton_retry_test_support::server as server_support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use server_support::*;
use tekton_retry::server::ConnLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn short_timeouts() -> Knobs {
    Knobs {
        conn: ConnLimits {
            first_request_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_millis(800),
            ..ConnLimits::default()
        },
        ..Knobs::default()
    }
}

/// Reads until the server closes the connection; `None` if it is still open after `secs`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(s: &mut S, secs: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(Duration::from_secs(secs), s.read_to_end(&mut out)).await {
        Ok(_) => Some(out),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_connection_without_a_first_request_is_closed() {
    let mut h = Harness::start_with(short_timeouts()).await;
    let mut tls = h.client(None).connect().await;
    assert!(
        closed_within(&mut tls, 10).await.is_some(),
        "closed after the first-request timeout"
    );
    // A half-sent head counts as no request either.
    let mut tls = h.client(None).connect().await;
    tls.write_all(b"GET /apis HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    assert!(closed_within(&mut tls, 10).await.is_some());
    h.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_a_request() {
    let mut h = Harness::start_with(short_timeouts()).await;
    let mut tls = h.client(None).connect().await;
    tls.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).await.expect("answer");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(
        closed_within(&mut tls, 10).await.is_some(),
        "closed after the idle timeout"
    );
    // HTTP/2: GOAWAY and close.
    let (_sender, conn) = h.client_h2(None).h2_handshake::<Full<Bytes>>().await;
    assert!(
        tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .is_ok(),
        "the HTTP/2 connection ends"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn requests_past_the_in_flight_bound_are_429() {
    let mut h = Harness::start_tuned(|k| k.max_in_flight = 1).await;
    let gate = h.engine.hold();
    let path = retry_path("demo", "r1");
    let first = {
        let client = h.client_as("alice", &[]);
        let path = path.clone();
        tokio::spawn(async move { client.post(&path, &[], "{}").await })
    };
    assert!(
        eventually(10, || h.engine.calls().len() == 1).await,
        "the first retry is in the engine"
    );
    let bob = h.client(Some(&h.client_ca.issue_client("bob", &[]).expect("cert")));
    let second = bob.post(&path, &[], "{}").await;
    let msg = second.expect_status(429, "TooManyRequests");
    assert!(msg.contains("--max-requests-inflight"), "{msg}");
    assert_eq!(second.header("retry-after"), Some("1"));
    // Health probes are not counted.
    assert_eq!(bob.get("/readyz").await.status, 200);
    // system:masters is exempt, as in kube-apiserver.
    let admin = h.client(Some(
        &h.client_ca
            .issue_client("admin", &["system:masters"])
            .expect("cert"),
    ));
    assert_eq!(admin.get("/apis").await.status, 200);
    gate.add_permits(1);
    assert_eq!(first.await.expect("task").status.as_u16(), 201);
    assert_eq!(bob.get("/apis").await.status, 200, "a slot is free again");
    h.shutdown().await;
}

/// curl sends a POST body after the headers; an answer given before the body is read must still
/// reach it (kube-apiserver's Go server reads small bodies to the end before resetting).
#[tokio::test]
async fn an_early_http2_answer_reaches_a_client_still_sending_its_body() {
    let mut h = Harness::start().await;
    let (mut sender, conn) = h.client_h2(None).h2_handshake().await;
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let req = http::Request::post(format!(
        "https://localhost:{}{}",
        h.addr.port(),
        retry_path("demo", "r1")
    ))
    .body(body)
    .expect("req");
    let answer = tokio::spawn(async move {
        let resp = sender.send_request(req).await.expect("response");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, body)
    });
    tx.send(Ok(Frame::data(Bytes::from(vec![b' '; 4096]))))
        .await
        .expect("first part");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rest = tx.send(Ok(Frame::data(Bytes::from_static(b"{}")))).await;
    drop(tx);
    let (status, body) = answer.await.expect("task");
    assert_eq!(status, 401);
    assert!(
        String::from_utf8_lossy(&body).contains("Unauthorized"),
        "a Status body"
    );
    assert!(
        rest.is_ok(),
        "the server read the body instead of resetting the stream"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_unauthenticated_http2_request_ends_its_connection() {
    let mut h = Harness::start().await;
    let (mut sender, conn) = h.client_h2(None).h2_handshake().await;
    let conn = tokio::spawn(conn);
    let req = http::Request::get(format!("https://localhost:{}/apis", h.addr.port()))
        .body(Full::new(Bytes::new()))
        .expect("req");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 401);
    assert!(
        tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .is_ok(),
        "GOAWAY after the 401"
    );
    // An authenticated client keeps its connection for the next request.
    let (mut sender, conn) = h.client_h2_as("alice", &[]).h2_handshake().await;
    tokio::spawn(conn);
    for _ in 0..2 {
        let req = http::Request::get(format!("https://localhost:{}/apis", h.addr.port()))
            .body(Full::new(Bytes::new()))
            .expect("req");
        assert_eq!(
            sender.send_request(req).await.expect("response").status(),
            200
        );
    }
    h.shutdown().await;
}
