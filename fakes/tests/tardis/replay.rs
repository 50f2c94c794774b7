//! Replay mode: real files from a directory laid out like the datasets API, `.csv.gz` served byte for byte
//! and `.csv` gzipped on the fly, metadata from the tree, instruments from `instruments.json`, and the same
//! auth and URL rules as the generated mock.

use std::path::Path;

use fakes::tardis::{MockTardis, ReplayError, TardisOptions};
use fixtures::{DataType, Generator, Universe};
use market::TradingDay;
use serde_json::{Value, json};

use crate::support::{self, Answer, KEY, exchange, file_path, gunzip, symbol};

fn date(text: &str) -> TradingDay {
    TradingDay::parse(text).expect("valid day")
}

fn write(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("directories");
    std::fs::write(path, bytes).expect("a file");
}

/// A captured tree: binance-futures BTCUSDT trades (gz on 06-03, plain CSV on 06-04) and quotes (06-04),
/// deribit trades on 06-01 and 06-02, binance instruments, and files the mock must ignore.
struct Replay {
    dir: tempfile::TempDir,
    generator: Generator,
    mock: MockTardis,
    http: reqwest::Client,
}

const INSTRUMENTS: &str = r#"[
 {"id":"btcusdt","datasetId":"BTCUSDT","exchange":"binance-futures","baseCurrency":"BTC","quoteCurrency":"USDT",
  "type":"perpetual","contractType":"linear_perpetual","active":true,"availableSince":"2019-11-17T00:00:00.000Z",
  "priceIncrement":0.1,"amountIncrement":0.001,"minTradeAmount":0.001,"makerFee":0.0002,"takerFee":0.0005,
  "changes":[{"until":"2020-01-01T00:00:00.000Z","priceIncrement":0.01}]},
 {"id":"btcusdt_240628","datasetId":"BTCUSDT_240628","exchange":"binance-futures","baseCurrency":"BTC",
  "quoteCurrency":"USDT","type":"future","contractType":"linear_future","active":false,
  "availableSince":"2024-03-29T00:00:00.000Z","availableTo":"2024-06-28T08:00:00.000Z","expiry":"2024-06-28T08:00:00.000Z",
  "priceIncrement":0.1,"amountIncrement":0.001,"minTradeAmount":0.001,"makerFee":0.0002,"takerFee":0.0005}
]"#;

impl Replay {
    async fn start(options: TardisOptions) -> Replay {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path();
        let generator = Generator::new(5, Universe::default_universe()).with_activity(0.05);
        let (binance, btc) = (exchange("binance-futures"), symbol("BTCUSDT"));
        let gz = generator.csv_gz(DataType::Trades, &binance, &btc, date("2024-06-03")).expect("generated");
        write(root, "binance-futures/trades/2024/06/03/BTCUSDT.csv.gz", &gz);
        let csv =
            support::generated_csv(&generator, DataType::Trades, "binance-futures", "BTCUSDT", date("2024-06-04"));
        write(root, "binance-futures/trades/2024/06/04/BTCUSDT.csv", csv.as_bytes());
        let quotes = generator.csv_gz(DataType::Quotes, &binance, &btc, date("2024-06-04")).expect("generated");
        write(root, "binance-futures/quotes/2024/06/04/BTCUSDT.csv.gz", &quotes);
        write(root, "binance-futures/instruments.json", INSTRUMENTS.as_bytes());
        let (deribit, perp) = (exchange("deribit"), symbol("BTC-PERPETUAL"));
        for d in ["2024-06-01", "2024-06-02"] {
            let gz = generator.csv_gz(DataType::Trades, &deribit, &perp, date(d)).expect("generated");
            write(root, &format!("deribit/trades/{}/BTC-PERPETUAL.csv.gz", date(d).slashed()), &gz);
        }
        // Not part of the layout: a lower-case symbol, a stray file, a non-exchange directory.
        write(root, "binance-futures/trades/2024/06/04/btcusdt.csv.gz", b"ignored");
        write(root, "binance-futures/trades/2024/06/04/notes.txt", b"ignored");
        write(root, "README.md", b"captured files");
        write(root, "Not An Exchange/trades/2024/06/04/X.csv.gz", b"ignored");
        let mock = MockTardis::start_replay(None, root, options).await.expect("a valid replay directory");
        Replay { dir, generator, mock, http: support::client() }
    }

