//! Retry policy shared by the Tardis and BigQuery clients: exponential backoff with full jitter,
//! capped, and a server-requested delay (`Retry-After`) that wins over the computed one.
//!
//! This module decides *how long* to wait; whether an error is retryable is decided by each client,
//! from what its vendor documents as retryable.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for every further retry.
    pub base_delay: Duration,
    /// Upper bound of a computed delay.
    pub max_delay: Duration,
    /// A server asking to wait longer than this (`Retry-After`) is treated as "give up": the quota is
    /// exhausted, not momentarily busy.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// Production defaults: 8 attempts, 1 s doubling to at most 60 s, `Retry-After` honoured up to 300 s
    /// (the official Tardis client's own limit).
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        max_retry_after: Duration::from_secs(300),
    };

    /// Fast retries for tests against loopback fakes.
    pub const FAST: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
    };

    /// Delay before retry number `retry` (1 for the first retry): uniform in [d/2, d] where
    /// d = min(base · 2^(retry−1), max). Half-jitter keeps retries from being immediate while still
    /// spreading concurrent clients apart.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let ceiling = self.base_delay.saturating_mul(1u32 << exp).min(self.max_delay);
        let half = ceiling / 2;
        let jitter_nanos = rand::rng().random_range(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX));
        half + Duration::from_nanos(jitter_nanos)
    }

    /// The delay to honour for a server-requested wait, or `None` when it exceeds `max_retry_after`.
    pub fn retry_after(&self, requested: Duration) -> Option<Duration> {
        (requested <= self.max_retry_after).then_some(requested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(1),
        };
        for _ in 0..200 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let late = policy.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000), "{late:?}");
        }
    }

    #[test]
    fn retry_after_beyond_the_cap_means_give_up() {
        let policy = RetryPolicy::DEFAULT;
        assert_eq!(policy.retry_after(Duration::from_secs(30)), Some(Duration::from_secs(30)));
        assert_eq!(policy.retry_after(Duration::from_secs(301)), None);
    }
}
