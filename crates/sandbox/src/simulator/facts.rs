//! The resolved state of one PipelineRun reconcile and the questions Tekton asks about it
//! (`pkg/reconciler/pipelinerun/resources/pipelinerunstate.go` `PipelineRunFacts` and
//! `pipelinerunresolution.go` `ResolvedPipelineTask`), over JSON objects.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::rules::{self, skip, tr_reason};
use super::util::{self, array, get, get_str, str_or_empty};

/// One pipeline task with the TaskRuns found for it (`ResolvedPipelineTask`).
#[derive(Debug, Clone)]
pub struct Rpt {
    /// The pipeline task after parameter substitution.
    pub task: Value,
    /// The pipeline task's name.
    pub name: String,
    /// Declared under `finally`.
    pub is_final: bool,
    /// The TaskRun names it uses (from `childReferences`, else deterministic new names).
    pub run_names: Vec<String>,
    /// The TaskRuns that exist under those names (lister lookups by name).
    pub runs: Vec<Value>,
    /// DAG parents: `runAfter` plus tasks whose results it references (`PipelineTaskList.Deps`).
    pub deps: Vec<String>,
}

impl Rpt {
    /// `isScheduled`: at least one TaskRun exists.
    pub fn is_scheduled(&self) -> bool {
        !self.runs.is_empty()
    }

    /// `isSuccessful`: every TaskRun succeeded (a matrix with missing combinations counts only the
    /// existing ones — fixture `matrix`).
    pub fn is_successful(&self) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(util::is_successful)
    }

    /// `isFailure`: some TaskRun failed and all are done.
    pub fn is_failure(&self) -> bool {
        !self.runs.is_empty()
            && self.runs.iter().any(util::is_failure)
            && self.runs.iter().all(util::is_done)
    }

    fn cancelled_runs(&self, by_timeout: bool) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(util::is_done) && self.runs.iter().any(|tr| {
            matches!(util::succeeded_parts(tr), Some(("False", r, _)) if r == tr_reason::CANCELLED)
                && (!by_timeout
                    || str_or_empty(tr, &["spec", "statusMessage"])
                        == rules::MSG_CANCELLED_BY_PIPELINE_TIMEOUT)
        })
    }

    /// `isCancelled`.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled_runs(false)
    }

    /// `isCancelledForTimeOut`: cancelled with the pipeline-timeout status message.
    pub fn is_cancelled_for_timeout(&self) -> bool {
        self.cancelled_runs(true)
    }

    /// `IsRunning`: has TaskRuns and is neither successful nor failed.
    pub fn is_running(&self) -> bool {
        !self.runs.is_empty() && !self.is_successful() && !self.is_failure()
    }

    /// `onError: continue`.
    pub fn on_error_continue(&self) -> bool {
        get_str(&self.task, &["onError"]) == Some("continue")
    }

    /// The task's `$(tasks.<t>.results.<r>)` references (params, when, matrix, and the steps and
    /// sidecars of an embedded taskSpec: [`substitution_expressions`]).
    pub fn result_refs(&self) -> Vec<(String, String)> {
        substitution_expressions(&self.task)
    }
}

/// The timing inputs of a reconcile (`PipelineRunTimeoutsState`).
#[derive(Debug, Clone, Default)]
pub struct Timeouts {
    /// `status.startTime`.
    pub start: Option<DateTime<Utc>>,
    /// `status.finallyStartTime`.
    pub finally_start: Option<DateTime<Utc>>,
    /// `timeouts.pipeline` (None or zero = no timeout).
    pub pipeline: Option<TimeDelta>,
    /// `timeouts.tasks`.
    pub tasks: Option<TimeDelta>,
    /// `timeouts.finally`.
    pub finally: Option<TimeDelta>,
}

