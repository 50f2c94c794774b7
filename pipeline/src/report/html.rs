//! Validation reports people read and scripts parse: `report.json` (versioned), `report.md` (fits a Slack
//! message or a PR comment) and `report.html` (one self-contained file with a completeness heatmap, score
//! trends and stage durations as inline SVG; no external assets, opens offline).
//!
//! The report is data first; Markdown and HTML are rendered from it, so what a person reads and what a
//! script parses never disagree. The harness builds the same `Report` for its truth-based scores.

use std::fmt::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use market::TradingDay;
use market::checks::{Baseline, CheckOutcome, CompletenessRecord, Scores, Status, Thresholds, Validation};
use serde::Serialize;

use crate::run::Pipeline;
use crate::store::ScorePoint;

/// Bumped when a field changes meaning or disappears; additions keep the version.
pub const SCHEMA_VERSION: u32 = 1;
/// Checks listed in the Markdown summary.
const TOP_CHECKS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageTiming {
    pub stage: String,
    pub succeeded: bool,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// `pipeline` (from the data alone) or `harness` (against ground truth).
    pub tool: String,
    pub date: TradingDay,
    pub generated_at: DateTime<Utc>,
    pub status: Status,
    pub scores: Scores,
    pub thresholds: Thresholds,
    pub checks: Vec<CheckOutcome>,
    pub records: Vec<CompletenessRecord>,
    pub baselines: Vec<Baseline>,
    pub run_id: Option<i64>,
    pub stages: Vec<StageTiming>,
    /// Latest scores of earlier dates, oldest first (trends).
    pub history: Vec<ScorePoint>,
    /// Tool-specific additions (the harness puts its expected and landed counts here).
    pub extra: serde_json::Value,
}

