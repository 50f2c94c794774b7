//! The nightly message for Slack: a pure builder (Block Kit blocks with a plain `text` fallback, and the
//! same content as plain text for terminals and logs) and a poster for incoming webhooks.
//!
//! The poster retries what is transient (HTTP 5xx, 429 with `Retry-After`, network errors) with the
//! workspace's one retry mechanism (`pipeline::retry`), and gives up at once on anything else (a 4xx means the
//! webhook or the payload is wrong; repeating it changes nothing). The webhook URL is a secret (its path
//! is the credential): it has no `Display`, its `Debug` hides it, and every error text is built without
//! it and scrubbed of it again before it leaves this module. What goes into the message is `nightly.rs`'s
//! business; this module only lays it out.

use std::error::Error as _;
use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use market::checks::Status;
use pipeline::report::{TOP_CHECKS, icon};
use pipeline::retry::{self, Attempt, GaveUp, RetryPolicy};
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use crate::nightly::{Nightly, TOP_TESTS, TestRun, human_duration};

/// Retries of a post: 5 attempts, 1 s doubling to 30 s, a `Retry-After` of up to 60 s honoured.
pub const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(30),
    max_retry_after: Duration::from_secs(60),
};
/// One request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack's limits: a header's text, a section's text.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
/// Characters of an error body kept in an error message.
const BODY_MAX: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("the Slack webhook URL is not usable: {reason}")]
    InvalidUrl { reason: String },
    #[error("cannot build the HTTP client: {reason}")]
    Client { reason: String },
    #[error("slack rejected the message: HTTP {status} {body}")]
    Rejected { status: u16, body: String },
    #[error("slack asked to wait {retry_after_s} s, more than the {cap_s} s this client waits")]
    RateLimited { retry_after_s: u64, cap_s: u64 },
    #[error("slack did not accept the message after {attempts} attempts; the last: {last}")]
    GaveUp { attempts: u32, last: String },
}

/// An incoming-webhook URL. It is never printed: no `Display`, and `Debug` shows `Webhook(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook(Url);

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Webhook(***)")
    }
}

impl Webhook {
    /// An `https` URL, or `http` to a loopback address (a local fake): plain HTTP to anywhere else would
    /// send the credential in clear. Errors never quote the URL.
    pub fn parse(text: &str) -> Result<Webhook, SlackError> {
        let url = Url::parse(text.trim()).map_err(|e| SlackError::InvalidUrl { reason: e.to_string() })?;
        let loopback = match url.host() {
            Some(url::Host::Domain(domain)) => domain == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err(SlackError::InvalidUrl { reason: "it has no host".to_owned() }),
        };
        match url.scheme() {
            "https" => Ok(Webhook(url)),
            "http" if loopback => Ok(Webhook(url)),
            "http" => {
                Err(SlackError::InvalidUrl { reason: "plain http is only allowed to a loopback address".to_owned() })
            }
            other => Err(SlackError::InvalidUrl { reason: format!("scheme {other:?} is not http(s)") }),
        }
    }

    /// `text` with the URL, and its secret path, replaced by `[webhook]`.
    fn redact(&self, text: &str) -> String {
        let mut out = text.replace(self.0.as_str(), "[webhook]");
        let path = &self.0[url::Position::BeforePath..];
        if path.len() > 1 {
            out = out.replace(path, "[webhook]");
        }
        out
    }
}

/// Posts payloads to a webhook, with retries.
#[derive(Debug, Clone)]
pub struct Poster {
    client: reqwest::Client,
    policy: RetryPolicy,
}

impl Poster {
    pub fn new(policy: RetryPolicy) -> Result<Poster, SlackError> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| SlackError::Client { reason: e.without_url().to_string() })?;
        Ok(Poster { client, policy })
    }

    /// Posts `payload`; returns the number of attempts it took.
    pub async fn post(&self, webhook: &Webhook, payload: &Value) -> Result<u32, SlackError> {
        let posted = retry::retry(&self.policy, "slack post", |attempt| async move {
            let response = match self.client.post(webhook.0.clone()).json(payload).send().await {
                Ok(response) => response,
                Err(error) => return Err(Attempt::retry(webhook.redact(&error_chain(&error.without_url())))),
            };
            let status = response.status();
            if status.is_success() {
                return Ok(attempt);
            }
            let after = retry::retry_after(response.headers());
            let body = shorten(&webhook.redact(response.text().await.unwrap_or_default().trim()), BODY_MAX);
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                Err(Attempt::Retry { reason: format!("HTTP {} {body}", status.as_u16()), after })
            } else {
                Err(Attempt::Final(SlackError::Rejected { status: status.as_u16(), body }))
            }
        })
        .await;
        posted.map_err(|gave_up| match gave_up {
            GaveUp::Final(error) => error,
            GaveUp::Exhausted { attempts, last } => SlackError::GaveUp { attempts, last },
            GaveUp::WaitTooLong { requested, cap, .. } => {
                SlackError::RateLimited { retry_after_s: requested.as_secs(), cap_s: cap.as_secs() }
            }
        })
    }
}

