//! The garbage collector, as kube-controller-manager's (`pkg/controller/garbagecollector`):
//! dependents whose owners are all gone are deleted (background), dangling owner references are
//! dropped, an owner with the `foregroundDeletion` finalizer has its dependents deleted and keeps
//! the finalizer until no dependent with `blockOwnerDeletion: true` remains, and an owner with the
//! `orphan` finalizer has its owner references removed from its dependents first.
//! It runs asynchronously, woken by every write, like the real one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::store::{finalizers, DeleteOptions, ObjKey, Propagation, Store, FOREGROUND, ORPHAN};

struct Owned {
    key: ObjKey,
    refs: Vec<(String, bool)>,
    deleting: bool,
}

fn owner_refs(obj: &Value) -> Vec<(String, bool)> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let uid = r["uid"].as_str()?.to_string();
                    Some((uid, r["blockOwnerDeletion"].as_bool().unwrap_or(false)))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One pass over the store. Returns whether anything changed (run again until it does not).
pub fn pass(store: &Store) -> bool {
    let all = store.all();
    let mut by_uid: HashMap<String, (ObjKey, Vec<String>, bool)> = HashMap::new();
    let mut owned: Vec<Owned> = Vec::new();
    for (k, v) in &all {
        let deleting = v.pointer("/metadata/deletionTimestamp").is_some();
        if let Some(uid) = v.pointer("/metadata/uid").and_then(Value::as_str) {
            by_uid.insert(uid.to_string(), (k.clone(), finalizers(v), deleting));
        }
        let refs = owner_refs(v);
        if !refs.is_empty() {
            owned.push(Owned {
                key: k.clone(),
                refs,
                deleting,
            });
        }
    }
    let mut changed = false;
    // Owners waiting on their dependents.
    for (uid, (key, fins, deleting)) in &by_uid {
        if !deleting {
            continue;
        }
        let deps: Vec<&Owned> = owned
            .iter()
            .filter(|o| o.refs.iter().any(|(u, _)| u == uid))
            .collect();
        if fins.iter().any(|f| f == ORPHAN) {
            for d in &deps {
                store.remove_owner_refs(&d.key, std::slice::from_ref(uid));
            }
            store.remove_finalizer(key, ORPHAN);
            changed = true;
            continue;
        }
        if fins.iter().any(|f| f == FOREGROUND) {
            for d in deps.iter().filter(|d| !d.deleting) {
                let opts = DeleteOptions {
                    propagation: Some(Propagation::Foreground),
                    ..Default::default()
                };
                let _ = store.delete(&d.key.gvr, &d.key.namespace, &d.key.name, &opts);
                changed = true;
            }
            let blocking = deps
                .iter()
                .any(|d| d.refs.iter().any(|(u, block)| u == uid && *block));
            if !blocking {
                store.remove_finalizer(key, FOREGROUND);
                changed = true;
            }
        }
    }
    // Dependents whose owners are gone.
    for d in &owned {
        let absent: Vec<String> = d
            .refs
            .iter()
            .filter(|(u, _)| !by_uid.contains_key(u))
            .map(|(u, _)| u.clone())
            .collect();
        if absent.is_empty() {
            continue;
        }
        if absent.len() == d.refs.len() {
            if !d.deleting {
                let _ = store.delete(
                    &d.key.gvr,
                    &d.key.namespace,
                    &d.key.name,
                    &DeleteOptions::default(),
                );
                changed = true;
            }
        } else {
            store.remove_owner_refs(&d.key, &absent);
            changed = true;
        }
    }
    changed
}

/// Run the collector until the store is dropped: after each wake-up, wait `delay` (the real
/// collector reacts within a few hundred ms), then pass until nothing changes.
pub fn spawn(store: Arc<Store>, delay: Duration) -> tokio::task::JoinHandle<()> {
    let wake = store.gc_wakeup.clone();
    let weak = Arc::downgrade(&store);
    drop(store);
    tokio::spawn(async move {
        loop {
            wake.notified().await;
            tokio::time::sleep(delay).await;
            let Some(store) = weak.upgrade() else { return };
            for _ in 0..100 {
                if !pass(&store) {
                    break;
                }
            }
        }
    })
}
