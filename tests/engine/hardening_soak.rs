//! The mixed-traffic soak, not run in CI: `hack/soak.sh` runs it for 10 minutes
//! (`SOAK_SECONDS`, default 600; `SOAK_WORKERS`, default 6). Everything is in this process on
//! 127.0.0.1: the sandbox (emulator, front proxy, serve with the real engine and recorder, Tekton
//! simulator) and the callers.
//!
//! Each worker loops, until the time is up, over: create a run that fails, a dry run (200), a
//! malformed body (400), the viewer's retry (403), three racing retries (one 201, two 409), a
//! retry of the succeeded run (409), a discovery read, then delete the run. A small rate of
//! injected latency on the server's writes makes the races overlap. Every answer is counted;
//! any 5xx or unexpected code fails the soak. The process's resident memory is sampled every
//! 15 s and must stay flat in the second half of the run: the emulator keeps a bounded history
//! of watch events (5000, each a whole object), which fills during the first minutes, so the
//! last sample may exceed the half-way sample by at most a quarter plus 32 MiB (at the rate of a
//! leak of one retry's objects per retry, it would grow by hundreds of MiB).

use tekton_retry_test_support::sandbox as sandbox_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use sandbox_support::*;
use serde_json::json;
use tekton_retry_sandbox::faults::{FaultAction, FaultRule, Trigger};
use tekton_retry_sandbox::SandboxOptions;

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of this process in KiB (Linux `/proc/self/status`).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

type Counts = Arc<Mutex<BTreeMap<(&'static str, u16), u64>>>;

fn count(c: &Counts, what: &'static str, code: u16) {
    if let Ok(mut g) = c.lock() {
        *g.entry((what, code)).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 10-minute soak: hack/soak.sh"]
async fn mixed_traffic_soak() {
    let seconds = env_u64("SOAK_SECONDS", 600);
    let workers = env_u64("SOAK_WORKERS", 6);
    let sb = start_with(SandboxOptions {
        engine: patient_engine(),
        ..Default::default()
    })
    .await;
    for verb in ["patch", "delete"] {
        sb.emulator.faults().add(
            FaultRule::new(
                verb,
                if verb == "patch" {
                    "pipelineruns"
                } else {
                    "taskruns"
                },
                FaultAction::Latency(Duration::from_millis(150)),
            )
            .trigger(Trigger::Rate(0.05)),
        );
    }
    let counts: Counts = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();

    let sampler = {
        let counts = counts.clone();
        let faults = sb.emulator.faults().clone();
        let store = sb.emulator.store().clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_secs(15)).await;
                // The emulator's request log is test bookkeeping, not the server's memory.
                faults.clear_log();
                let rss = rss_kib();
                samples.push((started.elapsed().as_secs(), rss));
                let total: u64 = counts.lock().map(|g| g.values().sum()).unwrap_or(0);
                eprintln!(
                    "soak t={:>4}s rss={} MiB answers={total} objects={}",
                    started.elapsed().as_secs(),
                    rss / 1024,
                    store.all().len()
                );
            }
            samples
        })
    };

    let tasks = (0..workers).map(|w| {
        let admin = client_no_replay(&sb, "admin");
        let viewer = client_no_replay(&sb, "viewer");
        let counts = counts.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                let name = format!("soak-{w}-{i}");
                i += 1;
                failed_run(&admin, &name, "b").await;
                let (c, b) = retry(&admin, &name, json!({}), "?dryRun=All").await;
                assert_eq!(c, 200, "{name} dry run: {b:#}");
                count(&counts, "dry-run", c);
                let (c, b) = retry(&admin, &name, json!({"spec": {"bogus": 1}}), "").await;
                assert_eq!(c, 400, "{name} bad body: {b:#}");
                count(&counts, "bad-body", c);
                let (c, b) = retry(&viewer, &name, json!({}), "").await;
                assert_eq!(c, 403, "{name} viewer: {b:#}");
                count(&counts, "forbidden", c);
                let race = join_all((0..3).map(|_| retry(&admin, &name, json!({}), ""))).await;
                let mut codes: Vec<u16> = race.iter().map(|(c, _)| *c).collect();
                codes.sort_unstable();
                assert_eq!(codes, vec![201, 409, 409], "{name} race: {race:#?}");
                for c in codes {
                    count(&counts, "race", c);
                }
                wait_run(&admin, &name, 60, is_succeeded).await;
                let (c, b) = retry(&admin, &name, json!({}), "").await;
                assert_eq!(c, 409, "{name} succeeded: {b:#}");
                count(&counts, "succeeded", c);
                let req = http::Request::get("/apis/retry.tekton.dev/v1alpha1")
                    .body(Vec::new())
                    .expect("request");
                let discovery = admin.request_text(req).await;
                count(
                    &counts,
                    "discovery",
                    if discovery.is_ok() { 200 } else { 599 },
                );
                let _ = runs(&admin).delete(&name, &Default::default()).await;
            }
        })
    });
    for t in join_all(tasks).await {
        t.expect("a soak worker failed");
    }
    let samples = sampler.await.expect("sampler");
    let counts = counts.lock().map(|g| g.clone()).unwrap_or_default();
    eprintln!("soak answers: {counts:?}");
    eprintln!("soak rss samples (s, KiB): {samples:?}");
    assert!(
        counts.keys().all(|(_, code)| *code < 500),
        "no 5xx: {counts:?}"
    );
    let half = samples
        .iter()
        .find(|(t, _)| *t >= seconds / 2)
        .map(|(_, r)| *r);
    if let (Some(half), Some((_, last))) = (half, samples.last()) {
        assert!(
            *last <= half + half / 4 + 32 * 1024,
            "memory grew in the second half: {half} KiB at half-time, {last} KiB at the end"
        );
    }
    sb.shutdown(Duration::from_secs(5)).await;
}