/// The facts of one reconcile (`PipelineRunFacts`).
pub struct Facts {
    /// Tasks, then finally tasks, in declaration order.
    pub state: Vec<Rpt>,
    /// `spec.status` of the run.
    pub spec_status: String,
    /// The reconcile clock.
    pub now: DateTime<Utc>,
    /// Timing inputs.
    pub timeouts: Timeouts,
    /// `ValidationFailedTask` / `ValidationFailedErrors`: DAG tasks not created because a result
    /// they reference does not exist, with the error (set by [`Facts::fail_validation`]).
    validation_failed: BTreeMap<usize, String>,
    cache: RefCell<HashMap<usize, Option<&'static str>>>,
}

fn elapsed_over(
    now: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    limit: Option<TimeDelta>,
) -> bool {
    match (since, limit) {
        (Some(s), Some(l)) if l > TimeDelta::zero() => now - s > l,
        _ => false,
    }
}

impl Facts {
    /// Builds the facts.
    pub fn new(state: Vec<Rpt>, spec_status: &str, now: DateTime<Utc>, timeouts: Timeouts) -> Self {
        Facts {
            state,
            spec_status: spec_status.to_string(),
            now,
            timeouts,
            validation_failed: BTreeMap::new(),
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// `CheckMissingResultReferences` (pipelinerunresolution.go) for a DAG candidate: the error
    /// when a result it references does not exist — the producer failed (e.g. under `onError:
    /// continue`) or succeeded without writing it.
    pub fn missing_result_error(&self, i: usize) -> Option<String> {
        let (task, result) = self.missing_result(i)?;
        let producer = &self.state[self.index(&task)?];
        Some(if producer.is_successful() {
            format!(
                "task {task:?} completed successfully but did not emit the result {result:?}, which is referenced by task {:?}",
                self.state[i].name
            )
        } else {
            format!("Invalid task result reference: Could not find result with name {result} for pipeline task {task}")
        })
    }

    /// Puts DAG task `i` on the validation-failed list (pipelinerun.go `runNextSchedulableTask`):
    /// not created, done, and the run stops and ends `PipelineValidationFailed`.
    pub fn fail_validation(&mut self, i: usize, error: String) {
        self.validation_failed.insert(i, error);
        self.reset_cache();
    }

    /// `isValidationFailed`.
    pub fn is_validation_failed(&self, i: usize) -> bool {
        self.validation_failed.contains_key(&i)
    }

    /// `ResetSkippedCache` – needed after TaskRuns were created in this reconcile.
    pub fn reset_cache(&self) {
        self.cache.borrow_mut().clear();
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.state.iter().position(|t| t.name == name)
    }

    /// `IsStopping`: a DAG task failed or failed validation (without `onError: continue`).
    pub fn is_stopping(&self) -> bool {
        self.state.iter().enumerate().any(|(i, t)| {
            !t.is_final
                && (t.is_failure() || self.is_validation_failed(i))
                && !t.on_error_continue()
        })
    }

    /// `IsRunning`: a DAG task is running.
    pub fn is_running(&self) -> bool {
        self.state.iter().any(|t| !t.is_final && t.is_running())
    }

    fn gracefully_cancelled(&self) -> bool {
        self.spec_status == rules::PR_SPEC_CANCELLED_RUN_FINALLY
    }

    fn gracefully_stopped(&self) -> bool {
        self.spec_status == rules::PR_SPEC_STOPPED_RUN_FINALLY
    }

    /// `isDone` of a task: skipped, successful, failed or validation-failed.
    pub fn task_done(&self, i: usize) -> bool {
        let t = &self.state[i];
        self.skip(i).is_some()
            || t.is_successful()
            || t.is_failure()
            || self.is_validation_failed(i)
    }

    fn parents_done(&self, i: usize) -> bool {
        let t = &self.state[i];
        if t.is_final {
            return true;
        }
        t.deps
            .iter()
            .all(|p| self.index(p).is_none_or(|j| self.task_done(j)))
    }

    /// Results of a finished task by result name (`GetTaskRunsResults`: successful or failed runs).
    pub fn task_results(&self, task: &str) -> Option<BTreeMap<String, Value>> {
        let t = &self.state[self.index(task)?];
        if !(t.is_successful() || t.is_failure()) || t.runs.len() != 1 {
            return None;
        }
        let mut out = BTreeMap::new();
        for r in array(&t.runs[0], &["status", "results"]) {
            if let Some(n) = get_str(r, &["name"]) {
                out.insert(
                    n.to_string(),
                    r.get("value").cloned().unwrap_or(Value::Null),
                );
            }
        }
        Some(out)
    }

    /// The value of `$(tasks.<t>.results.<r>)`, if resolvable.
    pub fn result_value(&self, task: &str, result: &str) -> Option<String> {
        match self.task_results(task)?.get(result)? {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The first `(task, result)` reference of task `i` that cannot be resolved.
    fn missing_result(&self, i: usize) -> Option<(String, String)> {
        self.state[i]
            .result_refs()
            .into_iter()
            .find(|(t, r)| self.result_value(t, r).is_none())
    }

    /// Evaluates `when` expressions (`WhenExpressions.AllowsExecution`): `in` / `notin` over the
    /// input and values, or the `cel` expression ([`tekton_retry::tekton::cel`]), each after the known
    /// task results are substituted (`ApplyTaskResults` → `WhenExpression.applyReplacements`:
    /// input, values and CEL; parameters were applied with the spec). A CEL expression that
    /// cannot be evaluated counts as false here; [`Facts::cel_error`] fails the run first.
    fn when_allows(&self, i: usize) -> bool {
        let resolve = |e: &str| -> Option<String> {
            let (t, r) = util::result_ref(e)?;
            self.result_value(t, r)
        };
        array(&self.state[i].task, &["when"]).iter().all(|w| {
            if let Some(cel) = w.get("cel").and_then(Value::as_str) {
                let expr = util::substitute(cel, &resolve);
                return tekton_retry::tekton::cel::evaluate(&expr).unwrap_or(false);
            }
            let input = util::substitute(str_or_empty(w, &["input"]), &resolve);
            let contains = array(w, &["values"])
                .iter()
                .filter_map(Value::as_str)
                .any(|v| util::substitute(v, &resolve) == input);
            match str_or_empty(w, &["operator"]) {
                "in" => contains,
                _ => !contains,
            }
        })
    }

    /// `EvaluateCEL` over every task (pipelinerun.go `reconcile`, after parameter substitution):
    /// the first `cel` expression that does not evaluate to a bool, with its error. The run then
    /// fails `CELEvaluationFailed`. Forms [`tekton_retry::tekton::cel`] does not implement fail here too,
    /// so that no test passes on a guess.
    pub fn cel_error(&self) -> Option<(String, String)> {
        let resolve = |e: &str| -> Option<String> {
            let (t, r) = util::result_ref(e)?;
            self.result_value(t, r)
        };
        self.state.iter().find_map(|t| {
            array(&t.task, &["when"]).iter().find_map(|w| {
                let cel = w.get("cel").and_then(Value::as_str)?;
                let expr = util::substitute(cel, &resolve);
                tekton_retry::tekton::cel::evaluate(&expr)
                    .err()
                    .map(|e| (expr, e.to_string()))
            })
        })
    }

    fn empty_matrix(&self, i: usize) -> bool {
        array(&self.state[i].task, &["matrix", "params"])
            .iter()
            .any(|p| matches!(p.get("value"), Some(Value::Array(a)) if a.is_empty()))
    }

    /// `Skip(facts)` for DAG tasks (`ResolvedPipelineTask.skip`), memoised like `SkipCache`.
    pub fn skip(&self, i: usize) -> Option<&'static str> {
        if let Some(v) = self.cache.borrow().get(&i) {
            return *v;
        }
        let v = self.skip_uncached(i);
        self.cache.borrow_mut().insert(i, v);
        v
    }

    fn skip_uncached(&self, i: usize) -> Option<&'static str> {
        let t = &self.state[i];
        if t.is_final || t.is_scheduled() || self.is_validation_failed(i) {
            return None;
        }
        if self.is_stopping() {
            return Some(skip::STOPPING);
        }
        if self.gracefully_cancelled() {
            return Some(skip::GRACEFULLY_CANCELLED);
        }
        if self.gracefully_stopped() {
            return Some(skip::GRACEFULLY_STOPPED);
        }
        let parents_done = self.parents_done(i);
        if parents_done && !self.when_allows(i) {
            return Some(skip::WHEN);
        }
        let parent_skipped = t.deps.iter().any(|p| {
            self.index(p)
                .and_then(|j| self.skip(j))
                .is_some_and(|r| r != skip::WHEN)
        });
        if parent_skipped {
            return Some(skip::PARENT);
        }
        if parents_done {
            if let Some((producer, _)) = self.missing_result(i) {
                let producer_when_skipped = self
                    .index(&producer)
                    .and_then(|j| self.skip(j))
                    .is_some_and(|r| r == skip::WHEN);
                if t.on_error_continue() || producer_when_skipped {
                    return Some(skip::MISSING_RESULTS);
                }
            }
            let tm = &self.timeouts;
            if let Some(r) = self.timeout_skip(tm.start, tm.tasks, skip::TASKS_TIMEOUT) {
                return Some(r);
            }
        }
        self.empty_matrix(i).then_some(skip::EMPTY_MATRIX)
    }

    /// The timeout skip reason once the pipeline's timeout, or the phase's (`timeout` since
    /// `start`, skipping with `reason`), has elapsed.
    fn timeout_skip(
        &self,
        start: Option<DateTime<Utc>>,
        timeout: Option<TimeDelta>,
        reason: &'static str,
    ) -> Option<&'static str> {
        let tm = &self.timeouts;
        if elapsed_over(self.now, tm.start, tm.pipeline) {
            Some(skip::PIPELINE_TIMEOUT)
        } else if elapsed_over(self.now, start, timeout) {
            Some(reason)
        } else {
            None
        }
    }

    /// `IsFinallySkipped` for finally tasks.
    pub fn finally_skip(&self, i: usize) -> Option<&'static str> {
        let t = &self.state[i];
        if t.is_scheduled() || !t.is_final || !self.dag_done() {
            return None;
        }
        if self.missing_result(i).is_some() {
            return Some(skip::MISSING_RESULTS);
        }
        if !self.when_allows(i) {
            return Some(skip::WHEN);
        }
        let tm = &self.timeouts;
        self.timeout_skip(tm.finally_start, tm.finally, skip::FINALLY_TIMEOUT)
            .or_else(|| self.empty_matrix(i).then_some(skip::EMPTY_MATRIX))
    }

