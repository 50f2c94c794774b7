//! `harness load`: the load and recovery benchmark, a line per condition (a table, JSON, and with --report-dir a
//! `load.json` and a `load.html` with a chart); progress goes to standard error so that standard output is the
//! result alone. Exit 0 when every line succeeded whole, 2 when one did not (a benchmark reports; it is the
//! faults and memory conditions' promise that every date lands).

use std::fmt::Write as _;
use std::path::PathBuf;

use market::{DateRange, TradingDay};
use maud::{DOCTYPE, PreEscaped, html};
use pipeline::cli::Exit;
use pipeline::{Clock, SystemClock};

use crate::load::{Condition, LoadEvent, LoadLine, LoadOptions};

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  harness load                                   # every condition, 30 dates ending yesterday\n  harness load --dates 7 --conditions normal --workers 1,2,4\n  harness load --dates 10 --conditions faults,memory --fault-rate 0.05 --memory-cap-mib 256 --json\n  harness load --report-dir reports/load          # load.json and load.html (a chart)"
)]
pub struct LoadArgs {
    /// Number of dates, ending yesterday (UTC) unless --last-day.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub dates: u32,
    /// The last date of the range (YYYY-MM-DD); the fakes have exported up to it.
    #[arg(long, value_parser = TradingDay::parse)]
    pub last_day: Option<TradingDay>,
    /// Conditions to run (comma-separated): normal (worker scaling), high (concurrent daily runs), faults
    /// (transient faults on every endpoint), memory (a capped process).
    #[arg(long, value_delimiter = ',', default_value = "normal,high,faults,memory", value_parser = Condition::parse)]
    pub conditions: Vec<Condition>,
    /// Worker counts of the normal condition (comma-separated), each from 1 to 64; the other backfills use the last.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Vec<u16>,
    /// Daily runs at once in the high condition (of the same date, then of as many dates).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(2..=32))]
    pub concurrent: u16,
    /// Share of every endpoint's calls that fail (a 503) in the faults condition, in (0, 0.5].
    #[arg(long, default_value_t = 0.05, value_parser = fault_rate)]
    pub fault_rate: f64,
    /// The memory condition's limit on the pipeline process's data segment (RLIMIT_DATA), in MiB.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(16..=65536))]
    pub memory_cap_mib: u64,
    /// Trade rate of the generated market, as a fraction of a normal day (1.0: ~250k trades on a weekday over
    /// the default 12 pairs), in (0, 100].
    #[arg(long, default_value_t = 0.2, value_parser = super::activity)]
    pub activity: f64,
    /// Seed of the generated market and of the fault draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The `pipeline` binary (default: the one beside this `harness`).
    #[arg(long, value_name = "PATH")]
    pub pipeline_bin: Option<PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write load.json and load.html (the table and a chart) into DIR.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

fn fault_rate(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if value > 0.0 && value <= 0.5 { Ok(value) } else { Err(format!("must be in (0, 0.5], got {value}")) }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<Exit> {
    let last_day = args.last_day.unwrap_or_else(|| SystemClock.yesterday());
    let first = (1..args.dates).fold(last_day, |d, _| d.pred());
    let pipeline = match args.pipeline_bin {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("pipeline"),
    };
    anyhow::ensure!(
        pipeline.is_file(),
        "{} is not a file: build it (cargo build -p pipeline) or give --pipeline-bin",
        pipeline.display()
    );
    let options = LoadOptions {
        range: DateRange::new(first, last_day)?,
        conditions: args.conditions,
        workers: args.workers.iter().map(|&w| usize::from(w)).collect(),
        concurrent: usize::from(args.concurrent),
        fault_rate: args.fault_rate,
        memory_cap: args.memory_cap_mib << 20,
        activity: args.activity,
        seed: args.seed,
        pipeline,
    };
    let lines = crate::load::run(&options, &|event| match event {
        LoadEvent::Starting { condition, label } => eprintln!("{}: {label}...", condition.as_str()),
        LoadEvent::Finished(line) => eprintln!(
            "  {:.1} s, {:.0} dates/min, {} of {} succeeded, {} retries",
            line.seconds,
            line.dates_per_minute,
            line.succeeded,
            line.succeeded + line.failed,
            line.retries
        ),
    })
    .await?;
    if let Some(dir) = &args.report_dir {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("load.json"), serde_json::to_string_pretty(&lines)?)?;
        std::fs::write(dir.join("load.html"), html(&lines))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        print!("{}", table(&lines));
    }
    Ok(if lines.iter().any(|l| l.failed > 0 || l.rows_lost > 0 || l.rows_extra > 0) { Exit::Fail } else { Exit::Pass })
}

fn stage(line: &LoadLine, name: &str) -> String {
    line.stages
        .iter()
        .find(|s| s.stage == name)
        .map_or_else(|| "-".to_owned(), |s| format!("{}/{}/{}", s.p50_ms, s.p95_ms, s.p99_ms))
}

/// The benchmark's result as a table; stage columns are p50/p95/p99 in milliseconds.
pub fn table(lines: &[LoadLine]) -> String {
    let mut out = format!(
        "{:<9} {:<38} {:>7} {:>9} {:>9} {:>8} {:>15} {:>15} {:>15} {:>8} {:>6} {:>7} {:>8} {:>6}\n",
        "condition",
        "what ran",
        "seconds",
        "trades/s",
        "dates/min",
        "speed-up",
        "download ms",
        "candles ms",
        "upload ms",
        "peak MiB",
        "CPU s",
        "retries",
        "success",
        "lost"
    );
    for l in lines {
        let _ = writeln!(
            out,
            "{:<9} {:<38} {:>7.1} {:>9.0} {:>9.1} {:>8} {:>15} {:>15} {:>15} {:>8.0} {:>6.1} {:>7} {:>7.0}% {:>6}",
            l.condition.as_str(),
            l.label,
            l.seconds,
            l.trades_per_second,
            l.dates_per_minute,
            l.speed_up.map_or_else(|| "-".to_owned(), |s| format!("{s:.2}x")),
            stage(l, "download"),
            stage(l, "candles"),
            stage(l, "upload"),
            l.peak_rss_mib,
            l.cpu_seconds,
            l.retries,
            l.success_rate * 100.0,
            l.rows_lost + l.rows_extra
        );
    }
    out
}

/// `load.html`: the table and a bar chart of dates per minute (inline SVG, no script), through maud's `html!`, which
/// escapes what it shows.
pub fn html(lines: &[LoadLine]) -> String {
    let widest = lines.iter().map(|l| l.dates_per_minute).fold(1.0, f64::max);
    let height = 24 * lines.len() + 10;
    let page = html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                title { "harness load" }
                // A style sheet is raw text to the browser (entities are not decoded there), and this one is ours.
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Load and recovery benchmark" }
                h2 { "Dates per minute" }
                svg width="760" height=(height) role="img" {
                    @for (i, l) in lines.iter().enumerate() {
                        @let y = 24 * i + 5;
                        @let width = (l.dates_per_minute / widest * 400.0).max(1.0);
                        @let whole = l.failed == 0 && l.rows_lost + l.rows_extra == 0;
                        @let colour = if whole { "#4a8" } else { "#c44" };
                        text x="0" y=(y + 14) font-size="12" { (l.condition.as_str()) ": " (l.label) }
                        // Closed explicitly: inside <svg> a <rect> without its end tag would hold what follows.
                        rect x="300" y=(y) width=(format!("{width:.0}")) height="18" fill=(colour) {}
                        text x=(format!("{:.0}", 300.0 + width + 4.0)) y=(y + 14) font-size="12" {
                            (format!("{:.1}", l.dates_per_minute))
                        }
                    }
                }
                h2 { "Lines" }
                pre { (table(lines)) }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
}

const STYLE: &str = "body{font-family:sans-serif}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child,td:nth-child(2){text-align:left}";
