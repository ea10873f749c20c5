//! A provider failure as a value: what class of failure, in which phase, and what the provider said.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

pub use crate::protocol::ErrorClass;

/// Where in an attempt a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Opening the TCP/TLS connection.
    Connect,
    /// Request sent, waiting for the response status and headers (or a non-2xx response).
    Headers,
    /// 2xx headers received, no event yet.
    FirstEvent,
    /// At least one event received.
    MidStream,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Headers => "headers",
            Phase::FirstEvent => "first_event",
            Phase::MidStream => "mid_stream",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorClass {
    /// The class a provider's error means, from what it sent: HTTP status (if any), the error's
    /// type and code, and its message. Used for non-2xx responses and for in-stream error events.
    pub fn from_provider(
        status: Option<u16>,
        error_type: Option<&str>,
        code: Option<&str>,
        message: &str,
    ) -> ErrorClass {
        let ty = error_type.unwrap_or("");
        let code = code.unwrap_or("");
        let msg = message.to_ascii_lowercase();
        let says = |needle: &str| ty == needle || code == needle;

        // Anthropic reports an empty balance as a 400 `invalid_request_error`; only the message tells.
        if says("insufficient_quota")
            || says("billing_error")
            || msg.contains("credit balance is too low")
        {
            return ErrorClass::Quota;
        }
        // Google answers a wrong key with a 400 `INVALID_ARGUMENT` (reason `API_KEY_INVALID`).
        if msg.contains("api key not valid") || msg.contains("api_key_invalid") {
            return ErrorClass::Auth;
        }
        if says("context_length_exceeded")
            || msg.contains("exceeds the maximum number of tokens allowed")
            || msg.contains("prompt is too long")
            || msg.contains("input is too long")
            || msg.contains("context length")
            || msg.contains("context window")
        {
            return ErrorClass::ContextLength;
        }
        if says("content_policy_violation")
            || says("content_filter")
            || msg.contains("content filtering policy")
            || msg.contains("content management policy")
        {
            return ErrorClass::ContentFilter;
        }
        // Bedrock's exceptions say more than their statuses (a 424 is the model's failure, a 403
        // a bad signature or a missing permission); `__type` names may carry a namespace.
        if let Some(class) =
            crate::protocol::bedrock::error_class(crate::protocol::bedrock::error_type_name(ty))
        {
            return class;
        }
        match status {
            Some(429) => return ErrorClass::RateLimited,
            Some(529) | Some(503) => return ErrorClass::Overloaded,
            Some(408) | Some(504) => return ErrorClass::Timeout,
            Some(401) => return ErrorClass::Auth,
            Some(403) => return ErrorClass::Permission,
            Some(404) => return ErrorClass::NotFound,
            Some(409) => return ErrorClass::Conflict,
            Some(300..=399) => return ErrorClass::Redirect,
            Some(413) => return ErrorClass::TooLarge,
            Some(s) if s >= 500 => return ErrorClass::ServerError,
            Some(s) if s >= 400 => return ErrorClass::BadRequest,
            _ => {}
        }
        // No status (an in-stream error) or an unusual one: go by the type the provider named.
        match ty {
            "rate_limit_error" | "rate_limit_exceeded" | "rate_limit" => ErrorClass::RateLimited,
            "overloaded_error" | "overloaded" => ErrorClass::Overloaded,
            "timeout_error" | "timeout" => ErrorClass::Timeout,
            "authentication_error" | "invalid_api_key" => ErrorClass::Auth,
            "permission_error" => ErrorClass::Permission,
            "not_found_error" | "model_not_found" => ErrorClass::NotFound,
            "request_too_large" => ErrorClass::TooLarge,
            "invalid_request_error" => ErrorClass::BadRequest,
            // Google's `error.status` (google.rpc.Code names), for an error inside a stream.
            "RESOURCE_EXHAUSTED" => ErrorClass::RateLimited,
            "UNAVAILABLE" => ErrorClass::Overloaded,
            "DEADLINE_EXCEEDED" => ErrorClass::Timeout,
            "UNAUTHENTICATED" => ErrorClass::Auth,
            "PERMISSION_DENIED" => ErrorClass::Permission,
            "NOT_FOUND" => ErrorClass::NotFound,
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => ErrorClass::BadRequest,
            _ if code == "rate_limit_exceeded" => ErrorClass::RateLimited,
            _ if msg.contains("overloaded") => ErrorClass::Overloaded,
            _ if msg.contains("rate limit") => ErrorClass::RateLimited,
            // "api_error", "server_error" and anything unknown: the provider broke.
            _ => ErrorClass::ServerError,
        }
    }
}

