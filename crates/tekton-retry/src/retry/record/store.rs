//! Reads and writes [`AttemptRecord`]s and their [`history`](super::history) as ConfigMaps in the
//! server's own namespace. Why ConfigMaps there: only the server's ServiceAccount may write that
//! namespace (tenants cannot forge or revert a record, Tekton never syncs it), a ConfigMap's
//! resourceVersion fences every change (two replicas racing for one claim: one wins, the other
//! gets a conflict), it holds up to 1 MiB (the history of replaced runs and their logs), and its
//! rights can be granted in that one namespace. A Lease would fence as well but is meant for
//! small, frequently renewed state, not for archives.
//!
//! Names derive from the run's uid (`retry-<uid>`, `retry-<uid>-history`), never from anything a
//! user wrote, so a run deleted and re-created under its name starts with no record. Objects in
//! another namespace cannot own these, so the recorder deletes the records of runs that are gone.

use serde_json::{json, Map, Value};

use super::history::{self, AttemptArchive};
use super::{AttemptRecord, LastRetry};
use crate::retry::cluster::{Cluster, ClusterError, CONFIGMAPS};
use crate::tekton::ObjectView;

/// Data key of the record.
pub const RECORD_KEY: &str = "record.json";
/// Label on every ConfigMap the store writes; its value says which of the two it is.
pub const KIND_LABEL: &str = "retry.tekton.dev/record";
/// Annotation naming the run (`namespace/name`) a record is about, for people reading them.
pub const RUN_ANNOTATION: &str = "retry.tekton.dev/pipelinerun";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label selector of the records (not the histories).
pub const RECORD_SELECTOR: &str = "retry.tekton.dev/record=attempt";

/// Name of the record of the run with `uid`.
pub fn record_name(uid: &str) -> String {
    format!("retry-{uid}")
}

/// Name of the history of the run with `uid`.
pub fn history_name(uid: &str) -> String {
    format!("retry-{uid}-history")
}

/// A record as read, with the resourceVersion that fences the next change.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub record: AttemptRecord,
    pub resource_version: String,
}

/// The record ConfigMap's content as a record, if it is one.
pub fn parse(cm: &Value) -> Option<Stored> {
    let text = cm.pointer("/data/record.json")?.as_str()?;
    let record: AttemptRecord = serde_json::from_str(text).ok()?;
    let meta = ObjectView::new(cm);
    let rv = meta.resource_version()?.to_string();
    (meta.name() == record_name(&record.uid)).then_some(Stored {
        record,
        resource_version: rv,
    })
}

/// The records and histories of the server, in its namespace.
#[derive(Clone)]
pub struct RecordStore {
    cluster: Cluster,
    namespace: String,
}

