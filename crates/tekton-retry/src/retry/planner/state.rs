//! The state of every pipeline task: its child runs (found the way Tekton finds them) and the outcome
//! Tekton would read from them.
//!
//! Built once per plan; every later step reads it by task index, so each child object is looked up
//! only here.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use crate::retry::record::controlled_by;
use crate::tekton::child::PIPELINE_RUN_LABEL;
use crate::tekton::{ChildOutcome, ChildView, PipelineRunView, PipelineSpecView, PipelineTask};

/// What happened to a pipeline task in the attempt that just ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOutcome<'a> {
    /// No run exists (skipped, never scheduled, or its run is missing).
    NotRun,
    /// A run is neither done nor cancelled.
    Running,
    Succeeded,
    /// Failed (or timed out) under `onError: continue`: Tekton counted it as an ignored failure and
    /// scheduled its dependents (pipelinerunstate.go `getPipelineTasksCount` → `IgnoredFailed`,
    /// `IsStopping` skips tasks with `OnError == continue`).
    IgnoredFailure(&'a str),
    Failed(&'a str),
    Cancelled(&'a str),
    TimedOut(&'a str),
}

impl<'a> TaskOutcome<'a> {
    /// Failed, cancelled or timed out (and not ignored): the task must run again.
    pub fn needs_rerun(&self) -> bool {
        matches!(
            self,
            TaskOutcome::Failed(_) | TaskOutcome::Cancelled(_) | TaskOutcome::TimedOut(_)
        )
    }

    /// The reason reported as `previousReason`.
    pub fn reason(&self) -> Option<&'a str> {
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
    pub outcome: TaskOutcome<'a>,
    /// Reason from `status.skippedTasks`.
    pub skip_reason: Option<&'a str>,
}

/// All pipeline tasks in pipeline order (DAG, then finally).
#[derive(Clone, Debug)]
pub struct RunState<'a> {
    pub tasks: Vec<TaskState<'a>>,
    /// Task name → position in `tasks`.
    pub index: HashMap<&'a str, usize>,
    /// Names of the child runs still going (not done, not asked to cancel), including runs whose
    /// pipeline task is not in the spec (Tekton ignores those, but they are not settled either).
    running: Vec<&'a str>,
}

impl<'a> RunState<'a> {
    /// `cancel_counts`: the run was cancelled, so a child asked to cancel counts as cancelled even
    /// before it is done.
    pub fn build(
        run: &PipelineRunView<'a>,
        spec: PipelineSpecView<'a>,
        children: &'a [Value],
        cancel_counts: bool,
    ) -> Self {
        let run_name = run.obj.name();
        let run_uid = run.obj.uid();
        let refs = run.child_references();
        // The kind of a listed child without `kind` comes from its reference (built only when
        // some child lacks one).
        let mut ref_kind: Option<HashMap<&str, &str>> = None;
        let mut by_name: HashMap<&'a str, ChildView<'a>> = HashMap::with_capacity(children.len());
        for j in children {
            let Some(c) = ChildView::with_kind_lookup(j, |name| {
                ref_kind
                    .get_or_insert_with(|| {
                        refs.iter()
                            .filter_map(|r| Some((r.name, r.kind?)))
                            .collect()
                    })
                    .get(name)
                    .copied()
            }) else {
                continue;
            };
            // Every object the API lists has a name; one without cannot be deleted by name
            // (an empty name would address the collection), so it is not a child here. A child
            // labelled for another run is not ours, and neither is one the run does not control:
            // Tekton counts only children whose first ownerReference is the run
            // (pipelinerun.go `filterTaskRunsForPipelineRunStatus`), and labels can be forged.
            if !c.name.is_empty()
                && c.label(PIPELINE_RUN_LABEL).is_none_or(|l| l == run_name)
                && controlled_by(j, run_uid)
            {
                by_name.insert(c.name, c);
            }
        }
        let mut tasks: Vec<TaskState<'a>> = spec
            .into_all()
            .map(|task| TaskState {
                task,
                runs: Vec::new(),
                missing: Vec::new(),
                outcome: TaskOutcome::NotRun,
                skip_reason: None,
            })
            .collect();
        let mut index: HashMap<&'a str, usize> = HashMap::with_capacity(tasks.len());
        for (i, t) in tasks.iter().enumerate() {
            // Names are unique once Tekton validated the pipeline; otherwise the last one wins.
            index.insert(t.task.name, i);
        }
        // Tekton finds a task's runs by the names in childReferences (resources
        // pipelinerunresolution.go `GetTaskRunName`, `GetNamesOfTaskRuns`) …
        for r in &refs {
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
        // within one reconcile), so unreferenced children count too, in name order.
        let mut unreferenced: Vec<ChildView<'a>> = by_name.into_values().collect();
        unreferenced.sort_unstable_by_key(|c| c.name);
        // Child runs whose pipeline task is not in the spec.
        let mut strays = Vec::new();
        for c in unreferenced {
            match c.pipeline_task_label().and_then(|t| index.get(t)) {
                Some(&i) => tasks[i].runs.push(c),
                None => strays.push(c),
            }
        }
        let skipped: HashMap<&str, &str> = run
            .skipped_tasks()
            .into_iter()
            .map(|s| (s.name, s.reason))
            .collect();
        let mut running = Vec::new();
        let mut outcomes = Vec::new();
        for t in &mut tasks {
            t.skip_reason = skipped.get(t.task.name).copied();
            outcomes.clear();
            outcomes.extend(t.runs.iter().map(|c| c.outcome(cancel_counts)));
            running.extend(
                t.runs
                    .iter()
                    .zip(&outcomes)
                    .filter(|(_, o)| !o.is_settled())
                    .map(|(c, _)| c.name),
            );
            t.outcome = aggregate(&t.task, &outcomes);
        }
        running.extend(
            strays
                .iter()
                .filter(|c| !c.outcome(cancel_counts).is_settled())
                .map(|c| c.name),
        );
        RunState {
            tasks,
            index,
            running,
        }
    }

    /// Names of every child run that is still going (not done, not asked to cancel).
    pub fn running_children(&self) -> BTreeSet<&'a str> {
        self.running.iter().copied().collect()
    }
}

/// A task's outcome from all its runs, as Tekton aggregates matrix runs: succeeded only when all
/// succeeded; failed when any failed and all are done; the reason is the first unsuccessful run's
/// (pipelinerunresolution.go `isSuccessful`, `isFailure`, `getReason`).
fn aggregate<'a>(task: &PipelineTask<'_>, outcomes: &[ChildOutcome<'a>]) -> TaskOutcome<'a> {
    if outcomes.is_empty() {
        return TaskOutcome::NotRun;
    }
    if outcomes.contains(&ChildOutcome::Running) {
        return TaskOutcome::Running;
    }
    match outcomes
        .iter()
        .copied()
        .find(|o| *o != ChildOutcome::Succeeded)
    {
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
