//! The real `kubectl-retry` binary against a small fake API server (plain HTTP, token auth) that
//! answers the retry POST and serves the recorded dag-failed objects: argument handling, output and
//! exit codes. Also once through the real kubectl finding the plugin on PATH.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use tekton_retry_test_support::dag_failed::{
    annotate_attempt_2, archived_replaced_runs, fixture, plan_status, running,
};
use tekton_retry_test_support::kubectl as kubectl_support;

use crate::output::{exited, text};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tekton_retry::api::{ApiError, Cause, PipelineRunRetry, RetrySpec, RetryStatus};
use tekton_retry::retry::record::history::{self as records, AttemptArchive};
use tekton_retry::retry::record::LastRetry;

const TOKEN: &str = "test-token";
const NS: &str = "dag-failed";
/// When the fake's retry of `demo-run` claims attempt 2 (06-final's recorded retry started 19:27:50Z).
const ATTEMPT_START: &str = "2026-11-26T19:27:50Z";

/// The record of attempt 2, started at `start` by alice ("registry back"): b, c and report re-run.
fn alices_attempt_2(start: &str) -> LastRetry {
    LastRetry {
        attempt: 2,
        start: start.into(),
        by: "alice".into(),
        reason: Some("registry back".into()),
        tasks: vec!["b".into(), "c".into(), "report".into()],
        ..Default::default()
    }
}

fn retried(mut run: Value, name: &str, start: &str) -> Value {
    let record = alices_attempt_2(start);
    run["metadata"]["name"] = json!(name);
    annotate_attempt_2(&mut run, &record);
    run
}

/// The run right after the reset: a kept, b re-created and running.
fn mid_snapshot() -> (Value, Vec<Value>) {
    let mut run = retried(
        fixture("01-failed-pipelinerun-demo-run.json"),
        "demo-run",
        ATTEMPT_START,
    );
    let status = run["status"].as_object_mut().expect("status");
    for k in ["completionTime", "finallyStartTime", "skippedTasks"] {
        status.remove(k);
    }
    status.insert(
        "conditions".into(),
        json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": ""}]),
    );
    status.insert(
        "childReferences".into(),
        json!([
            {"kind": "TaskRun", "name": "demo-run-a", "pipelineTaskName": "a"},
            {"kind": "TaskRun", "name": "demo-run-b", "pipelineTaskName": "b"},
        ]),
    );
    let b = running(fixture("06-final-taskrun-demo-run-b.json"));
    (run, vec![fixture("01-failed-taskrun-demo-run-a.json"), b])
}

fn final_snapshot() -> (Value, Vec<Value>) {
    (
        retried(
            fixture("06-final-pipelinerun-demo-run.json"),
            "demo-run",
            ATTEMPT_START,
        ),
        ["a", "b", "c", "report"]
            .iter()
            .map(|t| fixture(&format!("06-final-taskrun-demo-run-{t}.json")))
            .collect(),
    )
}

/// `fail-run`: attempt 2 started 19:27:00 and failed again at 19:27:19 (fixture 01's failure).
fn failed_again() -> (Value, Vec<Value>) {
    let run = retried(
        fixture("01-failed-pipelinerun-demo-run.json"),
        "fail-run",
        "2026-11-26T19:27:00Z",
    );
    let trs = ["a", "b", "report"]
        .iter()
        .map(|t| fixture(&format!("01-failed-taskrun-demo-run-{t}.json")))
        .collect();
    (run, trs)
}

fn history_configmap() -> Value {
    let archive = AttemptArchive {
        attempt: 1,
        archived_at: ATTEMPT_START.into(),
        runs: archived_replaced_runs(&BTreeMap::from([(
            "step-compile".to_string(),
            "exit 1\n".to_string(),
        )])),
        truncated: false,
    };
    let record = alices_attempt_2(ATTEMPT_START);
    let mut data = Map::new();
    records::add_to_history(&mut data, &archive, &record);
    json!({"apiVersion": "retry.tekton.dev/v1alpha1", "kind": "PipelineRunRetryHistory",
           "metadata": {"name": "demo-run", "namespace": NS}, "data": Value::Object(data)})
}

