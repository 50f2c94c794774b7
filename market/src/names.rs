//! Exchange ids and dataset symbols, validated once.
//!
//! `Exchange` is a Tardis exchange id (`binance-futures`); `Symbol` is a Tardis dataset id, which is the
//! exchange's symbol upper-cased with `/` and `:` replaced by `-` (`btc/usdt:usdt` → `BTC-USDT-USDT`),
//! exactly as the official clients normalise it before building a download URL.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid exchange id {input:?}: expected lowercase letters, digits and '-', e.g. binance-futures")]
    Exchange { input: String },
    #[error("invalid symbol {input:?}: expected letters, digits and '-', '_', '.', e.g. BTCUSDT or BTC-PERPETUAL")]
    Symbol { input: String },
}

/// A Tardis exchange id such as `binance-futures`, `bitmex` or `deribit`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Exchange(String);

impl Exchange {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let ok = !input.is_empty()
            && input.len() <= 64
            && input.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !input.starts_with('-');
        if ok { Ok(Exchange(input.to_owned())) } else { Err(NameError::Exchange { input: input.to_owned() }) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Exchange {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Exchange::parse(&value)
    }
}

impl From<Exchange> for String {
    fn from(value: Exchange) -> Self {
        value.0
    }
}

impl std::str::FromStr for Exchange {
    type Err = NameError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Exchange::parse(input)
    }
}

/// A Tardis dataset symbol id: upper case, as it appears in dataset URLs and in the CSV `symbol` column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol(String);

impl Symbol {
    /// Normalises like the official clients (`/` and `:` to `-`, upper case), then validates.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let normalised: String =
            input.chars().map(|c| if c == '/' || c == ':' { '-' } else { c.to_ascii_uppercase() }).collect();
        let ok = !normalised.is_empty()
            && normalised.len() <= 128
            && normalised.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            // Symbols become path segments of URLs and files: no dot-segments.
            && !normalised.starts_with('.')
            && !normalised.contains("..");
        if ok { Ok(Symbol(normalised)) } else { Err(NameError::Symbol { input: input.to_owned() }) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Symbol {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Symbol::parse(&value)
    }
}

impl From<Symbol> for String {
    fn from(value: Symbol) -> Self {
        value.0
    }
}

impl std::str::FromStr for Symbol {
    type Err = NameError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Symbol::parse(input)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case("btcusdt", Some("BTCUSDT"))]
    #[case("btc/usdt:usdt", Some("BTC-USDT-USDT"))]
    #[case("BTC-PERPETUAL", Some("BTC-PERPETUAL"))]
    #[case("XBTUSD", Some("XBTUSD"))]
    #[case("", None)]
    #[case("BTC USDT", None)]
    #[case("../etc", None)]
    fn symbols_are_normalised_like_the_official_clients(#[case] input: &str, #[case] want: Option<&str>) {
        assert_eq!(Symbol::parse(input).ok().as_ref().map(Symbol::as_str), want);
    }

    #[rstest]
    #[case("binance-futures", true)]
    #[case("bitmex", true)]
    #[case("Binance", false)]
    #[case("", false)]
    #[case("-x", false)]
    #[case("a/b", false)]
    fn exchange_ids_are_lowercase_slugs(#[case] input: &str, #[case] ok: bool) {
        assert_eq!(Exchange::parse(input).is_ok(), ok);
    }

    #[test]
    fn names_show_and_convert_as_they_were_parsed() {
        let exchange = Exchange::parse("binance-futures").expect("ok");
        assert_eq!((exchange.as_str(), exchange.to_string()), ("binance-futures", "binance-futures".to_owned()));
        assert_eq!(String::from(exchange), "binance-futures");
        let symbol = Symbol::parse("BTC-PERPETUAL").expect("ok");
        assert_eq!((symbol.as_str(), symbol.to_string()), ("BTC-PERPETUAL", "BTC-PERPETUAL".to_owned()));
        assert_eq!(String::from(symbol), "BTC-PERPETUAL");
    }
}
