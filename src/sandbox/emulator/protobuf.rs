//! Just enough of Kubernetes' protobuf encoding to read the review requests kubectl's typed clients
//! send as `application/vnd.kubernetes.protobuf` (`kubectl auth can-i` posts a
//! SelfSubjectAccessReview that way). The envelope is `k8s\0` + `runtime.Unknown`
//! (`k8s.io/apimachinery/pkg/runtime/generated.proto`); field numbers of the review specs are from
//! `k8s.io/api/authorization/v1/generated.proto` and `authentication/v1/generated.proto`.
//! Answers are JSON (client-go decodes by the response Content-Type).

use serde_json::{json, Map, Value};

use super::status::StatusError;

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\x00";

fn bad(what: &str) -> StatusError {
    StatusError::bad_request(format!(
        "the body of the request could not be decoded: protobuf: {what}"
    ))
}

/// One decoded field: a length-delimited one (number, bytes), or any other (skipped).
enum Field<'a> {
    Other,
    Bytes(u32, &'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, StatusError> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or_else(|| bad("truncated varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("varint too long"))
}

fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, StatusError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => {
                varint(buf, &mut pos)?;
                out.push(Field::Other);
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| bad("length"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or_else(|| bad("truncated field"))?;
                out.push(Field::Bytes(num, &buf[pos..end]));
                pos = end;
            }
            1 => {
                pos += 8;
                out.push(Field::Other);
            }
            5 => {
                pos += 4;
                out.push(Field::Other);
            }
            _ => return Err(bad("unsupported wire type")),
        }
    }
    Ok(out)
}

fn strings_of(buf: &[u8], names: &[(u32, &str)]) -> Result<Value, StatusError> {
    let mut m = Map::new();
    for f in fields(buf)? {
        if let Field::Bytes(n, b) = f {
            if let Some((_, name)) = names.iter().find(|(k, _)| *k == n) {
                m.insert((*name).into(), json!(String::from_utf8_lossy(b)));
            }
        }
    }
    Ok(Value::Object(m))
}

const RESOURCE_ATTRIBUTES: &[(u32, &str)] = &[
    (1, "namespace"),
    (2, "verb"),
    (3, "group"),
    (4, "version"),
    (5, "resource"),
    (6, "subresource"),
    (7, "name"),
];
const NON_RESOURCE_ATTRIBUTES: &[(u32, &str)] = &[(1, "path"), (2, "verb")];

fn access_review_spec(buf: &[u8]) -> Result<Value, StatusError> {
    let mut spec = Map::new();
    let mut groups = Vec::new();
    let mut extra = Map::new();
    for f in fields(buf)? {
        match f {
            Field::Bytes(1, b) => {
                spec.insert(
                    "resourceAttributes".into(),
                    strings_of(b, RESOURCE_ATTRIBUTES)?,
                );
            }
            Field::Bytes(2, b) => {
                spec.insert(
                    "nonResourceAttributes".into(),
                    strings_of(b, NON_RESOURCE_ATTRIBUTES)?,
                );
            }
            Field::Bytes(3, b) => {
                spec.insert("user".into(), json!(String::from_utf8_lossy(b)));
            }
            Field::Bytes(4, b) => groups.push(json!(String::from_utf8_lossy(b))),
            Field::Bytes(5, b) => {
                // map<string, ExtraValue{repeated string items = 1}>
                let mut key = String::new();
                let mut vals = Vec::new();
                for e in fields(b)? {
                    match e {
                        Field::Bytes(1, k) => key = String::from_utf8_lossy(k).into(),
                        Field::Bytes(2, v) => {
                            for i in fields(v)? {
                                if let Field::Bytes(1, s) = i {
                                    vals.push(json!(String::from_utf8_lossy(s)));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                extra.insert(key, Value::Array(vals));
            }
            Field::Bytes(6, b) => {
                spec.insert("uid".into(), json!(String::from_utf8_lossy(b)));
            }
            _ => {}
        }
    }
    if !groups.is_empty() {
        spec.insert("groups".into(), Value::Array(groups));
    }
    if !extra.is_empty() {
        spec.insert("extra".into(), Value::Object(extra));
    }
    Ok(Value::Object(spec))
}

fn token_review_spec(buf: &[u8]) -> Result<Value, StatusError> {
    let mut spec = Map::new();
    let mut audiences = Vec::new();
    for f in fields(buf)? {
        match f {
            Field::Bytes(1, b) => {
                spec.insert("token".into(), json!(String::from_utf8_lossy(b)));
            }
            Field::Bytes(2, b) => audiences.push(json!(String::from_utf8_lossy(b))),
            _ => {}
        }
    }
    if !audiences.is_empty() {
        spec.insert("audiences".into(), Value::Array(audiences));
    }
    Ok(Value::Object(spec))
}

/// Decode a protobuf review request into its JSON form (`apiVersion`, `kind`, `spec`).
pub fn decode_review(body: &[u8]) -> Result<Value, StatusError> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("missing k8s envelope"))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for f in fields(rest)? {
        match f {
            Field::Bytes(1, tm) => {
                for t in fields(tm)? {
                    match t {
                        Field::Bytes(1, v) => api_version = String::from_utf8_lossy(v).into(),
                        Field::Bytes(2, k) => kind = String::from_utf8_lossy(k).into(),
                        _ => {}
                    }
                }
            }
            Field::Bytes(2, r) => raw = r,
            _ => {}
        }
    }
    let mut spec = json!({});
    for f in fields(raw)? {
        if let Field::Bytes(2, s) = f {
            spec = match kind.as_str() {
                "SubjectAccessReview" | "SelfSubjectAccessReview" => access_review_spec(s)?,
                "TokenReview" => token_review_spec(s)?,
                other => return Err(bad(&format!("kind {other:?} is only accepted as JSON"))),
            };
        }
    }
    Ok(json!({"apiVersion": api_version, "kind": kind, "metadata": {}, "spec": spec}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u32, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![((num << 3) | 2) as u8, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_self_subject_access_review() {
        let attrs = [
            field(1, b"demo"),
            field(2, b"create"),
            field(3, b"retry.tekton.dev"),
            field(5, b"pipelineruns"),
            field(6, b"retry"),
        ]
        .concat();
        let spec = field(1, &attrs);
        let obj = [field(1, &[]), field(2, &spec)].concat();
        let tm = [
            field(1, b"authorization.k8s.io/v1"),
            field(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let body = [MAGIC.to_vec(), field(1, &tm), field(2, &obj)].concat();
        let v = decode_review(&body).expect("decodes");
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
        assert_eq!(v["spec"]["resourceAttributes"]["subresource"], "retry");
        assert_eq!(v["spec"]["resourceAttributes"]["namespace"], "demo");
        assert!(decode_review(b"{}").is_err());
    }
}
