//! The coverage matrix: for each documented rule of the candles and of the table layout, the seeded defect
//! that breaks that rule and nothing else, the harness check that catches it, and what its finding says.
//! `harness coverage` prints it (and with `--run` proves it); the defect suite asserts every row, and that
//! every scored check is the catcher of at least one defect.

use std::sync::Arc;

use market::TradingDay;
use market::checks::{Status, ids as market_ids};

use crate::defects::Defect;
use crate::postgres::PostgresServer;
use crate::run::{RunError, score_world};
use crate::scoring::ids;
use crate::world::{World, WorldOptions};

/// One row of the matrix.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Rule {
    /// A stable name of the rule.
    pub id: &'static str,
    /// What the rule is about: `candles_1m`, `instruments`, or `run record`.
    pub table: &'static str,
    /// The rule, as the README's table layout states it.
    pub rule: &'static str,
    /// The defect that breaks it.
    pub defect: Defect,
    /// The check that must fail on that defect.
    pub check: &'static str,
    /// Text the check's finding must contain, so that it names the column or the rule.
    pub finding: &'static str,
}

const fn rule(
    id: &'static str,
    table: &'static str,
    rule: &'static str,
    defect: Defect,
    check: &'static str,
    finding: &'static str,
) -> Rule {
    Rule { id, table, rule, defect, check, finding }
}

