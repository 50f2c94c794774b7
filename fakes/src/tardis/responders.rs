//! The answers of the mock Tardis: dataset files, exchange details and instruments, with Tardis' auth
//! rules (the first day of every month is free; other days need `Authorization: Bearer <key>`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use market::{Exchange, Symbol, TradingDay};
use serde_json::Value;
use wiremock::{Request, Respond, ResponseTemplate};

use super::server::{Shared, TardisRequest, lock};
use super::wire;

/// Decodes `%XX` escapes of one path segment (invalid escapes are kept as they are).
fn percent_decode(segment: &str) -> String {
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

fn json_response(status: u16, body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(serde_json::to_vec(body).unwrap_or_default(), "application/json")
}

fn log(state: &Shared, request: &Request, status: u16) {
    let entry = TardisRequest {
        method: request.method.to_string(),
        path: request.url.path().to_owned(),
        query: request.url.query().map(str::to_owned),
        authorization: request.headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
        status,
    };
    lock(state).log.push(entry);
}

/// What the `Authorization` header amounts to.
#[derive(Clone, Copy)]
enum Auth {
    Valid,
    Missing,
    Invalid,
    NoAccess,
}

fn authorize(state: &Shared, request: &Request) -> Auth {
    let header = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").trim();
    // Clients send no header, an empty one, or "Bearer " without a key: all mean "no key".
    let key = header.strip_prefix("Bearer").map(str::trim).unwrap_or(header);
    let guard = lock(state);
    if key.is_empty() {
        Auth::Missing
    } else if key == guard.options.api_key {
        Auth::Valid
    } else if guard.options.keys_without_access.iter().any(|k| k == key) {
        Auth::NoAccess
    } else {
        Auth::Invalid
    }
}

fn auth_failure(auth: Auth) -> Option<(u16, Value)> {
    match auth {
        Auth::Valid => None,
        Auth::Missing => {
            Some((401, wire::error(401, "Missing API key: provide it as 'Authorization: Bearer YOUR_API_KEY' header")))
        }
        Auth::Invalid => Some((401, wire::error(401, "Invalid API key"))),
        Auth::NoAccess => Some((403, wire::error(403, "API key does not have access to this exchange or date range"))),
    }
}

/// Generated files, kept for repeated requests (reruns, concurrent workers). Bounded.
type FileCache = Mutex<HashMap<(Exchange, Symbol, TradingDay, u64), Arc<Vec<u8>>>>;
const CACHE_FILES: usize = 64;

fn cache() -> &'static FileCache {
    static CACHE: OnceLock<FileCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// `GET /v1/{exchange}/{dataType}/{YYYY}/{MM}/{DD}/{symbol}.csv.gz` (query strings such as
/// `?retryAttempt=N` are ignored, as Tardis does).
pub(super) struct DatasetsResponder(pub(super) Shared);

impl DatasetsResponder {
    fn answer(&self, request: &Request) -> Result<Vec<u8>, (u16, Value)> {
        let not_found = |message: String| (404, wire::error(404, &message));
        let segments: Vec<&str> = request.url.path().trim_start_matches('/').split('/').collect();
        let [_, exchange, data_type, year, month, day, file] = segments.as_slice() else {
            return Err(not_found("Not found".to_owned()));
        };
        let (generator, exported_until, available_from) = {
            let guard = lock(&self.0);
            (guard.generator.clone(), guard.options.exported_until, guard.options.available_from)
        };
        let known = Exchange::parse(exchange).ok().filter(|e| generator.universe().exchange(e).is_some());
        let Some(exchange) = known else {
            return Err(not_found(format!("Unknown exchange '{exchange}'")));
        };
        let parsed = match (year.parse::<i32>(), month.parse::<u32>(), day.parse::<u32>()) {
            (Ok(y), Ok(m), Ok(d)) if year.len() == 4 && month.len() == 2 && day.len() == 2 => {
                TradingDay::from_ymd(y, m, d)
            }
            _ => None,
        };
        let Some(day) = parsed else {
            return Err(not_found(format!("Invalid date {year}/{month}/{day}")));
        };
        if !day.is_first_of_month() {
            auth_failure(authorize(&self.0, request)).map_or(Ok(()), Err)?;
        }
        if *data_type != "trades" {
            return Err(not_found(format!("Data type '{data_type}' is not available for {exchange}")));
        }
        let file = percent_decode(file);
        let Some(symbol_text) = file.strip_suffix(".csv.gz") else {
            return Err(not_found(format!("Unknown file '{file}': expected SYMBOL.csv.gz")));
        };
        // Dataset ids are upper case; the API does not normalise them for the client.
        let symbol = Symbol::parse(symbol_text).ok().filter(|s| s.as_str() == symbol_text);
        let Some(symbol) = symbol.filter(|s| generator.universe().symbol(&exchange, s).is_some()) else {
            return Err(not_found(format!("Unknown symbol '{symbol_text}' for {exchange}")));
        };
        if available_from.is_some_and(|first| day < first) {
            return Err(not_found(format!(
                "Data for {day} is not available (this server starts at {})",
                available_from.map(|d| d.to_string()).unwrap_or_default()
            )));
        }
        if day.end_us() > exported_until.timestamp_micros() {
            return Err(not_found(format!(
                "Data for {day} is not available yet (exported until {})",
                wire::iso(exported_until)
            )));
        }
        let key = (exchange.clone(), symbol.clone(), day, generator.seed());
        if let Some(bytes) = cache().lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return Ok(bytes.as_ref().clone());
        }
        let Some(bytes) = generator.trades_csv_gz(&exchange, &symbol, day) else {
            return Err(not_found(format!("{symbol} of {exchange} is not available on {day}")));
        };
        let mut cached = cache().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cached.len() >= CACHE_FILES {
            cached.clear();
        }
        cached.insert(key, Arc::new(bytes.clone()));
        Ok(bytes)
    }
}

