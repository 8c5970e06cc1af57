//! Faults beyond one API error per executor step, against the whole
//! sandbox: the serve process killed in the middle of a retry (its own tokio runtime, shut down
//! at once, as a crashed pod), 409 Conflict injected on the claim and on the status write, and a
//! graceful shutdown of `serve` with retries in flight. After each: the attempt completes (on the
//! next request or by the recorder), no succeeded run is deleted, no run is deleted twice, and
//! nothing hangs (generous deadlines only). `tests/engine_sandbox.rs` covers 500, 429, timeouts
//! and dropped connections at each executor step.

use tekton_retry_test_support::sandbox as sandbox_support;
use tekton_retry_test_support::server as server_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use sandbox_support::*;
use serde_json::{json, Value};
use server_support::{retry_path, TestClient};
use tekton_retry::retry::engine::{Engine, EngineOptions};
use tekton_retry::server::{Metrics, Server, ServerHandle, ServerOptions, TlsSource};
use tekton_retry_pki::Ca;
use tekton_retry_sandbox::faults::{FaultAction, FaultId, FaultRule, Trigger};
use tekton_retry_sandbox::Sandbox;
use tekton_retry_test_support::async_test_cases;

/// Engine options for these tests: quick, and a claim not being worked on counts as interrupted
/// after one second (the default is 30 s).
fn engine_opts() -> EngineOptions {
    EngineOptions {
        claim_grace: Duration::from_secs(1),
        ..patient_engine()
    }
}

/// A second `serve` (server + engine) on the same emulator, with its own serving CA.
struct Serve {
    handle: ServerHandle,
    ca_pem: String,
}

