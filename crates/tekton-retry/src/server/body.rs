//! The request body of `POST …/retry`: read with a size limit while streaming (chunked bodies have
//! no Content-Length; `kubectl create --raw` sends neither a length nor a Content-Type), then decoded
//! strictly into a [`PipelineRunRetry`].

use bytes::Bytes;
use http::HeaderMap;
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::api::{ApiError, PipelineRunRetry, StatusReason, API_VERSION, KIND, MAX_BODY_BYTES};

/// Longest `spec.reason` accepted: it is written into an annotation of the run and into the
/// message of an Event (whose `note` kube-apiserver limits to 1 KiB).
pub const MAX_REASON_BYTES: usize = 1024;

fn too_large() -> ApiError {
    ApiError::too_large(format!(
        "the request body is larger than {MAX_BODY_BYTES} bytes (1 MiB); a PipelineRunRetry is a few hundred bytes: send only apiVersion, kind, metadata and spec"
    ))
}

/// Checks the Content-Type: none (means JSON) or `application/json` with any parameters; else 415.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.is_empty() || essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(ApiError::new(
        StatusReason::UnsupportedMediaType,
        format!(
            "the body of a retry must be JSON (Content-Type application/json, or none); got {ct:?}"
        ),
    ))
}

/// Reads the whole body, refusing (413) as soon as more than [`MAX_BODY_BYTES`] arrive or a
/// Content-Length announces more.
pub async fn read_limited<B>(headers: &HeaderMap, body: B) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(len) = headers.get(http::header::CONTENT_LENGTH) {
        if let Ok(n) = len.to_str().unwrap_or("").trim().parse::<u64>() {
            if n > MAX_BODY_BYTES as u64 {
                return Err(too_large());
            }
        }
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body failed: {e}"
        ))),
    }
}

/// Decodes a body for the run `namespace/name`: empty or `{}` is the default request; unknown
/// fields, a wrong `apiVersion`/`kind`, or metadata naming another run are a 400.
pub fn decode(bytes: &[u8], namespace: &str, name: &str) -> Result<PipelineRunRetry, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(PipelineRunRetry::default());
    }
    let invalid = |e: String| {
        ApiError::bad_request(format!("the request body is not a valid {KIND}: {e}"))
            .with_name(name)
    };
    // A JSON object is required: serde would also build a struct from an array.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(invalid("expected a JSON object".into()));
    }
    let req: PipelineRunRetry =
        serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    if let Some(v) = &req.api_version {
        if v != API_VERSION {
            return Err(ApiError::bad_request(format!(
                "apiVersion must be {API_VERSION:?}, got {v:?}"
            ))
            .with_name(name));
        }
    }
    if let Some(k) = &req.kind {
        if k != KIND {
            return Err(
                ApiError::bad_request(format!("kind must be {KIND:?}, got {k:?}")).with_name(name),
            );
        }
    }
    if let Some(reason) = &req.spec.reason {
        if reason.len() > MAX_REASON_BYTES {
            return Err(ApiError::invalid(
                format!("{KIND}.retry.tekton.dev {name:?} is invalid: spec.reason: Too long: may not be more than {MAX_REASON_BYTES} bytes"),
                vec![crate::api::Cause::invalid(
                    "spec.reason",
                    format!("Too long: may not be more than {MAX_REASON_BYTES} bytes (it has {}); it is recorded on the run and in an Event, so keep it to a sentence", reason.len()),
                )],
            )
            .with_name(name));
        }
    }
    if let Some(n) = &req.metadata.name {
        if !n.is_empty() && n != name {
            return Err(ApiError::bad_request(format!(
                "metadata.name {n:?} in the body does not match the PipelineRun {name:?} in the URL"
            ))
            .with_name(name));
        }
    }
    if let Some(ns) = &req.metadata.namespace {
        if !ns.is_empty() && ns != namespace {
            return Err(ApiError::bad_request(format!(
                "metadata.namespace {ns:?} in the body does not match the namespace {namespace:?} in the URL"
            ))
            .with_name(name));
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FinallyPolicy;

    #[test]
    fn empty_and_braces_are_the_default() {
        assert_eq!(
            decode(b"", "ns", "n").expect("ok"),
            PipelineRunRetry::default()
        );
        assert_eq!(
            decode(b" \n", "ns", "n").expect("ok"),
            PipelineRunRetry::default()
        );
        assert_eq!(
            decode(b"{}", "ns", "n").expect("ok"),
            PipelineRunRetry::default()
        );
    }

    #[test]
    fn full_request_decodes() {
        let r = decode(
            br#"{"apiVersion":"retry.tekton.dev/v1alpha1","kind":"PipelineRunRetry","metadata":{"name":"n","namespace":"ns","labels":{"a":"b"}},"spec":{"finally":"Keep","restartTasks":["a"]}}"#,
            "ns",
            "n",
        )
        .expect("ok");
        assert_eq!(r.spec.finally, Some(FinallyPolicy::Keep));
        assert_eq!(r.spec.restart_tasks, vec!["a"]);
    }

    #[test]
    fn refusals_are_400() {
        for body in [
            &br#"{"spec":{"bogus":1}}"#[..],
            br#"{"bogus":1}"#,
            br#"{"#,
            br#"{"apiVersion":"v1"}"#,
            br#"{"kind":"Pod"}"#,
            br#"{"metadata":{"name":"other"}}"#,
            br#"{"metadata":{"namespace":"other"}}"#,
            br#"[]"#,
        ] {
            let e = decode(body, "ns", "n").expect_err("refused");
            assert_eq!(e.code(), 400, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_long_reason_is_422_naming_the_limit() {
        let ok = format!(
            r#"{{"spec":{{"reason":"{}"}}}}"#,
            "r".repeat(MAX_REASON_BYTES)
        );
        assert!(decode(ok.as_bytes(), "ns", "n").is_ok());
        let long = format!(
            r#"{{"spec":{{"reason":"{}"}}}}"#,
            "r".repeat(MAX_REASON_BYTES + 1)
        );
        let e = decode(long.as_bytes(), "ns", "n").expect_err("refused");
        assert_eq!(e.code(), 422);
        assert!(e.message.contains("1024 bytes"), "{}", e.message);
        assert_eq!(e.causes[0].field, "spec.reason");
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        h.insert(
            "content-type",
            "application/json; charset=utf-8".parse().expect("v"),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert("content-type", "application/yaml".parse().expect("v"));
        assert_eq!(check_content_type(&h).expect_err("415").code(), 415);
    }

    #[tokio::test]
    async fn size_limit_counts_while_streaming() {
        let ok = http_body_util::Full::new(Bytes::from(vec![b' '; MAX_BODY_BYTES]));
        assert_eq!(
            read_limited(&HeaderMap::new(), ok)
                .await
                .expect("fits")
                .len(),
            MAX_BODY_BYTES
        );
        let big = http_body_util::Full::new(Bytes::from(vec![b' '; MAX_BODY_BYTES + 1]));
        assert_eq!(
            read_limited(&HeaderMap::new(), big)
                .await
                .expect_err("413")
                .code(),
            413
        );
        let mut h = HeaderMap::new();
        h.insert(
            "content-length",
            (MAX_BODY_BYTES + 1).to_string().parse().expect("v"),
        );
        let empty = http_body_util::Empty::<Bytes>::new();
        assert_eq!(read_limited(&h, empty).await.expect_err("413").code(), 413);
    }
}
