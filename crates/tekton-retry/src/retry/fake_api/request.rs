//! A request to the in-memory API as its hooks see it, and the selectors it carries.

use http::Method;
use serde_json::Value;

/// A request as a hook sees it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// get, list, watch, create, update, patch, delete.
    pub verb: &'static str,
    /// The collection's path (`/apis/tekton.dev/v1/namespaces/ns/pipelineruns`).
    pub collection: String,
    pub name: String,
    /// The subresource (`status`, `log`), or empty.
    pub sub: String,
    pub query: String,
    pub body: Option<Value>,
}

impl Seen {
    /// What a patch changes: its top-level fields, `metadata` only when it changes more than the
    /// resourceVersion it is fenced by (`spec`, `status`, `metadata+spec`).
    pub fn patched(&self) -> String {
        let Some(body) = self.body.as_ref().and_then(Value::as_object) else {
            return String::new();
        };
        let fenced_only = |v: &Value| {
            v.as_object()
                .is_some_and(|m| m.keys().all(|k| k == "resourceVersion"))
        };
        let keys = body
            .iter()
            .filter(|(k, v)| *k != "metadata" || !fenced_only(v));
        keys.map(|(k, _)| k.as_str()).collect::<Vec<_>>().join("+")
    }

    /// `verb plural[/sub] [name]`, as [`Store::requests`] lists it.
    pub fn line(&self) -> String {
        let plural = self.collection.rsplit('/').next().unwrap_or_default();
        let sub = match self.sub.as_str() {
            "" => String::new(),
            s => format!("/{s}"),
        };
        format!("{} {plural}{sub} {}", self.verb, self.name)
            .trim_end()
            .to_string()
    }
}

pub(super) fn parse(method: &Method, path: &str, query: String, body: &[u8]) -> Option<Seen> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let at = segments.iter().position(|s| *s == "namespaces")?;
    let collection = format!("/{}", segments.get(..at + 3)?.join("/"));
    let name = segments.get(at + 3).unwrap_or(&"").to_string();
    let sub = segments.get(at + 4).unwrap_or(&"").to_string();
    let watching = param(&query, "watch") == "true";
    let verb = match (method.as_str(), name.is_empty()) {
        ("GET", true) if watching => "watch",
        ("GET", true) => "list",
        ("GET", false) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        _ => return None,
    };
    Some(Seen {
        verb,
        collection,
        name,
        sub,
        query,
        body: serde_json::from_slice(body).ok(),
    })
}

/// The decoded value of `key` in a query string (empty when absent).
pub fn param(query: &str, key: &str) -> String {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .to_string()
        })
        .unwrap_or_default()
}

/// Whether `obj` matches a label selector (`k=v`, `k in (a,b)`, comma-separated) and a field
/// selector (`metadata.name=x`).
pub(super) fn selects(obj: &Value, labels: &str, fields: &str) -> bool {
    let label = |k: &str| {
        obj["metadata"]["labels"][k.trim()]
            .as_str()
            .map(str::to_string)
    };
    let labels_match = split_terms(labels).iter().all(|term| {
        if let Some((k, set)) = term.split_once(" in ") {
            let set = set.trim().trim_start_matches('(').trim_end_matches(')');
            label(k).is_some_and(|v| set.split(',').any(|s| s.trim() == v))
        } else if let Some((k, v)) = term.split_once('=') {
            label(k).as_deref() == Some(v.trim())
        } else {
            label(term).is_some()
        }
    });
    let fields_match =
        fields
            .split(',')
            .filter(|t| !t.is_empty())
            .all(|t| match t.split_once('=') {
                Some(("metadata.name", v)) => name_of(obj) == v,
                _ => false,
            });
    labels_match && fields_match
}

/// Splits a label selector at the commas outside parentheses.
fn split_terms(selector: &str) -> Vec<String> {
    let (mut terms, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for ch in selector.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    terms.push(current);
    terms.into_iter().filter(|t| !t.trim().is_empty()).collect()
}

/// The object's name.
pub(super) fn name_of(obj: &Value) -> String {
    obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
