//! The plugin's calls to the cluster: a kube-rs client from the user's kubeconfig, raw requests
//! (the retry subresource is not a kube-rs resource), and the HTTP error mapping of [`errors`].

use http::{Method, Request};
use http_body_util::BodyExt;
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use crate::cli::Connection;
use crate::errors::{self, Failure};
use crate::request;
use tekton_retry::api::PipelineRunRetry;

/// The events of a watch.
pub type EventStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<kube::core::WatchEvent<Value>, kube::Error>> + Send>,
>;

/// A connected client and the namespace to use when `-n` is not given.
pub struct Cluster {
    client: kube::Client,
    /// The context's namespace, else `default` (kube-rs `Config::default_namespace`).
    pub default_namespace: String,
}

impl Cluster {
    /// Loads the kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`) with the
    /// `--context` override, as kubectl does.
    pub async fn connect(conn: &Connection) -> Result<Self, Failure> {
        let kubeconfig = match &conn.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|e| Failure::new(format!("error: cannot load the kubeconfig: {e}")))?;
        let options = KubeConfigOptions {
            context: conn.context.clone(),
            cluster: None,
            user: None,
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| Failure::new(format!("error: invalid kubeconfig: {e}")))?;
        // kube-rs 5 retries 429/503/504 by default, up to 15 times with backoff up to 1000 s
        // (kube-client `client/retry.rs`, `RetryPolicy::server_retry`): a CLI must report a 503 from
        // an unavailable APIService at once, and must not replay a retry POST that timed out.
        config.default_retry = false;
        let default_namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config)
            .map_err(|e| Failure::new(format!("error: cannot build a client: {e}")))?;
        Ok(Cluster {
            client,
            default_namespace,
        })
    }

    /// Wraps an existing client (for programs that already have one).
    pub fn from_client(client: kube::Client) -> Self {
        let default_namespace = client.default_namespace().to_string();
        Cluster {
            client,
            default_namespace,
        }
    }

    /// One request: the HTTP status code and the body, or a transport failure.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, String), Failure> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::ACCEPT, "application/json");
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let req = builder
            .body(Body::from(body.unwrap_or_default()))
            .map_err(|e| Failure::new(format!("error: cannot build the request: {e}")))?;
        let res = self
            .client
            .send(req)
            .await
            .map_err(|e| errors::transport(&e))?;
        let code = res.status().as_u16();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| errors::transport(&e))?
            .to_bytes();
        Ok((code, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Opens the watch at `path`; `None` when the server does not answer with a watch stream
    /// (the caller then reads again instead).
    pub async fn watch(&self, path: &str) -> Option<EventStream> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(Vec::new())
            .ok()?;
        match self.client.request_events::<Value>(req).await {
            Ok(stream) => Some(Box::pin(stream)),
            Err(e) => {
                tracing::debug!(error = %e, %path, "cannot watch; reading again instead");
                None
            }
        }
    }

    /// `POST …/pipelineruns/NAME/retry[?dryRun=All]` with `body`; the server's answer, or the failure
    /// to print.
    pub async fn retry(
        &self,
        namespace: &str,
        name: &str,
        body: &PipelineRunRetry,
        dry_run: bool,
    ) -> Result<PipelineRunRetry, Failure> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Failure::new(format!("error: cannot encode the request: {e}")))?;
        let path = request::retry_path(namespace, name, dry_run);
        let (code, text) = self.call(Method::POST, &path, Some(bytes)).await?;
        if code >= 400 {
            return Err(errors::from_response(code, &text));
        }
        serde_json::from_str(&text).map_err(|e| {
            Failure::new(format!(
                "error: the server answered {code} with something that is not a PipelineRunRetry ({e}): {}",
                text.chars().take(300).collect::<String>()
            ))
        })
    }

    /// `GET path` as JSON; `Ok(None)` for 404.
    pub async fn get(&self, path: &str) -> Result<Option<Value>, Failure> {
        let (code, text) = self.call(Method::GET, path, None).await?;
        if code == 404 {
            return Ok(None);
        }
        if code >= 400 {
            return Err(errors::from_other_response(code, &text));
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Failure::new(format!("error: invalid JSON from {path}: {e}")))
    }

    /// The PipelineRun, or the NotFound failure kubectl would print.
    pub async fn pipelinerun(&self, namespace: &str, name: &str) -> Result<Value, Failure> {
        self.get(&request::pipelinerun_path(namespace, name))
            .await?
            .ok_or_else(|| {
                Failure::new(format!(
                    "Error from server (NotFound): pipelineruns.tekton.dev \"{name}\" not found"
                ))
            })
    }

    /// The PipelineRuns of `namespace` matching the label `selector` (all when empty).
    pub async fn pipelineruns(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<Value>, Failure> {
        let list = self
            .get(&request::pipelineruns_path(namespace, selector))
            .await?;
        Ok(list
            .and_then(|l| l.get("items").and_then(Value::as_array).cloned())
            .unwrap_or_default())
    }

    /// The TaskRuns labelled `tekton.dev/pipelineRun=<run>`.
    pub async fn taskruns(&self, namespace: &str, run: &str) -> Result<Vec<Value>, Failure> {
        let list = self.get(&request::taskruns_path(namespace, run)).await?;
        Ok(list
            .and_then(|l| l.get("items").and_then(Value::as_array).cloned())
            .unwrap_or_default())
    }

    /// The run's attempt-history ConfigMap, if it has one.
    pub async fn history(&self, namespace: &str, run: &str) -> Result<Option<Value>, Failure> {
        self.get(&request::history_path(namespace, run)).await
    }
}