/// A server of the product with its own engine, as the server's identity, serving `cert`; ready.
async fn start_ready_server(
    server_cfg: kube::Config,
    cert: tekton_retry_pki::CertPem,
) -> ServerHandle {
    let client = kube::Client::try_from(server_cfg).expect("client");
    let engine = Engine::new(client.clone(), engine_opts());
    let opts = ServerOptions::new(
        client,
        TlsSource::Pem {
            cert: cert.cert,
            key: cert.key,
        },
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    let handle = Server::start(opts, Arc::new(engine), Arc::new(Metrics::new()))
        .await
        .expect("serve starts");
    assert!(handle.wait_ready(Duration::from_secs(20)).await, "ready");
    handle
}

async fn start_serve(sb: &Sandbox) -> Serve {
    let ca = Ca::new("second-serve-ca").expect("ca");
    let cert = ca.issue_server(&["127.0.0.1", "localhost"]).expect("cert");
    let handle = start_ready_server(sb.emulator.server_kube_config().expect("config"), cert).await;
    Serve {
        handle,
        ca_pem: ca.pem.cert,
    }
}

/// Points the front proxy at `addr` and waits until it finds the backend available.
async fn route_to(sb: &Sandbox, url: &str, ca_pem: &str) {
    sb.emulator
        .set_aggregated_backend(url, ca_pem)
        .expect("backend");
    assert!(
        sb.emulator
            .wait_aggregated_available(Duration::from_secs(20))
            .await,
        "{}",
        sb.emulator.aggregated_availability().message
    );
}

/// A `serve` process of its own: a separate tokio runtime that is torn down at once by
/// [`Process::kill`], dropping every task of the server and its engine mid-flight (what a crashed
/// or OOM-killed pod does).
struct Process {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    ca_pem: String,
}

impl Process {
    fn start(sb: &Sandbox) -> Process {
        let server_cfg = sb.emulator.server_kube_config().expect("config");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let ca = Ca::new("killed-serve-ca").expect("ca");
        let cert = ca.issue_server(&["127.0.0.1", "localhost"]).expect("cert");
        let handle = runtime.handle().clone();
        // Started from a plain thread: the test's own runtime may not block on another one.
        let (addr, server) = std::thread::spawn(move || {
            handle.block_on(async move {
                let h = start_ready_server(server_cfg, cert).await;
                (h.addr(), h)
            })
        })
        .join()
        .expect("start thread");
        // The handle's tasks live in the runtime; forgetting the handle keeps them running.
        std::mem::forget(server);
        Process {
            runtime,
            addr,
            ca_pem: ca.pem.cert,
        }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn kill(self) {
        self.runtime.shutdown_background();
    }
}

/// Asserts what must hold after any fault: the run succeeded at attempt 2, the succeeded task's
/// run is untouched and was never deleted, and no run name was deleted more than `max_b_deletes`.
async fn assert_clean_outcome(sb: &Sandbox, name: &str, a_before: &Value, max_b_deletes: usize) {
    let admin = client_no_replay(sb, "admin");
    let run = wait_run(&admin, name, 60, is_succeeded).await;
    assert_eq!(
        annotation(&run, "retry.tekton.dev/attempt").as_deref(),
        Some("2"),
        "{run:#}"
    );
    assert_untouched(&admin, &format!("{name}-a"), a_before).await;
    let faults = sb.emulator.faults();
    assert_eq!(
        faults.count_named("delete", "taskruns", NS, &format!("{name}-a")),
        0,
        "the succeeded run is never deleted"
    );
    for task in ["b", "report"] {
        let n = faults.count_named("delete", "taskruns", NS, &format!("{name}-{task}"));
        assert!(
            (1..=max_b_deletes).contains(&n),
            "{name}-{task} deleted {n} times"
        );
        let now = get(&taskruns(&admin), &format!("{name}-{task}")).await;
        assert_eq!(
            succeeded(&now).0,
            "True",
            "the re-created {task} ran to success and was not deleted again: {now:#}"
        );
    }
}

/// Sends retries until one is 201 (a 409 "in progress" is expected while the interrupted claim
/// is younger than the claim grace); returns that answer.
async fn retry_until_created(client: &kube::Client, name: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = retry(client, name, json!({}), "").await;
        if code == 201 {
            return body;
        }
        assert!(
            code == 409 || code == 503,
            "only 'in progress' or 'unavailable' before the attempt resumes: {code} {body:#}"
        );
        assert!(tokio::time::Instant::now() < deadline, "{body:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Retry `name` through `doomed`, kill it once the retry stalls at the fault `stall`, and return
/// the caller's answer (which must come within 30 s).
async fn kill_when_stalled(
    sb: &Sandbox,
    admin: &kube::Client,
    name: &str,
    doomed: Process,
    stall: FaultId,
) -> Result<(u16, Value), tokio::task::JoinError> {
    let pending = {
        let (c, name) = (admin.clone(), name.to_string());
        tokio::spawn(async move { retry(&c, &name, json!({}), "").await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sb.emulator.faults().matched(stall) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the retry stalls");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill();
    tokio::time::timeout(Duration::from_secs(30), pending)
        .await
        .expect("the caller is answered")
}

/// An answer held for `secs` seconds, then served.
fn slow_for(secs: u64) -> FaultAction {
    FaultAction::Latency(Duration::from_secs(secs))
}

/// The run `name` failed (task b), as the client without replays sees it, its succeeded TaskRun
/// `a` as it was, and the front proxy routed to a second `serve` ([`Process`]) to be killed.
async fn failed_behind_a_doomed_serve(sb: &Sandbox, name: &str) -> (kube::Client, Value, Process) {
    let admin = client_no_replay(sb, "admin");
    failed_run(&admin, name, "b").await;
    let a_before = taskrun(&admin, &format!("{name}-a")).await;
    let doomed = Process::start(sb);
    route_to(sb, &doomed.url(), &doomed.ca_pem).await;
    (admin, a_before, doomed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_retry_the_next_request_completes_the_attempt() {
    let sb = start_with_engine(engine_opts()).await;
    let (admin, a_before, doomed) = failed_behind_a_doomed_serve(&sb, "crash").await;
    // The retry stalls at its first deletion (after the claim and the archive).
    let stall = sb
        .emulator
        .faults()
        .add(FaultRule::new("delete", "taskruns", slow_for(3)).trigger(Trigger::FirstN(1)));
    let (code, body) = kill_when_stalled(&sb, &admin, "crash", doomed, stall)
        .await
        .expect("join");
    assert!(
        code >= 500,
        "the killed server's caller gets an error: {code} {body:#}"
    );
    let claimed = get(&runs(&admin), "crash").await;
    assert_eq!(last_retry(&claimed)["attempt"], 2, "{claimed:#}");

    // The replacement (the sandbox's own serve) completes the same attempt.
    route_to(&sb, &sb.retry_url(), sb.retry_ca_pem()).await;
    let body = retry_until_created(&admin, "crash").await;
    assert_eq!(body["status"]["attempt"], 2, "the same attempt: {body:#}");
    assert!(
        body["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "resumed, not started again: {body:#}"
    );
    assert_clean_outcome(&sb, "crash", &a_before, 2).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_retry_the_recorder_completes_the_attempt() {
    let sb = start_with_recorder(engine_opts(), prompt_recorder(5)).await;
    let (admin, a_before, doomed) = failed_behind_a_doomed_serve(&sb, "crash2").await;
    // This time the retry stalls at the status write (after every deletion).
    let stall = sb
        .emulator
        .faults()
        .add(on_run("crash2", "patch", "status", slow_for(3)).trigger(Trigger::FirstN(1)));
    let _ = kill_when_stalled(&sb, &admin, "crash2", doomed, stall).await;
    route_to(&sb, &sb.retry_url(), sb.retry_ca_pem()).await;
    // No further request: the sandbox's recorder rolls the claim forward.
    assert_clean_outcome(&sb, "crash2", &a_before, 2).await;
    let run = get(&runs(&admin), "crash2").await;
    assert_eq!(
        last_retry(&run)["by"],
        "admin",
        "still the caller's attempt"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// Injects a 409 Conflict on the server's first patch of the run `name`'s `subresource` (`""`:
/// the object itself) and checks the attempt completes.
async fn conflict_then_recovery(name: &str, subresource: &str) {
    let sb = start_with_engine(engine_opts()).await;
    let admin = client_no_replay(&sb, "admin");
    failed_run(&admin, name, "b").await;
    let a_before = get(&taskruns(&admin), &format!("{name}-a")).await;
    let id = sb
        .emulator
        .faults()
        .add(on_run(name, "patch", subresource, api_failure(409)).trigger(Trigger::Nth(1)));
    let (code, first) = retry(&admin, name, json!({}), "").await;
    assert!(sb.emulator.faults().matched(id) >= 1, "the fault fired");
    eprintln!("{name}: first answer {code}: {}", first["message"]);
    match code {
        // The engine re-read the run and went on (a conflict is not a failure of the attempt).
        201 => assert_eq!(first["status"]["attempt"], 2, "{first:#}"),
        // Or the caller is told, as a Status, and the next request completes the attempt.
        409 | 500 | 504 => {
            assert_eq!(first["kind"], "Status", "{first:#}");
            let body = retry_until_created(&admin, name).await;
            assert_eq!(body["status"]["attempt"], 2, "{body:#}");
        }
        _ => panic!("unexpected answer to an injected 409: {code} {first:#}"),
    }
    assert_clean_outcome(&sb, name, &a_before, 1).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

// Each case: (run name, the subresource whose first patch conflicts).
async_test_cases! { conflict_then_recovery:
    conflict_on_the_claim("c-claim", "");
    conflict_on_the_status_write("c-status", "status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_under_load_finishes_in_flight_retries_and_refuses_new_connections() {
    let sb = start_with_engine(engine_opts()).await;
    let admin = client_no_replay(&sb, "admin");
    let names = ["drain-1", "drain-2", "drain-3"];
    join_all(names.iter().map(|n| failed_run(&admin, n, "b"))).await;
    let serve = start_serve(&sb).await;
    let addr = serve.handle.addr();
    let probe = serve.handle.ready_probe();
    let client = Arc::new(TestClient::new(
        addr,
        &serve.ca_pem,
        Some(&sb.emulator.front_proxy_client().client),
        false,
    ));
    // Every deletion takes a while, so the retries are in flight when the shutdown starts.
    let slow_deletes = FaultRule::new("delete", "taskruns", slow_for(3));
    let slow = sb.emulator.faults().add(slow_deletes);
    let in_flight: Vec<_> = names
        .iter()
        .map(|n| {
            let c = client.clone();
            let path = retry_path(NS, n);
            tokio::spawn(async move {
                c.post(
                    &path,
                    &[
                        ("X-Remote-User", "admin"),
                        ("X-Remote-Group", "system:masters"),
                    ],
                    "",
                )
                .await
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sb.emulator.faults().matched(slow) < names.len() as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "all retries reach a deletion"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(probe.ready());
    let shutdown = tokio::spawn(serve.handle.shutdown(Duration::from_secs(60)));
    // Readiness flips first ...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while probe.ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readiness turns false"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ... then new connections are refused ...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener closes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused_while_draining = in_flight.iter().any(|t| !t.is_finished());
    // ... and the retries in flight finish with their answers.
    for (n, t) in names.iter().zip(in_flight) {
        let a = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("answered")
            .expect("join");
        assert_eq!(a.status, 201, "{n}: {}", a.text());
        assert_eq!(a.json()["status"]["attempt"], 2, "{n}");
    }
    assert!(
        refused_while_draining,
        "new connections were refused while retries were still running"
    );
    tokio::time::timeout(Duration::from_secs(60), shutdown)
        .await
        .expect("the shutdown ends once the retries are done")
        .expect("join");
    sb.emulator.faults().remove(slow);
    for n in names {
        wait_run(&admin, n, 60, is_succeeded).await;
        assert_eq!(
            sb.emulator
                .faults()
                .count_named("delete", "taskruns", NS, &format!("{n}-a")),
            0
        );
    }
    sb.shutdown(Duration::from_secs(2)).await;
}
