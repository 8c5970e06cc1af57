//! Authentication, as a delegated Kubernetes API server does it:
//!
//! 1. A client certificate chaining to the requestheader CA, whose CN is in the allowed names (any
//!    CN when the list is empty), makes the requestheader headers trusted (`X-Remote-User`, repeated
//!    `X-Remote-Group`, `X-Remote-Extra-<key>`, `X-Remote-Uid`). On any other connection they are
//!    ignored. Rules from `staging/src/k8s.io/apiserver/pkg/authentication/request/headerrequest/requestheader.go`
//!    (`headerValue`, `allHeaderValues`, `newExtra`, `unescapeExtraKey`) and the CN check of
//!    `request/x509/x509.go` (`NewDynamicCAVerifier`).
//! 2. A client certificate chaining to `client-ca-file` authenticates as CN, groups = O
//!    (`x509.CommonNameUserConversion`).
//! 3. `Authorization: Bearer <token>` goes through a TokenReview (cached for the authentication TTL).
//!
//! Every authenticated user also gets `system:authenticated` (`group.NewAuthenticatedGroupAdder`,
//! used by the delegating authenticator), except `system:anonymous` and members of
//! `system:unauthenticated` (`AuthenticatedGroupAdder.AuthenticateRequest` skips them). Nothing
//! else is a user.
//!
//! A certificate's user name and the allowed-names check read the subject's *last* CN, as Go does
//! (`crypto/x509/pkix` `(*Name).FillFromRDNSequence` overwrites `CommonName` for each CN
//! attribute; `x509.CommonNameUserConversion` and `request/x509` `verifier.verifySubject` read
//! that field).
//!
//! The CAs, allowed names and header names come from the ConfigMap
//! `kube-system/extension-apiserver-authentication` (list values are JSON arrays inside strings),
//! which is watched (`authn_configmap`) so that rotations take effect without restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use http::HeaderMap;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{DistinguishedName, RootCertStore};
use tokio::sync::Semaphore;

use super::tls::{parse_certs, provider};
use super::token_cache::TokenCache;
use crate::api::UserInfo;

/// Namespace of the authentication ConfigMap.
pub const AUTH_CONFIGMAP_NAMESPACE: &str = "kube-system";
/// Name of the authentication ConfigMap kube-apiserver publishes for aggregated servers.
pub const AUTH_CONFIGMAP_NAME: &str = "extension-apiserver-authentication";
/// Group every authenticated user belongs to.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// Group of unauthenticated requests (`user.AllUnauthenticated`).
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// User name of unauthenticated requests (`user.Anonymous`).
pub const ANONYMOUS: &str = "system:anonymous";

/// A problem in the authentication ConfigMap.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Verifies that a client certificate chain leads to one CA bundle (validity, signatures, EKU
/// clientAuth), with the CA bundle current when it was built.
#[derive(Clone)]
pub struct CaVerifier {
    verifier: Arc<dyn ClientCertVerifier>,
    subjects: Vec<DistinguishedName>,
}

impl std::fmt::Debug for CaVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaVerifier({} CA)", self.subjects.len())
    }
}

impl CaVerifier {
    /// A verifier for the PEM bundle; `None` if the bundle holds no certificate.
    pub fn from_pem(key: &'static str, pem: &str) -> Result<Option<Self>, AuthConfigError> {
        let invalid = |message: String| AuthConfigError::Invalid { key, message };
        let certs = parse_certs(pem.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Ok(None);
        }
        let mut roots = RootCertStore::empty();
        for c in certs {
            roots.add(c).map_err(|e| invalid(e.to_string()))?;
        }
        let subjects = roots.subjects();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Some(CaVerifier { verifier, subjects }))
    }

    /// Whether `chain` (leaf first) chains to this CA now.
    pub fn verifies(&self, chain: &[CertificateDer<'static>]) -> bool {
        match chain.split_first() {
            Some((leaf, intermediates)) => self
                .verifier
                .verify_client_cert(leaf, intermediates, UnixTime::now())
                .is_ok(),
            None => false,
        }
    }
}

