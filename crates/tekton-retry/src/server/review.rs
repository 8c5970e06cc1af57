//! POSTs a TokenReview or SubjectAccessReview to the Kubernetes API. A SubjectAccessReview carries
//! the authenticated caller's `Audit-ID`, so that it shows up in the cluster's audit log next to the
//! request that caused it; a TokenReview carries none (its caller is not authenticated yet).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Path of the SubjectAccessReview collection.
pub const SUBJECT_ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
/// Path of the TokenReview collection.
pub const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// Creates `review` at `path` and returns the answered object.
pub async fn create<T: Serialize + DeserializeOwned>(
    client: &kube::Client,
    path: &str,
    review: &T,
    audit_id: Option<&str>,
) -> Result<T, kube::Error> {
    let body = serde_json::to_vec(review).map_err(kube::Error::SerdeError)?;
    let mut req = http::Request::post(path).header(http::header::CONTENT_TYPE, "application/json");
    if let Some(v) = audit_id.and_then(|id| http::HeaderValue::from_str(id).ok()) {
        req = req.header("Audit-ID", v);
    }
    let req = req.body(body).map_err(kube::Error::HttpError)?;
    client.request::<T>(req).await
}