/// A failed attempt, classified, with everything the provider told us about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{provider}: {class} in {phase}{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct ProviderError {
    /// The configured provider name.
    pub provider: String,
    pub class: ErrorClass,
    pub phase: Phase,
    pub status: Option<u16>,
    /// The provider's error type (`overloaded_error`, `rate_limit_exceeded`, …).
    pub error_type: Option<String>,
    /// The provider's error code (`context_length_exceeded`, `insufficient_quota`, …).
    pub code: Option<String>,
    pub message: String,
    /// From `retry-after-ms`, else `retry-after` (seconds or an HTTP date).
    pub retry_after: Option<Duration>,
    pub request_id: Option<String>,
}

impl ProviderError {
    pub fn new(
        provider: impl Into<String>,
        class: ErrorClass,
        phase: Phase,
        message: impl Into<String>,
    ) -> Self {
        ProviderError {
            provider: provider.into(),
            class,
            phase,
            status: None,
            error_type: None,
            code: None,
            message: message.into(),
            retry_after: None,
            request_id: None,
        }
    }

    pub fn retry_after_ms(&self) -> Option<u64> {
        self.retry_after
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_from_status_and_type() {
        use ErrorClass::*;
        type Case<'a> = (
            Option<u16>,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            ErrorClass,
        );
        let cases: &[Case] = &[
            (
                Some(429),
                Some("rate_limit_error"),
                None,
                "slow down",
                RateLimited,
            ),
            (
                Some(429),
                Some("insufficient_quota"),
                Some("insufficient_quota"),
                "",
                Quota,
            ),
            (
                Some(400),
                Some("invalid_request_error"),
                None,
                "Your credit balance is too low to access the Anthropic API.",
                Quota,
            ),
            (
                Some(529),
                Some("overloaded_error"),
                None,
                "Overloaded",
                Overloaded,
            ),
            (Some(503), None, None, "", Overloaded),
            (Some(500), Some("api_error"), None, "", ServerError),
            (Some(502), None, None, "bad gateway", ServerError),
            (Some(504), Some("timeout_error"), None, "", Timeout),
            (Some(401), Some("authentication_error"), None, "", Auth),
            (Some(403), Some("permission_error"), None, "", Permission),
            (Some(404), Some("not_found_error"), None, "", NotFound),
            (Some(413), Some("request_too_large"), None, "", TooLarge),
            (Some(409), None, None, "", Conflict),
            (
                Some(400),
                Some("invalid_request_error"),
                None,
                "max_tokens: too big",
                BadRequest,
            ),
            (
                Some(400),
                Some("invalid_request_error"),
                None,
                "prompt is too long: 250000 tokens > 200000 maximum",
                ContextLength,
            ),
            (
                Some(400),
                Some("invalid_request_error"),
                Some("context_length_exceeded"),
                "",
                ContextLength,
            ),
            (
                Some(400),
                None,
                Some("content_policy_violation"),
                "",
                ContentFilter,
            ),
            (
                Some(400),
                Some("invalid_request_error"),
                None,
                "Output blocked by content filtering policy",
                ContentFilter,
            ),
            (
                None,
                Some("overloaded_error"),
                None,
                "Overloaded",
                Overloaded,
            ),
            (
                None,
                Some("api_error"),
                None,
                "Internal server error",
                ServerError,
            ),
            (None, Some("server_error"), None, "", ServerError),
            (None, None, Some("rate_limit_exceeded"), "", RateLimited),
        ];
        for (status, ty, code, msg, want) in cases {
            assert_eq!(
                ErrorClass::from_provider(*status, *ty, *code, msg),
                *want,
                "{status:?} {ty:?} {code:?} {msg:?}"
            );
        }
    }

    #[test]
    fn class_names_round_trip() {
        for class in ErrorClass::ALL {
            let parsed: ErrorClass = class.as_str().parse().expect("parses");
            assert_eq!(parsed, class);
            let json = serde_json::to_string(&class).expect("serializes");
            assert_eq!(json, format!("\"{}\"", class.as_str()));
        }
    }

    #[test]
    fn display_names_provider_class_phase_and_status() {
        let mut err =
            ProviderError::new("anthropic", ErrorClass::RateLimited, Phase::Headers, "slow");
        err.status = Some(429);
        assert_eq!(
            err.to_string(),
            "anthropic: rate_limited in headers (HTTP 429): slow"
        );
    }
}
