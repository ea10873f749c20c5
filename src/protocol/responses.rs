//! The OpenAI Responses API (`POST /v1/responses`): its names for breakerbox's own things.

use super::{StopReason, Usage};
use serde_json::{Value, json};

/// Where the API takes a response, below its host (a base URL ends in `/v1`, see
/// [`super::below_v1`]).
pub const PATH: &str = "/v1/responses";

/// Why an `incomplete` response stopped (`incomplete_details.reason`), as ours.
pub fn incomplete_reason(raw: &str) -> StopReason {
    match raw {
        "max_output_tokens" => StopReason::MaxTokens,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

/// Our stop reason as a response's `incomplete_details.reason`; `None` for a complete response
/// (a refusal in words is complete, as OpenAI ends its refusals).
pub fn wire_incomplete_reason(reason: StopReason, refused: bool) -> Option<&'static str> {
    match reason {
        StopReason::MaxTokens | StopReason::ContextWindowExceeded => Some("max_output_tokens"),
        StopReason::ContentFilter if !refused => Some("content_filter"),
        _ => None,
    }
}

/// Usage as the Responses API counts it: `input_tokens` includes the cached ones (ours excludes
/// them, see [`Usage`]), and says how many in `input_tokens_details`.
pub fn usage_json(usage: &Usage) -> Value {
    let input = usage.total_input();
    json!({
        "input_tokens": input,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": input.saturating_add(usage.output_tokens),
    })
}
