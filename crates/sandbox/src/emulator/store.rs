//! The object store: `serde_json::Value` objects keyed by group/version/resource/namespace/name, with
//! kube-apiserver's write semantics (`k8s.io/apiserver/pkg/registry/generic/registry/store.go`):
//! uid, one global resourceVersion, generation, preconditions, the status subresource split
//! (`apiextensions-apiserver/pkg/registry/customresource/strategy.go` `statusStrategy`,
//! `pkg/registry/core/pod/strategy.go` `podStatusStrategy`), finalizers, deletionTimestamp, and a
//! bounded history of watch events. Garbage collection is in [`super::gc`].
//!
//! Every method is synchronous and atomic (one mutex); tests and seeding call them directly.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, Notify};

use super::pruning;
use super::resources::{find_gvr, Gvr, ResourceDef};
use super::status::StatusError;
use crate::tekton_webhook::admission;

/// Where an object lives. `namespace` is `""` for cluster-scoped objects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub gvr: Gvr,
    pub namespace: String,
    pub name: String,
}

/// Watch event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers receive it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub key: ObjKey,
    pub kind: EventType,
    pub object: Value,
    /// The object before a MODIFIED change (watchers with selectors turn a change that moves the
    /// object in or out of their selection into ADDED or DELETED, as the watch cache does).
    pub old: Option<Value>,
}

/// Events to replay and a receiver for later ones.
pub type WatchStart = (Vec<Arc<WatchEvent>>, broadcast::Receiver<Arc<WatchEvent>>);

/// Which part of an object a write targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main resource: status is kept from the stored object.
    Main,
    /// The `/status` subresource: only status (pods: status and metadata labels/annotations) changes.
    Status,
}

/// A patch body.
#[derive(Clone, Debug)]
pub enum Patch {
    /// `application/merge-patch+json` (RFC 7386). Strategic merge patch is treated the same way.
    Merge(Value),
    /// `application/json-patch+json` (RFC 6902, `test` included).
    Json(json_patch::Patch),
}

/// `DeleteOptions.propagationPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

impl Propagation {
    pub fn parse(s: &str) -> Result<Propagation, StatusError> {
        match s {
            "Orphan" => Ok(Propagation::Orphan),
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            other => Err(StatusError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

/// The parts of `metav1.DeleteOptions` the store honours.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

/// Options of a create or update.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions {
    /// Drop `status` on create as kube-apiserver does for resources with a status subresource
    /// (the HTTP path sets this; direct store calls keep the status they are given, for seeding).
    pub reset_status_on_create: bool,
    pub dry_run: bool,
}

/// Finalizer that makes an owner wait for its blocking dependents (foreground deletion).
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer that makes the garbage collector orphan the dependents.
pub const ORPHAN: &str = "orphan";

pub(crate) struct Inner {
    pub(crate) objects: BTreeMap<ObjKey, Value>,
    rv: u64,
    history: VecDeque<Arc<WatchEvent>>,
    history_cap: usize,
    /// Events with `rv <= compacted` may be missing from the history.
    compacted: u64,
    pod_logs: HashMap<(String, String, String), String>,
}

/// The store. Cheap to share (`Arc<Store>`).
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    pub(crate) gc_wakeup: Arc<Notify>,
}

/// Now, as `metav1.Time` (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .map(str::to_string)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let o = obj.as_object_mut().expect("made an object above");
    if !o.get("metadata").is_some_and(Value::is_object) {
        o.insert("metadata".into(), json!({}));
    }
    o.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("made an object above")
}

/// `metadata.finalizers` of an object.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn set_finalizers(obj: &mut Value, fins: &[String]) {
    let m = meta_mut(obj);
    if fins.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(fins));
    }
}

/// The same object minus what a write never compares (`resourceVersion`, `managedFields`).
fn comparable(obj: &Value) -> Value {
    let mut o = obj.clone();
    let m = meta_mut(&mut o);
    m.remove("resourceVersion");
    m.remove("managedFields");
    o
}

