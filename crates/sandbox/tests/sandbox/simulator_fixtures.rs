//! Simulator fidelity: every recorded real-Tekton scenario (`tests/fixtures/tekton/`) is replayed in
//! the in-memory cluster with the same Pipeline, Tasks, outcomes and resets, and the resulting
//! objects are compared with the recorded ones: conditions (type/status/reason/message),
//! childReferences, skippedTasks (name, reason, whenExpressions present), results, `spec.status`,
//! which TaskRuns exist and their conditions/params/podName/results/retries. Uids, resourceVersions
//! and timestamps are ignored.

use std::ops::{Deref, DerefMut};
use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use tekton_retry_sandbox::simulator::memory::{Kind, MemoryCluster, MemoryError, Propagation};
use tekton_retry_sandbox::simulator::util;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/tekton");

/// The TaskRuns of `pipelinerun.yaml`: tasks a, b, c and the finally task report.
const DEMO_TASKRUNS: [&str; 4] = ["demo-run-a", "demo-run-b", "demo-run-c", "demo-run-report"];

/// The TaskRuns of `matrix.yaml`: a, the three combinations of m, after-m and the finally report.
const MATRIX_TASKRUNS: [&str; 6] = [
    "matrix-run-a",
    "matrix-run-m-0",
    "matrix-run-m-1",
    "matrix-run-m-2",
    "matrix-run-after-m",
    "matrix-run-report",
];

const FAIL_B: &str =
    r#"{"sandbox.retry.tekton.dev/fail": "b", "sandbox.retry.tekton.dev/duration": "2s"}"#;

/// b hangs on its first attempt only.
const HANG_B_ONCE: &str =
    r#"{"sandbox.retry.tekton.dev/hang": "b:1", "sandbox.retry.tekton.dev/duration": "2s"}"#;

/// A `Succeeded` event: (status, reason, message).
type Transition = (String, String, String);

fn t0() -> DateTime<Utc> {
    util::parse_time("2026-11-26T19:00:00Z").expect("t0")
}

fn yaml(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(FIX).join("yaml").join(file)).expect("yaml");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).expect("doc");
            serde_json::to_value(v).expect("json")
        })
        .collect()
}

fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(FIX).join(path)).expect(path);
    serde_json::from_str(&text).expect("fixture json")
}

fn fixture_files(scenario: &str, prefix: &str, kind: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(Path::new(FIX).join(scenario))
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| n.starts_with(&format!("{prefix}-{kind}-")) && n.ends_with(".json"))
        .map(|n| format!("{scenario}/{n}"))
        .collect();
    out.sort();
    out
}

fn project_run(v: &Value) -> Value {
    let conds: Vec<Value> = util::array(v, &["status", "conditions"])
        .iter()
        .map(|c| json!([c["type"], c["status"], c["reason"], c["message"]]))
        .collect();
    let refs: Vec<Value> = util::array(v, &["status", "childReferences"])
        .iter()
        .map(|r| json!([r["kind"], r["name"], r["pipelineTaskName"]]))
        .collect();
    let skipped: Vec<Value> = util::array(v, &["status", "skippedTasks"])
        .iter()
        .map(|s| json!([s["name"], s["reason"], s.get("whenExpressions").is_some()]))
        .collect();
    json!({
        "conditions": conds,
        "childReferences": refs,
        "skippedTasks": skipped,
        "results": v["status"].get("results").cloned().unwrap_or(Value::Null),
        "specStatus": v["spec"].get("status").cloned().unwrap_or(Value::Null),
        "finallyStartTime": v["status"].get("finallyStartTime").is_some(),
        "completionTime": v["status"].get("completionTime").is_some(),
        "pipelineSpec": v["status"].get("pipelineSpec").cloned().unwrap_or(Value::Null),
        "provenance": v["status"].get("provenance").cloned().unwrap_or(Value::Null),
    })
}

fn project_tr(v: &Value) -> Value {
    let conds: Vec<Value> = util::array(v, &["status", "conditions"])
        .iter()
        .map(|c| json!([c["status"], c["reason"], c["message"]]))
        .collect();
    json!({
        "name": v["metadata"]["name"],
        "conditions": conds,
        "params": v["spec"]["params"],
        "specStatus": v["spec"].get("status").cloned().unwrap_or(Value::Null),
        "statusMessage": v["spec"].get("statusMessage").cloned().unwrap_or(Value::Null),
        "podName": v["status"].get("podName").cloned().unwrap_or(Value::Null),
        "results": v["status"].get("results").cloned().unwrap_or(Value::Null),
        "retries": util::array(v, &["status", "retriesStatus"]).len(),
        "spec": spec_without_volume_sources(&v["spec"]),
        "taskSpec": v["status"].get("taskSpec").cloned().unwrap_or(Value::Null),
        "pipelineTask": util::label(v, "tekton.dev/pipelineTask"),
        "memberOf": util::label(v, "tekton.dev/memberOf"),
        "owner": util::array(v, &["metadata", "ownerReferences"]).first().map(|o| json!([o["kind"], o["name"], o["controller"]])),
    })
}

