//! What `--follow` watches: the run and its TaskRuns, kept current as `kubectl get -w` does — a
//! list, then a watch from the list's resourceVersion; a watch that ends is opened again from the
//! last resourceVersion seen, and one the server expired (410 Gone) starts over from a list.
//! Servers that cannot watch (the answer is not a watch stream) are read again every
//! [`POLL_FALLBACK`] instead.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::core::WatchEvent;
use serde_json::Value;

use crate::client::{Cluster, EventStream};
use crate::errors::Failure;
use crate::request;
use tekton_retry::tekton::ObjectView;

/// How often a server that cannot watch is read again.
pub const POLL_FALLBACK: Duration = Duration::from_millis(500);

/// The run and its TaskRuns as last seen.
pub struct Followed<'c> {
    cluster: &'c Cluster,
    namespace: String,
    name: String,
    pub run: Value,
    /// uid → TaskRun.
    taskruns: BTreeMap<String, Value>,
    run_rv: String,
    taskruns_rv: String,
    run_events: Option<EventStream>,
    taskrun_events: Option<EventStream>,
    /// The server answered a watch with something else: read again instead.
    polling: bool,
}

fn uid(v: &Value) -> String {
    ObjectView::new(v).uid().to_string()
}

fn rv(v: &Value) -> String {
    ObjectView::new(v)
        .resource_version()
        .unwrap_or_default()
        .to_string()
}

impl<'c> Followed<'c> {
    /// Reads the run and its TaskRuns.
    pub async fn read(cluster: &'c Cluster, namespace: &str, name: &str) -> Result<Self, Failure> {
        let mut f = Followed {
            cluster,
            namespace: namespace.to_string(),
            name: name.to_string(),
            run: Value::Null,
            taskruns: BTreeMap::new(),
            run_rv: String::new(),
            taskruns_rv: String::new(),
            run_events: None,
            taskrun_events: None,
            polling: false,
        };
        f.relist().await?;
        Ok(f)
    }

    async fn relist(&mut self) -> Result<(), Failure> {
        self.run = self
            .cluster
            .pipelinerun(&self.namespace, &self.name)
            .await?;
        self.run_rv = rv(&self.run);
        let list = self
            .cluster
            .get(&request::taskruns_path(&self.namespace, &self.name))
            .await?
            .unwrap_or(Value::Null);
        self.taskruns_rv = rv(&list);
        self.taskruns = list
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| (uid(t), t.clone()))
            .collect();
        self.run_events = None;
        self.taskrun_events = None;
        Ok(())
    }

    pub fn taskruns(&self) -> Vec<Value> {
        self.taskruns.values().cloned().collect()
    }

    /// Waits until something changed, or `tick` passed (so running durations can be redrawn).
    pub async fn changed(&mut self, tick: Duration) -> Result<(), Failure> {
        if self.polling {
            tokio::time::sleep(POLL_FALLBACK.min(tick)).await;
            return self.relist().await;
        }
        if self.run_events.is_none() {
            let path = request::watch_path(
                &request::pipelinerun_collection_path(&self.namespace),
                &format!("metadata.name={}", self.name),
                "",
                &self.run_rv,
            );
            self.run_events = self.cluster.watch(&path).await;
        }
        if self.taskrun_events.is_none() && self.run_events.is_some() {
            let path = request::watch_path(
                &request::taskrun_collection_path(&self.namespace),
                "",
                &format!("tekton.dev/pipelineRun={}", self.name),
                &self.taskruns_rv,
            );
            self.taskrun_events = self.cluster.watch(&path).await;
        }
        let (Some(runs), Some(trs)) = (self.run_events.as_mut(), self.taskrun_events.as_mut())
        else {
            // The server answered a watch with something else: read it again from now on.
            self.polling = true;
            return Ok(());
        };
        tokio::select! {
            ev = runs.next() => match ev {
                Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => {
                    self.run_rv = rv(&o);
                    self.run = o;
                }
                Some(Ok(WatchEvent::Deleted(_))) => {
                    return Err(Failure::new(format!(
                        "error: pipelinerun {}/{} was deleted while it was followed",
                        self.namespace, self.name
                    )))
                }
                Some(Ok(WatchEvent::Bookmark(b))) => self.run_rv = b.metadata.resource_version,
                Some(Ok(WatchEvent::Error(e))) if e.code == 410 => self.relist().await?,
                Some(Ok(WatchEvent::Error(_)) | Err(_)) | None => self.run_events = None,
            },
            ev = trs.next() => match ev {
                Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => {
                    self.taskruns_rv = rv(&o);
                    self.taskruns.insert(uid(&o), o);
                }
                Some(Ok(WatchEvent::Deleted(o))) => {
                    self.taskruns_rv = rv(&o);
                    self.taskruns.remove(&uid(&o));
                }
                Some(Ok(WatchEvent::Bookmark(b))) => self.taskruns_rv = b.metadata.resource_version,
                Some(Ok(WatchEvent::Error(e))) if e.code == 410 => self.relist().await?,
                Some(Ok(WatchEvent::Error(_)) | Err(_)) | None => self.taskrun_events = None,
            },
            _ = tokio::time::sleep(tick) => {}
        }
        Ok(())
    }
}
