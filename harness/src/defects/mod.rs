//! Deliberate defects, one at a time, for the defect suite, the coverage matrix (`harness coverage`) and the
//! nightly self-check: each turns the correct pipeline into a realistically broken one, so the harness can
//! prove that it names the problem.
//!
//! A defect is a set of the pipeline's hooks (`pipeline::hooks`): it changes what crosses one stage
//! boundary, the way a real bug in that stage would, and nothing else. Bugs of the candle builder edit the
//! downloaded trades (as a parser or a filter would) and let the pipeline's own builder build from what they
//! kept, so what they record and validate is self-consistent, as a real builder bug's would be. The shipped
//! pipeline has none of this code; only a pipeline the harness builds with [`Defect::hooks`] runs it.

mod trades;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use market::{Candle, DAY_US, Exchange, MINUTE_US, Symbol, TradingDay};
use pipeline::bigquery::schema::{CANDLES_1M, Column, INSTRUMENTS, TableDef};
use pipeline::bigquery::{BigQueryClient, BigQueryError, LoadOutcome, candle_to_json};
use pipeline::candles::{self, CandleError, CandleSet, DayFile, Increments};
use pipeline::hooks::{Download, Hooks, Load};
use pipeline::tardis::{self, DownloadedFile, TardisClient, TardisError};
use serde_json::Value;

use self::trades::Fields;

macro_rules! defects {
    ($($(#[doc = $doc:literal])+ $variant:ident => $name:literal,)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum Defect {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl Defect {
            pub const ALL: &'static [Defect] = &[$(Defect::$variant),+];

            pub fn name(self) -> &'static str {
                match self {
                    $(Defect::$variant => $name,)+
                }
            }

            /// The bug, in one sentence (its doc comment).
            pub fn description(self) -> &'static str {
                match self {
                    $(Defect::$variant => concat!($($doc),+).trim_ascii(),)+
                }
            }
        }
    };
}

defects! {
    /// The candles of 13:00–13:59 UTC are not uploaded.
    DroppedHour => "dropped-hour",
    /// The last configured symbol is not downloaded at all.
    MissingSymbol => "missing-symbol",
    /// The candles load is submitted again under a fresh job id, appending instead of replacing (a retry
    /// that did not know the first attempt had succeeded).
    DuplicatedUpload => "duplicated-upload",
    /// Candles are uploaded one hour late (a time-zone bug).
    ShiftedHour => "shifted-hour",
    /// vwap is written as the typical price (high + low + close) / 3.
    WrongVwap => "wrong-vwap",
    /// high and low are swapped.
    SwappedHighLow => "swapped-high-low",
    /// volume is written in quote units (Σ price × amount).
    VolumeInQuoteUnits => "volume-in-quote-units",
    /// A 429 on a download is taken as an empty file instead of being retried.
    Swallowed429 => "swallowed-429",
    /// The 23:59 candle of every symbol is lost.
    LastMinuteLost => "last-minute-lost",
    /// Instruments are written into the previous date's partition (a stale snapshot date).
    StaleInstruments => "stale-instruments",
    /// Trades are bucketed by their local (arrival) timestamp instead of the exchange's.
    LocalTimeBuckets => "local-time-buckets",
    /// open is the minute's first trade in file (arrival) order, not the earliest by exchange time.
    OpenInFileOrder => "open-in-file-order",
    /// close is the minute's last trade in file (arrival) order, not the latest by exchange time.
    CloseInFileOrder => "close-in-file-order",
    /// Trades smaller than twice the lot size are dropped as dust.
    SmallTradesDropped => "small-trades-dropped",
    /// Trades with an `unknown` side are counted as sells.
    UnknownSideAsSell => "unknown-side-as-sell",
    /// Trades are deduplicated by (exchange, id), so symbols whose per-symbol id sequences overlap lose trades.
    DedupeByExchangeId => "dedupe-by-exchange-id",
    /// Minutes without trades between two traded minutes get a flat candle at the previous close.
    EmptyMinutesFilled => "empty-minutes-filled",
    /// The run record counts the late trades of the day before as trades of the day.
    LateRowsInCounts => "late-rows-in-counts",
    /// The late trades of the day before are built into candles and appended to the previous date's partition.
    LateRowsToPreviousDate => "late-rows-to-previous-date",
    /// The instruments snapshot holds active instruments only.
    ActiveInstrumentsOnly => "active-instruments-only",
    /// base_currency and quote_currency are swapped.
    SwappedCurrencies => "swapped-currencies",
    /// inverse is written false for every instrument.
    InverseAlwaysFalse => "inverse-always-false",
    /// The candles table is created with trade_count NULLABLE.
    NullableTradeCount => "nullable-trade-count",
    /// Both tables are created without clustering.
    NoClustering => "no-clustering",
    /// available_to is written as a far-future sentinel (9999-12-31) where Tardis gives none, instead of NULL.
    OpenEndAsFarFuture => "open-end-as-far-future",
}