/// A TaskRun spec with workspace bindings reduced to their names: the claim Tekton generates for a
/// `volumeClaimTemplate` is named from the run's uid, which differs between the fixture and the
/// in-memory cluster (the name itself is checked in `simulator::volumeclaim`'s tests).
fn spec_without_volume_sources(spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(ws) = s.get_mut("workspaces").and_then(Value::as_array_mut) {
        for w in ws.iter_mut() {
            *w = json!({"name": w["name"]});
        }
    }
    s
}

/// Names and phases of `pods`, sorted.
fn pod_phases<'a>(pods: impl Iterator<Item = &'a Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pods
        .map(|p| {
            (
                util::name(p).to_string(),
                util::str_or_empty(p, &["status", "phase"]).to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn push_changed<T: PartialEq>(out: &mut Vec<T>, e: T) {
    if out.last() != Some(&e) {
        out.push(e);
    }
}

/// The transitions after the one whose message is `after` (all of them when `None`) up to the
/// first completion, consecutive duplicates dropped.
fn until_completion(
    events: impl Iterator<Item = Transition>,
    after: Option<&str>,
) -> Vec<Transition> {
    let mut out: Vec<Transition> = Vec::new();
    let mut started = after.is_none();
    for e in events {
        if !started {
            started = Some(e.2.as_str()) == after;
            continue;
        }
        let completed = e.0 != "Unknown";
        push_changed(&mut out, e);
        if completed {
            break;
        }
    }
    out
}

/// The `Succeeded` events of the `kind` object `name` in the scenario's `timeline.txt`, in order:
/// (event type, status, reason, the line's text after ` msg=`). Condition-less events are dropped.
fn timeline(scenario: &str, kind: &str, name: &str) -> Vec<(String, Transition)> {
    let text = std::fs::read_to_string(Path::new(FIX).join(scenario).join("timeline.txt"))
        .expect("timeline");
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 || f[1] != kind || !f[3].ends_with(&format!("/{name}")) {
            continue;
        }
        let Some((st, reason)) = f[6].split_once('/') else {
            continue;
        };
        if st == "-" {
            continue;
        }
        let msg = line.split_once(" msg=").map(|(_, m)| m).unwrap_or("");
        out.push((
            f[2].to_string(),
            (st.to_string(), reason.to_string(), msg.to_string()),
        ));
    }
    out
}

/// The run's `Succeeded` transitions recorded in `timeline.txt` after `after` up to its next
/// completion, consecutive duplicates dropped.
fn recorded_transitions(scenario: &str, run: &str, after: Option<&str>) -> Vec<Transition> {
    let events =
        timeline(scenario, "PipelineRun", run)
            .into_iter()
            .map(|(_, (st, reason, msg))| {
                let msg = msg
                    .strip_prefix('\'')
                    .map_or("", |m| m.trim_end_matches('\''));
                (st, reason, msg.to_string())
            });
    until_completion(events, after)
}

/// Every `Succeeded` transition of TaskRun `name` in `timeline.txt` (all incarnations, consecutive
/// duplicates dropped). The timeline shows newlines as `\\n` and cuts long messages, so messages
/// are compared by prefix.
fn recorded_taskrun_transitions(scenario: &str, name: &str) -> Vec<Transition> {
    let mut out = Vec::new();
    for (event, (st, reason, msg)) in timeline(scenario, "TaskRun", name) {
        if event == "DELETED" {
            continue;
        }
        let msg = msg.strip_prefix(['\'', '"']).unwrap_or(&msg);
        let msg = msg.strip_suffix(['\'', '"']).unwrap_or(msg);
        push_changed(&mut out, (st, reason, msg.to_string()));
    }
    out
}

/// The transitions of `key` in one of the simulator's condition histories.
fn history<'a>(
    history: &'a [(String, String, String, String)],
    key: &'a str,
) -> impl Iterator<Item = Transition> + 'a {
    history
        .iter()
        .filter(move |(k, ..)| k == key)
        .map(|(_, st, reason, msg)| (st.clone(), reason.clone(), msg.clone()))
}

/// One recorded scenario replayed: the in-memory cluster in the namespace named like the
/// scenario's fixture folder.
struct Scenario {
    ns: &'static str,
    c: MemoryCluster,
}

impl Deref for Scenario {
    type Target = MemoryCluster;
    fn deref(&self) -> &MemoryCluster {
        &self.c
    }
}

impl DerefMut for Scenario {
    fn deref_mut(&mut self) -> &mut MemoryCluster {
        &mut self.c
    }
}

