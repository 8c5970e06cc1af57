//! The `coschedule` feature flag and the affinity assistant's name: what both the claim model
//! ([`super::volumeclaim`]) and the assistant model ([`super::affinity`]) need
//! (`pkg/internal/affinityassistant`, `GetAffinityAssistantName`).

use serde_json::Value;

use super::util;

/// The `coschedule` feature flag (`AffinityAssistantBehavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coschedule {
    /// `workspaces` (default): one assistant per claim workspace.
    #[default]
    Workspaces,
    /// `pipelineruns`: one assistant per run, every pod pinned to it.
    PipelineRuns,
    /// `isolate-pipelinerun`: as `pipelineruns`, and one run per node.
    IsolatePipelineRun,
    /// `disabled`: no assistant.
    Disabled,
}

impl Coschedule {
    /// From the `feature-flags` ConfigMap (None: absent). An unknown value makes Tekton's config
    /// loader reject the ConfigMap (`setCoschedule`), leaving the default in force.
    pub fn from_feature_flags(cm: Option<&Value>) -> Self {
        match cm.and_then(|c| util::get_str(c, &["data", "coschedule"])) {
            Some("pipelineruns") => Coschedule::PipelineRuns,
            Some("isolate-pipelinerun") => Coschedule::IsolatePipelineRun,
            Some("disabled") => Coschedule::Disabled,
            _ => Coschedule::Workspaces,
        }
    }
}

/// `GetAffinityAssistantName`.
pub fn assistant_name(workspace: &str, run: &str) -> String {
    format!(
        "affinity-assistant-{}",
        util::sha256_hex(&format!("{workspace}{run}"), 10)
    )
}
