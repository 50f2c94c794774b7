//! Request budgets shared by every process on the database (table `request_budgets`): a token bucket per
//! budget, and a pause that one process's 429 puts on all of them.
//!
//! **Taking a token** is one statement: an `UPDATE ... RETURNING` that refills the bucket for the time since
//! it was last counted and takes a token if there is a whole one and no pause is in force. Its times come
//! from `clock_timestamp()`, not `now()`: a statement that waited for the row's lock (another process taking
//! a token) is re-evaluated on the row as that process left it, and `clock_timestamp()` is then the time it
//! got the lock, while `now()` would still be the statement's start, before that process's `refilled_at`
//! (the refill would run backwards). `refilled_at` only moves forward and the bucket never holds more than
//! its capacity, so however the statements interleave no time is credited twice. When no token is taken, the
//! same statement returns what the bucket held and the wait is computed here ([`BucketRate::wait`]): the
//! longer of the pause left and the time to the next whole token. The taker sleeps that long and asks again.
//!
//! **Rate and burst.** `rate` tokens a second (`TARDIS_RATE_LIMIT`), up to a capacity of `max(1, rate)`:
//! one second's worth, so an idle budget lets one second's requests go at once, and any window of `w`
//! seconds holds at most `capacity + rate · w` requests (twice the rate over one second, at worst; the
//! average over a long run is the rate). Without a rate limit there is no bucket, only the pause: each
//! request reads `paused_until`.
//!
//! **Pausing** moves `paused_until` to `GREATEST(paused_until, now + wait)`, so a shorter pause never cuts a
//! longer one short, and empties the bucket as of the pause's end, so the processes resume at the rate
//! rather than in a burst that would draw the next 429.
//!
//! A budget never fails a request (see `tardis::RequestBudget`): a statement that fails or takes longer than
//! [`STATEMENT_TIMEOUT`] is logged and the request goes ahead.

use std::time::Duration;

use super::runs::{Store, StoreError, query_error};
use crate::tardis::RequestBudget;

/// How long one budget statement may take before the request goes ahead without it.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest single sleep before asking the budget again (a pause is re-read at least this often).
const MAX_SLEEP: Duration = Duration::from_secs(10);

/// The shortest sleep after a refusal: the refusal may come from a statement that saw the bucket before
/// another process's update, so its own estimate can be zero.
const MIN_SLEEP: Duration = Duration::from_millis(2);

/// A token bucket's rate and capacity (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketRate {
    /// Tokens added per second.
    pub per_second: f64,
    /// The most the bucket holds: `max(1, per_second)`.
    pub capacity: f64,
}

impl BucketRate {
    /// `per_second` tokens a second (positive and finite: the configuration checks it), one second's worth
    /// of capacity, at least one token.
    pub fn new(per_second: f64) -> BucketRate {
        BucketRate { per_second, capacity: per_second.max(1.0) }
    }

    /// What a bucket that held `tokens` when counted, `elapsed_s` seconds ago, holds now (a negative
    /// `elapsed_s`: the refill starts in the future, at the end of a pause).
    pub fn available(&self, tokens: f64, elapsed_s: f64) -> f64 {
        (tokens + self.per_second * elapsed_s.max(0.0)).min(self.capacity)
    }

    /// Seconds until the bucket holds a whole token.
    pub fn until_token(&self, tokens: f64, elapsed_s: f64) -> f64 {
        let refill_starts_in = (-elapsed_s).max(0.0);
        refill_starts_in + (1.0 - self.available(tokens, elapsed_s)).max(0.0) / self.per_second
    }

    /// How long a refused taker sleeps: the longer of the pause left (`paused_s`) and the time to the next
    /// whole token, at least [`MIN_SLEEP`] and at most [`MAX_SLEEP`].
    pub fn wait(&self, tokens: f64, elapsed_s: f64, paused_s: f64) -> Duration {
        sleep_of(paused_s.max(self.until_token(tokens, elapsed_s)))
    }
}

