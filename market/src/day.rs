//! Trading days and date ranges: the unit of work of the pipeline is one UTC date.
//!
//! Parsing is strict (`YYYY-MM-DD`, zero-padded) so that a typo never silently becomes another day.
//! This module knows nothing about clocks: "yesterday" and "in the future" take `today` as an argument.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::DAY_US;

/// One UTC calendar day, the pipeline's unit of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TradingDay(NaiveDate);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DayError {
    #[error("invalid date {input:?}: expected YYYY-MM-DD, e.g. 2024-06-01")]
    Format { input: String },
    #[error("invalid date {input:?}: {reason}")]
    Calendar { input: String, reason: String },
    #[error("Start date {start} is after end date {end}")]
    StartAfterEnd { start: TradingDay, end: TradingDay },
    #[error("date {day} is not complete yet (today is {today} UTC): only days before today can be processed")]
    NotComplete { day: TradingDay, today: TradingDay },
    #[error("range {start}..{end} has {days} days, more than the maximum of {max}; narrow it or raise the maximum")]
    TooLong { start: TradingDay, end: TradingDay, days: u32, max: u32 },
}

impl TradingDay {
    /// Parses `YYYY-MM-DD` exactly: four-digit year, two-digit month and day, nothing else.
    pub fn parse(input: &str) -> Result<Self, DayError> {
        let bytes = input.as_bytes();
        let shape_ok = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes.iter().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shape_ok {
            return Err(DayError::Format { input: input.to_owned() });
        }
        NaiveDate::parse_from_str(input, "%Y-%m-%d")
            .map(TradingDay)
            .map_err(|err| DayError::Calendar { input: input.to_owned(), reason: err.to_string() })
    }

    pub fn from_date(date: NaiveDate) -> Self {
        TradingDay(date)
    }

    /// Builds a day from calendar parts; `None` when the parts are not a real date.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, day).map(TradingDay)
    }

    /// The UTC day containing the instant `micros` (microseconds since the Unix epoch).
    pub fn containing(micros: i64) -> Self {
        let days = micros.div_euclid(DAY_US);
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a valid date");
        TradingDay(epoch + chrono::Days::new(days.unsigned_abs()))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }

    pub fn year(self) -> i32 {
        self.0.year()
    }

    pub fn month(self) -> u32 {
        self.0.month()
    }

    pub fn day(self) -> u32 {
        self.0.day()
    }

    /// Tardis publishes the first day of every month without an API key.
    pub fn is_first_of_month(self) -> bool {
        self.0.day() == 1
    }

    pub fn succ(self) -> Self {
        TradingDay(self.0.succ_opt().expect("dates far from chrono's limits have a successor"))
    }

    pub fn pred(self) -> Self {
        TradingDay(self.0.pred_opt().expect("dates far from chrono's limits have a predecessor"))
    }

    /// Midnight at the start of the day, in microseconds since the Unix epoch.
    pub fn start_us(self) -> i64 {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("1970-01-01 is a valid date");
        (self.0 - epoch).num_days() * DAY_US
    }

    /// Midnight at the end of the day (exclusive), in microseconds since the Unix epoch.
    pub fn end_us(self) -> i64 {
        self.start_us() + DAY_US
    }

    pub fn contains_us(self, micros: i64) -> bool {
        (self.start_us()..self.end_us()).contains(&micros)
    }

    /// `YYYYMMDD`, as in BigQuery partition decorators (`table$20240601`).
    pub fn compact(self) -> String {
        self.0.format("%Y%m%d").to_string()
    }

    /// `YYYY/MM/DD`, as in Tardis dataset paths.
    pub fn slashed(self) -> String {
        self.0.format("%Y/%m/%d").to_string()
    }

    /// Fails unless the day is strictly before `today`: a day is complete only once it has ended.
    pub fn ensure_complete(self, today: TradingDay) -> Result<Self, DayError> {
        if self < today { Ok(self) } else { Err(DayError::NotComplete { day: self, today }) }
    }
}

impl fmt::Display for TradingDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl std::str::FromStr for TradingDay {
    type Err = DayError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        TradingDay::parse(input)
    }
}

impl TryFrom<String> for TradingDay {
    type Error = DayError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        TradingDay::parse(&value)
    }
}

impl From<TradingDay> for String {
    fn from(day: TradingDay) -> Self {
        day.to_string()
    }
}

/// An inclusive range of trading days, start ≤ end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    start: TradingDay,
    end: TradingDay,
}

impl DateRange {
    pub fn new(start: TradingDay, end: TradingDay) -> Result<Self, DayError> {
        if start > end {
            return Err(DayError::StartAfterEnd { start, end });
        }
        Ok(DateRange { start, end })
    }

    pub fn single(day: TradingDay) -> Self {
        DateRange { start: day, end: day }
    }

    /// Parses both ends and checks their order.
    pub fn parse(start: &str, end: &str) -> Result<Self, DayError> {
        DateRange::new(TradingDay::parse(start)?, TradingDay::parse(end)?)
    }

    pub fn start(self) -> TradingDay {
        self.start
    }