fn answer(name: &str, dry_run: bool, start: &str) -> PipelineRunRetry {
    PipelineRunRetry::response(
        NS,
        name,
        RetrySpec::default(),
        RetryStatus {
            start_time: (!dry_run).then(|| start.to_string()),
            ..plan_status(dry_run)
        },
    )
}

/// One request the fake saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    authorization: Option<String>,
    body: String,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// GETs of demo-run after its retry: the first shows the mid snapshot, later ones the end.
    demo_gets: usize,
}

type Shared = Arc<Mutex<State>>;

fn json_response(code: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = hyper::StatusCode::from_u16(code).expect("status code");
    res.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    res
}

fn value(code: u16, v: &Value) -> Response<Full<Bytes>> {
    json_response(code, serde_json::to_vec(v).expect("json"))
}

fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRunList", "metadata": {}, "items": items})
}

fn kube_not_found() -> Response<Full<Bytes>> {
    value(
        404,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the requested resource", "reason": "NotFound",
                "details": {}, "code": 404}),
    )
}

fn route(state: &Shared, seen: &Seen) -> Response<Full<Bytes>> {
    if seen.authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        return value(
            401,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
        );
    }
    let (path, query) = seen.uri.split_once('?').unwrap_or((&seen.uri, ""));
    let retry_prefix = "/apis/retry.tekton.dev/v1alpha1/namespaces/";
    if seen.method == "POST" {
        let Some(rest) = path.strip_prefix(retry_prefix) else {
            return kube_not_found();
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [_ns, "pipelineruns", name, "retry"] = parts[..] else {
            return kube_not_found();
        };
        let dry = query == "dryRun=All";
        return match name {
            "demo-run" => {
                let code = if dry { 200 } else { 201 };
                value(
                    code,
                    &serde_json::to_value(answer(name, dry, ATTEMPT_START)).expect("json"),
                )
            }
            "fail-run" => value(
                201,
                &serde_json::to_value(answer(name, false, "2026-11-26T19:27:00Z")).expect("json"),
            ),
            "done-run" => json_response(
                409,
                ApiError::conflict("pipelinerun dag-failed/done-run succeeded: there is nothing to retry (a TEP-0065 non-goal); start a new run instead")
                    .with_name(name)
                    .to_body(),
            ),
            "bad-run" => json_response(
                422,
                ApiError::invalid(
                    "PipelineRunRetry \"bad-run\" is invalid",
                    vec![Cause::invalid("spec.restartTasks[0]", "no pipeline task \"zz\" in the pipeline")],
                )
                .with_name(name)
                .to_body(),
            ),
            "unavailable" => {
                let mut res = Response::new(Full::new(Bytes::from_static(b"service unavailable\n")));
                *res.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                res
            }
            _ => kube_not_found(),
        };
    }
    let tekton = format!("/apis/tekton.dev/v1/namespaces/{NS}/");
    let mut st = state.lock().expect("state");
    let retried_demo = st
        .seen
        .iter()
        .any(|s| s.method == "POST" && s.uri.ends_with("/demo-run/retry"));
    if path == format!("{tekton}pipelineruns/demo-run") {
        if !retried_demo {
            return value(
                200,
                &retried(
                    fixture("06-final-pipelinerun-demo-run.json"),
                    "demo-run",
                    ATTEMPT_START,
                ),
            );
        }
        st.demo_gets += 1;
        let snap = if st.demo_gets == 1 {
            mid_snapshot()
        } else {
            final_snapshot()
        };
        return value(200, &snap.0);
    }
    if path == format!("{tekton}pipelineruns/fail-run") {
        return value(200, &failed_again().0);
    }
    if path == format!("{tekton}taskruns") {
        return match query {
            "labelSelector=tekton.dev%2FpipelineRun%3Ddemo-run" => {
                let snap = if st.demo_gets <= 1 {
                    mid_snapshot()
                } else {
                    final_snapshot()
                };
                value(200, &list(snap.1))
            }
            "labelSelector=tekton.dev%2FpipelineRun%3Dfail-run" => {
                value(200, &list(failed_again().1))
            }
            _ => value(200, &list(vec![])),
        };
    }
    if path
        == format!("/apis/retry.tekton.dev/v1alpha1/namespaces/{NS}/pipelineruns/demo-run/history")
    {
        return value(200, &history_configmap());
    }
    value(
        404,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": format!("{path} not found"), "reason": "NotFound", "code": 404}),
    )
}

