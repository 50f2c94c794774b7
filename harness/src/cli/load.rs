//! `harness load`: the backfill load benchmark, a line per worker count (a table, or JSON); the per-date
//! progress goes to standard error so that standard output is the result alone.

use market::{DateRange, TradingDay};
use pipeline::cli::Exit;
use pipeline::cli::backfill::progress_line;
use pipeline::{Clock, SystemClock};

use crate::load::{LoadLine, LoadOptions};

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Number of dates, ending yesterday (UTC) unless --last-day.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub dates: u32,
    /// The last date of the range (YYYY-MM-DD); the fakes have exported up to it.
    #[arg(long, value_parser = TradingDay::parse)]
    pub last_day: Option<TradingDay>,
    /// Worker counts to compare (comma-separated), each from 1 to 64.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: Vec<u16>,
    /// Trade rate of the generated market, as a fraction of a normal day (1.0: ~250k trades on a weekday over
    /// the default 12 pairs), in (0, 100].
    #[arg(long, default_value_t = 0.2, value_parser = super::activity)]
    pub activity: f64,
    /// Seed of the generated market.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: LoadArgs) -> anyhow::Result<Exit> {
    let last_day = args.last_day.unwrap_or_else(|| SystemClock.yesterday());
    let first = (1..args.dates).fold(last_day, |d, _| d.pred());
    let options = LoadOptions {
        range: DateRange::new(first, last_day)?,
        workers: args.workers.iter().map(|&w| usize::from(w)).collect(),
        activity: args.activity,
        seed: args.seed,
    };
    let lines = crate::load::run(&options, &|event| {
        if let Some(line) = progress_line(&event) {
            eprintln!("{line}");
        }
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
    } else {
        print!("{}", table(&lines));
    }
    Ok(if lines.iter().any(|l| l.failed > 0) { Exit::Fail } else { Exit::Pass })
}

/// The benchmark's result as a table.
pub fn table(lines: &[LoadLine]) -> String {
    let mut out = format!(
        "{:>7} {:>6} {:>9} {:>12} {:>8} {:>9}\n",
        "workers", "dates", "seconds", "dates/min", "speed-up", "failed"
    );
    for l in lines {
        out.push_str(&format!(
            "{:>7} {:>6} {:>9.1} {:>12.1} {:>7.2}x {:>9}\n",
            l.workers, l.dates, l.seconds, l.dates_per_minute, l.speed_up, l.failed
        ));
    }
    out
}
