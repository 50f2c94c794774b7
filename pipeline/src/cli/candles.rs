//! `pipeline candles`: one Tardis trades file into candles, by the function the candles stage runs on each
//! file, without servers or a database. Exchange, symbol and date come from the file unless given.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use market::{Exchange, Interval, Symbol, TradingDay};

use super::Exit;
use crate::bigquery::candle_to_json;
use crate::candles::{self, FileCandles};

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  pipeline candles --input binance-futures_trades_2024-06-03_BTCUSDT.csv.gz\n  \
pipeline candles --input BTCUSDT.csv.gz --interval 1h --output candles.ndjson\n  \
pipeline candles --input XBTUSD.csv.gz --tick 0.5 --lot 100     # also check the price and amount grids\n\n\
Rows are the candles table's BigQuery rows, one JSON object per line. A summary goes to stderr.\n\
Exit codes: 0 every row read, 1 some rows rejected or trade ids repeated (the candles leave them out or \
count them as they are), 3 the file cannot be read (missing, not gzip, wrong header, truncated).")]
pub struct CandlesArgs {
    /// A Tardis trades file (gzip CSV), as the datasets API serves it.
    #[arg(long)]
    pub input: PathBuf,
    /// Candle width: 1m, 5m, 1h or 1d (the coarser ones are built from the trades directly).
    #[arg(long, default_value = "1m", value_parser = parse_interval)]
    pub interval: Interval,
    /// Where the candles go: a file (written whole, then moved into place) or `-` for standard output.
    #[arg(long, default_value = "-")]
    pub output: PathBuf,
    /// The file's exchange (default: the first row's).
    #[arg(long, value_parser = |s: &str| Exchange::parse(s))]
    pub exchange: Option<Exchange>,
    /// The file's symbol (default: the first row's).
    #[arg(long, value_parser = |s: &str| Symbol::parse(s))]
    pub symbol: Option<Symbol>,
    /// The UTC date the candles are of, YYYY-MM-DD (default: the date the first row arrived on).
    #[arg(long, value_parser = TradingDay::parse)]
    pub date: Option<TradingDay>,
    /// The instrument's price increment, to check prices against its grid (with --lot).
    #[arg(long, requires = "lot")]
    pub tick: Option<f64>,
    /// The instrument's amount increment, to check amounts against its grid (with --tick).
    #[arg(long, requires = "tick")]
    pub lot: Option<f64>,
}

fn parse_interval(input: &str) -> Result<Interval, String> {
    Interval::parse(input).ok_or_else(|| format!("{input:?} is not an interval: use 1m, 5m, 1h or 1d"))
}

pub fn run(args: &CandlesArgs) -> anyhow::Result<Exit> {
    let started = Instant::now();
    // The file is asked what it is only for what was not given (its first row may be the torn one).
    let given = match (&args.exchange, &args.symbol, args.date) {
        (Some(e), Some(s), Some(d)) => Some((e.clone(), s.clone(), d)),
        _ => None,
    };
    let found = if given.is_some() { None } else { candles::identify_file(&args.input)? };
    let (exchange, symbol, day) = match (given, found) {
        (Some(given), _) => given,
        (None, Some((fe, fs, fd))) => {
            (args.exchange.clone().unwrap_or(fe), args.symbol.clone().unwrap_or(fs), args.date.unwrap_or(fd))
        }
        (None, None) => anyhow::bail!(
            "{} has no rows to tell its exchange, symbol and date: give --exchange, --symbol and --date",
            args.input.display()
        ),
    };
    let increments = args.tick.zip(args.lot);
    let built = candles::build_file(&args.input, &exchange, &symbol, day, increments)?;
    write_rows(&args.output, built.at(args.interval))?;
    eprintln!("{}", summary(&built, &exchange, &symbol, day, args.interval, started.elapsed().as_secs_f64()));
    let profile = &built.profile;
    let clean = profile.rejected == 0 && profile.duplicate_ids == 0;
    Ok(if clean { Exit::Pass } else { Exit::Warn })
}

/// The candles as NDJSON rows, to `output` (`-`: standard output). A file is written beside its final
/// path and renamed, so it is either whole or absent; a device or a pipe is written as it is.
fn write_rows(output: &std::path::Path, candles: &[market::Candle]) -> anyhow::Result<()> {
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        for candle in candles {
            serde_json::to_writer(&mut *out, &candle_to_json(candle))?;
            out.write_all(b"\n")?;
        }
        out.flush()
    };
    if output.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        return match write(&mut out) {
            // A reader that stopped early (`| head`) is not an error of ours.
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.context("cannot write to standard output"),
        };
    }
    // A device or a pipe (`/dev/null`, a FIFO) is written in place: renaming a file over it would replace it.
    if std::fs::metadata(output).is_ok_and(|m| !m.is_file()) {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(output)
            .and_then(|file| write(&mut std::io::BufWriter::new(file)))
            .with_context(|| format!("cannot write {}", output.display()));
    }
    let partial = output.with_file_name(format!(
        ".{}.partial-{}",
        output.file_name().map_or_else(|| "candles".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let result = std::fs::File::create(&partial)
        .and_then(|file| write(&mut std::io::BufWriter::new(file)))
        .and_then(|()| std::fs::rename(&partial, output));
    if let Err(err) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(err).with_context(|| format!("cannot write {}", output.display()));
    }
    Ok(())
}

fn summary(
    built: &FileCandles,
    exchange: &Exchange,
    symbol: &Symbol,
    day: TradingDay,
    interval: Interval,
    secs: f64,
) -> String {
    let p = &built.profile;
    let count = built.at(interval).len();
    let mut text = format!(
        "{exchange} {symbol} {day}: {} rows, {} trades in the day → {count} {} candles in {secs:.2} s",
        p.rows,
        built.trades_in_day,
        interval.as_str()
    );
    let notes = [
        (built.rows_before_day, "rows before the day (late trades of the day before)"),
        (built.rows_after_day, "rows after the day"),
        (p.rejected, "rows rejected"),
        (p.duplicate_ids, "rows with a repeated trade id"),
        (p.arrival_regressions, "rows arriving before the row above"),
        (p.off_grid_prices, "prices off the tick grid"),
        (p.off_grid_amounts, "amounts off the lot grid"),
    ];
    for (n, what) in notes.iter().filter(|(n, _)| *n > 0) {
        text.push_str(&format!("\n  {what}: {n}"));
    }
    for (line, reason) in p.reject_samples.iter().chain(&p.samples).take(5) {
        text.push_str(&format!("\n  line {line}: {reason}"));
    }
    text
}