    /// `checkDAGTasksDone`.
    pub fn dag_done(&self) -> bool {
        (0..self.state.len())
            .filter(|&i| !self.state[i].is_final)
            .all(|i| self.task_done(i))
    }

    /// `checkFinalTasksDone`.
    pub fn finals_done(&self) -> bool {
        (0..self.state.len())
            .filter(|&i| self.state[i].is_final)
            .all(|i| self.task_done(i))
    }

    fn has_finals(&self) -> bool {
        self.state.iter().any(|t| t.is_final)
    }

    /// `DAGExecutionQueue`: DAG tasks whose parents are done and that have no TaskRun yet.
    pub fn dag_queue(&self) -> Vec<usize> {
        if self.spec_status == rules::PR_SPEC_CANCELLED || self.gracefully_cancelled() {
            return Vec::new();
        }
        if self.is_stopping() || self.gracefully_stopped() {
            return Vec::new();
        }
        (0..self.state.len())
            .filter(|&i| {
                let t = &self.state[i];
                !t.is_final && !self.task_done(i) && self.parents_done(i) && t.runs.is_empty()
            })
            .collect()
    }

    /// `GetFinalTasks`: once the DAG is done, finally tasks without a TaskRun.
    pub fn final_queue(&self) -> Vec<usize> {
        if !self.dag_done() {
            return Vec::new();
        }
        (0..self.state.len())
            .filter(|&i| self.state[i].is_final && self.state[i].runs.is_empty())
            .collect()
    }

