//! The `--follow` view: from one snapshot (the PipelineRun and its TaskRuns as JSON) to the state of
//! each pipeline task, a progress line and the run's outcome; rendered either as a screen redrawn in
//! place (a terminal) or as lines of changes only (a pipe or a file).
//!
//! Where the state comes from (Tekton v1, `pkg/apis/pipeline/v1/pipelinerun_types.go` and
//! `taskrun_types.go`; all visible in `fixtures/tekton/dag-failed/`):
//! - the task list and which tasks are `finally`: `status.pipelineSpec.tasks` / `.finally`;
//! - the run of a task: `status.childReferences[]` (`pipelineTaskName` → `name`), else a TaskRun
//!   labelled `tekton.dev/pipelineTask` (the label Tekton puts on every child TaskRun);
//! - the state of a run: its `Succeeded` condition (`True`; `False` with reason `StepFailed`,
//!   `Failed`, `TaskRunCancelled`, `TaskRunTimeout`; `Unknown` with `Pending`/`Running`), no condition
//!   yet right after creation (timeline.txt: `ADDED … -/-`);
//! - skipped tasks: `status.skippedTasks[]` (`{name, reason}`; 01-failed: `c`, "PipelineRun was stopping").

use std::time::Duration;
use tekton_retry::tekton::child::PIPELINE_TASK_LABEL;
use tekton_retry::tekton::{
    format_go_duration_secs, parse_time, ObjectView, PipelineRunView, PipelineSpecView,
};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::output::table;
use tekton_retry::api::annotations;

/// The state of one pipeline task in the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Not started: no run, not skipped.
    Waiting,
    /// A run exists but has not started its steps.
    Pending,
    Running,
    Succeeded,
    /// Failed with the run's reason (`StepFailed`, `Failed`, …).
    Failed(String),
    Cancelled,
    TimedOut,
    /// Skipped, with Tekton's reason.
    Skipped(String),
}

impl TaskState {
    /// Done: it will not change in this attempt.
    pub fn is_done(&self) -> bool {
        !matches!(
            self,
            TaskState::Waiting | TaskState::Pending | TaskState::Running
        )
    }

    /// The word shown in the view.
    pub fn label(&self) -> String {
        match self {
            TaskState::Waiting => "Waiting".into(),
            TaskState::Pending => "Pending".into(),
            TaskState::Running => "Running".into(),
            TaskState::Succeeded => "Succeeded".into(),
            TaskState::Failed(reason) => format!("Failed ({reason})"),
            TaskState::Cancelled => "Cancelled".into(),
            TaskState::TimedOut => "TimedOut".into(),
            TaskState::Skipped(reason) => format!("Skipped ({reason})"),
        }
    }
}

/// One row of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRow {
    pub name: String,
    pub finally: bool,
    /// Names of the child runs (several for a matrix task).
    pub runs: Vec<String>,
    pub state: TaskState,
    /// Start → completion of its run, or → `now` while it runs.
    pub duration: Option<Duration>,
}

/// The run's `Succeeded` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Running,
    Succeeded {
        message: String,
    },
    /// `False`: the reason (`Failed`, `Cancelled`, `PipelineRunTimeout`, …) and message.
    Failed {
        reason: String,
        message: String,
    },
}

/// One snapshot of a followed PipelineRun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowView {
    pub namespace: String,
    pub name: String,
    /// The `retry.tekton.dev/attempt` annotation (absent: never retried, attempt 1).
    pub attempt: u32,
    pub tasks: Vec<TaskRow>,
    pub outcome: Outcome,
    pub completion_time: Option<String>,
}

impl FollowView {
    /// Tasks that are done, and all tasks.
    pub fn progress(&self) -> (usize, usize) {
        let done = self.tasks.iter().filter(|t| t.state.is_done()).count();
        (done, self.tasks.len())
    }

    /// `3/4 tasks done`.
    pub fn progress_line(&self) -> String {
        let (done, total) = self.progress();
        format!("{done}/{total} tasks done")
    }
}

/// `(status, reason, message)` of an object's `Succeeded` condition.
fn succeeded(obj: &Value) -> Option<(&str, &str, &str)> {
    ObjectView::new(obj).succeeded_condition().map(|c| {
        (
            c.get("status").and_then(Value::as_str).unwrap_or(""),
            c.get("reason").and_then(Value::as_str).unwrap_or(""),
            c.get("message").and_then(Value::as_str).unwrap_or(""),
        )
    })
}

