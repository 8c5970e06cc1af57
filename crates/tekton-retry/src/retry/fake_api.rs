//! An in-memory Kubernetes API for the engine's and executor's unit tests, reached through a real
//! `kube::Client`: objects by collection, resourceVersions and their preconditions, label and
//! field selectors, watches from a resourceVersion (and their expiry), merge patches of objects and
//! of `/status`, uid-preconditioned deletes that hold an object while it has finalizers and take
//! its dependents along, and pod logs. A test adds hooks (run before a request is served: a
//! competing write, an injected error) and a reactor (run after each write a request made: the
//! Tekton controller's answer).

mod request;
mod store;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use kube::client::Body;
use serde_json::{json, Value};

pub use request::{param, Seen};
pub use store::{status, Store};

use super::cluster::{Cluster, Resource};
use request::{parse, selects};

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

/// The collection path of `resource` in `ns`.
pub fn collection(resource: Resource, ns: &str) -> String {
    resource
        .collection_url("list", ns)
        .unwrap_or_else(|e| panic!("{e}"))
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