    async fn get(&self, path: &str, authorization: Option<&str>) -> Answer {
        support::get(&self.http, &format!("{}{path}", self.mock.uri()), authorization).await
    }

    async fn get_keyed(&self, path: &str) -> Answer {
        self.get(path, Some(&format!("Bearer {KEY}"))).await
    }
}

fn options() -> TardisOptions {
    // exportedUntil comes from the files: this horizon is deliberately wrong and must be ignored.
    TardisOptions::exported_through(date("2030-01-01"))
}

#[tokio::test]
async fn gzip_files_are_served_byte_for_byte_and_plain_csv_is_gzipped_on_the_fly() {
    let replay = Replay::start(options()).await;
    assert!(replay.mock.generator().is_none());
    let gz = replay.get_keyed(&file_path("binance-futures", "trades", date("2024-06-03"), "BTCUSDT")).await;
    assert_eq!(gz.status, 200, "{}", gz.text());
    let on_disk =
        std::fs::read(replay.dir.path().join("binance-futures/trades/2024/06/03/BTCUSDT.csv.gz")).expect("file");
    assert_eq!(gz.body, on_disk, "byte-identical");
    assert_eq!(gz.header("content-length"), Some(on_disk.len().to_string().as_str()));
    assert_eq!(gz.header("content-type"), Some("application/gzip"));

    let plain = replay.get_keyed(&file_path("binance-futures", "trades", date("2024-06-04"), "BTCUSDT")).await;
    assert_eq!(plain.status, 200, "{}", plain.text());
    assert_eq!(&plain.body[..2], &[0x1f, 0x8b]);
    let csv =
        std::fs::read_to_string(replay.dir.path().join("binance-futures/trades/2024/06/04/BTCUSDT.csv")).expect("file");
    assert_eq!(plain.gunzip(), csv, "decompresses to the file");
    assert_eq!(
        csv,
        support::generated_csv(&replay.generator, DataType::Trades, "binance-futures", "BTCUSDT", date("2024-06-04"))
    );
}

