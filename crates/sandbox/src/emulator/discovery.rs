//! Discovery documents: `/api`, `/api/v1`, `/apis` (legacy `APIGroupList` and aggregated discovery
//! v2 `APIGroupDiscoveryList`, `k8s.io/apiserver/pkg/endpoints/discovery/aggregated`), `/apis/<g>`,
//! `/apis/<g>/<v>`, `/version`, and a minimal `/openapi/v3` that tells kubectl every endpoint
//! supports server-side field validation (so `kubectl create -f` needs no client-side schema).

use serde_json::{json, Value};

use super::resources::{groups, ResourceDef, RESOURCES};

/// Media type of aggregated discovery v2.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery v2.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let p: Vec<&str> = part.split(';').map(str::trim).collect();
        p.contains(&"g=apidiscovery.k8s.io")
            && p.contains(&"v=v2")
            && p.contains(&"as=APIGroupDiscoveryList")
    })
}

/// A group served by an aggregated backend, as its last successful discovery answered.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregatedGroup {
    pub group: String,
    pub version: String,
    /// The backend's `APIResourceList` for `group/version`.
    pub resources: Value,
    /// The APIService's `groupPriorityMinimum`.
    pub priority: u32,
}

/// kube-apiserver's version of the emulator.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "36",
        "emulationMajor": "1",
        "emulationMinor": "36",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "35",
        "gitVersion": "v1.36.0-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// Adds the resource's `shortNames` and `categories`, when it has any.
fn add_short_names_and_categories(v: &mut Value, r: &ResourceDef) {
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
}

fn legacy_resources(r: &ResourceDef) -> Vec<Value> {
    let mut main = json!({
        "name": r.resource,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs(),
    });
    add_short_names_and_categories(&mut main, r);
    let mut out = vec![main];
    for (sub, verbs) in r.subresources() {
        out.push(json!({
            "name": format!("{}/{sub}", r.resource),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs,
        }));
    }
    out
}

/// `/api/v1` or `/apis/<g>/<v>` for a served group version, or `None`.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let rs: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(legacy_resources)
        .collect();
    if rs.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": rs}),
    )
}

