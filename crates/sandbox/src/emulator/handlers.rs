//! The REST handlers of stored resources: GET, LIST, WATCH, POST, PUT, PATCH, DELETE,
//! DELETE-collection, `/status` and `pods/log`, plus the review resources.

use std::sync::Arc;
use std::time::Duration;

use http::Response;
use serde_json::{json, Value};

use super::events_view;
use super::http::{json_response, param, status_response, text, Body};
use super::protobuf;
use super::pruning::{self, FieldValidation};
use super::request_info::RequestInfo;
use super::resources::{find, Kind, ResourceDef};
use super::reviews;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::StatusError;
use super::store::{DeleteOptions, Part, Patch, Propagation, Store, WriteOptions};
use super::table::{self, Include};
use super::watch::{self, WatchRequest};
use crate::policy::Policy;
use tekton_retry::api::UserInfo;

/// What a handler needs from the request besides the parsed path.
pub struct Call<'a> {
    pub info: &'a RequestInfo,
    pub query: &'a [(String, String)],
    pub accept: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
    pub user: &'a UserInfo,
}

/// Shared state of the handlers.
pub struct Ctx {
    pub store: Arc<Store>,
    pub policy: Arc<Policy>,
    pub bookmark_interval: Duration,
}

fn table_of(call: &Call<'_>) -> Option<Include> {
    table::wants_table(call.accept).then(|| Include::parse(param(call.query, "includeObject")))
}

fn dry_run(call: &Call<'_>) -> Result<bool, StatusError> {
    match param(call.query, "dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(StatusError::bad_request(format!(
            "Invalid dry run value: {other}. Only \"All\" is supported"
        ))),
    }
}

fn parse_body(call: &Call<'_>) -> Result<Value, StatusError> {
    let ct = call.content_type.split(';').next().unwrap_or("").trim();
    if ct == protobuf::MEDIA_TYPE {
        return protobuf::decode(call.body);
    }
    if ct.contains("yaml") {
        return serde_yaml::from_slice(call.body).map_err(|e| {
            StatusError::bad_request(format!("the body of the request could not be decoded: {e}"))
        });
    }
    serde_json::from_slice(call.body).map_err(|e| {
        StatusError::bad_request(format!("the body of the request could not be decoded: {e}"))
    })
}

fn respond(call: &Call<'_>, def: &ResourceDef, code: u16, obj: &Value) -> Response<Body> {
    match table_of(call) {
        Some(inc) => json_response(
            code,
            &table::table(def, std::slice::from_ref(obj), inc, None, true),
        ),
        None => json_response(code, obj),
    }
}

/// `tailLines` and `limitBytes` of `pods/log` (`PodLogOptions`).
fn log_window(log: &str, q: &[(String, String)]) -> Result<String, StatusError> {
    let num = |k: &str| -> Result<Option<usize>, StatusError> {
        param(q, k)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| StatusError::bad_request(format!("{k}: invalid value {v:?}")))
            })
            .transpose()
    };
    let mut out = log.to_string();
    if let Some(n) = num("tailLines")? {
        let lines: Vec<&str> = out.split_inclusive('\n').collect();
        out = lines[lines.len().saturating_sub(n)..].concat();
    }
    if let Some(n) = num("limitBytes")? {
        let mut cut = n.min(out.len());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Ok(out)
}

fn field_validation(call: &Call<'_>) -> Result<FieldValidation, StatusError> {
    FieldValidation::parse(param(call.query, "fieldValidation"))
}

/// Add `Warning: 299 - "<text>"` headers (what kubectl prints as `Warning: <text>`).
fn warn(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let v = format!("299 - {}", serde_json::Value::from(w.as_str()));
        if let Ok(h) = http::HeaderValue::from_str(&v) {
            r.headers_mut().append("warning", h);
        }
    }
    r
}

/// The delete options, and whether `orphanDependents: false` was set (for the 202 answer).
fn delete_options(call: &Call<'_>) -> Result<(DeleteOptions, bool), StatusError> {
    let mut orphan_false = param(call.query, "orphanDependents") == Some("false");
    let mut opts = DeleteOptions {
        dry_run: dry_run(call)?,
        ..Default::default()
    };
    if let Some(p) = param(call.query, "propagationPolicy") {
        opts.propagation = Some(Propagation::parse(p)?);
    }
    if param(call.query, "orphanDependents") == Some("true") {
        opts.propagation = Some(Propagation::Orphan);
    }
    if !call.body.iter().all(u8::is_ascii_whitespace) {
        let b: Value = serde_json::from_slice(call.body).map_err(|e| {
            StatusError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?;
        if let Some(p) = b.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation = Some(Propagation::parse(p)?);
        }
        match b.get("orphanDependents").and_then(Value::as_bool) {
            Some(true) => opts.propagation = Some(Propagation::Orphan),
            Some(false) => orphan_false = true,
            None => {}
        }
        if let Some(u) = b.pointer("/preconditions/uid").and_then(Value::as_str) {
            opts.precondition_uid = Some(u.into());
        }
        if let Some(r) = b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            opts.precondition_resource_version = Some(r.into());
        }
        if b.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"))
        {
            opts.dry_run = true;
        }
    }
    Ok((opts, orphan_false))
}