/// An error and its causes, `: `-separated (reqwest's own message says little without them).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Slack's mrkdwn treats these three as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The facts of the message, without markup; both renderings are built from them.
struct Facts {
    headline: String,
    tests: String,
    harness: String,
    defects: Option<String>,
    /// (step name, "✅ 34 of 34 met, ...")
    steps: Vec<(&'static str, String)>,
    /// (status, family, "1.0000 (fail < 0.95, warn < 0.99)")
    scores: Vec<(Status, &'static str, String)>,
    checks_title: String,
    /// (status, check id, "fail — 1440/17280 failed")
    checks: Vec<(Status, String, String)>,
    failed_tests_title: Option<String>,
    failed_tests: Vec<String>,
    duration: Option<String>,
    location: Option<String>,
}

fn tests_line(run: Option<&TestRun>) -> String {
    let Some(run) = run else { return "not run".to_owned() };
    let exit = run.exit_code.filter(|code| *code != 0).map(|code| format!(" (exit {code})")).unwrap_or_default();
    match &run.summary {
        Ok(s) => {
            let flaky = if s.flaky > 0 { format!(", {} flaky", s.flaky) } else { String::new() };
            let took = s.duration.map(|d| format!(" in {}", human_duration(d))).unwrap_or_default();
            format!(
                "{} {} failed, {} passed, {} skipped{flaky} of {}{took}{exit}",
                icon(run.status()),
                s.failed,
                s.passed,
                s.skipped,
                s.total()
            )
        }
        Err(reason) => format!("{} no test results: {reason}{exit}", icon(run.status())),
    }
}

fn facts(nightly: &Nightly) -> Facts {
    let status = nightly.status();
    let date = nightly.date().map_or_else(|| "date unknown".to_owned(), |d| d.to_string());
    let headline = format!("{} Nightly {} — {date}", icon(status), status.as_str().to_uppercase());
    let harness = match &nightly.harness {
        Ok(r) => format!(
            "{} {} (seed {}, {} check{} in {})",
            icon(r.status),
            r.status.as_str(),
            r.sections.seed,
            r.checks.len(),
            if r.checks.len() == 1 { "" } else { "s" },
            human_duration(Duration::from_millis(u64::try_from(r.sections.duration_ms).unwrap_or(0)))
        ),
        Err(reason) => format!("{} no report: {reason}", icon(Status::Error)),
    };
    let defects = (!nightly.defects.is_empty()).then(|| {
        let caught = nightly.defects.iter().filter(|d| d.caught()).count();
        let all = caught == nightly.defects.len();
        let each: Vec<String> = nightly
            .defects
            .iter()
            .map(|d| match &d.outcome {
                _ if d.caught() => format!("{} caught", d.defect),
                Ok(status) => format!("{} MISSED (harness said {})", d.defect, status.as_str()),
                Err(reason) => format!("{} MISSED ({reason})", d.defect),
            })
            .collect();
        let mark = icon(if all { Status::Pass } else { Status::Fail });
        format!("{mark} {caught} of {} caught: {}", nightly.defects.len(), each.join(", "))
    });
    let (mut scores, mut checks_title, mut checks) = (Vec::new(), String::new(), Vec::new());
    if let Ok(r) = &nightly.harness {
        for row in r.score_rows() {
            let text =
                format!("{:.4} (fail < {}, warn < {})", row.score, row.threshold.fail_below, row.threshold.warn_below);
            scores.push((row.status, row.family.as_str(), text));
        }
        let not_passing = r.not_passing();
        checks_title = if not_passing.is_empty() {
            format!("All {} checks pass.", r.checks.len())
        } else {
            format!("Failing checks (top {} of {}):", TOP_CHECKS.min(not_passing.len()), not_passing.len())
        };
        checks = not_passing
            .iter()
            .take(TOP_CHECKS)
            .map(|c| (c.status, c.id.clone(), format!("{} — {}/{} failed", c.status.as_str(), c.failed, c.evaluated)))
            .collect();
    }
    let failures = nightly.tests.as_ref().and_then(|t| t.summary.as_ref().ok()).map(|s| &s.failures);
    let (failed_tests_title, failed_tests) = match failures {
        Some(f) if !f.is_empty() => (
            Some(format!("Failed tests (first {} of {}):", TOP_TESTS.min(f.len()), f.len())),
            f.iter().take(TOP_TESTS).cloned().collect(),
        ),
        _ => (None, Vec::new()),
    };
    Facts {
        headline,
        tests: tests_line(nightly.tests.as_ref()),
        harness,
        defects,
        steps: nightly.steps.iter().map(|s| (s.name, format!("{} {}", icon(s.status), s.summary))).collect(),
        scores,
        checks_title,
        checks,
        failed_tests_title,
        failed_tests,
        duration: nightly.duration.map(human_duration),
        location: nightly.report_location.clone(),
    }
}

/// The message as plain text, for a terminal or a log (what `harness notify` prints).
pub fn text(nightly: &Nightly) -> String {
    let f = facts(nightly);
    let mut out = String::new();
    let _ = writeln!(out, "{}", f.headline);
    let _ = writeln!(out, "Tests:    {}", f.tests);
    let _ = writeln!(out, "Harness:  {}", f.harness);
    if let Some(defects) = &f.defects {
        let _ = writeln!(out, "Defects:  {defects}");
    }
    for (name, line) in &f.steps {
        let _ = writeln!(out, "{name}: {line}");
    }
    for (i, (status, name, value)) in f.scores.iter().enumerate() {
        let label = if i == 0 { "Scores:" } else { "" };
        let _ = writeln!(out, "{label:<10}{} {name:<13}{value}", icon(*status));
    }
    if !f.checks_title.is_empty() {
        let _ = writeln!(out, "{}", f.checks_title);
    }
    for (status, id, rest) in &f.checks {
        let _ = writeln!(out, "  {} {id} {rest}", icon(*status));
    }
    if let Some(title) = &f.failed_tests_title {
        let _ = writeln!(out, "{title}");
        for name in &f.failed_tests {
            let _ = writeln!(out, "  {name}");
        }
    }
    if let Some(duration) = &f.duration {
        let _ = writeln!(out, "Duration: {duration}");
    }
    if let Some(location) = &f.location {
        let _ = writeln!(out, "Report:   {location}");
    }
    out
}

/// The webhook payload: a one-line `text` (what notifications and old clients show) and Block Kit blocks.
pub fn payload(nightly: &Nightly) -> Value {
    let f = facts(nightly);
    let mut fallback = format!("{}: tests {}; harness {}", f.headline, f.tests, f.harness);
    if let Some(defects) = &f.defects {
        let _ = write!(fallback, "; defects {defects}");
    }
    for (name, line) in &f.steps {
        let _ = write!(fallback, "; {} {line}", name.to_lowercase());
    }
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": shorten(&f.headline, HEADER_MAX), "emoji": true}
    })];
    let mut summary = format!("*Tests* {}\n*Harness* {}", escape(&f.tests), escape(&f.harness));
    if let Some(defects) = &f.defects {
        let _ = write!(summary, "\n*Defect self-check* {}", escape(defects));
    }
    for (name, line) in &f.steps {
        let _ = write!(summary, "\n*{name}* {}", escape(line));
    }
    blocks.push(section(&summary));
    if !f.scores.is_empty() {
        let fields: Vec<Value> = f
            .scores
            .iter()
            .map(|(status, name, value)| {
                json!({"type": "mrkdwn", "text": format!("*{name}*\n{} {}", icon(*status), escape(value))})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if !f.checks_title.is_empty() {
        let mut checks = format!("*{}*", escape(&f.checks_title));
        for (status, id, rest) in &f.checks {
            let _ = write!(checks, "\n{} `{}` {}", icon(*status), escape(id), escape(rest));
        }
        blocks.push(section(&checks));
    }
    if let Some(title) = &f.failed_tests_title {
        let mut tests = format!("*{}*", escape(title));
        for name in &f.failed_tests {
            let _ = write!(tests, "\n• `{}`", escape(name));
        }
        blocks.push(section(&tests));
    }
    let mut context = Vec::new();
    if let Some(duration) = &f.duration {
        context.push(json!({"type": "mrkdwn", "text": format!("Duration {duration}")}));
    }
    if let Some(location) = &f.location {
        let text = if location.starts_with("https://") || location.starts_with("http://") {
            format!("Full report: <{}|{}>", escape(location), escape(&shorten(location, 80)))
        } else {
            format!("Full report: `{}`", escape(location))
        };
        context.push(json!({"type": "mrkdwn", "text": text}));
    }
    if !context.is_empty() {
        blocks.push(json!({"type": "context", "elements": context}));
    }
    json!({"text": fallback, "blocks": blocks, "unfurl_links": false, "unfurl_media": false})
}

fn section(mrkdwn: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": shorten(mrkdwn, SECTION_MAX)}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_must_be_https_except_to_loopback_and_errors_do_not_quote_them() {
        assert!(Webhook::parse("https://hooks.slack.com/services/T0/B0/SECRET").is_ok());
        assert!(Webhook::parse("http://127.0.0.1:9/services/T0/B0/SECRET").is_ok());
        assert!(Webhook::parse("http://localhost:9/hook").is_ok());
        for bad in ["http://hooks.example.com/services/T0/B0/SECRET", "ftp://x/SECRET", "not a url SECRET", ""] {
            let error = Webhook::parse(bad).expect_err(bad).to_string();
            assert!(!error.contains("SECRET"), "{error}");
        }
        let hook = Webhook::parse("https://hooks.slack.com/services/T0/B0/SECRET").expect("valid");
        assert_eq!(format!("{hook:?}"), "Webhook(***)");
    }

    #[test]
    fn redaction_removes_the_url_and_its_path() {
        let hook = Webhook::parse("https://hooks.slack.com/services/T0/B0/SECRET").expect("valid");
        let text = hook.redact("error for https://hooks.slack.com/services/T0/B0/SECRET and /services/T0/B0/SECRET");
        assert_eq!(text, "error for [webhook] and [webhook]");
    }

    #[test]
    fn mrkdwn_control_characters_are_escaped_and_long_text_is_cut() {
        assert_eq!(escape("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
    }
}