    /// `IsFinalTaskStarted`.
    pub fn final_started(&self) -> bool {
        self.dag_done() && self.state.iter().any(|t| t.is_final && t.is_scheduled())
    }

    /// `GetPipelineTaskStatus`: `tasks.<t>.status`, `tasks.<t>.reason` and the aggregate `tasks.status`.
    pub fn pipeline_task_status(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for t in self.state.iter().filter(|t| !t.is_final) {
            let s = if t.is_successful() {
                "Succeeded"
            } else if t.runs.iter().any(util::is_failure) {
                "Failed"
            } else {
                "None"
            };
            out.insert(format!("tasks.{}.status", t.name), s.to_string());
            let reason = t
                .runs
                .iter()
                .find(|r| !util::is_successful(r))
                .or(t.runs.first())
                .and_then(util::succeeded_parts)
                .map(|(_, r, _)| r.to_string())
                .unwrap_or_default();
            out.insert(format!("tasks.{}.reason", t.name), reason);
        }
        let mut aggregate = "None";
        if self.dag_done() {
            aggregate = "Succeeded";
            for (i, t) in self.state.iter().enumerate().filter(|(_, t)| !t.is_final) {
                if t.runs.iter().any(util::is_failure) {
                    aggregate = "Failed";
                    break;
                }
                if self.skip(i).is_some() {
                    aggregate = "Completed";
                }
            }
        }
        out.insert("tasks.status".into(), aggregate.to_string());
        out
    }

