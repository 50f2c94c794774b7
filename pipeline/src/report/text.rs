//! The terminal summary of a report: the run's stages, the producer's sections, the scores, every failing
//! check with a few samples, the skipped checks and the verdict.

use std::fmt::Write;

use super::{Report, Sections, sample_text};

/// Samples shown per failing check.
const SAMPLES: usize = 5;

pub(super) fn render<S: Sections>(report: &Report<S>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} report {}", report.producer.as_str(), report.date);
    if let Some(run) = &report.run {
        let _ = writeln!(out, "pipeline run {}: {}", run.id, run.status);
        for s in &run.stages {
            let mark = if s.succeeded { "✓" } else { "✗" };
            let rows = s.rows.map_or_else(String::new, |n| format!("{n:>9} rows"));
            let _ = writeln!(out, "  {mark} {:<12}{:>8} ms  {rows}", s.stage, s.duration_ms);
            if let Some(error) = &s.error {
                let _ = writeln!(out, "      {error}");
            }
        }
    }
    report.sections.text(&mut out);
    let rows = report
        .score_rows()
        .map(|row| format!("{} {:.4} (fail < {})", row.family.as_str(), row.score, row.threshold.fail_below));
    let _ = writeln!(out, "  scores: {}", rows.join(", "));
    for check in report.checks.iter().filter(|c| c.failed > 0) {
        let _ = writeln!(out, "  ✗ {} {}/{} failed: {}", check.id, check.failed, check.evaluated, check.description);
        for sample in check.samples.iter().take(SAMPLES) {
            let _ = writeln!(out, "      {}", sample_text(sample));
        }
    }
    for skipped in &report.skipped_checks {
        let _ = writeln!(out, "  - {} skipped: {}", skipped.id, skipped.reason);
    }
    let _ = writeln!(out, "status: {}", report.status.as_str().to_uppercase());
    out
}
