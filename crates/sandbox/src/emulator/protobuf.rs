//! Just enough of Kubernetes' protobuf encoding to read what kubectl's typed clients send as
//! `application/vnd.kubernetes.protobuf`: the review requests (`kubectl auth can-i` posts a
//! SelfSubjectAccessReview, `kubectl auth whoami` a SelfSubjectReview) and the Namespace and
//! ConfigMap of `kubectl create namespace|configmap`. The envelope is `k8s\0` + `runtime.Unknown`
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

/// One decoded field: a varint (number, value), a length-delimited one (number, bytes), or a
/// fixed-width one (skipped).
enum Field<'a> {
    Other,
    Varint(u32, u64),
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
                let v = varint(buf, &mut pos)?;
                out.push(Field::Varint(num, v));
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

fn text(b: &[u8]) -> Value {
    json!(String::from_utf8_lossy(b))
}

/// A `map<string, string>` entry (key = 1, value = 2); `binary` values are base64-encoded.
fn map_entry(b: &[u8], binary: bool) -> Result<(String, Value), StatusError> {
    let (mut k, mut v) = (String::new(), json!(""));
    for f in fields(b)? {
        match f {
            Field::Bytes(1, x) => k = String::from_utf8_lossy(x).into(),
            Field::Bytes(2, x) if binary => {
                v = json!(base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    x
                ))
            }
            Field::Bytes(2, x) => v = text(x),
            _ => {}
        }
    }
    Ok((k, v))
}

/// `ObjectMeta` (`k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`): the fields a client sets.
fn object_meta(buf: &[u8]) -> Result<Value, StatusError> {
    let mut m = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    for f in fields(buf)? {
        match f {
            Field::Bytes(1, b) => {
                m.insert("name".into(), text(b));
            }
            Field::Bytes(2, b) => {
                m.insert("generateName".into(), text(b));
            }
            Field::Bytes(3, b) => {
                m.insert("namespace".into(), text(b));
            }
            Field::Bytes(6, b) => {
                m.insert("resourceVersion".into(), text(b));
            }
            Field::Bytes(11, b) => {
                let (k, v) = map_entry(b, false)?;
                labels.insert(k, v);
            }
            Field::Bytes(12, b) => {
                let (k, v) = map_entry(b, false)?;
                annotations.insert(k, v);
            }
            Field::Bytes(14, b) => finalizers.push(text(b)),
            _ => {}
        }
    }
    for (k, v) in [("labels", labels), ("annotations", annotations)] {
        if !v.is_empty() {
            m.insert(k.into(), Value::Object(v));
        }
    }
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    m.retain(|_, v| v.as_str() != Some(""));
    Ok(Value::Object(m))
}

fn body_of(kind: &str, raw: &[u8]) -> Result<Map<String, Value>, StatusError> {
    let mut out = Map::new();
    let (mut data, mut binary) = (Map::new(), Map::new());
    for f in fields(raw)? {
        match (kind, f) {
            (_, Field::Bytes(1, b)) => {
                out.insert("metadata".into(), object_meta(b)?);
            }
            ("SubjectAccessReview" | "SelfSubjectAccessReview", Field::Bytes(2, b)) => {
                out.insert("spec".into(), access_review_spec(b)?);
            }
            ("TokenReview", Field::Bytes(2, b)) => {
                out.insert("spec".into(), token_review_spec(b)?);
            }
            ("Namespace", Field::Bytes(2, b)) => {
                let fins: Vec<Value> = fields(b)?
                    .into_iter()
                    .filter_map(|x| match x {
                        Field::Bytes(1, s) => Some(text(s)),
                        _ => None,
                    })
                    .collect();
                out.insert("spec".into(), json!({"finalizers": fins}));
            }
            ("ConfigMap", Field::Bytes(2, b)) => {
                let (k, v) = map_entry(b, false)?;
                data.insert(k, v);
            }
            ("ConfigMap", Field::Bytes(3, b)) => {
                let (k, v) = map_entry(b, true)?;
                binary.insert(k, v);
            }
            ("ConfigMap", Field::Varint(4, v)) => {
                out.insert("immutable".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        out.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        out.insert("binaryData".into(), Value::Object(binary));
    }
    Ok(out)
}

/// The kinds whose protobuf form this module reads.
pub const DECODABLE: &[&str] = &[
    "SubjectAccessReview",
    "SelfSubjectAccessReview",
    "SelfSubjectReview",
    "TokenReview",
    "Namespace",
    "ConfigMap",
];

/// Decode a protobuf request body into its JSON form (`apiVersion`, `kind`, `metadata`, and the
/// kind's fields). Kinds outside [`DECODABLE`] are refused with 415.
pub fn decode(body: &[u8]) -> Result<Value, StatusError> {
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
    if !DECODABLE.contains(&kind.as_str()) {
        return Err(StatusError::new(
            415,
            "UnsupportedMediaType",
            format!("the sandbox reads {kind} only as JSON, not {MEDIA_TYPE}"),
        ));
    }
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    out.insert("metadata".into(), json!({}));
    out.extend(body_of(&kind, raw)?);
    Ok(Value::Object(out))
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
    fn decodes_a_configmap() {
        let meta = [
            field(1, b"c"),
            field(11, &[field(1, b"app"), field(2, b"x")].concat()),
        ]
        .concat();
        let obj = [
            field(1, &meta),
            field(2, &[field(1, b"k"), field(2, b"v")].concat()),
        ]
        .concat();
        let tm = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC.to_vec(), field(1, &tm), field(2, &obj)].concat();
        let v = decode(&body).expect("decodes");
        assert_eq!(v["metadata"], json!({"name": "c", "labels": {"app": "x"}}));
        assert_eq!(v["data"], json!({"k": "v"}));
        let tm = [field(1, b"v1"), field(2, b"Pod")].concat();
        let pod = [MAGIC.to_vec(), field(1, &tm), field(2, &[])].concat();
        assert_eq!(decode(&pod).expect_err("pods only as JSON").code, 415);
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
        let v = decode(&body).expect("decodes");
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
        assert_eq!(v["spec"]["resourceAttributes"]["subresource"], "retry");
        assert_eq!(v["spec"]["resourceAttributes"]["namespace"], "demo");
        assert!(decode(b"{}").is_err());
    }
}
