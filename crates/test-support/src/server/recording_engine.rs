//! A fake retry engine that records every request it receives and answers as told.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tekton_retry::api::{ApiError, PipelineRunRetry, RetryStatus};
use tekton_retry::retry::{RetryRequest, RetryService};

/// What the fake engine answers.
pub type EngineFn = Arc<dyn Fn(&RetryRequest) -> Result<PipelineRunRetry, ApiError> + Send + Sync>;

/// A fake engine that records what it receives.
pub struct RecordingEngine {
    pub calls: Mutex<Vec<RetryRequest>>,
    pub answer: Mutex<EngineFn>,
    pub delay: Mutex<Duration>,
    pub finished: Mutex<usize>,
    /// When set, each call waits for a permit: the test decides when the engine answers.
    pub gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

impl RecordingEngine {
    pub fn new() -> Arc<Self> {
        Arc::new(RecordingEngine {
            calls: Mutex::new(Vec::new()),
            answer: Mutex::new(Arc::new(|r: &RetryRequest| Ok(success(r)))),
            delay: Mutex::new(Duration::ZERO),
            finished: Mutex::new(0),
            gate: Mutex::new(None),
        })
    }
    pub fn calls(&self) -> Vec<RetryRequest> {
        self.calls.lock().expect("lock").clone()
    }
    pub fn answer_with(
        &self,
        f: impl Fn(&RetryRequest) -> Result<PipelineRunRetry, ApiError> + Send + Sync + 'static,
    ) {
        *self.answer.lock().expect("lock") = Arc::new(f);
    }
    /// From now on every call waits until the test adds a permit to the returned semaphore.
    pub fn hold(&self) -> Arc<tokio::sync::Semaphore> {
        let sem = Arc::new(tokio::sync::Semaphore::new(0));
        *self.gate.lock().expect("lock") = Some(sem.clone());
        sem
    }
    pub fn finished(&self) -> usize {
        *self.finished.lock().expect("lock")
    }
}

/// The engine's default answer: attempt 2 started.
pub fn success(r: &RetryRequest) -> PipelineRunRetry {
    PipelineRunRetry::response(
        &r.namespace,
        &r.name,
        r.spec.clone(),
        RetryStatus {
            attempt: 2,
            dry_run: r.dry_run,
            pipeline_run_uid: "uid-1".into(),
            ..Default::default()
        },
    )
}

/// Lets tests hand the engine over as a `RetryService` while keeping a handle on it.
pub struct Shared(pub Arc<RecordingEngine>);

impl RetryService for Shared {
    /// The fake answers every history with one recorded attempt, so routing and authorization
    /// of the subresource can be seen end to end.
    fn history(
        &self,
        namespace: String,
        name: String,
        _audit_id: Option<String>,
    ) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        Box::pin(async move {
            Ok(serde_json::json!({
                "apiVersion": "retry.tekton.dev/v1alpha1", "kind": "PipelineRunRetryHistory",
                "metadata": {"name": name, "namespace": namespace},
                "data": {"attempts.json": "[{\"attempt\":2,\"start\":\"t\",\"by\":\"alice\"}]"},
            }))
        })
    }

    fn retry(&self, req: RetryRequest) -> BoxFuture<'static, Result<PipelineRunRetry, ApiError>> {
        let engine = self.0.clone();
        Box::pin(async move {
            engine.calls.lock().expect("lock").push(req.clone());
            let gate = engine.gate.lock().expect("lock").clone();
            if let Some(gate) = gate {
                gate.acquire().await.expect("gate").forget();
            }
            let delay = *engine.delay.lock().expect("lock");
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let answer = engine.answer.lock().expect("lock").clone();
            let out = answer(&req);
            *engine.finished.lock().expect("lock") += 1;
            out
        })
    }
}
