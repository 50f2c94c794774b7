//! End to end: one date of generated market data through every stage of the in-process pipeline,
//! against the mock Tardis, the fake BigQuery and a real Postgres, compared with the ground truth.

mod clean_run;
mod credentials;
mod rerun;

use harness::{World, WorldOptions};
use market::TradingDay;

/// A Monday, so the generator's weekday activity applies.
pub fn day() -> TradingDay {
    TradingDay::parse("2024-06-03").expect("valid day")
}

/// A world serving `day()` at a tenth of a realistic trade rate: every mechanism, a fraction of the rows.
pub async fn world(seed: u64) -> World {
    World::start(WorldOptions::new(seed, day()).activity(0.1))
        .await
        .expect("world starts (is Postgres set up? see README)")
}
