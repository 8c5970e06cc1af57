//! An in-memory Kubernetes API for the engine's and executor's unit tests, reached through a real
//! `kube::Client`: objects by collection, resourceVersions and their preconditions, label and
//! field selectors, watches from a resourceVersion (and their expiry), merge patches of objects and
//! of `/status`, uid-preconditioned deletes that hold an object while it has finalizers and take
//! its dependents along, and pod logs. A test adds hooks (run before a request is served: a
//! competing write, an injected error) and a reactor (run after each write a request made: the
//! Tekton controller's answer).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use kube::client::Body;
use serde_json::{json, Value};

use super::cluster::{Cluster, Resource};

/// A request as a hook sees it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// get, list, watch, create, update, patch, delete.
    pub verb: &'static str,
    /// The collection's path (`/apis/tekton.dev/v1/namespaces/ns/pipelineruns`).
    pub collection: String,
    pub name: String,
    /// The subresource (`status`, `log`), or empty.
    pub sub: String,
    pub query: String,
    pub body: Option<Value>,
}

impl Seen {
    /// What a patch changes: its top-level fields, `metadata` only when it changes more than the
    /// resourceVersion it is fenced by (`spec`, `status`, `metadata+spec`).
    pub fn patched(&self) -> String {
        let Some(body) = self.body.as_ref().and_then(Value::as_object) else {
            return String::new();
        };
        let fenced_only = |v: &Value| {
            v.as_object()
                .is_some_and(|m| m.keys().all(|k| k == "resourceVersion"))
        };
        let keys = body
            .iter()
            .filter(|(k, v)| *k != "metadata" || !fenced_only(v));
        keys.map(|(k, _)| k.as_str()).collect::<Vec<_>>().join("+")
    }

    /// `verb plural[/sub] [name]`, as [`Store::requests`] lists it.
    pub fn line(&self) -> String {
        let plural = self.collection.rsplit('/').next().unwrap_or_default();
        let sub = match self.sub.as_str() {
            "" => String::new(),
            s => format!("/{s}"),
        };
        format!("{} {plural}{sub} {}", self.verb, self.name)
            .trim_end()
            .to_string()
    }
}

/// Runs before a request is served; may change the store or answer in its place.
pub type Hook = Box<dyn FnMut(&mut Store, &Seen) -> Option<(u16, Value)> + Send>;
/// Runs after a write a request made, with the object as written (not after its own writes).
pub type Reactor = Box<dyn FnMut(&mut Store, &Seen, &Value) + Send>;

/// One change, as a watch reports it.
#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    collection: String,
    kind: &'static str,
    object: Value,
}

/// The objects and everything that happened to them.
#[derive(Default)]
pub struct Store {
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    rv: u64,
    changes: Vec<Change>,
    /// Watches asked to start before this resourceVersion get 410 Gone.
    compacted: u64,
    /// The next watch opened gets this error event (and ends).
    watch_error: Option<u16>,
    /// Open watches end when this changes.
    watch_generation: u64,
    /// The resourceVersion each watch was opened from, in order.
    pub watched_from: Vec<String>,
    /// Every request served, as [`Seen::line`].
    pub requests: Vec<String>,
    /// Every write asked for, with its body and the status code it was answered.
    pub written: Vec<(Seen, u16)>,
    /// Container logs by `pod/container`.
    pub logs: BTreeMap<String, String>,
    hooks: Vec<Hook>,
    reactor: Option<Reactor>,
}

impl Store {
    /// Stores `obj` in `collection` as new (a uid is given when it has none).
    pub fn insert(&mut self, collection: &str, mut obj: Value) -> Value {
        if obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .is_none()
        {
            obj["metadata"]["uid"] = json!(format!("uid-{}", self.rv + 1));
        }
        self.commit(collection, "ADDED", obj)
    }

