//! The fake kubelet: completes Tekton pods by a scriptable rule, writing pod status patches shaped
//! like the recorded ones (`tests/fixtures/tekton/fake-kubelet/*.status-patch.json`,
//! `fake_kubelet.py`). Pure decisions plus a small state machine; the driver sends the patches.
//!
//! Rules are read from annotations (of the PipelineRun, else of the TaskRun, which carries copies of
//! the run's annotations). A rule key is a TaskRun name or a pipeline task name, looked up in that
//! order (as `fake_kubelet.py` does):
//! * [`ANN_FAIL`] `"b"` fails b's first attempt, `"b:2"` its first two, `"b,c:3"` several tasks;
//!   `"b:*"` every attempt.
//! * [`ANN_HANG`] `"b"` keeps b running forever, `"b:1"` only on its first attempt.
//! * [`ANN_DURATION`] `"200ms"` sets the default Running → terminated time, `"b=2s"` one task's;
//!   both may be combined (`"500ms,b=2s"`). Default [`DEFAULT_DURATION_MS`].
//!
//! Attempts are counted per (namespace, run uid, rule key) in the kubelet's memory, so they survive
//! the TaskRun being deleted and re-created. Every declared Task result gets the value
//! `<result>-from-<pod name>` (the recorded kubelet's default, e.g. `commit-from-demo-run-a-pod`),
//! or `<key>-<result>-<attempt>` with [`ANN_RESULTS`] `"attempt"`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};

use super::rules;
use super::util::{self, array, str_or_empty};

/// Fails a task's first N attempts.
pub const ANN_FAIL: &str = "sandbox.retry.tekton.dev/fail";
/// Keeps a task's pod running.
pub const ANN_HANG: &str = "sandbox.retry.tekton.dev/hang";
/// Running → terminated duration, default and per task.
pub const ANN_DURATION: &str = "sandbox.retry.tekton.dev/duration";
/// `"attempt"`: result values `<task>-<result>-<attempt>` instead of the recorded kubelet's
/// `<result>-from-<pod name>` (so a re-run task visibly produces new values).
pub const ANN_RESULTS: &str = "sandbox.retry.tekton.dev/results";
/// Default Running → terminated time in milliseconds.
pub const DEFAULT_DURATION_MS: i64 = 100;

/// How many attempts a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempts {
    /// The first N attempts.
    First(u32),
    /// Every attempt.
    All,
}

impl Attempts {
    fn covers(self, attempt: u32) -> bool {
        match self {
            Attempts::First(n) => attempt <= n,
            Attempts::All => true,
        }
    }
}

/// The parsed rules of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeRules {
    /// key → attempts that fail.
    pub fail: BTreeMap<String, Attempts>,
    /// key → attempts that hang.
    pub hang: BTreeMap<String, Attempts>,
    /// Default duration.
    pub duration: Option<TimeDelta>,
    /// key → duration.
    pub durations: BTreeMap<String, TimeDelta>,
    /// Result values carry the task and attempt ([`ANN_RESULTS`] `"attempt"`).
    pub results_by_attempt: bool,
}

fn parse_list(s: &str, default: Attempts) -> BTreeMap<String, Attempts> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .filter_map(|e| match e.split_once(':') {
            Some((k, "*")) => Some((k.trim().to_string(), Attempts::All)),
            Some((k, n)) => n
                .trim()
                .parse()
                .ok()
                .map(|n| (k.trim().to_string(), Attempts::First(n))),
            None => Some((e.to_string(), default)),
        })
        .collect()
}

