//! The store against an in-memory ConfigMap API for the server's namespace, reached through a real
//! `kube::Client` and [`Cluster`]: what each method reads and writes, and how it takes a missing
//! object, a conflict and any other API error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response};
use kube::client::Body;

use super::*;
use crate::rbac::DEFAULT_NAMESPACE;

/// The ConfigMaps of one namespace, with resourceVersion preconditions as kube-apiserver applies
/// them, the requests seen, and errors to answer instead.
#[derive(Default)]
struct Api {
    objects: BTreeMap<String, Value>,
    last_rv: u64,
    /// Every request, as `METHOD name` (`LIST` for a list).
    seen: Vec<String>,
    /// Status codes the next writes (POST, PUT, DELETE) answer with, in order.
    failing_writes: Vec<u16>,
    /// Status codes the next GETs answer with, in order.
    failing_reads: Vec<u16>,
    /// A change made by "someone else" just before the next PUT is served.
    race_before_put: Option<fn(&mut Value)>,
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "code": code, "reason": reason, "message": message}),
    )
}

impl Api {
    fn bump(&mut self, cm: &mut Value) {
        self.last_rv += 1;
        cm["metadata"]["resourceVersion"] = json!(self.last_rv.to_string());
    }

    fn serve(
        &mut self,
        method: &Method,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let prefix = format!("/api/v1/namespaces/{DEFAULT_NAMESPACE}/configmaps");
        let Some(rest) = path.strip_prefix(&prefix) else {
            return status(404, "NotFound", &format!("no route {path}"));
        };
        let name = rest.trim_start_matches('/').to_string();
        let verb = if name.is_empty() && method == Method::GET {
            "LIST"
        } else {
            method.as_str()
        };
        self.seen
            .push(format!("{verb} {name}").trim_end().to_string());
        let failing = if method == Method::GET {
            &mut self.failing_reads
        } else {
            &mut self.failing_writes
        };
        if !failing.is_empty() {
            let code = failing.remove(0);
            return status(code, "Injected", "injected by the test");
        }
        match (verb, body) {
            ("LIST", _) => {
                let selector = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("labelSelector="))
                    .map(|s| {
                        percent_encoding::percent_decode_str(s)
                            .decode_utf8_lossy()
                            .to_string()
                    })
                    .unwrap_or_default();
                let (key, value) = selector.split_once('=').unwrap_or(("", ""));
                let items: Vec<Value> = self
                    .objects
                    .values()
                    .filter(|cm| key.is_empty() || cm["metadata"]["labels"][key] == json!(value))
                    .cloned()
                    .collect();
                (
                    200,
                    json!({"kind": "ConfigMapList", "apiVersion": "v1",
                             "metadata": {"resourceVersion": self.last_rv.to_string()}, "items": items}),
                )
            }
            ("GET", _) => match self.objects.get(&name) {
                Some(cm) => (200, cm.clone()),
                None => status(404, "NotFound", &format!("configmaps \"{name}\" not found")),
            },
            ("DELETE", _) => match self.objects.remove(&name) {
                Some(_) => (200, json!({"kind": "Status", "status": "Success"})),
                None => status(404, "NotFound", &format!("configmaps \"{name}\" not found")),
            },
            ("POST", Some(mut cm)) => {
                let name = cm["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if self.objects.contains_key(&name) {
                    return status(
                        409,
                        "AlreadyExists",
                        &format!("configmaps \"{name}\" already exists"),
                    );
                }
                self.bump(&mut cm);
                self.objects.insert(name, cm.clone());
                (201, cm)
            }
            ("PUT", Some(mut cm)) => {
                if let (Some(race), Some(stored)) = (
                    self.race_before_put.take(),
                    self.objects.get(&name).cloned(),
                ) {
                    let mut changed = stored;
                    race(&mut changed);
                    self.bump(&mut changed);
                    self.objects.insert(name.clone(), changed);
                }
                let Some(stored) = self.objects.get(&name) else {
                    return status(404, "NotFound", &format!("configmaps \"{name}\" not found"));
                };
                if cm["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
                    return status(409, "Conflict", "the object has been modified");
                }
                self.bump(&mut cm);
                self.objects.insert(name, cm.clone());
                (200, cm)
            }
            _ => status(405, "MethodNotAllowed", "not served by this test"),
        }
    }
}

