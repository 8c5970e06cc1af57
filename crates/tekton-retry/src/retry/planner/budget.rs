//! The pipeline timeout budget a retry still has.
//!
//! Tekton measures `timeouts.pipeline` (and `timeouts.tasks`) from `status.startTime`
//! (pipelinerun_types.go `HasTimedOut`, `HaveTasksTimedOut`), which a reset keeps. Resetting
//! `startTime` does not help: `AdjustStartTime` (pipelinerunstate.go) pulls it back to the earliest
//! kept child's `creationTimestamp` in the same reconcile (fixtures timeout-within,
//! timeout-startreset). A retry after the budget ends `PipelineRunTimeout` at once (fixtures
//! timeout, timeout-long).
//!
//! The tasks budget binds every retry, one that re-runs only finally tasks included:
//! `GetPipelineConditionStatus` (pipelinerunstate.go) ends the run `PipelineRunTimeout` ("failed
//! due to tasks failed to finish within …") once `HaveTasksTimedOut`, measured from `startTime`
//! whether or not the DAG already finished (confirmed on a real cluster: a finally-only retry after
//! `timeouts.tasks` elapsed ended `PipelineRunTimeout` although the finally task succeeded).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::tekton::{ChildView, PipelineRunView, Timeouts};

pub use crate::retry::refusal::Budget;

/// The budget left at `now`, or `None` when the run has no timeout. `kept` are the child runs
/// that stay (their creation can pull the start back).
pub fn remaining(
    run: &PipelineRunView<'_>,
    timeouts: Timeouts,
    kept: &[ChildView<'_>],
    now: DateTime<Utc>,
) -> Option<Budget> {
    // No startTime yet: Tekton stamps it on the first reconcile, the whole budget is left.
    let recorded = run.obj.status_time("startTime").unwrap_or(now);
    let start = kept
        .iter()
        .filter_map(|c| c.creation_timestamp())
        .fold(recorded, |a, b| a.min(b));
    let elapsed = (now - start).to_std().unwrap_or(Duration::ZERO);
    let candidates = [("pipeline", timeouts.pipeline), ("tasks", timeouts.tasks)];
    candidates
        .into_iter()
        .filter_map(|(which, limit)| Some((which, limit?)))
        .map(|(which, limit)| Budget {
            limit,
            which,
            start,
            remaining: limit.saturating_sub(elapsed),
        })
        .min_by_key(|b| b.remaining)
}
