//! Retries: the one mechanism every client of the workspace uses (the Tardis client, the BigQuery client's
//! API calls, uploads and load-job reruns, the harness's Slack poster).
//!
//! An operation is a sequence of attempts. Each failed attempt says whether it is worth repeating
//! ([`Attempt::Retry`], with the wait the server asked for, if it did) or not ([`Attempt::Final`]). The wait
//! before retry `n` is exponential backoff with *equal jitter*: uniform in `[d/2, d]` where
//! `d = min(base · 2^(n−1), max)`, so a retry is never immediate and concurrent clients spread apart. A
//! server-requested wait (`Retry-After`) replaces the computed one; one longer than the policy's cap ends the
//! operation at once, since it means "the quota is spent", not "busy for a moment".
//!
//! This module decides how long to wait and when to stop. Whether a failure is transient is each client's
//! call, from what its vendor documents as retryable.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    /// Upper bound of the first computed wait; doubled for every further retry.
    pub base_delay: Duration,
    /// Upper bound of a computed wait.
    pub max_delay: Duration,
    /// A server asking to wait longer than this (`Retry-After`) ends the operation: the quota is exhausted,
    /// not momentarily busy.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// Production defaults: 8 attempts, waits from 1 s doubling to at most 60 s, `Retry-After` honoured up to
    /// 300 s (the official Tardis client's own limit).
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

    /// The computed wait before retry number `retry` (1 for the first retry), with equal jitter (see the
    /// module documentation).
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let ceiling = self.base_delay.saturating_mul(1u32 << exp).min(self.max_delay);
        let half = ceiling / 2;
        let jitter_nanos = rand::rng().random_range(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX));
        half + Duration::from_nanos(jitter_nanos)
    }
}

/// How one failed attempt ended.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Transient: try again, after `after` when the server said how long (`Retry-After`), else after the
    /// backoff. `reason` is logged and, if attempts run out, reported.
    Retry { reason: String, after: Option<Duration> },
    /// Permanent: stop with this error.
    Final(E),
}

impl<E> Attempt<E> {
    /// A transient failure with no server-requested wait.
    pub fn retry(reason: impl Into<String>) -> Attempt<E> {
        Attempt::Retry { reason: reason.into(), after: None }
    }
}

/// Why an operation ended without success.
#[derive(Debug, PartialEq, Eq)]
pub enum GaveUp<E> {
    /// An attempt failed permanently.
    Final(E),
    /// Every attempt failed transiently; `last` is the last attempt's reason.
    Exhausted { attempts: u32, last: String },
    /// The server asked to wait `requested`, more than the policy's `cap`.
    WaitTooLong { requested: Duration, cap: Duration, reason: String },
}

/// Runs `attempt(n)` for n = 1, 2, … until it succeeds, fails permanently, asks for a wait beyond the cap, or
/// `policy.max_attempts` attempts have failed. `what` names the operation in the logs (never a secret).
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, what: &str, mut attempt: F) -> Result<T, GaveUp<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut n = 1;
    loop {
        match attempt(n).await {
            Ok(value) => return Ok(value),
            Err(Attempt::Final(err)) => return Err(GaveUp::Final(err)),
            Err(Attempt::Retry { reason, after }) => {
                if let Some(requested) = after
                    && requested > policy.max_retry_after
                {
                    return Err(GaveUp::WaitTooLong { requested, cap: policy.max_retry_after, reason });
                }
                if n >= max_attempts {
                    return Err(GaveUp::Exhausted { attempts: n, last: reason });
                }
                let wait = after.unwrap_or_else(|| policy.backoff(n));
                tracing::warn!(what, attempt = n, wait_ms = wait.as_millis() as u64, %reason, "Attempt failed, retrying.");
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

/// The wait a response's `Retry-After` header asks for: delta-seconds (`120`) or an HTTP-date (`Wed, 21 Oct
/// 2015 07:28:00 GMT`, a date in the past meaning no wait). `None` when there is none or it cannot be read.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use reqwest::header::HeaderValue;

    use super::*;

    const TINY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        max_retry_after: Duration::from_millis(50),
    };

    #[test]
    fn backoff_doubles_within_equal_jitter_and_is_capped() {
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

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, GaveUp<String>> = retry(&TINY, "test", |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < 3 { Err(Attempt::retry(format!("busy {n}"))) } else { Ok(n) } }
        })
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn attempts_run_out_with_the_last_reason_and_a_final_error_stops_at_once() {
        let exhausted: Result<(), GaveUp<String>> =
            retry(&TINY, "test", |n| async move { Err(Attempt::retry(format!("busy {n}"))) }).await;
        assert_eq!(exhausted, Err(GaveUp::Exhausted { attempts: 3, last: "busy 3".to_owned() }));
        let calls = AtomicU32::new(0);
        let fatal: Result<(), GaveUp<String>> = retry(&TINY, "test", |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Attempt::Final("denied".to_owned())) }
        })
        .await;
        assert_eq!((fatal, calls.load(Ordering::SeqCst)), (Err(GaveUp::Final("denied".to_owned())), 1));
    }

    #[tokio::test]
    async fn a_requested_wait_is_honoured_up_to_the_cap_and_beyond_it_ends_the_operation() {
        let started = std::time::Instant::now();
        let honoured: Result<u32, GaveUp<()>> = retry(&TINY, "test", |n| async move {
            if n == 1 {
                Err(Attempt::Retry { reason: "429".to_owned(), after: Some(Duration::from_millis(30)) })
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(honoured, Ok(2));
        assert!(started.elapsed() >= Duration::from_millis(30), "waited what the server asked");
        let refused: Result<(), GaveUp<()>> = retry(&TINY, "test", |_| async {
            Err(Attempt::Retry { reason: "429".to_owned(), after: Some(Duration::from_secs(3600)) })
        })
        .await;
        assert_eq!(
            refused,
            Err(GaveUp::WaitTooLong {
                requested: Duration::from_secs(3600),
                cap: TINY.max_retry_after,
                reason: "429".to_owned()
            })
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(RETRY_AFTER, HeaderValue::from_str(value).expect("valid header"));
            map
        };
        assert_eq!(retry_after(&headers("120")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&headers(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), Some(Duration::ZERO), "in the past");
        let later = (chrono::Utc::now() + chrono::TimeDelta::seconds(90)).format("%a, %d %b %Y %H:%M:%S GMT");
        let wait = retry_after(&headers(&later.to_string())).expect("a date");
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90), "{wait:?}");
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}