impl Defect {
    /// The defect called `text`, or an error listing the known names (a clap value parser).
    pub fn parse(text: &str) -> Result<Defect, String> {
        Defect::ALL.iter().copied().find(|d| d.name() == text).ok_or_else(|| {
            let names: Vec<&str> = Defect::ALL.iter().map(|d| d.name()).collect();
            format!("unknown defect {text:?}; one of {} (`harness coverage` says what each breaks)", names.join(", "))
        })
    }

    /// The hooks that make a pipeline commit this defect.
    pub fn hooks(self) -> Arc<dyn Hooks> {
        Arc::new(DefectHooks { defect: self, late: Mutex::new(Vec::new()) })
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
async fn download_swallowing_429(tardis: &TardisClient, file: Download<'_>) -> Result<DayFile, TardisError> {
    let url = tardis.trades_url(file.exchange, file.symbol, file.day);
    let mut request = reqwest::Client::new().get(url.clone());
    if let Some(key) = &tardis.config().api_key {
        request = request.bearer_auth(key.expose());
    }
    let rate_limited = request.send().await.is_ok_and(|r| r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS);
    if !rate_limited {
        return candles::download(tardis, file.exchange, file.symbol, file.day, file.data_dir, file.increments).await;
    }
    let path = tardis::trades_path(file.data_dir, file.exchange, file.symbol, file.day);
    let io = |source| TardisError::Io { path: path.clone(), source };
    std::fs::create_dir_all(path.parent().expect("trades paths have a parent")).map_err(io)?;
    // An empty gzip: what Tardis serves for a day without trades, which is what the defect takes the 429 for.
    let empty = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()).finish().map_err(io)?;
    std::fs::write(&path, empty).map_err(io)?;
    candles::inspect(&path, file.exchange, file.symbol, file.day, file.increments)
        .map_err(|e| TardisError::BadFile { url: url.to_string(), reason: e.to_string() })
}

/// The `duplicated-upload` load: the pipeline's own load, then the same rows again as a `WRITE_APPEND` job
/// under a fresh id.
async fn load_twice(bigquery: &BigQueryClient, load: Load<'_>) -> Result<LoadOutcome, BigQueryError> {
    let first = bigquery.load_partition(load.table, load.day, load.rows, load.run_key).await?;
    let job_id = format!("{}_{}_{}r_1", bigquery.table_name(load.table), load.day.compact(), load.run_key);
    append(bigquery, load.table, load.day, &job_id, load.rows).await?;
    Ok(LoadOutcome { jobs_created: first.jobs_created + 1, ..first })
}

/// The flat candles an `empty-minutes-filled` pipeline writes into the gaps between traded minutes.
fn filled_minutes(candles: &[Candle]) -> Vec<Candle> {
    let mut out: Vec<Candle> = Vec::with_capacity(candles.len());
    for candle in candles {
        if let Some(previous) = out.last().cloned()
            && (&previous.exchange, &previous.symbol) == (&candle.exchange, &candle.symbol)
        {
            let mut open_time_us = previous.open_time_us + MINUTE_US;
            while open_time_us < candle.open_time_us {
                let price = previous.close;
                out.push(Candle {
                    open_time_us,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                    volume: 0.0,
                    quote_volume: 0.0,
                    trade_count: 0,
                    vwap: price,
                    buy_volume: 0.0,
                    sell_volume: 0.0,
                    ..previous.clone()
                });
                open_time_us += MINUTE_US;
            }
        }
        out.push(candle.clone());
    }
    out
}

/// The table layouts of the layout defects.
static CANDLES_NULLABLE_TRADE_COUNT: LazyLock<TableDef> = LazyLock::new(|| {
    let columns: Vec<Column> = CANDLES_1M
        .columns
        .iter()
        .map(|c| if c.name == "trade_count" { Column { required: false, ..*c } } else { *c })
        .collect();
    TableDef { columns: columns.leak(), ..CANDLES_1M }
});
const CANDLES_UNCLUSTERED: TableDef = TableDef { clustering: &[], ..CANDLES_1M };
const INSTRUMENTS_UNCLUSTERED: TableDef = TableDef { clustering: &[], ..INSTRUMENTS };

/// A defect's hooks, with what the defect carries from one stage to the next.
#[derive(Debug)]
struct DefectHooks {
    defect: Defect,
    /// `late-rows-to-previous-date`: the candles of the late rows, built by the candles stage for the upload.
    late: Mutex<Vec<Candle>>,
}

impl DefectHooks {
    /// The trades files with each row edited or dropped by `edit` (called in file order, files in order).
    fn edited(
        &self,
        files: &[DownloadedFile],
        mut edit: impl FnMut(&DownloadedFile, &mut Fields) -> bool,
    ) -> Result<Vec<DownloadedFile>, CandleError> {
        files
            .iter()
            .map(|file| {
                let (header, mut rows) = trades::read(file)?;
                // A row torn in its structure is the builder's to reject, not the defect's to edit.
                rows.retain_mut(|row| row.len() <= trades::AMOUNT || edit(file, row));
                trades::write(file, file.day, self.defect.name(), &header, &rows)
            })
            .collect()
    }

