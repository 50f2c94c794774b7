//! The validation report: one model for every report of the workspace, whether the pipeline made it from
//! the data alone (`pipeline run|validate --report-dir`) or the harness made it against ground truth
//! (`harness run`). It is written as `report.json` (one schema, versioned), `report.md` (fits a Slack
//! message or a PR comment), `report.html` (one self-contained file with pictures) and printed as text; the
//! nightly Slack message reads it back with [`read`].
//!
//! The report is data first: every rendering is made from it, so what a person reads and what a script
//! parses never disagree. A producer adds its own sections (the harness: the ground truth, the external
//! command) through [`Sections`], which render inside the same documents instead of beside them.

mod html;
mod markdown;
mod text;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use market::TradingDay;
use market::checks::{
    Baseline, CheckOutcome, CompletenessRecord, Family, Sample, Scores, Status, Threshold, Thresholds, Validation,
    family_status,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::run::RunOutcome;
use crate::store::{RunStatus, ScorePoint, Store};

/// Bumped when a field changes meaning or disappears; additions keep the version.
pub const SCHEMA_VERSION: u32 = 2;
/// Not-passing checks listed in the short renderings (Markdown, text, Slack).
pub const TOP_CHECKS: usize = 5;

/// Who judged the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Producer {
    /// The pipeline's own validation, from the data alone.
    Pipeline,
    /// The harness, against the generator's ground truth.
    Harness,
}

impl Producer {
    pub fn as_str(self) -> &'static str {
        match self {
            Producer::Pipeline => "pipeline",
            Producer::Harness => "harness",
        }
    }
}

/// One stage of the run the report is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageLine {
    pub stage: String,
    pub succeeded: bool,
    pub duration_ms: i64,
    pub rows: Option<u64>,
    pub error: Option<String>,
}

/// The pipeline run whose data the report judges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSection {
    pub id: i64,
    /// `succeeded` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub stages: Vec<StageLine>,
}

impl RunSection {
    pub fn of(outcome: &RunOutcome) -> RunSection {
        RunSection {
            id: outcome.run_id,
            status: outcome.status.as_str().to_owned(),
            error: outcome.error.clone(),
            stages: outcome
                .stages
                .iter()
                .map(|s| StageLine {
                    stage: s.stage.to_owned(),
                    succeeded: s.succeeded,
                    duration_ms: s.duration_ms(),
                    rows: s.rows,
                    error: s.error.clone(),
                })
                .collect(),
        }
    }
}

/// A check that was not evaluated, and why (listed instead of scoring a vacuous pass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedCheck {
    pub id: String,
    pub reason: String,
}

/// What a producer adds to the common report: its fields (flattened into `report.json`) and how they read.
/// Each rendering hook writes a block placed after the run's stages and before the checks.
pub trait Sections: Serialize + DeserializeOwned {
    fn text(&self, _out: &mut String) {}
    fn markdown(&self, _out: &mut String) {}
    /// Markup rather than a string to append to, so that a producer's HTML goes through maud's `html!` and its
    /// escaping like the rest of the page.
    fn html(&self) -> maud::Markup {
        maud::Markup::default()
    }
}

/// The pipeline's reports add nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoSections {}

impl Sections for NoSections {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report<S = NoSections> {
    pub schema_version: u32,
    pub producer: Producer,
    pub date: TradingDay,
    pub generated_at: DateTime<Utc>,
    pub status: Status,
    pub scores: Scores,
    pub thresholds: Thresholds,
    pub checks: Vec<CheckOutcome>,
    pub skipped_checks: Vec<SkippedCheck>,
    /// Completeness per (exchange, symbol), with gap runs and hourly coverage.
    pub records: Vec<CompletenessRecord>,
    /// What each tracked metric was compared with by the anomaly check.
    pub baselines: Vec<Baseline>,
    pub run: Option<RunSection>,
    /// Latest scores of earlier dates, oldest first (trends).
    pub history: Vec<ScorePoint>,
    #[serde(flatten)]
    pub sections: S,
}

impl Report {
    pub fn new(producer: Producer, day: TradingDay, validation: &Validation) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            producer,
            date: day,
            generated_at: Utc::now(),
            status: validation.status,
            scores: validation.scores,
            thresholds: validation.thresholds,
            checks: validation.checks.clone(),
            skipped_checks: Vec::new(),
            records: validation.records.clone(),
            baselines: validation.baselines.clone(),
            run: None,
            history: Vec::new(),
            sections: NoSections {},
        }
    }

    /// The pipeline's report of `validation`, with the stages of the date's latest succeeded run and 30 days
    /// of score history from `store` (both best effort: a report is still made when the store cannot answer).
    pub async fn for_validation(store: &Store, day: TradingDay, validation: &Validation) -> Report {
        let mut report = Report::new(Producer::Pipeline, day, validation);
        if let Ok(runs) = store.runs_of_day(day).await
            && let Some(run) = runs.into_iter().find(|r| r.status == RunStatus::Succeeded)
        {
            report.run = Some(RunSection {
                id: run.id,
                status: run.status.as_str().to_owned(),
                error: run.error,
                stages: run
                    .stages
                    .into_iter()
                    .map(|(stage, status, duration_ms)| StageLine {
                        succeeded: status == "succeeded",
                        stage,
                        duration_ms,
                        rows: None,
                        error: None,
                    })
                    .collect(),
            });
        }
        let from = (0..30).fold(day, |d, _| d.pred());
        report.history = store.score_history(from, day).await.unwrap_or_default();
        report
    }

    /// This report with a producer's sections.
    pub fn with_sections<S: Sections>(self, sections: S) -> Report<S> {
        Report {
            schema_version: self.schema_version,
            producer: self.producer,
            date: self.date,
            generated_at: self.generated_at,
            status: self.status,
            scores: self.scores,
            thresholds: self.thresholds,
            checks: self.checks,
            skipped_checks: self.skipped_checks,
            records: self.records,
            baselines: self.baselines,
            run: self.run,
            history: self.history,
            sections,
        }
    }
}