impl RecordStore {
    pub fn new(cluster: Cluster, namespace: impl Into<String>) -> Self {
        RecordStore {
            cluster,
            namespace: namespace.into(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn config_map(
        &self,
        name: String,
        kind: &str,
        record: &AttemptRecord,
        data: Map<String, Value>,
    ) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {MANAGED_BY: "tekton-retry", KIND_LABEL: kind},
                "annotations": {RUN_ANNOTATION: format!("{}/{}", record.namespace, record.name)},
            },
            "data": Value::Object(data),
        })
    }

    pub(crate) fn body(&self, record: &AttemptRecord, resource_version: Option<&str>) -> Value {
        let mut data = Map::new();
        data.insert(
            RECORD_KEY.into(),
            Value::String(serde_json::to_string(record).unwrap_or_default()),
        );
        let mut cm = self.config_map(record_name(&record.uid), "attempt", record, data);
        if let Some(rv) = resource_version {
            cm["metadata"]["resourceVersion"] = json!(rv);
        }
        cm
    }

    /// The record of the run with `uid`; `None` when it was never retried.
    pub async fn get(
        &self,
        uid: &str,
        audit: Option<&str>,
    ) -> Result<Option<Stored>, ClusterError> {
        match self
            .cluster
            .get(CONFIGMAPS, &self.namespace, &record_name(uid), audit)
            .await
        {
            Ok(cm) => Ok(parse(&cm).filter(|s| s.record.uid == uid)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `record` if the stored one is still `previous` (`None`: there is none yet).
    /// A conflict means someone else wrote it first.
    pub async fn put(
        &self,
        record: &AttemptRecord,
        previous: Option<&Stored>,
        audit: Option<&str>,
    ) -> Result<Stored, ClusterError> {
        let written = match previous {
            None => {
                self.cluster
                    .create(CONFIGMAPS, &self.namespace, self.body(record, None), audit)
                    .await?
            }
            Some(p) => {
                let name = record_name(&record.uid);
                let body = self.body(record, Some(&p.resource_version));
                self.cluster
                    .replace_configmap((&self.namespace, &name), body, audit)
                    .await?
            }
        };
        Ok(Stored {
            record: record.clone(),
            resource_version: ObjectView::new(&written)
                .resource_version()
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// Applies `change` to the current record of `uid` and writes it, re-reading on conflicts.
    /// `change` returns false to write nothing. Returns the record written.
    pub async fn update(
        &self,
        uid: &str,
        audit: Option<&str>,
        mut change: impl FnMut(&mut AttemptRecord) -> bool,
    ) -> Result<Option<Stored>, ClusterError> {
        for _ in 0..8 {
            let Some(current) = self.get(uid, audit).await? else {
                return Ok(None);
            };
            let mut record = current.record.clone();
            if !change(&mut record) {
                return Ok(None);
            }
            match self.put(&record, Some(&current), audit).await {
                Ok(s) => return Ok(Some(s)),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClusterError::Conflict {
            what: format!("record {}/{}", self.namespace, record_name(uid)),
            message: "kept changing while it was written".into(),
        })
    }

    /// Every record in the namespace.
    pub async fn list(&self) -> Result<Vec<Stored>, ClusterError> {
        let items = self
            .cluster
            .list(CONFIGMAPS, &self.namespace, RECORD_SELECTOR, None)
            .await?;
        Ok(items.iter().filter_map(parse).collect())
    }

    /// Deletes the record and history of the run with `uid` (its run is gone).
    pub async fn forget(&self, uid: &str) -> Result<(), ClusterError> {
        for name in [history_name(uid), record_name(uid)] {
            match self.cluster.delete_configmap(&self.namespace, &name).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The history's data (`attempts.json`, `attempt-N.json`), empty when there is none.
    pub async fn history(
        &self,
        uid: &str,
        audit: Option<&str>,
    ) -> Result<Map<String, Value>, ClusterError> {
        match self
            .cluster
            .get(CONFIGMAPS, &self.namespace, &history_name(uid), audit)
            .await
        {
            Ok(cm) => Ok(cm
                .get("data")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()),
            Err(e) if e.is_not_found() => Ok(Map::new()),
            Err(e) => Err(e),
        }
    }

    /// Adds `archive` (the runs attempt `summary.attempt - 1` lost) and `summary` to the history of
    /// `record`'s run. Idempotent: an attempt archived by an interrupted pass is kept as it was.
    pub async fn archive(
        &self,
        record: &AttemptRecord,
        archive: &AttemptArchive,
        audit: Option<&str>,
    ) -> Result<(), ClusterError> {
        let summary = record.summary();
        // The first retry has no history yet: create it without reading first.
        let expect_new = record.retry.attempt <= 2;
        self.change_history(record, audit, expect_new, |data| {
            if data.contains_key(&history::archive_key(archive.attempt)) {
                return false;
            }
            history::add_to_history(data, archive, &summary);
            true
        })
        .await
    }

    /// Writes an attempt's summary (its end and outcome) into the history index.
    pub async fn index(
        &self,
        record: &AttemptRecord,
        audit: Option<&str>,
    ) -> Result<(), ClusterError> {
        let summary: LastRetry = record.summary();
        self.change_history(record, audit, false, |data| {
            history::set_index_entry(data, &summary)
        })
        .await
    }

    async fn change_history(
        &self,
        record: &AttemptRecord,
        audit: Option<&str>,
        expect_new: bool,
        mut change: impl FnMut(&mut Map<String, Value>) -> bool,
    ) -> Result<(), ClusterError> {
        let name = history_name(&record.uid);
        // What is known of the history before reading it: nothing, or (`expect_new`) that it
        // does not exist yet, which saves the read.
        let mut known: Option<Option<Value>> = expect_new.then_some(None);
        for _ in 0..5 {
            let existing = match known.take() {
                Some(k) => k,
                None => match self
                    .cluster
                    .get(CONFIGMAPS, &self.namespace, &name, audit)
                    .await
                {
                    Ok(cm) => Some(cm),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e),
                },
            };
            let mut data = existing
                .as_ref()
                .and_then(|cm| cm.get("data"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if !change(&mut data) {
                return Ok(());
            }
            let written = match existing {
                None => {
                    let cm = self.config_map(name.clone(), "history", record, data);
                    self.cluster
                        .create(CONFIGMAPS, &self.namespace, cm, audit)
                        .await
                }
                Some(mut cm) => {
                    cm["data"] = Value::Object(data);
                    self.cluster
                        .replace_configmap((&self.namespace, &name), cm, audit)
                        .await
                }
            };
            match written {
                Ok(_) => return Ok(()),
                // Created or changed by someone else meanwhile: read it and merge again.
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClusterError::Conflict {
            what: format!("history {}/{name}", self.namespace),
            message: "kept changing while it was written".into(),
        })
    }
}

#[cfg(test)]
mod tests;