    /// The object `name` of `collection`.
    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        self.objects.get(collection)?.get(name).cloned()
    }

    /// The objects of `collection`, by name.
    pub fn all(&self, collection: &str) -> Vec<Value> {
        self.objects
            .get(collection)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Changes the object `name` (as its controller or a user would); an object being deleted
    /// whose finalizers are gone is removed.
    pub fn modify(&mut self, collection: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let Some(mut obj) = self.get(collection, name) else {
            return;
        };
        change(&mut obj);
        let finalized = obj.pointer("/metadata/deletionTimestamp").is_some()
            && obj["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
        if finalized {
            self.remove(collection, name);
        } else {
            self.commit(collection, "MODIFIED", obj);
        }
    }

    /// Deletes `name` at once, and every object it owns.
    pub fn remove(&mut self, collection: &str, name: &str) {
        let Some(obj) = self
            .objects
            .get_mut(collection)
            .and_then(|m| m.remove(name))
        else {
            return;
        };
        let uid = obj["metadata"]["uid"].clone();
        self.commit_change(collection, "DELETED", obj);
        let owned: Vec<(String, String)> = self
            .objects
            .iter()
            .flat_map(|(c, m)| m.values().map(move |o| (c, o)))
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .map(|(c, o)| (c.clone(), name_of(o)))
            .collect();
        for (c, n) in owned {
            self.remove(&c, &n);
        }
    }

    /// Expires every watch position up to now: a watch from an older resourceVersion gets 410.
    pub fn compact(&mut self) {
        self.compacted = self.rv + 1;
    }

    /// The next watch opened gets an ERROR event with `code` and ends.
    pub fn fail_next_watch(&mut self, code: u16) {
        self.watch_error = Some(code);
    }

    /// Ends every open watch (as kube-apiserver does when a watch times out).
    pub fn close_watches(&mut self) {
        self.watch_generation += 1;
    }

    /// Adds a hook, run before each request from now on.
    pub fn hook(&mut self, hook: Hook) {
        self.hooks.push(hook);
    }

    /// Answers the next request whose line starts with `prefix` with the error `code`.
    pub fn fail_next(&mut self, prefix: &str, code: u16) {
        let (prefix, mut armed) = (prefix.to_string(), true);
        self.hook(Box::new(move |_, seen| {
            if armed && seen.line().starts_with(&prefix) {
                armed = false;
                return Some(status(code, "Injected", "injected by the test"));
            }
            None
        }));
    }

    /// Runs `change` just before the next request whose line starts with `prefix` is served.
    pub fn before_next(&mut self, prefix: &str, change: impl FnOnce(&mut Store) + Send + 'static) {
        let (prefix, mut change) = (prefix.to_string(), Some(change));
        self.hook(Box::new(move |store, seen| {
            if seen.line().starts_with(&prefix) {
                if let Some(change) = change.take() {
                    change(store);
                }
            }
            None
        }));
    }

    /// The requests served so far that write (create, update, patch, delete).
    pub fn writes(&self) -> Vec<String> {
        let verbs = ["create ", "update ", "patch ", "delete "];
        let lines = self.requests.iter();
        lines
            .filter(|r| verbs.iter().any(|v| r.starts_with(v)))
            .cloned()
            .collect()
    }

    /// Sets the reactor.
    pub fn react(&mut self, reactor: Reactor) {
        self.reactor = Some(reactor);
    }

    /// The requests served so far whose line starts with `prefix`.
    pub fn requests_like(&self, prefix: &str) -> Vec<String> {
        let lines = self.requests.iter().filter(|r| r.starts_with(prefix));
        lines.cloned().collect()
    }

    fn commit(&mut self, collection: &str, kind: &'static str, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        if obj.pointer("/metadata/creationTimestamp").is_none() {
            obj["metadata"]["creationTimestamp"] =
                json!(crate::tekton::format_time(chrono::Utc::now()));
        }
        self.objects
            .entry(collection.to_string())
            .or_default()
            .insert(name_of(&obj), obj.clone());
        self.changes.push(Change {
            rv: self.rv,
            collection: collection.to_string(),
            kind,
            object: obj.clone(),
        });
        obj
    }

    fn commit_change(&mut self, collection: &str, kind: &'static str, mut obj: Value) {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.changes.push(Change {
            rv: self.rv,
            collection: collection.to_string(),
            kind,
            object: obj,
        });
    }

    fn serve(&mut self, seen: &Seen) -> (u16, Value) {
        let (c, name) = (seen.collection.as_str(), seen.name.as_str());
        match (seen.verb, seen.body.clone()) {
            ("get", _) => match self.get(c, name) {
                Some(o) => (200, o),
                None => not_found(c, name),
            },
            ("list", _) => {
                let labels = param(&seen.query, "labelSelector");
                let items: Vec<Value> = self
                    .all(c)
                    .into_iter()
                    .filter(|o| selects(o, &labels, ""))
                    .collect();
                let meta = json!({"resourceVersion": self.rv.to_string()});
                (
                    200,
                    json!({"kind": "List", "metadata": meta, "items": items}),
                )
            }
            ("create", Some(mut obj)) => {
                if let Some(prefix) = obj
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                {
                    obj["metadata"]["name"] = json!(format!("{prefix}{}", self.rv + 1));
                }
                let name = name_of(&obj);
                if self.get(c, &name).is_some() {
                    return status(409, "AlreadyExists", &format!("{name} already exists"));
                }
                (201, self.insert(c, obj))
            }
            ("update", Some(obj)) => {
                let Some(old) = self.get(c, name) else {
                    return not_found(c, name);
                };
                if let Some(refusal) = precondition(&old, &obj) {
                    return refusal;
                }
                (200, self.commit(c, "MODIFIED", obj))
            }
            ("patch", Some(patch)) => self.patch(seen, patch),
            ("delete", body) => self.delete(c, name, body),
            _ => status(405, "MethodNotAllowed", "not served by the in-memory API"),
        }
    }

    fn patch(&mut self, seen: &Seen, patch: Value) -> (u16, Value) {
        let (c, name) = (seen.collection.as_str(), seen.name.as_str());
        let Some(old) = self.get(c, name) else {
            return not_found(c, name);
        };
        let precondition = precondition(&old, &patch);
        let mut new = old.clone();
        let mut patch = patch;
        if let Some(meta) = patch["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        // The status subresource writes only the status; the object ignores a status.
        if seen.sub == "status" {
            patch = json!({"status": patch["status"].clone()});
        } else if let Some(p) = patch.as_object_mut() {
            p.remove("status");
        }
        json_patch::merge(&mut new, &patch);
        // Tekton's webhook: no spec change once a PipelineRun is done. Admission sees the patch
        // applied to the current object, before the resourceVersion is compared: a write fenced
        // at an older version of a run done since is refused 400, not 409.
        if c.ends_with("/pipelineruns") && new["spec"] != old["spec"] && is_done(&old) {
            return status(400, "BadRequest", "invalid input for PipelineRun.Spec: Once the PipelineRun is complete, no updates are allowed");
        }
        if let Some(refusal) = precondition {
            return refusal;
        }
        if new == old {
            return (200, old);
        }
        (200, self.commit(c, "MODIFIED", new))
    }

    fn delete(&mut self, c: &str, name: &str, options: Option<Value>) -> (u16, Value) {
        let Some(mut obj) = self.get(c, name) else {
            return not_found(c, name);
        };
        let wanted = options
            .as_ref()
            .and_then(|o| o.pointer("/preconditions/uid"))
            .cloned();
        if wanted.is_some_and(|w| w != obj["metadata"]["uid"]) {
            return status(409, "Conflict", "Precondition failed: UID in precondition");
        }
        let held = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if !held {
            self.remove(c, name);
        } else if obj.pointer("/metadata/deletionTimestamp").is_none() {
            obj["metadata"]["deletionTimestamp"] =
                json!(crate::tekton::format_time(chrono::Utc::now()));
            self.commit(c, "MODIFIED", obj);
        }
        (
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        )
    }

    /// The changes a watch of `seen` reports after `after` (or the error that ends it).
    fn changes_after(&self, seen: &Seen, after: u64) -> Vec<(u64, Value)> {
        let (labels, fields) = (
            param(&seen.query, "labelSelector"),
            param(&seen.query, "fieldSelector"),
        );
        let changes = self.changes.iter().filter(|ch| ch.rv > after);
        changes
            .filter(|ch| ch.collection == seen.collection && selects(&ch.object, &labels, &fields))
            .map(|ch| (ch.rv, json!({"type": ch.kind, "object": ch.object})))
            .collect()
    }
}

