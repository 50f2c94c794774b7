//! Unit tests of the checks, through their public functions.

use super::*;
use crate::{Candle, Exchange, MINUTE_US, Symbol, TradingDay};

fn candle(minute: i64, open: f64, high: f64, low: f64, close: f64) -> Candle {
    Candle {
        exchange: Exchange::parse("deribit").expect("ok"),
        symbol: Symbol::parse("BTC-PERPETUAL").expect("ok"),
        open_time_us: TradingDay::parse("2024-06-01").expect("ok").start_us() + minute * MINUTE_US,
        open,
        high,
        low,
        close,
        volume: 2.0,
        quote_volume: 2.0 * open,
        trade_count: 2,
        vwap: open,
        buy_volume: 1.0,
        sell_volume: 1.0,
    }
}

#[test]
fn ohlc_check_flags_swapped_high_and_low() {
    let good = candle(0, 10.0, 12.0, 9.0, 11.0);
    let swapped = candle(1, 10.0, 9.0, 12.0, 11.0);
    let out = ohlc_invariants(&[good, swapped]);
    assert_eq!((out.evaluated, out.failed), (2, 1));
    assert!(out.samples[0].detail.contains("OHLC out of order"), "{:?}", out.samples);
}

#[test]
fn candles_match_reports_missing_extra_duplicated_and_different() {
    let expected =
        vec![candle(0, 10.0, 12.0, 9.0, 11.0), candle(1, 10.0, 12.0, 9.0, 11.0), candle(2, 1.0, 1.0, 1.0, 1.0)];
    let mut wrong = candle(1, 10.0, 12.0, 9.0, 11.0);
    wrong.vwap *= 1.01;
    let actual =
        vec![candle(0, 10.0, 12.0, 9.0, 11.0), wrong, candle(3, 1.0, 1.0, 1.0, 1.0), candle(3, 1.0, 1.0, 1.0, 1.0)];
    let out = candles_match(&expected, &actual, 1e-9);
    assert_eq!(out.evaluated, 4);
    assert_eq!(out.failed, 3);
    let details: Vec<&str> = out.samples.iter().map(|s| s.detail.as_str()).collect();
    assert!(details[0].starts_with("vwap is"), "{details:?}");
    assert_eq!(details[1], "expected candle did not land");
    assert_eq!(details[2], "landed candle has no trades behind it");
}

#[test]
fn sums_within_relative_tolerance_match() {
    let want = candle(0, 10.0, 12.0, 9.0, 11.0);
    let mut got = want.clone();
    got.volume *= 1.0 + 1e-12;
    assert_eq!(candle_difference(&want, &got, 1e-9), None);
    got.volume *= 1.0 + 1e-6;
    assert!(candle_difference(&want, &got, 1e-9).is_some());
}

#[test]
fn scores_average_pass_ratios_and_status_takes_the_worst_family() {
    let mut half = CheckOutcome::new("completeness.x", Family::Completeness, "x", Threshold::WARN_ON_ANY);
    half.pass_one();
    half.fail_one(|| Sample { exchange: None, symbol: None, open_time_us: None, detail: String::new() });
    let perfect = CheckOutcome::new("completeness.y", Family::Completeness, "y", Threshold::WARN_ON_ANY);
    let scores = score(&[half, perfect]);
    assert_eq!(scores.completeness, 0.75);
    assert_eq!(scores.quality, 1.0);
    assert_eq!(overall_status(&scores, &Thresholds::DEFAULT), Status::Fail);
    let fine = Scores { completeness: 0.97, quality: 1.0, consistency: 1.0 };
    assert_eq!(overall_status(&fine, &Thresholds::DEFAULT), Status::Warn);
}

#[test]
fn samples_are_capped() {
    let candles: Vec<Candle> = (0..50).map(|m| candle(m, 10.0, 9.0, 12.0, 11.0)).collect();
    let out = ohlc_invariants(&candles);
    assert_eq!(out.failed, 50);
    assert_eq!(out.samples.len(), MAX_SAMPLES);
}

fn day() -> TradingDay {
    TradingDay::parse("2024-06-01").expect("ok")
}

fn c(exchange: &str, symbol: &str, minute: i64, close: f64) -> Candle {
    Candle {
        exchange: Exchange::parse(exchange).expect("ok"),
        symbol: Symbol::parse(symbol).expect("ok"),
        open_time_us: day().start_us() + minute * MINUTE_US,
        open: close,
        high: close,
        low: close,
        close,
        volume: 1.0,
        quote_volume: close,
        trade_count: 1,
        vwap: close,
        buy_volume: 1.0,
        sell_volume: 0.0,
    }
}

fn instrument(exchange: &str, symbol: &str, base: &str) -> crate::Instrument {
    crate::Instrument {
        exchange: Exchange::parse(exchange).expect("ok"),
        id: symbol.to_lowercase(),
        dataset_id: Symbol::parse(symbol).expect("ok"),
        base_currency: base.to_owned(),
        quote_currency: "USD".to_owned(),
        kind: crate::InstrumentKind::Perpetual,
        contract_type: None,
        active: true,
        available_since: chrono::DateTime::from_timestamp(1_500_000_000, 0).expect("valid"),
        available_to: None,
        price_increment: 0.5,
        amount_increment: 0.001,
        min_trade_amount: 0.001,
        inverse: false,
        contract_multiplier: None,
    }
}