impl Report {
    pub fn new(tool: &str, day: TradingDay, validation: &Validation) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            tool: tool.to_owned(),
            date: day,
            generated_at: Utc::now(),
            status: validation.status,
            scores: validation.scores,
            thresholds: validation.thresholds,
            checks: validation.checks.clone(),
            records: validation.records.clone(),
            baselines: validation.baselines.clone(),
            run_id: None,
            stages: Vec::new(),
            history: Vec::new(),
            extra: serde_json::Value::Null,
        }
    }

    /// A report of `validation`, with the stages of the date's latest run and 30 days of score history
    /// from Postgres (both best effort: a report is still written when the store cannot answer).
    pub async fn for_validation(pipeline: &Pipeline, day: TradingDay, validation: &Validation) -> Report {
        let mut report = Report::new("pipeline", day, validation);
        if let Ok(runs) = pipeline.store().runs_of_day(day).await
            && let Some(run) = runs.into_iter().find(|r| r.status == crate::store::RunStatus::Succeeded)
        {
            report.run_id = Some(run.id);
            report.stages = run
                .stages
                .into_iter()
                .map(|(stage, status, duration_ms)| StageTiming {
                    succeeded: status == "succeeded",
                    stage,
                    duration_ms,
                })
                .collect();
        }
        let from = (0..30).fold(day, |d, _| d.pred());
        report.history = pipeline.store().score_history(from, day).await.unwrap_or_default();
        report
    }

    /// The Markdown summary.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let icon = match self.status {
            Status::Pass => "✅",
            Status::Warn => "⚠️",
            Status::Fail | Status::Error => "❌",
        };
        let _ = writeln!(out, "### {icon} {} — {} {}", self.status.as_str().to_uppercase(), self.tool, self.date);
        let _ = writeln!(out);
        let _ = writeln!(out, "| score | value | fail below | warn below |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for (name, value, t) in [
            ("completeness", self.scores.completeness, self.thresholds.completeness),
            ("quality", self.scores.quality, self.thresholds.quality),
            ("consistency", self.scores.consistency, self.thresholds.consistency),
        ] {
            let _ = writeln!(out, "| {name} | {value:.4} | {} | {} |", t.fail_below, t.warn_below);
        }
        let mut failing: Vec<&CheckOutcome> = self.checks.iter().filter(|c| c.status != Status::Pass).collect();
        failing.sort_by(|a, b| b.status.cmp(&a.status).then(b.failed.cmp(&a.failed)));
        let _ = writeln!(out);
        if failing.is_empty() {
            let _ = writeln!(out, "All {} checks pass.", self.checks.len());
        } else {
            let _ = writeln!(
                out,
                "**{} of {} checks not passing** (top {}):",
                failing.len(),
                self.checks.len(),
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
        let incomplete: Vec<&CompletenessRecord> = self.records.iter().filter(|r| !r.is_complete).collect();
        if !incomplete.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "Incomplete symbols: {}",
                incomplete
                    .iter()
                    .map(|r| format!(
                        "{} {} (missing {}, extra {})",
                        r.exchange, r.symbol, r.missing_count, r.extra_count
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        if !self.stages.is_empty() {
            let stages: Vec<String> = self.stages.iter().map(|s| format!("{} {} ms", s.stage, s.duration_ms)).collect();
            let _ = writeln!(out);
            let _ = writeln!(out, "Stages: {}", stages.join(" · "));
        }
        out
    }

    /// The self-contained HTML report.
    pub fn html(&self) -> String {
        let mut out = String::new();
        let title = format!("{} {} — {}", self.tool, self.date, self.status.as_str().to_uppercase());
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{}</style></head><body>\n",
            escape(&title),
            STYLE
        );
        let _ = writeln!(out, "<h1 class=\"{}\">{}</h1>", self.status.as_str(), escape(&title));
        let _ = writeln!(
            out,
            "<p class=\"meta\">generated {} · schema v{}{}</p>",
            self.generated_at.format("%Y-%m-%d %H:%M UTC"),
            self.schema_version,
            self.run_id.map(|id| format!(" · run {id}")).unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "<section id=\"scores\"><h2>Scores</h2><table><tr><th>family</th><th>score</th><th>fail below</th><th>warn below</th></tr>"
        );
        for (name, value, t) in [
            ("completeness", self.scores.completeness, self.thresholds.completeness),
            ("quality", self.scores.quality, self.thresholds.quality),
            ("consistency", self.scores.consistency, self.thresholds.consistency),
        ] {
            let status = market::checks::family_status(value, t);
            let _ = writeln!(
                out,
                "<tr class=\"{}\"><td>{name}</td><td>{value:.4}</td><td>{}</td><td>{}</td></tr>",
                status.as_str(),
                t.fail_below,
                t.warn_below
            );
        }
        out.push_str("</table></section>\n");
        out.push_str("<section id=\"heatmap\"><h2>Completeness by hour</h2>\n");
        out.push_str(&heatmap_svg(&self.records));
        out.push_str("</section>\n<section id=\"trends\"><h2>Score trends</h2>\n");
        out.push_str(&trends_svg(&self.history));
        out.push_str("</section>\n<section id=\"stages\"><h2>Stage durations</h2>\n");
        out.push_str(&stages_svg(&self.stages));
        out.push_str("</section>\n<section id=\"checks\"><h2>Checks</h2><table><tr><th>check</th><th>status</th><th>failed</th><th>evaluated</th><th>threshold (fail/warn below)</th><th>samples</th></tr>\n");
        for check in &self.checks {
            let samples: Vec<String> =
                check.samples.iter().take(20).map(|s| format!("<li>{}</li>", escape(&sample_text(s)))).collect();
            let _ = writeln!(
                out,
                "<tr class=\"{}\"><td title=\"{}\"><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td><ul>{}</ul></td></tr>",
                check.status.as_str(),
                escape(&check.description),
                escape(&check.id),
                check.status.as_str(),
                check.failed,
                check.evaluated,
                check.threshold.fail_below,
                check.threshold.warn_below,
                samples.join("")
            );
        }
        out.push_str("</table></section>\n");
        let anomalous: Vec<&Baseline> = self.baselines.iter().filter(|b| b.anomalous).collect();
        if !self.baselines.is_empty() {
            let _ = writeln!(
                out,
                "<section id=\"baselines\"><h2>History baselines</h2><p>{} metrics compared with a trailing window; {} anomalous.</p><table><tr><th>exchange</th><th>symbol</th><th>metric</th><th>observed</th><th>median</th><th>MAD</th><th>z</th><th>limit</th></tr>",
                self.baselines.len(),
                anomalous.len()
            );
            for b in self
                .baselines
                .iter()
                .filter(|b| b.anomalous)
                .chain(self.baselines.iter().filter(|b| !b.anomalous).take(12))
            {
                let _ = writeln!(
                    out,
                    "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.1}</td><td>{}</td></tr>",
                    if b.anomalous { "warn" } else { "pass" },
                    escape(b.exchange.as_str()),
                    escape(b.symbol.as_str()),
                    escape(&b.metric),
                    b.observed,
                    b.median,
                    b.mad,
                    b.z,
                    b.max_z
                );
            }
            out.push_str("</table></section>\n");
        }
        out.push_str("</body></html>\n");
        out
    }
}

fn sample_text(s: &market::checks::Sample) -> String {
    let at = s
        .open_time_us
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .map(|t| t.format(" %H:%M").to_string())
        .unwrap_or_default();
    match (&s.exchange, &s.symbol) {
        (Some(e), Some(sym)) => format!("{e} {sym}{at}: {}", s.detail),
        _ => s.detail.clone(),
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}h1.pass{color:#1a7f37}h1.warn{color:#9a6700}\
h1.fail,h1.error{color:#cf222e}.meta{color:#666}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;\
padding:.3em .6em;text-align:left;vertical-align:top}tr.pass td:nth-child(2){color:#1a7f37}tr.warn{background:#fff8c5}\
tr.fail,tr.error{background:#ffebe9}ul{margin:0;padding-left:1.2em}code{font-size:.9em}svg text{font-size:11px;font-family:sans-serif}";

/// Green for full coverage to red for none; grey where no trades were expected.
fn coverage_colour(expected: u32, covered: u32) -> String {
    if expected == 0 {
        return "#eeeeee".to_owned();
    }
    let ratio = f64::from(covered) / f64::from(expected);
    let red = (220.0 * (1.0 - ratio)) as u8 + 30;
    let green = (170.0 * ratio) as u8 + 40;
    format!("#{red:02x}{green:02x}50")
}

fn heatmap_svg(records: &[CompletenessRecord]) -> String {
    if records.is_empty() {
        return "<p>No candles expected or landed.</p>\n".to_owned();
    }
    let (label_w, cell, top) = (220, 22, 20);
    let width = label_w + 24 * cell + 10;
    let height = top + records.len() * cell + 10;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"completeness heatmap\">\n"
    );
    for hour in 0..24 {
        let _ = writeln!(svg, "<text x=\"{}\" y=\"14\">{hour:02}</text>", label_w + hour * cell + 4);
    }
    for (row, r) in records.iter().enumerate() {
        let y = top + row * cell;
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{}\">{} {}</text>",
            y + 15,
            escape(r.exchange.as_str()),
            escape(r.symbol.as_str())
        );
        for h in &r.hours {
            let x = label_w + usize::from(h.hour) * cell;
            let _ = writeln!(
                svg,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} {} {:02}:00 — {}/{} minutes</title></rect>",
                cell - 2,
                cell - 2,
                coverage_colour(h.expected, h.covered),
                escape(r.exchange.as_str()),
                escape(r.symbol.as_str()),
                h.hour,
                h.covered,
                h.expected
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

fn trends_svg(history: &[ScorePoint]) -> String {
    if history.is_empty() {
        return "<p>No stored history yet.</p>\n".to_owned();
    }
    let (w, h, left, bottom) = (640.0, 200.0, 40.0, 30.0);
    let n = history.len().max(2) as f64 - 1.0;
    let x = |i: usize| left + (w - left - 10.0) * (i as f64) / n;
    let y = |v: f64| 10.0 + (h - bottom - 10.0) * (1.0 - v.clamp(0.0, 1.0));
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"score trends\">\n"
    );
    for v in [0.0, 0.5, 0.9, 1.0] {
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#ddd\"/><text x=\"0\" y=\"{2:.1}\">{v}</text>",
            w - 10.0,
            y(v),
            y(v) + 4.0
        );
    }
    for (name, colour, pick) in [
        ("completeness", "#0969da", (|s: &Scores| s.completeness) as fn(&Scores) -> f64),
        ("quality", "#8250df", |s: &Scores| s.quality),
        ("consistency", "#1a7f37", |s: &Scores| s.consistency),
    ] {
        let points: Vec<String> =
            history.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x(i), y(pick(&p.scores)))).collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{name}</title></polyline>",
            points.join(" ")
        );
    }
    if let (Some(first), Some(last)) = (history.first(), history.last()) {
        let _ = writeln!(
            svg,
            "<text x=\"{left}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            h - 8.0,
            first.day,
            w - 10.0,
            h - 8.0,
            last.day
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn stages_svg(stages: &[StageTiming]) -> String {
    if stages.is_empty() {
        return "<p>No run recorded for this date.</p>\n".to_owned();
    }
    let max = stages.iter().map(|s| s.duration_ms).max().unwrap_or(1).max(1) as f64;
    let (label_w, bar_w, row) = (110.0, 420.0, 22.0);
    let height = row * stages.len() as f64 + 8.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"stage durations\">\n",
        label_w + bar_w + 90.0
    );
    for (i, s) in stages.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let width = (bar_w * s.duration_ms as f64 / max).max(1.0);
        let colour = if s.succeeded { "#0969da" } else { "#cf222e" };
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{} ms</text>",
            y + 14.0,
            escape(&s.stage),
            row - 6.0,
            label_w + width + 6.0,
            y + 14.0,
            s.duration_ms
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Writes `report.json`, `report.md` and `report.html` into `dir` (created if needed); each file is
/// written whole then renamed, so a reader never sees half a report.
pub fn write_all(report: &Report, dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let json = serde_json::to_string_pretty(report).context("report serialisation")?;
    write_files(dir, [("report.json", json), ("report.md", report.markdown()), ("report.html", report.html())])
}

/// Writes each `(name, body)` into `dir` (created if missing), each file atomically: a `.partial` file, then
/// a rename over the old one.
pub fn write_files(dir: &Path, files: impl IntoIterator<Item = (&'static str, String)>) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create report directory {}", dir.display()))?;
    for (name, body) in files {
        let path = dir.join(name);
        let partial = dir.join(format!("{name}.partial"));
        std::fs::write(&partial, body).with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