/// The in-memory API and a [`Cluster`] that reaches it.
#[derive(Clone)]
pub struct FakeApi {
    store: Arc<Mutex<Store>>,
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

type AnyBody = UnsyncBoxBody<Bytes, Infallible>;

impl FakeApi {
    pub fn new() -> Self {
        FakeApi {
            store: Arc::new(Mutex::new(Store::default())),
            changed: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    /// The store, to look into or change (a change made here is seen by open watches).
    pub fn store(&self) -> StoreGuard<'_> {
        StoreGuard {
            guard: self.store.lock().expect("store"),
            changed: &self.changed,
        }
    }

    /// A client of this API (no RBAC: every request is served).
    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.answer(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    /// A [`Cluster`] over [`FakeApi::client`].
    pub fn cluster(&self) -> Cluster {
        Cluster::new(self.client())
    }

    /// An API holding the objects a real Tekton cluster recorded at the moments of `scenario`
    /// whose files start with one of `moments` (`tests/fixtures/tekton/<scenario>/<moment>-*.json`).
    pub fn with_fixture(scenario: &str, moments: &[&str]) -> Self {
        let api = Self::new();
        api.load(scenario, moments, None);
        api
    }

    /// Stores the objects of `scenario` at `moments`, in namespace `into` if given.
    pub fn load(&self, scenario: &str, moments: &[&str], into: Option<&str>) {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/tekton")
            .join(scenario);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string());
                let name = name.unwrap_or_default();
                name.ends_with(".json")
                    && moments.iter().any(|m| name.starts_with(&format!("{m}-")))
            })
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            let mut obj: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            if let Some(ns) = into {
                obj["metadata"]["namespace"] = json!(ns);
                // A copy: its own uid.
                if let Some(meta) = obj["metadata"].as_object_mut() {
                    meta.remove("uid");
                }
            }
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            let resource = match obj["kind"].as_str().unwrap_or_default() {
                "PipelineRun" => super::cluster::PIPELINERUNS,
                "TaskRun" => super::cluster::TASKRUNS,
                "Pipeline" => super::cluster::PIPELINES,
                "Task" => super::cluster::TASKS,
                "Pod" => super::cluster::PODS,
                "ConfigMap" => super::cluster::CONFIGMAPS,
                other => panic!("{}: no collection for kind {other}", path.display()),
            };
            let path = collection(resource, &ns);
            self.store().insert(&path, obj);
        }
    }

    async fn answer(&self, req: Request<Body>) -> Response<AnyBody> {
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let seen = match parse(&parts.method, parts.uri.path(), query, &bytes) {
            Some(seen) => seen,
            None => return json_response(status(404, "NotFound", "no such path")),
        };
        let mut store = self.store();
        store.requests.push(seen.line());
        let writes = !matches!(seen.verb, "get" | "list" | "watch");
        let mut hooks = std::mem::take(&mut store.hooks);
        let injected = hooks.iter_mut().find_map(|h| h(&mut store, &seen));
        hooks.append(&mut store.hooks);
        store.hooks = hooks;
        if let Some(answer) = injected {
            if writes {
                store.written.push((seen, answer.0));
            }
            return json_response(answer);
        }
        if seen.verb == "watch" {
            return self.watch(&mut store, seen);
        }
        if seen.sub == "log" {
            return log_response(&store, &seen);
        }
        let (code, obj) = store.serve(&seen);
        if writes {
            store.written.push((seen.clone(), code));
        }
        if code < 300 && writes {
            if let Some(mut react) = store.reactor.take() {
                react(&mut store, &seen, &obj);
                store.reactor.get_or_insert(react);
            }
        }
        json_response((code, obj))
    }

    fn watch(&self, store: &mut Store, seen: Seen) -> Response<AnyBody> {
        let from = param(&seen.query, "resourceVersion");
        store.watched_from.push(from.clone());
        let mut after: u64 = from.parse().unwrap_or(0);
        let mut first: Vec<Value> = Vec::new();
        if let Some(code) = store.watch_error.take() {
            let error = status(code, "Injected", "injected by the test").1;
            first.push(json!({"type": "ERROR", "object": error}));
            return stream_response(futures::stream::iter(first.into_iter().map(line)).boxed());
        }
        if from.is_empty() {
            // The current state first, as ADDED events.
            let (labels, fields) = (
                param(&seen.query, "labelSelector"),
                param(&seen.query, "fieldSelector"),
            );
            first = store
                .all(&seen.collection)
                .into_iter()
                .filter(|o| selects(o, &labels, &fields))
                .map(|o| json!({"type": "ADDED", "object": o}))
                .collect();
            after = store.rv;
        } else if after < store.compacted {
            first.push(json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version").1}));
            return stream_response(futures::stream::iter(first.into_iter().map(line)).boxed());
        }
        let api = self.clone();
        let rx = self.changed.subscribe();
        let generation = store.watch_generation;
        let rest = futures::stream::unfold((after, rx), move |(after, mut rx)| {
            let (api, seen) = (api.clone(), seen.clone());
            async move {
                loop {
                    let (next, open) = {
                        let store = api.store.lock().expect("store");
                        let next = store.changes_after(&seen, after).into_iter().next();
                        (next, store.watch_generation == generation)
                    };
                    if !open {
                        return None;
                    }
                    if let Some((rv, event)) = next {
                        return Some((line(event), (rv, rx)));
                    }
                    rx.changed().await.ok()?;
                }
            }
        });
        let events = futures::stream::iter(first.into_iter().map(line)).chain(rest);
        stream_response(events.boxed())
    }
}

