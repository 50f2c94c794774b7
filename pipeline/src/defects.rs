//! Deliberate defects, one at a time, for the harness's defect suite: each turns this correct pipeline
//! into a realistically broken one, so the suite can prove that validation names the problem.
//!
//! Never set in production: `Config::defect` is `None` unless the harness (or `PIPELINE_DEFECT`, for
//! black-box runs of the binary) asks for one. Each defect acts at one point of the run, documented on
//! its variant.

use market::{Candle, MINUTE_US};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Defect {
    /// The candles of 13:00–13:59 UTC are not uploaded.
    DroppedHour,
    /// The last configured symbol is not downloaded at all.
    MissingSymbol,
    /// The candles load appends instead of replacing the partition, and is submitted twice (a retry
    /// under a fresh job id).
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

    pub fn parse(text: &str) -> Option<Defect> {
        Defect::ALL.into_iter().find(|d| d.name() == text)
    }
}

/// The candle rows the defective upload writes instead of `candles`.
pub fn candles_to_upload(defect: Option<Defect>, candles: &[Candle]) -> Vec<Candle> {
    let hour_of_day = |c: &Candle| c.open_time_us.rem_euclid(market::DAY_US) / (60 * MINUTE_US);
    let minute_of_day = |c: &Candle| c.open_time_us.rem_euclid(market::DAY_US) / MINUTE_US;
    let mut out: Vec<Candle> = match defect {
        Some(Defect::DroppedHour) => candles.iter().filter(|c| hour_of_day(c) != 13).cloned().collect(),
        Some(Defect::LastMinuteLost) => candles.iter().filter(|c| minute_of_day(c) != 1439).cloned().collect(),
        _ => candles.to_vec(),
    };
    for c in &mut out {
        match defect {
            Some(Defect::ShiftedHour) => c.open_time_us += 60 * MINUTE_US,
            Some(Defect::WrongVwap) => c.vwap = (c.high + c.low + c.close) / 3.0,
            Some(Defect::SwappedHighLow) => std::mem::swap(&mut c.high, &mut c.low),
            Some(Defect::VolumeInQuoteUnits) => c.volume = c.quote_volume,
            _ => {}
        }
    }
    // A shifted hour pushes the last hour into the next date, which a partition-decorated load refuses:
    // the defective pipeline drops what no longer fits, as such code typically does.
    if defect == Some(Defect::ShiftedHour)
        && let Some(first) = candles.first()
    {
        let day = first.day();
        out.retain(|c| day.contains_us(c.open_time_us));
    }
    out
}
