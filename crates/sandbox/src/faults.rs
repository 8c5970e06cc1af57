//! Fault injection and request accounting for the emulator: rules that make matching requests fail
//! (500, 409, 429 with Retry-After, a hang then 504, a dropped connection) on the Nth match, on every
//! match, at a rate, or add latency; and a log of every request so tests can assert what happened
//! ("no DELETE of taskrun X").

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// What a matching request gets.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// A `metav1.Status` error with this HTTP code (500 InternalError, 409 Conflict, 429
    /// TooManyRequests, 503 …). For 429 and 503, `retry_after` sets `Retry-After`.
    Error { code: u16, retry_after: Option<u32> },
    /// Hang for this long, then answer 504 Timeout.
    Timeout(Duration),
    /// Close the connection without an answer.
    Drop,
    /// Wait this long, then serve the request normally.
    Latency(Duration),
}

/// When a rule fires among its matching requests.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// Every matching request.
    Always,
    /// Only the Nth matching request (1-based).
    Nth(u64),
    /// The first N matching requests.
    FirstN(u64),
    /// Each matching request with this probability (0.0–1.0).
    Rate(f64),
}

/// One rule. `None` fields match anything. `verb` is the Kubernetes verb (`get`, `list`, `watch`,
/// `create`, `update`, `patch`, `delete`, `deletecollection`).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    pub verb: Option<String>,
    pub resource: Option<String>,
    /// `""` matches only requests without a subresource.
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The authenticated user making the request (e.g. only the retry server's calls).
    pub user: Option<String>,
    pub action: FaultAction,
    pub trigger: Trigger,
}

impl FaultRule {
    /// A rule on `verb` `resource` that always fires.
    pub fn new(verb: &str, resource: &str, action: FaultAction) -> FaultRule {
        FaultRule {
            verb: Some(verb.into()),
            resource: Some(resource.into()),
            subresource: None,
            namespace: None,
            name: None,
            user: None,
            action,
            trigger: Trigger::Always,
        }
    }
    /// Only requests by `user`.
    pub fn by_user(mut self, user: &str) -> Self {
        self.user = Some(user.into());
        self
    }
    pub fn subresource(mut self, s: &str) -> Self {
        self.subresource = Some(s.into());
        self
    }
    pub fn named(mut self, namespace: &str, name: &str) -> Self {
        self.namespace = Some(namespace.into());
        self.name = Some(name.into());
        self
    }
    /// Only requests in `namespace` (any name).
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
    pub fn trigger(mut self, t: Trigger) -> Self {
        self.trigger = t;
        self
    }
}

/// One request as the emulator saw it (after authentication).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub user: String,
}

/// A handle to remove a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultId(u64);

#[derive(Default)]
struct Inner {
    next: u64,
    rules: Vec<(FaultId, FaultRule, u64)>,
    log: Vec<RequestRecord>,
}

/// The emulator's fault table and request log (shared, changeable at runtime).
#[derive(Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

fn matches(r: &FaultRule, q: &RequestRecord) -> bool {
    let eq = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|w| w == got);
    eq(&r.verb, &q.verb)
        && eq(&r.resource, &q.resource)
        && eq(&r.subresource, &q.subresource)
        && eq(&r.namespace, &q.namespace)
        && eq(&r.name, &q.name)
        && eq(&r.user, &q.user)
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a rule.
    pub fn add(&self, rule: FaultRule) -> FaultId {
        let mut g = self.lock();
        g.next += 1;
        let id = FaultId(g.next);
        g.rules.push((id, rule, 0));
        id
    }

    /// Remove a rule.
    pub fn remove(&self, id: FaultId) {
        self.lock().rules.retain(|(i, _, _)| *i != id);
    }

    /// Remove every rule.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// How many requests matched rule `id` so far.
    pub fn matched(&self, id: FaultId) -> u64 {
        self.lock()
            .rules
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|r| r.2)
            .unwrap_or(0)
    }

    /// Record a request and return the faults it gets, in rule order (latencies first, then at most
    /// one failure).
    pub fn on_request(&self, q: RequestRecord) -> Vec<FaultAction> {
        let mut g = self.lock();
        g.log.push(q.clone());
        let mut out = Vec::new();
        let mut rng = rand::rng();
        for (_, rule, count) in g.rules.iter_mut() {
            if !matches(rule, &q) {
                continue;
            }
            *count += 1;
            let fire = match rule.trigger {
                Trigger::Always => true,
                Trigger::Nth(n) => *count == n,
                Trigger::FirstN(n) => *count <= n,
                Trigger::Rate(p) => rng.random_bool(p.clamp(0.0, 1.0)),
            };
            if fire {
                out.push(rule.action.clone());
            }
        }
        out.sort_by_key(|a| !matches!(a, FaultAction::Latency(_)));
        out
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().log.clone()
    }

    /// How many requests had this verb on this resource (any subresource, namespace, name).
    pub fn count(&self, verb: &str, resource: &str) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|r| r.verb == verb && r.resource == resource)
            .count()
    }

    /// How many requests had this verb on this object (no subresource).
    pub fn count_named(&self, verb: &str, resource: &str, namespace: &str, name: &str) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|r| {
                r.verb == verb
                    && r.resource == resource
                    && r.subresource.is_empty()
                    && r.namespace == namespace
                    && r.name == name
            })
            .count()
    }

    /// Forget the request log.
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(verb: &str, name: &str) -> RequestRecord {
        RequestRecord {
            verb: verb.into(),
            group: "tekton.dev".into(),
            resource: "taskruns".into(),
            subresource: String::new(),
            namespace: "demo".into(),
            name: name.into(),
            user: "u".into(),
        }
    }

    #[test]
    fn nth_and_counts() {
        let f = Faults::default();
        let id = f.add(
            FaultRule::new(
                "delete",
                "taskruns",
                FaultAction::Error {
                    code: 500,
                    retry_after: None,
                },
            )
            .trigger(Trigger::Nth(2)),
        );
        assert!(f.on_request(req("delete", "a")).is_empty());
        assert_eq!(f.on_request(req("delete", "b")).len(), 1);
        assert!(f.on_request(req("delete", "c")).is_empty());
        assert!(f.on_request(req("get", "c")).is_empty());
        assert_eq!(f.matched(id), 3);
        assert_eq!(f.count("delete", "taskruns"), 3);
        assert_eq!(f.count_named("delete", "taskruns", "demo", "b"), 1);
        assert_eq!(f.count_named("delete", "taskruns", "demo", "z"), 0);
    }
}
