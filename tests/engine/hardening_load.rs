//! Load: many concurrent retries spread over many failed runs, through the front
//! proxy, with a client that never replays: exactly one 201 per run, every other answer a 409
//! Conflict `Status`, no 5xx, and afterwards every run succeeded at attempt 2 with each failed
//! run deleted once and no succeeded run deleted.
//!
//! CI runs 200 retries over 20 runs. The full size (1000 over 100) is `#[ignore]`d for
//! the 2-core CI machines; run it with
//! `cargo test --test hardening_load -- --ignored --nocapture`.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use futures::stream::{self, StreamExt};
use sandbox_support::*;
use serde_json::{json, Value};
use tekton_retry_sandbox::SandboxOptions;

async fn load(runs: usize, per_run: usize) {
    let sb = start_with(SandboxOptions {
        engine: patient_engine(),
        ..Default::default()
    })
    .await;
    let admin = client_no_replay(&sb, "admin");
    let names: Vec<String> = (0..runs).map(|i| format!("load-{i}")).collect();
    let t = Instant::now();
    // Create the failed runs a few at a time (the simulator reconciles them all).
    stream::iter(names.iter())
        .for_each_concurrent(10, |n| {
            let c = admin.clone();
            async move {
                failed_run(&c, n, "b").await;
            }
        })
        .await;
    eprintln!("{runs} failed runs ready in {:?}", t.elapsed());
    let before: BTreeMap<String, Value> = join_all(names.iter().map(|n| {
        let api = taskruns(&admin);
        async move { (n.clone(), get(&api, &format!("{n}-a")).await) }
    }))
    .await
    .into_iter()
    .collect();

    let t = Instant::now();
    let calls = (0..runs * per_run).map(|i| {
        let c = admin.clone();
        let name = names[i % runs].clone();
        async move {
            let (code, body) = retry(&c, &name, json!({}), "").await;
            (name, code, body)
        }
    });
    let answers = tokio::time::timeout(Duration::from_secs(600), join_all(calls))
        .await
        .expect("every retry is answered");
    eprintln!("{} retries answered in {:?}", answers.len(), t.elapsed());

    let mut created: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_code: BTreeMap<u16, usize> = BTreeMap::new();
    for (name, code, body) in &answers {
        *by_code.entry(*code).or_default() += 1;
        match code {
            201 => {
                *created.entry(name.as_str()).or_default() += 1;
                assert_eq!(body["status"]["attempt"], 2, "{name}: {body:#}");
            }
            409 => {
                assert_eq!(body["kind"], "Status", "{name}: {body:#}");
                assert_eq!(body["reason"], "Conflict", "{name}: {body:#}");
            }
            _ => panic!("{name}: unexpected {code}: {body:#}"),
        }
    }
    eprintln!("answers by code: {by_code:?}");
    assert_eq!(by_code.get(&201), Some(&runs), "{by_code:?}");
    assert_eq!(
        by_code.get(&409),
        Some(&(runs * per_run - runs)),
        "{by_code:?}"
    );
    assert!(
        created.values().all(|n| *n == 1) && created.len() == runs,
        "one 201 per run: {created:?}"
    );

    let faults = sb.emulator.faults();
    for n in &names {
        let run = wait_run(&admin, n, 120, is_succeeded).await;
        assert_eq!(
            annotation(&run, "retry.tekton.dev/attempt").as_deref(),
            Some("2"),
            "{n}"
        );
        let a = get(&taskruns(&admin), &format!("{n}-a")).await;
        assert_eq!(a["metadata"]["uid"], before[n]["metadata"]["uid"], "{n}");
        assert_eq!(
            faults.count_named("delete", "taskruns", NS, &format!("{n}-a")),
            0,
            "{n}"
        );
        assert_eq!(
            faults.count_named("delete", "taskruns", NS, &format!("{n}-b")),
            1,
            "{n}: the failed run is deleted once"
        );
    }
    sb.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_retries_over_twenty_runs() {
    load(20, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the issue's full size; minutes on 2 cores: cargo test --test hardening_load -- --ignored"]
async fn a_thousand_concurrent_retries_over_a_hundred_runs() {
    load(100, 10).await;
}
