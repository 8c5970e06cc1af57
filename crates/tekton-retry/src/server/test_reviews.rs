//! A fake kube-apiserver for the server's unit tests: TokenReviews answered from a fixed table of
//! tokens, SubjectAccessReviews allowed for everyone but `eve`, reached through a real
//! `kube::Client` and counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};

/// The TokenReview status of each token; `eve` is denied every SubjectAccessReview.
fn token_status(token: &str) -> Value {
    let user = |name: &str, uid: &str, groups: &[&str]| {
        json!({"authenticated": true,
               "user": {"username": name, "uid": uid, "groups": groups,
                        "extra": {"scopes.example.dev": ["read"]}}})
    };
    match token {
        "admin-token" => user("admin", "", &["system:masters"]),
        "bob-token" => user("bob", "uid-bob", &["dev"]),
        "eve-token" => user("eve", "", &[]),
        // Authenticated, but as nobody.
        "nameless-token" => user("", "uid-x", &[]),
        // A user the review says is not authenticated (a status kube-apiserver never sends).
        "contradiction-token" => json!({"authenticated": false, "user": {"username": "mallory"}}),
        _ => json!({"authenticated": false}),
    }
}

/// A client of the fake API, and the number of requests it answered.
pub fn review_api() -> (kube::Client, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let svc = tower::service_fn(move |req: Request<Body>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            let path = req.uri().path().to_string();
            let bytes = req
                .into_body()
                .collect_bytes()
                .await
                .map_err(std::io::Error::other)?;
            let sent: Value = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
            let status = if path == crate::server::review::TOKEN_REVIEWS {
                token_status(sent["spec"]["token"].as_str().unwrap_or_default())
            } else {
                let allowed = sent["spec"]["user"] != "eve";
                json!({"allowed": allowed, "reason": if allowed { "" } else { "no binding" }})
            };
            let mut answer = sent;
            answer["status"] = status;
            Response::builder()
                .status(201)
                .header("content-type", "application/json")
                .body(Body::from(answer.to_string().into_bytes()))
                .map_err(std::io::Error::other)
        }
    });
    (kube::Client::new(svc, "default"), calls)
}