/// One family's score as the renderings show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRow {
    pub family: Family,
    pub score: f64,
    pub threshold: Threshold,
    pub status: Status,
}

impl<S: Sections> Report<S> {
    /// The three family scores with their thresholds and statuses.
    pub fn score_rows(&self) -> [ScoreRow; 3] {
        Family::ALL.map(|family| {
            let (score, threshold) = (self.scores.get(family), self.thresholds.for_family(family));
            ScoreRow { family, score, threshold, status: family_status(score, threshold) }
        })
    }

    /// Checks that do not pass, worst first: by status (error, fail, warn), then failed count, then id.
    pub fn not_passing(&self) -> Vec<&CheckOutcome> {
        let mut checks: Vec<&CheckOutcome> = self.checks.iter().filter(|c| c.status != Status::Pass).collect();
        checks.sort_by(|a, b| b.status.cmp(&a.status).then(b.failed.cmp(&a.failed)).then(a.id.cmp(&b.id)));
        checks
    }

    pub fn check(&self, id: &str) -> Option<&CheckOutcome> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The report as pretty JSON (`report.json`).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises: its keys are strings, its numbers finite")
    }

    /// The Markdown summary (`report.md`).
    pub fn markdown(&self) -> String {
        markdown::render(self)
    }

    /// The self-contained HTML report (`report.html`).
    pub fn html(&self) -> String {
        html::render(self)
    }

    /// The terminal summary.
    pub fn text(&self) -> String {
        text::render(self)
    }
}

/// The icon of a status in the short renderings.
pub fn icon(status: Status) -> &'static str {
    match status {
        Status::Pass => "✅",
        Status::Warn => "⚠️",
        Status::Fail | Status::Error => "❌",
    }
}

/// A failing sample as one line: `bitmex XBTUSD 13:05: detail`.
pub fn sample_text(sample: &Sample) -> String {
    let at = sample
        .open_time_us
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .map(|t| t.format(" %H:%M").to_string())
        .unwrap_or_default();
    match (&sample.exchange, &sample.symbol) {
        (Some(e), Some(s)) => format!("{e} {s}{at}: {}", sample.detail),
        _ => sample.detail.clone(),
    }
}

/// Why a report file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a report: {reason}")]
    NotAReport { path: PathBuf, reason: String },
    #[error("{path} has schema_version {found}; this binary reads version {SCHEMA_VERSION}")]
    Schema { path: PathBuf, found: u32 },
}

/// Reads `dir/report.json`. A report of another schema version is refused with that reason rather than
/// misread; fields added later are ignored.
pub fn read<S: Sections>(dir: &Path) -> Result<Report<S>, ReadError> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ReadError::Io { path: path.clone(), source })?;
    #[derive(Deserialize)]
    struct Version {
        schema_version: u32,
    }
    let version: Version =
        serde_json::from_str(&text).map_err(|e| ReadError::NotAReport { path: path.clone(), reason: e.to_string() })?;
    if version.schema_version != SCHEMA_VERSION {
        return Err(ReadError::Schema { path, found: version.schema_version });
    }
    serde_json::from_str(&text).map_err(|e| ReadError::NotAReport { path, reason: e.to_string() })
}

/// Writes `report.json`, `report.md` and `report.html` into `dir`.
pub fn write_all<S: Sections>(report: &Report<S>, dir: &Path) -> std::io::Result<()> {
    write_files(dir, [("report.json", report.json()), ("report.md", report.markdown()), ("report.html", report.html())])
}

/// Writes each `(name, body)` into `dir` (created if missing), each file atomically: a `.partial` file, then a
/// rename over the old one, so a reader never sees half a file. Errors name the path.
pub fn write_files<N: AsRef<str>>(dir: &Path, files: impl IntoIterator<Item = (N, String)>) -> std::io::Result<()> {
    let named = |path: &Path, e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| named(dir, e))?;
    for (name, body) in files {
        let name = name.as_ref();
        let path = dir.join(name);
        let partial = dir.join(format!("{name}.partial"));
        std::fs::write(&partial, body).map_err(|e| named(&partial, e))?;
        std::fs::rename(&partial, &path).map_err(|e| named(&path, e))?;
    }
    Ok(())
}
