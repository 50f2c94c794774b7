//! Anomalies against history: today's volume, trade count and candle count of each symbol compared
//! with a trailing window of earlier dates by robust z-score. The report shows the baseline used.
//!
//! History itself lives in Postgres; this module only judges numbers handed to it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids;
use super::outcome::{CheckOutcome, Family, Sample, Threshold, group_by_pair};
use super::quality::{median_mad, robust_z};
use crate::{Candle, Exchange, Symbol};

/// The metrics tracked per (date, exchange, symbol).
pub const TRACKED: [&str; 3] = ["volume", "trade_count", "candle_count"];

/// One observed value of a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub metric: String,
    pub exchange: Exchange,
    pub symbol: Symbol,
    pub value: f64,
}

/// What a metric was compared with, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub metric: String,
    pub exchange: Exchange,
    pub symbol: Symbol,
    pub observed: f64,
    /// Number of earlier dates in the window.
    pub history: usize,
    pub median: f64,
    /// 1.4826 × median absolute deviation.
    pub mad: f64,
    pub z: f64,
    pub max_z: f64,
    pub min_change: f64,
    pub anomalous: bool,
}

/// Per (exchange, symbol): total volume, trade count and number of candles of the date.
pub fn day_metrics(candles: &[Candle]) -> Vec<Metric> {
    group_by_pair(candles)
        .into_iter()
        .map(|(exchange, symbol, list)| {
            let volume: f64 = list.iter().map(|c| c.volume).sum();
            let trades: u64 = list.iter().map(|c| c.trade_count).sum();
            (exchange, symbol, volume, trades, list.len())
        })
        .flat_map(|(exchange, symbol, volume, trades, count)| {
            TRACKED.into_iter().zip([volume, trades as f64, count as f64]).map(move |(metric, value)| Metric {
                metric: metric.to_owned(),
                exchange: exchange.clone(),
                symbol: symbol.clone(),
                value,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnomalyRule {
    /// Robust z-score above which a value is anomalous...
    pub max_z: f64,
    /// ...provided it also differs from the median by more than this share (a flat history has MAD 0).
    pub min_change: f64,
    /// Fewer earlier dates than this: not judged.
    pub min_history: usize,
}

/// Quality: today's metrics against `history[(metric, exchange, symbol)]` (values of earlier dates).
/// Anomalies warn; they never fail a date on their own (markets do have unusual days).
pub fn anomalies(
    current: &[Metric],
    history: &BTreeMap<(String, Exchange, Symbol), Vec<f64>>,
    rule: AnomalyRule,
) -> (CheckOutcome, Vec<Baseline>) {
    let mut out = CheckOutcome::new(
        ids::VOLUME_ANOMALIES,
        Family::Quality,
        "volume, trade count and candle count of each symbol are in line with the trailing window",
        Threshold { fail_below: 0.0, warn_below: 1.0 },
    );
    let mut baselines = Vec::new();
    for m in current {
        let key = (m.metric.clone(), m.exchange.clone(), m.symbol.clone());
        let Some(past) = history.get(&key).filter(|p| p.len() >= rule.min_history) else { continue };
        let Some((median, mad)) = median_mad(past) else { continue };
        let z = robust_z(m.value, median, mad);
        let deviation = (m.value - median).abs();
        let change = if median != 0.0 {
            deviation / median.abs()
        } else if deviation > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let anomalous = z > rule.max_z && change > rule.min_change;
        if anomalous {
            out.fail_one(|| {
                Sample::pair(
                    &m.exchange,
                    &m.symbol,
                    format!(
                        "{} {} vs median {median} of {} dates (MAD {mad:.3}, z {z:.1} > {}, change {:.0}%)",
                        m.metric,
                        m.value,
                        past.len(),
                        rule.max_z,
                        change * 100.0
                    ),
                )
            });
        } else {
            out.pass_one();
        }
        baselines.push(Baseline {
            metric: m.metric.clone(),
            exchange: m.exchange.clone(),
            symbol: m.symbol.clone(),
            observed: m.value,
            history: past.len(),
            median,
            mad,
            z,
            max_z: rule.max_z,
            min_change: rule.min_change,
            anomalous,
        });
    }
    (out, baselines)
}
