//! Arguments several commands share: dates parsed at the edge into [`TradingDay`] and [`DateRange`].

use market::{DateRange, DayError, TradingDay};

use crate::clock::Clock;

/// One date (`--date`) or a range (`--from` and `--to`).
#[derive(Debug, Clone, clap::Args)]
pub struct DaysArgs {
    /// One date, YYYY-MM-DD.
    #[arg(long, value_parser = TradingDay::parse, conflicts_with_all = ["from", "to"])]
    pub date: Option<TradingDay>,
    /// First date of a range, YYYY-MM-DD.
    #[arg(long, value_parser = TradingDay::parse, requires = "to")]
    pub from: Option<TradingDay>,
    /// Last date of a range, YYYY-MM-DD (inclusive).
    #[arg(long, value_parser = TradingDay::parse, requires = "from")]
    pub to: Option<TradingDay>,
}

impl DaysArgs {
    /// The dates asked for, or `None` when none were given. Start after end is refused.
    pub fn range(&self) -> Result<Option<DateRange>, DayError> {
        match (self.date, self.from, self.to) {
            (Some(day), _, _) => Ok(Some(DateRange::single(day))),
            (None, Some(from), Some(to)) => DateRange::new(from, to).map(Some),
            _ => Ok(None),
        }
    }

    /// The dates asked for (yesterday when none were given), refused unless every one is over by `clock`.
    pub fn complete_range_or_yesterday(&self, clock: &dyn Clock) -> Result<DateRange, DayError> {
        let range = self.range()?.unwrap_or_else(|| DateRange::single(clock.yesterday()));
        range.end().ensure_complete(clock.today())?;
        Ok(range)
    }
}
