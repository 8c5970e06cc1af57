//! The two objects the self-managed certificate lives in: the Secret in the server's namespace
//! (read, created once, updated only at the resourceVersion read) and the `caBundle` of the
//! server's own APIService (merge patch). The calls are the ones listed in
//! [`crate::rbac::CERT_API_CALLS`].

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;

use super::material::KeyedCert;
use super::plan::Stored;

/// Annotation on the Secret: when its current CA was made (RFC 3339).
pub const STAGED_AT_ANNOTATION: &str = "retry.tekton.dev/ca-staged-at";
/// Keys of the Secret's data.
pub const CA_CRT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_BUNDLE: &str = "ca-bundle.crt";

/// A failed API call, with what to grant when it was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{verb} Secret {namespace}/{name}: {source}{hint}")]
    Secret {
        verb: &'static str,
        namespace: String,
        name: String,
        source: kube::Error,
        hint: &'static str,
    },
    #[error("patch APIService {name} caBundle: {source}{hint}")]
    ApiService {
        name: String,
        source: kube::Error,
        hint: &'static str,
    },
    #[error("APIService {0} did not keep the caBundle it was patched with")]
    BundleNotKept(String),
}

fn hint(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(s) if s.code == 403 => {
            " (the server's ServiceAccount needs the Role tekton-retry-certificate and the ClusterRole tekton-retry-apiservice from release.yaml)"
        }
        _ => "",
    }
}

/// What a write of the Secret found.
#[derive(Debug)]
pub enum Written {
    Ok(Box<Secret>),
    /// Someone else wrote first (409): read again.
    Conflict,
}

/// The Secret and the APIService of one server.
#[derive(Clone)]
pub struct CertStore {
    secrets: Api<Secret>,
    apiservices: Api<APIService>,
    namespace: String,
    secret: String,
    apiservice: String,
}

impl CertStore {
    pub fn new(client: kube::Client, namespace: &str, secret: &str, apiservice: &str) -> Self {
        CertStore {
            secrets: Api::namespaced(client.clone(), namespace),
            apiservices: Api::all(client),
            namespace: namespace.into(),
            secret: secret.into(),
            apiservice: apiservice.into(),
        }
    }

    fn secret_error(&self, verb: &'static str, source: kube::Error) -> StoreError {
        StoreError::Secret {
            verb,
            namespace: self.namespace.clone(),
            name: self.secret.clone(),
            hint: hint(&source),
            source,
        }
    }

    /// The Secret, or None when it does not exist.
    pub async fn read(&self) -> Result<Option<Secret>, StoreError> {
        self.secrets
            .get_opt(&self.secret)
            .await
            .map_err(|e| self.secret_error("get", e))
    }

    /// Creates the Secret (`prev` None) or replaces it at `prev`'s resourceVersion.
    pub async fn write(&self, prev: Option<&Secret>, next: &Stored) -> Result<Written, StoreError> {
        let mut secret = prev.cloned().unwrap_or_else(|| Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(self.secret.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/name".to_string(),
                    "tekton-retry".to_string(),
                )])),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            ..Default::default()
        });
        fill(&mut secret, next);
        let result = match prev {
            None => self.secrets.create(&PostParams::default(), &secret).await,
            Some(_) => {
                self.secrets
                    .replace(&self.secret, &PostParams::default(), &secret)
                    .await
            }
        };
        match result {
            Ok(s) => Ok(Written::Ok(Box::new(s))),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Written::Conflict),
            Err(e) => Err(self.secret_error(if prev.is_none() { "create" } else { "update" }, e)),
        }
    }

    /// Sets the APIService `caBundle` to `bundle` (PEM); a no-op patch when it already is.
    pub async fn patch_bundle(&self, bundle: &str) -> Result<(), StoreError> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bundle);
        let patch = serde_json::json!({"spec": {"caBundle": b64}});
        let got = self
            .apiservices
            .patch(
                &self.apiservice,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|source| StoreError::ApiService {
                name: self.apiservice.clone(),
                hint: hint(&source),
                source,
            })?;
        let kept = got
            .spec
            .and_then(|s| s.ca_bundle)
            .is_some_and(|b| b.0 == bundle.as_bytes());
        if !kept {
            return Err(StoreError::BundleNotKept(self.apiservice.clone()));
        }
        Ok(())
    }
}

fn fill(secret: &mut Secret, s: &Stored) {
    let data = secret.data.get_or_insert_with(BTreeMap::new);
    for (k, v) in [
        (CA_CRT, &s.ca.cert),
        (CA_KEY, &s.ca.key),
        (TLS_CRT, &s.leaf.cert),
        (TLS_KEY, &s.leaf.key),
        (CA_BUNDLE, &s.bundle),
    ] {
        data.insert(k.into(), ByteString(v.as_bytes().to_vec()));
    }
    let annotations = secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    match s.staged_at {
        Some(t) => {
            annotations.insert(STAGED_AT_ANNOTATION.into(), t.to_rfc3339());
        }
        None => {
            annotations.remove(STAGED_AT_ANNOTATION);
        }
    }
}

/// The Secret's contents; missing keys read as empty text (the plan replaces what it cannot read).
pub fn stored(secret: &Secret) -> Stored {
    let get = |k: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default()
    };
    let staged_at = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(STAGED_AT_ANNOTATION))
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    Stored {
        ca: KeyedCert {
            cert: get(CA_CRT),
            key: get(CA_KEY),
        },
        leaf: KeyedCert {
            cert: get(TLS_CRT),
            key: get(TLS_KEY),
        },
        bundle: get(CA_BUNDLE),
        staged_at,
    }
}
