//! BigQuery's error shapes: the HTTP error body, the `ErrorProto` of a failed job, and the HTTP status of each
//! reason. It does not decide what to retry: that is the client's business.

use serde_json::{Map, Value, json};

/// One `ErrorProto`: what BigQuery puts in `error.errors[]`, `status.errorResult`, `status.errors[]` and
/// `insertErrors[].errors[]`. Every value is a string, as BigQuery sends them: clients decode these items as maps
/// of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorProto {
    pub reason: String,
    pub message: String,
    pub location: Option<String>,
}

impl ErrorProto {
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self { reason: reason.to_owned(), message: message.into(), location: None }
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// The form used in a job's `status.errorResult` and `status.errors[]`.
    pub fn to_job_json(&self) -> Value {
        let mut item = Map::new();
        item.insert("reason".into(), Value::String(self.reason.clone()));
        if let Some(location) = &self.location {
            item.insert("location".into(), Value::String(location.clone()));
        }
        item.insert("message".into(), Value::String(self.message.clone()));
        Value::Object(item)
    }
}

/// An HTTP-level failure, answered with BigQuery's error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {}", .error.reason, .error.message)]
pub(crate) struct ApiError {
    pub status: u16,
    pub error: ErrorProto,
}

impl ApiError {
    /// An error whose HTTP status is the one BigQuery uses for `reason`.
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self { status: status_for_reason(reason), error: ErrorProto::new(reason, message) }
    }

    pub fn with_status(status: u16, reason: &str, message: impl Into<String>) -> Self {
        Self { status, error: ErrorProto::new(reason, message) }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("invalid", message)
    }

    /// `what` reads like BigQuery's own: `Table p:d.t`, `Dataset p:d`, `Job p:US.id`.
    pub fn not_found(what: &str) -> Self {
        Self::new("notFound", format!("Not found: {what}"))
    }

    pub fn duplicate(what: &str) -> Self {
        Self::new("duplicate", format!("Already Exists: {what}"))
    }

    /// `{"error":{"code","message","errors":[{"message","domain","reason",..}],"status"}}`.
    pub fn body(&self) -> Value {
        let mut item = Map::new();
        item.insert("message".into(), Value::String(self.error.message.clone()));
        item.insert("domain".into(), Value::String("global".into()));
        item.insert("reason".into(), Value::String(self.error.reason.clone()));
        if let Some(location) = &self.error.location {
            item.insert("location".into(), Value::String(location.clone()));
            item.insert("locationType".into(), Value::String("parameter".into()));
        }
        json!({
            "error": {
                "code": self.status,
                "message": self.error.message,
                "errors": [Value::Object(item)],
                "status": status_name(self.status),
            }
        })
    }
}

/// The HTTP status BigQuery answers a reason with (research notes, "Error model").
pub(crate) fn status_for_reason(reason: &str) -> u16 {
    match reason {
        "invalid"
        | "invalidQuery"
        | "invalidUser"
        | "resourceInUse"
        | "resourcesExceeded"
        | "tableUnavailable"
        | "billingTierLimitExceeded"
        | "timeout"
        | "jobBackendError"
        | "jobInternalError"
        | "jobRateLimitExceeded" => 400,
        "authError" => 401,
        "accessDenied" | "quotaExceeded" | "rateLimitExceeded" | "responseTooLarge" | "billingNotEnabled"
        | "blocked" | "policyViolation" => 403,
        "notFound" => 404,
        "duplicate" => 409,
        "notImplemented" => 501,
        "badGateway" => 502,
        _ => 500,
    }
}

/// The canonical gRPC status name Google puts in `error.status`.
pub(crate) fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        413 => "OUT_OF_RANGE",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if code >= 500 => "INTERNAL",
        _ => "UNKNOWN",
    }
}

/// The message BigQuery sends with a reason when nothing more specific applies (used by fault injection).
pub(crate) fn default_message(reason: &str) -> String {
    match reason {
        "backendError" => "Error encountered during execution. Retrying may solve the problem.".into(),
        "internalError" => "An internal error occurred and the request could not be completed.".into(),
        "rateLimitExceeded" => "Exceeded rate limits: too many api requests per user per method for this user_method. \
                                For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas"
            .into(),
        "quotaExceeded" => "Quota exceeded: Your table exceeded quota for imports or query appends per table. \
                            For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas"
            .into(),
        "accessDenied" => "Access Denied: BigQuery BigQuery: Permission denied while getting Drive credentials.".into(),
        "badGateway" => "Bad gateway.".into(),
        "notFound" => "Not found: injected by the fake BigQuery".into(),
        other => format!("{other}: injected by the fake BigQuery"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_only_strings_inside_errors_items() {
        let body = ApiError::not_found("Table p:d.t").body();
        assert_eq!(
            body,
            json!({"error":{"code":404,"message":"Not found: Table p:d.t",
                "errors":[{"message":"Not found: Table p:d.t","domain":"global","reason":"notFound"}],
                "status":"NOT_FOUND"}})
        );
    }

    #[test]
    fn reasons_map_to_the_documented_statuses() {
        for (reason, status) in [
            ("invalid", 400),
            ("invalidQuery", 400),
            ("accessDenied", 403),
            ("quotaExceeded", 403),
            ("rateLimitExceeded", 403),
            ("notFound", 404),
            ("duplicate", 409),
            ("internalError", 500),
            ("backendError", 500),
            ("somethingNew", 500),
        ] {
            assert_eq!(status_for_reason(reason), status, "{reason}");
        }
    }
}
