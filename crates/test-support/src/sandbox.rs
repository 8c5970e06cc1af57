//! Shared helpers for tests that run against the whole sandbox (emulator + front proxy + serve +
//! engine + recorder + Tekton simulator).

use std::time::Duration;

use http::{Method, Request};
use http_body_util::BodyExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{json, Value};
use tekton_retry::recorder::RecorderOptions;
use tekton_retry::retry::engine::EngineOptions;
use tekton_retry::retry::executor::ExecutorOptions;
use tekton_retry_sandbox::faults::{FaultAction, FaultRule};
use tekton_retry_sandbox::{Sandbox, SandboxOptions};

pub const NS: &str = "demo";

/// Engine options that keep tests quick: short verification window and waits.
pub fn quick_engine() -> EngineOptions {
    EngineOptions {
        executor: ExecutorOptions {
            wait_gone_timeout: Duration::from_secs(20),
            verify_window: Duration::from_millis(600),
            poll_interval: Duration::from_millis(25),
            max_reset_rounds: 8,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// [`quick_engine`] with a generous wait (30 s) for deleted runs and their pods to be gone, for
/// tests that must not get a 504 when a loaded machine slows the garbage collector down.
pub fn patient_engine() -> EngineOptions {
    let mut o = quick_engine();
    o.executor.wait_gone_timeout = Duration::from_secs(30);
    o
}

pub async fn start() -> Sandbox {
    start_with(SandboxOptions {
        engine: quick_engine(),
        ..Default::default()
    })
    .await
}

/// [`start`] and a client as `admin` (which replays requests on 429/503/504, as kube-rs does).
pub async fn start_as_admin() -> (Sandbox, kube::Client) {
    let sb = start().await;
    let admin = sb.client("admin").expect("client");
    (sb, admin)
}

/// [`start`] and a client for `user` that sees every answer ([`client_no_replay`]).
pub async fn start_no_replay(user: &str) -> (Sandbox, kube::Client) {
    let sb = start().await;
    let client = client_no_replay(&sb, user);
    (sb, client)
}

/// [`start`] without the demo runs.
pub async fn start_unseeded() -> Sandbox {
    start_with(SandboxOptions {
        seed: false,
        engine: quick_engine(),
        ..Default::default()
    })
    .await
}

/// [`start`] with the recorder off (what the engine alone does).
pub async fn start_without_recorder() -> Sandbox {
    start_with(SandboxOptions {
        engine: quick_engine(),
        recorder_enabled: false,
        ..Default::default()
    })
    .await
}

/// [`start_no_replay`] as `admin` with the engine's wait for deleted runs and pods cut to
/// `wait_gone`, and the run `failed` failed (task b) ([`failed_run`]): how tests of what holds
/// up a reset, whose wait ends in a 504, begin.
pub async fn start_waiting_gone(wait_gone: Duration, failed: &str) -> (Sandbox, kube::Client) {
    let mut engine = quick_engine();
    engine.executor.wait_gone_timeout = wait_gone;
    let sb = start_with_engine(engine).await;
    let admin = client_no_replay(&sb, "admin");
    failed_run(&admin, failed, "b").await;
    (sb, admin)
}

/// [`start_with`] the engine options `engine`, the rest default.
pub async fn start_with_engine(engine: EngineOptions) -> Sandbox {
    start_with(SandboxOptions {
        engine,
        ..Default::default()
    })
    .await
}

/// [`start_with`] the engine and recorder options, the rest default.
pub async fn start_with_recorder(engine: EngineOptions, recorder: RecorderOptions) -> Sandbox {
    start_with(SandboxOptions {
        engine,
        recorder,
        ..Default::default()
    })
    .await
}

/// A recorder that rolls a stalled claim forward after 1 s (claims re-examined every 300 ms), at
/// most `max_roll_forward` times.
pub fn prompt_recorder(max_roll_forward: u32) -> RecorderOptions {
    recorder_options(
        Duration::from_secs(1),
        Duration::from_millis(300),
        max_roll_forward,
    )
}

/// Recorder options: roll a stalled claim forward after `grace`, re-examine claims every
/// `resync`, at most `max_roll_forward` roll-forwards a claim.
pub fn recorder_options(
    grace: Duration,
    resync: Duration,
    max_roll_forward: u32,
) -> RecorderOptions {
    RecorderOptions {
        grace,
        resync,
        max_roll_forward,
    }
}

pub async fn start_with(opts: SandboxOptions) -> Sandbox {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Sandbox::start(opts).await.expect("sandbox starts")
}

pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("tekton.dev", "v1", kind), plural)
}

pub fn runs(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &resource("PipelineRun", "pipelineruns"))
}