    /// Candles built by the pipeline, then open or close of each minute replaced by its first or last trade
    /// in file order.
    fn in_file_order(&self, files: &[DayFile]) -> Result<CandleSet, CandleError> {
        let mut set = candles::assemble(files);
        for DayFile { file, .. } in files {
            let (_, rows) = trades::read(file)?;
            // minute → (first price, last price) in file order.
            let mut minutes: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
            for row in &rows {
                let (Some(time), Some(Ok(price))) =
                    (trades::exchange_time(row), row.get(trades::PRICE).map(|p| p.parse()))
                else {
                    continue;
                };
                if file.day.contains_us(time) {
                    let minute = time - time.rem_euclid(MINUTE_US);
                    minutes.entry(minute).and_modify(|(_, last)| *last = price).or_insert((price, price));
                }
            }
            for candle in set.candles.iter_mut().filter(|c| c.exchange == file.exchange && c.symbol == file.symbol) {
                if let Some(&(first, last)) = minutes.get(&candle.open_time_us) {
                    if self.defect == Defect::OpenInFileOrder {
                        candle.open = first;
                    } else {
                        candle.close = last;
                    }
                }
            }
        }
        Ok(set)
    }

    /// The candles of the rows before the day of each file, as the day before's candles.
    fn late_candles(&self, files: &[DownloadedFile], increments: &Increments) -> Result<Vec<Candle>, CandleError> {
        let mut late = Vec::new();
        for file in files.iter().filter(|f| f.rows_before_day > 0) {
            let (header, mut rows) = trades::read(file)?;
            let start = file.day.start_us();
            rows.retain(|row| trades::exchange_time(row).is_some_and(|t| t < start));
            let previous = trades::write(file, file.day.pred(), self.defect.name(), &header, &rows)?;
            late.extend(candles::build(&[previous], increments)?.candles);
        }
        Ok(late)
    }
}

/// Loads `rows` into the partition of `day` as a `WRITE_APPEND` job with the id `job_id`.
async fn append(
    bigquery: &BigQueryClient,
    table: &TableDef,
    day: TradingDay,
    job_id: &str,
    rows: &[Value],
) -> Result<(), BigQueryError> {
    let mut ndjson = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut ndjson, row).expect("JSON values always serialise");
        ndjson.push(b'\n');
    }
    let job = bigquery.load_job(table, day, job_id, "WRITE_APPEND");
    bigquery.insert_job_with_media(&job, Bytes::from(ndjson)).await?;
    bigquery.wait_for_job(job_id).await?;
    Ok(())
}

/// The instrument rows a defective snapshot writes instead of `rows`.
fn defective_instruments(defect: Defect, rows: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = match defect {
        Defect::ActiveInstrumentsOnly => rows.iter().filter(|r| r["active"] == Value::Bool(true)).cloned().collect(),
        _ => rows.to_vec(),
    };
    for row in &mut out {
        match defect {
            Defect::SwappedCurrencies => {
                let base = row["base_currency"].take();
                row["base_currency"] = std::mem::replace(&mut row["quote_currency"], base);
            }
            Defect::InverseAlwaysFalse => row["inverse"] = Value::Bool(false),
            Defect::OpenEndAsFarFuture if row["available_to"].is_null() => {
                row["available_to"] = Value::String("9999-12-31T23:59:59.999999Z".to_owned());
            }
            _ => {}
        }
    }
    out
}

#[async_trait::async_trait]
impl Hooks for DefectHooks {
    fn pairs(&self, mut pairs: Vec<(Exchange, Symbol)>) -> Vec<(Exchange, Symbol)> {
        if self.defect == Defect::MissingSymbol {
            pairs.pop();
        }
        pairs
    }

    async fn download(&self, tardis: &TardisClient, file: Download<'_>) -> Result<DayFile, TardisError> {
        match self.defect {
            Defect::Swallowed429 => download_swallowing_429(tardis, file).await,
            _ => candles::download(tardis, file.exchange, file.symbol, file.day, file.data_dir, file.increments).await,
        }
    }

