//! Anthropic Messages (`POST /v1/messages`): its names for breakerbox's own things.

use super::{ErrorClass, LimitDimension, StopReason, Usage};
use serde_json::{Value, json};

/// Where the API takes a message, below its host.
pub const PATH: &str = "/v1/messages";

/// The request headers a passthrough forwards: what the client says about the API it speaks
/// (its version, its betas), never credentials.
pub const FORWARDED_HEADERS: &[&str] = &["anthropic-version", "anthropic-beta"];

/// The response header that carries the request's id.
pub const REQUEST_ID_HEADER: &str = "request-id";

/// The rate-limit headers on every response, success or error: per dimension, the names of its
/// limit, what remains, and when it is fully replenished (an RFC 3339 time, `2025-08-21T12:40:59Z`).
pub const RATE_LIMIT_HEADERS: [(LimitDimension, [&str; 3]); 4] = [
    (
        LimitDimension::Requests,
        [
            "anthropic-ratelimit-requests-limit",
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset",
        ],
    ),
    (
        LimitDimension::Tokens,
        [
            "anthropic-ratelimit-tokens-limit",
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-ratelimit-tokens-reset",
        ],
    ),
    (
        LimitDimension::InputTokens,
        [
            "anthropic-ratelimit-input-tokens-limit",
            "anthropic-ratelimit-input-tokens-remaining",
            "anthropic-ratelimit-input-tokens-reset",
        ],
    ),
    (
        LimitDimension::OutputTokens,
        [
            "anthropic-ratelimit-output-tokens-limit",
            "anthropic-ratelimit-output-tokens-remaining",
            "anthropic-ratelimit-output-tokens-reset",
        ],
    ),
];

/// Anthropic's `stop_reason` as ours.
pub fn stop_reason(raw: &str) -> StopReason {
    match raw {
        "end_turn" => StopReason::EndTurn,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        "pause_turn" => StopReason::PauseTurn,
        "model_context_window_exceeded" => StopReason::ContextWindowExceeded,
        _ => StopReason::Other,
    }
}

/// Our stop reason as Anthropic's `stop_reason`. `Other` passes the raw value on when there is one.
pub fn wire_stop_reason(reason: StopReason, raw: Option<&str>) -> String {
    match reason {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
        StopReason::PauseTurn => "pause_turn",
        StopReason::ContextWindowExceeded => "model_context_window_exceeded",
        StopReason::Other => return raw.filter(|r| !r.is_empty()).unwrap_or("end_turn").into(),
    }
    .to_string()
}

/// The `error.type` an error of `class` gets, chosen so that the official clients and
/// breakerbox's own parser classify it back to the same class (`bad_request`, `context_length`
/// and `content_filter` share `invalid_request_error` and are told apart by the message, as with
/// the real API).
pub fn error_type(class: ErrorClass) -> &'static str {
    use ErrorClass as C;
    match class {
        C::RateLimited => "rate_limit_error",
        C::Overloaded => "overloaded_error",
        C::Auth => "authentication_error",
        C::Permission => "permission_error",
        C::BadRequest | C::ContextLength | C::ContentFilter => "invalid_request_error",
        C::NotFound => "not_found_error",
        C::TooLarge => "request_too_large",
        C::Quota => "billing_error",
        C::Timeout | C::Stalled => "timeout_error",
        C::ServerError
        | C::Connect
        | C::StreamCut
        | C::Malformed
        | C::Conflict
        | C::Redirect
        | C::Unavailable
        | C::Cancelled => "api_error",
    }
}

/// Usage as Anthropic counts it (breakerbox's own convention, see [`Usage`]).
pub fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    })
}
