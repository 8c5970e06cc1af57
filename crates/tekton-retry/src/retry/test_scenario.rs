//! A run a real Tekton cluster recorded, loaded into the in-memory API, with an engine over it:
//! the starting point of the engine's and executor's unit tests.

use std::time::Duration;

use serde_json::{json, Value};

use super::cluster::{Resource, CONFIGMAPS, PIPELINERUNS};
use super::executor::ExecutorOptions;
use super::fake_api::{collection, FakeApi};
use super::record::store::{record_name, RECORD_KEY};
use super::record::AttemptRecord;
use super::{Engine, EngineOptions, RetryRequest};
use crate::api::{ApiError, PipelineRunRetry, RetrySpec, UserInfo};

/// The run's name in every recorded scenario.
pub const RUN: &str = "demo-run";
/// The server's namespace, where the records are kept.
pub const OWN: &str = "tekton-retry";

/// The records' collection.
pub fn configmaps() -> String {
    collection(CONFIGMAPS, OWN)
}

/// Short waits: nothing in the in-memory API takes long.
pub fn options() -> EngineOptions {
    EngineOptions {
        namespace: OWN.into(),
        executor: ExecutorOptions {
            wait_gone_timeout: Duration::from_millis(500),
            verify_window: Duration::from_millis(100),
            poll_interval: Duration::from_millis(10),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Runs `f` for at most ten seconds (a mutant that loops fails instead of hanging).
pub async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("finished within ten seconds")
}

/// One recorded scenario in the in-memory API.
pub struct Scenario {
    pub api: FakeApi,
    /// The scenario's namespace (its directory's name).
    pub ns: &'static str,
    pub uid: String,
}

impl Scenario {
    /// The objects of `scenario` at `moments`, with the Pipeline and Tasks every recorded
    /// scenario ran (`build-and-deploy`, as `dag-failed` recorded them); the run's timeout,
    /// recorded days ago, is made long enough not to have run out since.
    pub fn load(scenario: &'static str, moments: &[&str]) -> Self {
        let api = FakeApi::with_fixture(scenario, moments);
        if scenario != "dag-failed" {
            api.load("dag-failed", &["00-setup"], Some(scenario));
        }
        let runs = collection(PIPELINERUNS, scenario);
        api.store().modify(&runs, RUN, |r| {
            r["spec"]["timeouts"] = json!({"pipeline": "87600h"});
        });
        let run = api.store().get(&runs, RUN).expect("the scenario's run");
        let uid = run["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Scenario {
            api,
            ns: scenario,
            uid,
        }
    }

    /// `dag-failed`: tasks a and report succeeded, b failed, c skipped; the Pipeline and Tasks.
    pub fn dag_failed() -> Self {
        Self::load("dag-failed", &["00-setup", "01-failed"])
    }

    pub fn engine(&self) -> Engine {
        self.engine_with(options())
    }

    pub fn engine_with(&self, opts: EngineOptions) -> Engine {
        Engine::new(self.api.client(), opts)
    }

    pub fn runs(&self) -> String {
        collection(PIPELINERUNS, self.ns)
    }

    /// The run as stored now.
    pub fn run(&self) -> Value {
        self.api.store().get(&self.runs(), RUN).expect("run")
    }

    /// The names of the objects of `resource` in the scenario's namespace.
    pub fn names(&self, resource: Resource) -> Vec<String> {
        let items = self.api.store().all(&collection(resource, self.ns));
        items
            .iter()
            .map(|o| {
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// A retry of the run by alice with `spec`.
    pub fn request(&self, spec: RetrySpec) -> RetryRequest {
        RetryRequest {
            namespace: self.ns.into(),
            name: RUN.into(),
            spec,
            dry_run: false,
            user: UserInfo {
                username: "alice".into(),
                ..Default::default()
            },
            audit_id: Some("audit-1".into()),
        }
    }

    /// A retry of the run by alice, reason "flaky".
    pub fn retry_request(&self) -> RetryRequest {
        self.request(RetrySpec {
            reason: Some("flaky".into()),
            ..Default::default()
        })
    }

    /// A retry by alice (reason "flaky") through `engine`.
    pub async fn retry_with(&self, engine: &Engine) -> Result<PipelineRunRetry, ApiError> {
        bounded(engine.retry(self.retry_request())).await
    }

    /// A retry by alice through a new engine (a server that has seen nothing yet).
    pub async fn retry(&self) -> Result<PipelineRunRetry, ApiError> {
        self.retry_with(&self.engine()).await
    }

    /// The same as a dry run.
    pub async fn dry_run_with(&self, engine: &Engine) -> Result<PipelineRunRetry, ApiError> {
        let mut req = self.retry_request();
        req.dry_run = true;
        bounded(engine.retry(req)).await
    }

    pub fn stored_record(&self) -> Option<AttemptRecord> {
        let cm = self
            .api
            .store()
            .get(&configmaps(), &record_name(&self.uid))?;
        serde_json::from_str(cm["data"][RECORD_KEY].as_str()?).ok()
    }

    pub fn record(&self) -> AttemptRecord {
        self.stored_record().expect("a record")
    }

    /// Changes the stored record (as another replica or an older claim would have left it).
    pub fn change_record(&self, change: impl FnOnce(&mut AttemptRecord)) {
        let mut record = self.record();
        change(&mut record);
        let text = serde_json::to_string(&record).expect("json");
        self.api
            .store()
            .modify(&configmaps(), &record_name(&self.uid), |cm| {
                cm["data"][RECORD_KEY] = json!(text);
            });
    }
}