impl Scenario {
    /// An empty cluster.
    fn empty(ns: &'static str) -> Self {
        Scenario {
            ns,
            c: MemoryCluster::new(t0()),
        }
    }

    /// A cluster with the shared Tasks and Pipeline.
    fn new(ns: &'static str) -> Self {
        let mut s = Self::empty(ns);
        for obj in yaml("tasks.yaml").into_iter().chain(yaml("pipeline.yaml")) {
            s.c.create(ns, obj).expect("setup");
        }
        s
    }

    /// Submits the run of `file` with the sandbox's outcome annotations (a JSON object).
    fn submit(&mut self, file: &str, annotations: &str) {
        let mut pr = yaml(file).remove(0);
        let ann = pr["metadata"]
            .as_object_mut()
            .expect("meta")
            .entry("annotations")
            .or_insert_with(|| json!({}));
        json_patch::merge(
            ann,
            &serde_json::from_str(annotations).expect("annotations"),
        );
        self.c.create(self.ns, pr).expect("create run");
    }

    /// Submits `file` and runs it to completion, checking it against moment `01-failed`.
    fn failed(mut self, file: &str, annotations: &str, run: &str) -> Self {
        self.submit(file, annotations);
        self.done(run);
        self.assert_moment("01-failed");
        self.assert_transitions(run);
        self
    }

    fn pr(&self, name: &str) -> Value {
        self.c
            .get(Kind::PipelineRun, self.ns, name)
            .expect("run exists")
    }

    fn taskrun(&self, name: &str) -> Value {
        self.c.get(Kind::TaskRun, self.ns, name).expect("taskrun")
    }

    fn delete_taskruns(&mut self, names: &[&str]) {
        for name in names {
            self.c
                .delete(Kind::TaskRun, self.ns, name, Propagation::Cascade)
                .expect("delete");
        }
    }

    fn done(&mut self, name: &str) {
        assert!(
            self.c
                .run_until_done(self.ns, name, TimeDelta::seconds(120)),
            "{name} finishes"
        );
    }

    /// Runs until TaskRun `name`'s `Succeeded` reason is `reason`, for at most `secs` seconds.
    fn wait_for_taskrun(&mut self, name: &str, reason: &str, secs: i64) {
        let ns = self.ns;
        assert!(
            self.c.run_until(TimeDelta::seconds(secs), &|c| {
                c.get(Kind::TaskRun, ns, name)
                    .and_then(|t| util::succeeded_parts(&t).map(|(_, r, _)| r == reason))
                    .unwrap_or(false)
            }),
            "{name} reaches {reason}"
        );
    }

    /// Patches `spec.status` of run `name` (`null` clears it), with an optional resourceVersion
    /// precondition.
    fn patch_spec_status(
        &mut self,
        name: &str,
        status: Value,
        rv: Option<&str>,
    ) -> Result<Value, MemoryError> {
        let patch = json!({"spec": {"status": status}});
        self.c.patch(Kind::PipelineRun, self.ns, name, &patch, rv)
    }

    /// Sets the run's `Succeeded` condition to Unknown/Running with `msg` and nothing else.
    fn flip(&mut self, name: &str, msg: &str) {
        let mut run = self.pr(name);
        run["status"]["conditions"] = json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": msg}]);
        self.c
            .replace_status(Kind::PipelineRun, &run)
            .expect("flip");
    }

    /// The README's reset: Succeeded → Unknown/Running `msg`; completionTime, finallyStartTime,
    /// skippedTasks, results removed; childReferences filtered to `keep`; PUT with the read rv.
    fn reset(&mut self, name: &str, keep: &[&str], msg: &str, start_now: bool) -> Value {
        let mut run = self.pr(name);
        let now = util::fmt_time(self.c.now());
        let st = run["status"].as_object_mut().expect("status");
        for k in [
            "completionTime",
            "finallyStartTime",
            "skippedTasks",
            "results",
        ] {
            st.remove(k);
        }
        if let Some(refs) = st.get_mut("childReferences").and_then(Value::as_array_mut) {
            refs.retain(|r| keep.contains(&util::str_or_empty(r, &["name"])));
        }
        if start_now {
            st.insert("startTime".into(), now.clone().into());
        }
        st.insert(
            "conditions".into(),
            json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": msg, "lastTransitionTime": now}]),
        );
        self.c
            .replace_status(Kind::PipelineRun, &run)
            .expect("reset")
    }

    /// A retry of `run`: TaskRuns `delete` deleted, then the run reset keeping `keep`.
    fn retry(&mut self, run: &str, delete: &[&str], keep: &[&str], msg: &str) -> Value {
        self.delete_taskruns(delete);
        self.reset(run, keep, msg, false)
    }

    /// [`Scenario::retry`], then [`Scenario::finish_after`].
    fn retry_to_completion(
        &mut self,
        run: &str,
        delete: &[&str],
        keep: &[&str],
        msg: &str,
        moment: &str,
        min: usize,
    ) {
        self.retry(run, delete, keep, msg);
        self.finish_after(run, msg, moment, min);
    }

