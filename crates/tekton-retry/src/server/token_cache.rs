//! The cache of TokenReview answers, bounded like k8s.io/apiserver's
//! (`staging/src/k8s.io/apiserver/pkg/authentication/token/cache/cached_token_authenticator.go`):
//! entries are keyed by an HMAC-SHA256 of the token under a random key made when the process
//! starts (`keyFunc`: the token itself is never kept, and a cache key says nothing about it outside
//! this process), every entry expires after the TTL, and both the number of entries and the bytes
//! the answers take are bounded: when an insert would cross a bound, expired entries go first,
//! then the oldest ones.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::hmac;

use crate::api::UserInfo;

/// Fixed cost counted per entry besides the strings of its answer (key, timestamps, map slot).
const ENTRY_OVERHEAD: usize = 128;

type Key = [u8; 32];

struct Entry {
    at: Instant,
    user: Option<UserInfo>,
    bytes: usize,
}

struct Inner {
    map: HashMap<Key, Entry>,
    /// Insertion order (a key may appear again after a refresh; stale positions are skipped).
    order: VecDeque<(Key, Instant)>,
    bytes: usize,
}

/// TokenReview answers (a user, or `None` = not authenticated) for `ttl`, at most `max_entries`
/// of them taking at most `max_bytes`.
pub struct TokenCache {
    key: hmac::Key,
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

/// 32 bytes from std's randomly keyed SipHash and the clock: the key of last resort.
fn fallback_key_bytes() -> [u8; 32] {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u128(nanos);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes
}

impl TokenCache {
    pub fn new(ttl: Duration, max_entries: usize, max_bytes: usize) -> Self {
        let rng = ring::rand::SystemRandom::new();
        // Generating 32 random bytes only fails without an OS random source, where TLS cannot
        // work either; fall back to a key from std's hash keys (seeded from the OS once per
        // thread) mixed with the clock, so the key is still unknown to clients.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &fallback_key_bytes()));
        TokenCache {
            key,
            ttl,
            max_entries: max_entries.max(1),
            max_bytes,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    fn key_of(&self, token: &str) -> Key {
        let tag = hmac::sign(&self.key, token.as_bytes());
        let mut k = [0u8; 32];
        k.copy_from_slice(tag.as_ref());
        k
    }

    /// The cached answer for `token` if one is younger than the TTL: `Some(None)` is a cached
    /// "not authenticated".
    pub fn get(&self, token: &str) -> Option<Option<UserInfo>> {
        let key = self.key_of(token);
        let inner = self.inner.lock().ok()?;
        let e = inner.map.get(&key)?;
        (e.at.elapsed() < self.ttl).then(|| e.user.clone())
    }

    /// Remembers the answer for `token`. An answer bigger than the whole byte budget is not kept.
    pub fn insert(&self, token: &str, user: Option<UserInfo>) {
        let key = self.key_of(token);
        let bytes = ENTRY_OVERHEAD + user.as_ref().map_or(0, user_bytes);
        if bytes > self.max_bytes {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let inner = &mut *inner;
        if let Some(old) = inner.map.remove(&key) {
            inner.bytes -= old.bytes;
        }
        // Expired entries at the front go first, then the oldest until the new one fits.
        while let Some(&(k, at)) = inner.order.front() {
            let live = inner.map.get(&k).is_some_and(|e| e.at == at);
            let expired = at.elapsed() >= self.ttl;
            let over =
                inner.map.len() + 1 > self.max_entries || inner.bytes + bytes > self.max_bytes;
            if live && !expired && !over {
                break;
            }
            inner.order.pop_front();
            if live {
                if let Some(e) = inner.map.remove(&k) {
                    inner.bytes -= e.bytes;
                }
            }
        }
        let at = Instant::now();
        inner.order.push_back((key, at));
        inner.map.insert(key, Entry { at, user, bytes });
        inner.bytes += bytes;
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.map.len()).unwrap_or(0)
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes counted for the entries held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().map(|i| i.bytes).unwrap_or(0)
    }
}

/// What an answer costs: the strings it holds plus a slot per string.
fn user_bytes(u: &UserInfo) -> usize {
    const SLOT: usize = 24;
    u.username.len()
        + u.uid.as_ref().map_or(0, |s| s.len())
        + u.groups.iter().map(|g| g.len() + SLOT).sum::<usize>()
        + u.extra
            .iter()
            .map(|(k, v)| k.len() + SLOT + v.iter().map(|s| s.len() + SLOT).sum::<usize>())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: usize) -> UserInfo {
        let mut u = UserInfo::new(name, &[]);
        u.groups = (0..groups).map(|i| format!("group-{i:04}")).collect();
        u
    }

    #[test]
    fn the_fallback_key_is_not_a_constant() {
        let (a, b) = (fallback_key_bytes(), fallback_key_bytes());
        assert_ne!(a, b, "two keys made one after the other differ");
        assert!(a.iter().any(|x| *x != a[0]), "{a:?}");
    }

    #[test]
    fn answers_are_found_by_token_and_expire() {
        let c = TokenCache::new(Duration::from_millis(50), 10, 1 << 20);
        c.insert("t1", Some(user("alice", 1)));
        c.insert("t2", None);
        assert_eq!(
            c.get("t1").flatten().map(|u| u.username),
            Some("alice".into())
        );
        assert_eq!(c.get("t2"), Some(None), "a cached refusal");
        assert_eq!(c.get("t3"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("t1"), None, "expired");
        // The next insert sweeps the expired entries away.
        c.insert("t3", None);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn the_entry_count_is_bounded() {
        let c = TokenCache::new(Duration::from_secs(60), 100, 1 << 30);
        for i in 0..1_000 {
            c.insert(&format!("token-{i}"), None);
            assert!(c.len() <= 100, "{} entries after {i}", c.len());
        }
        assert_eq!(c.len(), 100);
        // The newest are kept, the oldest went.
        assert!(c.get("token-999").is_some());
        assert!(c.get("token-0").is_none());
    }

    #[test]
    fn the_bounds_are_reached_exactly_and_an_answer_again_replaces_its_entry() {
        // A refusal costs the entry overhead alone: two fill the budget to the byte.
        let c = TokenCache::new(Duration::from_secs(60), 2, 2 * ENTRY_OVERHEAD);
        c.insert("t1", None);
        c.insert("t2", None);
        assert_eq!((c.len(), c.bytes()), (2, 2 * ENTRY_OVERHEAD));
        assert!(c.get("t1").is_some(), "a full cache keeps what fits");
        // The same token again: its old entry's bytes are given back first.
        c.insert("t2", None);
        assert_eq!((c.len(), c.bytes()), (2, 2 * ENTRY_OVERHEAD));
        let alice = Some(user("alice", 0));
        let c = TokenCache::new(Duration::from_secs(60), 10, 1 << 20);
        c.insert("t", alice.clone());
        let once = c.bytes();
        c.insert("t", alice);
        assert_eq!((c.len(), c.bytes()), (1, once));
    }

    #[test]
    fn an_answer_is_counted_by_its_strings_and_a_slot_each() {
        let mut u = UserInfo::new("alice", &["dev"]);
        u.uid = Some("u-1".into());
        u.extra
            .insert("scopes".into(), vec!["a".into(), "bc".into()]);
        // 5 + 3, the group 3 + 24, the extra key 6 + 24 and its values 1 + 24 and 2 + 24.
        assert_eq!(user_bytes(&u), 5 + 3 + 27 + 30 + 25 + 26);
        let c = TokenCache::new(Duration::from_secs(60), 10, 1 << 20);
        assert!(c.is_empty());
        c.insert("t", Some(u));
        assert!(!c.is_empty());
        assert_eq!(c.bytes(), ENTRY_OVERHEAD + 116);
        // An answer that takes the whole budget to the byte is kept.
        let exact = TokenCache::new(Duration::from_secs(60), 10, ENTRY_OVERHEAD);
        exact.insert("t", None);
        assert_eq!(exact.len(), 1);
    }

    #[test]
    fn the_bytes_are_bounded() {
        let budget = 64 * 1024;
        let c = TokenCache::new(Duration::from_secs(60), 100_000, budget);
        for i in 0..1_000 {
            // ~1,500 bytes of groups each.
            c.insert(&format!("token-{i}"), Some(user(&format!("u{i}"), 50)));
            assert!(c.bytes() <= budget, "{} bytes after {i}", c.bytes());
        }
        assert!(c.len() > 10 && c.len() < 100, "{} entries", c.len());
        // An answer larger than the whole budget is not cached at all.
        c.insert("huge", Some(user("h", 10_000)));
        assert!(c.get("huge").is_none());
        assert!(c.bytes() <= budget);
    }

    #[test]
    fn the_key_is_a_keyed_hash_not_the_token() {
        let a = TokenCache::new(Duration::from_secs(60), 10, 1 << 20);
        let b = TokenCache::new(Duration::from_secs(60), 10, 1 << 20);
        let token = "x".repeat(10_000);
        assert_eq!(a.key_of(&token).len(), 32, "32 bytes whatever the token");
        assert_ne!(a.key_of(&token), b.key_of(&token), "a key per process");
        assert_eq!(a.key_of(&token), a.key_of(&token));
    }
}