/// The requestheader part of the authentication ConfigMap.
#[derive(Clone, Debug)]
pub struct RequestHeaderConfig {
    pub ca: CaVerifier,
    /// CNs allowed to send requestheader headers; empty = any CN signed by the CA.
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub uid_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_headers_prefix: Vec<String>,
}

/// The authentication configuration read from the ConfigMap.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    pub client_ca: Option<CaVerifier>,
    pub requestheader: Option<RequestHeaderConfig>,
}

impl AuthConfig {
    /// Parses the ConfigMap's `data`. Keys as kube-apiserver writes them
    /// (`pkg/controlplane/controller/clusterauthenticationtrust/cluster_authentication_trust_controller.go`).
    /// Missing user, group and extra header lists default to kube-apiserver's own proxy headers
    /// (`X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-`), which kube-apiserver strips from
    /// incoming requests before proxying. The uid header list has no default, as in
    /// `headerrequest/requestheader_controller.go` (`loadRequestHeaderFor` reads
    /// `requestheader-uid-headers` and an absent key is an empty list): an aggregator too old to
    /// publish the key does not strip `X-Remote-Uid` either, so a caller could set it.
    pub fn from_configmap_data(data: &BTreeMap<String, String>) -> Result<Self, AuthConfigError> {
        let client_ca = match data.get("client-ca-file") {
            Some(pem) => CaVerifier::from_pem("client-ca-file", pem)?,
            None => None,
        };
        let requestheader = match data.get("requestheader-client-ca-file") {
            Some(pem) => match CaVerifier::from_pem("requestheader-client-ca-file", pem)? {
                Some(ca) => Some(RequestHeaderConfig {
                    ca,
                    allowed_names: json_list(data, "requestheader-allowed-names", &[])?,
                    username_headers: json_list(
                        data,
                        "requestheader-username-headers",
                        &["X-Remote-User"],
                    )?,
                    uid_headers: json_list(data, "requestheader-uid-headers", &[])?,
                    group_headers: json_list(
                        data,
                        "requestheader-group-headers",
                        &["X-Remote-Group"],
                    )?,
                    extra_headers_prefix: json_list(
                        data,
                        "requestheader-extra-headers-prefix",
                        &["X-Remote-Extra-"],
                    )?,
                }),
                None => None,
            },
            None => None,
        };
        Ok(AuthConfig {
            client_ca,
            requestheader,
        })
    }

    /// Subjects of both CAs, advertised in the TLS CertificateRequest.
    pub fn hint_subjects(&self) -> Vec<DistinguishedName> {
        let mut out = Vec::new();
        if let Some(rh) = &self.requestheader {
            out.extend(rh.ca.subjects.iter().cloned());
        }
        if let Some(c) = &self.client_ca {
            out.extend(c.subjects.iter().cloned());
        }
        out
    }
}

fn json_list(
    data: &BTreeMap<String, String>,
    key: &'static str,
    default: &[&str],
) -> Result<Vec<String>, AuthConfigError> {
    match data.get(key) {
        None => Ok(default.iter().map(|s| s.to_string()).collect()),
        Some(s) if s.trim().is_empty() => Ok(Vec::new()),
        Some(s) => serde_json::from_str::<Vec<String>>(s).map_err(|e| AuthConfigError::Invalid {
            key,
            message: format!("expected a JSON array of strings: {e}"),
        }),
    }
}

/// The live authentication configuration, whether it was ever loaded, and when the Kubernetes
/// API last answered for it. A configuration once loaded is kept through API errors, however long
/// (as `headerrequest.RequestHeaderAuthRequestController` and `dynamiccertificates.ConfigMapCAController`
/// keep their last content); readiness looks at [`AuthState::loaded`] and
/// [`AuthState::confirmed_within`].
#[derive(Default)]
pub struct AuthState {
    config: ArcSwap<AuthConfig>,
    loaded: AtomicBool,
    confirmed_at: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
}

