//! The harness's sections of the workspace's one report model (`pipeline::report`): the ground truth the
//! data was judged against (seed, expected and landed counts per symbol), the in-process pipeline's own
//! validation, and the external command when one produced the data. They are flattened into `report.json`
//! and rendered inside its Markdown, HTML and text.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use fixtures::DayTruth;
use market::checks::Validation;
use market::{Candle, TradingDay};
use maud::{Markup, html};
use pipeline::RunOutcome;
use pipeline::report::{Producer, RunSection, Sections};
use serde::{Deserialize, Serialize};

use crate::postgres::Backend;
use crate::scenario::{ScenarioResult, Verdict};
use crate::scoring::{ExpectedCounts, skipped_checks};

/// A harness report: the common report with [`HarnessSections`].
pub type Report = pipeline::report::Report<HarnessSections>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolLine {
    pub exchange: String,
    pub symbol: String,
    pub expected_candles: u64,
    pub landed_candles: u64,
    pub generated_rows: u64,
    pub rows_before_day: u64,
}

/// The external command `harness run --pipeline-cmd` ran instead of the in-process pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalSection {
    /// The command as run through `sh -c`, with `{date}` replaced.
    pub command: String,
    /// Its exit status as a shell reports it: the exit code, or 128 + n when signal n ended it.
    pub exit_code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// It ran past `--pipeline-timeout` and was stopped.
    pub timed_out: bool,
    pub duration_ms: i64,
    /// Its last lines of output (stdout and stderr, interleaved as they arrived).
    pub output_tail: Vec<String>,
}

impl ExternalSection {
    /// How it ended, in words: `exited with status 5`, `killed by signal 9 (status 137)`...
    pub fn ending(&self) -> String {
        match (self.timed_out, self.signal) {
            (true, _) => format!("timed out after {} ms, stopped (status {})", self.duration_ms, self.exit_code),
            (false, Some(signal)) => format!("killed by signal {signal} (status {})", self.exit_code),
            (false, None) => format!("exited with status {}", self.exit_code),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub expected: ExpectedCounts,
    pub landed_candles: u64,
    pub landed_instruments: u64,
}

/// What the harness adds to a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarnessSections {
    pub seed: u64,
    pub counts: Counts,
    pub symbols: Vec<SymbolLine>,
    /// The in-process pipeline's own validation (from the data alone), beside the truth-based checks.
    pub pipeline_validation: Option<Validation>,
    /// Set when an external command produced the data (`--pipeline-cmd`); `run` is then absent.
    pub external: Option<ExternalSection>,
    /// The deliberate defect the pipeline ran with, if any.
    pub defect: Option<String>,
    /// The fault scenario the date ran under, and how it was judged (`harness run --faults`, `harness scenario`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<ScenarioResult>,
    pub postgres: Backend,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
}

impl Sections for HarnessSections {
    fn text(&self, out: &mut String) {
        let defect = self.defect.as_ref().map(|d| format!(", defect {d}")).unwrap_or_default();
        let _ = writeln!(out, "  seed {}, Postgres {}{defect}", self.seed, self.postgres.as_str());
        if let Some(e) = &self.external {
            let mark = if e.exit_code == 0 { "✓" } else { "✗" };
            let _ = writeln!(out, "external command: {}", e.command);
            let _ = writeln!(out, "  {mark} {} in {} ms", e.ending(), e.duration_ms);
            if e.exit_code != 0 {
                for line in e.output_tail.iter().rev().take(5).rev() {
                    let _ = writeln!(out, "      | {line}");
                }
            }
        }
        if let Some(result) = &self.scenario {
            let _ = write!(out, "{}", scenario_text(result));
        }
        let _ = writeln!(out, "  {:<18} {:<20} {:>9} {:>9} {:>9}", "exchange", "symbol", "expected", "landed", "rows");
        for s in &self.symbols {
            let mark = if s.expected_candles == s.landed_candles { " " } else { "!" };
            let _ = writeln!(
                out,
                "{mark} {:<18} {:<20} {:>9} {:>9} {:>9}",
                s.exchange, s.symbol, s.expected_candles, s.landed_candles, s.generated_rows
            );
        }
        let e = &self.counts.expected;
        let _ = writeln!(
            out,
            "  trades in the day {}, rows before the day {}, candles expected {} landed {}, instruments {}",
            e.trades_in_day, e.rows_before_day, e.candles, self.counts.landed_candles, self.counts.landed_instruments
        );
    }

    fn markdown(&self, out: &mut String) {
        let _ = writeln!(out);
        let mut facts = vec![
            format!("seed {}", self.seed),
            format!("candles expected {}, landed {}", self.counts.expected.candles, self.counts.landed_candles),
        ];
        if let Some(defect) = &self.defect {
            facts.push(format!("defect `{defect}`"));
        }
        if let Some(e) = &self.external {
            facts.push(format!("external command {}", e.ending()));
        }
        let _ = writeln!(out, "Against ground truth: {}.", facts.join(" · "));
        if let Some(r) = &self.scenario {
            let _ = writeln!(
                out,
                "\nFault scenario `{}`: expected {}, {}; verdict **{}**.",
                r.name,
                r.expectation.as_str(),
                r.outcome.as_str(),
                r.verdict.as_str()
            );
            for finding in &r.findings {
                let _ = writeln!(out, "- {finding}");
            }
        }
    }