#[test]
fn completeness_records_count_every_field_and_merge_gap_runs() {
    let expected: Vec<Candle> = (0..10).map(|m| c("bitmex", "XBTUSD", m, 1.0)).collect();
    let landed: Vec<Candle> = [0, 1, 5, 6, 7, 9, 30].iter().map(|m| c("bitmex", "XBTUSD", *m, 1.0)).collect();
    let records = completeness_records(&expected, &landed);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!((r.expected_count, r.actual_count, r.missing_count, r.extra_count, r.is_complete), (10, 7, 4, 1, false));
    let gaps: Vec<(i64, u64)> =
        r.gaps.iter().map(|g| ((g.start_us - day().start_us()) / MINUTE_US, g.minutes)).collect();
    assert_eq!(gaps, [(2, 3), (8, 1)]);
    assert_eq!((r.hours[0].expected, r.hours[0].covered), (10, 6));
    assert_eq!(r.hours.len(), 24);
}

#[test]
fn configured_symbols_must_be_listed_on_the_date() {
    let configured = vec![
        (Exchange::parse("bitmex").expect("ok"), Symbol::parse("XBTUSD").expect("ok")),
        (Exchange::parse("bitmex").expect("ok"), Symbol::parse("TYPOUSD").expect("ok")),
        (Exchange::parse("bitmex").expect("ok"), Symbol::parse("OLDUSD").expect("ok")),
    ];
    let mut old = instrument("bitmex", "OLDUSD", "OLD");
    old.available_to = Some(chrono::DateTime::from_timestamp(1_600_000_000, 0).expect("valid"));
    let out = configured_symbols_listed(&configured, &[instrument("bitmex", "XBTUSD", "BTC"), old], day());
    assert_eq!((out.evaluated, out.failed, out.status), (3, 2, Status::Fail));
    assert!(out.samples.iter().any(|s| s.detail.contains("not listed on 2024-06-01")));
    assert!(out.samples.iter().any(|s| s.detail.contains("not in the exchange's instruments")));
}

fn profile(rows: &[(i64, i64, f64, f64, &str)]) -> FileProfile {
    let mut p = TradeProfiler::new(
        Exchange::parse("bitmex").expect("ok"),
        Symbol::parse("XBTUSD").expect("ok"),
        day(),
        Some((0.5, 1.0)),
    );
    for (i, (ts, local, price, amount, id)) in rows.iter().enumerate() {
        let t = crate::Trade {
            exchange_ts_us: day().start_us() + ts,
            local_ts_us: day().start_us() + local,
            side: crate::Side::Buy,
            price: *price,
            amount: *amount,
        };
        p.trade(i as u64 + 2, &t, id.as_bytes());
    }
    p.finish()
}

#[test]
fn the_profiler_finds_off_grid_values_duplicate_ids_late_arrivals_and_rows_outside_the_date() {
    let p = profile(&[
        (-5, 10, 100.0, 1.0, "a"),
        (20, 20, 100.5, 2.0, "b"),
        (30, 15, 100.25, 2.0, "c"),
        (40, 40, 101.0, 1.5, "b"),
        (50, 50, 101.0, 1.0, ""),
        (50, 50, 101.0, 1.0, ""),
    ]);
    assert_eq!((p.rows, p.rows_before_day, p.off_grid_prices, p.off_grid_amounts), (6, 1, 1, 1));
    assert_eq!((p.rows_with_id, p.duplicate_ids, p.arrival_regressions), (4, 1, 1));
    let files = [p];
    assert_eq!(unique_trade_ids(&files).status, Status::Fail, "identical rows without ids are not duplicates, id b is");
    assert_eq!(arrival_order(&files).failed, 1);
    let grid = trades_on_grid(&files);
    assert_eq!((grid.evaluated, grid.failed), (6, 2));
    assert!(grid.samples.iter().any(|s| s.detail.contains("100.25 is not a multiple of the tick 0.5")));
    assert_eq!(
        rows_inside_date(&files, 0.01).status,
        Status::Pass,
        "a handful of late rows is normal, whatever the share"
    );
    let mut wrong_date = files[0].clone();
    (wrong_date.rows, wrong_date.rows_before_day) = (1000, 900);
    assert_eq!(rows_inside_date(&[wrong_date.clone()], 0.01).status, Status::Fail, "a file of another date");
    assert_eq!(rows_inside_date(&[wrong_date], 0.95).status, Status::Pass);
}

#[test]
fn a_price_spike_is_flagged_with_its_robust_z_score_and_a_calm_series_is_not() {
    let mut candles: Vec<Candle> = (0..200).map(|m| c("bitmex", "XBTUSD", m, 100.0 + (m % 7) as f64 * 0.05)).collect();
    assert_eq!(price_spikes(&candles, 15.0, 0.01).failed, 0);
    candles[120].close = 120.0;
    let out = price_spikes(&candles, 15.0, 0.01);
    assert_eq!(out.failed, 2, "up into the spike and back down: {:?}", out.samples);
    assert!(out.samples[0].detail.contains("robust z"), "{:?}", out.samples);
}