fn sleep_of(seconds: f64) -> Duration {
    // `max` turns NaN into 0; what does not fit a `Duration` is beyond MAX_SLEEP anyway.
    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(MAX_SLEEP).clamp(MIN_SLEEP, MAX_SLEEP)
}

/// What asking the budget for a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Send it.
    Granted,
    /// Ask again after this long.
    Wait(Duration),
}

impl Store {
    /// Takes one token of budget `name` (with `rate`; without one, only checks the pause). `None` when the
    /// budget has no row (see [`Store::ensure_budget`]).
    pub async fn take_token(&self, name: &str, rate: Option<BucketRate>) -> Result<Option<Take>, StoreError> {
        let Some(rate) = rate else {
            let paused: Option<f64> = sqlx::query_scalar(
                "SELECT GREATEST(0, EXTRACT(EPOCH FROM paused_until) - EXTRACT(EPOCH FROM clock_timestamp()))::float8
                   FROM request_budgets WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(query_error("read the request budget's pause"))?;
            return Ok(paused.map(|s| if s > 0.0 { Take::Wait(sleep_of(s)) } else { Take::Granted }));
        };
        let row: Option<(bool, f64, f64, f64)> = sqlx::query_as(
            "WITH taken AS (
                 UPDATE request_budgets
                    SET tokens = LEAST($3, tokens
                                 + $2 * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - refilled_at))::float8) - 1,
                        refilled_at = GREATEST(refilled_at, clock_timestamp())
                  WHERE name = $1
                    AND paused_until <= clock_timestamp()
                    AND LEAST($3, tokens
                              + $2 * GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - refilled_at))::float8) >= 1
                 RETURNING 1
             )
             SELECT EXISTS (SELECT 1 FROM taken),
                    b.tokens,
                    EXTRACT(EPOCH FROM clock_timestamp() - b.refilled_at)::float8,
                    GREATEST(0, EXTRACT(EPOCH FROM b.paused_until) - EXTRACT(EPOCH FROM clock_timestamp()))::float8
               FROM request_budgets b
              WHERE b.name = $1",
        )
        .bind(name)
        .bind(rate.per_second)
        .bind(rate.capacity)
        .fetch_optional(self.pool())
        .await
        .map_err(query_error("take a token of the request budget"))?;
        Ok(row.map(
            |(granted, tokens, elapsed_s, paused_s)| {
                if granted { Take::Granted } else { Take::Wait(rate.wait(tokens, elapsed_s, paused_s)) }
            },
        ))
    }

    /// Creates budget `name` (empty, no pause) if it has no row; the migration creates `tardis`.
    pub async fn ensure_budget(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO request_budgets (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(self.pool())
            .await
            .map(|_| ())
            .map_err(query_error("create a request budget"))
    }

    /// Pauses budget `name` for `wait` from now for every process, unless a longer pause is in force, and
    /// empties its bucket as of the pause's end.
    pub async fn pause_budget(&self, name: &str, wait: Duration) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO request_budgets AS b (name, tokens, refilled_at, paused_until, pauses)
             VALUES ($1, 0, clock_timestamp() + make_interval(secs => $2), clock_timestamp() + make_interval(secs => $2), 1)
             ON CONFLICT (name) DO UPDATE
                SET paused_until = GREATEST(b.paused_until, clock_timestamp() + make_interval(secs => $2)),
                    refilled_at = GREATEST(b.refilled_at, clock_timestamp() + make_interval(secs => $2)),
                    tokens = 0,
                    pauses = b.pauses + 1",
        )
        .bind(name)
        .bind(wait.as_secs_f64())
        .execute(self.pool())
        .await
        .map(|_| ())
        .map_err(query_error("pause the request budget"))
    }
}

/// A request budget in Postgres, shared by every process on the database (see the module documentation).
#[derive(Debug, Clone)]
pub struct SharedBudget {
    store: Store,
    name: &'static str,
    rate: Option<BucketRate>,
}

impl SharedBudget {
    /// The Tardis budget's name.
    pub const TARDIS: &'static str = "tardis";

