//! Deliberate defects, one at a time, for the defect suite and the nightly self-check: each turns the
//! correct pipeline into a realistically broken one, so the harness can prove that it names the problem.
//!
//! A defect is a set of the pipeline's hooks (`pipeline::hooks`): it changes what crosses one stage
//! boundary, the way a real bug in that stage would, and nothing else. The shipped pipeline has none of this
//! code; only a pipeline the harness builds with [`Defect::hooks`] runs it.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use market::{Candle, DAY_US, Exchange, MINUTE_US, Symbol};
use pipeline::bigquery::schema::{CANDLES_1M, INSTRUMENTS};
use pipeline::bigquery::{BigQueryClient, BigQueryError, LoadOutcome};
use pipeline::hooks::{Download, Hooks, Load};
use pipeline::tardis::{self, DownloadedFile, TardisClient, TardisError};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Defect {
    /// The candles of 13:00–13:59 UTC are not uploaded.
    DroppedHour,
    /// The last configured symbol is not downloaded at all.
    MissingSymbol,
    /// The candles load is submitted again under a fresh job id, appending instead of replacing (a retry
    /// that did not know the first attempt had succeeded).
    DuplicatedUpload,
    /// Candles are uploaded one hour late (a time-zone bug).
    ShiftedHour,
    /// vwap is written as the typical price (high + low + close) / 3.
    WrongVwap,
    /// high and low are swapped.
    SwappedHighLow,
    /// volume is written in quote units (Σ price × amount).
    VolumeInQuoteUnits,
    /// A 429 on a download is taken as an empty file instead of being retried.
    Swallowed429,
    /// The 23:59 candle of every symbol is lost.
    LastMinuteLost,
    /// Instruments are written into the previous date's partition (a stale snapshot date).
    StaleInstruments,
}

impl Defect {
    pub const ALL: [Defect; 10] = [
        Defect::DroppedHour,
        Defect::MissingSymbol,
        Defect::DuplicatedUpload,
        Defect::ShiftedHour,
        Defect::WrongVwap,
        Defect::SwappedHighLow,
        Defect::VolumeInQuoteUnits,
        Defect::Swallowed429,
        Defect::LastMinuteLost,
        Defect::StaleInstruments,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Defect::DroppedHour => "dropped-hour",
            Defect::MissingSymbol => "missing-symbol",
            Defect::DuplicatedUpload => "duplicated-upload",
            Defect::ShiftedHour => "shifted-hour",
            Defect::WrongVwap => "wrong-vwap",
            Defect::SwappedHighLow => "swapped-high-low",
            Defect::VolumeInQuoteUnits => "volume-in-quote-units",
            Defect::Swallowed429 => "swallowed-429",
            Defect::LastMinuteLost => "last-minute-lost",
            Defect::StaleInstruments => "stale-instruments",
        }
    }

    /// The defect called `text`, or an error listing the known names (a clap value parser).
    pub fn parse(text: &str) -> Result<Defect, String> {
        Defect::ALL
            .into_iter()
            .find(|d| d.name() == text)
            .ok_or_else(|| format!("unknown defect {text:?}; one of {}", Defect::ALL.map(Defect::name).join(", ")))
    }

    /// The hooks that make a pipeline commit this defect.
    pub fn hooks(self) -> Arc<dyn Hooks> {
        Arc::new(self)
    }
}

impl std::fmt::Display for Defect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The candle rows a defective upload writes instead of `candles`.
fn defective_candles(defect: Defect, candles: &[Candle]) -> Vec<Candle> {
    let hour_of_day = |c: &Candle| c.open_time_us.rem_euclid(DAY_US) / (60 * MINUTE_US);
    let minute_of_day = |c: &Candle| c.open_time_us.rem_euclid(DAY_US) / MINUTE_US;
    let mut out: Vec<Candle> = match defect {
        Defect::DroppedHour => candles.iter().filter(|c| hour_of_day(c) != 13).cloned().collect(),
        Defect::LastMinuteLost => candles.iter().filter(|c| minute_of_day(c) != 1439).cloned().collect(),
        _ => candles.to_vec(),
    };
    for c in &mut out {
        match defect {
            Defect::ShiftedHour => c.open_time_us += 60 * MINUTE_US,
            Defect::WrongVwap => c.vwap = (c.high + c.low + c.close) / 3.0,
            Defect::SwappedHighLow => std::mem::swap(&mut c.high, &mut c.low),
            Defect::VolumeInQuoteUnits => c.volume = c.quote_volume,
            _ => {}
        }
    }
    // A shifted hour pushes the last hour into the next date, which a partition-decorated load refuses:
    // the defective pipeline drops what no longer fits, as such code typically does.
    if defect == Defect::ShiftedHour
        && let Some(first) = candles.first()
    {
        let day = first.day();
        out.retain(|c| day.contains_us(c.open_time_us));
    }
    out
}