fn selectors(
    call: &Call<'_>,
    def: &ResourceDef,
) -> Result<(LabelSelector, FieldSelector), StatusError> {
    let l = LabelSelector::parse(param(call.query, "labelSelector").unwrap_or(""))?;
    let f = FieldSelector::parse(
        param(call.query, "fieldSelector").unwrap_or(""),
        def.group,
        def.resource,
    )?;
    Ok((l, f))
}

fn list_body(def: &ResourceDef, items: Vec<Value>, rv: u64) -> Value {
    json!({
        "apiVersion": def.api_version(),
        "kind": format!("{}List", def.kind),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    })
}

/// Serve a resource request (authorization already done).
pub fn serve(ctx: &Ctx, call: &Call<'_>) -> Response<Body> {
    match serve_inner(ctx, call) {
        Ok(r) => r,
        Err(e) => status_response(&e),
    }
}

fn serve_inner(ctx: &Ctx, call: &Call<'_>) -> Result<Response<Body>, StatusError> {
    let info = call.info;
    let def = find(&info.group, &info.version, &info.resource).ok_or_else(StatusError::no_route)?;
    // events.k8s.io/v1 Events live in the core Event storage (see `events_view`).
    let view = events_view::is_view(def);
    let gvr = if view {
        events_view::storage()
    } else {
        def.gvr()
    };
    let out = |v: Value| if view { events_view::from_core(&v) } else { v };
    let inp = |v: Value| if view { events_view::to_core(&v) } else { v };
    // Namespaced resources need a namespace for single-object verbs; cluster-scoped ones have none
    // (the `namespaces` resource carries its own name as namespace).
    let is_ns_resource = def.group.is_empty() && def.resource == "namespaces";
    if !def.namespaced && !info.namespace.is_empty() && !is_ns_resource {
        return Err(StatusError::no_route());
    }
    let single = matches!(info.verb.as_str(), "get" | "update" | "patch" | "delete");
    if def.namespaced && info.namespace.is_empty() && (single || info.verb == "create") {
        return Err(StatusError::no_route());
    }
    let ns = if def.namespaced {
        info.namespace.as_str()
    } else {
        ""
    };
    let part = match info.subresource.as_str() {
        "" => Part::Main,
        "status" if def.status => Part::Status,
        "log" if def.group.is_empty() && def.resource == "pods" && info.verb == "get" => {
            let container = param(call.query, "container");
            let log = ctx.store.pod_log(ns, &info.name, container)?;
            return Ok(text(200, &log_window(&log, call.query)?));
        }
        _ => return Err(StatusError::no_route()),
    };
    if def.serving == Kind::Review {
        if info.verb != "create" {
            return Err(StatusError::method_not_supported(
                def.group,
                def.resource,
                &info.verb,
            ));
        }
        let body = parse_body(call)?;
        let out = reviews::handle(def.kind, body, &ctx.policy, call.user)?;
        return Ok(json_response(201, &out));
    }
    match info.verb.as_str() {
        "get" => {
            let obj = out(ctx.store.get(&gvr, ns, &info.name)?);
            Ok(respond(call, def, 200, &obj))
        }
        "list" => {
            let (l, f) = selectors(call, def)?;
            let nsf =
                (!info.namespace.is_empty() && def.namespaced).then_some(info.namespace.as_str());
            let (items, rv) = ctx.store.list(&gvr, nsf);
            let items: Vec<Value> = items.into_iter().map(out).collect();
            let items: Vec<Value> = items
                .into_iter()
                .filter(|o| l.matches(o) && f.matches(o))
                .collect();
            Ok(match table_of(call) {
                Some(inc) => json_response(
                    200,
                    &table::table(def, &items, inc, Some(rv.to_string()), true),
                ),
                None => json_response(200, &list_body(def, items, rv)),
            })
        }
        "watch" => {
            let (labels, fields) = selectors(call, def)?;
            let req = WatchRequest {
                def,
                namespace: (!info.namespace.is_empty() && def.namespaced)
                    .then(|| info.namespace.clone()),
                name: (!info.name.is_empty()).then(|| info.name.clone()),
                labels,
                fields,
                table: table_of(call),
                bookmark_interval: ctx.bookmark_interval,
                storage: gvr.clone(),
                convert: view.then_some(events_view::from_core as fn(&Value) -> Value),
            };
            Ok(watch::serve(&ctx.store, req, call.query))
        }
        "create" if part == Part::Main => {
            let body = parse_body(call)?;
            let warnings =
                field_validation(call)?.check(def, &pruning::unknown_fields(def, &body))?;
            let opts = WriteOptions {
                reset_status_on_create: true,
                dry_run: dry_run(call)?,
            };
            let obj = out(ctx.store.create_in(&gvr, ns, inp(body), opts)?);
            Ok(warn(respond(call, def, 201, &obj), &warnings))
        }
        "update" => {
            let body = parse_body(call)?;
            let warnings =
                field_validation(call)?.check(def, &pruning::unknown_fields(def, &body))?;
            let opts = WriteOptions {
                dry_run: dry_run(call)?,
                ..Default::default()
            };
            let obj = ctx
                .store
                .update_in(&gvr, ns, &info.name, inp(body), part, opts)?;
            let obj = out(obj);
            Ok(warn(respond(call, def, 200, &obj), &warnings))
        }
        "patch" => {
            let ct = call.content_type.split(';').next().unwrap_or("").trim();
            let patch = match ct {
                // Strategic merge patch is applied as a JSON merge patch here (the emulator has no
                // patch-strategy metadata); list merges by key therefore replace the list.
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    let v: Value = serde_json::from_slice(call.body).map_err(|e| {
                        StatusError::bad_request(format!("error decoding patch: {e}"))
                    })?;
                    Patch::Merge(v)
                }
                "application/json-patch+json" => {
                    let p: json_patch::Patch = serde_json::from_slice(call.body)
                        .map_err(|e| StatusError::bad_request(e.to_string()))?;
                    Patch::Json(p)
                }
                other => return Err(StatusError::unsupported_media_type(other)),
            };
            let unknown = match &patch {
                Patch::Merge(v) => pruning::unknown_fields(def, v),
                Patch::Json(p) => pruning::unknown_in_json_patch(def, p),
            };
            let warnings = field_validation(call)?.check(def, &unknown)?;
            let opts = WriteOptions {
                dry_run: dry_run(call)?,
                ..Default::default()
            };
            let obj = if view {
                // Patch the converted object, then write it back with its resourceVersion as the
                // precondition.
                let mut cur = out(ctx.store.get(&gvr, ns, &info.name)?);
                match &patch {
                    Patch::Merge(p) => json_patch::merge(&mut cur, p),
                    Patch::Json(p) => json_patch::patch(&mut cur, &p.0)
                        .map_err(|e| StatusError::unprocessable(e.to_string()))?,
                }
                out(ctx
                    .store
                    .update_in(&gvr, ns, &info.name, inp(cur), part, opts)?)
            } else {
                ctx.store.patch(&gvr, ns, &info.name, &patch, part, opts)?
            };
            Ok(warn(respond(call, def, 200, &obj), &warnings))
        }
        "delete" if part == Part::Main => {
            let (opts, orphan_false) = delete_options(call)?;
            let (obj, gone) = ctx.store.delete(&gvr, ns, &info.name, &opts)?;
            let obj = out(obj);
            // `handlers/delete.go`: 200, or 202 when not deleted at once and the caller set
            // `orphanDependents: false`. Stores without `ReturnDeletedObject` answer a Status.
            let code = if !gone && orphan_false { 202 } else { 200 };
            if gone && !def.returns_deleted_object() {
                let uid = obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
                let mut details = json!({"name": info.name, "kind": def.resource, "uid": uid});
                if !def.group.is_empty() {
                    details["group"] = json!(def.group);
                }
                return Ok(json_response(
                    code,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
                ));
            }
            Ok(respond(call, def, code, &obj))
        }
        "deletecollection" if part == Part::Main => {
            let (l, f) = selectors(call, def)?;
            let (opts, _) = delete_options(call)?;
            let nsf =
                (!info.namespace.is_empty() && def.namespaced).then_some(info.namespace.as_str());
            let (items, _) = ctx.store.list(&gvr, nsf);
            let mut deleted = Vec::new();
            for o in items.into_iter().filter(|o| l.matches(o) && f.matches(o)) {
                let name = o
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let ons = o
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Ok((d, _)) = ctx.store.delete(&gvr, &ons, &name, &opts) {
                    deleted.push(out(d));
                }
            }
            Ok(json_response(
                200,
                &list_body(def, deleted, ctx.store.resource_version()),
            ))
        }
        other => Err(StatusError::method_not_supported(
            def.group,
            def.resource,
            other,
        )),
    }
}
