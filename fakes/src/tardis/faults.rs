//! Fault injection for the mock Tardis: "answer the next N matching requests with this fault" plans, and
//! what each fault does to an answer.
//!
//! A status fault replaces the answer before anything is looked at (as a rate limiter or a CDN in front of
//! Tardis would); body faults and delays spoil the answer the mock would have given. It cannot break a
//! connection mid-body (wiremock sends whole bodies with a correct `Content-Length`): a truncated gzip here
//! is a complete HTTP response whose body is the first half of the file.

use std::time::Duration;

use fixtures::DataType;
use market::TradingDay;

use super::paths::DatasetPath;

/// What a matching request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This status and body instead of the answer; `Retry-After: <seconds>` when `retry_after` is set. A body
    /// starting with `{` is sent as JSON, anything else as text.
    Status { code: u16, retry_after: Option<u64>, body: String },
    /// The answer's status and headers with only the first half of its body.
    TruncatedGzip,
    /// The answer with one byte in the middle of its body inverted (same length).
    CorruptGzip,
    /// 200 with an empty body: zero bytes, not even an empty gzip.
    EmptyBody,
    /// The answer, sent after this delay.
    Delay(Duration),
}

impl Fault {
    /// 429 with `Retry-After: <seconds>` and Tardis' JSON error body.
    pub fn rate_limited(retry_after_s: u64) -> Fault {
        Fault::Status {
            code: 429,
            retry_after: Some(retry_after_s),
            body: error_body(429, "Too many requests, please slow down and retry later"),
        }
    }

    /// A 5xx (500, 502, 503, ...) with a JSON error body.
    pub fn server_error(code: u16) -> Fault {
        Fault::Status { code, retry_after: None, body: error_body(code, "Internal server error, please retry") }
    }

    /// The known transient 400 whose body mentions "ISO 8601 format" (clients retry exactly this 400).
    pub fn iso_8601_bad_request() -> Fault {
        Fault::Status {
            code: 400,
            retry_after: None,
            body: error_body(400, "Invalid 'from' param, provide date in ISO 8601 format"),
        }
    }

    /// 403, as free-tier throttling gives even on free days.
    pub fn forbidden() -> Fault {
        Fault::Status { code: 403, retry_after: None, body: error_body(403, "Forbidden") }
    }

    /// How the request log names it.
    pub(super) fn label(&self) -> String {
        match self {
            Fault::Status { code, retry_after: Some(seconds), .. } => format!("status {code}, retry after {seconds} s"),
            Fault::Status { code, retry_after: None, .. } => format!("status {code}"),
            Fault::TruncatedGzip => "truncated gzip".to_owned(),
            Fault::CorruptGzip => "corrupt gzip".to_owned(),
            Fault::EmptyBody => "empty body".to_owned(),
            Fault::Delay(delay) => format!("delay {} ms", delay.as_millis()),
        }
    }
}

fn error_body(code: u16, message: &str) -> String {
    serde_json::json!({"code": code, "message": message}).to_string()
}

/// Which datasets requests a plan applies to; `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetMatch {
    pub exchange: Option<String>,
    /// The data type as sent (`trades`, or anything a client might send).
    pub data_type: Option<String>,
    /// The decoded symbol as sent (`BTCUSDT`, `PERPETUALS`).
    pub symbol: Option<String>,
    pub day: Option<TradingDay>,
}

impl DatasetMatch {
    /// Every datasets request.
    pub fn any() -> DatasetMatch {
        DatasetMatch::default()
    }

    /// One file.
    pub fn file(exchange: &str, data_type: DataType, symbol: &str, day: TradingDay) -> DatasetMatch {
        DatasetMatch {
            exchange: Some(exchange.to_owned()),
            data_type: Some(data_type.as_str().to_owned()),
            symbol: Some(symbol.to_owned()),
            day: Some(day),
        }
    }

    fn matches(&self, path: &DatasetPath) -> bool {
        let same = |want: &Option<String>, got: Option<&str>| want.as_deref().is_none_or(|w| Some(w) == got);
        same(&self.exchange, Some(&path.exchange))
            && same(&self.data_type, Some(&path.data_type))
            && same(&self.symbol, path.symbol())
            && self.day.is_none_or(|day| path.day() == Some(day))
    }
}

/// Which requests a plan applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultTarget {
    /// Every request, metadata included.
    Any,
    /// Requests whose path (as sent, without the query) starts with this.
    PathPrefix(String),
    /// Datasets requests matching every set field.
    Dataset(DatasetMatch),
}

impl From<&str> for FaultTarget {
    fn from(prefix: &str) -> Self {
        FaultTarget::PathPrefix(prefix.to_owned())
    }
}

impl From<DatasetMatch> for FaultTarget {
    fn from(dataset: DatasetMatch) -> Self {
        FaultTarget::Dataset(dataset)
    }
}

