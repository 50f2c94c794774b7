//! The parts of a datasets URL (`/v1/{exchange}/{dataType}/{YYYY}/{MM}/{DD}/{symbol}.csv.gz`), split and
//! percent-decoded but not validated against any market: the sources decide what exists.

use market::TradingDay;

/// Decodes `%XX` escapes of one path segment (invalid escapes are kept as they are).
pub(super) fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        let escaped = (bytes[i] == b'%')
            .then(|| Some((bytes.get(i + 1).and_then(|b| hex(*b))?, bytes.get(i + 2).and_then(|b| hex(*b))?)))
            .flatten();
        if let Some((h, l)) = escaped {
            out.push(u8::try_from(h * 16 + l).expect("two hex digits fit a byte"));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One datasets request, as sent (the file name percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DatasetPath {
    pub(super) exchange: String,
    pub(super) data_type: String,
    year: String,
    month: String,
    day: String,
    /// The last segment, decoded: `BTCUSDT.csv.gz`.
    pub(super) file: String,
}

impl DatasetPath {
    /// `None` unless the path has the seven segments of a datasets URL (the prefix is not checked: the
    /// route's matcher did).
    pub(super) fn parse(path: &str) -> Option<DatasetPath> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let [_, exchange, data_type, year, month, day, file] = segments.as_slice() else {
            return None;
        };
        Some(DatasetPath {
            exchange: percent_decode(exchange),
            data_type: percent_decode(data_type),
            year: (*year).to_owned(),
            month: (*month).to_owned(),
            day: (*day).to_owned(),
            file: percent_decode(file),
        })
    }

    /// The date, when it is a real `YYYY/MM/DD` with zero padding.
    pub(super) fn day(&self) -> Option<TradingDay> {
        let padded = self.year.len() == 4 && self.month.len() == 2 && self.day.len() == 2;
        match (self.year.parse::<i32>(), self.month.parse::<u32>(), self.day.parse::<u32>()) {
            (Ok(y), Ok(m), Ok(d)) if padded => TradingDay::from_ymd(y, m, d),
            _ => None,
        }
    }

    /// `YYYY/MM/DD` as sent, for messages.
    pub(super) fn date_text(&self) -> String {
        format!("{}/{}/{}", self.year, self.month, self.day)
    }

    /// The symbol: the file name without `.csv.gz` (the only format the datasets API serves).
    pub(super) fn symbol(&self) -> Option<&str> {
        self.file.strip_suffix(".csv.gz")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode_and_bad_ones_stay() {
        assert_eq!(percent_decode("%3F%3FUSDT.csv.gz"), "??USDT.csv.gz");
        assert_eq!(percent_decode("BTC-PERPETUAL.csv.gz"), "BTC-PERPETUAL.csv.gz");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn a_datasets_path_splits_into_its_parts() {
        let path = DatasetPath::parse("/v1/deribit/trades/2019/11/01/BTC%2DPERPETUAL.csv.gz").expect("seven segments");
        assert_eq!((path.exchange.as_str(), path.data_type.as_str()), ("deribit", "trades"));
        assert_eq!(path.day(), TradingDay::from_ymd(2019, 11, 1));
        assert_eq!(path.symbol(), Some("BTC-PERPETUAL"));
        assert_eq!(DatasetPath::parse("/v1/deribit/trades/2019/11/1/X.csv.gz").and_then(|p| p.day()), None);
        assert_eq!(
            DatasetPath::parse("/v1/deribit/trades/2019/11/01/X.csv").and_then(|p| p.symbol().map(str::len)),
            None
        );
        assert!(DatasetPath::parse("/v1/exchanges/deribit").is_none());
    }
}