pub fn taskruns(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &resource("TaskRun", "taskruns"))
}

pub async fn get(api: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(api.get(name).await.expect("object exists")).expect("json")
}

pub async fn try_get(api: &Api<DynamicObject>, name: &str) -> Option<Value> {
    api.get_opt(name)
        .await
        .expect("get")
        .map(|o| serde_json::to_value(o).expect("json"))
}

/// `Succeeded` condition (status, reason).
pub fn succeeded(v: &Value) -> (String, String) {
    let c = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Succeeded"))
        .cloned()
        .unwrap_or_default();
    (
        c["status"].as_str().unwrap_or_default().to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
    )
}

/// Polls until `ok` holds for the run, at most `secs` seconds; returns the run.
pub async fn wait_run(
    client: &kube::Client,
    name: &str,
    secs: u64,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let api = runs(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = get(&api, name).await;
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {name} did not reach the expected state: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The TaskRun `name` (it must exist).
pub async fn taskrun(client: &kube::Client, name: &str) -> Value {
    get(&taskruns(client), name).await
}

/// Whether the run is done: its `Succeeded` condition is True or False.
pub fn is_done(v: &Value) -> bool {
    is_failed(v) || is_succeeded(v)
}

/// Polls until the run is done (at most 30 s); returns it.
pub async fn wait_done(client: &kube::Client, name: &str) -> Value {
    wait_run(client, name, 30, is_done).await
}

pub fn is_succeeded(v: &Value) -> bool {
    succeeded(v).0 == "True"
}

pub fn is_failed(v: &Value) -> bool {
    succeeded(v).0 == "False"
}

/// Creates a copy of the seed pipeline run `name` (pipeline `build-and-deploy`, a 1 h timeout)
/// with the given annotations.
pub async fn create_seed_copy(client: &kube::Client, name: &str, annotations: Value) {
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": {
            "pipelineRef": {"name": "build-and-deploy"},
            "params": [{"name": "repo-url", "value": "https://git.example.com/app.git"}],
            "timeouts": {"pipeline": "1h0m0s"},
        },
    }))
    .expect("object");
    runs(client)
        .create(&PostParams::default(), &obj)
        .await
        .expect("create run");
}

/// [`create_seed_copy`] with the sandbox annotation that fails the tasks `fail`; waits until the
/// run has failed and returns it.
pub async fn failed_run(client: &kube::Client, name: &str, fail: &str) -> Value {
    let annotations = json!({"sandbox.retry.tekton.dev/fail": fail});
    create_seed_copy(client, name, annotations).await;
    wait_run(client, name, 30, is_failed).await
}

/// The TaskRun `name` is the object it was (`before`): same uid, never written since.
pub async fn assert_untouched(client: &kube::Client, name: &str, before: &Value) {
    let after = get(&taskruns(client), name).await;
    let identity = |o: &Value| {
        (
            o["metadata"]["uid"].clone(),
            o["metadata"]["resourceVersion"].clone(),
        )
    };
    assert_eq!(
        identity(&after),
        identity(before),
        "{name} is neither deleted nor written"
    );
}

/// ConfigMaps in the server's namespace (`tekton-retry`), where the attempt records and histories live.
pub fn server_configmaps(client: &kube::Client) -> Api<k8s_openapi::api::core::v1::ConfigMap> {
    Api::namespaced(client.clone(), "tekton-retry")
}