/// One plan: the next `remaining` requests matching `target` get `fault`; with `every` > 1, only every
/// `every`-th matching request does (`seen` counts them), and the others pass it by.
#[derive(Debug, Clone)]
pub(super) struct FaultPlan {
    pub(super) target: FaultTarget,
    pub(super) remaining: usize,
    pub(super) fault: Fault,
    pub(super) every: usize,
    pub(super) seen: usize,
}

/// Takes one use of the first plan matching a request, first come, first served (a plan answering every
/// N-th request counts the others and lets later plans have them).
pub(super) fn take(plans: &mut Vec<FaultPlan>, path: &str, dataset: Option<&DatasetPath>) -> Option<Fault> {
    let index = plans.iter_mut().position(|plan| {
        let matches = match &plan.target {
            FaultTarget::Any => true,
            FaultTarget::PathPrefix(prefix) => path.starts_with(prefix.as_str()),
            FaultTarget::Dataset(want) => dataset.is_some_and(|d| want.matches(d)),
        };
        if !matches {
            return false;
        }
        plan.seen += 1;
        plan.seen.is_multiple_of(plan.every.max(1))
    })?;
    let plan = &mut plans[index];
    plan.remaining -= 1;
    let fault = plan.fault.clone();
    if plan.remaining == 0 {
        plans.remove(index);
    }
    Some(fault)
}

/// The body a body fault leaves of `body`.
pub(super) fn spoil(fault: &Fault, body: &mut Vec<u8>) {
    match fault {
        Fault::TruncatedGzip => body.truncate(body.len() / 2),
        Fault::CorruptGzip => {
            let middle = body.len() / 2;
            if let Some(byte) = body.get_mut(middle) {
                *byte = !*byte;
            }
        }
        Fault::EmptyBody => body.clear(),
        Fault::Status { .. } | Fault::Delay(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(target: impl Into<FaultTarget>, remaining: usize) -> FaultPlan {
        FaultPlan { target: target.into(), remaining, fault: Fault::server_error(503), every: 1, seen: 0 }
    }

    #[test]
    fn a_plan_for_every_nth_request_lets_the_others_through_to_later_plans() {
        let mut plans = vec![
            FaultPlan { every: 3, ..plan(FaultTarget::Any, 2) },
            FaultPlan { fault: Fault::EmptyBody, ..plan("/v1/exchanges", 1) },
        ];
        let paths = ["/v1/instruments/bitmex", "/v1/exchanges/bitmex", "/v1/x", "/v1/x", "/v1/x", "/v1/x", "/v1/x"];
        let answers: Vec<Option<Fault>> = paths.iter().map(|path| take(&mut plans, path, None)).collect();
        assert_eq!(
            answers,
            [
                None,
                Some(Fault::EmptyBody),
                Some(Fault::server_error(503)),
                None,
                None,
                Some(Fault::server_error(503)),
                None
            ]
        );
        assert!(plans.is_empty());
    }

    #[test]
    fn plans_are_used_up_in_order_and_only_by_matching_requests() {
        let day = TradingDay::from_ymd(2024, 6, 2).expect("valid");
        let file = DatasetPath::parse("/v1/bitmex/trades/2024/06/02/XBTUSD.csv.gz").expect("a datasets path");
        let other = DatasetPath::parse("/v1/bitmex/quotes/2024/06/02/XBTUSD.csv.gz").expect("a datasets path");
        let mut plans = vec![plan(DatasetMatch::file("bitmex", DataType::Trades, "XBTUSD", day), 2), plan("/v1/ex", 1)];
        assert!(take(&mut plans, "/v1/bitmex/quotes/2024/06/02/XBTUSD.csv.gz", Some(&other)).is_none());
        assert!(take(&mut plans, "/v1/bitmex/trades/2024/06/02/XBTUSD.csv.gz", Some(&file)).is_some());
        assert!(take(&mut plans, "/v1/bitmex/trades/2024/06/02/XBTUSD.csv.gz", Some(&file)).is_some());
        assert!(take(&mut plans, "/v1/bitmex/trades/2024/06/02/XBTUSD.csv.gz", Some(&file)).is_none());
        assert!(take(&mut plans, "/v1/exchanges/bitmex", None).is_some());
        assert!(plans.is_empty());
    }

    #[test]
    fn body_faults_spoil_the_body_and_keep_gzip_magic_where_they_can() {
        let mut body = vec![0x1f, 0x8b, 8, 0, 1, 2, 3, 4];
        spoil(&Fault::TruncatedGzip, &mut body);
        assert_eq!(body, [0x1f, 0x8b, 8, 0]);
        spoil(&Fault::CorruptGzip, &mut body);
        assert_eq!(body, [0x1f, 0x8b, !8, 0]);
        spoil(&Fault::EmptyBody, &mut body);
        assert!(body.is_empty());
    }
}