impl OutcomeRules {
    /// Parses the rules from an annotation map.
    pub fn from_annotations(ann: &Map<String, Value>) -> Self {
        let get = |k: &str| ann.get(k).and_then(Value::as_str).unwrap_or("");
        let mut rules = OutcomeRules {
            fail: parse_list(get(ANN_FAIL), Attempts::First(1)),
            hang: parse_list(get(ANN_HANG), Attempts::All),
            results_by_attempt: get(ANN_RESULTS).trim() == "attempt",
            ..Default::default()
        };
        for e in get(ANN_DURATION)
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            match e.split_once('=') {
                Some((k, d)) => {
                    if let Some(d) = util::parse_duration(d) {
                        rules.durations.insert(k.trim().to_string(), d);
                    }
                }
                None => rules.duration = util::parse_duration(e).or(rules.duration),
            }
        }
        rules
    }

    /// The rules of a pod: the annotations of its PipelineRun `pr`, or of its TaskRun `tr` when
    /// it has none.
    pub fn of_run(pr: Option<&Value>, tr: &Value) -> Self {
        let ann = util::get(pr.unwrap_or(tr), &["metadata", "annotations"])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Self::from_annotations(&ann)
    }

    fn key_for<'a>(&self, keys: &[&'a str]) -> Option<&'a str> {
        keys.iter().copied().find(|k| {
            !k.is_empty()
                && (self.fail.contains_key(*k)
                    || self.hang.contains_key(*k)
                    || self.durations.contains_key(*k))
        })
    }
}

/// What happens to one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every step exits 0.
    Succeed,
    /// The first step exits 1, later steps are skipped.
    Fail,
    /// Stays running.
    Hang,
}

/// The decision for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The outcome.
    pub outcome: Outcome,
    /// Running → terminated.
    pub duration: TimeDelta,
    /// 1-based attempt number of this task in this run.
    pub attempt: u32,
    /// The rule key (TaskRun or pipeline task name) the attempt is counted under.
    pub key: String,
}

#[derive(Debug, Clone)]
struct PodState {
    decision: Decision,
    running_at: Option<DateTime<Utc>>,
    done: bool,
}

/// The kubelet's memory: attempts per task and the progress of every pod it has seen.
#[derive(Debug, Clone, Default)]
pub struct FakeKubelet {
    attempts: HashMap<String, u32>,
    pods: HashMap<String, PodState>,
}

fn conditions(t: &str, ready: bool) -> Value {
    let s = if ready { "True" } else { "False" };
    json!([
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": t},
        {"type": "Initialized", "status": "True", "lastTransitionTime": t},
        {"type": "Ready", "status": s, "lastTransitionTime": t},
        {"type": "ContainersReady", "status": s, "lastTransitionTime": t},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
    ])
}

impl FakeKubelet {
    /// An empty kubelet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides a new pod's fate and counts the attempt.
    pub fn decide(&mut self, pod: &Value, rules: &OutcomeRules) -> Decision {
        let tr = util::label(pod, rules::LABEL_TASK_RUN).unwrap_or("");
        let pt = util::label(pod, rules::LABEL_PIPELINE_TASK).unwrap_or("");
        let key = rules
            .key_for(&[tr, pt])
            .unwrap_or(if pt.is_empty() { tr } else { pt });
        let run = util::label(pod, rules::LABEL_PIPELINE_RUN_UID)
            .or_else(|| util::label(pod, rules::LABEL_PIPELINE_RUN))
            .unwrap_or("");
        let counter = self
            .attempts
            .entry(format!("{}/{run}/{key}", util::namespace(pod)))
            .or_insert(0);
        *counter += 1;
        let attempt = *counter;
        let outcome = if rules.hang.get(key).is_some_and(|a| a.covers(attempt)) {
            Outcome::Hang
        } else if rules.fail.get(key).is_some_and(|a| a.covers(attempt)) {
            Outcome::Fail
        } else {
            Outcome::Succeed
        };
        let duration = rules
            .durations
            .get(key)
            .copied()
            .or(rules.duration)
            .unwrap_or_else(|| TimeDelta::milliseconds(DEFAULT_DURATION_MS));
        Decision {
            outcome,
            duration,
            attempt,
            key: key.to_string(),
        }
    }

