//! Hot paths of a day: decoding a gzip trades file into trades, building 1-minute candles, and the
//! validation checks over a day of candles. Inputs come from the seeded generator (a realistic busy
//! symbol at activity 1.0), so runs are comparable across machines and commits.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fixtures::{Generator, Universe};
use market::{CandleBuilder, Exchange, Symbol, Trade, TradingDay, checks};

fn inputs() -> (Exchange, Symbol, TradingDay, Vec<u8>) {
    let day = TradingDay::parse("2024-06-03").expect("valid day");
    let exchange = Exchange::parse("binance-futures").expect("valid");
    let symbol = Symbol::parse("BTCUSDT").expect("valid");
    let generator = Generator::new(42, Universe::default_universe());
    let gz = generator.trades_csv_gz(&exchange, &symbol, day).expect("listed");
    (exchange, symbol, day, gz)
}

fn decode(exchange: &Exchange, symbol: &Symbol, gz: &[u8]) -> Vec<Trade> {
    let mut trades = Vec::new();
    pipeline::tardis::trades_csv::read_trades(flate2::read::GzDecoder::new(gz), exchange, symbol, |_, t, _| {
        trades.push(*t)
    })
    .expect("valid file");
    trades
}

fn parse(c: &mut Criterion) {
    let (exchange, symbol, _, gz) = inputs();
    let mut csv = Vec::new();
    std::io::copy(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut csv).expect("valid gzip");
    let mut group = c.benchmark_group("trades_file");
    group.throughput(Throughput::Bytes(csv.len() as u64));
    group.bench_function(BenchmarkId::new("gunzip_and_parse", "BTCUSDT-day"), |b| {
        b.iter(|| decode(&exchange, &symbol, black_box(&gz)).len())
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
            for t in black_box(&trades) {
                builder.push(t);
            }
            builder.finish().len()
        })
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

criterion_group!(benches, parse, candles, validation);
criterion_main!(benches);