impl Default for FakeApi {
    fn default() -> Self {
        Self::new()
    }
}

/// The store, locked; open watches hear of changes made through it when it is dropped.
pub struct StoreGuard<'a> {
    guard: MutexGuard<'a, Store>,
    changed: &'a tokio::sync::watch::Sender<u64>,
}

impl std::ops::Deref for StoreGuard<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.guard
    }
}

impl std::ops::DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.guard
    }
}

impl Drop for StoreGuard<'_> {
    fn drop(&mut self) {
        let rv = self.guard.rv;
        self.changed.send_replace(rv);
    }
}

use futures::StreamExt;

/// The collection path of `resource` in `ns`.
pub fn collection(resource: Resource, ns: &str) -> String {
    resource
        .collection_url("list", ns)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn parse(method: &Method, path: &str, query: String, body: &[u8]) -> Option<Seen> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let at = segments.iter().position(|s| *s == "namespaces")?;
    let collection = format!("/{}", segments.get(..at + 3)?.join("/"));
    let name = segments.get(at + 3).unwrap_or(&"").to_string();
    let sub = segments.get(at + 4).unwrap_or(&"").to_string();
    let watching = param(&query, "watch") == "true";
    let verb = match (method.as_str(), name.is_empty()) {
        ("GET", true) if watching => "watch",
        ("GET", true) => "list",
        ("GET", false) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        _ => return None,
    };
    Some(Seen {
        verb,
        collection,
        name,
        sub,
        query,
        body: serde_json::from_slice(body).ok(),
    })
}