    /// The status merge patch (`{"status": ...}`) to send for `pod` at `now`, if any. `rules` come
    /// from the run's annotations, `results` are the result names the TaskRun's Task declares.
    pub fn step(
        &mut self,
        pod: &Value,
        rules: &OutcomeRules,
        results: &[String],
        now: DateTime<Utc>,
    ) -> Option<Value> {
        if util::get(pod, &["metadata", "deletionTimestamp"]).is_some() {
            return None;
        }
        let uid = util::uid(pod).to_string();
        let phase = str_or_empty(pod, &["status", "phase"]);
        if !self.pods.contains_key(&uid) {
            if phase == "Succeeded" || phase == "Failed" {
                return None;
            }
            let decision = self.decide(pod, rules);
            self.pods.insert(
                uid.clone(),
                PodState {
                    decision,
                    running_at: None,
                    done: false,
                },
            );
        }
        let st = self.pods.get_mut(&uid)?;
        if st.done {
            return None;
        }
        match st.running_at {
            None => {
                st.running_at = Some(now);
                Some(running_patch(pod, now))
            }
            Some(at) => {
                if st.decision.outcome == Outcome::Hang || now - at < st.decision.duration {
                    return None;
                }
                st.done = true;
                let values: Vec<(String, String)> = results
                    .iter()
                    .map(|r| {
                        let v = if rules.results_by_attempt {
                            format!("{}-{r}-{}", st.decision.key, st.decision.attempt)
                        } else {
                            format!("{r}-from-{}", util::name(pod))
                        };
                        (r.clone(), v)
                    })
                    .collect();
                Some(done_patch(
                    pod,
                    st.decision.outcome == Outcome::Fail,
                    at,
                    now,
                    &values,
                ))
            }
        }
    }

    /// Whether the kubelet has started handling the pod with this uid (it was placed).
    pub fn knows(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// The earliest time a known pod will terminate (for clocks that jump).
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.pods
            .values()
            .filter(|s| !s.done && s.decision.outcome != Outcome::Hang)
            .filter_map(|s| s.running_at.map(|t| t + s.decision.duration))
            .min()
    }

    /// Takes back the last transition of a pod whose status patch was not applied, so the next
    /// step sends it again (the attempt stays counted).
    pub fn revert(&mut self, uid: &str) {
        if let Some(st) = self.pods.get_mut(uid) {
            if st.done {
                st.done = false;
            } else {
                st.running_at = None;
            }
        }
    }

    /// Forgets pods that no longer exist (attempt counters are kept).
    pub fn retain_pods(&mut self, live: &HashSet<String>) {
        self.pods.retain(|uid, _| live.contains(uid));
    }
}

fn container_id(pod: &Value, c: &str) -> String {
    format!("fake://{}/{c}", util::uid(pod))
}

/// The status of container `c` as the recorded kubelet writes it: name, image, a `fake://` image
/// id, no restarts, `ready` and `started` = `running`, and `rest(name)` (its state and ids).
fn container_status(c: &Value, running: bool, rest: impl FnOnce(&str) -> Value) -> Value {
    let n = str_or_empty(c, &["name"]);
    let img = str_or_empty(c, &["image"]);
    let mut status = json!({"name": n, "image": img, "imageID": format!("fake://{img}"),
                            "ready": running, "restartCount": 0, "started": running});
    json_patch::merge(&mut status, &rest(n));
    status
}

