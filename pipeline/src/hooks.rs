//! The seam where a caller may change what crosses a stage boundary of a run: which pairs are downloaded
//! and how, how the candles are built from the files, which candles are loaded, into which table layout,
//! and how a partition is loaded.
//!
//! The shipped pipeline runs with [`NoHooks`], whose every method is the pipeline's own behaviour, so the
//! production binary contains no alternative behaviour at all. The harness implements its deliberate
//! defects (a dropped hour, a swallowed 429, an appended upload...) on this seam, outside the pipeline.
//! Hooks change data and calls at the boundaries only; they never see the store, so a run is recorded the
//! same way whatever they do.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use market::{Candle, Exchange, Symbol, TradingDay};
use serde_json::Value;

use crate::bigquery::schema::TableDef;
use crate::bigquery::{BigQueryClient, BigQueryError, LoadOutcome};
use crate::candles::{self, CandleError, CandleSet, DayFile, Increments};
use crate::tardis::{TardisClient, TardisError};

/// One trades file the download stage fetches.
#[derive(Debug, Clone, Copy)]
pub struct Download<'a> {
    pub exchange: &'a Exchange,
    pub symbol: &'a Symbol,
    pub day: TradingDay,
    pub data_dir: &'a Path,
    /// (tick, lot) of the pair, when the instruments list has it: the pass over the file checks the grids.
    pub increments: Option<(f64, f64)>,
}

/// One partition the upload stage loads.
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    pub table: &'static TableDef,
    pub day: TradingDay,
    /// The NDJSON rows, one JSON object each.
    pub rows: &'a [Value],
    /// The run's key, part of every job id of the run.
    pub run_key: &'a str,
}

#[async_trait::async_trait]
pub trait Hooks: Send + Sync + fmt::Debug {
    /// The pairs the download stage fetches, given the configured ones.
    fn pairs(&self, pairs: Vec<(Exchange, Symbol)>) -> Vec<(Exchange, Symbol)> {
        pairs
    }

    /// Downloads one trades file, verifying it and building its candles in one pass.
    async fn download(&self, tardis: &TardisClient, file: Download<'_>) -> Result<DayFile, TardisError> {
        candles::download(tardis, file.exchange, file.symbol, file.day, file.data_dir, file.increments).await
    }

    /// The candles of the day's files (the candles stage, and re-validation from the files): those their
    /// pass built, merged.
    fn build(&self, files: &[DayFile], _increments: &Increments) -> Result<CandleSet, CandleError> {
        Ok(candles::assemble(files))
    }

    /// The layout the upload stage creates `def` with and loads it by.
    fn table(&self, def: &'static TableDef) -> &'static TableDef {
        def
    }

    /// The 1-minute candles the upload stage loads, given the ones built.
    fn candles<'a>(&self, candles: &'a [Candle]) -> Cow<'a, [Candle]> {
        Cow::Borrowed(candles)
    }

    /// Loads one partition: one `WRITE_TRUNCATE` job into `table$YYYYMMDD`.
    async fn load(&self, bigquery: &BigQueryClient, load: Load<'_>) -> Result<LoadOutcome, BigQueryError> {
        bigquery.load_partition(load.table, load.day, load.rows, load.run_key).await
    }
}

/// The pipeline's own behaviour at every boundary.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {}
