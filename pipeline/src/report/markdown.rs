//! `report.md`: the verdict, the scores, the worst checks with a sample each, incomplete symbols and stage
//! durations, short enough for a Slack message or a pull-request comment.

use std::fmt::Write;

use market::checks::CompletenessRecord;

use super::{Report, Sections, TOP_CHECKS, icon, sample_text};

pub(super) fn render<S: Sections>(report: &Report<S>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} {} — {} {}",
        icon(report.status),
        report.status.as_str().to_uppercase(),
        report.producer.as_str(),
        report.date
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| score | value | fail below | warn below |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for row in report.score_rows() {
        let _ = writeln!(
            out,
            "| {} | {:.4} | {} | {} |",
            row.family.as_str(),
            row.score,
            row.threshold.fail_below,
            row.threshold.warn_below
        );
    }
    report.sections.markdown(&mut out);
    let failing = report.not_passing();
    let _ = writeln!(out);
    if failing.is_empty() {
        let _ = writeln!(out, "All {} checks pass.", report.checks.len());
    } else {
        let _ = writeln!(
            out,
            "**{} of {} checks not passing** (top {}):",
            failing.len(),
            report.checks.len(),
            TOP_CHECKS.min(failing.len())
        );
        for check in failing.iter().take(TOP_CHECKS) {
            let sample = check.samples.first().map(|s| format!(" — e.g. {}", sample_text(s))).unwrap_or_default();
            let _ = writeln!(
                out,
                "- `{}` **{}** {}/{} failed{sample}",
                check.id,
                check.status.as_str(),
                check.failed,
                check.evaluated
            );
        }
    }
    for skipped in &report.skipped_checks {
        let _ = writeln!(out, "- `{}` skipped: {}", skipped.id, skipped.reason);
    }
    let incomplete: Vec<&CompletenessRecord> = report.records.iter().filter(|r| !r.is_complete).collect();
    if !incomplete.is_empty() {
        let list: Vec<String> = incomplete
            .iter()
            .map(|r| format!("{} {} (missing {}, extra {})", r.exchange, r.symbol, r.missing_count, r.extra_count))
            .collect();
        let _ = writeln!(out);
        let _ = writeln!(out, "Incomplete symbols: {}", list.join("; "));
    }
    if let Some(run) = report.run.as_ref().filter(|run| !run.stages.is_empty()) {
        let stages: Vec<String> = run.stages.iter().map(|s| format!("{} {} ms", s.stage, s.duration_ms)).collect();
        let _ = writeln!(out);
        let _ = writeln!(out, "Stages: {}", stages.join(" · "));
    }
    out
}
