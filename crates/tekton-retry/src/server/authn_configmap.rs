//! Keeps the authentication configuration current from the ConfigMap
//! `kube-system/extension-apiserver-authentication`: a watch of that one object (list and watch
//! with `fieldSelector=metadata.name=extension-apiserver-authentication`, what the
//! `extension-apiserver-authentication-reader` Role allows), and a plain re-read every `resync`
//! as a fallback should the watch stall without an error. k8s.io/apiserver does the same with an
//! informer on that name (`headerrequest.NewRequestHeaderAuthRequestController`,
//! `dynamiccertificates.NewDynamicCAFromConfigMapController`) and a periodic resync.
//!
//! A configuration once loaded stays in use whatever the API does afterwards (errors, a deleted
//! or unparseable ConfigMap): the errors are logged and kept in [`AuthState::last_error`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::authn::{AuthConfig, AuthState, AUTH_CONFIGMAP_NAME, AUTH_CONFIGMAP_NAMESPACE};
use super::tls::TlsState;

/// Until a configuration is loaded, the fallback re-read runs at least this often.
const UNLOADED_RESYNC: Duration = Duration::from_secs(1);

/// Applies each version of the ConfigMap to the live state.
struct Loader {
    state: Arc<AuthState>,
    tls: Arc<TlsState>,
    applied: Option<BTreeMap<String, String>>,
}

impl Loader {
    /// The API returned the ConfigMap with `data`.
    fn apply(&mut self, data: BTreeMap<String, String>) {
        if self.applied.as_ref() == Some(&data) {
            self.state.confirm(None);
            return;
        }
        match AuthConfig::from_configmap_data(&data) {
            Ok(cfg) => {
                if let Err(e) = self.tls.set_client_ca_hints(cfg.hint_subjects()) {
                    tracing::warn!(error = %e, "cannot advertise the new client CAs");
                }
                self.state.set(cfg);
                self.state.confirm(None);
                tracing::info!("authentication configuration loaded from {AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME}");
                self.applied = Some(data);
            }
            Err(e) => {
                tracing::warn!(error = %e, "invalid {AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME}; keeping the previous configuration");
                self.state.confirm(Some(e.to_string()));
            }
        }
    }

    /// The API answered that the ConfigMap does not exist.
    fn missing(&mut self) {
        let message = format!("{AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME} not found");
        tracing::warn!("{message}; keeping the previous configuration, if any");
        self.state.confirm(Some(message));
    }

    /// A read or watch failed.
    fn failed(&mut self, error: String) {
        tracing::warn!(%error, "cannot read {AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME}; keeping the previous configuration, if any");
        self.state.fail(error);
    }
}

/// Watches the authentication ConfigMap and re-reads it every `resync` (every second until it is
/// first loaded) until `stop` turns true, updating `state` and the TLS CA hints when its data
/// changes.
pub fn spawn_config_watcher(
    client: kube::Client,
    state: Arc<AuthState>,
    tls: Arc<TlsState>,
    resync: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::namespaced(client, AUTH_CONFIGMAP_NAMESPACE);
        let by_name =
            watcher::Config::default().fields(&format!("metadata.name={AUTH_CONFIGMAP_NAME}"));
        let mut events = watcher(api.clone(), by_name).default_backoff().boxed();
        let mut loader = Loader {
            state,
            tls,
            applied: None,
        };
        // Whether the watcher's current (re)list returned the object.
        let mut listed = false;
        let next_read = |loaded: bool| {
            tokio::time::Instant::now()
                + if loaded {
                    resync
                } else {
                    resync.min(UNLOADED_RESYNC)
                }
        };
        let reread = tokio::time::sleep_until(next_read(false));
        tokio::pin!(reread);
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm))) => {
                        listed = true;
                        loader.apply(cm.data.unwrap_or_default());
                    }
                    Some(Ok(watcher::Event::Delete(_))) => loader.missing(),
                    Some(Ok(watcher::Event::Init)) => listed = false,
                    Some(Ok(watcher::Event::InitDone)) => {
                        if !listed {
                            loader.missing();
                        }
                    }
                    Some(Err(e)) => loader.failed(e.to_string()),
                    None => return,
                },
                _ = &mut reread => {
                    match api.get_opt(AUTH_CONFIGMAP_NAME).await {
                        Ok(Some(cm)) => loader.apply(cm.data.unwrap_or_default()),
                        Ok(None) => loader.missing(),
                        Err(e) => loader.failed(e.to_string()),
                    }
                    reread.as_mut().reset(next_read(loader.state.loaded()));
                }
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
    })
}