#[test]
fn a_stale_close_while_the_exchange_trades_is_flagged() {
    let mut candles: Vec<Candle> = (0..120).map(|m| c("bitmex", "ETHUSD", m, 3000.0 + m as f64)).collect();
    candles.extend((0..120).map(|m| c("bitmex", "XBTUSD", m, 60_000.0)));
    let out = stale_prices(&candles, 60);
    assert_eq!(out.failed, 1);
    assert!(out.samples[0].detail.contains("unchanged for 120 minutes"), "{:?}", out.samples);
    // Alone on its exchange, a flat symbol is quiet, not stale.
    let alone: Vec<Candle> = (0..120).map(|m| c("bitmex", "XBTUSD", m, 60_000.0)).collect();
    assert_eq!(stale_prices(&alone, 60).failed, 0);
}

fn q(bid: f64, ask: f64) -> Quote {
    Quote {
        exchange: Exchange::parse("bitmex").expect("ok"),
        symbol: Symbol::parse("XBTUSD").expect("ok"),
        timestamp_us: 0,
        bid_price: bid,
        ask_price: ask,
    }
}

#[test]
fn crossed_and_locked_quotes_are_counted() {
    let out = crossed_quotes(&[q(1.0, 2.0), q(2.0, 2.0), q(3.0, 2.0)]);
    assert_eq!((out.evaluated, out.failed), (3, 2));
}

#[test]
fn rollups_detect_a_wrong_minute_that_direct_building_does_not_share() {
    let minutes: Vec<Candle> = (0..10).map(|m| c("bitmex", "XBTUSD", m, 100.0 + m as f64)).collect();
    let direct = vec![(crate::Interval::M5, crate::rollup(&minutes, crate::Interval::M5))];
    assert_eq!(rollups_match(&direct, &minutes, 1e-9).failed, 0);
    let mut wrong = minutes.clone();
    wrong[7].high = 500.0;
    let out = rollups_match(&direct, &wrong, 1e-9);
    assert_eq!((out.evaluated, out.failed), (2, 1));
    assert!(out.samples[0].detail.starts_with("5m roll-up: high is 500"), "{:?}", out.samples);
}

#[test]
fn counts_instruments_and_divergence_are_checked() {
    let counts = [
        CountViews { what: "trades".to_owned(), views: vec![("download".to_owned(), 10), ("bigquery".to_owned(), 10)] },
        CountViews {
            what: "candles".to_owned(),
            views: vec![("built".to_owned(), 5), ("postgres".to_owned(), 5), ("bigquery".to_owned(), 6)],
        },
    ];
    let out = counts_agree(&counts);
    assert_eq!((out.evaluated, out.failed), (2, 1));
    assert_eq!(out.samples[0].detail, "candles: built 5, postgres 5, bigquery 6");

    let candles = vec![c("bitmex", "XBTUSD", 0, 100.0), c("deribit", "BTC-PERPETUAL", 0, 100.0)];
    let out = candles_have_instruments(&candles, &[instrument("bitmex", "XBTUSD", "BTC")]);
    assert_eq!((out.evaluated, out.failed), (2, 1));

    let venues = vec![
        c("bitmex", "XBTUSD", 0, 100.0),
        c("deribit", "BTC-PERPETUAL", 0, 100.5),
        c("binance-futures", "BTCUSDT", 0, 110.0),
        c("binance-futures", "BTCUSDT", 1, 110.0),
    ];
    let underlying = [("bitmex", "XBTUSD"), ("deribit", "BTC-PERPETUAL"), ("binance-futures", "BTCUSDT")]
        .iter()
        .map(|(e, s)| ((Exchange::parse(e).expect("ok"), Symbol::parse(s).expect("ok")), "BTC".to_owned()))
        .collect();
    let out = cross_exchange_divergence(&venues, &underlying, 0.03);
    assert_eq!((out.evaluated, out.failed), (3, 1), "minute 1 has one venue only and is not judged");
    assert!(out.samples[0].detail.contains("from the BTC median 100.5"), "{:?}", out.samples);
}

#[test]
fn anomalies_report_their_baseline_and_need_enough_history() {
    let current = vec![
        Metric {
            metric: "volume".to_owned(),
            exchange: Exchange::parse("bitmex").expect("ok"),
            symbol: Symbol::parse("XBTUSD").expect("ok"),
            value: 10.0,
        },
        Metric {
            metric: "trade_count".to_owned(),
            exchange: Exchange::parse("bitmex").expect("ok"),
            symbol: Symbol::parse("XBTUSD").expect("ok"),
            value: 1000.0,
        },
    ];
    let mut history = std::collections::BTreeMap::new();
    history.insert(
        ("volume".to_owned(), current[0].exchange.clone(), current[0].symbol.clone()),
        vec![100.0, 98.0, 103.0, 101.0, 99.0, 97.0, 102.0],
    );
    history.insert(
        ("trade_count".to_owned(), current[0].exchange.clone(), current[0].symbol.clone()),
        vec![1000.0, 990.0],
    );
    let rule = AnomalyRule { max_z: 5.0, min_change: 0.5, min_history: 7 };
    let (out, baselines) = anomalies(&current, &history, rule);
    assert_eq!((out.evaluated, out.failed, out.status), (1, 1, Status::Warn), "anomalies warn, never fail");
    assert_eq!(baselines.len(), 1, "trade_count has too little history to judge");
    let b = &baselines[0];
    assert!(b.anomalous && b.median == 100.0 && b.history == 7 && b.z > 5.0, "{b:?}");
}

