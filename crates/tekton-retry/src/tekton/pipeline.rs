//! Views of a Tekton v1 `PipelineSpec`: its DAG tasks and finally tasks, with the edges Tekton derives
//! (`runAfter` and result references), `when`, `matrix`, `retries`, `onError` and workspace bindings.

use serde_json::Value;

/// What kind of child run a pipeline task creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// `taskRef`/`taskSpec` of a Task: a `TaskRun`.
    Task,
    /// A custom task (`taskRef.apiVersion`/`taskSpec.apiVersion` outside `tekton.dev`): a `CustomRun`.
    Custom,
    /// `pipelineRef`/`pipelineSpec` (Pipelines-in-Pipelines): a child `PipelineRun`.
    Pipeline,
}

/// One entry of `tasks` or `finally`.
#[derive(Clone, Debug)]
pub struct PipelineTask<'a> {
    pub json: &'a Value,
    pub name: &'a str,
    pub is_finally: bool,
    /// Names from `runAfter`.
    pub run_after: Vec<&'a str>,
    /// Tasks whose results this task references (`$(tasks.X.results.Y)`) in params, matrix,
    /// `when`, the steps and sidecars of an embedded `taskSpec`, or other substituted fields:
    /// sorted, each once, never the task itself.
    pub result_refs: Vec<&'a str>,
    /// `workspaces` (bindings to pipeline workspaces), when present.
    workspaces: Option<&'a Value>,
}

impl<'a> PipelineTask<'a> {
    /// Reads one pipeline task; `None` when it has no name.
    pub fn from_json(json: &'a Value, is_finally: bool) -> Option<Self> {
        // Tekton: `PipelineTask.Deps` = result references (`PipelineTaskResultRefs`: params, matrix
        // params/include, `when`, and the task's other substitution expressions) ∪ `runAfter`
        // (tektoncd/pipeline pkg/apis/pipeline/v1/pipeline_types.go `Deps`, resultref.go
        // `PipelineTaskResultRefs`). Of an embedded `taskSpec`, the steps and sidecars count
        // (pipeline_validation.go `PipelineTask.GetVarSubstitutionExpressions`: a step script
        // `echo $(tasks.a.results.x)` makes the task depend on `a`); the rest of it and an embedded
        // `pipelineSpec` are not scanned. One pass over the task's fields.
        let mut name = None;
        let mut run_after = Vec::new();
        let mut result_refs = Vec::new();
        let mut workspaces = None;
        for (k, v) in json.as_object()? {
            match k.as_str() {
                "name" => name = v.as_str(),
                "workspaces" => workspaces = Some(v),
                "taskSpec" => {
                    for part in ["steps", "sidecars"] {
                        if let Some(x) = v.get(part) {
                            collect_result_refs(x, &mut result_refs);
                        }
                    }
                    continue;
                }
                "pipelineSpec" => continue,
                "runAfter" => {
                    if let Some(a) = v.as_array() {
                        run_after.extend(a.iter().filter_map(Value::as_str));
                    }
                }
                _ => {}
            }
            collect_result_refs(v, &mut result_refs);
        }
        let name = name.filter(|n| !n.is_empty())?;
        result_refs.sort_unstable();
        result_refs.dedup();
        result_refs.retain(|r| *r != name);
        Some(PipelineTask {
            json,
            name,
            is_finally,
            run_after,
            result_refs,
            workspaces,
        })
    }

