//! The re-run set: which pipeline tasks run again and which runs are kept.

use std::collections::{HashSet, VecDeque};

use crate::api::FinallyPolicy;

use super::state::{RunState, TaskOutcome};

/// The tasks a retry runs again, by position in [`RunState::tasks`].
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Tasks (DAG and finally) whose runs are deleted, so Tekton creates them again.
    rerun: Vec<bool>,
    /// Tasks with no run: Tekton schedules (or skips) them again by itself.
    not_run: Vec<bool>,
    /// Every task the rules of [`select`] pick, with a run or not (a task whose run is missing is
    /// safe to run again only when selected).
    selected: Vec<bool>,
}

impl Selection {
    /// Task `i`'s runs are deleted and created again.
    pub fn is_rerun(&self, i: usize) -> bool {
        self.rerun.get(i).copied().unwrap_or(false)
    }

    /// Task `i` has no run; Tekton schedules or skips it again.
    pub fn is_not_run(&self, i: usize) -> bool {
        self.not_run.get(i).copied().unwrap_or(false)
    }

    /// Task `i` runs again in either way.
    pub fn runs_again(&self, i: usize) -> bool {
        self.is_rerun(i) || self.is_not_run(i)
    }

    /// The rules selected task `i`, whether it has a run or not.
    pub fn is_selected(&self, i: usize) -> bool {
        self.selected.get(i).copied().unwrap_or(false)
    }
}

/// Computes the re-run set:
/// - DAG tasks that failed, were cancelled or timed out (not ignored by `onError: continue`),
///   and `restartTasks`;
/// - every DAG task that depends on one of those, directly or not (Tekton's edges: `runAfter` and
///   result references in params, matrix and `when`, pipeline_types.go `Deps`): its inputs may
///   change, so a kept run of it would be stale;
/// - finally tasks: all of them with `Rerun` (fixture dag-failed: `report` deleted and re-run);
///   with `Keep` those in `restartTasks` and those whose run failed, was cancelled or timed out:
///   only succeeded finally runs are kept (fixture keep-finally: a kept finally run is not re-run;
///   Tekton counts a kept failed finally run into the new outcome, pipelinerunstate.go
///   `getPipelineTasksCount`, so the run would end `Failed` after the DAG succeeded).
///
/// A matrix task is one entry: all its runs go (fixture matrix: deleting only the failed
/// combination leaves it never re-created; matrix-full: deleting all three re-creates all three).
pub fn select(state: &RunState<'_>, restart: &[String], finally: FinallyPolicy) -> Selection {
    let n = state.tasks.len();
    let restart: HashSet<&str> = restart.iter().map(String::as_str).collect();
    // Edges by position, as one flat list: the DAG tasks depending on task j are
    // `dependents[start[j]..start[j + 1]]` (one allocation for the whole graph).
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for (i, t) in state.tasks.iter().enumerate() {
        if t.task.is_finally {
            continue;
        }
        for d in t.task.run_after.iter().chain(t.task.result_refs.iter()) {
            if let Some(&j) = state.index.get(d) {
                edges.push((j, i));
            }
        }
    }
    edges.sort_unstable();
    let mut start = vec![0usize; n + 1];
    for &(j, _) in &edges {
        start[j + 1] += 1;
    }
    for j in 0..n {
        start[j + 1] += start[j];
    }
    let dependents = |j: usize| edges[start[j]..start[j + 1]].iter().map(|&(_, i)| i);
    let mut rerun = vec![false; n];
    let mut queue: VecDeque<usize> = state
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            !t.task.is_finally && (t.outcome.needs_rerun() || restart.contains(t.task.name))
        })
        .map(|(i, _)| i)
        .collect();
    while let Some(i) = queue.pop_front() {
        if std::mem::replace(&mut rerun[i], true) {
            continue;
        }
        queue.extend(dependents(i).filter(|&d| !rerun[d]));
    }
    for (i, t) in state.tasks.iter().enumerate() {
        if t.task.is_finally
            && (finally == FinallyPolicy::Rerun
                || restart.contains(t.task.name)
                || t.outcome.needs_rerun())
        {
            rerun[i] = true;
        }
    }
    let selected = rerun.clone();
    let mut not_run = vec![false; n];
    for (i, t) in state.tasks.iter().enumerate() {
        if t.runs.is_empty() {
            // Nothing to delete; Tekton schedules or skips it again. A finally task with no run
            // always runs after the DAG, whatever the policy.
            rerun[i] = false;
            not_run[i] = true;
        }
    }
    Selection {
        rerun,
        not_run,
        selected,
    }
}

/// Whether the retry has anything to do beyond what Tekton would repeat identically: a task that
/// runs again, or a task without a run that was not skipped by its own `when` expressions.
pub fn has_work(state: &RunState<'_>, sel: &Selection) -> bool {
    state.tasks.iter().enumerate().any(|(i, t)| {
        if sel.is_rerun(i) {
            // Re-running finally tasks alone repeats the same ending unless one of them failed.
            return !t.task.is_finally || t.outcome.needs_rerun();
        }
        sel.is_not_run(i)
            && t.outcome == TaskOutcome::NotRun
            && t.skip_reason != Some(crate::tekton::reasons::skip_reason::WHEN_EXPRESSIONS)
    })
}
