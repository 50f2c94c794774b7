//! The answers of the mock Tardis: dataset files, exchange details and instruments, with Tardis' auth
//! rules (the first day of every month is free; other days, and instruments always, need
//! `Authorization: Bearer <key>`), fault plans applied on the way out, and every answer logged.

use std::sync::Arc;

use serde_json::Value;
use wiremock::{Request, Respond, ResponseTemplate};

use super::faults::{self, Fault};
use super::filter::InstrumentFilter;
use super::paths::{DatasetPath, percent_decode};
use super::server::{Shared, TardisRequest, lock};
use super::source::{DatasetContext, Source};
use super::wire;

/// An answer before faults are applied.
struct Answer {
    status: u16,
    body: Vec<u8>,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Answer {
        Answer {
            status,
            body: serde_json::to_vec(body).unwrap_or_default(),
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    fn error(status: u16, message: &str) -> Answer {
        Answer::json(status, &wire::error(status, message))
    }
}

/// Which route a mock serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// `GET /v1/{exchange}/{dataType}/{YYYY}/{MM}/{DD}/{symbol}.csv.gz` (query strings such as
    /// `?retryAttempt=N` are ignored, as Tardis does).
    Datasets,
    /// `GET /v1/exchanges` and `GET /v1/exchanges/{exchange}` (no key needed).
    Exchanges,
    /// `GET /v1/instruments/{exchange}[?filter=..]` and `/v1/instruments/{exchange}/{symbol}` (key required).
    Instruments,
    /// Everything else.
    NotFound,
}

pub(super) struct Responder {
    pub(super) state: Shared,
    pub(super) route: Route,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path();
        let dataset = (self.route == Route::Datasets).then(|| DatasetPath::parse(path)).flatten();
        let fault = faults::take(&mut lock(&self.state).faults, path, dataset.as_ref());
        let mut answer = match &fault {
            Some(Fault::Status { code, retry_after, body }) => {
                let content_type = if body.starts_with('{') { "application/json" } else { "text/plain" };
                let headers = retry_after.iter().map(|seconds| ("Retry-After", seconds.to_string())).collect();
                Answer { status: *code, body: body.clone().into_bytes(), content_type, headers }
            }
            _ => self.answer(request, dataset.as_ref()),
        };
        if let Some(fault) = &fault {
            faults::spoil(fault, &mut answer.body);
            if *fault == Fault::EmptyBody {
                answer.status = 200;
            }
        }
        log(&self.state, request, answer.status, fault.as_ref());
        let mut template = ResponseTemplate::new(answer.status).set_body_raw(answer.body, answer.content_type);
        for (name, value) in answer.headers {
            template = template.insert_header(name, value.as_str());
        }
        if let Some(Fault::Delay(delay)) = fault {
            template = template.set_delay(delay);
        }
        template
    }
}

impl Responder {
    fn answer(&self, request: &Request, dataset: Option<&DatasetPath>) -> Answer {
        match self.route {
            Route::Datasets => match dataset {
                Some(dataset) => self.dataset(request, dataset),
                None => Answer::error(404, "Not found"),
            },
            Route::Exchanges => self.exchanges(request),
            Route::Instruments => self.instruments(request),
            Route::NotFound => Answer::error(404, "Not found"),
        }
    }

    /// What a request needs from the shared state, taken without holding the lock while answering.
    fn snapshot(&self) -> (Arc<Source>, super::TardisOptions, Option<chrono::DateTime<chrono::Utc>>) {
        let guard = lock(&self.state);
        (guard.source.clone(), guard.options.clone(), guard.exported_until_override)
    }

    fn dataset(&self, request: &Request, path: &DatasetPath) -> Answer {
        let (source, options, exported_until_override) = self.snapshot();
        if !source.knows_exchange(&path.exchange) {
            return Answer::error(404, &format!("Unknown exchange '{}'", path.exchange));
        }
        let Some(day) = path.day() else {
            return Answer::error(404, &format!("Invalid date {}", path.date_text()));
        };
        if !day.is_first_of_month()
            && let Some((status, message)) = auth_failure(authorize(&options, request))
        {
            return Answer::error(status, message);
        }
        let context = DatasetContext { options: &options, exported_until_override };
        match source.dataset(path, day, &context) {
            Ok(bytes) => {
                let mut headers = Vec::new();
                if options.content_encoding_gzip {
                    headers.push(("Content-Encoding", "gzip".to_owned()));
                }
                Answer { status: 200, body: bytes, content_type: "application/gzip", headers }
            }
            Err((status, message)) => Answer::error(status, &message),
        }
    }