/// The state of one TaskRun.
pub fn taskrun_state(tr: &Value) -> TaskState {
    match succeeded(tr) {
        None => TaskState::Pending,
        Some(("True", _, _)) => TaskState::Succeeded,
        // taskrun_types.go: TaskRunReasonCancelled = "TaskRunCancelled", TaskRunReasonTimedOut = "TaskRunTimeout".
        Some(("False", "TaskRunCancelled", _)) => TaskState::Cancelled,
        Some(("False", "TaskRunTimeout", _)) => TaskState::TimedOut,
        Some(("False", reason, _)) => TaskState::Failed(if reason.is_empty() {
            "Failed".into()
        } else {
            reason.to_string()
        }),
        Some((_, "Pending", _)) | Some((_, "Started", _)) | Some((_, "", _)) => TaskState::Pending,
        Some(_) => TaskState::Running,
    }
}

fn run_duration(tr: &Value, now: DateTime<Utc>) -> Option<Duration> {
    let tr = ObjectView::new(tr);
    let start = tr.status_time("startTime")?;
    let end = tr.status_time("completionTime").unwrap_or(now);
    end.signed_duration_since(start).to_std().ok()
}

/// Combines the states of a task's runs (a matrix task has several): any run not done makes the task
/// running (or pending if none started), else any failure wins, else succeeded.
fn combine(states: &[TaskState]) -> TaskState {
    if states.contains(&TaskState::Running) {
        return TaskState::Running;
    }
    if states.contains(&TaskState::Pending) {
        return TaskState::Pending;
    }
    states
        .iter()
        .find(|s| **s != TaskState::Succeeded)
        .or(states.first())
        .cloned()
        .unwrap_or(TaskState::Pending)
}

/// Names of pipeline tasks and finally tasks, in spec order; when the run has no resolved
/// `pipelineSpec` yet, the tasks named in childReferences and skippedTasks.
fn task_names(run: &Value) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = PipelineSpecView::from_json(&run["status"]["pipelineSpec"])
        .all()
        .map(|t| (t.name.to_string(), t.is_finally))
        .collect();
    if out.is_empty() {
        let run = PipelineRunView::new(run);
        let refs = run
            .child_references()
            .into_iter()
            .map(|r| r.pipeline_task_name)
            .filter(|t| !t.is_empty());
        let skipped = run.skipped_tasks().into_iter().map(|s| s.name);
        for n in refs.chain(skipped).map(str::to_string) {
            if !out.iter().any(|(m, _)| *m == n) {
                out.push((n, false));
            }
        }
    }
    out
}

/// The view of `run` with its `taskruns` (those labelled `tekton.dev/pipelineRun=<run>`) at `now`.
pub fn view(run: &Value, taskruns: &[Value], now: DateTime<Utc>) -> FollowView {
    let run_view = PipelineRunView::new(run);
    let refs: Vec<(&str, &str)> = run_view
        .child_references()
        .into_iter()
        .filter(|r| !r.pipeline_task_name.is_empty())
        .map(|r| (r.pipeline_task_name, r.name))
        .collect();
    let skipped: Vec<(&str, &str)> = run_view
        .skipped_tasks()
        .into_iter()
        .map(|s| {
            (
                s.name,
                if s.reason.is_empty() {
                    "skipped"
                } else {
                    s.reason
                },
            )
        })
        .collect();
    let by_name = |name: &str| {
        taskruns
            .iter()
            .find(|tr| ObjectView::new(tr).name() == name)
    };

    let tasks = task_names(run)
        .into_iter()
        .map(|(task, finally)| {
            let mut runs: Vec<String> = refs
                .iter()
                .filter(|(t, _)| *t == task)
                .map(|(_, n)| n.to_string())
                .collect();
            if runs.is_empty() {
                runs = taskruns
                    .iter()
                    .map(ObjectView::new)
                    .filter(|tr| tr.label(PIPELINE_TASK_LABEL) == Some(&task))
                    .map(|tr| tr.name())
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            let objects: Vec<&Value> = runs.iter().filter_map(|n| by_name(n)).collect();
            let (state, duration) = if let Some((_, reason)) =
                skipped.iter().find(|(t, _)| *t == task)
            {
                (TaskState::Skipped(reason.to_string()), None)
            } else if runs.is_empty() {
                (TaskState::Waiting, None)
            } else {
                // A referenced run not in the list yet (watch lag) counts as pending.
                let mut states: Vec<TaskState> = objects.iter().map(|o| taskrun_state(o)).collect();
                if objects.len() < runs.len() {
                    states.push(TaskState::Pending);
                }
                let duration = objects.iter().filter_map(|o| run_duration(o, now)).max();
                (combine(&states), duration)
            };
            TaskRow {
                name: task,
                finally,
                runs,
                state,
                duration,
            }
        })
        .collect();

    let outcome = match succeeded(run) {
        Some(("True", _, message)) => Outcome::Succeeded {
            message: message.to_string(),
        },
        Some(("False", reason, message)) => Outcome::Failed {
            reason: if reason.is_empty() { "Failed" } else { reason }.to_string(),
            message: message.to_string(),
        },
        _ => Outcome::Running,
    };
    FollowView {
        namespace: run_view.obj.namespace().to_string(),
        name: run_view.obj.name().to_string(),
        attempt: run_view
            .obj
            .annotation(annotations::ATTEMPT)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1),
        tasks,
        outcome,
        completion_time: run_view
            .obj
            .status_time_str("completionTime")
            .map(str::to_string),
    }
}

