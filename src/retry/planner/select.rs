//! The re-run set (DESIGN §2 step 2): which pipeline tasks run again and which runs are kept.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::api::FinallyPolicy;

use super::state::{RunState, TaskOutcome};

/// The tasks a retry runs again.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Tasks (DAG and finally) whose runs are deleted, so Tekton creates them again.
    pub rerun: BTreeSet<String>,
    /// Tasks with no run: Tekton schedules (or skips) them again by itself.
    pub not_run: BTreeSet<String>,
    /// Every task the rules above select, with a run or not (a task whose run is missing is
    /// safe to run again only when selected).
    pub selected: BTreeSet<String>,
}

/// Computes the re-run set:
/// - DAG tasks that failed, were cancelled or timed out (not ignored by `onError: continue`),
///   and `restartTasks`;
/// - every DAG task that depends on one of those, directly or not (Tekton's edges: `runAfter` and
///   result references in params, matrix and `when`, pipeline_types.go `Deps`): its inputs may
///   change, so a kept run of it would be stale;
/// - finally tasks: all of them with `Rerun` (fixture dag-failed: `report` deleted and re-run);
///   with `Keep` only those in `restartTasks` (fixture keep-finally: a kept finally run is not
///   re-run).
///
/// A matrix task is one entry: all its runs go (fixture matrix: deleting only the failed
/// combination leaves it never re-created; matrix-full: deleting all three re-creates all three).
pub fn select(state: &RunState<'_>, restart: &[String], finally: FinallyPolicy) -> Selection {
    let restart: BTreeSet<&str> = restart.iter().map(String::as_str).collect();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in state.tasks.iter().filter(|t| !t.task.is_finally) {
        for d in t.task.deps() {
            dependents.entry(d).or_default().push(t.task.name);
        }
    }
    let mut rerun: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<&str> = VecDeque::new();
    for t in state.tasks.iter().filter(|t| !t.task.is_finally) {
        if t.outcome.needs_rerun() || restart.contains(t.task.name) {
            queue.push_back(t.task.name);
        }
    }
    while let Some(name) = queue.pop_front() {
        if !rerun.insert(name.to_string()) {
            continue;
        }
        for &d in dependents.get(name).map(Vec::as_slice).unwrap_or_default() {
            if !rerun.contains(d) {
                queue.push_back(d);
            }
        }
    }
    for t in state.tasks.iter().filter(|t| t.task.is_finally) {
        if finally == FinallyPolicy::Rerun || restart.contains(t.task.name) {
            rerun.insert(t.task.name.to_string());
        }
    }
    let mut sel = Selection {
        selected: rerun.clone(),
        ..Default::default()
    };
    for t in &state.tasks {
        let name = t.task.name.to_string();
        if t.runs.is_empty() {
            // Nothing to delete; Tekton schedules or skips it again. A finally task with no run
            // always runs after the DAG, whatever the policy.
            rerun.remove(&name);
            sel.not_run.insert(name);
        } else if rerun.contains(&name) {
            sel.rerun.insert(name);
        }
    }
    sel
}

/// Whether the retry has anything to do beyond what Tekton would repeat identically: a task that
/// runs again, or a task without a run that was not skipped by its own `when` expressions.
pub fn has_work(state: &RunState<'_>, sel: &Selection) -> bool {
    state.tasks.iter().any(|t| {
        let name = t.task.name;
        if sel.rerun.contains(name) {
            // Re-running finally tasks alone repeats the same ending unless one of them failed.
            return !t.task.is_finally || t.outcome.needs_rerun();
        }
        sel.not_run.contains(name)
            && t.outcome == TaskOutcome::NotRun
            && t.skip_reason != Some(crate::tekton::reasons::skip_reason::WHEN_EXPRESSIONS)
    })
}