#[test]
fn config_overrides_a_check_threshold_and_rejects_unknown_fields() {
    let config: ValidationConfig = serde_json::from_str(
        r#"{"check_thresholds": {"quality.ohlc_invariants": {"fail_below": 0.5, "warn_below": 1.0}}}"#,
    )
    .expect("valid");
    assert_eq!(config.sum_tolerance, 1e-9, "unspecified fields keep their defaults");
    let candles = vec![c("bitmex", "XBTUSD", 0, 1.0), {
        let mut bad = c("bitmex", "XBTUSD", 1, 1.0);
        bad.low = 5.0;
        bad
    }];
    let strict = Validation::evaluate(vec![ohlc_invariants(&candles)], &ValidationConfig::default());
    assert_eq!(strict.status, Status::Fail);
    let relaxed = Validation::evaluate(vec![ohlc_invariants(&candles)], &config);
    assert_eq!(relaxed.checks[0].status, Status::Warn);
    assert!(
        serde_json::from_str::<ValidationConfig>(r#"{"sum_tolerence": 1}"#).is_err(),
        "a typo is an error, not a default"
    );
}

#[test]
fn a_day_validation_runs_every_listed_check_once_with_its_family_prefix() {
    let landed = vec![c("bitmex", "XBTUSD", 0, 100.0), c("bitmex", "XBTUSD", 1, 101.0)];
    let configured = [(Exchange::parse("bitmex").expect("valid"), Symbol::parse("XBTUSD").expect("valid"))];
    let instruments = [instrument("bitmex", "XBTUSD", "BTC")];
    let history = std::collections::BTreeMap::new();
    let input = DayInput {
        day: day(),
        configured: &configured,
        instruments: &instruments,
        files: &[],
        expected: &landed,
        direct: &[],
        landed: &landed,
        counts: &[],
        history: &history,
    };
    let validation = validate_day(&input, &ValidationConfig::default());
    let got: Vec<&str> = validation.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(got, ids::VALIDATE_DAY);
    for check in &validation.checks {
        assert!(check.id.starts_with(&format!("{}.", check.family.as_str())), "{} is not in its family", check.id);
    }
}

#[test]
fn day_metrics_are_volume_trades_and_candles_per_pair() {
    let candles =
        [c("bitmex", "XBTUSD", 0, 10.0), c("bitmex", "XBTUSD", 1, 11.0), c("deribit", "BTC-PERPETUAL", 0, 9.0)];
    let metrics: Vec<(String, String, f64)> =
        day_metrics(&candles).into_iter().map(|m| (m.symbol.to_string(), m.metric, m.value)).collect();
    let want = [
        ("XBTUSD", "volume", 2.0),
        ("XBTUSD", "trade_count", 2.0),
        ("XBTUSD", "candle_count", 2.0),
        ("BTC-PERPETUAL", "volume", 1.0),
        ("BTC-PERPETUAL", "trade_count", 1.0),
        ("BTC-PERPETUAL", "candle_count", 1.0),
    ];
    let want: Vec<(String, String, f64)> =
        want.iter().map(|(s, m, v)| ((*s).to_owned(), (*m).to_owned(), *v)).collect();
    assert_eq!(metrics, want);
}

/// One metric judged against `past` by `rule`: whether it is anomalous, and the sample if it is.
fn judged(value: f64, past: &[f64], max_z: f64, min_change: f64) -> (bool, Option<String>) {
    let (exchange, symbol) = (Exchange::parse("bitmex").expect("ok"), Symbol::parse("XBTUSD").expect("ok"));
    let current = [Metric { metric: "volume".to_owned(), exchange: exchange.clone(), symbol: symbol.clone(), value }];
    let history = [(("volume".to_owned(), exchange, symbol), past.to_vec())].into_iter().collect();
    let (out, baselines) = anomalies(&current, &history, AnomalyRule { max_z, min_change, min_history: 1 });
    assert_eq!(baselines.len(), 1);
    assert_eq!(baselines[0].anomalous, out.failed == 1);
    (baselines[0].anomalous, out.samples.first().map(|s| s.detail.clone()))
}

#[test]
fn an_anomaly_needs_both_a_large_z_and_a_large_change_strictly() {
    // Median 100, scaled MAD 1.4826 × 2.
    let past = [100.0, 98.0, 103.0, 101.0, 99.0, 97.0, 102.0];
    let mad = 1.4826 * 2.0;
    // A 60% drop: anomalous, and the sample says by how much.
    let (anomalous, sample) = judged(40.0, &past, 5.0, 0.5);
    assert!(anomalous);
    let sample = sample.expect("a sample");
    assert!(sample.contains("volume 40 vs median 100 of 7 dates") && sample.contains("change 60%"), "{sample}");
    // Exactly at either limit is not beyond it.
    assert!(!judged(150.0, &past, 5.0, 0.5).0, "a change of exactly min_change");
    assert!(!judged(400.0, &past, (400.0_f64 - 100.0).abs() / mad, 0.5).0, "a z of exactly max_z");
    // A large z with a small change (a very calm history) is not an anomaly, nor a large change with a small z.
    assert!(!judged(110.0, &past, 1.0, 0.5).0);
    assert!(!judged(400.0, &past, 1000.0, 0.5).0);
}

#[test]
fn against_a_history_of_zeros_any_value_is_an_infinite_change() {
    let zeros = [0.0; 7];
    let (anomalous, sample) = judged(5.0, &zeros, 5.0, 0.5);
    assert!(anomalous, "{sample:?}");
    assert!(sample.expect("a sample").contains("change inf%"));
    assert!(!judged(0.0, &zeros, 5.0, 0.5).0, "nothing changed");
}

#[test]
fn a_record_is_complete_only_without_missing_and_extra_minutes() {
    let expected: Vec<Candle> = (0..3).map(|m| c("bitmex", "XBTUSD", m, 1.0)).collect();
    let complete = |landed: &[i64]| {
        let landed: Vec<Candle> = landed.iter().map(|m| c("bitmex", "XBTUSD", *m, 1.0)).collect();
        let r = &completeness_records(&expected, &landed)[0];
        (r.missing_count, r.extra_count, r.is_complete)
    };
    assert_eq!(complete(&[0, 1, 2]), (0, 0, true));
    assert_eq!(complete(&[0, 1, 2, 5]), (0, 1, false), "an extra minute");
    assert_eq!(complete(&[0, 2]), (1, 0, false), "a missing minute");
}

#[test]
fn rows_outside_the_date_count_both_ends_of_the_file() {
    let file = |before: u64, after: u64| FileProfile {
        rows: 100,
        rows_before_day: before,
        rows_after_day: after,
        ..profile(&[(0, 0, 1.0, 1.0, "1")])
    };
    let out = rows_inside_date(&[file(40, 40)], 0.5);
    assert_eq!((out.evaluated, out.failed), (1, 1));
    assert_eq!(out.samples[0].detail, "80 of 100 rows outside the date (40 before, 40 after)");
    // At most the floor, or at most the share: fine.
    assert_eq!(rows_inside_date(&[file(30, 20), file(10, 40)], 0.5).failed, 0);
    assert_eq!(rows_inside_date(&[file(0, 51)], 0.5).failed, 1);
}

#[test]
fn sums_are_compared_relative_to_their_size() {
    let want = candle(0, 10.0, 12.0, 9.0, 11.0);
    let mut got = want.clone();
    got.quote_volume = want.quote_volume * 1.000_5;
    assert_eq!(candle_difference(&want, &got, 1e-3), None, "0.05% apart, 0.1% allowed");
    got.quote_volume = want.quote_volume * 1.002;
    assert_eq!(
        candle_difference(&want, &got, 1e-3),
        Some(format!("quote_volume is {}, expected 20", got.quote_volume))
    );
}

#[test]
fn with_an_even_number_of_closes_the_median_is_the_mean_of_the_middle_two() {
    let venues = vec![
        c("bitmex", "XBTUSD", 0, 100.0),
        c("deribit", "BTC-PERPETUAL", 0, 101.0),
        c("binance-futures", "BTCUSDT", 0, 103.0),
        c("binance-futures", "BTCUSDC", 0, 200.0),
    ];
    let underlying = [
        ("bitmex", "XBTUSD"),
        ("deribit", "BTC-PERPETUAL"),
        ("binance-futures", "BTCUSDT"),
        ("binance-futures", "BTCUSDC"),
    ]
    .iter()
    .map(|(e, s)| ((Exchange::parse(e).expect("ok"), Symbol::parse(s).expect("ok")), "BTC".to_owned()))
    .collect();
    let out = cross_exchange_divergence(&venues, &underlying, 0.03);
    assert_eq!((out.evaluated, out.failed), (4, 1));
    assert_eq!(out.samples[0].detail, "close 200 is 96.08% from the BTC median 102 (band 3.00%)");
}

#[test]
fn files_are_expected_only_for_configured_pairs_listed_on_the_date() {
    let pair = |e: &str, s: &str| (Exchange::parse(e).expect("valid"), Symbol::parse(s).expect("valid"));
    // XBTUSD is listed; the deribit pair is configured but its instrument is another symbol, and the binance one
    // is another exchange's symbol of that name: neither is expected to have a file.
    let configured = [pair("bitmex", "XBTUSD"), pair("deribit", "BTC-PERPETUAL"), pair("binance-futures", "XBTUSD")];
    let instruments = [instrument("bitmex", "XBTUSD", "BTC"), instrument("deribit", "ETH-PERPETUAL", "ETH")];
    let history = std::collections::BTreeMap::new();
    let input = DayInput {
        day: day(),
        configured: &configured,
        instruments: &instruments,
        files: &[],
        expected: &[],
        direct: &[],
        landed: &[],
        counts: &[],
        history: &history,
    };
    let validation = validate_day(&input, &ValidationConfig::default());
    let files = validation.check(ids::FILES_PRESENT).expect("present");
    assert_eq!((files.evaluated, files.failed), (1, 1), "{files:?}");
    assert_eq!(files.samples[0].symbol.as_ref().map(Symbol::as_str), Some("XBTUSD"));
    assert_eq!(files.samples[0].exchange.as_ref().map(Exchange::as_str), Some("bitmex"));
    let listed = validation.check(ids::CONFIGURED_SYMBOLS_LISTED).expect("present");
    assert_eq!((listed.evaluated, listed.failed), (3, 2));
}

#[test]
fn statuses_have_their_report_names() {
    let names = [Status::Pass, Status::Warn, Status::Fail, Status::Error].map(Status::as_str);
    assert_eq!(names, ["pass", "warn", "fail", "error"]);
}

#[test]
fn extra_samples_are_capped_too() {
    let mut out = CheckOutcome::new("quality.x", Family::Quality, "x", Threshold::ZERO_TOLERANCE);
    for n in 0..=MAX_SAMPLES {
        out.sample(Sample::general(n.to_string()));
    }
    assert_eq!(out.samples.len(), MAX_SAMPLES);
    assert_eq!(out.samples.last().map(|s| s.detail.as_str()), Some((MAX_SAMPLES - 1).to_string().as_str()));
}

#[test]
fn an_advisory_check_warns_but_does_not_weigh_in_its_family_score() {
    let mut advisory =
        CheckOutcome::new("quality.a", Family::Quality, "a", Threshold { fail_below: 0.0, warn_below: 1.0 });
    advisory.fail_one(|| Sample::general("unusual".to_owned()));
    let mut judged = CheckOutcome::new("quality.b", Family::Quality, "b", Threshold::ZERO_TOLERANCE);
    judged.pass_one();
    assert!(advisory.is_advisory() && !judged.is_advisory());
    let validation = Validation::evaluate(vec![advisory, judged], &ValidationConfig::default());
    assert_eq!(validation.scores.quality, 1.0, "{:?}", validation.scores);
    assert_eq!(validation.check("quality.a").map(|c| c.status), Some(Status::Warn));
}

#[test]
fn candles_missing_after_the_last_landed_one_are_still_missing() {
    let expected: Vec<Candle> = (0..4).map(|m| c("bitmex", "XBTUSD", m, 1.0)).collect();
    let out = candles_match(&expected, &expected[..1], 1e-9);
    assert_eq!((out.evaluated, out.failed), (4, 3));
    let out = candles_match(&expected[..1], &expected, 1e-9);
    assert_eq!((out.evaluated, out.failed), (4, 3), "and landed ones after the last expected one are extra");
}

#[test]
fn checks_over_time_judge_candles_in_time_order_whatever_order_they_come_in() {
    let mut candles: Vec<Candle> = (0..200).map(|m| c("bitmex", "XBTUSD", m, 100.0 + (m % 7) as f64 * 0.05)).collect();
    candles[120].close = 120.0;
    let sorted = price_spikes(&candles, 15.0, 0.01);
    candles.reverse();
    let reversed = price_spikes(&candles, 15.0, 0.01);
    assert_eq!((reversed.evaluated, reversed.failed), (sorted.evaluated, sorted.failed));
    assert_eq!(reversed.samples, sorted.samples);
}

#[test]
fn the_profiler_places_rows_at_the_day_s_edges_and_equal_arrivals_in_order() {
    let end = crate::DAY_US;
    let p = profile(&[
        (0, 0, 100.0, 1.0, "1"),       // the first microsecond: inside
        (-1, 0, 100.0, 1.0, "2"),      // before
        (end - 1, 0, 100.0, 1.0, "3"), // the last microsecond: inside
        (end, 0, 100.0, 1.0, "4"),     // after
        (end + 7, 0, 100.0, 1.0, "5"), // after
        (60, 0, 100.0, 1.0, "6"),      // inside
    ]);
    assert_eq!((p.rows, p.rows_before_day, p.rows_after_day), (6, 1, 2));
    assert_eq!(p.arrival_regressions, 0, "rows arriving at the same time are in order");
}

#[test]
fn the_profiler_keeps_a_bounded_number_of_samples() {
    // Every row off both grids and late: three problems a row, far more than the samples kept.
    let rows: Vec<(i64, i64, f64, f64, &str)> = (0..100).map(|i| (i, 1000 - i, 100.25, 1.5, "")).collect();
    let p = profile(&rows);
    assert_eq!((p.off_grid_prices, p.off_grid_amounts, p.arrival_regressions), (100, 100, 99));
    assert_eq!(p.samples.len(), MAX_SAMPLES);
}

#[test]
fn grids_allow_for_binary_decimals_in_proportion_to_the_value() {
    // 0.123456789 / 1e-9 is 123456788.99999999 in binary: on the grid all the same.
    assert!(on_grid(0.123_456_789, 1e-9));
    assert!(on_grid(0.3, 0.1) && on_grid(67_000.5, 0.5));
    assert!(!on_grid(67_000.25, 0.5) && !on_grid(12.3455, 0.001));
}

#[test]
fn rows_that_did_not_parse_count_as_rows_and_as_rejects_with_bounded_samples() {
    let mut p =
        TradeProfiler::new(Exchange::parse("bitmex").expect("ok"), Symbol::parse("XBTUSD").expect("ok"), day(), None);
    let samples: Vec<(u64, String)> = (0..30).map(|line| (line, "amount -1 is not positive".to_owned())).collect();
    p.rejected(2, &samples[..2]);
    p.rejected(28, &samples[2..]);
    let p = p.finish();
    assert_eq!((p.rows, p.rejected, p.reject_samples.len()), (30, 30, MAX_SAMPLES));
    assert_eq!(p.reject_samples[0], (0, "amount -1 is not positive".to_owned()));
    let out = rows_parsed(&[p]);
    assert_eq!((out.evaluated, out.failed, out.status), (30, 30, Status::Fail));
}

#[test]
fn every_candle_invariant_is_judged_on_its_own() {
    let good = || c("bitmex", "XBTUSD", 0, 100.0);
    let judged = |change: &dyn Fn(&mut Candle)| {
        let mut candle = Candle { high: 101.0, low: 99.0, volume: 2.0, buy_volume: 1.0, sell_volume: 1.0, ..good() };
        change(&mut candle);
        ohlc_invariants(&[candle]).samples.first().map(|s| s.detail.clone())
    };
    assert_eq!(judged(&|_| {}), None);
    for (name, change) in [
        ("open below low", &(|c: &mut Candle| c.open = 98.0) as &dyn Fn(&mut Candle)),
        ("open above high", &|c: &mut Candle| c.open = 102.0),
        ("close below low", &|c: &mut Candle| c.close = 98.0),
        ("close above high", &|c: &mut Candle| c.close = 102.0),
    ] {
        assert!(judged(change).is_some_and(|d| d.starts_with("OHLC out of order")), "{name}");
    }
    for (name, change) in [
        ("volume", &(|c: &mut Candle| c.volume = -1.0) as &dyn Fn(&mut Candle)),
        ("buy", &|c: &mut Candle| c.buy_volume = -1.0),
        ("sell", &|c: &mut Candle| c.sell_volume = -1.0),
        ("quote", &|c: &mut Candle| c.quote_volume = -1.0),
    ] {
        assert!(judged(change).is_some_and(|d| d.starts_with("negative volume")), "{name}");
    }
    // Zero is not negative: a minute of sells only has no buy volume, and no volume at all breaks no order.
    assert_eq!(judged(&|c| (c.buy_volume, c.sell_volume) = (0.0, 2.0)), None);
    assert_eq!(judged(&|c| (c.volume, c.quote_volume, c.buy_volume, c.sell_volume) = (0.0, 0.0, 0.0, 0.0)), None);
    // Sides summing exactly to the volume, or within its rounding: fine; beyond it, or one side alone: not.
    assert_eq!(judged(&|c| c.buy_volume = 1.0 + 1e-10), None);
    assert!(judged(&|c| (c.buy_volume, c.sell_volume) = (2.0, 2.0)).is_some_and(|d| d.contains("exceeds volume")));
    assert!(judged(&|c| (c.buy_volume, c.sell_volume) = (0.5, 2.0)).is_some_and(|d| d.contains("exceeds volume")));
    assert_eq!(judged(&|c| c.trade_count = 0).as_deref(), Some("candle with zero trades"));
    assert!(judged(&|c| c.vwap = f64::NAN).is_some_and(|d| d.starts_with("non-finite")));
}

#[test]
fn a_score_at_a_limit_is_on_the_better_side_of_it() {
    let threshold = Threshold { fail_below: 0.9, warn_below: 0.99 };
    assert_eq!(family_status(0.9, threshold), Status::Warn);
    assert_eq!(family_status(0.899, threshold), Status::Fail);
    assert_eq!(family_status(0.99, threshold), Status::Pass);
    assert_eq!(family_status(0.989, threshold), Status::Warn);
}

#[test]
fn grid_and_arrival_checks_judge_only_the_rows_that_parsed() {
    let mut p = profile(&[(0, 0, 100.0, 1.0, "1"), (1, 1, 100.5, 2.0, "2")]);
    p.rows += 3;
    p.rejected += 3;
    let files = [p];
    assert_eq!(trades_on_grid(&files).evaluated, 2);
    assert_eq!(arrival_order(&files).evaluated, 2);
    assert_eq!(rows_parsed(&files).evaluated, 5);
}

#[test]
fn median_and_mad_of_odd_and_even_samples_and_the_robust_z_score() {
    use super::quality::{median_mad, robust_z};
    assert_eq!(median_mad(&[]), None);
    assert_eq!(median_mad(&[3.0, 1.0, 2.0]), Some((2.0, 1.4826)));
    // Even count: the mean of the middle two, for the values and for the deviations (0.5 0.5 1.5 7.5).
    assert_eq!(median_mad(&[10.0, 1.0, 3.0, 2.0]), Some((2.5, 1.4826)));
    assert_eq!(robust_z(5.0, 2.0, 1.5), 2.0);
    assert_eq!(robust_z(1.0, 2.0, 0.5), 2.0, "below the median counts as far as above");
    assert_eq!(robust_z(3.0, 2.0, 0.0), f64::INFINITY, "no spread, but a difference");
    assert_eq!(robust_z(2.0, 2.0, 0.0), 0.0);
}

#[test]
fn a_spike_is_reported_as_its_log_return_and_closes_that_are_not_positive_are_skipped() {
    let mut candles: Vec<Candle> = (0..200).map(|m| c("bitmex", "XBTUSD", m, 100.0 + (m % 7) as f64 * 0.05)).collect();
    candles[120].close = candles[119].close * 1.2;
    let out = price_spikes(&candles, 15.0, 0.01);
    assert!(out.samples[0].detail.starts_with("return +18.2322% has robust z"), "{:?}", out.samples[0]);
    // A return needs two positive closes: a zero close takes out both returns it is part of.
    let closes = [100.0, 0.0, 100.0, 101.0];
    let odd: Vec<Candle> =
        closes.iter().enumerate().map(|(m, close)| c("bitmex", "XBTUSD", m as i64, *close)).collect();
    let out = price_spikes(&odd, 15.0, 0.01);
    assert_eq!((out.evaluated, out.failed), (1, 0));
    // A large z alone, or a large move alone, is no spike.
    let calm: Vec<Candle> = (0..50).map(|m| c("bitmex", "XBTUSD", m, 100.0 + (m % 2) as f64 * 0.001)).collect();
    assert_eq!(price_spikes(&calm, 0.5, 0.5).failed, 0, "z above 0.5 everywhere, but moves of 0.001%");
    assert_eq!(price_spikes(&candles, 1e9, 0.01).failed, 0, "a 20% move, under an unreachable z");
}

#[test]
fn a_spike_exactly_at_either_limit_is_not_beyond_it() {
    use super::quality::{median_mad, robust_z};
    let mut candles: Vec<Candle> = (0..200).map(|m| c("bitmex", "XBTUSD", m, 100.0 + (m % 7) as f64 * 0.05)).collect();
    candles[120].close = candles[119].close * 1.2;
    let returns: Vec<f64> = candles.windows(2).map(|w| (w[1].close / w[0].close).ln()).collect();
    let (median, mad) = median_mad(&returns).expect("returns");
    let spike = returns[119];
    let z = robust_z(spike, median, mad);
    let up = |max_z: f64, min_move: f64| {
        price_spikes(&candles, max_z, min_move).samples.iter().filter(|s| s.detail.starts_with("return +")).count()
    };
    assert_eq!(up(z, 0.01), 0, "a z of exactly the limit");
    assert_eq!(up(z * 0.999_999, 0.01), 1);
    assert_eq!(up(15.0, spike.abs()), 0, "a move of exactly the limit");
    assert_eq!(up(15.0, spike.abs() * 0.999_999), 1);
}

#[test]
fn the_stale_symbol_is_the_flat_one_not_the_one_that_moves() {
    let mut candles: Vec<Candle> = (0..120).map(|m| c("bitmex", "ETHUSD", m, 3000.0 + m as f64)).collect();
    candles.extend((0..120).map(|m| c("bitmex", "XBTUSD", m, 60_000.0)));
    let out = stale_prices(&candles, 60);
    let flagged: Vec<&str> = out.samples.iter().filter_map(|s| s.symbol.as_ref().map(Symbol::as_str)).collect();
    assert_eq!(flagged, ["XBTUSD"]);
    // Flat across a gap of a minute without trades: two runs, neither long enough.
    let gapped: Vec<Candle> = candles
        .iter()
        .filter(|c| c.symbol.as_str() != "XBTUSD" || c.open_time_us != day().start_us() + 59 * MINUTE_US)
        .cloned()
        .collect();
    assert_eq!(stale_prices(&gapped, 61).failed, 0);
}

#[test]
fn each_quote_is_judged_by_its_own_bid_and_ask() {
    assert_eq!(crossed_quotes(&[q(1.0, 2.0)]).failed, 0);
    assert_eq!(crossed_quotes(&[q(2.0, 2.0)]).samples[0].detail, "bid 2 ≥ ask 2", "locked");
    assert_eq!(crossed_quotes(&[q(3.0, 2.0)]).samples[0].detail, "bid 3 ≥ ask 2", "crossed");
}

#[test]
fn a_flat_run_is_stale_when_others_traded_in_half_of_its_minutes() {
    // XBTUSD flat for 120 minutes; ETHUSD trades in 40 of them (a third): more than half of the 60-minute limit.
    let mut candles: Vec<Candle> = (0..40).map(|m| c("bitmex", "ETHUSD", m, 3000.0 + m as f64)).collect();
    candles.extend((0..120).map(|m| c("bitmex", "XBTUSD", m, 60_000.0)));
    assert_eq!(stale_prices(&candles, 60).failed, 1);
    // In 20 of them: fewer than half the limit, a quiet hour rather than a stale feed.
    candles.retain(|c| c.symbol.as_str() != "ETHUSD" || c.open_time_us < day().start_us() + 20 * MINUTE_US);
    assert_eq!(stale_prices(&candles, 60).failed, 0);
}

#[test]
fn with_an_odd_number_of_closes_above_three_the_median_is_the_middle_one() {
    let venues = vec![
        c("bitmex", "XBTUSD", 0, 100.0),
        c("deribit", "BTC-PERPETUAL", 0, 101.0),
        c("binance-futures", "BTCUSDT", 0, 102.0),
        c("binance-futures", "BTCUSDC", 0, 103.0),
        c("binance-futures", "BTCBUSD", 0, 200.0),
    ];
    let underlying = venues.iter().map(|c| ((c.exchange.clone(), c.symbol.clone()), "BTC".to_owned())).collect();
    let out = cross_exchange_divergence(&venues, &underlying, 0.03);
    assert_eq!((out.evaluated, out.failed), (5, 1));
    assert!(out.samples[0].detail.contains("from the BTC median 102 "), "{:?}", out.samples);
}

#[test]
fn the_failing_checks_are_those_with_a_failed_element() {
    let mut failed = CheckOutcome::new("quality.a", Family::Quality, "a", Threshold::ZERO_TOLERANCE);
    failed.fail_one(|| Sample::general("x".to_owned()));
    let mut passed = CheckOutcome::new("quality.b", Family::Quality, "b", Threshold::ZERO_TOLERANCE);
    passed.pass_one();
    let validation = Validation::evaluate(vec![passed, failed], &ValidationConfig::default());
    let failing: Vec<&str> = validation.failing().map(|c| c.id.as_str()).collect();
    assert_eq!(failing, ["quality.a"]);
}