    /// Runs `run` to completion after the reset with message `msg`, then compares moment `moment`
    /// and the condition sequence since the reset (at least `min` transitions) with the recording.
    fn finish_after(&mut self, run: &str, msg: &str, moment: &str, min: usize) {
        self.done(run);
        self.assert_moment(moment);
        self.assert_transitions_after(run, Some(msg), min);
    }

    /// Race 2: the controller reads the run, `spec.status` is cleared, then the controller writes
    /// the status it computed from the stale read. Returns whether that write hit a conflict.
    fn clear_spec_status_during_reconcile(&mut self, run: &str) -> bool {
        let staged = self
            .c
            .begin_pipelinerun_reconcile(self.ns, run)
            .expect("staged");
        self.patch_spec_status(run, Value::Null, None)
            .expect("spec");
        self.c.commit_status(staged).1
    }

    /// Resets TaskRun `name` in place the way Tekton's own retries do: its status archived into
    /// `retriesStatus`; startTime, completionTime, results and podName cleared; Succeeded →
    /// Unknown/ToBeRetried with the last message.
    fn reset_taskrun_in_place(&mut self, name: &str) {
        let mut tr = self.taskrun(name);
        let msg = util::succeeded_parts(&tr)
            .map(|(_, _, m)| m.to_string())
            .unwrap_or_default();
        let st = tr["status"].as_object_mut().expect("status");
        let mut retries = match st.remove("retriesStatus") {
            Some(Value::Array(retries)) => retries,
            _ => Vec::new(),
        };
        retries.push(Value::Object(st.clone()));
        for k in ["startTime", "completionTime", "results"] {
            st.remove(k);
        }
        st.insert("podName".into(), "".into());
        st.insert("retriesStatus".into(), retries.into());
        st.insert("conditions".into(), json!([{"type": "Succeeded", "status": "Unknown", "reason": "ToBeRetried", "message": msg}]));
        self.c
            .replace_status(Kind::TaskRun, &tr)
            .expect("in-place reset");
    }

    /// Compares the run and every TaskRun with the fixture files of moment `prefix`.
    fn assert_moment(&self, prefix: &str) {
        let (c, ns, scenario) = (&self.c, self.ns, self.ns);
        for f in fixture_files(scenario, prefix, "pipelinerun") {
            let want = fixture(&f);
            let got = self.pr(util::name(&want));
            assert_eq!(project_run(&got), project_run(&want), "{f}");
        }
        let pod_files = fixture_files(scenario, prefix, "pod");
        if !pod_files.is_empty() {
            let want = pod_files.iter().map(|f| fixture(f)).collect::<Vec<_>>();
            assert_eq!(
                pod_phases(c.list(Kind::Pod, ns).iter()),
                pod_phases(want.iter()),
                "{scenario}/{prefix}: pods and phases"
            );
        }
        let tr_files = fixture_files(scenario, prefix, "taskrun");
        if tr_files.is_empty() {
            return;
        }
        let mut want_names: Vec<String> = tr_files
            .iter()
            .map(|f| util::name(&fixture(f)).to_string())
            .collect();
        want_names.sort();
        let mut got_names = c.names(Kind::TaskRun, ns);
        got_names.sort();
        assert_eq!(got_names, want_names, "{scenario}/{prefix}: TaskRuns");
        for f in tr_files {
            let want = fixture(&f);
            let got = self.taskrun(util::name(&want));
            assert_eq!(project_tr(&got), project_tr(&want), "{f}");
        }
    }

    fn assert_transitions(&self, run: &str) {
        self.assert_transitions_after(run, None, 3);
    }

    /// Compares the condition sequence after the status write whose message is `after` (a reset)
    /// up to the next completion.
    fn assert_transitions_after(&self, run: &str, after: Option<&str>, min: usize) {
        let scenario = self.ns;
        let recorded = recorded_transitions(scenario, run, after);
        assert!(
            recorded.len() >= min.max(1),
            "{scenario}: timeline parsed: {recorded:?}"
        );
        assert_ne!(
            recorded.last().map(|e| e.0.as_str()),
            Some("Unknown"),
            "{scenario}: ends done"
        );
        let key = format!("{}/{run}", self.ns);
        assert_eq!(
            until_completion(history(&self.c.condition_history, &key), after),
            recorded,
            "{scenario}: condition sequence after {after:?}"
        );
    }

