//! Objects of one kind kept current by a watch, so the executor waits for events instead of
//! polling: a list (or the state the caller already read) and a watch from its resourceVersion,
//! as client-go's reflector does. A watch that ends is opened again from the last resourceVersion
//! seen; one the API server expired (410 Gone) starts over from a fresh list.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::core::WatchEvent;
use serde_json::Value;

use super::cluster::{Cluster, ClusterError, Resource, WatchQuery, WatchStream};
use crate::tekton::ObjectView;

/// How long one watch request may stay open before it is renewed.
const WATCH_SECONDS: Duration = Duration::from_secs(60);

/// The objects of `resource` in a namespace that match a label and a field selector, by uid.
pub struct Tracked {
    cluster: Cluster,
    resource: Resource,
    namespace: String,
    labels: String,
    fields: String,
    resource_version: String,
    stream: Option<WatchStream>,
    /// uid → object.
    pub objects: BTreeMap<String, Value>,
}

fn uid(obj: &Value) -> String {
    ObjectView::new(obj).uid().to_string()
}

impl Tracked {
    /// Starts from `items` as listed at `resource_version` (no request).
    pub fn from_list(
        cluster: &Cluster,
        resource: Resource,
        namespace: &str,
        labels: &str,
        fields: &str,
        items: Vec<Value>,
        resource_version: String,
    ) -> Self {
        Tracked {
            cluster: cluster.clone(),
            resource,
            namespace: namespace.to_string(),
            labels: labels.to_string(),
            fields: fields.to_string(),
            resource_version,
            stream: None,
            objects: items.into_iter().map(|o| (uid(&o), o)).collect(),
        }
    }

    /// Lists, then keeps current.
    pub async fn list(
        cluster: &Cluster,
        resource: Resource,
        namespace: &str,
        labels: &str,
        audit: Option<&str>,
    ) -> Result<Self, ClusterError> {
        let (items, rv) = cluster.list_at(resource, namespace, labels, audit).await?;
        Ok(Self::from_list(
            cluster, resource, namespace, labels, "", items, rv,
        ))
    }

    /// Opens the watch now (it is otherwise opened by the first [`Tracked::next`]).
    pub async fn watch(&mut self, audit: Option<&str>) -> Result<(), ClusterError> {
        if self.stream.is_none() {
            self.stream = Some(
                self.cluster
                    .watch(
                        self.resource,
                        &self.namespace,
                        &WatchQuery {
                            labels: &self.labels,
                            fields: &self.fields,
                            resource_version: &self.resource_version,
                            timeout: WATCH_SECONDS,
                        },
                        audit,
                    )
                    .await?,
            );
        }
        Ok(())
    }

    /// Waits for the next change and applies it.
    pub async fn next(&mut self, audit: Option<&str>) -> Result<(), ClusterError> {
        loop {
            self.watch(audit).await?;
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            match stream.next().await {
                Some(Ok(WatchEvent::Added(o))) | Some(Ok(WatchEvent::Modified(o))) => {
                    self.seen(&o);
                    self.objects.insert(uid(&o), o);
                    return Ok(());
                }
                Some(Ok(WatchEvent::Deleted(o))) => {
                    self.seen(&o);
                    self.objects.remove(&uid(&o));
                    return Ok(());
                }
                Some(Ok(WatchEvent::Bookmark(b))) => {
                    self.resource_version = b.metadata.resource_version;
                }
                Some(Ok(WatchEvent::Error(e))) if e.code == 410 => {
                    // Expired: start over from the current state.
                    self.stream = None;
                    let (items, rv) = self
                        .cluster
                        .list_at(self.resource, &self.namespace, &self.labels, audit)
                        .await?;
                    self.objects = items.into_iter().map(|o| (uid(&o), o)).collect();
                    self.resource_version = rv;
                    return Ok(());
                }
                Some(Ok(WatchEvent::Error(e))) => {
                    return Err(ClusterError::Api {
                        what: format!("watch {} in {}", self.resource.plural, self.namespace),
                        code: e.code,
                        message: e.message,
                        reason: e.reason,
                    })
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, resource = self.resource.plural, "watch broke; opening it again");
                    self.stream = None;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // The watch timed out: open it again from where it was.
                None => self.stream = None,
            }
        }
    }

    fn seen(&mut self, obj: &Value) {
        if let Some(rv) = ObjectView::new(obj).resource_version() {
            self.resource_version = rv.to_string();
        }
    }

    /// The object named `name`, if there is one.
    pub fn named(&self, name: &str) -> Option<&Value> {
        self.objects
            .values()
            .find(|o| ObjectView::new(o).name() == name)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::retry::cluster::PODS;
    use crate::retry::fake_api::{collection, FakeApi};
    use crate::retry::test_scenario::bounded;

    fn data(t: &Tracked, name: &str) -> Value {
        t.named(name).map(|o| o["data"].clone()).unwrap_or_default()
    }

    #[tokio::test]
    async fn changes_are_applied_in_order_and_a_watch_that_ends_reopens_where_it_was() {
        let api = FakeApi::new();
        let pods = collection(PODS, "ns");
        for name in ["a", "b"] {
            let cm =
                json!({"metadata": {"name": name, "labels": {"app": "x"}}, "data": {"v": "1"}});
            api.store().insert(&pods, cm);
        }
        let other = json!({"metadata": {"name": "c", "labels": {"app": "y"}}});
        api.store().insert(&pods, other);
        let mut t = bounded(Tracked::list(&api.cluster(), PODS, "ns", "app=x", None))
            .await
            .expect("list");
        assert_eq!(t.objects.len(), 2, "by uid");
        let listed_at = api.store().requests.len();
        assert!(t.named("c").is_none());
        api.store()
            .modify(&pods, "a", |cm| cm["data"]["v"] = json!("2"));
        bounded(t.next(None)).await.expect("event");
        assert_eq!(data(&t, "a"), json!({"v": "2"}));
        // The API server ends the watch; the next change comes on a watch from the last event.
        api.store().close_watches();
        api.store()
            .modify(&pods, "b", |cm| cm["data"]["v"] = json!("3"));
        bounded(t.next(None)).await.expect("event");
        assert_eq!(data(&t, "b"), json!({"v": "3"}));
        let from = api.store().watched_from.clone();
        let a_rv = t.named("a").and_then(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string)
        });
        assert_eq!(from.len(), 2, "{from:?}");
        assert_eq!(Some(from[1].clone()), a_rv);
        assert_eq!(
            api.store().requests.len(),
            listed_at + 2,
            "two watches, no list"
        );
        api.store().remove(&pods, "a");
        bounded(t.next(None)).await.expect("event");
        assert!(t.named("a").is_none());
        assert_eq!(t.objects.len(), 1);
    }
}
