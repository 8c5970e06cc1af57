//! The planner: every Tekton rule the reset depends on, in one place. Pure: no I/O.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Plan, PlanInput};
use crate::api::ApiError;

/// Placeholder signature until the planner lands (the planner branch replaces this file).
pub fn plan(_input: &PlanInput) -> Result<Plan, ApiError> {
    Err(ApiError::internal("planner missing"))
}

/// Placeholder signature until the planner lands.
pub fn status_reset(
    _run: &Value,
    _deleted: &BTreeSet<String>,
    _now: DateTime<Utc>,
    _message: &str,
) -> Value {
    Value::Null
}
