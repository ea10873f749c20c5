//! OpenAI Chat Completions (`POST /v1/chat/completions`), as OpenAI and the compatible servers
//! speak it: its names for breakerbox's own things.

use super::{ErrorClass, LimitDimension, StopReason, Usage};
use serde_json::{Value, json};

/// Where the API takes a chat completion, below its host (a base URL ends in `/v1`, see
/// [`super::below_v1`]).
pub const PATH: &str = "/v1/chat/completions";

/// The request headers a passthrough forwards (the Responses API's are the same).
pub const FORWARDED_HEADERS: &[&str] = &["openai-beta"];

/// The response header that carries the request's id (the Responses API's is the same).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The rate-limit headers on every response, success or error (the Responses API's are the same):
/// per dimension, the names of its limit, what remains, and the time until it is back to its
/// limit, as a Go duration ([`reset_duration`]: `1s`, `6m0s`, `20ms`).
pub const RATE_LIMIT_HEADERS: [(LimitDimension, [&str; 3]); 2] = [
    (
        LimitDimension::Requests,
        [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ],
    ),
    (
        LimitDimension::Tokens,
        [
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ],
    ),
];

/// A rate limit's reset as OpenAI writes it, Go's `time.Duration` form at millisecond precision:
/// `0s`, `20ms`, `1.5s`, `6m0s`, `1h2m3.5s`.
pub fn reset_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, ms / 60_000 % 60);
    let (s, frac) = (ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&s.to_string());
    if frac > 0 {
        let digits = format!("{frac:03}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('s');
    out
}

/// A Go duration as OpenAI's reset headers carry it ([`reset_duration`]; also `ns`, `us`, `µs`):
/// `None` unless the whole text is one. Negative durations are not resets.
pub fn parse_reset_duration(text: &str) -> Option<std::time::Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut secs = 0.0_f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        secs += number * scale;
        rest = &rest[unit_end..];
    }
    std::time::Duration::try_from_secs_f64(secs).ok()
}

/// OpenAI's `finish_reason` as ours.
pub fn finish_reason(raw: &str) -> StopReason {
    match raw {
        "stop" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

/// Our stop reason as OpenAI's `finish_reason` (`stop`, `length`, `tool_calls`, `content_filter`).
pub fn wire_finish_reason(reason: StopReason, raw: Option<&str>) -> String {
    match reason {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::PauseTurn => "stop",
        StopReason::MaxTokens | StopReason::ContextWindowExceeded => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
        StopReason::Other => return raw.filter(|r| !r.is_empty()).unwrap_or("stop").into(),
    }
    .to_string()
}

/// The `(error.type, error.code)` an error of `class` gets (the Responses API's errors are the
/// same), chosen so that the official clients and breakerbox's own parser classify it back to the
/// same class.
pub fn error_type(class: ErrorClass) -> (&'static str, Option<&'static str>) {
    use ErrorClass as C;
    match class {
        C::RateLimited => ("requests", Some("rate_limit_exceeded")),
        C::Quota => ("insufficient_quota", Some("insufficient_quota")),
        C::Overloaded => ("overloaded", None),
        C::Auth => ("authentication_error", Some("invalid_api_key")),
        C::Permission => ("permission_error", None),
        C::NotFound => ("not_found_error", Some("model_not_found")),
        C::TooLarge => ("request_too_large", None),
        C::BadRequest => ("invalid_request_error", None),
        C::ContextLength => ("invalid_request_error", Some("context_length_exceeded")),
        C::ContentFilter => ("invalid_request_error", Some("content_policy_violation")),
        C::Timeout | C::Stalled => ("timeout", None),
        C::ServerError
        | C::Connect
        | C::StreamCut
        | C::Malformed
        | C::Conflict
        | C::Redirect
        | C::Unavailable
        | C::Cancelled => ("server_error", None),
    }
}

/// OpenAI counts cached tokens inside `prompt_tokens` and has no cache-write count, so cache writes
/// are folded into `prompt_tokens` and `cached_tokens` is the cache reads.
pub fn usage_json(usage: &Usage) -> Value {
    let prompt = usage.total_input();
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt.saturating_add(usage.output_tokens),
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn resets_are_written_and_read_as_go_durations() {
        let ms = Duration::from_millis;
        for (d, text) in [
            (ms(0), "0s"),
            (ms(20), "20ms"),
            (ms(1000), "1s"),
            (ms(1500), "1.5s"),
            (ms(34_000), "34s"),
            (ms(360_000), "6m0s"),
            (ms(3_723_500), "1h2m3.5s"),
            (ms(3_600_000), "1h0m0s"),
        ] {
            assert_eq!(reset_duration(d), text);
            assert_eq!(parse_reset_duration(text), Some(d), "{text}");
        }
        assert_eq!(
            parse_reset_duration("250us"),
            Some(Duration::from_micros(250))
        );
        assert_eq!(
            parse_reset_duration("1.5µs"),
            Some(Duration::from_nanos(1500))
        );
        assert_eq!(parse_reset_duration("0"), Some(Duration::ZERO));
        for garbled in ["", "soon", "5", "-1s", "1x", "s", "1.2.3s", "1s2", "inf"] {
            assert_eq!(parse_reset_duration(garbled), None, "{garbled}");
        }
    }
}
