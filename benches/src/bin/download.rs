//! `tardis-download --date D [--pass candles|verify|none]`: downloads the trades files of (exchange, symbol)
//! pairs for one date with the pipeline's own Tardis client, `concurrency` in flight, as the pipeline's download
//! stage runs them (in a `buffer_unordered`): each body is streamed to disk, read through once by the pass, and
//! renamed into place. `--pass candles` (the default) is the stage's own pass: verifies every row and builds the
//! file's candles (the instruments are fetched first, as a run does, for the grid checks); `verify` only
//! verifies; `none` reads nothing back, which is what a client that only saves the body does; `two-passes`
//! verifies, then reads every file again to build the candles (what a run did before the one pass). Prints one JSON
//! object: `files`, `gzip_bytes`, `rows`, `concurrency`, `pass`, `seconds` (from the first trades request to the
//! last file in place, and for `two-passes` to the last candle built).
//!
//! The endpoint comes from the pipeline's environment contract (`TARDIS_DATASETS_URL`, `TARDIS_API_URL`,
//! `TARDIS_API_KEY`), as `harness mocks serve` prints it; both URLs must be set, so that a benchmark never reaches
//! the real Tardis by accident. One attempt per file: a retry would time the retry policy, not the download.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use futures::StreamExt;
use market::TradingDay;
use pipeline::Selection;
use pipeline::candles;
use pipeline::cli::Exit;
use pipeline::env::{Environment, Var};
use pipeline::retry::RetryPolicy;
use pipeline::tardis::{ApiKey, FileRead, Pass, TardisClient, TardisConfig};
use url::Url;

/// Download one date's trades files with the pipeline's Tardis client and print the bytes and seconds, as JSON.
#[derive(Debug, Parser)]
#[command(name = "tardis-download")]
struct Args {
    /// The files' date (UTC).
    #[arg(long, value_parser = TradingDay::parse)]
    date: TradingDay,
    /// The pairs, written like PIPELINE_SYMBOLS (`binance-futures:BTCUSDT,ETHUSDT;bitmex:XBTUSD`).
    #[arg(long, env = "PIPELINE_SYMBOLS", value_parser = Selection::parse)]
    symbols: Selection,
    /// Downloads in flight at once (the pipeline's PIPELINE_CONCURRENCY; its default is 8).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Keep the files under DIR (laid out as the pipeline's data directory); default: a temporary directory,
    /// removed at the end.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// What reads each file once it is on disk.
    #[arg(long = "pass", value_enum, default_value_t = PassKind::Candles)]
    pass: PassKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PassKind {
    /// The download stage's pass: verify every row and build the file's candles.
    Candles,
    /// Verify every row (`TardisClient::download_trades`).
    Verify,
    /// Read nothing back: the body saved, as a client that only saves it does.
    None,
    /// Verify each file as it arrives, then read them all again to build the candles on every core: the two
    /// passes a run made before its download built the candles, kept here to measure what the one pass saves.
    TwoPasses,
}

fn main() -> ExitCode {
    match pipeline::cli::parse::<Args>() {
        Ok(args) => pipeline::cli::finish(run(args)),
        Err(exit) => exit.into(),
    }
}

fn url(env: &Environment, var: Var) -> anyhow::Result<Url> {
    let Some(text) = env.get(var) else {
        bail!("{var} is not set (start `harness mocks serve` and export what it prints)");
    };
    Url::parse(text.trim()).with_context(|| format!("{var}={text} is not a URL"))
}

#[tokio::main]
async fn run(args: Args) -> anyhow::Result<Exit> {
    let env = Environment::from_process();
    let config = TardisConfig {
        datasets_url: url(&env, Var::TardisDatasetsUrl)?,
        api_url: url(&env, Var::TardisApiUrl)?,
        api_key: env.get(Var::TardisApiKey).and_then(ApiKey::new),
        concurrency: args.concurrency.max(1),
        retry: RetryPolicy { max_attempts: 1, ..RetryPolicy::DEFAULT },
        export_wait: Duration::ZERO,
        export_poll: Duration::from_secs(1),
        rate_limit: None,
    };
    let client = TardisClient::new(config).context("cannot build the HTTP client")?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = args.dir.unwrap_or_else(|| temp.path().to_path_buf());
    let pairs = args.symbols.pairs();

    let mut increments = candles::Increments::new();
    if matches!(args.pass, PassKind::Candles | PassKind::TwoPasses) {
        for (exchange, _) in args.symbols.exchanges() {
            let listed = client.instruments(exchange).await.context("the instruments request failed")?;
            increments.extend(candles::increments(&listed));
        }
    }

    let day = args.date;
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(&pairs)
        .map(|(exchange, symbol)| {
            let (client, dir, known) = (&client, &dir, increments.get(&(exchange.clone(), symbol.clone())).copied());
            async move {
                match args.pass {
                    PassKind::Candles => {
                        candles::download(client, exchange, symbol, day, dir, known).await.map(|f| f.file)
                    }
                    PassKind::Verify | PassKind::TwoPasses => client.download_trades(exchange, symbol, day, dir).await,
                    PassKind::None => {
                        let nothing: Pass<()> = Arc::new(|_| Ok((FileRead::default(), ())));
                        client.download_trades_with(exchange, symbol, day, dir, nothing).await.map(|(f, ())| f)
                    }
                }
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let files = results.into_iter().collect::<Result<Vec<_>, _>>().context("a download failed")?;
    if args.pass == PassKind::TwoPasses {
        let (files, increments) = (files.clone(), increments.clone());
        tokio::task::spawn_blocking(move || candles::build(&files, &increments))
            .await
            .context("the candles thread died")?
            .context("the candles of the files")?;
    }
    let seconds = started.elapsed().as_secs_f64();

    let (mut gzip_bytes, mut rows) = (0, 0);
    for file in files {
        gzip_bytes += file.bytes;
        rows += file.stats.rows;
    }
    let out = serde_json::json!({
        "files": pairs.len(),
        "gzip_bytes": gzip_bytes,
        "rows": rows,
        "concurrency": args.concurrency.max(1),
        "pass": args.pass.to_possible_value().map(|v| v.get_name().to_owned()),
        "seconds": seconds,
    });
    println!("{out}");
    Ok(Exit::Pass)
}