impl Respond for DatasetsResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        match self.answer(request) {
            Ok(bytes) => {
                log(&self.0, request, 200);
                ResponseTemplate::new(200).set_body_raw(bytes, "application/gzip")
            }
            Err((status, body)) => {
                log(&self.0, request, status);
                json_response(status, &body)
            }
        }
    }
}

/// `GET /v1/exchanges` and `GET /v1/exchanges/{exchange}` (no key needed).
pub(super) struct ExchangesResponder(pub(super) Shared);

impl Respond for ExchangesResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let (generator, exported_until) = {
            let guard = lock(&self.0);
            (guard.generator.clone(), guard.options.exported_until)
        };
        let segments: Vec<&str> = request.url.path().trim_matches('/').split('/').collect();
        let (status, body) = match segments.as_slice() {
            [_, _] => {
                (200, Value::Array(generator.universe().exchanges().iter().map(wire::exchange_summary).collect()))
            }
            [_, _, name] => {
                let spec = Exchange::parse(name).ok().and_then(|e| generator.universe().exchange(&e).cloned());
                match spec {
                    Some(spec) => (200, wire::exchange_details(&spec, exported_until)),
                    None => (404, wire::error(404, &format!("Unknown exchange '{name}'"))),
                }
            }
            _ => (404, wire::error(404, "Not found")),
        };
        log(&self.0, request, status);
        json_response(status, &body)
    }
}

/// `GET /v1/instruments/{exchange}` and `/v1/instruments/{exchange}/{symbol}` (key required).
pub(super) struct InstrumentsResponder(pub(super) Shared);

impl Respond for InstrumentsResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let generator = lock(&self.0).generator.clone();
        let segments: Vec<String> = request.url.path().trim_matches('/').split('/').map(percent_decode).collect();
        let (status, body) = if let Some(failure) = auth_failure(authorize(&self.0, request)) {
            failure
        } else {
            let spec = Exchange::parse(&segments[2]).ok().and_then(|e| generator.universe().exchange(&e).cloned());
            match (spec, segments.get(3)) {
                (None, _) => (404, wire::error(404, &format!("Unknown exchange '{}'", segments[2]))),
                (Some(spec), None) => (200, Value::Array(spec.symbols.iter().map(wire::instrument).collect())),
                (Some(spec), Some(id)) => {
                    match spec.symbols.iter().find(|s| &s.instrument.id == id || s.instrument.dataset_id.as_str() == id)
                    {
                        Some(symbol) => (200, wire::instrument(symbol)),
                        None => (404, wire::error(404, &format!("Unknown instrument '{id}' for {}", spec.exchange))),
                    }
                }
            }
        };
        log(&self.0, request, status);
        json_response(status, &body)
    }
}

/// Everything else.
pub(super) struct NotFoundResponder(pub(super) Shared);

impl Respond for NotFoundResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        log(&self.0, request, 404);
        json_response(404, &wire::error(404, "Not found"))
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_escapes_decode_and_bad_ones_stay() {
        assert_eq!(percent_decode("%3F%3FUSDT.csv.gz"), "??USDT.csv.gz");
        assert_eq!(percent_decode("BTC-PERPETUAL.csv.gz"), "BTC-PERPETUAL.csv.gz");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