    fn assert_taskrun_transitions(&self, names: &[&str]) {
        let scenario = self.ns;
        for name in names {
            let key = format!("{}/{name}", self.ns);
            let mut got: Vec<Transition> = Vec::new();
            for (st, reason, msg) in history(&self.c.taskrun_condition_history, &key) {
                push_changed(&mut got, (st, reason, msg.replace('\n', "\\n")));
            }
            let want = recorded_taskrun_transitions(scenario, name);
            assert!(want.len() >= 2, "{scenario}/{name}: timeline parsed");
            let same = got.len() == want.len()
                && got
                    .iter()
                    .zip(&want)
                    .all(|(g, w)| g.0 == w.0 && g.1 == w.1 && g.2.starts_with(&w.2));
            assert!(
                same,
                "{scenario}/{name}: TaskRun condition sequence\n got: {got:#?}\nwant: {want:#?}"
            );
        }
    }
}

/// `pipelinerun.yaml` failed at b, checked against the recording.
fn failed_demo(ns: &'static str) -> Scenario {
    Scenario::new(ns).failed("pipelinerun.yaml", FAIL_B, "demo-run")
}

/// `pipelinerun.yaml` submitted with `annotations` and run until b is Running.
fn with_b_running(ns: &'static str, annotations: &str) -> Scenario {
    let mut s = Scenario::new(ns);
    s.submit("pipelinerun.yaml", annotations);
    s.wait_for_taskrun("demo-run-b", "Running", 30);
    s
}

#[test]
fn dag_failed_then_recommended_reset() {
    const RETRY: &str = "Retry 1 requested by alice: re-running b, c, report";
    let ns = "dag-failed";
    let mut s = failed_demo(ns);
    // While done: annotate, nothing happens.
    let writes = s.controller_writes.len();
    s.patch(
        Kind::PipelineRun,
        ns,
        "demo-run",
        &json!({"metadata": {"annotations": {"retry.example.dev/retry-count": "1"}}}),
        None,
    )
    .expect("annotate");
    // Edit Task `build` (the recorded run did): re-created TaskRuns must re-resolve it.
    let script = "echo building v2 $(params.commit)\necho -n registry.example/app:$(params.commit)-v2 > $(results.image.path)\n";
    s.patch(Kind::Task, ns, "build", &json!({"spec": {"steps": [{"name": "compile", "image": "example.invalid/golang:1", "script": script}]}}), None)
        .expect("edit task");
    s.delete_taskruns(&["demo-run-b", "demo-run-report"]);
    s.advance(TimeDelta::seconds(30));
    s.step();
    assert_eq!(
        s.controller_writes.len(),
        writes,
        "no controller writes while done"
    );
    s.reset("demo-run", &["demo-run-a"], RETRY, false);
    s.settle();
    assert_eq!(
        util::succeeded_parts(&s.pr("demo-run"))
            .map(|(_, _, m)| m.to_string())
            .as_deref(),
        Some("Tasks Completed: 1 (Failed: 0, Cancelled 0), Incomplete: 3, Skipped: 0")
    );
    s.finish_after("demo-run", RETRY, "06-final", 3);
    // startTime kept; annotations copied onto re-created TaskRuns.
    assert_eq!(
        s.pr("demo-run")["status"]["startTime"],
        util::fmt_time(t0()).as_str()
    );
    assert_eq!(
        s.taskrun("demo-run-b")["metadata"]["annotations"]["retry.example.dev/retry-count"],
        "1"
    );
    s.assert_taskrun_transitions(&DEMO_TASKRUNS);
}

#[test]
fn flip_only_refails_and_reruns_only_deleted_finally() {
    let ns = "flip-only";
    let mut s = failed_demo(ns);
    s.advance(TimeDelta::seconds(10));
    s.flip("demo-run", "flip only");
    let trs = s.names(Kind::TaskRun, ns);
    s.settle();
    assert_eq!(s.names(Kind::TaskRun, ns), trs, "no TaskRun created");
    s.assert_moment("03-after-flip");
    assert_eq!(
        s.pr("demo-run")["status"]["completionTime"],
        util::fmt_time(s.now()).as_str()
    );
    s.delete_taskruns(&["demo-run-report"]);
    s.flip("demo-run", "flip + finally deleted");
    s.done("demo-run");
    s.assert_moment("05-after-flip2");
    s.assert_taskrun_transitions(&["demo-run-a", "demo-run-b", "demo-run-report"]);
}