#[tokio::test]
async fn exchanges_symbols_data_types_and_export_horizon_come_from_the_tree() {
    let replay = Replay::start(options()).await;
    let list = replay.get("/v1/exchanges", None).await.json();
    let ids: Vec<&str> = list.as_array().expect("array").iter().map(|e| e["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["binance-futures", "deribit"]);
    let binance = replay.get("/v1/exchanges/binance-futures", None).await.json();
    assert_eq!(binance["name"], "Binance USDT Futures");
    assert_eq!(binance["availableSince"], "2024-06-03T00:00:00.000Z");
    assert_eq!(binance["datasets"]["exportedUntil"], "2024-06-05T00:00:00.000Z", "end of the last day on disk");
    assert_eq!(
        binance["datasets"]["symbols"],
        json!([{"id": "BTCUSDT", "type": "perpetual", "availableSince": "2024-06-03T00:00:00.000Z",
                "dataTypes": ["quotes", "trades"]}])
    );
    let native: Vec<&str> =
        binance["availableSymbols"].as_array().expect("array").iter().map(|s| s["id"].as_str().expect("id")).collect();
    assert_eq!(native, ["btcusdt", "btcusdt_240628"], "from instruments.json");
    assert_eq!(binance["availableSymbols"][1]["availableTo"], "2024-06-28T08:00:00.000Z");
    let deribit = replay.get("/v1/exchanges/deribit", None).await.json();
    assert_eq!(deribit["datasets"]["exportedUntil"], "2024-06-03T00:00:00.000Z");
    assert_eq!(deribit["datasets"]["symbols"][0]["dataTypes"], json!(["trades"]));
    assert!(deribit["datasets"]["symbols"][0].get("type").is_none(), "unknown without instruments");
    assert_eq!(replay.get("/v1/exchanges/bitmex", None).await.status, 404);
}

#[tokio::test]
async fn instruments_come_from_instruments_json_with_filters_or_a_clear_404() {
    let replay = Replay::start(options()).await;
    let all = replay.get_keyed("/v1/instruments/binance-futures").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.json(), serde_json::from_str::<Value>(INSTRUMENTS).expect("valid JSON"), "served as provided");
    let filter: String = url::form_urlencoded::byte_serialize(br#"{"type":"future","active":false}"#).collect();
    let futures = replay.get_keyed(&format!("/v1/instruments/binance-futures?filter={filter}")).await.json();
    assert_eq!(futures.as_array().expect("array").len(), 1);
    assert_eq!(futures[0]["id"], "btcusdt_240628");
    let one = replay.get_keyed("/v1/instruments/binance-futures/btcusdt").await.json();
    assert_eq!(one["changes"][0]["priceIncrement"], 0.01);
    let missing = replay.get_keyed("/v1/instruments/deribit").await;
    assert_eq!(missing.status, 404);
    let message = missing.json()["message"].as_str().expect("a message").to_owned();
    assert!(
        message.contains("No instruments were provided for deribit") && message.contains("instruments.json"),
        "{message}"
    );
    assert_eq!(replay.get("/v1/instruments/binance-futures", None).await.status, 401, "instruments need a key");
}

#[tokio::test]
async fn replayed_files_follow_the_same_auth_and_url_rules() {
    let replay = Replay::start(options()).await;
    let first = replay.get(&file_path("deribit", "trades", date("2024-06-01"), "BTC-PERPETUAL"), None).await;
    assert_eq!(first.status, 200, "the first of the month is free");
    let paid = file_path("deribit", "trades", date("2024-06-02"), "BTC-PERPETUAL");
    assert_eq!(replay.get(&paid, None).await.status, 401);
    assert_eq!(replay.get(&paid, Some("Bearer ")).await.status, 401);
    assert_eq!(replay.get(&paid, Some("Bearer harness-key-without-access")).await.status, 403);
    assert_eq!(replay.get_keyed(&format!("{paid}?retryAttempt=2")).await.status, 200);

    let cases = [
        (file_path("binance-futures", "trades", date("2024-06-04"), "btcusdt"), "Unknown symbol 'btcusdt'"),
        (file_path("binance-futures", "Trades", date("2024-06-04"), "BTCUSDT"), "Data type 'Trades' is not available"),
        (file_path("binance-futures", "derivative_ticker", date("2024-06-04"), "BTCUSDT"), "'derivative_ticker'"),
        (file_path("binance-futures", "quotes", date("2024-06-03"), "BTCUSDT"), "No quotes file for BTCUSDT"),
        (file_path("binance-futures", "trades", date("2024-06-05"), "BTCUSDT"), "not available yet"),
        (file_path("bitmex", "trades", date("2024-06-04"), "XBTUSD"), "Unknown exchange 'bitmex'"),
    ];
    for (path, message) in cases {
        let answer = replay.get_keyed(&path).await;
        assert_eq!(answer.status, 404, "{path}");
        let text = answer.json()["message"].as_str().expect("a message").to_owned();
        assert!(text.contains(message), "{path}: {text}");
    }
}

#[tokio::test]
async fn a_quiet_day_and_a_moved_horizon_apply_to_replays_too() {
    let options = options().with_quiet(exchange("binance-futures"), symbol("BTCUSDT"), date("2024-06-03"));
    let replay = Replay::start(options).await;
    let quiet = replay.get_keyed(&file_path("binance-futures", "trades", date("2024-06-03"), "BTCUSDT")).await;
    assert_eq!((quiet.status, gunzip(&quiet.body).expect("a valid gzip").as_str()), (200, ""));
    replay
        .mock
        .set_exported_until(chrono::DateTime::from_timestamp_micros(date("2024-06-04").start_us()).expect("valid"));
    let hidden = replay.get_keyed(&file_path("binance-futures", "trades", date("2024-06-04"), "BTCUSDT")).await;
    assert_eq!(hidden.status, 404, "a file past the moved horizon is not exported yet");
}

#[tokio::test]
async fn a_missing_directory_or_a_bad_instruments_file_fails_at_start() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = MockTardis::start_replay(None, &dir.path().join("nope"), options()).await;
    assert!(matches!(missing, Err(ReplayError::NotADirectory { .. })), "{missing:?}");
    write(dir.path(), "bitmex/instruments.json", br#"{"id":"XBTUSD"}"#);
    let bad = MockTardis::start_replay(None, dir.path(), options()).await;
    let err = bad.expect_err("an object is not an instruments array");
    assert!(matches!(err, ReplayError::Instruments { .. }), "{err}");
    assert!(err.to_string().contains("expected a JSON array"), "{err}");
}
