//! Refusals the planner recognises in what the cluster answered (the refusals themselves, with
//! their messages, are [`Refusal`]).

use crate::retry::refusal::Refusal;

/// Marker of the webhook's `apis.ErrDisallowedFields` message.
const DISALLOWED: &str = "must not set the field(s): ";

/// The refusal for a write the Tekton webhook rejected because `disable-inline-spec` was turned on
/// after the run was created: every later write to the run (status and metadata alike) is then
/// refused with `must not set the field(s): spec.pipelineSpec` (fixture
/// retries/06-status-write-with-disable-inline-spec.error.txt; pipelinerun_validation.go and
/// pipeline_validation.go `validateEnabledInlineSpec`). `None` for any other error.
pub fn inline_spec_disabled(run: &str, webhook_message: &str) -> Option<Refusal> {
    let fields = &webhook_message[webhook_message.find(DISALLOWED)? + DISALLOWED.len()..];
    if !(fields.contains("pipelineSpec") || fields.contains("taskSpec")) {
        return None;
    }
    let field = fields
        .split_whitespace()
        .next()
        .unwrap_or(fields)
        .trim_end_matches(',');
    Some(Refusal::InlineSpecDisabled {
        run: run.to_string(),
        field: field.to_string(),
    })
}