    /// `getPipelineTasksCount` then `GetPipelineConditionStatus`: `(status, reason, message)`.
    pub fn condition(
        &self,
        run: &str,
        spec_status: &str,
        timed_out_msg: Option<String>,
    ) -> (String, String, String) {
        if let Some(msg) = timed_out_msg {
            return ("False".into(), rules::pr_reason::TIMEOUT.into(), msg);
        }
        let (
            mut succeeded,
            mut failed,
            mut cancelled,
            mut skipped,
            mut incomplete,
            mut skipped_timeout,
        ) = (0, 0, 0, 0, 0, 0);
        let mut ignored = 0;
        let mut validation_failed = 0;
        for (i, t) in self.state.iter().enumerate() {
            let sk = self.skip(i);
            let fsk = self.finally_skip(i);
            if self.is_validation_failed(i) {
                validation_failed += 1;
            } else if t.is_successful() {
                succeeded += 1;
            } else if t.is_cancelled_for_timeout() {
                failed += 1;
            } else if t.is_cancelled() {
                cancelled += 1;
            } else if t.is_failure() {
                if t.on_error_continue() {
                    ignored += 1;
                } else {
                    failed += 1;
                }
            } else if matches!(sk, Some(skip::PIPELINE_TIMEOUT) | Some(skip::TASKS_TIMEOUT))
                || fsk == Some(skip::FINALLY_TIMEOUT)
            {
                skipped += 1;
                skipped_timeout += 1;
            } else if sk.is_some() || fsk.is_some() {
                skipped += 1;
            } else {
                incomplete += 1;
            }
        }
        let completed = succeeded + failed + cancelled + ignored;
        let total_failed = failed + ignored;
        let tasks_timed_out = elapsed_over(self.now, self.timeouts.start, self.timeouts.tasks);
        if tasks_timed_out && (!self.has_finals() || self.finals_done()) {
            let limit = self
                .timeouts
                .tasks
                .map(util::format_duration)
                .unwrap_or_default();
            return (
                "False".into(),
                rules::pr_reason::TIMEOUT.into(),
                format!(
                    "PipelineRun {run:?} failed due to tasks failed to finish within {limit:?}"
                ),
            );
        }
        if incomplete == 0 {
            let mut message = if ignored > 0 {
                format!(
                    "Tasks Completed: {completed} (Failed: {total_failed} (Ignored: {ignored}), Cancelled {cancelled}), Skipped: {skipped}"
                )
            } else {
                format!("Tasks Completed: {completed} (Failed: {total_failed}, Cancelled {cancelled}), Skipped: {skipped}")
            };
            // "…, Failed Validation: N (errors sorted by task name, joined by "; ")"
            // (pipelinerunstate.go `GetPipelineConditionStatus`).
            if validation_failed > 0 {
                let mut errors: Vec<(&str, &str)> = self
                    .validation_failed
                    .iter()
                    .map(|(i, e)| (self.state[*i].name.as_str(), e.as_str()))
                    .collect();
                errors.sort();
                let joined: Vec<&str> = errors.into_iter().map(|(_, e)| e).collect();
                message.push_str(&format!(
                    ", Failed Validation: {validation_failed} ({})",
                    joined.join("; ")
                ));
            }
            let mut status = "True";
            let mut reason = if skipped > 0 {
                rules::pr_reason::COMPLETED
            } else {
                rules::pr_reason::SUCCEEDED
            };
            if validation_failed > 0 {
                reason = rules::pr_reason::VALIDATION_FAILED;
                status = "False";
            } else if failed > 0 || skipped_timeout > 0 {
                reason = rules::pr_reason::FAILED;
                status = "False";
            } else if spec_status == rules::PR_SPEC_CANCELLED_RUN_FINALLY
                || spec_status == rules::PR_SPEC_STOPPED_RUN_FINALLY
            {
                reason = rules::pr_reason::CANCELLED;
                status = "False";
                message = format!("PipelineRun {run:?} was cancelled");
            } else if cancelled > 0 {
                reason = rules::pr_reason::CANCELLED;
                status = "False";
            }
            return (status.into(), reason.into(), message);
        }
        let reason = if tasks_timed_out && self.has_finals() && !self.finals_done() {
            rules::pr_reason::TIMEOUT_RUNNING_FINALLY
        } else if spec_status == rules::PR_SPEC_CANCELLED_RUN_FINALLY {
            rules::pr_reason::CANCELLED_RUNNING_FINALLY
        } else if spec_status == rules::PR_SPEC_STOPPED_RUN_FINALLY {
            rules::pr_reason::STOPPED_RUNNING_FINALLY
        } else if cancelled > 0 || (failed > 0 && self.finals_done()) {
            rules::pr_reason::STOPPING
        } else {
            rules::pr_reason::RUNNING
        };
        (
            "Unknown".into(),
            reason.into(),
            format!(
                "Tasks Completed: {completed} (Failed: {failed}, Cancelled {cancelled}), Incomplete: {incomplete}, Skipped: {skipped}"
            ),
        )
    }