    /// The defects that edit rows write edited copies of the files and build those again (a second pass
    /// the shipped pipeline does not make); the others start from the candles the download built.
    fn build(&self, day_files: &[DayFile], increments: &Increments) -> Result<CandleSet, CandleError> {
        let files: Vec<DownloadedFile> = day_files.iter().map(|f| f.file.clone()).collect();
        let files = files.as_slice();
        let edited = match self.defect {
            Defect::LocalTimeBuckets => self.edited(files, |_, row| {
                row[trades::TIMESTAMP] = row[trades::LOCAL_TIMESTAMP].clone();
                true
            })?,
            Defect::SmallTradesDropped => self.edited(files, |file, row| {
                let lot = increments.get(&(file.exchange.clone(), file.symbol.clone())).map_or(0.0, |&(_, lot)| lot);
                row[trades::AMOUNT].parse::<f64>().map_or(true, |amount| amount >= 2.0 * lot)
            })?,
            Defect::UnknownSideAsSell => self.edited(files, |_, row| {
                if row[trades::SIDE] == "unknown" {
                    row[trades::SIDE] = "sell".to_owned();
                }
                true
            })?,
            Defect::DedupeByExchangeId => {
                let mut seen = HashSet::new();
                self.edited(files, |file, row| seen.insert((file.exchange.clone(), row[trades::ID].clone())))?
            }
            Defect::OpenInFileOrder | Defect::CloseInFileOrder => return self.in_file_order(day_files),
            Defect::LateRowsInCounts => {
                let mut set = candles::assemble(day_files);
                set.trades_in_day += std::mem::take(&mut set.rows_before_day);
                return Ok(set);
            }
            Defect::LateRowsToPreviousDate => {
                let late = self.late_candles(files, increments)?;
                *self.late.lock().unwrap_or_else(|e| e.into_inner()) = late;
                return Ok(candles::assemble(day_files));
            }
            _ => return Ok(candles::assemble(day_files)),
        };
        candles::build(&edited, increments)
    }

    fn table(&self, def: &'static TableDef) -> &'static TableDef {
        match self.defect {
            Defect::NullableTradeCount if def.name == CANDLES_1M.name => &CANDLES_NULLABLE_TRADE_COUNT,
            Defect::NoClustering if def.name == CANDLES_1M.name => &CANDLES_UNCLUSTERED,
            Defect::NoClustering if def.name == INSTRUMENTS.name => &INSTRUMENTS_UNCLUSTERED,
            _ => def,
        }
    }

    fn candles<'a>(&self, candles: &'a [Candle]) -> Cow<'a, [Candle]> {
        match self.defect {
            Defect::EmptyMinutesFilled => Cow::Owned(filled_minutes(candles)),
            _ => Cow::Owned(defective_candles(self.defect, candles)),
        }
    }

    async fn load(&self, bigquery: &BigQueryClient, load: Load<'_>) -> Result<LoadOutcome, BigQueryError> {
        let is = |table: &TableDef| load.table.name == table.name;
        match self.defect {
            Defect::DuplicatedUpload if is(&CANDLES_1M) => load_twice(bigquery, load).await,
            Defect::StaleInstruments if is(&INSTRUMENTS) => {
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
            Defect::ActiveInstrumentsOnly
            | Defect::SwappedCurrencies
            | Defect::InverseAlwaysFalse
            | Defect::OpenEndAsFarFuture
                if is(&INSTRUMENTS) =>
            {
                let rows = defective_instruments(self.defect, load.rows);
                bigquery.load_partition(load.table, load.day, &rows, load.run_key).await
            }
            Defect::LateRowsToPreviousDate if is(&CANDLES_1M) => {
                let outcome = bigquery.load_partition(load.table, load.day, load.rows, load.run_key).await?;
                let late: Vec<Value> =
                    self.late.lock().unwrap_or_else(|e| e.into_inner()).iter().map(candle_to_json).collect();
                if late.is_empty() {
                    return Ok(outcome);
                }
                let day = load.day.pred();
                let job_id = format!("{}_{}_{}_late", bigquery.table_name(load.table), day.compact(), load.run_key);
                append(bigquery, load.table, day, &job_id, &late).await?;
                Ok(LoadOutcome { jobs_created: outcome.jobs_created + 1, ..outcome })
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
        for &defect in Defect::ALL {
            assert_eq!(Defect::parse(defect.name()), Ok(defect));
            assert!(!defect.description().is_empty() && !defect.description().starts_with(' '), "{defect}");
        }
        let err = Defect::parse("typo").expect_err("unknown");
        assert!(err.contains("dropped-hour") && err.contains("stale-instruments"), "{err}");
    }
}
