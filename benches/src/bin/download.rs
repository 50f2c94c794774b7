//! `tardis-download --date D`: downloads the trades files of (exchange, symbol) pairs for one date with the
//! pipeline's own Tardis client, `concurrency` in flight, exactly as the pipeline's download stage runs them
//! (`TardisClient::download_trades` in a `buffer_unordered`): each body is streamed to disk, verified by
//! decompressing and parsing every row, and renamed into place. Prints one JSON object: `files`, `gzip_bytes`,
//! `rows`, `concurrency`, `seconds` (from the first request to the last file verified).
//!
//! The endpoint comes from the pipeline's environment contract (`TARDIS_DATASETS_URL`, `TARDIS_API_URL`,
//! `TARDIS_API_KEY`), as `harness mocks serve` prints it; both URLs must be set, so that a benchmark never reaches
//! the real Tardis by accident. One attempt per file: a retry would time the retry policy, not the download.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use market::TradingDay;
use pipeline::Selection;
use pipeline::cli::Exit;
use pipeline::env::{Environment, Var};
use pipeline::retry::RetryPolicy;
use pipeline::tardis::{ApiKey, TardisClient, TardisConfig};
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
    };
    let client = TardisClient::new(config).context("cannot build the HTTP client")?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = args.dir.unwrap_or_else(|| temp.path().to_path_buf());
    let pairs = args.symbols.pairs();

    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(&pairs)
        .map(|(exchange, symbol)| client.download_trades(exchange, symbol, args.date, &dir))
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();

    let (mut gzip_bytes, mut rows) = (0, 0);
    for result in results {
        let file = result.context("a download failed")?;
        gzip_bytes += file.bytes;
        rows += file.stats.rows;
    }
    let out = serde_json::json!({
        "files": pairs.len(),
        "gzip_bytes": gzip_bytes,
        "rows": rows,
        "concurrency": args.concurrency.max(1),
        "seconds": seconds,
    });
    println!("{out}");
    Ok(Exit::Pass)
}
