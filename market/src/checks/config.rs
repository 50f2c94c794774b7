//! Validation settings: family thresholds, per-check overrides and the parameters of the statistical
//! checks. Every field has a documented default; a JSON file can override any subset
//! (`PIPELINE_VALIDATION_CONFIG`, see `.config/validation.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::anomaly::AnomalyRule;
use super::outcome::{Threshold, Thresholds};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Fail and warn levels of the three family scores.
    pub thresholds: Thresholds,
    /// Per-check thresholds replacing a check's built-in one, by check id.
    pub check_thresholds: BTreeMap<String, Threshold>,
    /// Relative tolerance of sums (volume, quote volume, vwap) when comparing candles.
    pub sum_tolerance: f64,
    pub spike_max_z: f64,
    /// A spike must also move the price by more than this share.
    pub spike_min_move: f64,
    pub stale_minutes: usize,
    pub divergence_band: f64,
    /// Largest share of a file's rows allowed outside the date.
    pub outside_share: f64,
    pub anomaly: AnomalyRule,
    /// Days of history the anomaly check looks back.
    pub anomaly_window_days: u32,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            thresholds: Thresholds::DEFAULT,
            check_thresholds: BTreeMap::new(),
            sum_tolerance: 1e-9,
            spike_max_z: 15.0,
            spike_min_move: 0.01,
            stale_minutes: 60,
            divergence_band: 0.03,
            outside_share: 0.01,
            anomaly: AnomalyRule { max_z: 5.0, min_change: 0.5, min_history: 7 },
            anomaly_window_days: 28,
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::DEFAULT
    }
}