impl AuthState {
    /// The configuration for the next request.
    pub fn config(&self) -> Arc<AuthConfig> {
        self.config.load_full()
    }
    /// Replace the configuration (marks it loaded).
    pub fn set(&self, config: AuthConfig) {
        self.config.store(Arc::new(config));
        self.loaded.store(true, Ordering::SeqCst);
    }
    /// Whether the ConfigMap was read and parsed at least once.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }
    /// Whether the Kubernetes API answered a read or watch of the ConfigMap within `bound`.
    pub fn confirmed_within(&self, bound: Duration) -> bool {
        self.confirmed_at
            .lock()
            .map(|g| g.is_some_and(|t| t.elapsed() <= bound))
            .unwrap_or(false)
    }
    /// The last error reading or parsing the ConfigMap, if the last attempt failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().map(|g| g.clone()).unwrap_or(None)
    }
    /// The API answered (`error`: the ConfigMap it returned did not parse, if so).
    pub(crate) fn confirm(&self, error: Option<String>) {
        if let Ok(mut g) = self.confirmed_at.lock() {
            *g = Some(Instant::now());
        }
        self.set_error(error);
    }
    /// A read or watch of the ConfigMap failed; the configuration loaded before stays in use.
    pub(crate) fn fail(&self, error: String) {
        self.set_error(Some(error));
    }
    fn set_error(&self, error: Option<String>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = error;
        }
    }
}

/// How a request was authenticated (for logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    RequestHeader,
    ClientCert,
    Token,
}

/// Authenticates requests against the live [`AuthState`] and TokenReview.
pub struct Authenticator {
    state: Arc<AuthState>,
    client: kube::Client,
    token_ttl: Duration,
    tokens: TokenCache,
    reviews: Semaphore,
    max_token_bytes: usize,
    certs: Mutex<HashMap<Vec<CertificateDer<'static>>, CachedVerdict>>,
}

/// A verdict, the configuration it was made against, and when.
struct CachedVerdict {
    config: Arc<AuthConfig>,
    at: Instant,
    verdict: CertVerdict,
}

/// Bounds of the bearer-token path.
#[derive(Clone, Copy, Debug)]
pub struct TokenLimits {
    /// Longer tokens are refused (401) without a TokenReview. Service account tokens are about
    /// 1 KiB, OIDC ID tokens a few KiB.
    pub max_token_bytes: usize,
    /// TokenReview answers kept.
    pub cache_entries: usize,
    /// Bytes the kept answers may take (user names, groups, extra).
    pub cache_bytes: usize,
    /// TokenReviews in flight at once; more requests wait for a slot (within the request timeout).
    pub max_concurrent_reviews: usize,
}

impl Default for TokenLimits {
    fn default() -> Self {
        TokenLimits {
            max_token_bytes: 16 * 1024,
            cache_entries: 4096,
            cache_bytes: 8 << 20,
            max_concurrent_reviews: 32,
        }
    }
}

/// Distinct client certificate chains whose verdicts are kept.
const CERT_CACHE_MAX: usize = 1024;

impl Authenticator {
    pub fn new(state: Arc<AuthState>, client: kube::Client, token_ttl: Duration) -> Self {
        Self::with_limits(state, client, token_ttl, TokenLimits::default())
    }

    pub fn with_limits(
        state: Arc<AuthState>,
        client: kube::Client,
        token_ttl: Duration,
        limits: TokenLimits,
    ) -> Self {
        Authenticator {
            state,
            client,
            token_ttl,
            tokens: TokenCache::new(token_ttl, limits.cache_entries, limits.cache_bytes),
            reviews: Semaphore::new(limits.max_concurrent_reviews.max(1)),
            max_token_bytes: limits.max_token_bytes,
            certs: Mutex::new(HashMap::new()),
        }
    }

    /// The TokenReview answers held now (entries, bytes).
    pub fn token_cache_size(&self) -> (usize, usize) {
        (self.tokens.len(), self.tokens.bytes())
    }

    /// The verdict on `peer`, reused from an earlier request while the authentication
    /// configuration is the same one, the chain is still within its validity and the verdict is
    /// younger than the authentication cache TTL (so that a not-yet-valid certificate is looked at
    /// again). Signature checks are then paid once per client chain, not once per request on a
    /// keep-alive connection (the front proxy's connections carry every proxied request).
    fn verdict(
        &self,
        config: &Arc<AuthConfig>,
        peer: &[CertificateDer<'static>],
    ) -> Option<CertVerdict> {
        if peer.is_empty() {
            return None;
        }
        if let Ok(cache) = self.certs.lock() {
            if let Some(c) = cache.get(peer) {
                let fresh = Arc::ptr_eq(&c.config, config)
                    && c.at.elapsed() < self.token_ttl
                    && c.verdict.valid_until.is_none_or(|t| SystemTime::now() < t);
                if fresh {
                    return Some(c.verdict.clone());
                }
            }
        }
        let verdict = certificate_verdict(config, peer)?;
        if let Ok(mut cache) = self.certs.lock() {
            if cache.len() >= CERT_CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                peer.to_vec(),
                CachedVerdict {
                    config: config.clone(),
                    at: Instant::now(),
                    verdict: verdict.clone(),
                },
            );
        }
        Some(verdict)
    }