#[test]
fn cancelled_and_both_races() {
    const RESUME3: &str = "resume 3 (status again, spec already cleared)";
    let ns = "cancelled";
    let mut s = with_b_running(ns, HANG_B_ONCE);
    s.assert_moment("01-running");
    s.patch_spec_status("demo-run", json!("Cancelled"), None)
        .expect("cancel");
    s.settle();
    s.assert_moment("02-cancelled");
    s.assert_transitions("demo-run");
    assert!(
        s.get(Kind::Pod, ns, "demo-run-b-pod").is_none(),
        "cancelled pod deleted"
    );

    // Resume 1 (race 1): status first, then spec with a resourceVersion precondition.
    let written = s.retry(
        "demo-run",
        &["demo-run-b"],
        &["demo-run-a"],
        "resume 1 (status first, kubectl)",
    );
    s.settle();
    s.assert_moment("06-after-resume1");
    let rv = util::str_or_empty(&written, &["metadata", "resourceVersion"]);
    let err = s
        .patch_spec_status("demo-run", Value::Null, Some(rv))
        .expect_err("stale spec write");
    assert!(matches!(err, MemoryError::Conflict(..)));

    // Resume 2 (race 2): the controller read the run between the status and the spec write.
    s.reset(
        "demo-run",
        &["demo-run-a"],
        "resume 2 (status then spec, back to back)",
        false,
    );
    assert!(
        s.clear_spec_status_during_reconcile("demo-run"),
        "the stale status write hit a conflict and was retried"
    );
    s.assert_moment("09-after-resume2");

    // Resume 3: status again.
    s.reset("demo-run", &["demo-run-a"], RESUME3, false);
    s.finish_after("demo-run", RESUME3, "11-final", 3);
    s.assert_taskrun_transitions(&DEMO_TASKRUNS);
}

#[test]
fn cancelled_taskrun_cannot_be_reset_in_place() {
    let mut s = with_b_running(
        "cancelled-inplace",
        r#"{"sandbox.retry.tekton.dev/hang": "b"}"#,
    );
    s.patch_spec_status("demo-run", json!("Cancelled"), None)
        .expect("cancel");
    s.settle();
    s.assert_moment("01-cancelled");
    s.reset_taskrun_in_place("demo-run-b");
    s.settle();
    let want = project_tr(&fixture(
        "cancelled-inplace/03-after-inplace-reset-taskrun-demo-run-b.json",
    ));
    let got = project_tr(&s.taskrun("demo-run-b"));
    assert_eq!(got["conditions"], want["conditions"]);
    assert_eq!(got["retries"], want["retries"]);
    s.assert_taskrun_transitions(&["demo-run-a", "demo-run-b"]);
}

/// b running, then the run gracefully cancelled (`CancelledRunFinally`).
fn graceful_cancel(ns: &'static str) -> Scenario {
    let mut s = with_b_running(ns, HANG_B_ONCE);
    s.patch_spec_status("demo-run", json!("CancelledRunFinally"), None)
        .expect("cancel");
    s
}

#[test]
fn cancelled_finally_and_resume() {
    let ns = "cancelled-finally";
    let keep = ["demo-run-a", "demo-run-report"];
    let mut s = graceful_cancel(ns);
    assert!(s.run_until(TimeDelta::seconds(5), &|c| c
        .get(Kind::TaskRun, ns, "demo-run-report")
        .is_some()));
    s.assert_moment("02-cancelling-finally-running");
    s.done("demo-run");
    s.assert_moment("03-cancelled");
    s.assert_transitions("demo-run");

    s.retry(
        "demo-run",
        &["demo-run-b"],
        &keep,
        "resume graceful cancel: keep old finally run for now",
    );
    s.clear_spec_status_during_reconcile("demo-run");
    s.assert_moment("06-after-race2");

    s.reset(
        "demo-run",
        &keep,
        "resume graceful cancel: status again (spec already cleared)",
        false,
    );
    s.wait_for_taskrun("demo-run-b", "Running", 10);
    s.delete_taskruns(&["demo-run-report"]);
    s.done("demo-run");
    s.assert_moment("08-final");
    s.assert_taskrun_transitions(&DEMO_TASKRUNS);
}

#[test]
fn cancelled_finally_trap_runs_finally_in_the_window() {
    let ns = "cancelled-finally-trap";
    let mut s = graceful_cancel(ns);
    s.done("demo-run");
    s.assert_moment("01-cancelled");
    s.assert_transitions("demo-run");
    s.retry(
        "demo-run",
        &["demo-run-b", "demo-run-report"],
        &["demo-run-a"],
        "resume graceful cancel with finally already deleted",
    );
    let staged = s
        .begin_pipelinerun_reconcile(ns, "demo-run")
        .expect("staged");
    assert!(
        s.get(Kind::TaskRun, ns, "demo-run-report").is_some(),
        "finally scheduled in the window"
    );
    s.patch_spec_status("demo-run", Value::Null, None)
        .expect("spec");
    s.commit_status(staged);
    s.done("demo-run");
    s.assert_moment("05-final");
    s.assert_taskrun_transitions(&DEMO_TASKRUNS);
}

/// `pipelinerun-timeout.yaml` (1m pipeline timeout) failed at b, checked against the recording.
fn timeout_run(ns: &'static str) -> Scenario {
    Scenario::new(ns).failed("pipelinerun-timeout.yaml", FAIL_B, "demo-run")
}