/// The decoded value of `key` in a query string (empty when absent).
pub fn param(query: &str, key: &str) -> String {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .to_string()
        })
        .unwrap_or_default()
}

/// Whether `obj` matches a label selector (`k=v`, `k in (a,b)`, comma-separated) and a field
/// selector (`metadata.name=x`).
fn selects(obj: &Value, labels: &str, fields: &str) -> bool {
    let label = |k: &str| {
        obj["metadata"]["labels"][k.trim()]
            .as_str()
            .map(str::to_string)
    };
    let labels_match = split_terms(labels).iter().all(|term| {
        if let Some((k, set)) = term.split_once(" in ") {
            let set = set.trim().trim_start_matches('(').trim_end_matches(')');
            label(k).is_some_and(|v| set.split(',').any(|s| s.trim() == v))
        } else if let Some((k, v)) = term.split_once('=') {
            label(k).as_deref() == Some(v.trim())
        } else {
            label(term).is_some()
        }
    });
    let fields_match =
        fields
            .split(',')
            .filter(|t| !t.is_empty())
            .all(|t| match t.split_once('=') {
                Some(("metadata.name", v)) => name_of(obj) == v,
                _ => false,
            });
    labels_match && fields_match
}

/// Splits a label selector at the commas outside parentheses.
fn split_terms(selector: &str) -> Vec<String> {
    let (mut terms, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for ch in selector.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    terms.push(current);
    terms.into_iter().filter(|t| !t.trim().is_empty()).collect()
}

fn precondition(old: &Value, new: &Value) -> Option<(u16, Value)> {
    let wanted = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)?;
    (!wanted.is_empty() && Some(wanted) != old["metadata"]["resourceVersion"].as_str()).then(|| {
        status(
            409,
            "Conflict",
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    })
}

fn is_done(obj: &Value) -> bool {
    crate::tekton::ObjectView::new(obj).is_done()
}

fn name_of(obj: &Value) -> String {
    obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A `metav1.Status` failure.
pub fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "code": code, "reason": reason, "message": message});
    (code, body)
}

fn not_found(collection: &str, name: &str) -> (u16, Value) {
    let plural = collection.rsplit('/').next().unwrap_or_default();
    status(404, "NotFound", &format!("{plural} \"{name}\" not found"))
}

fn line(event: Value) -> Result<Frame<Bytes>, Infallible> {
    Ok(Frame::data(Bytes::from(format!("{event}\n"))))
}

fn json_response((code, body): (u16, Value)) -> Response<AnyBody> {
    let body = Full::new(Bytes::from(body.to_string())).boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn stream_response(
    events: futures::stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>,
) -> Response<AnyBody> {
    Response::new(BodyExt::boxed_unsync(StreamBody::new(events)))
}

fn log_response(store: &Store, seen: &Seen) -> Response<AnyBody> {
    let container = param(&seen.query, "container");
    let text = store
        .logs
        .get(&format!("{}/{container}", seen.name))
        .cloned()
        .unwrap_or_default();
    let lines: usize = param(&seen.query, "tailLines")
        .parse()
        .unwrap_or(usize::MAX);
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    Response::new(Full::new(Bytes::from(tail)).boxed_unsync())
}
