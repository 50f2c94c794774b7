//! Time as an injectable dependency, so "yesterday", "not in the future" and "09:00 UTC" are testable.

use chrono::{DateTime, Utc};
use market::TradingDay;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    fn today(&self) -> TradingDay {
        TradingDay::from_date(self.now().date_naive())
    }

    /// The most recent complete day: the one the daily run processes.
    fn yesterday(&self) -> TradingDay {
        self.today().pred()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at one instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}