/// A store holding the record of run u1 at attempt 2, as written.
async fn store_with_u1() -> (RecordStore, Arc<Mutex<Api>>, Stored) {
    let (store, api) = store();
    let written = store
        .put(&record("u1", 2), None, None)
        .await
        .expect("create");
    (store, api, written)
}

/// A store holding the records of run u1 (attempt 2, with a history) and of run u2 (attempt
/// `u2_attempt`, no history).
async fn two_records(u2_attempt: u32) -> (RecordStore, Arc<Mutex<Api>>) {
    let (store, api) = store();
    store.put(&record("u1", 2), None, None).await.expect("u1");
    let u2 = record("u2", u2_attempt);
    store.put(&u2, None, None).await.expect("u2");
    archive_lost(&store, 1, "r-1").await.expect("history");
    (store, api)
}

/// Archives the runs attempt `attempt` of run u1 lost (one, `run`), as the claim of the next
/// attempt does.
async fn archive_lost(store: &RecordStore, attempt: u32, run: &str) -> Result<(), ClusterError> {
    let claimed = record("u1", attempt + 1);
    store.archive(&claimed, &archive(attempt, run), None).await
}

/// The archive of `attempt` in the history `data`.
fn archived(data: &Map<String, Value>, attempt: u32) -> AttemptArchive {
    let text = data[&format!("attempt-{attempt}.json")]
        .as_str()
        .expect("s");
    serde_json::from_str(text).expect("archive")
}

/// The index in the history `data`.
fn index_of(data: &Map<String, Value>) -> Vec<LastRetry> {
    serde_json::from_str(data[history::INDEX_KEY].as_str().expect("s")).expect("index")
}

/// Asserts that `err` is the API's answer `code`, passed on as it came.
fn assert_api_error(err: &ClusterError, code: u16) {
    assert!(
        matches!(err, ClusterError::Api { code: c, .. } if *c == code),
        "{err:?}"
    );
}

/// A store over a fresh [`Api`], and the API to look into.
fn store() -> (RecordStore, Arc<Mutex<Api>>) {
    let api = Arc::new(Mutex::new(Api::default()));
    let shared = api.clone();
    let svc = tower::service_fn(move |req: Request<Body>| {
        let api = shared.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let body: Option<Value> = serde_json::from_slice(&bytes).ok();
            let (code, answer) = api.lock().expect("api").serve(
                &parts.method,
                parts.uri.path(),
                parts.uri.query().unwrap_or_default(),
                body,
            );
            Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(answer.to_string().into_bytes()))
                .map_err(std::io::Error::other)
        }
    });
    let cluster = Cluster::new(kube::Client::new(svc, "default"));
    (RecordStore::new(cluster, DEFAULT_NAMESPACE), api)
}

