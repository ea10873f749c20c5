//! The OpenAI Responses API (`POST /v1/responses`): its names for breakerbox's own things, and
//! the stream events and output items that both servers of it (the gateway, the simulator)
//! write.

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

/// One event of a stream: `event: TYPE` and `data: JSON` whose `type` is TYPE and whose
/// `sequence_number` is the event's place in the stream, from 0.
pub fn event_frame(kind: &str, sequence: u64, mut data: Value) -> String {
    if let Some(fields) = data.as_object_mut() {
        fields.insert("type".into(), json!(kind));
        fields.insert("sequence_number".into(), json!(sequence));
    }
    format!("event: {kind}\ndata: {data}\n\n")
}

/// An `output_text` content part.
pub fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// An assistant `message` output item.
pub fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": content})
}

/// A `function_call` output item.
pub fn function_call_item(
    id: &str,
    status: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
           "name": name, "arguments": arguments})
}