/// Retries the timeout run `secs` seconds after it started: TaskRuns `delete` deleted, only a
/// kept, startTime reset to now when `start_now`.
fn retry_timeout_at(s: &mut Scenario, secs: i64, delete: &[&str], msg: &str, start_now: bool) {
    s.set_now(t0() + TimeDelta::seconds(secs));
    s.delete_taskruns(delete);
    s.reset("demo-run", &["demo-run-a"], msg, start_now);
}

#[test]
fn timeout_between_one_and_two_budgets() {
    const RETRY: &str = "retry after pipeline timeout elapsed (1m < elapsed < 2m)";
    let ns = "timeout";
    let mut s = timeout_run(ns);
    retry_timeout_at(&mut s, 66, &["demo-run-b", "demo-run-report"], RETRY, false);
    s.settle();
    s.assert_moment("03-after-reset");
    s.assert_transitions_after("demo-run", Some(RETRY), 1);
    assert_eq!(s.names(Kind::TaskRun, ns), vec!["demo-run-a".to_string()]);
}

#[test]
fn timeout_long_takes_the_early_return() {
    let mut s = timeout_run("timeout-long");
    retry_timeout_at(
        &mut s,
        122,
        &["demo-run-b", "demo-run-report"],
        "retry after 2x pipeline timeout elapsed",
        false,
    );
    s.settle();
    s.assert_moment("03-after-reset");
}

#[test]
fn timeout_within_budget_with_start_time_reset() {
    const RETRY: &str = "retry within budget, startTime reset to now";
    let mut s = timeout_run("timeout-within");
    retry_timeout_at(&mut s, 14, &["demo-run-b", "demo-run-report"], RETRY, true);
    s.settle();
    assert_eq!(
        s.pr("demo-run")["status"]["startTime"],
        s.taskrun("demo-run-a")["metadata"]["creationTimestamp"],
        "AdjustStartTime"
    );
    s.finish_after("demo-run", RETRY, "03-final", 3);
    s.assert_taskrun_transitions(&DEMO_TASKRUNS);
}

#[test]
fn timeout_start_reset_is_undone() {
    let ns = "timeout-startreset";
    let mut s = timeout_run(ns);
    s.patch(Kind::PipelineRun, ns, "demo-run", &json!({"metadata": {"annotations": {"sandbox.retry.tekton.dev/fail": null, "sandbox.retry.tekton.dev/hang": "b"}}}), None)
        .expect("rules");
    retry_timeout_at(
        &mut s,
        58,
        &["demo-run-b", "demo-run-report"],
        "retry after timeout elapsed, startTime reset to now",
        true,
    );
    s.done("demo-run");
    s.assert_moment("03-after-reset");
    let a = s.taskrun("demo-run-a");
    let run = s.pr("demo-run");
    assert_eq!(
        run["status"]["startTime"],
        a["metadata"]["creationTimestamp"]
    );
    let completed = util::time_at(&run, &["status", "completionTime"]).expect("completion");
    let created = util::time_at(&a, &["metadata", "creationTimestamp"]).expect("created");
    assert!(
        completed - created >= TimeDelta::seconds(60)
            && completed - created <= TimeDelta::seconds(61),
        "timed out at start + 1m"
    );

    retry_timeout_at(
        &mut s,
        74,
        &["demo-run-b"],
        "second retry, >1m elapsed, startTime reset to now",
        true,
    );
    s.settle();
    s.assert_moment("05-after-reset2");
    s.assert_taskrun_transitions(&["demo-run-a", "demo-run-b"]);
}

#[test]
fn retries_and_in_place_taskrun_reset() {
    const RETRY: &str = "retry after in-place TaskRun reset of b";
    let ns = "retries";
    let mut s = Scenario::new(ns).failed(
        "retries.yaml",
        r#"{"sandbox.retry.tekton.dev/fail": "b:2", "sandbox.retry.tekton.dev/duration": "2s"}"#,
        "retry-run",
    );
    let mut pods = s.names(Kind::Pod, ns);
    pods.sort();
    assert_eq!(
        pods,
        [
            "retry-run-a-pod",
            "retry-run-b-pod",
            "retry-run-b-pod-retry1"
        ]
    );

    s.reset_taskrun_in_place("retry-run-b");
    s.wait_for_taskrun("retry-run-b", "Succeeded", 10);
    s.assert_moment("03-after-inplace-taskrun-reset");

    s.reset("retry-run", &["retry-run-a", "retry-run-b"], RETRY, false);
    s.finish_after("retry-run", RETRY, "05-final", 1);
    s.assert_taskrun_transitions(&["retry-run-a", "retry-run-b", "retry-run-c"]);
}

