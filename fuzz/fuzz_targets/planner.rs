//! The planner (`tekton_retry::retry::planner::plan`) on arbitrary PipelineRun / child run JSON:
//! the input is one JSON document `{"run", "children", "pipeline", "spec", "pvcs", "now"}`
//! (the corpus starts from the objects recorded from the real Tekton controller).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        checks::planner_json(&doc);
    }
});