    /// The user making the request, or `None` (→ 401). `peer` is the client certificate chain
    /// presented on the connection (leaf first), empty without one.
    pub async fn authenticate(
        &self,
        peer: &[CertificateDer<'static>],
        headers: &HeaderMap,
    ) -> Option<(UserInfo, AuthMethod)> {
        let config = self.state.config();
        if let Some(verdict) = self.verdict(&config, peer) {
            if let Some(user) = user_of_verdict(&config, &verdict, headers) {
                return Some(user);
            }
        }
        let token = bearer_token(headers)?;
        let user = self.token_review(token).await?;
        Some((with_authenticated_group(user), AuthMethod::Token))
    }

    /// The user a TokenReview says `token` is. The request carries no `Audit-ID`: the caller is
    /// not authenticated yet, so its header must not label an entry in the cluster's audit log
    /// (kube-apiserver gives the review its own id).
    async fn token_review(&self, token: &str) -> Option<UserInfo> {
        if token.len() > self.max_token_bytes {
            tracing::debug!(
                bytes = token.len(),
                "bearer token longer than the limit; refused without a TokenReview"
            );
            return None;
        }
        if let Some(answer) = self.tokens.get(token) {
            return answer;
        }
        let _slot = self.reviews.acquire().await.ok()?;
        // Another request may have asked for the same token while this one waited.
        if let Some(answer) = self.tokens.get(token) {
            return answer;
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer =
            match super::review::create(&self.client, super::review::TOKEN_REVIEWS, &review, None)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    // As kube-apiserver: an authenticator error is a 401; not cached.
                    tracing::warn!(error = %e, "TokenReview failed");
                    return None;
                }
            };
        let user = answer.status.and_then(|s| {
            if s.authenticated != Some(true) {
                return None;
            }
            let u = s.user?;
            let username = u.username.filter(|n| !n.is_empty())?;
            Some(UserInfo {
                username,
                uid: u.uid.filter(|x| !x.is_empty()),
                groups: u.groups.unwrap_or_default(),
                extra: u.extra.unwrap_or_default().into_iter().collect(),
            })
        });
        self.tokens.insert(token, user.clone());
        user
    }
}

/// Certificate-based authentication (requestheader first, then client CA); no network calls.
pub fn authenticate_certificate(
    config: &AuthConfig,
    peer: &[CertificateDer<'static>],
    headers: &HeaderMap,
) -> Option<(UserInfo, AuthMethod)> {
    let verdict = certificate_verdict(config, peer)?;
    user_of_verdict(config, &verdict, headers)
}

/// What verifying a client certificate chain against the configured CAs found: everything
/// certificate authentication needs except the request's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertVerdict {
    /// Subject CN and O values of the leaf.
    pub cn: String,
    pub orgs: Vec<String>,
    /// The chain is signed by the requestheader CA and the CN is allowed to send requestheader
    /// headers.
    pub requestheader: bool,
    /// The chain is signed by the client CA (and has a CN).
    pub client_ca: bool,
    /// The earliest `notAfter` in the chain: the verdict holds at most until then.
    pub valid_until: Option<SystemTime>,
}

