//! Every check of one date from the data alone, as the pipeline's validation stage runs it in
//! production (no ground truth): what landed in BigQuery against what the downloaded trades say.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::anomaly::{anomalies, day_metrics};
use super::completeness::{
    candle_coverage, completeness_records, configured_symbols_listed, file_coverage, rows_inside_date,
};
use super::config::ValidationConfig;
use super::consistency::{
    CountViews, candles_have_instruments, candles_match, counts_agree, cross_exchange_divergence, rollups_match,
};
use super::quality::{
    FileProfile, arrival_order, ohlc_invariants, price_spikes, rows_parsed, stale_prices, trades_on_grid,
    unique_trade_ids,
};
use super::validation::Validation;
use crate::{Candle, Exchange, Instrument, Interval, Symbol, TradingDay};

/// Everything the date's validation looks at.
#[derive(Debug, Clone, Copy)]
pub struct DayInput<'a> {
    pub day: TradingDay,
    pub configured: &'a [(Exchange, Symbol)],
    /// The instruments uploaded for the date.
    pub instruments: &'a [Instrument],
    /// One profile per trades file that could be read.
    pub files: &'a [FileProfile],
    /// 1-minute candles built from the trades.
    pub expected: &'a [Candle],
    /// Candles built from the trades directly at 5m, 1h and 1d.
    pub direct: &'a [(Interval, Vec<Candle>)],
    /// What is in BigQuery for the date.
    pub landed: &'a [Candle],
    pub counts: &'a [CountViews],
    /// Earlier dates' values of the tracked metrics.
    pub history: &'a BTreeMap<(String, Exchange, Symbol), Vec<f64>>,
}

pub fn validate_day(input: &DayInput<'_>, config: &ValidationConfig) -> Validation {
    let listed: Vec<(Exchange, Symbol)> = input
        .configured
        .iter()
        .filter(|(e, s)| {
            input.instruments.iter().any(|i| &i.exchange == e && &i.dataset_id == s && i.listed_on(input.day))
        })
        .cloned()
        .collect();
    let with_trades: BTreeSet<(Exchange, Symbol)> =
        input.expected.iter().map(|c| (c.exchange.clone(), c.symbol.clone())).collect();
    let underlying: HashMap<(Exchange, Symbol), String> = input
        .instruments
        .iter()
        .map(|i| ((i.exchange.clone(), i.dataset_id.clone()), i.base_currency.clone()))
        .collect();
    let metrics = day_metrics(input.landed);
    let (anomaly_check, baselines) = anomalies(&metrics, input.history, config.anomaly);
    let checks = vec![
        configured_symbols_listed(input.configured, input.instruments, input.day),
        file_coverage(&listed, &with_trades),
        candle_coverage(input.expected, input.landed),
        rows_inside_date(input.files, config.outside_share),
        ohlc_invariants(input.landed),
        rows_parsed(input.files),
        trades_on_grid(input.files),
        unique_trade_ids(input.files),
        arrival_order(input.files),
        price_spikes(input.landed, config.spike_max_z, config.spike_min_move),
        stale_prices(input.landed, config.stale_minutes),
        anomaly_check,
        candles_match(input.expected, input.landed, config.sum_tolerance),
        rollups_match(input.direct, input.landed, config.sum_tolerance),
        counts_agree(input.counts),
        candles_have_instruments(input.landed, input.instruments),
        cross_exchange_divergence(input.landed, &underlying, config.divergence_band),
    ];
    let mut validation = Validation::evaluate(checks, config);
    validation.records = completeness_records(input.expected, input.landed);
    validation.baselines = baselines;
    validation.metrics = metrics;
    validation
}
