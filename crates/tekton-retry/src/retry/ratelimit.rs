//! A token bucket for the engine's requests to kube-apiserver, as client-go's `QPS`/`Burst`
//! (`k8s.io/client-go/util/flowcontrol` `NewTokenBucketRateLimiter`): at most `burst` requests at
//! once after a quiet spell, `qps` per second on average. Requests beyond it wait their turn
//! instead of reaching kube-apiserver's priority and fairness as a flood.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests per second and burst toward kube-apiserver.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub qps: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            qps: 100.0,
            burst: 200,
        }
    }
}

/// The bucket shared by every request of one engine.
#[derive(Debug)]
pub struct TokenBucket {
    limit: RateLimit,
    /// (tokens left, when they were counted)
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(limit: RateLimit) -> Self {
        TokenBucket {
            limit,
            state: Mutex::new((f64::from(limit.burst.max(1)), Instant::now())),
        }
    }

    /// Takes a token; how long the caller must wait before its request (zero when one was left).
    pub fn reserve(&self, now: Instant) -> Duration {
        let qps = self.limit.qps.max(0.001);
        let burst = f64::from(self.limit.burst.max(1));
        let Ok(mut s) = self.state.lock() else {
            return Duration::ZERO;
        };
        let (tokens, at) = *s;
        let refilled = (tokens + now.saturating_duration_since(at).as_secs_f64() * qps).min(burst);
        let left = refilled - 1.0;
        *s = (left, now);
        if left >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-left / qps)
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requests_are_spaced_by_the_rate() {
        let b = TokenBucket::new(RateLimit {
            qps: 10.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        // The fourth waits one token's time, the fifth two.
        assert_eq!(b.reserve(t0), Duration::from_millis(100));
        assert_eq!(b.reserve(t0), Duration::from_millis(200));
        // After a quiet second the bucket is full again, but never above the burst.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(b.reserve(later), Duration::ZERO);
        }
        assert!(b.reserve(later) > Duration::ZERO);
    }
}