/// Every documented rule, the defect that breaks it, and the check that catches it.
pub const MATRIX: &[Rule] = &[
    rule(
        "candles.exchange_time",
        "candles_1m",
        "a trade belongs to the minute of its exchange timestamp, never local_timestamp",
        Defect::LocalTimeBuckets,
        ids::CANDLES_EQUAL_TRUTH,
        "local_timestamp",
    ),
    rule(
        "candles.utc",
        "candles_1m",
        "open_time is the minute's start in UTC",
        Defect::ShiftedHour,
        ids::CANDLES_EQUAL_TRUTH,
        "open_time one hour late",
    ),
    rule(
        "candles.open",
        "candles_1m",
        "open is the trade with the smallest exchange timestamp (the first in file order on ties)",
        Defect::OpenInFileOrder,
        ids::CANDLES_EQUAL_TRUTH,
        "open is",
    ),
    rule(
        "candles.close",
        "candles_1m",
        "close is the trade with the largest exchange timestamp (the last in file order on ties)",
        Defect::CloseInFileOrder,
        ids::CANDLES_EQUAL_TRUTH,
        "close is",
    ),
    rule(
        "candles.high_low",
        "candles_1m",
        "high and low are the highest and the lowest price",
        Defect::SwappedHighLow,
        market_ids::OHLC_INVARIANTS,
        "OHLC out of order",
    ),
    rule(
        "candles.volume",
        "candles_1m",
        "volume is the sum of amounts in the exchange's native unit",
        Defect::VolumeInQuoteUnits,
        ids::CANDLES_EQUAL_TRUTH,
        "volume is",
    ),
    rule(
        "candles.vwap",
        "candles_1m",
        "vwap is quote_volume / volume",
        Defect::WrongVwap,
        ids::CANDLES_EQUAL_TRUTH,
        "vwap is",
    ),
    rule(
        "candles.sides",
        "candles_1m",
        "buy_volume and sell_volume sum the trades of that side; an unknown side counts in neither",
        Defect::UnknownSideAsSell,
        ids::CANDLES_EQUAL_TRUTH,
        "sell_volume is",
    ),
    rule(
        "candles.every_trade",
        "candles_1m",
        "every trade counts, whatever its size (trades of exactly the minimum lot too)",
        Defect::SmallTradesDropped,
        ids::CANDLES_EQUAL_TRUTH,
        "smaller than twice the lot size",
    ),
    rule(
        "candles.ids_per_symbol",
        "candles_1m",
        "trade ids are unique per symbol only (Binance's are per-symbol sequences): no trade is a duplicate of another symbol's",
        Defect::DedupeByExchangeId,
        ids::CANDLES_EQUAL_TRUTH,
        "deduplicating trades by (exchange, id)",
    ),
    rule(
        "candles.no_empty_minute",
        "candles_1m",
        "no candle for a minute without trades",
        Defect::EmptyMinutesFilled,
        ids::CANDLES_EQUAL_TRUTH,
        "landed candle has no trades behind it",
    ),
    rule(
        "candles.every_traded_minute",
        "candles_1m",
        "one row per (exchange, symbol, minute with at least one trade)",
        Defect::DroppedHour,
        market_ids::CANDLE_PER_TRADED_MINUTE,
        "minute had trades but has no candle",
    ),
    rule(
        "candles.whole_day",
        "candles_1m",
        "the date runs to 24:00 UTC: 23:59 is one of its minutes",
        Defect::LastMinuteLost,
        market_ids::CANDLE_PER_TRADED_MINUTE,
        "minute had trades but has no candle",
    ),
    rule(
        "candles.every_symbol",
        "candles_1m",
        "every configured pair with trades in the date has its candles",
        Defect::MissingSymbol,
        ids::SYMBOLS_LANDED,
        "no trades file for this symbol",
    ),
    rule(
        "candles.rate_limit_retried",
        "candles_1m",
        "a rate-limited download (429) is retried, never taken for a day without trades",
        Defect::Swallowed429,
        ids::SYMBOLS_LANDED,
        "no trades file for this symbol",
    ),
    rule(
        "record.date_only",
        "run record",
        "only trades whose exchange time is inside the date count (late rows of the day before are skipped)",
        Defect::LateRowsInCounts,
        ids::RUN_RECORD_COUNTS,
        "trades in the day: recorded",
    ),
    rule(
        "layout.one_load",
        "candles_1m",
        "a run replaces the date's partition with one WRITE_TRUNCATE load: a retry never duplicates a row",
        Defect::DuplicatedUpload,
        ids::CANDLES_EQUAL_TRUTH,
        "landed 2 times",
    ),
    rule(
        "layout.own_partition",
        "candles_1m",
        "no run writes another date's partition (late rows of the day before are not written to it)",
        Defect::LateRowsToPreviousDate,
        ids::ROWS_IN_THEIR_DATE,
        "written into candles_1m$",
    ),
    rule(
        "layout.columns",
        "candles_1m",
        "each column has the contract's name, type and mode",
        Defect::NullableTradeCount,
        ids::TABLES_MATCH_CONTRACT,
        "column trade_count is NULLABLE, expected REQUIRED",
    ),
    rule(
        "layout.clustering",
        "candles_1m, instruments",
        "candles_1m is clustered by exchange, symbol; instruments by exchange",
        Defect::NoClustering,
        ids::TABLES_MATCH_CONTRACT,
        "clustered by [], expected [exchange, symbol]",
    ),
    rule(
        "instruments.every_listed",
        "instruments",
        "the snapshot holds every instrument Tardis lists: active, expired and delisted",
        Defect::ActiveInstrumentsOnly,
        ids::INSTRUMENTS_EQUAL_TRUTH,
        "missing from the date's instruments partition",
    ),
    rule(
        "instruments.dated",
        "instruments",
        "the snapshot is dated with, and loaded into, the processed date",
        Defect::StaleInstruments,
        ids::INSTRUMENTS_EQUAL_TRUTH,
        "missing from the date's instruments partition",
    ),
    rule(
        "instruments.currencies",
        "instruments",
        "base_currency and quote_currency are Tardis' baseCurrency and quoteCurrency",
        Defect::SwappedCurrencies,
        ids::INSTRUMENTS_EQUAL_TRUTH,
        "base_currency is",
    ),
    rule(
        "instruments.inverse",
        "instruments",
        "inverse is Tardis' inverse (false only when absent)",
        Defect::InverseAlwaysFalse,
        ids::INSTRUMENTS_EQUAL_TRUTH,
        "inverse is false, expected true",
    ),
    rule(
        "instruments.nulls",
        "instruments",
        "a NULLABLE column is NULL where Tardis gives no value (available_to of a running instrument)",
        Defect::OpenEndAsFarFuture,
        ids::INSTRUMENTS_EQUAL_TRUTH,
        "available_to is 9999-12-31",
    ),
];

