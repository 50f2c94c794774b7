//! `report.html`: one self-contained file (inline CSS and SVG, no external asset, opens offline) with the
//! scores, a completeness heatmap by symbol and hour, score trends, stage durations, every check with its
//! samples and the history baselines.
//!
//! Made with maud's `html!` templates, which escape every value they show unless it is wrapped in `PreEscaped`
//! (only the style sheet, a constant of ours): ids, details, names and commands come from data and other
//! programs. SVG elements are closed explicitly (`{}`): inside `<svg>` an HTML parser takes a `<rect>` without
//! its end tag for the parent of what follows.

use market::checks::{CompletenessRecord, Scores};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{Report, Sections, StageLine, sample_text};
use crate::store::ScorePoint;

/// The self-contained HTML report.
pub(super) fn render<S: Sections>(report: &Report<S>) -> String {
    let heading = format!("{} {} — {}", report.producer.as_str(), report.date, report.status.as_str().to_uppercase());
    let anomalous = report.baselines.iter().filter(|b| b.anomalous).count();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (heading) }
                // A style sheet is raw text to the browser (entities are not decoded there), and this one is ours.
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 class=(report.status.as_str()) { (heading) }
                p.meta {
                    "generated " (report.generated_at.format("%Y-%m-%d %H:%M UTC"))
                    " · schema v" (report.schema_version)
                    @if let Some(run) = &report.run { " · run " (run.id) }
                }
                section #scores {
                    h2 { "Scores" }
                    table {
                        tr { th { "family" } th { "score" } th { "fail below" } th { "warn below" } }
                        @for row in report.score_rows() {
                            tr class=(row.status.as_str()) {
                                td { (row.family.as_str()) }
                                td { (fixed(row.score, 4)) }
                                td { (row.threshold.fail_below) }
                                td { (row.threshold.warn_below) }
                            }
                        }
                    }
                }
                (report.sections.html())
                section #heatmap { h2 { "Completeness by hour" } (heatmap_svg(&report.records)) }
                section #trends { h2 { "Score trends" } (trends_svg(&report.history)) }
                section #stages {
                    h2 { "Stage durations" }
                    (stages_svg(report.run.as_ref().map_or(&[], |run| run.stages.as_slice())))
                }
                section #checks {
                    h2 { "Checks" }
                    table {
                        tr {
                            th { "check" } th { "status" } th { "failed" } th { "evaluated" }
                            th { "threshold (fail/warn below)" } th { "samples" }
                        }
                        @for check in &report.checks {
                            tr class=(check.status.as_str()) {
                                td title=(check.description) { code { (check.id) } }
                                td { (check.status.as_str()) }
                                td { (check.failed) }
                                td { (check.evaluated) }
                                td { (check.threshold.fail_below) " / " (check.threshold.warn_below) }
                                td {
                                    ul { @for sample in check.samples.iter().take(20) { li { (sample_text(sample)) } } }
                                }
                            }
                        }
                    }
                }
                @if !report.baselines.is_empty() {
                    section #baselines {
                        h2 { "History baselines" }
                        p {
                            (report.baselines.len()) " metrics compared with a trailing window; "
                            (anomalous) " anomalous."
                        }
                        table {
                            tr {
                                th { "exchange" } th { "symbol" } th { "metric" } th { "observed" } th { "median" }
                                th { "MAD" } th { "z" } th { "limit" }
                            }
                            @for b in report
                                .baselines
                                .iter()
                                .filter(|b| b.anomalous)
                                .chain(report.baselines.iter().filter(|b| !b.anomalous).take(12))
                            {
                                tr class=(if b.anomalous { "warn" } else { "pass" }) {
                                    td { (b.exchange.as_str()) }
                                    td { (b.symbol.as_str()) }
                                    td { (b.metric) }
                                    td { (fixed(b.observed, 2)) }
                                    td { (fixed(b.median, 2)) }
                                    td { (fixed(b.mad, 2)) }
                                    td { (fixed(b.z, 1)) }
                                    td { (b.max_z) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
}

/// `value` with a fixed number of decimals.
fn fixed(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
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

fn heatmap_svg(records: &[CompletenessRecord]) -> Markup {
    if records.is_empty() {
        return html! { p { "No candles expected or landed." } };
    }
    let (label_w, cell, top) = (220, 22, 20);
    let width = label_w + 24 * cell + 10;
    let height = top + records.len() * cell + 10;
    html! {
        svg
            xmlns="http://www.w3.org/2000/svg"
            width=(width)
            height=(height)
            role="img"
            aria-label="completeness heatmap"
        {
            @for hour in 0..24 {
                text x=(label_w + hour * cell + 4) y="14" { (format!("{hour:02}")) }
            }
            @for (row, r) in records.iter().enumerate() {
                @let y = top + row * cell;
                text x="0" y=(y + 15) { (r.exchange.as_str()) " " (r.symbol.as_str()) }
                @for h in &r.hours {
                    rect
                        x=(label_w + usize::from(h.hour) * cell)
                        y=(y)
                        width=(cell - 2)
                        height=(cell - 2)
                        fill=(coverage_colour(h.expected, h.covered))
                    {
                        title {
                            (r.exchange.as_str()) " " (r.symbol.as_str()) " " (format!("{:02}", h.hour)) ":00 — "
                            (h.covered) "/" (h.expected) " minutes"
                        }
                    }
                }
            }
        }
    }
}

fn trends_svg(history: &[ScorePoint]) -> Markup {
    if history.is_empty() {
        return html! { p { "No stored history yet." } };
    }
    let (w, h, left, bottom) = (640.0, 200.0, 40.0, 30.0);
    let n = history.len().max(2) as f64 - 1.0;
    let x = |i: usize| left + (w - left - 10.0) * (i as f64) / n;
    let y = |v: f64| 10.0 + (h - bottom - 10.0) * (1.0 - v.clamp(0.0, 1.0));
    type Score = fn(&Scores) -> f64;
    let series: [(&str, &str, Score); 3] = [
        ("completeness", "#0969da", |s| s.completeness),
        ("quality", "#8250df", |s| s.quality),
        ("consistency", "#1a7f37", |s| s.consistency),
    ];
    let points = |pick: Score| {
        history
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(pick(&p.scores))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(w) height=(h) role="img" aria-label="score trends" {
            @for v in [0.0, 0.5, 0.9, 1.0] {
                line x1=(left) x2=(w - 10.0) y1=(fixed(y(v), 1)) y2=(fixed(y(v), 1)) stroke="#ddd" {}
                text x="0" y=(fixed(y(v) + 4.0, 1)) { (v) }
            }
            @for (name, colour, pick) in series {
                polyline fill="none" stroke=(colour) stroke-width="2" points=(points(pick)) { title { (name) } }
            }
            @if let (Some(first), Some(last)) = (history.first(), history.last()) {
                text x=(left) y=(h - 8.0) { (first.day) }
                text x=(w - 10.0) y=(h - 8.0) text-anchor="end" { (last.day) }
            }
        }
    }
}

fn stages_svg(stages: &[StageLine]) -> Markup {
    if stages.is_empty() {
        return html! { p { "No run recorded for this date." } };
    }
    let max = stages.iter().map(|s| s.duration_ms).max().unwrap_or(1).max(1) as f64;
    let (label_w, bar_w, row) = (110.0, 420.0, 22.0);
    let height = row * stages.len() as f64 + 8.0;
    html! {
        svg
            xmlns="http://www.w3.org/2000/svg"
            width=(label_w + bar_w + 90.0)
            height=(height)
            role="img"
            aria-label="stage durations"
        {
            @for (i, s) in stages.iter().enumerate() {
                @let y = i as f64 * row + 4.0;
                @let width = (bar_w * s.duration_ms as f64 / max).max(1.0);
                text x="0" y=(fixed(y + 14.0, 1)) { (s.stage) }
                rect
                    x=(label_w)
                    y=(fixed(y, 1))
                    width=(fixed(width, 1))
                    height=(fixed(row - 6.0, 1))
                    fill=(if s.succeeded { "#0969da" } else { "#cf222e" })
                    {}
                text x=(fixed(label_w + width + 6.0, 1)) y=(fixed(y + 14.0, 1)) { (s.duration_ms) " ms" }
            }
        }
    }
}
