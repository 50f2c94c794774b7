//! The vocabulary of validation: check outcomes, samples, statuses, thresholds, scores.

use serde::{Deserialize, Serialize};

use crate::{Candle, Exchange, Symbol};

/// At most this many failing rows are kept per check.
pub const MAX_SAMPLES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Completeness,
    Quality,
    Consistency,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Completeness, Family::Quality, Family::Consistency];

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Completeness => "completeness",
            Family::Quality => "quality",
            Family::Consistency => "consistency",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

/// One failing row, as shown in reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub exchange: Option<Exchange>,
    pub symbol: Option<Symbol>,
    pub open_time_us: Option<i64>,
    pub detail: String,
}

impl Sample {
    /// A sample about one exchange/symbol as a whole.
    pub fn pair(exchange: &Exchange, symbol: &Symbol, detail: String) -> Sample {
        Sample { exchange: Some(exchange.clone()), symbol: Some(symbol.clone()), open_time_us: None, detail }
    }

    /// A sample about the whole date.
    pub fn general(detail: String) -> Sample {
        Sample { exchange: None, symbol: None, open_time_us: None, detail }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// Stable dotted id, e.g. `consistency.candles_match_trades`.
    pub id: String,
    pub family: Family,
    pub description: String,
    pub evaluated: u64,
    pub failed: u64,
    /// The levels this check's pass ratio is judged against.
    pub threshold: Threshold,
    /// `threshold` applied to the pass ratio (kept up to date by every mutation below).
    pub status: Status,
    pub samples: Vec<Sample>,
}

impl CheckOutcome {
    pub fn new(id: &str, family: Family, description: &str, threshold: Threshold) -> Self {
        CheckOutcome {
            id: id.to_owned(),
            family,
            description: description.to_owned(),
            evaluated: 0,
            failed: 0,
            threshold,
            status: Status::Pass,
            samples: Vec::new(),
        }
    }

    pub fn pass_one(&mut self) {
        self.evaluated += 1;
    }

    /// Counts `n` elements at once, `failed` of them failing (samples are added separately).
    pub fn count(&mut self, n: u64, failed: u64) {
        self.evaluated += n;
        self.failed += failed;
        self.status = family_status(self.pass_ratio(), self.threshold);
    }

    pub fn fail_one(&mut self, sample: impl FnOnce() -> Sample) {
        self.evaluated += 1;
        self.failed += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(sample());
        }
        self.status = family_status(self.pass_ratio(), self.threshold);
    }

    /// Adds a failing row to the samples (up to [`MAX_SAMPLES`]) without counting it.
    pub fn sample(&mut self, sample: Sample) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(sample);
        }
    }

    /// An advisory check can warn but never fail (e.g. anomalies against history); it does not count in
    /// its family's score, where a handful of judged values would otherwise weigh like a whole day.
    pub fn is_advisory(&self) -> bool {
        self.threshold.fail_below <= 0.0
    }

    /// `1 − failed / evaluated`, or 1 when nothing was evaluated.
    pub fn pass_ratio(&self) -> f64 {
        if self.evaluated == 0 { 1.0 } else { 1.0 - self.failed as f64 / self.evaluated as f64 }
    }
}

/// A sample about the candle `c` (its exchange, symbol and minute).
pub(crate) fn sample_of(c: &Candle, detail: String) -> Sample {
    Sample {
        exchange: Some(c.exchange.clone()),
        symbol: Some(c.symbol.clone()),
        open_time_us: Some(c.open_time_us),
        detail,
    }
}

/// Candles in key order: exchange, symbol, open time.
pub(crate) fn order(a: &Candle, b: &Candle) -> std::cmp::Ordering {
    (&a.exchange, &a.symbol, a.open_time_us).cmp(&(&b.exchange, &b.symbol, b.open_time_us))
}