    fn html(&self) -> Markup {
        html! {
            section #truth {
                h2 { "Ground truth" }
                p {
                    "seed " (self.seed) " · Postgres " (self.postgres.as_str())
                    @if let Some(defect) = &self.defect { " · defect " code { (defect) } }
                }
                table {
                    tr { th { "exchange" } th { "symbol" } th { "expected candles" } th { "landed" } th { "rows" } }
                    @for s in &self.symbols {
                        tr class=(if s.expected_candles == s.landed_candles { "pass" } else { "fail" }) {
                            td { (s.exchange) }
                            td { (s.symbol) }
                            td { (s.expected_candles) }
                            td { (s.landed_candles) }
                            td { (s.generated_rows) }
                        }
                    }
                }
            }
            @if let Some(r) = &self.scenario {
                section #scenario {
                    h2 { "Fault scenario" }
                    p { code { (r.name) } ": " (r.description) }
                    table {
                        tr {
                            th { "expectation" } th { "outcome" } th { "faults injected" } th { "retries" }
                            th { "time to recover" } th { "verdict" }
                        }
                        tr class=(if r.verdict == Verdict::NotMet { "fail" } else { "pass" }) {
                            td { (r.expectation.as_str()) }
                            td { (r.outcome.as_str()) }
                            td { (r.faults_injected) }
                            td { (r.retries) }
                            td { @if let Some(ms) = r.recover_ms { (ms) " ms" } @else { "-" } }
                            td { (r.verdict.as_str()) }
                        }
                    }
                    @for line in r.findings.iter().chain(&r.notes) { p { (line) } }
                }
            }
            @if let Some(e) = &self.external {
                section #external {
                    h2 { "External command" }
                    p { code { (e.command) } ": " (e.ending()) " in " (e.duration_ms) " ms" }
                    pre { @for line in &e.output_tail { (line) "\n" } }
                }
            }
        }
    }
}

/// Inputs of a report.
pub struct ReportInput<'a> {
    pub day: TradingDay,
    pub seed: u64,
    pub truth: &'a DayTruth,
    pub landed: &'a [Candle],
    pub landed_instruments: u64,
    pub outcome: Option<&'a RunOutcome>,
    pub validation: Validation,
    pub postgres: Backend,
    pub started_at: DateTime<Utc>,
    pub defect: Option<crate::defects::Defect>,
}

/// The report of a harness run.
pub fn build(input: &ReportInput<'_>) -> Report {
    let mut landed_per_pair: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in input.landed {
        *landed_per_pair.entry((c.exchange.to_string(), c.symbol.to_string())).or_default() += 1;
    }
    let symbols = input
        .truth
        .files
        .iter()
        .map(|f| SymbolLine {
            exchange: f.exchange.to_string(),
            symbol: f.symbol.to_string(),
            expected_candles: f.candles.len() as u64,
            landed_candles: landed_per_pair.get(&(f.exchange.to_string(), f.symbol.to_string())).copied().unwrap_or(0),
            generated_rows: f.rows,
            rows_before_day: f.rows_before_day,
        })
        .collect();
    let mut report = pipeline::report::Report::new(Producer::Harness, input.day, &input.validation);
    report.run = input.outcome.map(RunSection::of);
    report.skipped_checks = skipped_checks(input.outcome);
    report.with_sections(HarnessSections {
        seed: input.seed,
        counts: Counts {
            expected: ExpectedCounts::of(input.truth),
            landed_candles: input.landed.len() as u64,
            landed_instruments: input.landed_instruments,
        },
        symbols,
        pipeline_validation: input.outcome.and_then(|o| o.validation.clone()),
        external: None,
        defect: input.defect.map(|d| d.name().to_owned()),
        scenario: None,
        postgres: input.postgres,
        started_at: input.started_at,
        duration_ms: (Utc::now() - input.started_at).num_milliseconds(),
    })
}

/// A scenario's result in a few lines of text.
pub fn scenario_text(r: &ScenarioResult) -> String {
    let mut out = format!(
        "fault scenario {}: expected {}, {} ({} faults injected, {} retries{}): {}\n",
        r.name,
        r.expectation.as_str(),
        r.outcome.as_str(),
        r.faults_injected,
        r.retries,
        r.recover_ms.map(|ms| format!(", recovered {ms} ms after the first fault")).unwrap_or_default(),
        r.verdict.as_str()
    );
    for line in r.findings.iter().map(|f| format!("  ✗ {f}")).chain(r.notes.iter().map(|n| format!("  · {n}"))) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