/// The `swallowed-429` download: one request; a 429 becomes an empty file (a quiet day, as far as the rest
/// of the run can tell), anything else goes to the pipeline's own download.
async fn download_swallowing_429(tardis: &TardisClient, file: Download<'_>) -> Result<DownloadedFile, TardisError> {
    let url = tardis.trades_url(file.exchange, file.symbol, file.day);
    let mut request = reqwest::Client::new().get(url.clone());
    if let Some(key) = &tardis.config().api_key {
        request = request.bearer_auth(key.expose());
    }
    let rate_limited = request.send().await.is_ok_and(|r| r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS);
    if !rate_limited {
        return tardis.download_trades(file.exchange, file.symbol, file.day, file.data_dir).await;
    }
    let path = tardis::trades_path(file.data_dir, file.exchange, file.symbol, file.day);
    let io = |source| TardisError::Io { path: path.clone(), source };
    std::fs::create_dir_all(path.parent().expect("trades paths have a parent")).map_err(io)?;
    // An empty gzip: what Tardis serves for a day without trades, which is what the defect takes the 429 for.
    let empty = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()).finish().map_err(io)?;
    std::fs::write(&path, empty).map_err(io)?;
    tardis::inspect(&path, file.exchange, file.symbol, file.day)
        .map_err(|e| TardisError::BadFile { url: url.to_string(), reason: e.to_string() })
}

/// The `duplicated-upload` load: the pipeline's own load, then the same rows again as a `WRITE_APPEND` job
/// under a fresh id.
async fn load_twice(bigquery: &BigQueryClient, load: Load<'_>) -> Result<LoadOutcome, BigQueryError> {
    let first = bigquery.load_partition(load.table, load.day, load.rows, load.run_key).await?;
    let job_id = format!("{}_{}_{}r_1", bigquery.table_name(load.table), load.day.compact(), load.run_key);
    let mut ndjson = Vec::new();
    for row in load.rows {
        serde_json::to_writer(&mut ndjson, row).expect("JSON values always serialise");
        ndjson.push(b'\n');
    }
    let job = bigquery.load_job(load.table, load.day, &job_id, "WRITE_APPEND");
    bigquery.insert_job_with_media(&job, Bytes::from(ndjson)).await?;
    bigquery.wait_for_job(&job_id).await?;
    Ok(LoadOutcome { jobs_created: first.jobs_created + 1, ..first })
}

#[async_trait::async_trait]
impl Hooks for Defect {
    fn pairs(&self, mut pairs: Vec<(Exchange, Symbol)>) -> Vec<(Exchange, Symbol)> {
        if *self == Defect::MissingSymbol {
            pairs.pop();
        }
        pairs
    }

    async fn download(&self, tardis: &TardisClient, file: Download<'_>) -> Result<DownloadedFile, TardisError> {
        match self {
            Defect::Swallowed429 => download_swallowing_429(tardis, file).await,
            _ => tardis.download_trades(file.exchange, file.symbol, file.day, file.data_dir).await,
        }
    }

    fn candles<'a>(&self, candles: &'a [Candle]) -> Cow<'a, [Candle]> {
        Cow::Owned(defective_candles(*self, candles))
    }

    async fn load(&self, bigquery: &BigQueryClient, load: Load<'_>) -> Result<LoadOutcome, BigQueryError> {
        match self {
            Defect::DuplicatedUpload if load.table.name == CANDLES_1M.name => load_twice(bigquery, load).await,
            Defect::StaleInstruments if load.table.name == INSTRUMENTS.name => {
                // The snapshot is dated, and loaded, a day early.
                let day = load.day.pred();
                let rows: Vec<Value> = load
                    .rows
                    .iter()
                    .map(|row| {
                        let mut row = row.clone();
                        row["date"] = Value::String(day.to_string());
                        row
                    })
                    .collect();
                bigquery.load_partition(load.table, day, &rows, load.run_key).await
            }
            _ => bigquery.load_partition(load.table, load.day, load.rows, load.run_key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defect_parses_back_from_its_name_and_unknown_names_list_them_all() {
        for defect in Defect::ALL {
            assert_eq!(Defect::parse(defect.name()), Ok(defect));
        }
        let err = Defect::parse("typo").expect_err("unknown");
        assert!(err.contains("dropped-hour") && err.contains("stale-instruments"), "{err}");
    }
}