fn api_group(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

/// `groupPriorityMinimum` of the served groups: kube-apiserver's built-in table
/// (`pkg/controlplane/apiserver/aggregator.go` `apiVersionPriorities`) and 1000 for CRD groups
/// (`crdregistration_controller.go`).
fn priority(group: &str) -> u32 {
    match group {
        "events.k8s.io" => 17750,
        "authentication.k8s.io" => 17700,
        "authorization.k8s.io" => 17600,
        "coordination.k8s.io" => 16500,
        "apiregistration.k8s.io" => 18200,
        "apps" => 17800,
        "policy" => 17600,
        "rbac.authorization.k8s.io" => 17000,
        _ => 1000,
    }
}

/// Groups in discovery order: by `groupPriorityMinimum` descending, then by name
/// (`apiservice_helper.go` `SortedByGroupAndVersion`). kubectl resolves a bare resource name to the
/// first group that has it, so an aggregated group at 1000 or more named before `tekton.dev` takes
/// `pipelineruns` over.
fn all_groups(agg: Option<&AggregatedGroup>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(u32, String, Vec<String>)> = groups()
        .into_iter()
        .map(|(g, vs)| {
            (
                priority(g),
                g.to_string(),
                vs.into_iter().map(str::to_string).collect(),
            )
        })
        .collect();
    if let Some(a) = agg {
        out.push((a.priority, a.group.clone(), vec![a.version.clone()]));
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    out.into_iter().map(|(_, g, vs)| (g, vs)).collect()
}

/// `/apis` (legacy).
pub fn group_list(agg: Option<&AggregatedGroup>) -> Value {
    let gs: Vec<Value> = all_groups(agg)
        .iter()
        .map(|(g, vs)| api_group(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

/// `/apis/<g>` (legacy `APIGroup`), or `None` when not served.
pub fn group(name: &str, agg: Option<&AggregatedGroup>) -> Option<Value> {
    all_groups(agg)
        .into_iter()
        .find(|(g, _)| g == name)
        .map(|(g, vs)| {
            let mut v = api_group(&g, &vs);
            v["kind"] = json!("APIGroup");
            v["apiVersion"] = json!("v1");
            v
        })
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn v2_resource(r: &ResourceDef) -> Value {
    let mut v = json!({
        "resource": r.resource,
        "responseKind": gvk(r.group, r.version, r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    add_short_names_and_categories(&mut v, r);
    let subs: Vec<Value> = r
        .subresources()
        .into_iter()
        .map(|(s, verbs)| {
            json!({"subresource": s, "responseKind": gvk(r.group, r.version, r.kind), "verbs": verbs})
        })
        .collect();
    if !subs.is_empty() {
        v["subresources"] = json!(subs);
    }
    v
}

/// A legacy `APIResourceList` as aggregated v2 resources (subresources folded into their parent),
/// as kube-apiserver converts an aggregated server's legacy discovery.
fn v2_from_legacy(group: &str, version: &str, list: &Value) -> Vec<Value> {
    let entries = list["resources"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<Value> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| !e["name"].as_str().unwrap_or("").contains('/'))
    {
        let name = e["name"].as_str().unwrap_or("");
        let mut v = json!({
            "resource": name,
            "responseKind": gvk(e["group"].as_str().unwrap_or(group), e["version"].as_str().unwrap_or(version), e["kind"].as_str().unwrap_or("")),
            "scope": if e["namespaced"].as_bool().unwrap_or(false) { "Namespaced" } else { "Cluster" },
            "singularResource": e["singularName"].as_str().unwrap_or(""),
            "verbs": e["verbs"].clone(),
        });
        let subs: Vec<Value> = entries
            .iter()
            .filter_map(|s| {
                let (parent, sub) = s["name"].as_str()?.split_once('/')?;
                (parent == name).then(|| {
                    json!({"subresource": sub, "responseKind": gvk(group, version, s["kind"].as_str().unwrap_or("")), "verbs": s["verbs"].clone()})
                })
            })
            .collect();
        if !subs.is_empty() {
            v["subresources"] = json!(subs);
        }
        out.push(v);
    }
    out
}

/// Aggregated discovery v2: `/api` (`core = true`) or `/apis`.
pub fn aggregated(core: bool, agg: Option<&AggregatedGroup>) -> Value {
    let mut items = Vec::new();
    if core {
        let rs: Vec<Value> = RESOURCES
            .iter()
            .filter(|r| r.group.is_empty())
            .map(v2_resource)
            .collect();
        items.push(json!({"metadata": {"creationTimestamp": null}, "versions": [{"version": "v1", "resources": rs, "freshness": "Current"}]}));
    } else {
        for (g, vs) in all_groups(agg) {
            if let Some(a) = agg.filter(|a| a.group == g) {
                let rs = v2_from_legacy(&a.group, &a.version, &a.resources);
                items.push(json!({"metadata": {"name": a.group, "creationTimestamp": null}, "versions": [{"version": a.version, "resources": rs, "freshness": "Current"}]}));
                continue;
            }
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| {
                    let rs: Vec<Value> = RESOURCES
                        .iter()
                        .filter(|r| r.group == g && r.version == v)
                        .map(v2_resource)
                        .collect();
                    json!({"version": v, "resources": rs, "freshness": "Current"})
                })
                .collect();
            items.push(
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions}),
            );
        }
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: one entry per served group version.
pub fn openapi_root() -> Value {
    let mut paths = serde_json::Map::new();
    let mut seen = Vec::new();
    for r in RESOURCES {
        let p = gv_path(r.group, r.version);
        if !seen.contains(&p) {
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=sandbox")}),
            );
            seen.push(p);
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/<api/v1 | apis/g/v>`: the PATCH operation of every resource, carrying its
/// group/version/kind and the `fieldValidation` parameter — what kubectl's
/// `QueryParamVerifierV3` looks for before relying on server-side validation.
pub fn openapi_group_version(path: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| gv_path(r.group, r.version) == path)
    {
        let base = if r.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}/{{name}}", r.resource)
        } else {
            format!("/{path}/{}/{{name}}", r.resource)
        };
        let op = json!({
            "operationId": format!("patch{}", r.kind),
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
            ],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": gvk(r.group, r.version, r.kind),
        });
        paths.insert(base, json!({"patch": op}));
        let schema_name = format!(
            "{}.{}.{}",
            if r.group.is_empty() {
                "io.k8s.api.core"
            } else {
                r.group
            },
            r.version,
            r.kind
        );
        schemas.insert(
            schema_name,
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                   "x-kubernetes-group-version-kind": [gvk(r.group, r.version, r.kind)]}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}