    /// `GetChildReferences`: one entry per existing TaskRun, in task order.
    pub fn child_references(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for t in &self.state {
            for tr in &t.runs {
                let mut c = Map::new();
                c.insert("apiVersion".into(), "tekton.dev/v1".into());
                let kind = match util::kind(tr) {
                    "" => "TaskRun",
                    k => k,
                };
                c.insert("kind".into(), kind.into());
                c.insert("name".into(), util::name(tr).into());
                c.insert("pipelineTaskName".into(), t.name.clone().into());
                if let Some(w) = t.task.get("when") {
                    c.insert("whenExpressions".into(), w.clone());
                }
                if let Some(d) = t.task.get("displayName") {
                    c.insert("displayName".into(), d.clone());
                }
                out.push(Value::Object(c));
            }
        }
        out
    }

    /// `GetSkippedTasks`.
    pub fn skipped_tasks(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (i, t) in self.state.iter().enumerate() {
            if let Some(reason) = self.skip(i) {
                let mut m = Map::new();
                m.insert("name".into(), t.name.clone().into());
                m.insert("reason".into(), reason.into());
                if let Some(w) = t.task.get("when") {
                    m.insert("whenExpressions".into(), w.clone());
                }
                out.push(Value::Object(m));
            }
            if let Some(reason) = self.finally_skip(i) {
                let mut m = Map::new();
                m.insert("name".into(), t.name.clone().into());
                m.insert("reason".into(), reason.into());
                if reason == skip::WHEN {
                    if let Some(w) = t.task.get("when") {
                        m.insert("whenExpressions".into(), w.clone());
                    }
                }
                out.push(Value::Object(m));
            }
        }
        out
    }