    /// Every `(task, result)` this task references, in the fields [`PipelineTask::result_refs`]
    /// reads (params, matrix, `when`, embedded steps and sidecars, …), each once.
    pub fn result_references(&self) -> Vec<(&'a str, &'a str)> {
        let mut strings = Vec::new();
        if let Some(o) = self.json.as_object() {
            for (k, v) in o {
                match k.as_str() {
                    "taskSpec" => {
                        for part in ["steps", "sidecars"] {
                            if let Some(x) = v.get(part) {
                                collect_strings(x, &mut strings);
                            }
                        }
                    }
                    "pipelineSpec" => {}
                    _ => collect_strings(v, &mut strings),
                }
            }
        }
        let mut out: Vec<(&'a str, &'a str)> = strings
            .into_iter()
            .flat_map(result_references_in)
            .filter(|(t, _)| *t != self.name)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every task this one depends on (Tekton's DAG edges), sorted, each once.
    pub fn deps(&self) -> Vec<&'a str> {
        let mut deps: Vec<&'a str> = self
            .run_after
            .iter()
            .chain(self.result_refs.iter())
            .copied()
            .collect();
        deps.sort_unstable();
        deps.dedup();
        deps
    }

    /// The kind of run it creates (tektoncd/pipeline pipelinerunresolution.go `IsCustomTask`,
    /// `IsChildPipeline`).
    pub fn kind(&self) -> TaskKind {
        if !self.json["pipelineRef"].is_null() || !self.json["pipelineSpec"].is_null() {
            return TaskKind::Pipeline;
        }
        let custom = |v: &Value| {
            v["apiVersion"]
                .as_str()
                .is_some_and(|a| !a.is_empty() && !a.starts_with("tekton.dev/"))
        };
        if custom(&self.json["taskRef"]) || custom(&self.json["taskSpec"]) {
            return TaskKind::Custom;
        }
        TaskKind::Task
    }

    pub fn has_matrix(&self) -> bool {
        !self.json["matrix"].is_null()
    }

    pub fn has_when(&self) -> bool {
        self.json["when"].as_array().is_some_and(|w| !w.is_empty())
    }

    /// `retries` (automatic retries of the TaskRun, kept in its `status.retriesStatus`).
    pub fn retries(&self) -> u64 {
        self.json["retries"].as_u64().unwrap_or(0)
    }

    /// `onError: continue`: a failure of this task does not stop the pipeline.
    pub fn on_error_continue(&self) -> bool {
        self.json["onError"].as_str() == Some("continue")
    }

    /// An annotation of the embedded task spec (`taskSpec.metadata.annotations`).
    pub fn spec_annotation(&self, key: &str) -> Option<&'a str> {
        self.json["taskSpec"]["metadata"]["annotations"][key].as_str()
    }

    /// Workspace bindings: `(task workspace name, pipeline workspace name)`.
    pub fn workspace_bindings(&self) -> Vec<(&'a str, &'a str)> {
        self.workspaces
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|w| {
                        let name = w["name"].as_str()?;
                        let ws = w["workspace"].as_str().unwrap_or(name);
                        Some((name, ws))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Collects `X` from every `$(tasks.X.results…)` in the strings inside `v`.
fn collect_result_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => push_result_ref_tasks(s, out),
        Value::Array(a) => a.iter().for_each(|x| collect_result_refs(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_result_refs(x, out)),
        _ => {}
    }
}

fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

/// `(task, result)` of every `$(tasks.<task>.results.<result>…)` in `s` (the result name ends at
/// `.`, `[` or `)`; the bracket form `results["x"]` gives `x`).
fn result_references_in(s: &str) -> Vec<(&str, &str)> {
    const OPEN: &str = "$(tasks.";
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(OPEN) {
        let after = &rest[i + OPEN.len()..];
        let end = after.find(')').unwrap_or(after.len());
        let expr = &after[..end];
        if let Some((task, tail)) = expr.split_once('.') {
            let result = if let Some(r) = tail.strip_prefix("results.") {
                r.split(['.', '[']).next()
            } else if let Some(r) = tail.strip_prefix("results[") {
                r.trim_start_matches(['"', '\''])
                    .split(['"', '\'', ']'])
                    .next()
            } else {
                None
            };
            if let Some(r) = result.filter(|r| !r.is_empty() && !task.is_empty()) {
                out.push((task, r));
            }
        }
        rest = &after[end..];
    }
    out
}

/// The task names in `$(tasks.<name>.results.<result>…)` references of one string (Tekton's
/// `ResultTaskPart`/`ResultResultPart` syntax, resultref.go `parseExpression`; the bracket form
/// `tasks.<name>.results["x"]` is covered because the task part precedes `.results`).
pub fn result_ref_tasks(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    push_result_ref_tasks(s, &mut out);
    out
}

/// [`result_ref_tasks`] appending to `out`. Looks for `$` byte by byte first: most strings of a
/// pipeline are short names without any reference, and a substring or char searcher costs more to
/// set up than such a scan (the planner reads every string of every pipeline task).
fn push_result_ref_tasks<'a>(s: &'a str, out: &mut Vec<&'a str>) {
    const OPEN: &str = "$(tasks.";
    let mut rest = s;
    while let Some(i) = rest.bytes().position(|b| b == b'$') {
        // `$` is one byte, so `i + 1` is a char boundary.
        let Some(after) = rest[i..].strip_prefix(OPEN) else {
            rest = &rest[i + 1..];
            continue;
        };
        let end = after.find(')').unwrap_or(after.len());
        let expr = &after[..end];
        if let Some((task, tail)) = expr.split_once('.') {
            if (tail.starts_with("results.") || tail.starts_with("results[")) && !task.is_empty() {
                out.push(task);
            }
        }
        rest = &after[end..];
    }
}

/// A borrowed view of a `PipelineSpec`.
#[derive(Clone, Debug)]
pub struct PipelineSpecView<'a> {
    pub tasks: Vec<PipelineTask<'a>>,
    pub finally: Vec<PipelineTask<'a>>,
}

