//! The state of every pipeline task: its child runs (found the way Tekton finds them) and the outcome
//! Tekton would read from them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::tekton::child::PIPELINE_RUN_LABEL;
use crate::tekton::{ChildOutcome, ChildView, PipelineRunView, PipelineSpecView, PipelineTask};

/// What happened to a pipeline task in the attempt that just ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    /// No run exists (skipped, never scheduled, or its run is missing).
    NotRun,
    /// A run is neither done nor cancelled.
    Running,
    Succeeded,
    /// Failed (or timed out) under `onError: continue`: Tekton counted it as an ignored failure and
    /// scheduled its dependents (pipelinerunstate.go `getPipelineTasksCount` → `IgnoredFailed`,
    /// `IsStopping` skips tasks with `OnError == continue`).
    IgnoredFailure(String),
    Failed(String),
    Cancelled(String),
    TimedOut(String),
}

impl TaskOutcome {
    /// Failed, cancelled or timed out (and not ignored): the task must run again.
    pub fn needs_rerun(&self) -> bool {
        matches!(
            self,
            TaskOutcome::Failed(_) | TaskOutcome::Cancelled(_) | TaskOutcome::TimedOut(_)
        )
    }

    /// The reason reported as `previousReason`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            TaskOutcome::NotRun | TaskOutcome::Running => None,
            TaskOutcome::Succeeded => Some("Succeeded"),
            TaskOutcome::IgnoredFailure(r)
            | TaskOutcome::Failed(r)
            | TaskOutcome::Cancelled(r)
            | TaskOutcome::TimedOut(r) => Some(r),
        }
    }
}

/// One pipeline task with its runs.
#[derive(Clone, Debug)]
pub struct TaskState<'a> {
    pub task: PipelineTask<'a>,
    /// Existing child runs, in `childReferences` order, then unreferenced ones by name.
    pub runs: Vec<ChildView<'a>>,
    /// Names in `status.childReferences` with no existing child object.
    pub missing: Vec<&'a str>,
    pub outcome: TaskOutcome,
    /// Reason from `status.skippedTasks`.
    pub skip_reason: Option<&'a str>,
}

/// All pipeline tasks in pipeline order (DAG, then finally), plus child runs of unknown tasks.
#[derive(Clone, Debug)]
pub struct RunState<'a> {
    pub tasks: Vec<TaskState<'a>>,
    /// Child runs whose pipeline task is not in the spec (Tekton ignores them).
    pub strays: Vec<ChildView<'a>>,
}

impl<'a> RunState<'a> {
    /// `cancel_counts`: the run was cancelled, so a child asked to cancel counts as cancelled even
    /// before it is done.
    pub fn build(
        run: &PipelineRunView<'a>,
        spec: &PipelineSpecView<'a>,
        children: &'a [Value],
        cancel_counts: bool,
    ) -> Self {
        let run_name = run.obj.name();
        // The executor lists children by label; a child labelled for another run is not ours.
        let refs = run.child_references();
        let ref_kind: BTreeMap<&str, &str> = refs
            .iter()
            .filter_map(|r| Some((r.name, r.kind?)))
            .collect();
        let mut by_name: BTreeMap<&str, ChildView<'a>> = children
            .iter()
            .filter_map(|j| {
                // Every object the API lists has a name; one without cannot be deleted by name
                // (an empty name would address the collection), so it is not a child here.
                let name = j["metadata"]["name"].as_str().filter(|n| !n.is_empty())?;
                ChildView::with_fallback(j, ref_kind.get(name).copied())
            })
            .filter(|c| {
                c.obj
                    .label(PIPELINE_RUN_LABEL)
                    .is_none_or(|l| l == run_name)
            })
            .map(|c| (c.name(), c))
            .collect();
        let mut tasks: Vec<TaskState<'a>> = spec
            .all()
            .map(|t| TaskState {
                task: t.clone(),
                runs: Vec::new(),
                missing: Vec::new(),
                outcome: TaskOutcome::NotRun,
                skip_reason: None,
            })
            .collect();
        let index: BTreeMap<&'a str, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.task.name, i))
            .collect();
        // Tekton finds a task's runs by the names in childReferences (resources
        // pipelinerunresolution.go `GetTaskRunName`, `GetNamesOfTaskRuns`) …
        for r in refs {
            let Some(&i) = index.get(r.pipeline_task_name) else {
                continue;
            };
            match by_name.remove(r.name) {
                Some(c) => tasks[i].runs.push(c),
                None => tasks[i].missing.push(r.name),
            }
        }
        // … and adopts a labelled run whose reference was dropped (pipelinerun.go
        // `updatePipelineRunStatusFromChildRefs`; fixture childrefs v1: the reference was back
        // within one reconcile), so unreferenced children count too.
        let mut strays = Vec::new();
        for c in by_name.into_values() {
            match c.pipeline_task_label().and_then(|t| index.get(t)) {
                Some(&i) => tasks[i].runs.push(c),
                None => strays.push(c),
            }
        }
        let skipped: BTreeMap<&str, &str> = run
            .skipped_tasks()
            .into_iter()
            .map(|s| (s.name, s.reason))
            .collect();
        for t in &mut tasks {
            t.skip_reason = skipped.get(t.task.name).copied();
            t.outcome = aggregate(&t.task, &t.runs, cancel_counts);
        }
        RunState { tasks, strays }
    }

    /// Names of every child run that is still going (not done, not asked to cancel).
    pub fn running_children(&self, cancel_counts: bool) -> BTreeSet<&'a str> {
        self.tasks
            .iter()
            .flat_map(|t| t.runs.iter())
            .chain(self.strays.iter())
            .filter(|c| !c.outcome(cancel_counts).is_settled())
            .map(|c| c.name())
            .collect()
    }
}

/// A task's outcome from all its runs, as Tekton aggregates matrix runs: succeeded only when all
/// succeeded; failed when any failed and all are done; the reason is the first unsuccessful run's
/// (pipelinerunresolution.go `isSuccessful`, `isFailure`, `getReason`).
fn aggregate(task: &PipelineTask<'_>, runs: &[ChildView<'_>], cancel_counts: bool) -> TaskOutcome {
    if runs.is_empty() {
        return TaskOutcome::NotRun;
    }
    let outcomes: Vec<ChildOutcome> = runs.iter().map(|c| c.outcome(cancel_counts)).collect();
    if outcomes.contains(&ChildOutcome::Running) {
        return TaskOutcome::Running;
    }
    match outcomes.into_iter().find(|o| *o != ChildOutcome::Succeeded) {
        None => TaskOutcome::Succeeded,
        Some(ChildOutcome::Cancelled(r)) => TaskOutcome::Cancelled(r),
        Some(ChildOutcome::Failed(r) | ChildOutcome::TimedOut(r)) if task.on_error_continue() => {
            TaskOutcome::IgnoredFailure(r)
        }
        Some(ChildOutcome::TimedOut(r)) => TaskOutcome::TimedOut(r),
        Some(ChildOutcome::Failed(r)) => TaskOutcome::Failed(r),
        Some(ChildOutcome::Running | ChildOutcome::Succeeded) => TaskOutcome::Running,
    }
}