    pub fn end(self) -> TradingDay {
        self.end
    }

    pub fn len(self) -> u32 {
        u32::try_from((self.end.0 - self.start.0).num_days() + 1).expect("start <= end keeps the length positive")
    }

    pub fn is_empty(self) -> bool {
        false
    }

    pub fn contains(self, day: TradingDay) -> bool {
        self.start <= day && day <= self.end
    }

    pub fn days(self) -> impl DoubleEndedIterator<Item = TradingDay> + Clone {
        let n = u64::from(self.len());
        let start = self.start.0;
        (0..n).map(move |i| TradingDay(start + chrono::Days::new(i)))
    }

    /// Fails when the range is longer than `max` days.
    pub fn ensure_at_most(self, max: u32) -> Result<Self, DayError> {
        let days = self.len();
        if days > max {
            return Err(DayError::TooLong { start: self.start, end: self.end, days, max });
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::ok("2024-06-01", Ok("2024-06-01"))]
    #[case::leap_day("2024-02-29", Ok("2024-02-29"))]
    #[case::not_leap("2023-02-29", Err("invalid date \"2023-02-29\""))]
    #[case::unpadded("2024-6-1", Err("expected YYYY-MM-DD"))]
    #[case::slashes("2024/06/01", Err("expected YYYY-MM-DD"))]
    #[case::trailing_space("2024-06-01 ", Err("expected YYYY-MM-DD"))]
    #[case::month_13("2024-13-01", Err("invalid date \"2024-13-01\""))]
    #[case::empty("", Err("expected YYYY-MM-DD"))]
    #[case::signed("+024-06-01", Err("expected YYYY-MM-DD"))]
    fn parse_is_strict(#[case] input: &str, #[case] expected: Result<&str, &str>) {
        match (TradingDay::parse(input), expected) {
            (Ok(day), Ok(want)) => assert_eq!(day.to_string(), want),
            (Err(err), Err(want)) => assert!(err.to_string().contains(want), "{err} does not contain {want}"),
            (got, want) => panic!("parse({input:?}) = {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn day_bounds_are_midnights_in_microseconds() {
        let day = TradingDay::parse("2024-06-01").expect("valid");
        assert_eq!(day.start_us(), 1_717_200_000_000_000);
        assert_eq!(day.end_us() - day.start_us(), DAY_US);
        assert_eq!(TradingDay::containing(day.start_us()), day);
        assert_eq!(TradingDay::containing(day.end_us() - 1), day);
        assert_eq!(TradingDay::containing(day.end_us()), day.succ());
        assert_eq!(day.compact(), "20240601");
        assert_eq!(day.slashed(), "2024/06/01");
    }

    #[test]
    fn range_rejects_start_after_end_with_the_operator_message() {
        let err = DateRange::parse("2024-06-30", "2024-06-01").expect_err("start after end");
        assert_eq!(err.to_string(), "Start date 2024-06-30 is after end date 2024-06-01");
    }

    #[test]
    fn range_iterates_inclusively_and_checks_its_length() {
        let range = DateRange::parse("2024-02-27", "2024-03-01").expect("valid");
        let days: Vec<String> = range.days().map(|d| d.to_string()).collect();
        assert_eq!(days, ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]);
        assert_eq!(range.len(), 4);
        assert!(range.ensure_at_most(4).is_ok());
        assert!(range.ensure_at_most(3).is_err());
    }

    #[test]
    fn a_day_has_its_calendar_parts_and_holds_exactly_its_microseconds() {
        let day = TradingDay::from_ymd(2024, 2, 29).expect("a leap day");
        assert_eq!((day.year(), day.month(), day.day()), (2024, 2, 29));
        assert_eq!(day.date(), NaiveDate::from_ymd_opt(2024, 2, 29).expect("valid"));
        assert_eq!(TradingDay::from_ymd(2023, 2, 29), None);
        assert_eq!(String::from(day), "2024-02-29");
        assert!(!day.is_first_of_month() && day.succ().is_first_of_month());
        assert!(day.contains_us(day.start_us()) && day.contains_us(day.end_us() - 1));
        assert!(!day.contains_us(day.start_us() - 1) && !day.contains_us(day.end_us()));
    }

    #[test]
    fn a_range_holds_its_ends_and_nothing_outside() {
        let range = DateRange::parse("2024-06-03", "2024-06-05").expect("valid");
        assert!(!range.is_empty());
        assert!(range.contains(range.start()) && range.contains(range.end()));
        assert!(range.contains(TradingDay::parse("2024-06-04").expect("valid")));
        assert!(!range.contains(range.start().pred()) && !range.contains(range.end().succ()));
        assert!(!DateRange::single(range.start()).is_empty());
    }

    #[test]
    fn today_and_future_days_are_not_complete() {
        let today = TradingDay::parse("2024-06-02").expect("valid");
        assert!(today.pred().ensure_complete(today).is_ok());
        assert!(today.ensure_complete(today).is_err());
        assert!(today.succ().ensure_complete(today).is_err());
    }
}