/// Everything but `metadata` and `status`: what bumps `generation` (CRD strategy `PrepareForUpdate`).
fn generation_content(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

fn generate_name(prefix: &str) -> String {
    // `k8s.io/apiserver/pkg/storage/names` `SimpleNameGenerator`: 5 characters of this alphabet.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

fn def_of(gvr: &Gvr) -> Result<&'static ResourceDef, StatusError> {
    find_gvr(gvr).ok_or_else(StatusError::no_route)
}

impl Store {
    /// An empty store keeping at most `history_cap` watch events.
    pub fn new(history_cap: usize) -> Store {
        let (events, _) = broadcast::channel(4096);
        Store {
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                rv: 1,
                history: VecDeque::new(),
                history_cap: history_cap.max(1),
                compacted: 0,
                pod_logs: HashMap::new(),
            }),
            events,
            gc_wakeup: Arc::new(Notify::new()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Forget the watch history: any watch from an older resourceVersion then gets 410 Gone.
    pub fn compact(&self) {
        let mut g = self.lock();
        g.compacted = g.rv;
        g.history.clear();
    }

    fn emit(&self, g: &mut Inner, kind: EventType, key: ObjKey, object: Value, old: Option<Value>) {
        let ev = Arc::new(WatchEvent {
            rv: g.rv,
            key,
            kind,
            object,
            old,
        });
        g.history.push_back(ev.clone());
        while g.history.len() > g.history_cap {
            if let Some(old) = g.history.pop_front() {
                g.compacted = old.rv;
            }
        }
        // No receivers is fine.
        let _ = self.events.send(ev);
        self.gc_wakeup.notify_one();
    }

    fn key(def: &ResourceDef, namespace: &str, name: &str) -> ObjKey {
        ObjKey {
            gvr: def.gvr(),
            namespace: if def.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    /// Create an object (direct call: status kept). The namespace comes from `metadata.namespace`
    /// (`default` when absent).
    pub fn create(&self, gvr: &Gvr, obj: Value) -> Result<Value, StatusError> {
        let ns = meta(&obj, "namespace").unwrap_or_else(|| "default".into());
        self.create_in(gvr, &ns, obj, WriteOptions::default())
    }

    /// Create an object in `namespace` (the HTTP POST path).
    pub fn create_in(
        &self,
        gvr: &Gvr,
        namespace: &str,
        mut obj: Value,
        opts: WriteOptions,
    ) -> Result<Value, StatusError> {
        let def = def_of(gvr)?;
        if !obj.is_object() {
            return Err(StatusError::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        if def.namespaced {
            if let Some(ns) = meta(&obj, "namespace").filter(|n| !n.is_empty()) {
                if ns != namespace {
                    return Err(StatusError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        }
        let name = match meta(&obj, "name").filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => match meta(&obj, "generateName").filter(|n| !n.is_empty()) {
                Some(prefix) => generate_name(&prefix),
                None => {
                    return Err(StatusError::invalid(
                        def.group,
                        def.kind,
                        "",
                        &[(
                            "metadata.name",
                            "Required value: name or generateName is required".into(),
                        )],
                    ))
                }
            },
        };
        let mut g = self.lock();
        let key = Self::key(def, namespace, &name);
        if g.objects.contains_key(&key) {
            return Err(StatusError::already_exists(def.group, def.resource, &name));
        }
        {
            let o = obj.as_object_mut().expect("checked above");
            o.insert("apiVersion".into(), json!(def.api_version()));
            o.insert("kind".into(), json!(def.kind));
        }
        let rv = g.rv + 1;
        {
            let m = meta_mut(&mut obj);
            m.insert("name".into(), json!(name));
            if def.namespaced {
                m.insert("namespace".into(), json!(namespace));
            } else {
                m.remove("namespace");
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            m.insert("creationTimestamp".into(), json!(now_rfc3339()));
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
            if def.generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if opts.reset_status_on_create && def.status {
            let o = obj.as_object_mut().expect("checked above");
            match (def.group, def.resource) {
                // podStrategy.PrepareForCreate: a new pod is Pending.
                ("", "pods") => {
                    o.insert(
                        "status".into(),
                        json!({"phase": "Pending", "qosClass": "BestEffort"}),
                    );
                }
                // namespaceStrategy.PrepareForCreate.
                ("", "namespaces") => {
                    o.insert("status".into(), json!({"phase": "Active"}));
                }
                ("", "persistentvolumeclaims") => {
                    o.insert("status".into(), json!({"phase": "Pending"}));
                }
                // customResourceStrategy.PrepareForCreate drops status when the subresource is on.
                _ => {
                    o.remove("status");
                }
            }
        }
        admission::set_defaults(def.group, def.resource, &mut obj);
        pruning::prune(def, &mut obj);
        admission::validate(def.group, def.resource, None, &obj)
            .map_err(StatusError::webhook_denied)?;
        if opts.dry_run {
            return Ok(obj);
        }
        g.rv = rv;
        g.objects.insert(key.clone(), obj.clone());
        self.emit(&mut g, EventType::Added, key, obj.clone(), None);
        Ok(obj)
    }

    /// Read one object.
    pub fn get(&self, gvr: &Gvr, namespace: &str, name: &str) -> Result<Value, StatusError> {
        let def = def_of(gvr)?;
        Ok(Self::stored(&self.lock(), def, namespace, name)?.1)
    }

    /// The key and current object of `namespace/name`, or kube-apiserver's 404.
    fn stored(
        g: &Inner,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
    ) -> Result<(ObjKey, Value), StatusError> {
        let key = Self::key(def, namespace, name);
        let old = g
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| StatusError::not_found(def.group, def.resource, name))?;
        Ok((key, old))
    }

    /// The objects of a collection (in one namespace, or all), sorted by namespace/name.
    fn objects_of(g: &Inner, gvr: &Gvr, namespace: Option<&str>) -> Vec<Value> {
        g.objects
            .iter()
            .filter(|(k, _)| k.gvr == *gvr && namespace.is_none_or(|n| k.namespace == n))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether an object exists.
    pub fn exists(&self, gvr: &Gvr, namespace: &str, name: &str) -> bool {
        self.get(gvr, namespace, name).is_ok()
    }

    /// All objects of a resource (in one namespace, or all), sorted by namespace/name, and the
    /// list's resourceVersion.
    pub fn list(&self, gvr: &Gvr, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let g = self.lock();
        (Self::objects_of(&g, gvr, namespace), g.rv)
    }

    /// Replace the main resource (PUT). `metadata.resourceVersion`, when set, is a precondition.
    pub fn update(&self, gvr: &Gvr, obj: Value) -> Result<Value, StatusError> {
        let ns = meta(&obj, "namespace").unwrap_or_else(|| "default".into());
        let name = meta(&obj, "name").unwrap_or_default();
        self.update_in(gvr, &ns, &name, obj, Part::Main, WriteOptions::default())
    }

    /// Replace the status subresource (PUT `/status`).
    pub fn update_status(&self, gvr: &Gvr, obj: Value) -> Result<Value, StatusError> {
        let ns = meta(&obj, "namespace").unwrap_or_else(|| "default".into());
        let name = meta(&obj, "name").unwrap_or_default();
        self.update_in(gvr, &ns, &name, obj, Part::Status, WriteOptions::default())
    }

    /// PUT of `namespace/name` (main or `/status`).
    pub fn update_in(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        new: Value,
        part: Part,
        opts: WriteOptions,
    ) -> Result<Value, StatusError> {
        self.modify(gvr, namespace, name, part, opts, |def, old| {
            if !new.is_object() {
                return Err(StatusError::bad_request(
                    "the body of the request was not a JSON object",
                ));
            }
            if let Some(n) = meta(&new, "name").filter(|n| !n.is_empty()) {
                if n != name {
                    return Err(StatusError::bad_request(
                        "the name of the object does not match the name on the URL",
                    ));
                }
            }
            // CRDs do not allow unconditional updates (customResourceStrategy.AllowUnconditionalUpdate).
            if !Self::check_resource_version(def, name, &new, old)? && def.group == "tekton.dev" {
                return Err(StatusError::invalid(
                    def.group,
                    def.kind,
                    name,
                    &[(
                        "metadata.resourceVersion",
                        "Invalid value: 0x0: must be specified for an update".into(),
                    )],
                ));
            }
            Ok(new)
        })
    }

    /// PATCH of `namespace/name` (main or `/status`). A `metadata.resourceVersion` the patch sets
    /// is a precondition, as in kube-apiserver (the patched object carries it into the update).
    pub fn patch(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        patch: &Patch,
        part: Part,
        opts: WriteOptions,
    ) -> Result<Value, StatusError> {
        self.modify(gvr, namespace, name, part, opts, |def, old| {
            let mut new = old.clone();
            match patch {
                Patch::Merge(p) => {
                    if !p.is_object() {
                        return Err(StatusError::bad_request(
                            "the body of the request was in an unknown format",
                        ));
                    }
                    json_patch::merge(&mut new, p);
                }
                Patch::Json(p) => {
                    json_patch::patch(&mut new, &p.0)
                        .map_err(|e| StatusError::unprocessable(e.to_string()))?;
                }
            }
            Self::check_resource_version(def, name, &new, old)?;
            Ok(new)
        })
    }

    /// Writes `namespace/name` (main or `/status`) as `change` makes it from the stored object.
    fn modify(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        part: Part,
        opts: WriteOptions,
        change: impl FnOnce(&ResourceDef, &Value) -> Result<Value, StatusError>,
    ) -> Result<Value, StatusError> {
        let def = def_of(gvr)?;
        let mut g = self.lock();
        let (key, old) = Self::stored(&g, def, namespace, name)?;
        let new = change(def, &old)?;
        self.write_locked(&mut g, def, key, old, new, part, opts)
    }

    /// Whether `new` names a resourceVersion (a precondition); one other than `old`'s is a
    /// conflict.
    fn check_resource_version(
        def: &ResourceDef,
        name: &str,
        new: &Value,
        old: &Value,
    ) -> Result<bool, StatusError> {
        match meta(new, "resourceVersion").filter(|r| !r.is_empty()) {
            Some(rv) if Some(&rv) != meta(old, "resourceVersion").as_ref() => {
                Err(StatusError::stale(def.group, def.resource, name))
            }
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_locked(
        &self,
        g: &mut Inner,
        def: &ResourceDef,
        key: ObjKey,
        old: Value,
        new: Value,
        part: Part,
        opts: WriteOptions,
    ) -> Result<Value, StatusError> {
        if !new.is_object() {
            // A JSON patch can replace the whole document; the result must still be an object.
            return Err(StatusError::unprocessable(
                "the patched object is not a JSON object",
            ));
        }
        let mut merged = match part {
            Part::Main => {
                let mut m = new;
                if def.status {
                    let o = m.as_object_mut().expect("objects only");
                    match old.get("status") {
                        Some(s) => o.insert("status".into(), s.clone()),
                        None => o.remove("status"),
                    };
                }
                m
            }
            Part::Status if def.group.is_empty() => {
                // podStatusStrategy.PrepareForUpdate: spec, ownerReferences and deletionTimestamp from
                // the stored pod; labels/annotations may change.
                let mut m = new;
                let o = m.as_object_mut().expect("objects only");
                match old.get("spec") {
                    Some(s) => o.insert("spec".into(), s.clone()),
                    None => o.remove("spec"),
                };
                let owners = old.pointer("/metadata/ownerReferences").cloned();
                let mm = meta_mut(&mut m);
                match owners {
                    Some(ow) => mm.insert("ownerReferences".into(), ow),
                    None => mm.remove("ownerReferences"),
                };
                m
            }
            Part::Status => {
                // CRD statusStrategy.PrepareForUpdate: the old object with only the new status.
                let mut m = old.clone();
                let o = m.as_object_mut().expect("objects only");
                match new.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
                m
            }
        };
        // Fields a client cannot change.
        {
            let o = merged.as_object_mut().expect("objects only");
            o.insert("apiVersion".into(), json!(def.api_version()));
            o.insert("kind".into(), json!(def.kind));
        }
        let om = old.get("metadata").cloned().unwrap_or(json!({}));
        {
            let m = meta_mut(&mut merged);
            for f in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match om.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
            m.remove("selfLink");
        }
        pruning::prune(def, &mut merged);
        if part == Part::Main {
            admission::set_defaults(def.group, def.resource, &mut merged);
        }
        // Tekton's validating webhook is registered for `pipelineruns` and `pipelineruns/status`
        // (knative `resourcesemantics`); on a status write it sees the stored spec, so only the
        // whole-object rules (Pending after start) can refuse it.
        admission::validate(def.group, def.resource, Some(&old), &merged)
            .map_err(StatusError::webhook_denied)?;
        // Deletion in progress: no new finalizers may be added (kube: "Forbidden: no new finalizers
        // can be added if the object is being deleted").
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            let before = finalizers(&old);
            if finalizers(&merged).iter().any(|f| !before.contains(f)) {
                return Err(StatusError::invalid(
                    def.group,
                    def.kind,
                    &key.name,
                    &[(
                        "metadata.finalizers",
                        "Forbidden: no new finalizers can be added if the object is being deleted"
                            .into(),
                    )],
                ));
            }
        }
        if def.generation && generation_content(&merged) != generation_content(&old) {
            let gen = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            meta_mut(&mut merged).insert("generation".into(), json!(gen));
        }
        if comparable(&merged) == comparable(&old) {
            // kube-apiserver skips a write that changes nothing: same resourceVersion, no event.
            return Ok(old);
        }
        if opts.dry_run {
            return Ok(merged);
        }
        g.rv += 1;
        meta_mut(&mut merged).insert("resourceVersion".into(), json!(g.rv.to_string()));
        if merged.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&merged).is_empty()
        {
            g.objects.remove(&key);
            self.emit(g, EventType::Deleted, key, merged.clone(), None);
        } else {
            g.objects.insert(key.clone(), merged.clone());
            self.emit(g, EventType::Modified, key, merged.clone(), Some(old));
        }
        Ok(merged)
    }

    /// DELETE of `namespace/name`. Returns the object and whether it is gone (`false`: it waits for
    /// finalizers, kube-apiserver answers 202 then).
    pub fn delete(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Value, bool), StatusError> {
        let def = def_of(gvr)?;
        let mut g = self.lock();
        let (key, old) = Self::stored(&g, def, namespace, name)?;
        // `metav1.Preconditions` (`storage.Preconditions.Check`).
        for (field, wanted, meta_key) in [
            ("UID", &opts.precondition_uid, "uid"),
            (
                "ResourceVersion",
                &opts.precondition_resource_version,
                "resourceVersion",
            ),
        ] {
            let actual = meta(&old, meta_key).unwrap_or_default();
            if let Some(wanted) = wanted.as_ref().filter(|w| **w != actual) {
                return Err(StatusError::conflict(
                    def.group,
                    def.resource,
                    name,
                    &format!(
                        "Precondition failed: {field} in precondition: {wanted}, {field} in object meta: {actual}"
                    ),
                ));
            }
        }
        let mut obj = old.clone();
        let mut fins = finalizers(&obj);
        // `deletionFinalizersForGarbageCollection`: an explicit policy decides the GC finalizer; with
        // none, the finalizers stay as they are (the default policy, Background, adds none).
        match opts.propagation {
            None => {}
            Some(Propagation::Orphan) => {
                fins.retain(|f| f != FOREGROUND);
                if !fins.iter().any(|f| f == ORPHAN) {
                    fins.push(ORPHAN.into());
                }
            }
            Some(Propagation::Foreground) => {
                fins.retain(|f| f != ORPHAN);
                if !fins.iter().any(|f| f == FOREGROUND) {
                    fins.push(FOREGROUND.into());
                }
            }
            Some(Propagation::Background) => fins.retain(|f| f != ORPHAN && f != FOREGROUND),
        }
        set_finalizers(&mut obj, &fins);
        if opts.dry_run {
            return Ok((obj, fins.is_empty()));
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() && fins == finalizers(&old) {
            // Already being deleted and nothing to change: no write (`BeforeDelete` pending graceful).
            return Ok((old, false));
        }
        g.rv += 1;
        let rv = g.rv.to_string();
        let gone = fins.is_empty();
        {
            let m = meta_mut(&mut obj);
            m.insert("resourceVersion".into(), json!(rv));
            if !m.contains_key("deletionTimestamp") {
                m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
        }
        if gone {
            g.objects.remove(&key);
            if def.group.is_empty() && def.resource == "namespaces" {
                // The namespace controller empties a deleted namespace; done at once here.
                let inside: Vec<ObjKey> = g
                    .objects
                    .keys()
                    .filter(|k| k.namespace == name)
                    .cloned()
                    .collect();
                for k in inside {
                    if let Some(o) = g.objects.remove(&k) {
                        g.rv += 1;
                        let mut o = o;
                        meta_mut(&mut o).insert("resourceVersion".into(), json!(g.rv.to_string()));
                        self.emit(&mut g, EventType::Deleted, k, o, None);
                    }
                }
            }
            self.emit(&mut g, EventType::Deleted, key, obj.clone(), None);
        } else {
            g.objects.insert(key.clone(), obj.clone());
            self.emit(&mut g, EventType::Modified, key, obj.clone(), Some(old));
        }
        Ok((obj, gone))
    }

    /// Set the log text of a pod's container (`None`: the default container), served by `pods/log`.
    pub fn set_pod_log(&self, namespace: &str, pod: &str, container: Option<&str>, text: &str) {
        self.lock().pod_logs.insert(
            (namespace.into(), pod.into(), container.unwrap_or("").into()),
            text.into(),
        );
    }

    /// The log of a pod's container: one set with [`Store::set_pod_log`] (for that container, or
    /// for the pod), else the pod annotation `sandbox.retry.tekton.dev/log-<container>` or
    /// `sandbox.retry.tekton.dev/log`. The container is checked like kube-apiserver's
    /// `pod.LogLocation` (`pkg/registry/core/pod/strategy.go`): required when the pod has several.
    pub fn pod_log(
        &self,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<String, StatusError> {
        let obj = self.get(&Gvr::pods(), namespace, pod)?;
        let names = |field: &str| -> Vec<String> {
            obj.pointer(&format!("/spec/{field}"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let (containers, inits) = (names("containers"), names("initContainers"));
        let c = match container.filter(|c| !c.is_empty()) {
            Some(c) => {
                if !containers.iter().chain(inits.iter()).any(|n| n == c) {
                    return Err(StatusError::bad_request(format!(
                        "container {c} is not valid for pod {pod}"
                    )));
                }
                c.to_string()
            }
            None => match containers.as_slice() {
                [one] => one.clone(),
                [] => {
                    return Err(StatusError::bad_request(format!(
                        "a container name must be specified for pod {pod}"
                    )))
                }
                many => {
                    let mut m = format!(
                        "a container name must be specified for pod {pod}, choose one of: [{}]",
                        many.join(" ")
                    );
                    if !inits.is_empty() {
                        m.push_str(&format!(
                            " or one of the init containers: [{}]",
                            inits.join(" ")
                        ));
                    }
                    return Err(StatusError::bad_request(m));
                }
            },
        };
        let g = self.lock();
        for k in [c.as_str(), ""] {
            if let Some(t) = g.pod_logs.get(&(namespace.into(), pod.into(), k.into())) {
                return Ok(t.clone());
            }
        }
        let ann = obj.pointer("/metadata/annotations");
        let by_container = ann
            .and_then(|a| a.get(format!("sandbox.retry.tekton.dev/log-{c}")))
            .and_then(Value::as_str);
        let any = ann
            .and_then(|a| a.get("sandbox.retry.tekton.dev/log"))
            .and_then(Value::as_str);
        Ok(by_container.or(any).unwrap_or("").to_string())
    }

    /// Every later change, in order (for in-process controllers such as the Tekton simulator).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.events.subscribe()
    }

    /// JSON merge patch of the main resource (status is kept; Tekton admission applies).
    pub fn merge_patch(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        patch: Value,
    ) -> Result<Value, StatusError> {
        self.patch(
            gvr,
            namespace,
            name,
            &Patch::Merge(patch),
            Part::Main,
            WriteOptions::default(),
        )
    }

    /// Events after `rv` and a receiver for later ones, atomically; 410 Gone when events after `rv`
    /// were dropped from the history (message as `storage/cacher` `watchCache.getAllEventsSince`).
    pub fn watch_since(&self, rv: u64) -> Result<WatchStart, StatusError> {
        let g = self.lock();
        if rv < g.compacted {
            return Err(StatusError::expired(format!(
                "too old resource version: {rv} ({})",
                g.compacted + 1
            )));
        }
        let events = g.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Ok((events, self.events.subscribe()))
    }

    /// The current objects of a resource and a receiver for later events, atomically (a watch with
    /// no resourceVersion starts with synthetic ADDED events for what exists).
    pub fn watch_now(
        &self,
        gvr: &Gvr,
        namespace: Option<&str>,
    ) -> (Vec<Value>, u64, broadcast::Receiver<Arc<WatchEvent>>) {
        let g = self.lock();
        (
            Self::objects_of(&g, gvr, namespace),
            g.rv,
            self.events.subscribe(),
        )
    }

    /// Remove finalizer `f` from an object (used by the garbage collector). No error if gone.
    pub(crate) fn remove_finalizer(&self, key: &ObjKey, f: &str) {
        self.edit_metadata(key, |new| {
            let mut fins = finalizers(new);
            fins.retain(|x| x != f);
            set_finalizers(new, &fins);
        });
    }

    /// A metadata-only write of the object at `key` by the garbage collector (Tekton's webhook
    /// only compares spec, so it always passes). No error if gone.
    fn edit_metadata(&self, key: &ObjKey, edit: impl FnOnce(&mut Value)) {
        let Some(def) = find_gvr(&key.gvr) else {
            return;
        };
        let mut g = self.lock();
        let Some(old) = g.objects.get(key).cloned() else {
            return;
        };
        let mut new = old.clone();
        edit(&mut new);
        let opts = WriteOptions::default();
        let _ = self.write_locked(&mut g, def, key.clone(), old, new, Part::Main, opts);
    }

    /// Drop the owner references with `uids` from an object (garbage collector). No error if gone.
    pub(crate) fn remove_owner_refs(&self, key: &ObjKey, uids: &[String]) {
        self.edit_metadata(key, |new| {
            let m = meta_mut(new);
            if let Some(Value::Array(refs)) = m.get_mut("ownerReferences") {
                refs.retain(|r| {
                    !r["uid"]
                        .as_str()
                        .is_some_and(|u| uids.iter().any(|x| x == u))
                });
            }
            let kept = m.get("ownerReferences").and_then(Value::as_array);
            if kept.is_none_or(Vec::is_empty) {
                m.remove("ownerReferences");
            }
        });
    }

    /// Snapshot of every object (for the garbage collector and tests).
    pub fn all(&self) -> Vec<(ObjKey, Value)> {
        self.lock()
            .objects
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