    /// `ApplyTaskResultsToPipelineResults`: results whose references all resolve.
    pub fn pipeline_results(&self, spec: &Value) -> Vec<Value> {
        let statuses = self.pipeline_task_status();
        let mut out = Vec::new();
        for r in array(spec, &["results"]) {
            let Some(name) = get_str(r, &["name"]) else {
                continue;
            };
            let Some(value) = r.get("value") else {
                continue;
            };
            let mut refs = Vec::new();
            util::references(value, &mut refs);
            let resolve = |e: &str| -> Option<String> {
                if let Some((t, res)) = util::result_ref(e) {
                    return self.result_value(t, res);
                }
                statuses.get(e).cloned()
            };
            if refs.iter().any(|e| resolve(e).is_none()) {
                continue;
            }
            let mut v = value.clone();
            util::substitute_value(&mut v, &resolve);
            let mut m = Map::new();
            m.insert("name".into(), name.into());
            m.insert("value".into(), v);
            out.push(Value::Object(m));
        }
        out
    }

    /// Names of running tasks (for timeouts).
    pub fn running_task_names(&self, finals: bool) -> Vec<String> {
        self.state
            .iter()
            .filter(|t| t.is_final == finals && t.is_running())
            .map(|t| t.name.clone())
            .collect()
    }

    /// Earliest creation time of the found TaskRuns (`AdjustStartTime`).
    pub fn earliest_child_creation(&self) -> Option<DateTime<Utc>> {
        self.state
            .iter()
            .flat_map(|t| t.runs.iter())
            .filter_map(|tr| util::time_at(tr, &["metadata", "creationTimestamp"]))
            .min()
    }

    /// Dependency names of a pipeline task (`PipelineTask.Deps`: `runAfter` and result references).
    pub fn deps_of(task: &Value) -> Vec<String> {
        let mut deps: Vec<String> = array(task, &["runAfter"])
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        for (t, _) in substitution_expressions(task) {
            if !deps.contains(&t) {
                deps.push(t);
            }
        }
        deps
    }
}

/// Every `$(tasks.<t>.results.<r>)` a pipeline task uses, as `(t, r)`: in its params, `when`,
/// matrix, and the steps and sidecars of an embedded `taskSpec`
/// (pipeline_validation.go `PipelineTask.GetVarSubstitutionExpressions`, resultref.go
/// `PipelineTaskResultRefs`; confirmed on a real cluster: a step script referencing
/// `$(tasks.a.results.x)` makes the task wait for `a`).
pub fn substitution_expressions(task: &Value) -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    for key in ["params", "when", "matrix"] {
        if let Some(v) = get(task, &[key]) {
            util::references(v, &mut exprs);
        }
    }
    for key in ["steps", "sidecars"] {
        if let Some(v) = get(task, &["taskSpec", key]) {
            util::references(v, &mut exprs);
        }
    }
    exprs
        .iter()
        .filter_map(|e| util::result_ref(e))
        .map(|(t, r)| (t.to_string(), r.to_string()))
        .collect()
}
