//! `gunzip-floor FILE`: decompresses a gzip file the way the pipeline reads a trades file (flate2's
//! `read::GzDecoder` over a `BufReader` of 64 KiB, read in 64 KiB chunks) and throws the bytes away. Its time is
//! the floor under any candles pass over the file: no parsing, no candles. Prints one JSON object: `file`,
//! `gzip_bytes`, `csv_bytes` (decoded), `seconds`. It does not check the CSV; a bad gzip is an error (exit 3).

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use flate2::read::GzDecoder;
use pipeline::cli::Exit;

/// Decompress FILE into nothing and print its decoded size and the time it took, as JSON.
#[derive(Debug, Parser)]
#[command(name = "gunzip-floor")]
struct Args {
    /// A gzip file, e.g. a Tardis trades file.
    file: PathBuf,
}

fn main() -> ExitCode {
    match pipeline::cli::parse::<Args>() {
        Ok(args) => pipeline::cli::finish(run(&args.file)),
        Err(exit) => exit.into(),
    }
}

fn run(path: &Path) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let gzip_bytes = file.metadata().with_context(|| format!("cannot read {}", path.display()))?.len();
    let mut decoder = GzDecoder::new(BufReader::with_capacity(1 << 16, file));
    let mut buf = vec![0u8; 1 << 16];
    let mut csv_bytes: u64 = 0;
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => csv_bytes += n as u64,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err).with_context(|| format!("{} does not decompress", path.display())),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let out = serde_json::json!({ "file": path, "gzip_bytes": gzip_bytes, "csv_bytes": csv_bytes, "seconds": seconds });
    println!("{out}");
    Ok(Exit::Pass)
}