/// Walks two candle lists by key, in key order, without cloning keys: `visit(want, got)` receives the
/// expected candle of a key (if any) and every landed candle with that key (possibly none). Keys on
/// either side are visited once.
pub(crate) fn join<'a>(
    expected: &'a [Candle],
    actual: &'a [Candle],
    mut visit: impl FnMut(Option<&'a Candle>, &[&'a Candle]),
) {
    let mut want: Vec<&Candle> = expected.iter().collect();
    want.sort_by(|a, b| order(a, b));
    let mut got: Vec<&Candle> = actual.iter().collect();
    got.sort_by(|a, b| order(a, b));
    let (mut i, mut j) = (0, 0);
    while i < want.len() || j < got.len() {
        let ordering = match (want.get(i), got.get(j)) {
            (Some(w), Some(g)) => order(w, g),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let key = if ordering == std::cmp::Ordering::Greater { got[j] } else { want[i] };
        let start = j;
        while j < got.len() && order(got[j], key) == std::cmp::Ordering::Equal {
            j += 1;
        }
        if ordering == std::cmp::Ordering::Greater {
            visit(None, &got[start..j]);
        } else {
            visit(Some(want[i]), &got[start..j]);
            i += 1;
            // Duplicated expected keys (never produced by a builder) are visited one by one.
        }
    }
}

/// Candles grouped by (exchange, symbol), groups in pair order, each group in time order. Linear in the
/// usual case where candles arrive grouped by symbol (one map lookup per run of a symbol, not per candle).
pub(crate) fn group_by_pair(candles: &[Candle]) -> Vec<(&Exchange, &Symbol, Vec<&Candle>)> {
    let mut index: std::collections::HashMap<(&Exchange, &Symbol), usize> = std::collections::HashMap::new();
    let mut groups: Vec<(&Exchange, &Symbol, Vec<&Candle>)> = Vec::new();
    let mut current: Option<usize> = None;
    for c in candles {
        let same = current.is_some_and(|i| groups[i].0 == &c.exchange && groups[i].1 == &c.symbol);
        if !same {
            let i = *index.entry((&c.exchange, &c.symbol)).or_insert_with(|| {
                groups.push((&c.exchange, &c.symbol, Vec::new()));
                groups.len() - 1
            });
            current = Some(i);
        }
        groups[current.expect("set above")].2.push(c);
    }
    for (_, _, list) in &mut groups {
        if !list.is_sorted_by_key(|c| c.open_time_us) {
            list.sort_by_key(|c| c.open_time_us);
        }
    }
    groups.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    groups
}

/// Warn and fail levels of a pass ratio or a family score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Below this the check or family fails.
    pub fail_below: f64,
    /// Below this (and not below `fail_below`) it warns.
    pub warn_below: f64,
}

impl Threshold {
    /// Any failing element fails the check: for integrity (duplicates, wrong values, broken invariants).
    pub const ZERO_TOLERANCE: Threshold = Threshold { fail_below: 1.0, warn_below: 1.0 };
    /// Any failing element warns; below 95 % it fails.
    pub const WARN_ON_ANY: Threshold = Threshold { fail_below: 0.95, warn_below: 1.0 };
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub completeness: Threshold,
    pub quality: Threshold,
    pub consistency: Threshold,
}

impl Thresholds {
    /// The original test plan's levels (completeness ≥ 0.95, quality ≥ 0.90, consistency ≥ 0.95) as
    /// fail levels; anything short of 0.99 warns.
    pub const DEFAULT: Thresholds = Thresholds {
        completeness: Threshold { fail_below: 0.95, warn_below: 0.99 },
        quality: Threshold { fail_below: 0.90, warn_below: 0.99 },
        consistency: Threshold { fail_below: 0.95, warn_below: 0.99 },
    };

    pub fn for_family(&self, family: Family) -> Threshold {
        match family {
            Family::Completeness => self.completeness,
            Family::Quality => self.quality,
            Family::Consistency => self.consistency,
        }
    }
}

/// The three scores, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub completeness: f64,
    pub quality: f64,
    pub consistency: f64,
}

impl Scores {
    pub fn get(&self, family: Family) -> f64 {
        match family {
            Family::Completeness => self.completeness,
            Family::Quality => self.quality,
            Family::Consistency => self.consistency,
        }
    }
}

/// Scores every family from its checks (mean of pass ratios; 1 for a family without checks).
pub fn score(outcomes: &[CheckOutcome]) -> Scores {
    let family_score = |family: Family| {
        let ratios: Vec<f64> =
            outcomes.iter().filter(|o| o.family == family && !o.is_advisory()).map(CheckOutcome::pass_ratio).collect();
        if ratios.is_empty() { 1.0 } else { ratios.iter().sum::<f64>() / ratios.len() as f64 }
    };
    Scores {
        completeness: family_score(Family::Completeness),
        quality: family_score(Family::Quality),
        consistency: family_score(Family::Consistency),
    }
}

/// The status of one family's score under `threshold`.
pub fn family_status(score: f64, threshold: Threshold) -> Status {
    if score < threshold.fail_below {
        Status::Fail
    } else if score < threshold.warn_below {
        Status::Warn
    } else {
        Status::Pass
    }
}

/// The worst family status (see [`Validation::evaluate`] for the overall status, which also counts checks).
pub fn overall_status(scores: &Scores, thresholds: &Thresholds) -> Status {
    Family::ALL.iter().map(|f| family_status(scores.get(*f), thresholds.for_family(*f))).max().unwrap_or(Status::Pass)
}
