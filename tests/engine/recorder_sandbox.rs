//! The recorder against the whole sandbox: outcomes recorded once, Events, metrics, and
//! interrupted claims completed without another request.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use sandbox_support::*;
use serde_json::json;
use tekton_retry::recorder::{Recorder, RecorderOptions, RetryMetrics};
use tekton_retry::retry::Engine;
use tekton_retry_sandbox::faults::{FaultAction, FaultRule, Trigger};

/// `/metrics` of the retry server, fetched straight from it with the admin's client certificate.
async fn scrape(sb: &tekton_retry_sandbox::Sandbox) -> String {
    let mut cfg = sb.emulator.kube_config("admin").expect("config");
    cfg.cluster_url = sb.retry_url().parse().expect("url");
    let der: Vec<Vec<u8>> = rustls_pemfile::certs(&mut sb.retry_ca_pem().as_bytes())
        .map(|c| c.expect("pem").to_vec())
        .collect();
    cfg.root_cert = Some(der);
    let client = kube::Client::try_from(cfg).expect("client");
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    client.request_text(req).await.expect("metrics")
}

/// Asserts the value of each metric (by line prefix) in the scraped `text`.
fn assert_metrics(text: &str, want: &[(&str, f64)]) {
    for (prefix, value) in want {
        assert_eq!(metric(text, prefix), *value, "{prefix}: {text}");
    }
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn events(client: &kube::Client, run: &str, reason: &str) -> Vec<Event> {
    let api: kube::Api<Event> = kube::Api::namespaced(client.clone(), NS);
    api.list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(run) && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

/// Events are written right after the outcome: wait (bounded) until `n` are there.
async fn wait_events(client: &kube::Client, run: &str, reason: &str, n: usize) -> Vec<Event> {
    for _ in 0..200 {
        let found = events(client, run, reason).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    events(client, run, reason).await
}

async fn wait_recorded(client: &kube::Client, run: &str) -> serde_json::Value {
    let v = wait_run(client, run, 40, |v| last_retry(v)["outcome"].is_string()).await;
    last_retry(&v)
}

#[tokio::test]
async fn success_is_recorded_once_with_events_and_metrics() {
    let (sb, admin) = start_as_admin().await;
    retry_answers(
        &admin,
        "demo-failed",
        json!({"spec": {"reason": "registry back"}}),
        201,
    )
    .await;
    let lr = wait_recorded(&admin, "demo-failed").await;
    let run = get(&runs(&admin), "demo-failed").await;
    assert_eq!(lr["outcome"], "Succeeded");
    assert_eq!(
        lr["end"], run["status"]["completionTime"],
        "end is the run's new completionTime"
    );
    assert_eq!(lr["phase"], "ended");
    assert_eq!(
        wait_events(&admin, "demo-failed", "RetryStarted", 1)
            .await
            .len(),
        1
    );
    let done = wait_events(&admin, "demo-failed", "RetrySucceeded", 1).await;
    assert_eq!(done.len(), 1);
    assert!(
        done[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("recovered"),
        "{:?}",
        done[0].message
    );

    // A refusal moves its counter too.
    let (code, _) = retry(&admin, "demo-succeeded", json!({}), "").await;
    assert_eq!(code, 409);
    let text = scrape(&sb).await;
    // The recorder saw the retried run's and its record's changes (and only those: the seeded
    // runs never retried are not watched at all).
    assert!(
        metric(&text, "tekton_retry_recorder_events_total") >= 2.0,
        "{text}"
    );
    assert!(
        metric(&text, "tekton_retry_refusals_total{reason=\"Succeeded\"}") >= 1.0,
        "{text}"
    );
    assert_metrics(
        &text,
        &[
            (
                r#"tekton_retry_retries_total{namespace="demo",outcome="started"}"#,
                1.0,
            ),
            (
                r#"tekton_retry_retries_total{namespace="demo",outcome="succeeded"}"#,
                1.0,
            ),
            ("tekton_retry_attempt_duration_seconds_count", 1.0),
            ("tekton_retry_time_to_recovery_seconds_count", 1.0),
            // One answered retry and one refusal went through the engine.
            ("tekton_retry_request_duration_seconds_count", 2.0),
        ],
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_second_failure_is_recorded_as_failed() {
    let (sb, admin) = start_as_admin().await;
    failed_run(&admin, "again", "b:2").await;
    retry_answers(&admin, "again", json!({}), 201).await;
    let lr = wait_recorded(&admin, "again").await;
    assert_eq!(lr["outcome"], "Failed");
    assert_eq!(
        wait_events(&admin, "again", "RetryFailed", 1).await.len(),
        1
    );
    assert!(events(&admin, "again", "RetrySucceeded").await.is_empty());
    let text = scrape(&sb).await;
    assert_metrics(
        &text,
        &[
            (
                r#"tekton_retry_retries_total{namespace="demo",outcome="failed"}"#,
                1.0,
            ),
            // No recovery yet.
            ("tekton_retry_time_to_recovery_seconds_count", 0.0),
        ],
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn two_recorders_racing_record_the_outcome_once() {
    let (sb, admin) = start_as_admin().await;
    // A second replica's recorder, with its own engine and metrics, on the same cluster.
    let server_client =
        kube::Client::try_from(sb.emulator.server_kube_config().expect("cfg")).expect("client");
    let other_metrics = RetryMetrics::default();
    let other = Recorder::new(
        Engine::new(server_client.clone(), quick_engine()),
        other_metrics.clone(),
        RecorderOptions::default(),
    );
    let task = tokio::spawn(other.run(server_client));
    retry_answers(&admin, "demo-failed", json!({}), 201).await;
    wait_recorded(&admin, "demo-failed").await;
    tokio::time::sleep(Duration::from_secs(2)).await; // let both replicas see the final state
    assert_eq!(
        events(&admin, "demo-failed", "RetrySucceeded").await.len(),
        1,
        "one Event for one outcome"
    );
    let mut text = String::new();
    let mut reg = prometheus_client::registry::Registry::with_prefix("tekton_retry");
    other_metrics.register(&mut reg);
    prometheus_client::encoding::text::encode(&mut text, &reg).expect("encode");
    let here = metric(
        &scrape(&sb).await,
        "tekton_retry_retries_total{namespace=\"demo\",outcome=\"succeeded\"}",
    );
    let there = metric(
        &text,
        "tekton_retry_retries_total{namespace=\"demo\",outcome=\"succeeded\"}",
    );
    // Both replicas were alive and saw the run end: each handled the events of the run that
    // reached the outcome (a dead second recorder would leave this at 0).
    let seen_there = metric(&text, "tekton_retry_recorder_events_total");
    let seen_here = metric(&scrape(&sb).await, "tekton_retry_recorder_events_total");
    assert!(
        seen_here >= 2.0 && seen_there >= 2.0,
        "both recorders handled events ({seen_here}, {seen_there})"
    );
    assert_eq!(
        here + there,
        1.0,
        "exactly one replica counted the outcome ({here} + {there})"
    );
    task.abort();
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn an_interrupted_claim_is_completed_by_the_recorder() {
    let sb = start_with_recorder(quick_engine(), prompt_recorder(50)).await;
    let admin = client_no_replay(&sb, "admin");
    failed_run(&admin, "stuck", "b").await;
    let id = sb.emulator.faults().add(
        FaultRule::new(
            "patch",
            "pipelineruns",
            FaultAction::Error {
                code: 500,
                retry_after: None,
            },
        )
        .subresource("status")
        .named(NS, "stuck")
        .trigger(Trigger::FirstN(1)),
    );
    retry_answers(&admin, "stuck", json!({}), 500).await;
    let claimed = get(&runs(&admin), "stuck").await;
    assert_eq!(last_retry(&claimed)["phase"], "claimed");
    assert!(is_failed(&claimed), "interrupted before the reset");
    assert!(sb.emulator.faults().matched(id) >= 1);
    // No further request: the recorder completes the attempt after its grace period.
    let done = wait_run(&admin, "stuck", 90, is_succeeded).await;
    assert_eq!(
        annotation(&done, "retry.tekton.dev/attempt").as_deref(),
        Some("2")
    );
    let lr = wait_recorded(&admin, "stuck").await;
    assert_eq!(lr["phase"], "ended");
    assert_eq!(lr["outcome"], "Succeeded");
    assert_eq!(lr["by"], "admin", "the attempt stays the caller's");
    sb.shutdown(Duration::from_secs(2)).await;
}