/// The checks a harness run scores a pipeline with. `consistency.command_exit_status` is not among them: it
/// is advisory (how an external command ended) and never decides a run.
pub const SCORED_CHECKS: [&str; 8] = [
    ids::SYMBOLS_LANDED,
    market_ids::CANDLE_PER_TRADED_MINUTE,
    market_ids::OHLC_INVARIANTS,
    ids::CANDLES_EQUAL_TRUTH,
    ids::RUN_RECORD_COUNTS,
    ids::INSTRUMENTS_EQUAL_TRUTH,
    ids::TABLES_MATCH_CONTRACT,
    ids::ROWS_IN_THEIR_DATE,
];

/// The rows of `defect`.
pub fn rules_of(defect: Defect) -> impl Iterator<Item = &'static Rule> {
    MATRIX.iter().filter(move |r| r.defect == defect)
}

/// The market a row is proven on: BTC on three venues and a second Binance symbol (whose trade ids overlap
/// BTC's), at a low activity with the default edge cases.
pub const PAIRS: [(&str, &str); 4] = [
    ("binance-futures", "BTCUSDT"),
    ("binance-futures", "ETHUSDT"),
    ("bitmex", "XBTUSD"),
    ("deribit", "BTC-PERPETUAL"),
];

/// What a defect's run was scored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Observed {
    pub defect: Defect,
    /// The run's overall status.
    pub status: Status,
    /// Every check that did not pass, with its first samples.
    pub findings: Vec<(String, Status, Vec<String>)>,
}

impl Observed {
    /// Whether `rule`'s check failed with a finding that contains its text.
    pub fn catches(&self, rule: &Rule) -> bool {
        self.findings.iter().any(|(id, status, samples)| {
            id == rule.check && *status == Status::Fail && samples.iter().any(|s| s.contains(rule.finding))
        })
    }
}

/// The date every row is proven on.
pub fn day() -> TradingDay {
    TradingDay::parse("2024-06-05").expect("a valid date")
}

/// Runs the reference pipeline with `defect` (or none) on the matrix's market for `seed`, on a fresh database
/// of `server`, and scores it.
pub async fn observe(
    server: Arc<PostgresServer>,
    seed: u64,
    defect: Option<Defect>,
) -> Result<(crate::report::Report, Option<market::checks::Validation>), RunError> {
    let world =
        World::start_on(server, WorldOptions::new(seed, day()).activity(0.05).pairs(&PAIRS).defect(defect)).await?;
    let pipeline = world.pipeline().await?;
    let outcome = pipeline.run_day(day(), "coverage").await?;
    let report = score_world(&world, day(), Some(&outcome), chrono::Utc::now())?;
    Ok((report, outcome.validation))
}

/// [`observe`] for `defect`, summarised.
pub async fn observe_defect(server: Arc<PostgresServer>, seed: u64, defect: Defect) -> Result<Observed, RunError> {
    let (report, _) = observe(server, seed, Some(defect)).await?;
    let findings = report
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| (c.id.clone(), c.status, c.samples.iter().map(shown).collect()))
        .collect();
    Ok(Observed { defect, status: report.status, findings })
}

/// A sample as one line: where (exchange, symbol, minute, those it has), then what.
fn shown(sample: &market::checks::Sample) -> String {
    let mut place: Vec<String> = Vec::new();
    place.extend(sample.exchange.as_ref().map(ToString::to_string));
    place.extend(sample.symbol.as_ref().map(ToString::to_string));
    place.extend(
        sample
            .open_time_us
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|at| at.format("%Y-%m-%dT%H:%MZ").to_string()),
    );
    if place.is_empty() { sample.detail.clone() } else { format!("{}: {}", place.join(" "), sample.detail) }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_defect_breaks_a_rule_and_every_scored_check_catches_a_defect() {
        for &defect in Defect::ALL {
            assert!(rules_of(defect).next().is_some(), "{defect} breaks no rule of the matrix");
        }
        let catchers: BTreeSet<&str> = MATRIX.iter().map(|r| r.check).collect();
        for check in SCORED_CHECKS {
            assert!(catchers.contains(check), "{check} catches no defect");
        }
        assert!(catchers.iter().all(|c| SCORED_CHECKS.contains(c)), "{catchers:?}");
        let ids: BTreeSet<&str> = MATRIX.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), MATRIX.len(), "rule ids are unique");
        assert!(Defect::ALL.len() >= 20);
    }
}