/// The archive of `attempt` in the history of the run with `uid` (`retry-<uid>-history`).
pub async fn archived_attempt(client: &kube::Client, uid: &str, attempt: u32) -> Value {
    let cm = server_configmaps(client)
        .get(&format!("retry-{uid}-history"))
        .await
        .expect("history");
    let data = cm.data.expect("data");
    serde_json::from_str(&data[&format!("attempt-{attempt}.json")]).expect("archive json")
}

/// The run `name` in an attempt's archive ([`archived_attempt`]); panics if it is not there.
pub fn archived_run<'a>(archive: &'a Value, name: &str) -> &'a Value {
    archive["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} archived: {archive:#}"))
}

/// Sets the log of `step` in the pod of `taskrun` (as read), as the kubelet would serve it.
pub fn set_step_log(sb: &Sandbox, taskrun: &Value, step: &str, log: &str) {
    let pod = taskrun["status"]["podName"].as_str().expect("pod name");
    sb.emulator.store().set_pod_log(NS, pod, Some(step), log);
}

/// POSTs a retry through the front door; returns (HTTP code, JSON body).
pub async fn retry(client: &kube::Client, name: &str, body: Value, query: &str) -> (u16, Value) {
    let path =
        format!("/apis/retry.tekton.dev/v1alpha1/namespaces/{NS}/pipelineruns/{name}/retry{query}");
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(
            serde_json::to_vec(&body).expect("body"),
        ))
        .expect("request");
    let resp = client.send(req).await.expect("the front door answers");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}));
    (code, v)
}

/// POSTs a retry of `name` with `body` and asserts the answer's HTTP code; returns its body.
pub async fn retry_answers(client: &kube::Client, name: &str, body: Value, code: u16) -> Value {
    let (got, answer) = retry(client, name, body, "").await;
    assert_eq!(got, code, "retry of {name}: {answer:#}");
    answer
}

/// A retry of `name` that starts the attempt (201) and a run that then succeeds; returns the
/// answer and the done run.
pub async fn retry_to_success(client: &kube::Client, name: &str, body: Value) -> (Value, Value) {
    let answer = retry_answers(client, name, body, 201).await;
    let after = wait_done(client, name).await;
    assert!(is_succeeded(&after), "{after:#}");
    (answer, after)
}

/// The names of the tasks a retry's answer lists as retried, in its order.
pub fn retried_names(answer: &Value) -> Vec<String> {
    answer["status"]["retriedTasks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The server's `verb` of the run `name`'s `subresource` (`""`: the object itself).
pub fn on_run(name: &str, verb: &str, subresource: &str, action: FaultAction) -> FaultRule {
    FaultRule::new(verb, "pipelineruns", action)
        .subresource(subresource)
        .named(NS, name)
}

/// An API error answer with `code` (429 with `Retry-After: 1`), for fault rules.
pub fn api_failure(code: u16) -> FaultAction {
    FaultAction::Error {
        code,
        retry_after: if code == 429 { Some(1) } else { None },
    }
}

pub fn annotation(v: &Value, key: &str) -> Option<String> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

pub fn last_retry(v: &Value) -> Value {
    annotation(v, "retry.tekton.dev/last-retry")
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// A client for `user` that does not replay requests on 429/503/504 (kube-rs does by default), so
/// a test sees each answer of the server as it was sent.
pub fn client_no_replay(sb: &Sandbox, user: &str) -> kube::Client {
    let mut cfg = sb.emulator.kube_config(user).expect("config");
    cfg.default_retry = false;
    kube::Client::try_from(cfg).expect("client")
}

/// The server's identity as the emulator logs it.
pub const SERVER_USER: &str = "system:serviceaccount:tekton-retry:tekton-retry";

/// The requests the server's identity made since the emulator's log was last cleared, as
/// `verb resource namespace/name`, reviews of callers left out.
pub fn server_requests(sb: &Sandbox) -> Vec<(String, String)> {
    sb.emulator
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.user == SERVER_USER && !r.resource.ends_with("reviews"))
        .map(|r| {
            (
                r.verb.clone(),
                format!("{} {} {}/{}", r.verb, r.resource, r.namespace, r.name),
            )
        })
        .collect()
}
