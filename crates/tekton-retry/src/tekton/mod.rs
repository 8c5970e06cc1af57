//! Views of Tekton v1 objects over `serde_json::Value`: nothing unknown is ever dropped.
//!
//! Views borrow the JSON they read and never re-serialise it, so fields this code does not know
//! survive every round trip. Tekton's reason strings and defaults are in [`reasons`], each with
//! the upstream source it comes from.

pub mod cel;
pub mod child;
pub mod names;
pub mod object;
pub mod pipeline;
pub mod pipelinerun;
pub mod reasons;
pub mod time;

pub use child::{ChildKind, ChildOutcome, ChildView};
pub use object::{fields, is_succeeded_condition, ConditionStatus, ObjectView};
pub use pipeline::{PipelineSpecView, PipelineTask, TaskKind};
pub use pipelinerun::{ChildReference, PipelineRunView, SkippedTask, Timeouts};
pub use time::{
    format_go_duration, format_go_duration_secs, format_time, parse_go_duration, parse_time,
    DurationError,
};
