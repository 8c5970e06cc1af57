//! The objects of the in-memory API and everything that happened to them: writes with
//! Kubernetes' preconditions and deletion rules, the change log watches read, hooks and the
//! reactor.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::request::{name_of, param, selects, Seen};

/// Runs before a request is served; may change the store or answer in its place.
pub type Hook = Box<dyn FnMut(&mut Store, &Seen) -> Option<(u16, Value)> + Send>;
/// Runs after a write a request made, with the object as written (not after its own writes).
pub type Reactor = Box<dyn FnMut(&mut Store, &Seen, &Value) + Send>;

/// One change, as a watch reports it.
#[derive(Clone, Debug)]
struct Change {
    pub(super) rv: u64,
    collection: String,
    kind: &'static str,
    object: Value,
}

/// The objects and everything that happened to them.
#[derive(Default)]
pub struct Store {
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    pub(super) rv: u64,
    changes: Vec<Change>,
    /// Watches asked to start before this resourceVersion get 410 Gone.
    pub(super) compacted: u64,
    /// The next watch opened gets this error event (and ends).
    pub(super) watch_error: Option<u16>,
    /// Open watches end when this changes.
    pub(super) watch_generation: u64,
    /// The resourceVersion each watch was opened from, in order.
    pub watched_from: Vec<String>,
    /// Every request served, as [`Seen::line`].
    pub requests: Vec<String>,
    /// Every write asked for, with its body and the status code it was answered.
    pub written: Vec<(Seen, u16)>,
    /// Container logs by `pod/container`.
    pub logs: BTreeMap<String, String>,
    pub(super) hooks: Vec<Hook>,
    pub(super) reactor: Option<Reactor>,
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

    pub(super) fn serve(&mut self, seen: &Seen) -> (u16, Value) {
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
        if c.ends_with("/pipelineruns") {
            if let Some(refusal) = pipelinerun_spec_update(&old, &new) {
                return refusal;
            }
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
    pub(super) fn changes_after(&self, seen: &Seen, after: u64) -> Vec<(u64, Value)> {
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

/// Tekton's webhook on a PipelineRun update (pkg/apis/pipeline/v1/pipelinerun_validation.go
/// `PipelineRunSpec.ValidateUpdate`): no spec change once the run is done, and only
/// `spec.status` may change while it runs; the message as a real cluster answered it (fixture
/// cancelled/03-clear-spec-while-done.error.txt). Admission sees the patch applied to the current
/// object, before the resourceVersion is compared: a write fenced at an older version of a run
/// done since is refused 400, not 409.
fn pipelinerun_spec_update(old: &Value, new: &Value) -> Option<(u16, Value)> {
    let (mut was, now) = (old["spec"].clone(), &new["spec"]);
    let tip = if is_done(old) {
        "Once the PipelineRun is complete, no updates are allowed"
    } else {
        was["status"] = now["status"].clone();
        if now.get("status").is_none() {
            if let Some(spec) = was.as_object_mut() {
                spec.remove("status");
            }
        }
        "Once the PipelineRun has started, only status updates are allowed"
    };
    (was != *now).then(|| {
        let message = format!("admission webhook \"validation.webhook.pipeline.tekton.dev\" denied the request: validation failed: invalid value: {tip}: spec");
        status(400, "BadRequest", &message)
    })
}

fn is_done(obj: &Value) -> bool {
    crate::tekton::ObjectView::new(obj).is_done()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_rule_allows_only_spec_status_while_running_and_nothing_once_done() {
        let run = |done: bool, spec: Value| {
            let status = if done { "False" } else { "Unknown" };
            json!({"spec": spec, "status": {"conditions": [{"type": "Succeeded", "status": status}]}})
        };
        let cancelled = json!({"pipelineRef": {"name": "p"}, "status": "Cancelled"});
        let cleared = json!({"pipelineRef": {"name": "p"}});
        let other = json!({"pipelineRef": {"name": "q"}, "status": "Cancelled"});
        assert!(pipelinerun_spec_update(
            &run(false, cancelled.clone()),
            &run(false, cleared.clone())
        )
        .is_none());
        assert!(pipelinerun_spec_update(
            &run(false, cleared.clone()),
            &run(false, cancelled.clone())
        )
        .is_none());
        assert!(
            pipelinerun_spec_update(&run(false, cancelled.clone()), &run(false, other)).is_some()
        );
        let refused = pipelinerun_spec_update(&run(true, cancelled.clone()), &run(true, cleared));
        let (code, body) = refused.expect("refused");
        assert_eq!(code, 400);
        assert!(body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Once the PipelineRun is complete"));
        assert!(
            pipelinerun_spec_update(&run(true, cancelled.clone()), &run(true, cancelled)).is_none()
        );
    }
}