/// Patch 1 of the recorded kubelet: `phase: Running`, every init container terminated 0, every
/// container running (`fake-kubelet/demo-run-a-pod-running.status-patch.json`).
pub fn running_patch(pod: &Value, now: DateTime<Utc>) -> Value {
    let t = util::fmt_time(now);
    let init: Vec<Value> = array(pod, &["spec", "initContainers"])
        .iter()
        .map(|c| {
            container_status(c, false, |n| {
                json!({"state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t,
                                                "finishedAt": t, "containerID": container_id(pod, n)}}})
            })
        })
        .collect();
    let cs: Vec<Value> = array(pod, &["spec", "containers"])
        .iter()
        .map(|c| {
            container_status(c, true, |n| {
                json!({"containerID": container_id(pod, n), "state": {"running": {"startedAt": t}}})
            })
        })
        .collect();
    json!({"status": {"phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": t,
                      "conditions": conditions(&t, true), "initContainerStatuses": init,
                      "containerStatuses": cs}})
}

/// Patch 2 of the recorded kubelet: every step terminated with the entrypoint's termination message
/// (`StartedAt`, the results on the last step, `Reason: Skipped` after a failed step), phase
/// `Succeeded` or `Failed` (`fake-kubelet/demo-run-b-pod-failed.status-patch.json`). `results` are
/// `(name, value)` pairs.
pub fn done_patch(
    pod: &Value,
    fail: bool,
    running_at: DateTime<Utc>,
    now: DateTime<Utc>,
    results: &[(String, String)],
) -> Value {
    let t = util::fmt_time(now);
    let started = util::fmt_time(running_at);
    let containers = array(pod, &["spec", "containers"]);
    let steps: Vec<&Value> = containers
        .iter()
        .filter(|c| str_or_empty(c, &["name"]).starts_with("step-"))
        .collect();
    let mut cs = Vec::new();
    let mut failed_already = false;
    for (i, c) in steps.iter().enumerate() {
        let mut msg = vec![
            json!({"key": "StartedAt", "value": util::fmt_time_millis(running_at), "type": rules::RESULT_TYPE_INTERNAL}),
        ];
        let code = if failed_already {
            msg.push(
                json!({"key": "Reason", "value": "Skipped", "type": rules::RESULT_TYPE_INTERNAL}),
            );
            1
        } else {
            let code = if fail && i == 0 { 1 } else { 0 };
            if code != 0 {
                failed_already = true;
            }
            if i + 1 == steps.len() && !failed_already {
                for r in results {
                    msg.push(json!({"key": r.0, "value": r.1, "type": rules::RESULT_TYPE_TASK}));
                }
            }
            code
        };
        cs.push(container_status(c, false, |n| {
            json!({"containerID": container_id(pod, n),
                   "state": {"terminated": {"exitCode": code,
                                            "reason": if code == 0 { "Completed" } else { "Error" },
                                            "message": Value::Array(msg).to_string(),
                                            "startedAt": started, "finishedAt": t,
                                            "containerID": container_id(pod, n)}}})
        }));
    }
    for c in containers
        .iter()
        .filter(|c| !str_or_empty(c, &["name"]).starts_with("step-"))
    {
        cs.push(container_status(c, false, |_| {
            json!({"state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": t}}})
        }));
    }
    let phase = if failed_already {
        "Failed"
    } else {
        "Succeeded"
    };
    json!({"status": {"phase": phase, "conditions": conditions(&t, false), "containerStatuses": cs}})
}

/// The result names a TaskRun's resolved Task declares (`status.taskSpec`, else `spec.taskSpec`).
pub fn declared_results(tr: &Value) -> Vec<String> {
    let spec =
        util::get(tr, &["status", "taskSpec"]).or_else(|| util::get(tr, &["spec", "taskSpec"]));
    spec.map(|s| {
        array(s, &["results"])
            .iter()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    })
    .unwrap_or_default()
}

