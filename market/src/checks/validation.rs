//! A date's validation: every check's outcome, the family scores and the overall status.

use serde::{Deserialize, Serialize};

use super::anomaly::{Baseline, Metric};
use super::completeness::CompletenessRecord;
use super::config::ValidationConfig;
use super::outcome::{CheckOutcome, Scores, Status, Thresholds, family_status, overall_status, score};

/// All checks of one date, with their scores and the overall status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub checks: Vec<CheckOutcome>,
    pub scores: Scores,
    pub thresholds: Thresholds,
    pub status: Status,
    /// One completeness record per (exchange, symbol).
    #[serde(default)]
    pub records: Vec<CompletenessRecord>,
    /// What each tracked metric was compared with by the anomaly check.
    #[serde(default)]
    pub baselines: Vec<Baseline>,
    /// The date's tracked metrics (stored as history for later dates).
    #[serde(default)]
    pub metrics: Vec<Metric>,
}

impl Validation {
    /// Applies per-check threshold overrides, then scores and judges.
    pub fn evaluate(mut checks: Vec<CheckOutcome>, config: &ValidationConfig) -> Validation {
        for check in &mut checks {
            if let Some(threshold) = config.check_thresholds.get(&check.id) {
                check.threshold = *threshold;
            }
            check.status = family_status(check.pass_ratio(), check.threshold);
        }
        let scores = score(&checks);
        let worst_check = checks.iter().map(|c| c.status).max().unwrap_or(Status::Pass);
        let status = overall_status(&scores, &config.thresholds).max(worst_check);
        Validation {
            checks,
            scores,
            thresholds: config.thresholds,
            status,
            records: Vec::new(),
            baselines: Vec::new(),
            metrics: Vec::new(),
        }
    }

    pub fn check(&self, id: &str) -> Option<&CheckOutcome> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// Checks that found at least one failing element.
    pub fn failing(&self) -> impl Iterator<Item = &CheckOutcome> {
        self.checks.iter().filter(|c| c.failed > 0)
    }
}
