//! One mock Tardis and one HTTP client per test, plus helpers to fetch and read what it serves. It does
//! not assert anything itself.

use std::io::Read;
use std::sync::Arc;

use fakes::tardis::{MockTardis, TardisOptions};
use fixtures::{DataType, Generator, Universe};
use market::{Exchange, Symbol, TradingDay};
use serde_json::Value;

pub const KEY: &str = TardisOptions::DEFAULT_KEY;

/// A day that is not the first of its month (so it needs a key), and the export horizon of every world.
pub fn day() -> TradingDay {
    TradingDay::parse("2024-06-04").expect("valid day")
}

pub fn last_exported() -> TradingDay {
    TradingDay::parse("2024-06-30").expect("valid day")
}

pub fn exchange(text: &str) -> Exchange {
    Exchange::parse(text).expect("valid exchange")
}

pub fn symbol(text: &str) -> Symbol {
    Symbol::parse(text).expect("valid symbol")
}

pub struct World {
    pub mock: MockTardis,
    pub generator: Arc<Generator>,
    pub http: reqwest::Client,
}

/// An HTTP answer: status, headers and the raw body (never decompressed by the client).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body gunzipped; panics when it is not a complete gzip file.
    pub fn gunzip(&self) -> String {
        gunzip(&self.body).expect("a complete gzip body")
    }
}

pub fn gunzip(bytes: &[u8]) -> std::io::Result<String> {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_string(&mut text)?;
    Ok(text)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a plain HTTP client builds")
}

impl World {
    /// A generated world at low activity: every file is small but far from empty.
    pub async fn start() -> World {
        World::start_with(0.1, TardisOptions::exported_through(last_exported())).await
    }

    pub async fn start_with(activity: f64, options: TardisOptions) -> World {
        World::start_universe(Universe::default_universe(), activity, options).await
    }

    pub async fn start_universe(universe: Universe, activity: f64, options: TardisOptions) -> World {
        let generator = Arc::new(Generator::new(11, universe).with_activity(activity));
        let mock = MockTardis::start(generator.clone(), options).await;
        World { mock, generator, http: client() }
    }

    /// `GET {mock}{path}` with an optional `Authorization` header value.
    pub async fn get(&self, path: &str, authorization: Option<&str>) -> Answer {
        get(&self.http, &format!("{}{path}", self.mock.uri()), authorization).await
    }

    /// `GET` with the valid key.
    pub async fn get_keyed(&self, path: &str) -> Answer {
        self.get(path, Some(&format!("Bearer {KEY}"))).await
    }
}

pub async fn get(http: &reqwest::Client, url: &str, authorization: Option<&str>) -> Answer {
    let mut request = http.get(url);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.expect("the mock answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("a readable body").to_vec();
    Answer { status, headers, body }
}

/// `/v1/{exchange}/{dataType}/{YYYY}/{MM}/{DD}/{symbol}.csv.gz`.
pub fn file_path(exchange: &str, data_type: &str, day: TradingDay, symbol: &str) -> String {
    format!("/v1/{exchange}/{data_type}/{}/{symbol}.csv.gz", day.slashed())
}

/// The CSV the generator writes for a file, to compare with what was served.
pub fn generated_csv(generator: &Generator, data_type: DataType, e: &str, s: &str, d: TradingDay) -> String {
    let mut out = Vec::new();
    generator
        .write_csv(data_type, &exchange(e), &symbol(s), d, &mut out)
        .expect("a generated file")
        .expect("writing to memory");
    String::from_utf8(out).expect("utf-8")
}

/// A CSV text as its header and rows of cells.
pub fn table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().split(',').map(str::to_owned).collect();
    let rows = lines.map(|line| line.split(',').map(str::to_owned).collect()).collect();
    (header, rows)
}
