//! How the simulator talks to the Kubernetes API: its error, the resources it reads and writes,
//! and the conversions between kube's dynamic objects and the JSON the models work on.

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;

/// Errors of one simulator pass.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be converted.
    #[error("object conversion: {0}")]
    Json(#[from] serde_json::Error),
}

pub(super) fn tekton(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "tekton.dev".into(),
        version: "v1".into(),
        api_version: "tekton.dev/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub(super) fn pods() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
    }
}

pub(super) fn is_status(e: &kube::Error, f: fn(&kube::core::Status) -> bool) -> bool {
    matches!(e, kube::Error::Api(s) if f(s))
}

pub(super) fn to_value(o: &DynamicObject, ar: &ApiResource) -> Result<Value, serde_json::Error> {
    let mut v = serde_json::to_value(o)?;
    v["apiVersion"] = ar.api_version.clone().into();
    v["kind"] = ar.kind.clone().into();
    Ok(v)
}

pub(super) fn from_value(v: Value) -> Result<DynamicObject, serde_json::Error> {
    serde_json::from_value(v)
}

/// Creates `obj` through `api`; AlreadyExists is not an error. Returns the writes: 1, or 0 when
/// the object already existed.
pub(super) async fn create_unless_exists(
    api: &Api<DynamicObject>,
    obj: Value,
) -> Result<usize, SimulatorError> {
    match api.create(&PostParams::default(), &from_value(obj)?).await {
        Ok(_) => Ok(1),
        Err(e) if is_status(&e, kube::core::Status::is_already_exists) => Ok(0),
        Err(e) => Err(e.into()),
    }
}