/// Whether `view` shows the end of `attempt` (started at `attempt_start`, RFC 3339): the run is done,
/// is in that attempt, and completed after it started. A done state left over from before the retry
/// (a stale read) is not the end: the reset clears `completionTime` and the claim is written while the
/// run is done, so the previous completion is before the attempt's start.
pub fn attempt_finished(view: &FollowView, attempt: u32, attempt_start: Option<&str>) -> bool {
    if view.outcome == Outcome::Running || view.attempt != attempt {
        return false;
    }
    match (
        attempt_start.and_then(parse_time),
        view.completion_time.as_deref().and_then(parse_time),
    ) {
        (Some(start), Some(end)) => end >= start,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The view as a follower of `attempt` sees it, and whether the attempt has ended: a done state
/// that is not this attempt's end (see [`attempt_finished`]) is shown as still running.
pub fn for_attempt(
    mut view: FollowView,
    attempt: u32,
    attempt_start: Option<&str>,
) -> (FollowView, bool) {
    let finished = attempt_finished(&view, attempt, attempt_start);
    if !finished {
        view.outcome = Outcome::Running;
    }
    (view, finished)
}

/// Whether a later retry replaced the followed `attempt` (someone retried the run again): the
/// followed attempt's end will never be seen.
pub fn superseded(view: &FollowView, attempt: u32) -> bool {
    view.attempt > attempt
}

/// Whether the attempt ended in success.
pub fn succeeded_outcome(view: &FollowView) -> bool {
    matches!(view.outcome, Outcome::Succeeded { .. })
}

/// The last line: `PipelineRun NS/NAME Succeeded: <message>` (or the failure reason).
pub fn final_line(view: &FollowView) -> String {
    let (word, message) = match &view.outcome {
        Outcome::Running => ("Running".to_string(), String::new()),
        Outcome::Succeeded { message } => ("Succeeded".to_string(), message.clone()),
        Outcome::Failed { reason, message } => (reason.clone(), message.clone()),
    };
    let mut line = format!(
        "PipelineRun {}/{} attempt {} {word}",
        view.namespace, view.name, view.attempt
    );
    if !message.is_empty() {
        line.push_str(": ");
        line.push_str(&message);
    }
    line
}

fn duration_cell(d: Option<Duration>) -> String {
    d.map(format_go_duration_secs).unwrap_or_else(|| "-".into())
}

/// The whole view, for a terminal: a header, one row per task, the progress line, and the final
/// line once the run is done.
pub fn render_screen(view: &FollowView) -> String {
    let state = match &view.outcome {
        Outcome::Running => "Running".to_string(),
        Outcome::Succeeded { .. } => "Succeeded".to_string(),
        Outcome::Failed { reason, .. } => reason.clone(),
    };
    let mut out = format!(
        "PipelineRun {}/{}   attempt {}   {state}\n",
        view.namespace, view.name, view.attempt
    );
    let mut rows = vec![vec![
        "TASK".to_string(),
        "STATE".to_string(),
        "DURATION".to_string(),
        "RUN".to_string(),
    ]];
    for t in &view.tasks {
        let name = if t.finally {
            format!("{} (finally)", t.name)
        } else {
            t.name.clone()
        };
        let runs = if t.runs.is_empty() {
            "-".to_string()
        } else {
            t.runs.join(",")
        };
        rows.push(vec![name, t.state.label(), duration_cell(t.duration), runs]);
    }
    out.push_str(&table(&rows, "  "));
    out.push_str(&view.progress_line());
    out.push('\n');
    if view.outcome != Outcome::Running {
        out.push_str(&final_line(view));
        out.push('\n');
    }
    out
}

/// ANSI escapes that replace the `previous_lines` lines printed last with `screen`: cursor up,
/// clear to the end of the screen, then the new text.
pub fn redraw(previous_lines: usize, screen: &str) -> String {
    let mut out = String::new();
    if previous_lines > 0 {
        out.push_str(&format!("\x1b[{previous_lines}A\r"));
    }
    out.push_str("\x1b[J");
    out.push_str(screen);
    out
}

/// For output that is not a terminal: one line per task whose state changed since `previous`
/// (every task on the first snapshot), then the progress line when the count of done tasks changed.
/// Durations alone are not changes.
pub fn changes(previous: Option<&FollowView>, next: &FollowView) -> Vec<String> {
    let mut lines = Vec::new();
    for t in &next.tasks {
        let before = previous.and_then(|p| p.tasks.iter().find(|o| o.name == t.name));
        if before.map(|b| &b.state) == Some(&t.state) {
            continue;
        }
        let mut line = format!("{}: {}", t.name, t.state.label());
        if t.state.is_done() && t.duration.is_some() {
            line.push_str(&format!(" in {}", duration_cell(t.duration)));
        }
        lines.push(line);
    }
    let progress_changed = match previous {
        None => true,
        Some(p) => p.progress() != next.progress(),
    };
    if progress_changed {
        lines.push(next.progress_line());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use tekton_retry_test_support::dag_failed::{fixture as load, running};

    fn at(s: &str) -> DateTime<Utc> {
        parse_time(s).expect("time")
    }

    fn failed() -> (Value, Vec<Value>) {
        (
            load("01-failed-pipelinerun-demo-run.json"),
            vec![
                load("01-failed-taskrun-demo-run-a.json"),
                load("01-failed-taskrun-demo-run-b.json"),
                load("01-failed-taskrun-demo-run-report.json"),
            ],
        )
    }

    fn final_() -> (Value, Vec<Value>) {
        (
            load("06-final-pipelinerun-demo-run.json"),
            ["a", "b", "c", "report"]
                .iter()
                .map(|t| load(&format!("06-final-taskrun-demo-run-{t}.json")))
                .collect(),
        )
    }

    /// The run just after the reset of attempt 2 (fixture 01 with the status reset
    /// applied, as in 04-reset-response) and the new `demo-run-b` running: b's 06-final TaskRun with
    /// its condition back to Running and no completionTime.
    fn mid_attempt() -> (Value, Vec<Value>) {
        let (mut run, trs) = failed();
        let status = run["status"].as_object_mut().expect("status");
        status.remove("completionTime");
        status.remove("finallyStartTime");
        status.remove("skippedTasks");
        status.insert(
            "conditions".into(),
            json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running",
                    "message": "Tasks Completed: 1 (Failed: 0, Cancelled 0), Incomplete: 3, Skipped: 0"}]),
        );
        status.insert(
            "childReferences".into(),
            json!([
                {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "demo-run-a", "pipelineTaskName": "a"},
                {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "demo-run-b", "pipelineTaskName": "b"},
            ]),
        );
        run["metadata"]["annotations"][annotations::ATTEMPT] = json!("2");
        let b = running(load("06-final-taskrun-demo-run-b.json"));
        (run, vec![trs[0].clone(), b])
    }

    /// The view of a run and its TaskRuns at `time`.
    fn view_at((run, trs): (Value, Vec<Value>), time: &str) -> FollowView {
        view(&run, &trs, at(time))
    }

    /// Each task's name, state and duration.
    fn rows(v: &FollowView) -> Vec<(&str, TaskState, Option<u64>)> {
        v.tasks
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.state.clone(),
                    t.duration.map(|d| d.as_secs()),
                )
            })
            .collect()
    }

    /// Each task's name and state.
    fn states(v: &FollowView) -> Vec<(&str, TaskState)> {
        rows(v)
            .into_iter()
            .map(|(name, state, _)| (name, state))
            .collect()
    }

    #[test]
    fn failed_fixture() {
        let v = view_at(failed(), "2026-11-26T19:30:00Z");
        assert_eq!(
            rows(&v),
            [
                ("a", TaskState::Succeeded, Some(3)),
                ("b", TaskState::Failed("StepFailed".into()), Some(3)),
                (
                    "c",
                    TaskState::Skipped("PipelineRun was stopping".into()),
                    None
                ),
                ("report", TaskState::Succeeded, Some(3)),
            ]
        );
        assert!(v.tasks[3].finally && !v.tasks[0].finally);
        assert_eq!(v.progress_line(), "4/4 tasks done");
        assert_eq!(v.attempt, 1);
        assert_eq!(
            v.outcome,
            Outcome::Failed {
                reason: "Failed".into(),
                message: "Tasks Completed: 3 (Failed: 1, Cancelled 0), Skipped: 1".into()
            }
        );
        assert!(!succeeded_outcome(&v));
    }

    #[test]
    fn final_fixture_renders_the_screen() {
        let (mut run, trs) = final_();
        run["metadata"]["annotations"][annotations::ATTEMPT] = json!("2");
        let v = view(&run, &trs, at("2026-11-26T19:30:00Z"));
        assert!(v.tasks.iter().all(|t| t.state == TaskState::Succeeded));
        assert!(succeeded_outcome(&v));
        assert_eq!(
            render_screen(&v),
            "PipelineRun dag-failed/demo-run   attempt 2   Succeeded\n\
             \x20 TASK               STATE       DURATION   RUN\n\
             \x20 a                  Succeeded   3s         demo-run-a\n\
             \x20 b                  Succeeded   3s         demo-run-b\n\
             \x20 c                  Succeeded   3s         demo-run-c\n\
             \x20 report (finally)   Succeeded   3s         demo-run-report\n\
             4/4 tasks done\n\
             PipelineRun dag-failed/demo-run attempt 2 Succeeded: Tasks Completed: 4 (Failed: 0, Cancelled 0), Skipped: 0\n"
        );
    }

    #[test]
    fn running_task_duration_counts_to_now() {
        let v = view_at(mid_attempt(), "2026-11-26T19:28:06Z");
        assert_eq!(
            states(&v),
            [
                ("a", TaskState::Succeeded),
                ("b", TaskState::Running),
                ("c", TaskState::Waiting),
                ("report", TaskState::Waiting),
            ]
        );
        // b started 19:28:01 (06-final-taskrun-demo-run-b.json).
        assert_eq!(v.tasks[1].duration, Some(Duration::from_secs(5)));
        assert_eq!(v.progress_line(), "1/4 tasks done");
        assert_eq!(v.outcome, Outcome::Running);
        assert!(!render_screen(&v).contains("attempt 2 Running"));
    }

    #[test]
    fn referenced_run_missing_from_list_is_pending_and_label_fallback_works() {
        let (mut run, mut trs) = mid_attempt();
        // childReferences name b, the list does not have it yet.
        trs.truncate(1);
        let v = view(&run, &trs, at("2026-11-26T19:28:06Z"));
        assert_eq!(v.tasks[1].state, TaskState::Pending);
        // The list has c (labelled) before childReferences names it: found by label.
        let mut c = load("06-final-taskrun-demo-run-c.json");
        c["status"] = json!({});
        trs.push(c);
        run["status"]["childReferences"]
            .as_array_mut()
            .expect("refs")
            .truncate(1);
        let v = view(&run, &trs, at("2026-11-26T19:28:06Z"));
        assert_eq!(v.tasks[2].runs, vec!["demo-run-c".to_string()]);
        assert_eq!(v.tasks[2].state, TaskState::Pending);
        assert_eq!(v.tasks[1].state, TaskState::Waiting);
    }

    #[test]
    fn stale_done_state_is_not_the_end_of_the_attempt() {
        // Attempt 2 started at 19:27:50Z (06-final's last-retry annotation).
        let (mut failed_run, trs) = failed();
        failed_run["metadata"]["annotations"][annotations::ATTEMPT] = json!("2");
        let stale = view(&failed_run, &trs, at("2026-11-26T19:28:00Z"));
        assert!(!attempt_finished(&stale, 2, Some("2026-11-26T19:27:50Z")));
        let (mut run, trs) = final_();
        let fin = view(&run, &trs, at("2026-11-26T19:30:00Z"));
        // Not annotated with attempt 2: a different attempt.
        assert!(!attempt_finished(&fin, 2, Some("2026-11-26T19:27:50Z")));
        run["metadata"]["annotations"][annotations::ATTEMPT] = json!("2");
        let fin = view(&run, &trs, at("2026-11-26T19:30:00Z"));
        assert!(attempt_finished(&fin, 2, Some("2026-11-26T19:27:50Z")));
        let (run, trs) = mid_attempt();
        let mid = view(&run, &trs, at("2026-11-26T19:28:06Z"));
        assert!(!attempt_finished(&mid, 2, Some("2026-11-26T19:27:50Z")));
        // The follower shows the stale state as running, without a final line.
        let (shown, finished) = for_attempt(stale, 2, Some("2026-11-26T19:27:50Z"));
        assert!(!finished);
        assert_eq!(shown.outcome, Outcome::Running);
        assert!(render_screen(&shown).ends_with("4/4 tasks done\n"));
        let (shown, finished) = for_attempt(fin, 2, Some("2026-11-26T19:27:50Z"));
        assert!(finished && succeeded_outcome(&shown));
    }

    #[test]
    fn a_later_attempt_supersedes_the_followed_one() {
        let (mut run, trs) = final_();
        run["metadata"]["annotations"][annotations::ATTEMPT] = json!("3");
        let v = view(&run, &trs, at("2026-11-26T19:30:00Z"));
        assert!(superseded(&v, 2));
        assert!(!superseded(&v, 3));
        assert!(!attempt_finished(&v, 2, Some("2026-11-26T19:27:50Z")));
    }

    #[test]
    fn plain_output_prints_changes_only() {
        let (run, trs) = mid_attempt();
        let first = view(&run, &trs, at("2026-11-26T19:28:02Z"));
        assert_eq!(
            changes(None, &first),
            vec![
                "a: Succeeded in 3s",
                "b: Running",
                "c: Waiting",
                "report: Waiting",
                "1/4 tasks done"
            ]
        );
        // Same snapshot later: only b's duration grew, nothing to print.
        let later = view(&run, &trs, at("2026-11-26T19:28:03Z"));
        assert!(changes(Some(&first), &later).is_empty());
        let (mut run, trs) = final_();
        run["metadata"]["annotations"][annotations::ATTEMPT] = json!("2");
        let end = view(&run, &trs, at("2026-11-26T19:30:00Z"));
        assert_eq!(
            changes(Some(&later), &end),
            vec![
                "b: Succeeded in 3s",
                "c: Succeeded in 3s",
                "report: Succeeded in 3s",
                "4/4 tasks done"
            ]
        );
    }

    #[test]
    fn matrix_and_cancel_states_combine() {
        assert_eq!(
            combine(&[TaskState::Succeeded, TaskState::Running]),
            TaskState::Running
        );
        assert_eq!(
            combine(&[TaskState::Succeeded, TaskState::Cancelled]),
            TaskState::Cancelled
        );
        assert_eq!(combine(&[TaskState::Succeeded]), TaskState::Succeeded);
        let cancelled = json!({"status": {"conditions": [
            {"type": "Succeeded", "status": "False", "reason": "TaskRunCancelled"}]}});
        assert_eq!(taskrun_state(&cancelled), TaskState::Cancelled);
        let timeout = json!({"status": {"conditions": [
            {"type": "Succeeded", "status": "False", "reason": "TaskRunTimeout"}]}});
        assert_eq!(taskrun_state(&timeout), TaskState::TimedOut);
    }

    #[test]
    fn redraw_moves_up_and_clears() {
        assert_eq!(redraw(0, "x\n"), "\x1b[Jx\n");
        assert_eq!(redraw(3, "y\n"), "\x1b[3A\r\x1b[Jy\n");
    }
}
