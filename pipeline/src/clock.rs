//! Time as an injectable dependency, so "yesterday", "not in the future" and "09:00 UTC" are testable.
//!
//! A clock tells the time and waits for an instant. The scheduler only ever waits through its clock, so a
//! test drives it with a [`ManualClock`] (time moves when the test says so) and never sleeps. This module
//! knows nothing of cron expressions or dates to run.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use market::{DayError, TradingDay};
use tokio::sync::watch;

#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    fn today(&self) -> TradingDay {
        TradingDay::from_date(self.now().date_naive())
    }

    /// The most recent complete day: the one the daily run processes.
    fn yesterday(&self) -> TradingDay {
        self.today().pred()
    }

    /// Returns once `now() >= t` (at once when `t` has passed).
    async fn sleep_until(&self, t: DateTime<Utc>);
}

/// `day`, or yesterday when none is given; a day that is not over yet by `clock` is refused.
pub fn day_or_yesterday(day: Option<TradingDay>, clock: &dyn Clock) -> Result<TradingDay, DayError> {
    match day {
        Some(day) => day.ensure_complete(clock.today()),
        None => Ok(clock.yesterday()),
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// The longest single sleep of the system clock: a wall-clock jump (NTP, a suspended machine) is noticed
/// within this long, since tokio's timers follow a monotonic clock, not the wall clock.
const MAX_SLEEP: Duration = Duration::from_secs(60);

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        loop {
            let left = t - Utc::now();
            if left <= TimeDelta::zero() {
                return;
            }
            tokio::time::sleep(left.to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP)).await;
        }
    }
}

/// A clock stopped at one instant. Waiting for a later instant waits forever: time never moves.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

#[async_trait::async_trait]
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        if t > self.0 {
            std::future::pending::<()>().await;
        }
    }
}

/// A clock that moves only when told to ([`ManualClock::set`], [`ManualClock::advance`]); every
/// `sleep_until` whose instant the new time reaches returns then. Clones share one time. Time never goes
/// backwards: setting an earlier instant is ignored.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock { now: Arc::new(watch::Sender::new(start)) }
    }

    /// Moves the time to `t` (when later than now), waking the sleepers it reaches.
    pub fn set(&self, t: DateTime<Utc>) {
        self.now.send_if_modified(|now| {
            let later = t > *now;
            if later {
                *now = t;
            }
            later
        });
    }

    pub fn advance(&self, by: TimeDelta) {
        self.set(self.now() + by);
    }
}

#[async_trait::async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let mut time = self.now.subscribe();
        // The sender lives as long as `self`, so the wait ends only by reaching `t`.
        let _ = time.wait_for(|now| *now >= t).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid instant").with_timezone(&Utc)
    }

    #[tokio::test]
    async fn a_manual_sleep_returns_only_once_time_reaches_its_instant() {
        let clock = ManualClock::new(at("2024-06-04T08:59:59Z"));
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(at("2024-06-04T09:00:00Z")).await }
        });
        tokio::task::yield_now().await;
        clock.advance(TimeDelta::milliseconds(500));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!sleeper.is_finished(), "half a second early");
        clock.set(at("2024-06-04T09:00:00Z"));
        tokio::time::timeout(Duration::from_secs(5), sleeper).await.expect("woken").expect("no panic");
        assert_eq!(clock.yesterday().to_string(), "2024-06-03");
    }

    #[tokio::test]
    async fn manual_time_never_goes_backwards_and_past_instants_do_not_wait() {
        let clock = ManualClock::new(at("2024-06-04T09:00:00Z"));
        clock.set(at("2024-06-01T00:00:00Z"));
        assert_eq!(clock.now(), at("2024-06-04T09:00:00Z"));
        tokio::time::timeout(Duration::from_secs(5), clock.sleep_until(at("2024-06-04T08:00:00Z")))
            .await
            .expect("an instant in the past does not wait");
        tokio::time::timeout(Duration::from_secs(5), FixedClock(at("2024-06-04T09:00:00Z")).sleep_until(clock.now()))
            .await
            .expect("a fixed clock is at its own instant");
    }
}
