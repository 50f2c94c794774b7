//! Hot paths of a day, step by step: parsing a trades file (from CSV bytes, and from gzip inline or on a
//! second thread), building 1-minute candles, profiling the rows (grids, duplicate ids, arrival order),
//! the whole candles stage over a day of 12 files (on one worker and on all cores), and the validation
//! checks over a day of candles. Inputs come from the seeded generator (a realistic busy symbol at
//! activity 1.0), so runs are comparable across machines and commits.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fixtures::{Generator, Universe};
use market::checks::TradeProfiler;
use market::{CandleBuilder, Exchange, Symbol, Trade, TradingDay, checks};
use pipeline::candles;
use pipeline::tardis::trades_csv::{TradesParser, read_trades, read_trades_in_background};
use pipeline::tardis::{inspect, trades_path};

fn inputs() -> (Exchange, Symbol, TradingDay, Vec<u8>) {
    let day = TradingDay::parse("2024-06-03").expect("valid day");
    let exchange = Exchange::parse("binance-futures").expect("valid");
    let symbol = Symbol::parse("BTCUSDT").expect("valid");
    let generator = Generator::new(42, Universe::default_universe());
    let gz = generator.trades_csv_gz(&exchange, &symbol, day).expect("listed");
    (exchange, symbol, day, gz)
}

fn decode(exchange: &Exchange, symbol: &Symbol, gz: &[u8]) -> Vec<(Trade, Vec<u8>)> {
    let mut trades = Vec::new();
    read_trades(flate2::read::GzDecoder::new(gz), exchange, symbol, |_, t, id| trades.push((*t, id.to_vec())))
        .expect("valid file");
    trades
}

fn parse(c: &mut Criterion) {
    let (exchange, symbol, _, gz) = inputs();
    let mut csv = Vec::new();
    std::io::copy(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut csv).expect("valid gzip");
    let mut group = c.benchmark_group("trades_file");
    group.throughput(Throughput::Bytes(csv.len() as u64));
    group.bench_function(BenchmarkId::new("parse", "BTCUSDT-day"), |b| {
        b.iter(|| {
            let mut n = 0u64;
            let mut parser = TradesParser::new(&exchange, &symbol, |_, _, _| n += 1);
            parser.feed(black_box(&csv)).expect("valid");
            parser.finish().expect("valid").rows
        })
    });
    let inline = |gz: &[u8]| {
        let mut n = 0u64;
        read_trades(flate2::read::GzDecoder::new(gz), &exchange, &symbol, |_, _, _| n += 1).expect("valid file");
        n
    };
    let background = |gz: &[u8]| {
        let mut n = 0u64;
        read_trades_in_background(flate2::read::GzDecoder::new(gz), &exchange, &symbol, |_, _, _| n += 1)
            .expect("valid file");
        n
    };
    group.bench_function(BenchmarkId::new("gunzip_and_parse", "BTCUSDT-day"), |b| b.iter(|| inline(black_box(&gz))));
    group.bench_function(BenchmarkId::new("gunzip_and_parse_on_two_threads", "BTCUSDT-day"), |b| {
        b.iter(|| background(black_box(&gz)))
    });
    group.finish();
}

fn candles(c: &mut Criterion) {
    let (exchange, symbol, day, gz) = inputs();
    let trades = decode(&exchange, &symbol, &gz);
    let mut group = c.benchmark_group("candles");
    group.throughput(Throughput::Elements(trades.len() as u64));
    group.bench_function(BenchmarkId::new("build_1m", "BTCUSDT-day"), |b| {
        b.iter(|| {
            let mut builder = CandleBuilder::new(exchange.clone(), symbol.clone(), day);
            for (t, _) in black_box(&trades) {
                builder.push(t);
            }
            builder.finish().len()
        })
    });
    group.finish();
}

fn profile(c: &mut Criterion) {
    let (exchange, symbol, day, gz) = inputs();
    let trades = decode(&exchange, &symbol, &gz);
    let mut group = c.benchmark_group("profile");
    group.throughput(Throughput::Elements(trades.len() as u64));
    group.bench_function(BenchmarkId::new("grids_ids_arrival", "BTCUSDT-day"), |b| {
        b.iter(|| {
            let mut profiler = TradeProfiler::new(exchange.clone(), symbol.clone(), day, Some((0.1, 0.001)));
            for (line, (t, id)) in black_box(&trades).iter().enumerate() {
                profiler.trade(line as u64 + 2, t, id);
            }
            profiler.finish().duplicate_ids
        })
    });
    group.finish();
}

/// The candles stage over a day of the default universe's 12 files, as the pipeline runs it (every core)
/// and on one worker: the ratio is what spreading the files over the cores buys.
fn stage(c: &mut Criterion) {
    let day = TradingDay::parse("2024-06-03").expect("valid day");
    let generator = Generator::new(42, Universe::default_universe());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for (exchange, symbol) in generator.universe().pairs() {
        let Some(gz) = generator.trades_csv_gz(&exchange, &symbol, day) else { continue };
        let path = trades_path(dir.path(), &exchange, &symbol, day);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(&path, gz).expect("write");
        files.push(inspect(&path, &exchange, &symbol, day).expect("valid file"));
    }
    let instruments: Vec<_> =
        generator.universe().exchanges().iter().flat_map(|e| e.symbols.iter().map(|s| s.instrument.clone())).collect();
    let increments = candles::increments(&instruments);
    let rows: u64 = files.iter().map(|f| f.stats.rows).sum();
    let mut group = c.benchmark_group("candles_stage");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function(BenchmarkId::new("every_core", "12-files-day"), |b| {
        b.iter(|| candles::build(black_box(&files), &increments).expect("candles").candles.len())
    });
    group.bench_function(BenchmarkId::new("one_worker", "12-files-day"), |b| {
        b.iter(|| candles::build_with_workers(black_box(&files), &increments, 1).expect("candles").candles.len())
    });
    group.finish();
}

fn validation(c: &mut Criterion) {
    let day = TradingDay::parse("2024-06-03").expect("valid day");
    let truth = Generator::new(42, Universe::default_universe()).with_activity(0.2).day_truth(day);
    let candles: Vec<_> = truth.candles().cloned().collect();
    let mut group = c.benchmark_group("validation");
    group.throughput(Throughput::Elements(candles.len() as u64));
    group.bench_function("candles_match_and_ohlc_12_symbols", |b| {
        b.iter(|| {
            let matched = checks::candles_match(black_box(&candles), black_box(&candles), 1e-9);
            let ohlc = checks::ohlc_invariants(black_box(&candles));
            matched.failed + ohlc.failed
        })
    });
    group.finish();
}

criterion_group!(benches, parse, candles, profile, stage, validation);
criterion_main!(benches);
