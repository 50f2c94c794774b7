//! One fake BigQuery and one HTTP client per test, plus builders for the requests real clients send. It does
//! not assert anything itself.

use fakes::FakeBigQuery;
use serde_json::{Value, json};

pub const P: &str = "p";
pub const D: &str = "market";

/// 2024-06-01T00:00:00Z and 2024-06-02T00:00:00Z in epoch seconds.
pub const JUNE_1: i64 = 1_717_200_000;
pub const JUNE_2: i64 = 1_717_286_400;

pub struct World {
    pub fake: FakeBigQuery,
    pub http: reqwest::Client,
}

/// An HTTP answer: status, body as JSON (`Null` when empty), and the headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// `error.errors[0].reason` of an error body.
    pub fn reason(&self) -> &str {
        self.body["error"]["errors"][0]["reason"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl World {
    pub async fn start() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client builds");
        Self { fake: FakeBigQuery::start().await, http }
    }

    /// A metadata URL: `/bigquery/v2` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/bigquery/v2{path}", self.fake.uri())
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the fake answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("a JSON body") };
        Answer { status, body, headers }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(self.http.delete(self.url(path))).await
    }

    pub async fn create_dataset(&self) {
        let answer = self
            .post(&format!("/projects/{P}/datasets"), &json!({"datasetReference": {"projectId": P, "datasetId": D}}))
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }

    /// The candles table: DAY-partitioned on `open_time`, clustered by exchange and symbol.
    pub async fn create_candles(&self) {
        self.create_dataset().await;
        let answer = self.post(&format!("/projects/{P}/datasets/{D}/tables"), &candles_table("candles")).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }

    /// A multipart load as the Python client frames it.
    pub async fn load(&self, job: &Value, rows: &[Value]) -> Answer {
        self.upload(job, ndjson(rows).as_bytes(), Framing::Python).await
    }

    pub async fn upload(&self, job: &Value, data: &[u8], framing: Framing) -> Answer {
        let (content_type, body) = multipart(job, data, framing);
        let url =
            format!("{}/upload/bigquery/v2/projects/{P}/jobs?uploadType=multipart&prettyPrint=false", self.fake.uri());
        self.send(self.http.post(url).header("content-type", content_type).body(body)).await
    }

    pub fn rows(&self, table: &str) -> Vec<Value> {
        self.fake.rows(P, D, table).into_iter().map(Value::Object).collect()
    }
}

pub fn candles_schema() -> Value {
    json!({"fields": [
        {"name": "exchange", "type": "STRING", "mode": "REQUIRED"},
        {"name": "symbol", "type": "STRING", "mode": "REQUIRED"},
        {"name": "open_time", "type": "TIMESTAMP", "mode": "REQUIRED"},
        {"name": "close", "type": "FLOAT64"},
        {"name": "trades", "type": "INT64"},
    ]})
}

pub fn candles_table(table: &str) -> Value {
    json!({
        "tableReference": {"projectId": P, "datasetId": D, "tableId": table},
        "schema": candles_schema(),
        "timePartitioning": {"type": "DAY", "field": "open_time"},
        "clustering": {"fields": ["exchange", "symbol"]},
    })
}

/// One candle row as the pipeline would write it, `minute` minutes after `day_start` (epoch seconds).
pub fn candle(symbol: &str, day_start: i64, minute: i64, close: f64) -> Value {
    let at = chrono::DateTime::from_timestamp(day_start + minute * 60, 0).expect("a valid instant");
    json!({"exchange": "binance", "symbol": symbol, "open_time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
           "close": close, "trades": minute + 1})
}

pub fn ndjson(rows: &[Value]) -> String {
    rows.iter().map(|row| format!("{row}\n")).collect()
}

/// A load job into `table_id` of the test dataset.
pub fn load_job(job_id: &str, table_id: &str, write: &str) -> Value {
    json!({
        "jobReference": {"projectId": P, "jobId": job_id},
        "configuration": {"load": {
            "destinationTable": {"projectId": P, "datasetId": D, "tableId": table_id},
            "sourceFormat": "NEWLINE_DELIMITED_JSON",
            "writeDisposition": write,
            "createDisposition": "CREATE_NEVER",
        }},
    })
}

/// How a client frames its multipart body.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// google-resumable-media: quoted `===…==` boundary, lower-case part headers, no CRLF after `--B--`.
    Python,
    /// google-apis-common: `multipart/related;boundary=…` unquoted, extra part headers, final CRLF.
    Byron,
    /// Upper-case part headers and bare LF line breaks.
    Shouting,
}

pub fn multipart(job: &Value, data: &[u8], framing: Framing) -> (String, Vec<u8>) {
    let job = job.to_string();
    let (content_type, head_json, head_data, line, close) = match framing {
        Framing::Python => {
            let boundary = "===============7709692719097371713==";
            (
                format!("multipart/related; boundary=\"{boundary}\""),
                format!("--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n"),
                format!("\r\n--{boundary}\r\ncontent-type: */*\r\n\r\n"),
                "\r\n",
                format!("--{boundary}--"),
            )
        }
        Framing::Byron => {
            let boundary = "MDuXWGyeE33QFXGchb2VFWc4Z7945d";
            (
                format!("multipart/related;boundary={boundary}"),
                format!("--{boundary}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", job.len()),
                format!(
                    "\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    data.len()
                ),
                "\r\n",
                format!("--{boundary}--\r\n"),
            )
        }
        Framing::Shouting => {
            let boundary = "b0undary";
            (
                format!("multipart/related; BOUNDARY={boundary}"),
                format!("--{boundary}\nCONTENT-TYPE: APPLICATION/JSON\n\n"),
                format!("\n--{boundary}\nCONTENT-TYPE: APPLICATION/X-NDJSON\n\n"),
                "\n",
                format!("--{boundary}--"),
            )
        }
    };
    let mut body = Vec::new();
    body.extend_from_slice(head_json.as_bytes());
    body.extend_from_slice(job.as_bytes());
    body.extend_from_slice(head_data.as_bytes());
    body.extend_from_slice(data);
    body.extend_from_slice(line.as_bytes());
    body.extend_from_slice(close.as_bytes());
    (content_type, body)
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("writing to memory cannot fail");
    encoder.finish().expect("finishing a gzip stream in memory cannot fail")
}

/// Whether a JSON value is a string of decimal digits (an int64 the BigQuery way).
pub fn is_int64_string(value: &Value) -> bool {
    value.as_str().is_some_and(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
}