/// Verifies `peer` (leaf first) against both CAs; `None` without a parseable leaf.
pub fn certificate_verdict(
    config: &AuthConfig,
    peer: &[CertificateDer<'static>],
) -> Option<CertVerdict> {
    let leaf = peer.first()?;
    let (cn, orgs) = subject_of(leaf)?;
    let requestheader = config.requestheader.as_ref().is_some_and(|rh| {
        (rh.allowed_names.is_empty() || rh.allowed_names.contains(&cn)) && rh.ca.verifies(peer)
    });
    let client_ca = !cn.is_empty()
        && config
            .client_ca
            .as_ref()
            .is_some_and(|ca| ca.verifies(peer));
    let valid_until = peer.iter().filter_map(not_after).min();
    Some(CertVerdict {
        cn,
        orgs,
        requestheader,
        client_ca,
        valid_until,
    })
}

/// The user of a request on a connection with this certificate verdict: the requestheader user
/// when the chain may send those headers and they name one, else the certificate's own user.
pub fn user_of_verdict(
    config: &AuthConfig,
    verdict: &CertVerdict,
    headers: &HeaderMap,
) -> Option<(UserInfo, AuthMethod)> {
    if verdict.requestheader {
        if let Some(user) = config
            .requestheader
            .as_ref()
            .and_then(|rh| from_request_headers(rh, headers))
        {
            return Some((with_authenticated_group(user), AuthMethod::RequestHeader));
        }
    }
    if verdict.client_ca {
        let user = UserInfo {
            username: verdict.cn.clone(),
            uid: None,
            groups: verdict.orgs.clone(),
            extra: BTreeMap::new(),
        };
        return Some((with_authenticated_group(user), AuthMethod::ClientCert));
    }
    None
}

fn not_after(der: &CertificateDer<'_>) -> Option<SystemTime> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let secs = cert.validity().not_after.timestamp();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// The user described by the requestheader headers; `None` without a non-empty user header.
pub fn from_request_headers(rh: &RequestHeaderConfig, headers: &HeaderMap) -> Option<UserInfo> {
    let username = first_value(headers, &rh.username_headers)?;
    let uid = first_value(headers, &rh.uid_headers);
    let groups = all_values(headers, &rh.group_headers);
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for prefix in &rh.extra_headers_prefix {
        let prefix = prefix.to_ascii_lowercase();
        for (name, value) in headers.iter() {
            // hyper lowercases header names.
            let Some(rest) = name.as_str().strip_prefix(prefix.as_str()) else {
                continue;
            };
            if rest.is_empty() {
                continue;
            }
            let key = unescape_extra_key(&rest.to_ascii_lowercase());
            extra.entry(key).or_default().push(value_string(value));
        }
    }
    Some(UserInfo {
        username,
        uid,
        groups,
        extra,
    })
}

fn first_value(headers: &HeaderMap, names: &[String]) -> Option<String> {
    names.iter().find_map(|n| {
        headers
            .get(n.as_str())
            .map(value_string)
            .filter(|v| !v.is_empty())
    })
}

fn all_values(headers: &HeaderMap, names: &[String]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| {
            headers
                .get_all(n.as_str())
                .iter()
                .map(value_string)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

fn value_string(v: &http::HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

/// `url.PathUnescape`, falling back to the raw key when it is not valid %-encoding or UTF-8.
pub fn unescape_extra_key(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return encoded.to_string();
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map(|s| s.into_owned())
        .unwrap_or_else(|_| encoded.to_string())
}

/// Adds `system:authenticated` as `group.AuthenticatedGroupAdder.AuthenticateRequest`
/// (`staging/src/k8s.io/apiserver/pkg/authentication/group/authenticated_group_adder.go`) does:
/// not to `system:anonymous`, not to a user already in `system:authenticated` or in
/// `system:unauthenticated`.
pub fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if user.username == ANONYMOUS
        || user.in_group(ALL_AUTHENTICATED)
        || user.in_group(ALL_UNAUTHENTICATED)
    {
        return user;
    }
    user.groups.push(ALL_AUTHENTICATED.to_string());
    user
}

/// The CN and O values of a certificate's subject. The CN is the *last* CN attribute, as Go's
/// `(*pkix.Name).FillFromRDNSequence` leaves it: a subject `CN=front-proxy-client, CN=mallory` is
/// `mallory` here as in kube-apiserver, for the allowed-names check and the user name alike.
pub fn subject_of(der: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .last()
        .unwrap_or("")
        .to_string();
    let orgs = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_string)
        .collect();
    Some((cn, orgs))
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, as
/// `request/bearertoken/bearertoken.go`).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests;
