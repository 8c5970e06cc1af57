//! Label and field selectors with the grammar of `k8s.io/apimachinery/pkg/labels/selector.go`
//! (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and `k8s.io/apimachinery/pkg/fields/selector.go`
//! (`=`, `==`, `!=` on the field labels a resource supports).

use serde_json::Value;

use super::status::StatusError;

/// One label requirement.
#[derive(Clone, Debug, PartialEq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector: all requirements must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(pub Vec<Requirement>);

fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn bad_label(sel: &str, why: &str) -> StatusError {
    StatusError::bad_request(format!("unable to parse requirement: {why}: {sel:?}"))
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, StatusError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| bad_label(whole, "found '', expected: '('"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    /// Parse `a=b,c!=d,e in (x,y),!f,g`.
    pub fn parse(s: &str) -> Result<LabelSelector, StatusError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top_level(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(bad_label(s, "empty requirement"));
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                Requirement::DoesNotExist(k.trim().to_string())
            } else if let Some((k, v)) = p.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once("==") {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = p.split_once('=') {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some(idx) = p.find(" notin ").or_else(|| p.find(" notin(")) {
                Requirement::NotIn(p[..idx].trim().into(), parse_set(&p[idx + 6..], s)?)
            } else if let Some(idx) = p.find(" in ").or_else(|| p.find(" in(")) {
                Requirement::In(p[..idx].trim().into(), parse_set(&p[idx + 3..], s)?)
            } else {
                Requirement::Exists(p.to_string())
            };
            let key = match &req {
                Requirement::Equals(k, _)
                | Requirement::NotEquals(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::DoesNotExist(k) => k,
            };
            if !valid_key(key) {
                return Err(bad_label(s, "invalid label key"));
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector: `(field, value, equal?)` terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(pub Vec<(String, String, bool)>);

/// Field labels supported beyond `metadata.name` / `metadata.namespace` (every resource), per
/// resource: pods (`pkg/registry/core/pod/strategy.go` `ToSelectableFields`), core events
/// (`pkg/registry/core/event/strategy.go`).
fn extra_fields(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parse `metadata.name=x,metadata.namespace!=y` and check the fields are supported.
    pub fn parse(s: &str, group: &str, resource: &str) -> Result<FieldSelector, StatusError> {
        let mut terms = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(terms));
        }
        for part in s.split(',') {
            let p = part.trim();
            let (k, v, eq) = if let Some((k, v)) = p.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = p.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = p.split_once('=') {
                (k, v, true)
            } else {
                return Err(StatusError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{p}'"
                )));
            };
            let k = k.trim();
            if k != "metadata.name"
                && k != "metadata.namespace"
                && !extra_fields(group, resource).contains(&k)
            {
                return Err(StatusError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            }
            terms.push((k.to_string(), v.trim().to_string(), eq));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether an object satisfies every term (a missing field reads as `""`).
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(k, v, eq)| {
            let ptr = format!("/{}", k.replace('.', "/"));
            let actual = match obj.pointer(&ptr) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "n", "namespace": "demo", "labels": labels}})
    }

    #[test]
    fn label_operators() {
        let o = obj(json!({"app": "a", "tier": "web"}));
        for (selector, matches) in [
            ("app=a", true),
            ("app==a", true),
            ("app!=a", false),
            ("app in (a, b),tier notin (db)", true),
            ("app notin (a)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("missing!=x", true),
            ("missing in (x)", false),
        ] {
            let parsed = LabelSelector::parse(selector).expect("parses");
            assert_eq!(parsed.matches(&o), matches, "{selector}");
        }
        assert!(LabelSelector::parse("app in a").is_err());
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let f = FieldSelector::parse(
            "metadata.name=n,metadata.namespace!=other",
            "tekton.dev",
            "pipelineruns",
        )
        .expect("parses");
        assert!(f.matches(&o));
        assert!(!FieldSelector::parse("metadata.name=z", "", "pods")
            .expect("parses")
            .matches(&o));
        let e = FieldSelector::parse("spec.x=1", "tekton.dev", "pipelineruns")
            .expect_err("unsupported");
        assert_eq!(e.message, "field label not supported: spec.x");
    }
}
