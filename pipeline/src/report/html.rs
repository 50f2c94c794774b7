//! `report.html`: one self-contained file (inline CSS and SVG, no external asset, opens offline) with the
//! scores, a completeness heatmap by symbol and hour, score trends, stage durations, every check with its
//! samples and the history baselines.

use std::fmt::Write;

use market::checks::{Baseline, CompletenessRecord, Scores};

use super::{Report, Sections, StageLine, sample_text};
use crate::store::ScorePoint;

/// The self-contained HTML report.
pub(super) fn render<S: Sections>(report: &Report<S>) -> String {
    let mut out = String::new();
    let title = format!("{} {} — {}", report.producer.as_str(), report.date, report.status.as_str().to_uppercase());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>{}</style></head><body>\n",
        escape(&title),
        STYLE
    );
    let _ = writeln!(out, "<h1 class=\"{}\">{}</h1>", report.status.as_str(), escape(&title));
    let _ = writeln!(
        out,
        "<p class=\"meta\">generated {} · schema v{}{}</p>",
        report.generated_at.format("%Y-%m-%d %H:%M UTC"),
        report.schema_version,
        report.run.as_ref().map(|run| format!(" · run {}", run.id)).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "<section id=\"scores\"><h2>Scores</h2><table><tr><th>family</th><th>score</th><th>fail below</th><th>warn below</th></tr>"
    );
    for row in report.score_rows() {
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td></tr>",
            row.status.as_str(),
            row.family.as_str(),
            row.score,
            row.threshold.fail_below,
            row.threshold.warn_below
        );
    }
    out.push_str("</table></section>\n");
    report.sections.html(&mut out);
    out.push_str("<section id=\"heatmap\"><h2>Completeness by hour</h2>\n");
    out.push_str(&heatmap_svg(&report.records));
    out.push_str("</section>\n<section id=\"trends\"><h2>Score trends</h2>\n");
    out.push_str(&trends_svg(&report.history));
    out.push_str("</section>\n<section id=\"stages\"><h2>Stage durations</h2>\n");
    out.push_str(&stages_svg(report.run.as_ref().map_or(&[], |run| run.stages.as_slice())));
    out.push_str("</section>\n<section id=\"checks\"><h2>Checks</h2><table><tr><th>check</th><th>status</th><th>failed</th><th>evaluated</th><th>threshold (fail/warn below)</th><th>samples</th></tr>\n");
    for check in &report.checks {
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
    let anomalous: Vec<&Baseline> = report.baselines.iter().filter(|b| b.anomalous).collect();
    if !report.baselines.is_empty() {
        let _ = writeln!(
            out,
            "<section id=\"baselines\"><h2>History baselines</h2><p>{} metrics compared with a trailing window; {} anomalous.</p><table><tr><th>exchange</th><th>symbol</th><th>metric</th><th>observed</th><th>median</th><th>MAD</th><th>z</th><th>limit</th></tr>",
            report.baselines.len(),
            anomalous.len()
        );
        for b in report
            .baselines
            .iter()
            .filter(|b| b.anomalous)
            .chain(report.baselines.iter().filter(|b| !b.anomalous).take(12))
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

fn stages_svg(stages: &[StageLine]) -> String {
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