/// Applies a JSON merge patch's `status` to a pod in memory (what the apiserver does with the
/// kubelet's `PATCH pods/<name>/status`).
pub fn apply_status_patch(pod: &mut Value, patch: &Value) {
    json_patch::merge(pod, patch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::fixture;

    const RUNNING: &str = "fake-kubelet/demo-run-a-pod-running.status-patch.json";
    const SUCCEEDED: &str = "fake-kubelet/demo-run-a-pod-succeeded.status-patch.json";
    const FAILED: &str = "fake-kubelet/demo-run-b-pod-failed.status-patch.json";

    fn t(s: &str) -> DateTime<Utc> {
        util::parse_time(s).expect("time")
    }

    fn pod(name: &str, uid: &str, task: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "uid": uid, "labels": {
                  "tekton.dev/taskRun": format!("run-{task}"), "tekton.dev/pipelineTask": task,
                  "tekton.dev/pipelineRunUID": "run-uid"}},
               "spec": {"initContainers": [{"name": "prepare", "image": "i"}],
                        "containers": [{"name": "step-compile", "image": "example.invalid/golang:1"}]},
               "status": {"phase": "Pending"}})
    }

    fn rules(pairs: &[(&str, &str)]) -> OutcomeRules {
        let m: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        OutcomeRules::from_annotations(&m)
    }

    /// Asserts that `patch` has the keys of the recorded patch at fixture path `recorded`.
    fn assert_shaped_like(patch: &Value, recorded: &str) {
        let recorded_patch = fixture::load(recorded);
        assert_eq!(shape(patch), shape(&recorded_patch["body"]), "{recorded}");
    }

    /// The termination message of the first step in a done patch.
    fn first_step_message(done: &Value) -> &str {
        done["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
            .as_str()
            .unwrap_or("")
    }

    /// The set of keys of every object nested at the same paths.
    fn shape(v: &Value) -> Value {
        match v {
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().take(1).map(shape).collect()),
            _ => Value::Null,
        }
    }

    #[test]
    fn rules_parse() {
        let r = rules(&[
            (ANN_FAIL, "b, c:2,d:*"),
            (ANN_HANG, "e,f:1"),
            (ANN_DURATION, "200ms,b=2s"),
        ]);
        assert_eq!(r.fail.get("b"), Some(&Attempts::First(1)));
        assert_eq!(r.fail.get("c"), Some(&Attempts::First(2)));
        assert_eq!(r.fail.get("d"), Some(&Attempts::All));
        assert_eq!(r.hang.get("e"), Some(&Attempts::All));
        assert_eq!(r.hang.get("f"), Some(&Attempts::First(1)));
        assert_eq!(r.duration, Some(TimeDelta::milliseconds(200)));
        assert_eq!(r.durations.get("b"), Some(&TimeDelta::seconds(2)));
    }

    #[test]
    fn attempts_survive_recreated_pods_of_the_same_name() {
        let r = rules(&[(ANN_FAIL, "b:2")]);
        let mut k = FakeKubelet::new();
        let outcomes: Vec<Outcome> = (0..3)
            .map(|i| {
                k.decide(&pod("run-b-pod", &format!("uid-{i}"), "b"), &r)
                    .outcome
            })
            .collect();
        assert_eq!(outcomes, [Outcome::Fail, Outcome::Fail, Outcome::Succeed]);
        assert_eq!(
            k.decide(&pod("run-c-pod", "c", "c"), &r).outcome,
            Outcome::Succeed
        );
    }

    #[test]
    fn taskrun_name_rules_win_over_task_rules() {
        let r = rules(&[(ANN_FAIL, "run-m-1"), (ANN_HANG, "m")]);
        let mut k = FakeKubelet::new();
        let mut p = pod("run-m-1-pod", "u1", "m");
        p["metadata"]["labels"]["tekton.dev/taskRun"] = "run-m-1".into();
        assert_eq!(k.decide(&p, &r).outcome, Outcome::Fail);
        p["metadata"]["labels"]["tekton.dev/taskRun"] = "run-m-0".into();
        assert_eq!(k.decide(&p, &r).outcome, Outcome::Hang);
    }

    #[test]
    fn pods_run_then_terminate_with_recorded_patch_shapes() {
        let r = rules(&[(ANN_DURATION, "2s")]);
        let mut k = FakeKubelet::new();
        let mut p = pod("run-a-pod", "ua", "a");
        let t0 = t("2026-11-26T19:27:11Z");
        let running = k
            .step(&p, &r, &["commit".into()], t0)
            .expect("running patch");
        assert_shaped_like(&running, RUNNING);
        apply_status_patch(&mut p, &running);
        assert!(
            k.step(&p, &r, &["commit".into()], t0 + TimeDelta::seconds(1))
                .is_none(),
            "still running"
        );
        assert_eq!(k.next_due(), Some(t0 + TimeDelta::seconds(2)));
        let done = k
            .step(&p, &r, &["commit".into()], t0 + TimeDelta::seconds(2))
            .expect("done patch");
        assert_shaped_like(&done, SUCCEEDED);
        assert_eq!(done["status"]["phase"], "Succeeded");
        let msg = first_step_message(&done);
        assert!(
            msg.contains(r#"{"key":"commit","value":"commit-from-run-a-pod","type":1}"#),
            "{msg}"
        );
        assert!(
            k.step(&p, &r, &[], t0 + TimeDelta::seconds(9)).is_none(),
            "terminal pods are not patched again"
        );
        k.revert("ua");
        assert!(
            k.step(&p, &r, &["commit".into()], t0 + TimeDelta::seconds(9))
                .is_some(),
            "a reverted patch is sent again"
        );
    }

    #[test]
    fn attempt_style_results_change_between_attempts() {
        let r = rules(&[(ANN_RESULTS, "attempt"), (ANN_DURATION, "1s")]);
        let mut k = FakeKubelet::new();
        let t0 = t("2026-11-26T19:27:11Z");
        let mut values = Vec::new();
        for uid in ["u1", "u2"] {
            let mut p = pod("run-a-pod", uid, "a");
            let running = k.step(&p, &r, &["commit".into()], t0).expect("running");
            apply_status_patch(&mut p, &running);
            let done = k
                .step(&p, &r, &["commit".into()], t0 + TimeDelta::seconds(1))
                .expect("done");
            values.push(first_step_message(&done).to_string());
        }
        assert!(
            values[0].contains(r#""value":"a-commit-1""#),
            "{}",
            values[0]
        );
        assert!(
            values[1].contains(r#""value":"a-commit-2""#),
            "{}",
            values[1]
        );
    }

    #[test]
    fn failing_and_hanging_pods() {
        let mut k = FakeKubelet::new();
        let fail = rules(&[(ANN_FAIL, "b"), (ANN_DURATION, "1s")]);
        let mut p = pod("run-b-pod", "ub", "b");
        let t0 = t("2026-11-26T19:27:14Z");
        let running = k.step(&p, &fail, &["image".into()], t0).expect("running");
        apply_status_patch(&mut p, &running);
        let done = k
            .step(&p, &fail, &["image".into()], t0 + TimeDelta::seconds(1))
            .expect("failed");
        assert_shaped_like(&done, FAILED);
        assert_eq!(done["status"]["phase"], "Failed");
        let term = &done["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(term["exitCode"], 1);
        assert_eq!(term["reason"], "Error");
        assert!(
            !term["message"].as_str().unwrap_or("").contains("image"),
            "no results from a failed step"
        );

        let hang = rules(&[(ANN_HANG, "h")]);
        let mut h = pod("run-h-pod", "uh", "h");
        let running = k.step(&h, &hang, &[], t0).expect("running");
        apply_status_patch(&mut h, &running);
        assert!(
            k.step(&h, &hang, &[], t0 + TimeDelta::hours(5)).is_none(),
            "hangs"
        );
        let mut old = pod("old-pod", "uo", "x");
        old["status"]["phase"] = "Failed".into();
        assert!(
            k.step(&old, &hang, &[], t0).is_none(),
            "an already finished pod is left alone"
        );
    }
}
