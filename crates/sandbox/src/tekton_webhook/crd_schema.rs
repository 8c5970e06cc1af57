//! The structural schemas of Tekton's CRDs, as far as pruning needs them: the known fields at the
//! top level and in `status`, from Tekton's Go types (`pkg/apis/pipeline/v1/pipelinerun_types.go`
//! `PipelineRunStatusFields`, `taskrun_types.go` `TaskRunStatusFields`, knative `duckv1.Status`).
//! The API server's pruning ([`crate::emulator::pruning`]) drops every other field.

/// Top-level fields of every Tekton object.
const TOP: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
/// knative `duckv1.Status`, embedded in every run's status.
const DUCK_STATUS: &[&str] = &["observedGeneration", "conditions", "annotations"];
const PIPELINERUN_STATUS: &[&str] = &[
    "startTime",
    "completionTime",
    "results",
    "pipelineSpec",
    "skippedTasks",
    "childReferences",
    "finallyStartTime",
    "provenance",
    "spanContext",
];
const TASKRUN_STATUS: &[&str] = &[
    "podName",
    "startTime",
    "completionTime",
    "steps",
    "retriesStatus",
    "results",
    "artifacts",
    "sidecars",
    "taskSpec",
    "provenance",
    "spanContext",
];

/// The known fields of one CRD.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    /// Known top-level fields.
    pub top: &'static [&'static str],
    /// The status fields besides knative's, where the schema lists them (runs); `None`: status is
    /// not checked.
    status: Option<&'static [&'static str]>,
}

impl Schema {
    /// Whether the schema lists the fields of `status`.
    pub fn checks_status(&self) -> bool {
        self.status.is_some()
    }

    /// Whether `key` is a known field of `status`.
    pub fn knows_status_field(&self, key: &str) -> bool {
        DUCK_STATUS.contains(&key) || self.status.is_some_and(|f| f.contains(&key))
    }
}

/// The schema of a Tekton CRD; `None` for every other resource (not pruned).
pub fn find(group: &str, resource: &str) -> Option<Schema> {
    if group != "tekton.dev" {
        return None;
    }
    let status = match resource {
        "pipelineruns" => Some(PIPELINERUN_STATUS),
        "taskruns" => Some(TASKRUN_STATUS),
        _ => None,
    };
    Some(Schema { top: TOP, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tekton_resources_have_a_schema() {
        assert!(find("", "configmaps").is_none());
        assert!(find("retry.tekton.dev", "pipelineruns").is_none());
        let pipelines = find("tekton.dev", "pipelines").expect("a Tekton CRD");
        assert!(!pipelines.checks_status(), "only runs list status fields");
        assert!(pipelines.top.contains(&"spec") && !pipelines.top.contains(&"lastRetry"));
    }

    #[test]
    fn run_status_knows_knative_and_its_own_fields_only() {
        let pr = find("tekton.dev", "pipelineruns").expect("schema");
        let tr = find("tekton.dev", "taskruns").expect("schema");
        for known in [
            "conditions",
            "observedGeneration",
            "annotations",
            "startTime",
        ] {
            assert!(
                pr.knows_status_field(known) && tr.knows_status_field(known),
                "{known}"
            );
        }
        assert!(
            pr.knows_status_field("childReferences") && !tr.knows_status_field("childReferences")
        );
        assert!(tr.knows_status_field("podName") && !pr.knows_status_field("podName"));
        assert!(!pr.knows_status_field("lastRetry"));
    }
}