/// `matrix.yaml` failed at combination m-1, retried with TaskRuns `delete` deleted and `keep`
/// kept, and compared with the recording until it completes at moment `moment`.
fn retried_matrix(
    ns: &'static str,
    delete: &[&str],
    keep: &[&str],
    msg: &str,
    moment: &str,
    min: usize,
) {
    let mut s = Scenario::new(ns).failed(
        "matrix.yaml",
        r#"{"sandbox.retry.tekton.dev/fail": "matrix-run-m-1", "sandbox.retry.tekton.dev/duration": "2s"}"#,
        "matrix-run",
    );
    s.retry_to_completion("matrix-run", delete, keep, msg, moment, min);
    s.assert_taskrun_transitions(&MATRIX_TASKRUNS);
}

#[test]
fn matrix_partial_reset_never_recreates_the_deleted_combination() {
    let keep = ["matrix-run-a", "matrix-run-m-0", "matrix-run-m-2"];
    let msg = "retry: only failed matrix combination m-1 deleted";
    retried_matrix(
        "matrix",
        &["matrix-run-m-1", "matrix-run-report"],
        &keep,
        msg,
        "03-after-partial-reset",
        1,
    );
}

#[test]
fn matrix_full_reset_recreates_every_combination() {
    let delete = [
        "matrix-run-m-0",
        "matrix-run-m-1",
        "matrix-run-m-2",
        "matrix-run-report",
    ];
    let msg = "retry: all matrix combinations of m deleted";
    retried_matrix(
        "matrix-full",
        &delete,
        &["matrix-run-a"],
        msg,
        "03-final",
        2,
    );
}

#[test]
fn keep_finally_is_not_rerun() {
    const RETRY: &str = "retry b,c; keep finally run";
    let mut s = failed_demo("keep-finally");
    s.retry_to_completion(
        "demo-run",
        &["demo-run-b"],
        &["demo-run-a", "demo-run-report"],
        RETRY,
        "03-after-reset",
        2,
    );
    assert!(s.pr("demo-run")["status"].get("finallyStartTime").is_some());
    s.assert_taskrun_transitions(&DEMO_TASKRUNS);
}

#[test]
fn childrefs_readoption_and_dangling_refs() {
    const V1: &str = "drop b childRef, b NOT deleted";
    const V2: &str = "b, report deleted; dangling childRefs kept";
    let mut s = failed_demo("childrefs");
    s.retry_to_completion(
        "demo-run",
        &["demo-run-report"],
        &["demo-run-a"],
        V1,
        "03-v1-refailed",
        1,
    );

    s.retry(
        "demo-run",
        &["demo-run-b", "demo-run-report"],
        &["demo-run-a", "demo-run-b", "demo-run-report"],
        V2,
    );
    s.settle();
    let refs: Vec<String> = util::array(&s.pr("demo-run"), &["status", "childReferences"])
        .iter()
        .map(|r| util::str_or_empty(r, &["name"]).to_string())
        .collect();
    assert_eq!(
        refs,
        ["demo-run-a", "demo-run-b"],
        "dangling report reference dropped, b re-created"
    );
    s.finish_after("demo-run", V2, "05-v2-final", 3);
    s.assert_taskrun_transitions(&DEMO_TASKRUNS);
}

#[test]
fn orphan_pod_is_adopted_and_fails_the_new_taskrun() {
    const RETRY: &str = "retry with old pod orphaned";
    let ns = "orphan-pod";
    let mut s = failed_demo(ns);
    s.delete(Kind::TaskRun, ns, "demo-run-b", Propagation::Orphan)
        .expect("orphan delete");
    let orphan = s.get(Kind::Pod, ns, "demo-run-b-pod").expect("pod stays");
    assert!(orphan["metadata"].get("ownerReferences").is_none());
    s.retry_to_completion(
        "demo-run",
        &["demo-run-report"],
        &["demo-run-a"],
        RETRY,
        "03-after-reset",
        0,
    );
    let pod = s.get(Kind::Pod, ns, "demo-run-b-pod").expect("pod");
    assert_eq!(
        pod["metadata"]["uid"], orphan["metadata"]["uid"],
        "the stale pod was adopted, not replaced"
    );
    s.assert_taskrun_transitions(&["demo-run-a", "demo-run-b", "demo-run-report"]);
}

#[test]
fn affinity_workspace_run_retries() {
    const RETRY: &str = "retry b with volumeClaimTemplate workspace";
    let mut s = Scenario::empty("affinity").failed("affinity.yaml", FAIL_B, "ws-run");
    s.retry_to_completion(
        "ws-run",
        &["ws-run-b"],
        &["ws-run-a"],
        RETRY,
        "03-after-reset",
        1,
    );
    s.assert_taskrun_transitions(&["ws-run-a", "ws-run-b"]);
}

#[test]
fn informer_lag_fast_resets_work() {
    for ns in ["informer-lag-1", "informer-lag-2", "informer-lag-3"] {
        let mut s = failed_demo(ns);
        s.retry_to_completion(
            "demo-run",
            &["demo-run-b", "demo-run-report"],
            &["demo-run-a"],
            "fast reset",
            "03-final",
            4,
        );
    }
}
