//! A whole day of 3 exchanges × 100 symbols: the candles stage as the pipeline runs it (gunzip, parse,
//! 1-minute and coarser candles, per-file profiles, from gzip files on disk) against every validation
//! check over its result. The point: validation is a small fraction of the time spent building.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fixtures::{Generator, Universe};
use market::checks::{DayInput, ValidationConfig, validate_day};
use market::{Exchange, Symbol, TradingDay};
use pipeline::candles;
use pipeline::tardis::{DownloadedFile, inspect, trades_path};

fn day() -> TradingDay {
    TradingDay::parse("2024-06-03").expect("valid day")
}

/// Writes the day's gzip files under `dir` and returns them as verified downloads.
fn files(generator: &Generator, dir: &std::path::Path) -> Vec<DownloadedFile> {
    let mut files = Vec::new();
    for (exchange, symbol) in generator.universe().pairs() {
        let Some(gz) = generator.trades_csv_gz(&exchange, &symbol, day()) else { continue };
        let path = trades_path(dir, &exchange, &symbol, day());
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(&path, gz).expect("write");
        files.push(inspect(&path, &exchange, &symbol, day()).expect("valid file"));
    }
    files
}

fn day_of_300_symbols(c: &mut Criterion) {
    let generator = Generator::new(42, Universe::wide(100)).with_activity(0.2);
    let dir = tempfile::tempdir().expect("tempdir");
    let files = files(&generator, dir.path());
    let instruments: Vec<_> =
        generator.universe().exchanges().iter().flat_map(|e| e.symbols.iter().map(|s| s.instrument.clone())).collect();
    let increments = candles::increments(&instruments);
    let set = candles::build(&files, &increments).expect("candles");
    let configured: Vec<(Exchange, Symbol)> = generator.universe().pairs();
    let rows: u64 = files.iter().map(|f| f.stats.rows).sum();
    let history = BTreeMap::new();

    let mut group = c.benchmark_group("day_3x100");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function("candles_stage_from_gzip_files", |b| {
        b.iter(|| candles::build(black_box(&files), &increments).expect("candles").candles.len())
    });
    group.bench_function("validate_every_check", |b| {
        b.iter(|| {
            let input = DayInput {
                day: day(),
                configured: &configured,
                instruments: &instruments,
                files: &set.profiles,
                expected: &set.candles,
                direct: &set.direct,
                landed: black_box(&set.candles),
                counts: &[],
                history: &history,
            };
            validate_day(&input, &ValidationConfig::default()).checks.len()
        })
    });
    group.finish();
}

criterion_group!(benches, day_of_300_symbols);
criterion_main!(benches);