fn record(uid: &str, attempt: u32) -> AttemptRecord {
    AttemptRecord {
        namespace: "team-a".into(),
        name: "build".into(),
        uid: uid.into(),
        retry: LastRetry {
            attempt,
            start: "2026-12-06T02:00:00Z".into(),
            by: "alice".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn archive(attempt: u32, run: &str) -> AttemptArchive {
    AttemptArchive {
        attempt,
        archived_at: "2026-12-06T02:00:00Z".into(),
        runs: vec![history::ArchivedRun {
            kind: "TaskRun".into(),
            name: run.into(),
            ..Default::default()
        }],
        truncated: false,
    }
}

fn seen(api: &Arc<Mutex<Api>>) -> Vec<String> {
    std::mem::take(&mut api.lock().expect("api").seen)
}

fn stored(api: &Arc<Mutex<Api>>, name: &str) -> Option<Value> {
    api.lock().expect("api").objects.get(name).cloned()
}

#[test]
fn names_come_from_the_uid_only() {
    assert_eq!(record_name("0b1c"), "retry-0b1c");
    assert_eq!(history_name("0b1c"), "retry-0b1c-history");
}

#[test]
fn a_config_map_under_another_name_is_not_a_record() {
    let record = AttemptRecord {
        uid: "u1".into(),
        retry: LastRetry {
            attempt: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let text = serde_json::to_string(&record).expect("json");
    let cm = |name: &str| {
        json!({"metadata": {"name": name, "resourceVersion": "5"},
               "data": {RECORD_KEY: text}})
    };
    assert_eq!(
        parse(&cm("retry-u1")).map(|s| s.record.retry.attempt),
        Some(2)
    );
    assert!(parse(&cm("retry-u2")).is_none(), "names another run's uid");
    assert!(parse(&json!({"metadata": {"name": "retry-u1"}})).is_none());
}

#[tokio::test]
async fn a_record_is_written_labelled_in_the_servers_namespace_and_read_back() {
    let (store, api) = store();
    assert_eq!(store.namespace(), DEFAULT_NAMESPACE);
    assert_eq!(
        store.get("u1", None).await.expect("get"),
        None,
        "never retried"
    );
    let written = store
        .put(&record("u1", 2), None, None)
        .await
        .expect("create");
    assert_eq!(seen(&api), ["GET retry-u1", "POST"]);

    let cm = stored(&api, "retry-u1").expect("created");
    assert_eq!(cm["metadata"]["namespace"], DEFAULT_NAMESPACE);
    assert_eq!(cm["metadata"]["labels"][KIND_LABEL], "attempt");
    assert_eq!(cm["metadata"]["labels"][MANAGED_BY], "tekton-retry");
    assert_eq!(
        cm["metadata"]["annotations"][RUN_ANNOTATION],
        "team-a/build"
    );
    assert_eq!(
        written.resource_version,
        cm["metadata"]["resourceVersion"].as_str().expect("rv")
    );

    let read = store.get("u1", None).await.expect("get").expect("there");
    assert_eq!(read, written);
    assert_eq!(read.record, record("u1", 2));
}

#[tokio::test]
async fn a_record_whose_content_names_another_uid_is_not_that_runs() {
    let (store, api, _) = store_with_u1().await;
    // Someone copies u1's record under u2's name: its content still says u1.
    let mut copy = stored(&api, "retry-u1").expect("cm");
    copy["metadata"]["name"] = json!("retry-u2");
    api.lock()
        .expect("api")
        .objects
        .insert("retry-u2".into(), copy);
    assert_eq!(store.get("u2", None).await.expect("get"), None);
}

#[tokio::test]
async fn reading_a_record_passes_on_errors_other_than_not_found() {
    let (store, api) = store();
    api.lock().expect("api").failing_reads = vec![403];
    let err = store.get("u1", None).await.expect_err("forbidden");
    assert_api_error(&err, 403);
    api.lock().expect("api").failing_reads = vec![403];
    let err = store.history("u1", None).await.expect_err("forbidden");
    assert_api_error(&err, 403);
}

#[tokio::test]
async fn a_write_from_a_stale_read_is_a_conflict() {
    let (store, _api, first) = store_with_u1().await;
    store
        .put(&record("u1", 3), Some(&first), None)
        .await
        .expect("replace");
    let err = store
        .put(&record("u1", 4), Some(&first), None)
        .await
        .expect_err("stale");
    assert!(err.is_conflict(), "{err:?}");
    let err = store
        .put(&record("u1", 2), None, None)
        .await
        .expect_err("exists");
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(
        store
            .get("u1", None)
            .await
            .expect("get")
            .expect("r")
            .record
            .retry
            .attempt,
        3
    );
}

#[tokio::test]
async fn an_update_applies_its_change_again_to_what_another_writer_left() {
    let (store, api, _) = store_with_u1().await;
    seen(&api);
    // Between the update's read and its write, another replica sets the outcome.
    api.lock().expect("api").race_before_put = Some(|cm: &mut Value| {
        let mut r: AttemptRecord =
            serde_json::from_str(cm["data"][RECORD_KEY].as_str().expect("s")).expect("r");
        r.retry.outcome = Some("Failed".into());
        cm["data"][RECORD_KEY] = json!(serde_json::to_string(&r).expect("json"));
    });
    let mut calls = 0;
    let written = store
        .update("u1", None, |r| {
            calls += 1;
            r.retry.end = Some("2026-12-06T02:05:00Z".into());
            true
        })
        .await
        .expect("update")
        .expect("written");
    assert_eq!(calls, 2, "the change is made again on the re-read record");
    assert_eq!(
        seen(&api),
        [
            "GET retry-u1",
            "PUT retry-u1",
            "GET retry-u1",
            "PUT retry-u1"
        ]
    );
    let now = store.get("u1", None).await.expect("get").expect("r");
    assert_eq!(now, written);
    assert_eq!(
        now.record.retry.outcome.as_deref(),
        Some("Failed"),
        "the other write is kept"
    );
    assert_eq!(
        now.record.retry.end.as_deref(),
        Some("2026-12-06T02:05:00Z")
    );
}

#[tokio::test]
async fn an_update_that_changes_nothing_or_finds_no_record_writes_nothing() {
    let (store, api) = store();
    assert_eq!(
        store.update("u1", None, |_| true).await.expect("none"),
        None
    );
    store
        .put(&record("u1", 2), None, None)
        .await
        .expect("create");
    seen(&api);
    assert_eq!(
        store
            .update("u1", None, |_| false)
            .await
            .expect("no change"),
        None
    );
    assert_eq!(seen(&api), ["GET retry-u1"]);
}

#[tokio::test]
async fn an_update_gives_up_on_a_record_that_keeps_changing_and_passes_on_other_errors() {
    let (store, api, _) = store_with_u1().await;
    api.lock().expect("api").failing_writes = vec![409; 8];
    let err = store
        .update("u1", None, |_| true)
        .await
        .expect_err("gives up");
    assert!(err.is_conflict(), "{err:?}");
    api.lock().expect("api").failing_writes = vec![500];
    let err = store.update("u1", None, |_| true).await.expect_err("500");
    assert_api_error(&err, 500);
    api.lock().expect("api").failing_writes = vec![409];
    assert!(store
        .update("u1", None, |_| true)
        .await
        .expect("second try")
        .is_some());
}

#[tokio::test]
async fn the_list_holds_the_records_only() {
    let (store, api) = two_records(3).await;
    api.lock().expect("api").objects.insert(
        "unrelated".into(),
        json!({"metadata": {"name": "unrelated", "resourceVersion": "1",
                            "labels": {KIND_LABEL: "attempt"}}, "data": {}}),
    );
    let mut listed: Vec<(String, u32)> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|s| (s.record.uid, s.record.retry.attempt))
        .collect();
    listed.sort();
    assert_eq!(listed, [("u1".to_string(), 2), ("u2".to_string(), 3)]);
}

#[tokio::test]
async fn forgetting_a_run_deletes_its_record_and_history_once_and_tolerates_either_missing() {
    let (store, api) = two_records(2).await;
    seen(&api);
    store.forget("u1").await.expect("forget");
    assert_eq!(seen(&api), ["DELETE retry-u1-history", "DELETE retry-u1"]);
    assert!(stored(&api, "retry-u1").is_none() && stored(&api, "retry-u1-history").is_none());
    assert!(
        stored(&api, "retry-u2").is_some(),
        "another run's record stays"
    );
    store.forget("u2").await.expect("no history to delete");
    assert!(stored(&api, "retry-u2").is_none());
    api.lock().expect("api").failing_writes = vec![403];
    let err = store.forget("u3").await.expect_err("forbidden");
    assert_api_error(&err, 403);
}

#[tokio::test]
async fn the_first_archive_creates_the_history_without_reading_and_a_repeat_changes_nothing() {
    let (store, api) = store();
    assert!(store.history("u1", None).await.expect("none").is_empty());
    seen(&api);
    let rec = record("u1", 2);
    store
        .archive(&rec, &archive(1, "r-1"), None)
        .await
        .expect("archive");
    assert_eq!(seen(&api), ["POST"], "attempt 2 creates the history blind");
    let cm = stored(&api, "retry-u1-history").expect("history");
    assert_eq!(cm["metadata"]["labels"][KIND_LABEL], "history");
    assert_eq!(
        cm["metadata"]["annotations"][RUN_ANNOTATION],
        "team-a/build"
    );

    // An interrupted pass archives again: the first archive is kept, nothing is written.
    store
        .archive(&rec, &archive(1, "other"), None)
        .await
        .expect("again");
    assert_eq!(seen(&api), ["POST", "GET retry-u1-history"]);
    let data = store.history("u1", None).await.expect("history");
    let kept = archived(&data, 1);
    assert_eq!(kept.runs[0].name, "r-1");
}

#[tokio::test]
async fn a_later_archive_reads_and_adds_to_the_history() {
    let (store, api) = store();
    archive_lost(&store, 1, "r-1").await.expect("first");
    seen(&api);
    archive_lost(&store, 2, "r-2").await.expect("second");
    assert_eq!(seen(&api), ["GET retry-u1-history", "PUT retry-u1-history"]);
    let data = store.history("u1", None).await.expect("history");
    assert!(data.contains_key("attempt-1.json") && data.contains_key("attempt-2.json"));
    let index = index_of(&data);
    assert_eq!(index.iter().map(|r| r.attempt).collect::<Vec<_>>(), [2, 3]);
}

#[tokio::test]
async fn a_history_written_meanwhile_is_read_and_merged_not_overwritten() {
    let (store, api) = store();
    // Another replica created the history between our decision and our create.
    archive_lost(&store, 1, "r-1").await.expect("other replica");
    seen(&api);
    let mut rec = record("u1", 2);
    rec.uid = "u1".into();
    store
        .archive(&rec, &archive(1, "mine"), None)
        .await
        .expect("merge");
    assert_eq!(
        seen(&api),
        ["POST", "GET retry-u1-history"],
        "conflict, then read"
    );
    let data = store.history("u1", None).await.expect("history");
    let kept = archived(&data, 1);
    assert_eq!(kept.runs[0].name, "r-1");

    // A replace that meets a newer version reads again and writes on top of it.
    api.lock().expect("api").race_before_put = Some(|cm: &mut Value| {
        cm["data"]["attempt-9.json"] = json!("{}");
    });
    archive_lost(&store, 2, "r-2").await.expect("merge");
    let data = store.history("u1", None).await.expect("history");
    assert!(
        data.contains_key("attempt-9.json"),
        "the other write is kept"
    );
    assert!(data.contains_key("attempt-2.json"));
}

#[tokio::test]
async fn a_history_write_passes_on_errors_and_gives_up_on_endless_conflicts() {
    let (store, api) = store();
    api.lock().expect("api").failing_reads = vec![500];
    let err = archive_lost(&store, 2, "r-2")
        .await
        .expect_err("read fails");
    assert_api_error(&err, 500);
    api.lock().expect("api").failing_writes = vec![403];
    let err = archive_lost(&store, 2, "r-2")
        .await
        .expect_err("write fails");
    assert_api_error(&err, 403);
    api.lock().expect("api").failing_writes = vec![409; 5];
    let err = archive_lost(&store, 2, "r-2").await.expect_err("conflicts");
    assert!(err.is_conflict(), "{err:?}");
    assert!(
        stored(&api, "retry-u1-history").is_none(),
        "nothing half-written"
    );
}

#[tokio::test]
async fn the_index_entry_of_an_ended_attempt_is_written_once() {
    let (store, api) = store();
    let mut rec = record("u1", 2);
    store
        .archive(&rec, &archive(1, "r-1"), None)
        .await
        .expect("archive");
    rec.retry.end = Some("2026-12-06T02:09:00Z".into());
    rec.retry.outcome = Some("Succeeded".into());
    seen(&api);
    store.index(&rec, None).await.expect("index");
    assert_eq!(seen(&api), ["GET retry-u1-history", "PUT retry-u1-history"]);
    store.index(&rec, None).await.expect("again");
    assert_eq!(
        seen(&api),
        ["GET retry-u1-history"],
        "unchanged: not written"
    );
    let data = store.history("u1", None).await.expect("history");
    let index = index_of(&data);
    assert_eq!(index[0].outcome.as_deref(), Some("Succeeded"));
    assert!(data.contains_key("attempt-1.json"), "the archive is kept");
}
