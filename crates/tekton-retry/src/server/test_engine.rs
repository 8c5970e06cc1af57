//! A [`RetryService`] for the server's unit tests: answers each retry with `outcome` after
//! `delay`, keeps the requests it was given, and answers a history naming the run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use crate::api::{ApiError, PipelineRunRetry};
use crate::retry::{RetryRequest, RetryService};

pub struct TestEngine {
    outcome: fn(&RetryRequest) -> Result<PipelineRunRetry, ApiError>,
    delay: Duration,
    pub seen: Mutex<Vec<RetryRequest>>,
}

impl TestEngine {
    pub fn new(
        outcome: fn(&RetryRequest) -> Result<PipelineRunRetry, ApiError>,
        delay: Duration,
    ) -> Arc<Self> {
        Arc::new(TestEngine {
            outcome,
            delay,
            seen: Mutex::new(Vec::new()),
        })
    }

    /// Answers every retry with the spec it was sent.
    pub fn echo(delay: Duration) -> Arc<Self> {
        Self::new(
            |req| {
                Ok(PipelineRunRetry {
                    spec: req.spec.clone(),
                    ..Default::default()
                })
            },
            delay,
        )
    }
}

impl RetryService for TestEngine {
    fn retry(&self, req: RetryRequest) -> BoxFuture<'static, Result<PipelineRunRetry, ApiError>> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(req.clone());
        }
        let (outcome, delay) = (self.outcome, self.delay);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            outcome(&req)
        })
    }

    fn history(
        &self,
        namespace: String,
        name: String,
        _audit_id: Option<String>,
    ) -> BoxFuture<'static, Result<Value, ApiError>> {
        let name = format!("{namespace}/{name}");
        Box::pin(async move { Ok(json!({"kind": "PipelineRunRetryHistory", "name": name})) })
    }
}