/// A fake API server on 127.0.0.1 running in its own thread, and a kubeconfig for it.
struct Fake {
    state: Shared,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fake {
    fn start() -> Fake {
        let state: Shared = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let st = st.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                            let st = st.clone();
                            async move {
                                let method = req.method().to_string();
                                let uri = req.uri().to_string();
                                let authorization = req
                                    .headers()
                                    .get(hyper::header::AUTHORIZATION)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string);
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                                    .unwrap_or_default();
                                let seen = Seen {
                                    method,
                                    uri,
                                    authorization,
                                    body,
                                };
                                let res = route(&st, &seen);
                                st.lock().expect("state").seen.push(seen);
                                Ok::<_, Infallible>(res)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        let addr = rx.recv().expect("fake server address");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_text(&format!("http://{addr}"))).expect("write");
        Fake {
            state,
            kubeconfig,
            _dir: dir,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("state").seen.clone()
    }

    /// Runs the plugin binary with `args` and this fake's kubeconfig (through `$KUBECONFIG`).
    fn plugin(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kubectl-retry"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("HOME")
            .output()
            .expect("run kubectl-retry")
    }
}

fn kubeconfig_text(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
         clusters:\n- name: fake\n  cluster:\n    server: {server}\n\
         users:\n- name: u\n  user:\n    token: {TOKEN}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: u\n    namespace: {NS}\n\
         - name: other\n  context:\n    cluster: fake\n    user: u\n    namespace: elsewhere\n"
    )
}

#[test]
fn follow_to_success_exits_0() {
    let fake = Fake::start();
    let out = fake.plugin(&[
        "pr",
        "demo-run",
        "--follow",
        "--timeout",
        "2m",
        "--reason",
        "registry back",
    ]);
    let stdout = exited(&out, 0);
    assert!(
        stdout.starts_with("pipelinerun dag-failed/demo-run retried: attempt 2 started.\n"),
        "{stdout}"
    );
    // Not a terminal: changes only, line by line, no escape sequences.
    assert!(!stdout.contains('\x1b'));
    let follow: Vec<&str> = stdout
        .split("\n\n")
        .nth(1)
        .expect("follow part")
        .lines()
        .collect();
    assert_eq!(
        follow,
        vec![
            "a: Succeeded in 3s",
            "b: Running",
            "c: Waiting",
            "report: Waiting",
            "1/4 tasks done",
            "b: Succeeded in 3s",
            "c: Succeeded in 3s",
            "report: Succeeded in 3s",
            "4/4 tasks done",
            "PipelineRun dag-failed/demo-run attempt 2 Succeeded: Tasks Completed: 4 (Failed: 0, Cancelled 0), Skipped: 0",
        ]
    );
    let seen = fake.seen();
    let post = seen
        .iter()
        .find(|s| s.method == "POST")
        .expect("the retry POST");
    assert_eq!(
        post.uri,
        "/apis/retry.tekton.dev/v1alpha1/namespaces/dag-failed/pipelineruns/demo-run/retry"
    );
    let body: PipelineRunRetry = serde_json::from_str(&post.body).expect("a PipelineRunRetry body");
    assert_eq!(body.spec.reason.as_deref(), Some("registry back"));
    assert_eq!(
        body.metadata.namespace.as_deref(),
        Some(NS),
        "the context's namespace"
    );
}

