//! Rendering the server's answer to a retry: the plan (what re-runs and why, what is kept, the
//! timeout left) and the `-o json|yaml|name` forms.

use crate::cli::OutputFormat;
use crate::errors::Failure;
use tekton_retry::api::{PipelineRunRetry, GROUP, KIND};

/// Aligns `rows` into columns separated by three spaces (kubectl's table style), each line
/// indented by `indent`. Trailing spaces are trimmed.
pub fn table(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count() + 3;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The plan of a retry as text: the header, the re-run tasks with the run they replace and why,
/// the kept tasks, and the timeout budget left. Used for `--dry-run` and after an accepted retry.
pub fn render_plan(answer: &PipelineRunRetry, namespace: &str, name: &str) -> String {
    let mut out = String::new();
    let Some(status) = &answer.status else {
        out.push_str(&format!(
            "pipelinerun {namespace}/{name}: the server answered without a status\n"
        ));
        return out;
    };
    if status.dry_run {
        out.push_str(&format!(
            "Dry run (nothing was changed): retrying pipelinerun {namespace}/{name} would start attempt {}.\n",
            status.attempt
        ));
    } else {
        out.push_str(&format!(
            "pipelinerun {namespace}/{name} retried: attempt {} started.\n",
            status.attempt
        ));
    }
    let verb = if status.dry_run {
        "Would re-run"
    } else {
        "Re-running"
    };
    if status.retried_tasks.is_empty() {
        out.push_str(&format!("{verb}: nothing\n"));
    } else {
        out.push_str(&format!("{verb}:\n"));
        let mut rows = vec![vec![
            "TASK".to_string(),
            "PREVIOUS RUN".to_string(),
            "WHY".to_string(),
        ]];
        for t in &status.retried_tasks {
            rows.push(vec![
                t.name.clone(),
                t.previous_run.clone().unwrap_or_else(|| "-".into()),
                t.previous_reason.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        out.push_str(&table(&rows, "  "));
    }
    if status.preserved_tasks.is_empty() {
        out.push_str("Kept: nothing\n");
    } else {
        out.push_str(&format!(
            "Kept (results reused): {}\n",
            status.preserved_tasks.join(", ")
        ));
    }
    match &status.remaining_timeout {
        Some(left) => {
            out.push_str(&format!("Timeout left: {left}"));
            if let Some(start) = &status.original_start_time {
                // Tekton measures the pipeline timeout from status.startTime, which a retry keeps
                // (fixtures/tekton README, dag-failed: "startTime stays the original").
                out.push_str(&format!(" (measured from the original start, {start})"));
            }
            out.push('\n');
        }
        None => out.push_str("Timeout left: no pipeline timeout\n"),
    }
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        out.push_str(message);
        out.push('\n');
    }
    out
}

/// `kind.group/name`, as `kubectl … -o name` prints an object.
pub fn object_name(answer: &PipelineRunRetry, fallback_name: &str) -> String {
    let name = answer.metadata.name.as_deref().unwrap_or(fallback_name);
    format!("{}.{GROUP}/{name}\n", KIND.to_lowercase())
}

/// The answer in the requested format (`None`: the plan text).
pub fn render_answer(
    answer: &PipelineRunRetry,
    format: Option<OutputFormat>,
    namespace: &str,
    name: &str,
) -> Result<String, Failure> {
    match format {
        None => Ok(render_plan(answer, namespace, name)),
        Some(OutputFormat::Name) => Ok(object_name(answer, name)),
        Some(OutputFormat::Json) => serde_json::to_string_pretty(answer)
            .map(|s| s + "\n")
            .map_err(|e| Failure::new(format!("cannot print the answer as JSON: {e}"))),
        Some(OutputFormat::Yaml) => serde_yaml::to_string(answer)
            .map_err(|e| Failure::new(format!("cannot print the answer as YAML: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tekton_retry::api::{RetriedTask, RetrySpec};
    use tekton_retry_test_support::dag_failed::plan_status;

    /// The plan the server computes for the recorded dag-failed run (fixtures/tekton/dag-failed/01):
    /// b failed (StepFailed), c skipped, report (finally) ran; a succeeded.
    fn dag_failed_answer(dry_run: bool) -> PipelineRunRetry {
        PipelineRunRetry::response("dag-failed", "demo-run", RetrySpec::default(), {
            let mut status = plan_status(dry_run);
            status.retried_tasks.push(RetriedTask {
                name: "report".into(),
                previous_run: Some("demo-run-report".into()),
                previous_reason: Some("Succeeded".into()),
            });
            status.original_completion_time = Some("2026-11-26T19:27:19Z".into());
            status
        })
    }

    #[test]
    fn dry_run_plan_says_what_reruns_why_and_what_is_kept() {
        let text = render_plan(&dag_failed_answer(true), "dag-failed", "demo-run");
        assert_eq!(
            text,
            "Dry run (nothing was changed): retrying pipelinerun dag-failed/demo-run would start attempt 2.\n\
             Would re-run:\n\
             \x20 TASK     PREVIOUS RUN      WHY\n\
             \x20 b        demo-run-b        StepFailed\n\
             \x20 c        -                 PipelineRun was stopping\n\
             \x20 report   demo-run-report   Succeeded\n\
             Kept (results reused): a\n\
             Timeout left: 59m20s (measured from the original start, 2026-11-26T19:27:10Z)\n"
        );
    }

    #[test]
    fn accepted_plan_and_no_timeout() {
        let mut answer = dag_failed_answer(false);
        if let Some(s) = answer.status.as_mut() {
            s.remaining_timeout = None;
            s.preserved_tasks.clear();
        }
        let text = render_plan(&answer, "dag-failed", "demo-run");
        assert!(text.starts_with(
            "pipelinerun dag-failed/demo-run retried: attempt 2 started.\nRe-running:\n"
        ));
        assert!(text.contains("Kept: nothing\n"));
        assert!(text.ends_with("Timeout left: no pipeline timeout\n"));
    }

    #[test]
    fn output_formats() {
        let answer = dag_failed_answer(false);
        assert_eq!(
            render_answer(&answer, Some(OutputFormat::Name), "dag-failed", "demo-run")
                .expect("name"),
            "pipelinerunretry.retry.tekton.dev/demo-run\n"
        );
        let json = render_answer(&answer, Some(OutputFormat::Json), "dag-failed", "demo-run")
            .expect("json");
        let back: PipelineRunRetry = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(back, answer);
        let yaml = render_answer(&answer, Some(OutputFormat::Yaml), "dag-failed", "demo-run")
            .expect("yaml");
        let back: PipelineRunRetry = serde_yaml::from_str(&yaml).expect("valid YAML");
        assert_eq!(back, answer);
    }

    #[test]
    fn table_aligns_unicode_by_chars() {
        let rows = vec![
            vec!["é".to_string(), "x".to_string()],
            vec!["abc".to_string(), "".to_string()],
        ];
        assert_eq!(table(&rows, ""), "é     x\nabc\n");
    }
}
