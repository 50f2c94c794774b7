//! Each stage against the fakes: what the Tardis client retries and what it does not, the candles
//! built from downloaded files, the BigQuery set-up and load jobs, and the validation stage.

mod candles;
mod download;
mod upload;
mod validation;

use harness::{World, WorldOptions};
use market::TradingDay;

pub fn day() -> TradingDay {
    TradingDay::parse("2024-06-04").expect("valid day")
}

/// A small world: two pairs at a twentieth of the normal trade rate.
pub async fn small_world(seed: u64) -> World {
    World::start(
        WorldOptions::new(seed, day()).activity(0.05).pairs(&[("binance-futures", "BTCUSDT"), ("bitmex", "XBTUSD")]),
    )
    .await
    .expect("world starts (is Postgres set up? see README)")
}

/// The dataset path of a file of the world's day.
pub fn file_path(exchange: &str, symbol: &str) -> String {
    format!("/v1/{exchange}/trades/{}/{symbol}.csv.gz", day().slashed())
}
