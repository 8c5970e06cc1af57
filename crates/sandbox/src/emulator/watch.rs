//! WATCH: newline-delimited `{"type", "object"}` events over a chunked response, from a
//! resourceVersion (410 `Expired` as an `ERROR` event when it is older than the kept history, as the
//! watch cache does), with synthetic ADDED events when no resourceVersion is given, BOOKMARKs when
//! `allowWatchBookmarks=true`, `sendInitialEvents=true` (watch-list), and `timeoutSeconds`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::http::{param, Body, BoxError};
use super::resources::{Gvr, ResourceDef};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::StatusError;
use super::store::{EventType, Store, WatchEvent};
use super::table::{self, Include};

/// What to watch and how.
pub struct WatchRequest {
    pub def: &'static ResourceDef,
    pub namespace: Option<String>,
    /// Watch one object (`fieldSelector=metadata.name=x` is the usual form; kept for `/name?watch`).
    pub name: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub table: Option<Include>,
    pub bookmark_interval: Duration,
    /// Where the objects are stored (differs from `def` for a view such as events.k8s.io).
    pub storage: Gvr,
    /// Conversion from the stored form to the served one, for a view.
    pub convert: Option<fn(&Value) -> Value>,
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

impl WatchRequest {
    fn selects(&self, obj: &Value) -> bool {
        let meta = |f: &str| {
            obj.pointer(&format!("/metadata/{f}"))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        self.namespace
            .as_deref()
            .is_none_or(|n| meta("namespace") == n)
            && self.name.as_deref().is_none_or(|n| meta("name") == n)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    fn render(&self, obj: &Value) -> Value {
        let obj = match self.convert {
            Some(f) => f(obj),
            None => obj.clone(),
        };
        match self.table {
            Some(inc) => table::table(self.def, std::slice::from_ref(&obj), inc, None, true),
            None => obj,
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": meta})
    }

    /// The event type this watcher sees for a change, if any (`cacher` `processEvent`: a
    /// modification that moves an object into or out of the selection is ADDED or DELETED).
    fn translate(&self, ev: &WatchEvent) -> Option<&'static str> {
        if ev.key.gvr != self.storage {
            return None;
        }
        let now = self.selects(&ev.object);
        match ev.kind {
            EventType::Modified => {
                let before = ev.old.as_ref().map_or(now, |o| self.selects(o));
                match (before, now) {
                    (true, true) => Some("MODIFIED"),
                    (false, true) => Some("ADDED"),
                    (true, false) => Some("DELETED"),
                    (false, false) => None,
                }
            }
            k => now.then(|| k.as_str()),
        }
    }
}

/// Start a watch and answer with its stream.
pub fn serve(store: &Arc<Store>, req: WatchRequest, query: &[(String, String)]) -> Response<Body> {
    let rv = param(query, "resourceVersion").unwrap_or("");
    let bookmarks = param(query, "allowWatchBookmarks") == Some("true");
    let send_initial = param(query, "sendInitialEvents") == Some("true");
    let timeout = param(query, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let mut first: Vec<Bytes> = Vec::new();
    let start: Result<(u64, broadcast::Receiver<Arc<WatchEvent>>), StatusError> =
        if rv.is_empty() || rv == "0" || send_initial {
            let ns = req.namespace.clone();
            let (items, cur, rx) = store.watch_now(&req.storage, ns.as_deref());
            for o in items.iter().filter(|o| req.selects(o)) {
                first.push(line("ADDED", req.render(o)));
            }
            if send_initial {
                first.push(line("BOOKMARK", req.bookmark(cur, true)));
            }
            Ok((cur, rx))
        } else {
            match rv.parse::<u64>() {
                Err(_) => Err(StatusError::bad_request(format!(
                    "invalid resource version: {rv:?}"
                ))),
                Ok(from) => store.watch_since(from).map(|(events, rx)| {
                    let mut last = from;
                    for ev in events {
                        last = last.max(ev.rv);
                        if let Some(kind) = req.translate(&ev) {
                            first.push(line(kind, req.render(&ev.object)));
                        }
                    }
                    (last, rx)
                }),
            }
        };
    let (tx, rx_body) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(64);
    match start {
        Err(e) => {
            // The watch starts, then ends with one ERROR event (cacher `newErrWatcher`).
            let _ = tx.try_send(Ok(Frame::data(line("ERROR", e.to_value()))));
        }
        Ok((mut last, mut events)) => {
            tokio::spawn(async move {
                for b in first {
                    if tx.send(Ok(Frame::data(b))).await.is_err() {
                        return;
                    }
                }
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut tick = tokio::time::interval(req.bookmark_interval);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = &mut deadline => return,
                        _ = tx.closed() => return,
                        _ = tick.tick(), if bookmarks => {
                            if tx.send(Ok(Frame::data(line("BOOKMARK", req.bookmark(last, false))))).await.is_err() {
                                return;
                            }
                        }
                        ev = events.recv() => match ev {
                            Ok(ev) => {
                                if ev.rv <= last {
                                    continue;
                                }
                                last = ev.rv;
                                if let Some(kind) = req.translate(&ev) {
                                    if tx.send(Ok(Frame::data(line(kind, req.render(&ev.object))))).await.is_err() {
                                        return;
                                    }
                                }
                            }
                            // Too slow or store gone: end the watch; the client re-watches from `last`.
                            Err(_) => return,
                        }
                    }
                }
            });
        }
    }
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx_body);
    let body: Body = StreamBody::new(stream).boxed();
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
