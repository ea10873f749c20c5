//! OpenAI Chat Completions (`POST /v1/chat/completions`), as OpenAI and the compatible servers
//! speak it: its names for breakerbox's own things.

use super::{ErrorClass, StopReason, Usage};
use serde_json::{Value, json};

/// Where the API takes a chat completion, below its host (a base URL ends in `/v1`, see
/// [`super::below_v1`]).
pub const PATH: &str = "/v1/chat/completions";

/// The request headers a passthrough forwards (the Responses API's are the same).
pub const FORWARDED_HEADERS: &[&str] = &["openai-beta"];

/// The response header that carries the request's id (the Responses API's is the same).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

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