    /// Budget `name` on `store`: pauses always shared, and `rate_limit` requests a second when set.
    pub fn new(store: Store, name: &'static str, rate_limit: Option<f64>) -> SharedBudget {
        SharedBudget { store, name, rate: rate_limit.map(BucketRate::new) }
    }

    /// `statement`, given [`STATEMENT_TIMEOUT`] to answer.
    async fn bounded<T>(statement: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, String> {
        match tokio::time::timeout(STATEMENT_TIMEOUT, statement).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {} s", STATEMENT_TIMEOUT.as_secs())),
        }
    }

    /// Asks for a token until one is granted (creating the budget's row once if it has none).
    async fn take(&self) -> Result<Duration, String> {
        let mut waited = Duration::ZERO;
        let mut created = false;
        loop {
            match Self::bounded(self.store.take_token(self.name, self.rate)).await? {
                Some(Take::Granted) => return Ok(waited),
                Some(Take::Wait(wait)) => {
                    tokio::time::sleep(wait).await;
                    waited += wait;
                }
                None if !created => {
                    Self::bounded(self.store.ensure_budget(self.name)).await?;
                    created = true;
                }
                None => return Err("the budget's row keeps disappearing".to_owned()),
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestBudget for SharedBudget {
    async fn acquire(&self) {
        match self.take().await {
            Ok(waited) if waited > Duration::ZERO => {
                tracing::debug!(budget = self.name, waited_ms = waited.as_millis() as u64, "Request budget granted.");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(budget = self.name, %error, "The request budget is unavailable; sending without it.");
            }
        }
    }

    async fn pause(&self, wait: Duration) {
        let wait_ms = wait.as_millis() as u64;
        tracing::info!(budget = self.name, wait_ms, "Rate limited: pausing every process's requests.");
        if let Err(error) = Self::bounded(self.store.pause_budget(self.name, wait)).await {
            tracing::warn!(budget = self.name, %error, "Could not pause the shared request budget; only this request waits.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_capacity_is_one_second_of_the_rate_and_at_least_one_token() {
        assert_eq!(BucketRate::new(20.0).capacity, 20.0);
        assert_eq!(BucketRate::new(2.5).capacity, 2.5);
        assert_eq!(BucketRate::new(0.5).capacity, 1.0);
    }

    #[test]
    fn the_bucket_refills_at_the_rate_up_to_its_capacity_and_not_before_a_pause_ends() {
        let rate = BucketRate::new(4.0);
        assert!(close(rate.available(0.0, 0.5), 2.0));
        assert!(close(rate.available(1.5, 0.25), 2.5));
        assert!(close(rate.available(3.0, 10.0), 4.0), "capped");
        assert!(close(rate.available(0.0, -3.0), 0.0), "the refill starts at the pause's end");
    }

    #[test]
    fn the_wait_is_the_longer_of_the_pause_left_and_the_time_to_a_whole_token() {
        let rate = BucketRate::new(4.0);
        assert!(close(rate.until_token(0.0, 0.0), 0.25));
        assert!(close(rate.until_token(0.5, 0.0), 0.125));
        assert!(close(rate.until_token(0.5, 0.125), 0.0));
        assert!(close(rate.until_token(0.0, -1.0), 1.25), "the pause, then a token's refill");
        assert_eq!(rate.wait(0.0, 0.0, 0.0), Duration::from_millis(250));
        assert_eq!(rate.wait(0.0, 0.0, 0.8), Duration::from_millis(800));
        let slow = BucketRate::new(0.5);
        assert_eq!(slow.wait(0.0, 0.0, 0.0), Duration::from_secs(2), "one token every two seconds");
    }

    #[test]
    fn a_refused_taker_sleeps_a_little_at_least_and_asks_again_within_max_sleep() {
        let rate = BucketRate::new(10.0);
        assert_eq!(rate.wait(1.0, 0.0, 0.0), MIN_SLEEP, "a stale view that saw a token");
        assert_eq!(rate.wait(0.0, 0.0, 3600.0), MAX_SLEEP);
        assert_eq!(sleep_of(f64::NAN), MIN_SLEEP);
        assert_eq!(sleep_of(f64::INFINITY), MAX_SLEEP);
    }
}