impl<'a> PipelineSpecView<'a> {
    pub fn from_json(spec: &'a Value) -> Self {
        let read = |key: &str, is_finally: bool| {
            spec[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| PipelineTask::from_json(t, is_finally))
                        .collect()
                })
                .unwrap_or_default()
        };
        PipelineSpecView {
            tasks: read("tasks", false),
            finally: read("finally", true),
        }
    }

    /// DAG tasks then finally tasks, in pipeline order.
    pub fn all(&self) -> impl Iterator<Item = &PipelineTask<'a>> {
        self.tasks.iter().chain(self.finally.iter())
    }

    /// DAG tasks then finally tasks, by value.
    pub fn into_all(self) -> impl Iterator<Item = PipelineTask<'a>> {
        self.tasks.into_iter().chain(self.finally)
    }

    pub fn get(&self, name: &str) -> Option<&PipelineTask<'a>> {
        self.all().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_result_references() {
        assert_eq!(result_ref_tasks("$(tasks.a.results.commit)"), vec!["a"]);
        assert_eq!(
            result_ref_tasks("x $(tasks.a.results.r[*]) y $(tasks.b-2.results.o.key)"),
            vec!["a", "b-2"]
        );
        assert_eq!(result_ref_tasks("$(tasks.a.results[\"r\"])"), vec!["a"]);
        assert!(result_ref_tasks("$(tasks.status) $(tasks.a.status) $(params.x)").is_empty());
    }

    #[test]
    fn derives_deps_from_run_after_params_when_and_matrix() {
        let spec = json!({
            "tasks": [
                {"name": "a"},
                {"name": "b", "params": [{"name": "c", "value": "$(tasks.a.results.commit)"}]},
                {"name": "w", "when": [{"input": "$(tasks.x.results.flag)", "operator": "in", "values": ["true"]}]},
                {"name": "m", "matrix": {"params": [{"name": "p", "value": ["$(tasks.y.results.list[*])"]}]}},
                {"name": "c", "runAfter": ["b"], "taskSpec": {"steps": [{"script": "echo $(tasks.zz.results.x)"}],
                    "sidecars": [{"args": ["$(tasks.s.results.y)"]}],
                    "results": [{"name": "$(tasks.no.results.z)"}]}},
                {"name": "custom", "taskRef": {"apiVersion": "example.dev/v1", "kind": "Wait"}},
                {"name": "child", "pipelineRef": {"name": "p"}}
            ],
            "finally": [{"name": "report", "params": [{"name": "s", "value": "$(tasks.status)"}]}]
        });
        let v = PipelineSpecView::from_json(&spec);
        let deps = |n: &str| {
            v.get(n)
                .expect("task")
                .deps()
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(deps("b"), vec!["a"]);
        assert_eq!(deps("w"), vec!["x"]);
        assert_eq!(deps("m"), vec!["y"]);
        assert_eq!(
            v.get("c").expect("c").result_references(),
            vec![("s", "y"), ("zz", "x")]
        );
        assert_eq!(
            v.get("b").expect("b").result_references(),
            vec![("a", "commit")]
        );
        // Steps and sidecars of an embedded taskSpec are edges; its other fields are not.
        assert_eq!(deps("c"), vec!["b", "s", "zz"]);
        assert!(deps("report").is_empty());
        assert_eq!(v.get("custom").map(|t| t.kind()), Some(TaskKind::Custom));
        assert_eq!(v.get("child").map(|t| t.kind()), Some(TaskKind::Pipeline));
        assert_eq!(v.get("a").map(|t| t.kind()), Some(TaskKind::Task));
        assert!(v.get("report").is_some_and(|t| t.is_finally));
        assert_eq!(v.all().count(), 8);
    }
}