    fn exchanges(&self, request: &Request) -> Answer {
        let (source, options, exported_until_override) = self.snapshot();
        let context = DatasetContext { options: &options, exported_until_override };
        let segments: Vec<String> = request.url.path().trim_matches('/').split('/').map(percent_decode).collect();
        match segments.as_slice() {
            [_, _] => {
                let entries = source.exchange_entries(&context);
                Answer::json(200, &Value::Array(entries.iter().map(wire::exchange_summary).collect()))
            }
            [_, _, name] => match source.exchange_entry(name, &context) {
                Some(entry) => {
                    let incidents = market::Exchange::parse(name)
                        .ok()
                        .and_then(|e| options.incident_reports.get(&e))
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    Answer::json(200, &wire::exchange_details(&entry, incidents))
                }
                None => Answer::error(404, &format!("Unknown exchange '{name}'")),
            },
            _ => Answer::error(404, "Not found"),
        }
    }

    fn instruments(&self, request: &Request) -> Answer {
        let (source, options, _) = self.snapshot();
        if let Some((status, message)) = auth_failure(authorize(&options, request)) {
            return Answer::error(status, message);
        }
        let segments: Vec<String> = request.url.path().trim_matches('/').split('/').map(percent_decode).collect();
        let (exchange, id) = match segments.as_slice() {
            [_, _, exchange] => (exchange, None),
            [_, _, exchange, id] => (exchange, Some(id)),
            _ => return Answer::error(404, "Not found"),
        };
        let instruments = match source.instruments(exchange) {
            Ok(instruments) => instruments,
            Err((status, message)) => return Answer::error(status, &message),
        };
        let Some(id) = id else {
            let filter = match request.url.query_pairs().find(|(key, _)| key == "filter") {
                Some((_, text)) => match InstrumentFilter::parse(&text) {
                    Ok(filter) => filter,
                    Err(reason) => return Answer::error(400, &format!("Invalid 'filter' param: {reason}")),
                },
                None => InstrumentFilter::default(),
            };
            let kept: Vec<Value> = instruments.into_iter().filter(|i| filter.matches(i)).collect();
            return Answer::json(200, &Value::Array(kept));
        };
        // The exchange-native id, as Tardis documents; the dataset id is accepted too.
        let field = |i: &Value, key: &str| i.get(key).and_then(Value::as_str).map(str::to_owned);
        let found = instruments
            .iter()
            .find(|i| field(i, "id").as_ref() == Some(id))
            .or_else(|| instruments.iter().find(|i| field(i, "datasetId").as_ref() == Some(id)));
        match found {
            Some(instrument) => Answer::json(200, instrument),
            None => Answer::error(404, &format!("Unknown instrument '{id}' for {exchange}")),
        }
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn log(state: &Shared, request: &Request, status: u16, fault: Option<&Fault>) {
    let entry = TardisRequest {
        method: request.method.to_string(),
        path: request.url.path().to_owned(),
        query: request.url.query().map(str::to_owned),
        authorization: header(request, "authorization"),
        user_agent: header(request, "user-agent"),
        accept_encoding: header(request, "accept-encoding"),
        status,
        fault: fault.map(Fault::label),
        at: std::time::Instant::now(),
    };
    lock(state).log.push(entry);
}

/// What the `Authorization` header amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Valid,
    Missing,
    Invalid,
    NoAccess,
}

fn authorize(options: &super::TardisOptions, request: &Request) -> Auth {
    let header = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").trim();
    // Clients send no header, an empty one, or "Bearer " without a key: all mean "no key".
    let key = header.strip_prefix("Bearer").map(str::trim).unwrap_or(header);
    if key.is_empty() {
        Auth::Missing
    } else if key == options.api_key {
        Auth::Valid
    } else if options.keys_without_access.iter().any(|k| k == key) {
        Auth::NoAccess
    } else {
        Auth::Invalid
    }
}

fn auth_failure(auth: Auth) -> Option<(u16, &'static str)> {
    match auth {
        Auth::Valid => None,
        Auth::Missing => Some((401, "Missing API key: provide it as 'Authorization: Bearer YOUR_API_KEY' header")),
        Auth::Invalid => Some((401, "Invalid API key")),
        Auth::NoAccess => Some((403, "API key does not have access to this exchange or date range")),
    }
}