#[test]
fn follow_to_failure_exits_1() {
    let fake = Fake::start();
    let out = fake.plugin(&["pipelinerun", "fail-run", "-n", NS, "--follow"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("b: Failed (StepFailed) in 3s\n"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with(
        "PipelineRun dag-failed/fail-run attempt 2 Failed: Tasks Completed: 3 (Failed: 1, Cancelled 0), Skipped: 1"
    ));
}

#[test]
fn refusal_prints_the_server_message_and_exits_1() {
    let fake = Fake::start();
    let out = fake.plugin(&["pr", "done-run"]);
    exited(&out, 1);
    assert_eq!(out.stdout, b"");
    assert_eq!(
        text(&out.stderr),
        "Error from server (Conflict): pipelinerun dag-failed/done-run succeeded: there is nothing to retry (a TEP-0065 non-goal); start a new run instead\n"
    );
    let out = fake.plugin(&["pr", "bad-run", "--restart-task", "zz"]);
    exited(&out, 1);
    assert_eq!(
        text(&out.stderr),
        "Error from server (Invalid): PipelineRunRetry \"bad-run\" is invalid\n  spec.restartTasks[0]: no pipeline task \"zz\" in the pipeline\n"
    );
    let post = fake
        .seen()
        .into_iter()
        .find(|s| s.uri.contains("bad-run"))
        .expect("POST");
    let body: Value = serde_json::from_str(&post.body).expect("json");
    assert_eq!(body["spec"]["restartTasks"], json!(["zz"]));
}

#[test]
fn missing_or_unavailable_api_gives_the_install_hint() {
    let fake = Fake::start();
    for (name, first) in [
        (
            "no-such-group",
            "Error from server (NotFound): the server could not find the requested resource",
        ),
        (
            "unavailable",
            "Error from server (ServiceUnavailable): service unavailable",
        ),
    ] {
        let out = fake.plugin(&["pr", name]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(
            text(&out.stderr),
            format!("{first}\nis tekton-retry installed? kubectl get apiservice v1alpha1.retry.tekton.dev\n")
        );
    }
    // Reported at once: kube-rs's default retry of 503 is off, so the POST was sent once.
    let unavailable = fake
        .seen()
        .iter()
        .filter(|s| s.uri.contains("/unavailable/"))
        .count();
    assert_eq!(unavailable, 1);
}

#[test]
fn dry_run_asks_for_dry_run_and_prints_the_plan() {
    let fake = Fake::start();
    let out = fake.plugin(&["pr", "demo-run", "--dry-run", "--finally", "keep"]);
    exited(&out, 0);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Dry run (nothing was changed): retrying pipelinerun dag-failed/demo-run would start attempt 2.\nWould re-run:\n"), "{stdout}");
    assert!(stdout.contains("Kept (results reused): a\n"));
    assert!(stdout.contains("Timeout left: 59m20s"));
    let seen = fake.seen();
    assert_eq!(seen.len(), 1, "only the POST: {seen:?}");
    assert!(seen[0].uri.ends_with("/demo-run/retry?dryRun=All"));
    let body: Value = serde_json::from_str(&seen[0].body).expect("json");
    assert_eq!(body["spec"]["finally"], "Keep");
}

#[test]
fn output_formats_and_context_namespace() {
    let fake = Fake::start();
    let out = fake.plugin(&["pr", "demo-run", "-o", "name"]);
    assert_eq!(
        text(&out.stdout),
        "pipelinerunretry.retry.tekton.dev/demo-run\n"
    );
    let out = fake.plugin(&["pr", "demo-run", "-o", "json"]);
    let back: PipelineRunRetry = serde_json::from_slice(&out.stdout).expect("JSON answer");
    assert_eq!(back.status.map(|s| s.attempt), Some(2));
    // --context switches to the other context's namespace.
    let out = fake.plugin(&["pr", "done-run", "--context", "other"]);
    exited(&out, 1);
    assert!(fake.seen().iter().any(|s| s.uri
        == "/apis/retry.tekton.dev/v1alpha1/namespaces/elsewhere/pipelineruns/done-run/retry"));
}

#[test]
fn history_lists_the_attempts() {
    let fake = Fake::start();
    let out = fake.plugin(&["history", "demo-run"]);
    let stdout = exited(&out, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("ATTEMPT   BY      STARTED"),
        "{stdout}"
    );
    assert!(
        lines[1]
            .starts_with("1         -       2026-11-26T19:27:10Z   2026-11-26T19:27:19Z   Failed"),
        "{stdout}"
    );
    assert!(lines[2].starts_with("2         alice   2026-11-26T19:27:50Z   2026-11-26T19:28:10Z   Succeeded   b,c,report   registry back"), "{stdout}");
    assert!(stdout.contains("kubectl get --raw /apis/retry.tekton.dev/v1alpha1/namespaces/dag-failed/pipelineruns/demo-run/history | jq -r '.data[\"attempt-1.json\"]'"), "{stdout}");
    let out = fake.plugin(&["history", "demo-run", "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["attempts"].as_array().map(Vec::len), Some(2));
    let out = fake.plugin(&["history", "nope"]);
    exited(&out, 1);
    assert_eq!(
        text(&out.stderr),
        "Error from server (NotFound): pipelineruns.tekton.dev \"nope\" not found\n"
    );
}

#[test]
fn usage_errors_exit_2_and_no_request_is_sent() {
    let fake = Fake::start();
    for args in [
        &["pr"][..],
        &["pr", "x", "--finally", "maybe"],
        &["pr", "x", "--dry-run", "--follow"],
        &["frobnicate", "x"],
    ] {
        let out = fake.plugin(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(fake.seen().is_empty());
}

#[test]
fn unreachable_server_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    // A port nobody listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    std::fs::write(&kc, kubeconfig_text(&format!("http://127.0.0.1:{port}"))).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-retry"))
        .args(["pr", "x", "--kubeconfig"])
        .arg(&kc)
        .output()
        .expect("run");
    exited(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("Unable to connect to the server: "),
        "{stderr}"
    );
}

/// PATH with the plugin's directory first, as a user who installed it would have.
fn path_with_plugin() -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_kubectl-retry"));
    let dir = bin.parent().expect("bin dir").to_path_buf();
    let mut paths = vec![dir];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).expect("PATH")
}

#[test]
fn real_kubectl_finds_the_plugin() {
    if kubectl_support::kubectl().is_none() {
        return;
    }
    let fake = Fake::start();
    let out = Command::new(kubectl_support::kubectl().unwrap_or_else(|| "kubectl".into()))
        .args(["retry", "pr", "done-run", "-n", NS])
        .env("PATH", path_with_plugin())
        .env("KUBECONFIG", &fake.kubeconfig)
        .output()
        .expect("run kubectl");
    exited(&out, 1);
    assert!(text(&out.stderr)
        .starts_with("Error from server (Conflict): pipelinerun dag-failed/done-run succeeded"));
    let out = Command::new(kubectl_support::kubectl().unwrap_or_else(|| "kubectl".into()))
        .args(["retry", "pr", "demo-run", "--dry-run"])
        .env("PATH", path_with_plugin())
        .env("KUBECONFIG", &fake.kubeconfig)
        .output()
        .expect("run kubectl");
    exited(&out, 0);
    assert!(text(&out.stdout).starts_with("Dry run (nothing was changed)"));
}

#[test]
fn terminal_output_redraws_in_place() {
    // `script` gives the plugin a pseudo-terminal as stdout (util-linux).
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("script(1) not installed: skipped");
        return;
    }
    let fake = Fake::start();
    let cmd = format!(
        "{} pr demo-run --follow --timeout 2m",
        env!("CARGO_BIN_EXE_kubectl-retry")
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("KUBECONFIG", &fake.kubeconfig)
        .output()
        .expect("run script");
    let screen = text(&out.stdout).replace("\r\n", "\n");
    assert_eq!(out.status.code(), Some(0), "{screen}");
    // First screen: header, column titles, 4 tasks, progress = 7 lines; the next draw moves up 7
    // lines and clears before printing the new screen.
    assert!(screen.contains("\x1b[J"), "{screen:?}");
    assert!(screen.contains("\x1b[7A\r\x1b[J"), "{screen:?}");
    assert!(
        screen.contains("  b                  Running     "),
        "{screen:?}"
    );
    assert!(screen.trim_end().ends_with(
        "4/4 tasks done\nPipelineRun dag-failed/demo-run attempt 2 Succeeded: Tasks Completed: 4 (Failed: 0, Cancelled 0), Skipped: 0"
    ), "{screen:?}");
}
