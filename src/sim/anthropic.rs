//! The Anthropic Messages API as a server speaks it. The stream templates mirror the recorded
//! fixtures (`anthropic/*.sse`) field for field, so they can be compared by eye.

use bytes::Bytes;
use serde_json::{Value, json};

use super::fault::FaultKind;
use super::reply::{Reply, SimRequest, Stop, Tool, ToolCall};
use super::rng::Rng;
use super::wire::{
    ErrorReply, Frame, FrameKind, Meta, Wire, content_text, fields, last_user_text, model,
    raw_items, retry_after_secs, streams, value,
};

pub(crate) struct Anthropic;

/// A JSON string literal.
fn q(text: &str) -> String {
    Value::from(text).to_string()
}

fn sse(kind: FrameKind, event: &str, data: &str) -> Frame {
    Frame::new(kind, format!("event: {event}\ndata: {data}\n\n"))
}

fn stop_reason(stop: Stop) -> String {
    crate::protocol::anthropic::wire_stop_reason(stop.into(), None)
}

fn error_body(error_type: &str, message: &str, meta: &Meta) -> Value {
    json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": meta.request_id,
    })
}

/// A stream's content blocks, numbered from 0 as they start (the first one's start is followed
/// by a `ping`, as in the fixtures).
struct Blocks {
    frames: Vec<Frame>,
    next: usize,
}

impl Blocks {
    /// Start a block (`content_block` its JSON); its index.
    fn start(&mut self, content_block: String) -> usize {
        let index = self.next;
        self.frames.push(sse(
            FrameKind::Meta,
            "content_block_start",
            &format!(
                r#"{{"type":"content_block_start","index":{index},"content_block":{content_block}}}"#
            ),
        ));
        if index == 0 {
            self.frames
                .push(sse(FrameKind::Meta, "ping", r#"{"type": "ping"}"#));
        }
        self.next += 1;
        index
    }

    fn delta(&mut self, kind: FrameKind, index: usize, delta: String) {
        self.frames.push(sse(
            kind,
            "content_block_delta",
            &format!(r#"{{"type":"content_block_delta","index":{index},"delta":{delta}}}"#),
        ));
    }

    fn stop(&mut self, index: usize) {
        self.frames.push(sse(
            FrameKind::Meta,
            "content_block_stop",
            &format!(r#"{{"type":"content_block_stop","index":{index}}}"#),
        ));
    }

    /// A text block, a token a delta.
    fn text(&mut self, tokens: &[String]) {
        let i = self.start(r#"{"type":"text","text":""}"#.to_string());
        for token in tokens {
            self.delta(
                FrameKind::Token,
                i,
                format!(r#"{{"type":"text_delta","text":{}}}"#, q(token)),
            );
        }
        self.stop(i);
    }

    /// A `tool_use` block, its input streamed in pieces.
    fn tool_use(&mut self, id: &str, call: &ToolCall) {
        let i = self.start(format!(
            r#"{{"type":"tool_use","id":{},"name":{},"input":{{}}}}"#,
            q(id),
            q(&call.name)
        ));
        let json_delta = |piece: &str| {
            format!(
                r#"{{"type":"input_json_delta","partial_json":{}}}"#,
                q(piece)
            )
        };
        // The real API opens with an empty piece (see the tool_use fixture).
        self.delta(FrameKind::Meta, i, json_delta(""));
        for piece in &call.pieces {
            self.delta(FrameKind::Token, i, json_delta(piece));
        }
        self.stop(i);
    }
}

impl Wire for Anthropic {
    fn path(&self) -> &'static str {
        crate::protocol::anthropic::PATH
    }

    fn request_id_header(&self) -> &'static str {
        crate::protocol::anthropic::REQUEST_ID_HEADER
    }

    fn new_meta(&self, rng: &mut Rng, model: String, include_usage: bool) -> Meta {
        Meta {
            request_id: format!("req_011C{}", rng.alphanumeric(20)),
            message_id: format!("msg_01{}", rng.alphanumeric(22)),
            tool_call_id: format!("toolu_01{}", rng.alphanumeric(22)),
            model,
            created: 0,
            include_usage,
            echo: serde_json::Map::new(),
        }
    }

    fn parse_request(&self, body: &[u8]) -> Result<SimRequest, String> {
        let body = fields(body, "the request body must be a JSON object")?;
        let messages = raw_items(&body, "messages")
            .ok_or("messages: Field required (an array of messages)")?;
        let max_tokens = match body.value("max_tokens") {
            None => return Err("max_tokens: Field required".into()),
            Some(v) => v
                .as_u64()
                .filter(|&m| m >= 1)
                .and_then(|m| u32::try_from(m).ok())
                .ok_or("max_tokens: Input should be an integer greater than or equal to 1")?,
        };
        let last = messages.last().map(|m| value(m));
        // A last message from the assistant is a prefill: the reply continues it (Anthropic's
        // documented behaviour), so it is not part of what the reply is seeded from.
        let prefill = last
            .as_ref()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
            .map(|m| m.get("content").map(content_text).unwrap_or_default())
            .filter(|text| !text.is_empty());
        let asked = &messages[..messages.len() - usize::from(prefill.is_some())];
        let mut prompt = body
            .value("system")
            .map(|s| content_text(&s))
            .unwrap_or_default();
        for m in asked {
            prompt.push('\n');
            prompt.push_str(
                &value(m)
                    .get("content")
                    .map(content_text)
                    .unwrap_or_default(),
            );
        }
        let last_user = last_user_text(asked);
        let tools = raw_items(&body, "tools")
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let t = value(t);
                Some(Tool {
                    name: t.get("name")?.as_str()?.to_string(),
                    schema: t.get("input_schema").cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        let after_tool_result = last
            .as_ref()
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array)
            .is_some_and(|blocks| {
                blocks
                    .iter()
                    .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            });
        Ok(SimRequest {
            echo: serde_json::Map::new(),
            model: model(&body),
            prompt,
            last_user,
            messages: messages.len(),
            max_tokens: Some(max_tokens),
            tools,
            tools_disabled: body
                .value("tool_choice")
                .is_some_and(|c| c.pointer("/type").and_then(Value::as_str) == Some("none")),
            after_tool_result,
            stream: streams(&body),
            include_usage: false,
            prefill,
        })
    }

    fn lead_in(&self) -> bool {
        true
    }

    fn stream(&self, reply: &Reply, meta: &Meta) -> Vec<Frame> {
        use FrameKind::{Closing, Meta as M};
        let mut blocks = Blocks {
            frames: vec![sse(
                M,
                "message_start",
                &format!(
                    r#"{{"type":"message_start","message":{{"id":{},"type":"message","role":"assistant","model":{},"content":[],"stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":{},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}}}}"#,
                    q(&meta.message_id),
                    q(&meta.model),
                    reply.input_tokens
                ),
            )],
            next: 0,
        };
        if !reply.tokens.is_empty() {
            blocks.text(&reply.tokens);
        }
        if let Some(call) = &reply.tool_call {
            blocks.tool_use(&meta.tool_call_id, call);
        }
        let mut frames = blocks.frames;
        frames.push(sse(
            Closing,
            "message_delta",
            &format!(
                r#"{{"type":"message_delta","delta":{{"stop_reason":{},"stop_sequence":null}},"usage":{{"output_tokens":{}}}}}"#,
                q(&stop_reason(reply.stop)),
                reply.output_tokens()
            ),
        ));
        frames.push(sse(Closing, "message_stop", r#"{"type":"message_stop"}"#));
        frames
    }

    fn message(&self, reply: &Reply, meta: &Meta) -> Value {
        let mut content = Vec::new();
        if !reply.tokens.is_empty() {
            content.push(json!({"type": "text", "text": reply.text()}));
        }
        if let Some(call) = &reply.tool_call {
            content.push(json!({
                "type": "tool_use",
                "id": meta.tool_call_id,
                "name": call.name,
                "input": call.input,
            }));
        }
        json!({
            "id": meta.message_id,
            "type": "message",
            "role": "assistant",
            "model": meta.model,
            "content": content,
            "stop_reason": stop_reason(reply.stop),
            "stop_sequence": null,
            "usage": crate::protocol::anthropic::usage_json(&reply.usage()),
        })
    }

    fn fault_error(&self, kind: &FaultKind, meta: &Meta) -> Option<ErrorReply> {
        let invalid = |message: &str| {
            ErrorReply::new(400, error_body("invalid_request_error", message, meta))
        };
        Some(match kind {
            FaultKind::RateLimit { retry_after } => {
                let now = chrono::Utc::now();
                let reset = chrono::Duration::from_std(*retry_after)
                    .ok()
                    .and_then(|d| now.checked_add_signed(d))
                    .unwrap_or(now);
                ErrorReply::new(
                    429,
                    error_body(
                        "rate_limit_error",
                        "This request would exceed the rate limit for your organization of 50 \
                         requests per minute. For details, refer to: \
                         https://docs.claude.com/en/api/rate-limits.",
                        meta,
                    ),
                )
                .header("retry-after", retry_after_secs(*retry_after))
                .header("anthropic-ratelimit-requests-limit", "50")
                .header("anthropic-ratelimit-requests-remaining", "0")
                .header(
                    "anthropic-ratelimit-requests-reset",
                    reset.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )
            }
            FaultKind::Quota => invalid(
                "Your credit balance is too low to access the Anthropic API. Please go to Plans & \
                 Billing to upgrade or purchase credits.",
            ),
            FaultKind::Overloaded {
                status,
                retry_after,
            } => {
                let reply = ErrorReply::new(
                    status.unwrap_or(529),
                    error_body("overloaded_error", "Overloaded", meta),
                );
                match retry_after {
                    Some(r) => reply.header("retry-after", retry_after_secs(*r)),
                    None => reply,
                }
            }
            FaultKind::ServerError { status } => ErrorReply::new(
                *status,
                error_body("api_error", "Internal server error", meta),
            ),
            FaultKind::BadRequest => {
                invalid("The simulated provider rejected this request (fault bad_request).")
            }
            FaultKind::ContextLength => {
                invalid("prompt is too long: 250000 tokens > 200000 maximum")
            }
            FaultKind::ContentFilter => invalid("Output blocked by content filtering policy"),
            FaultKind::Auth => ErrorReply::new(
                401,
                error_body("authentication_error", "invalid x-api-key", meta),
            ),
            _ => return None,
        })
    }

    fn invalid_request(&self, message: &str, meta: &Meta) -> ErrorReply {
        ErrorReply::new(400, error_body("invalid_request_error", message, meta))
    }

    fn stream_error(&self, error_type: &str, _meta: &Meta, _at: usize) -> Bytes {
        let message = match error_type {
            "overloaded_error" => "Overloaded",
            _ => "Internal server error",
        };
        sse(
            FrameKind::Closing,
            "error",
            &format!(
                r#"{{"type":"error","error":{{"type":{},"message":{}}}}}"#,
                q(error_type),
                q(message)
            ),
        )
        .bytes
    }

    fn malformed(&self, _meta: &Meta, _at: usize) -> Bytes {
        Bytes::from_static(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_del\n\n",
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sim::reply::ToolCall;

    fn meta() -> Meta {
        Anthropic.new_meta(&mut Rng::new(1), "claude-test".into(), false)
    }

    #[test]
    fn stream_matches_the_fixture_shape() {
        let reply = Reply {
            tokens: vec!["Hello".into(), " there".into(), "!".into()],
            tool_call: None,
            stop: Stop::EndTurn,
            input_tokens: 11,
        };
        let m = meta();
        let text: String = Anthropic
            .stream(&reply, &m)
            .iter()
            .map(|f| String::from_utf8(f.bytes.to_vec()).unwrap())
            .collect();
        let expected = format!(
            "event: message_start\n\
             data: {{\"type\":\"message_start\",\"message\":{{\"id\":\"{}\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-test\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":11,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}}}}\n\n\
             event: content_block_start\n\
             data: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n\
             event: ping\n\
             data: {{\"type\": \"ping\"}}\n\n\
             event: content_block_delta\n\
             data: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"Hello\"}}}}\n\n\
             event: content_block_delta\n\
             data: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" there\"}}}}\n\n\
             event: content_block_delta\n\
             data: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"!\"}}}}\n\n\
             event: content_block_stop\n\
             data: {{\"type\":\"content_block_stop\",\"index\":0}}\n\n\
             event: message_delta\n\
             data: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":3}}}}\n\n\
             event: message_stop\n\
             data: {{\"type\":\"message_stop\"}}\n\n",
            m.message_id
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn tool_use_block_follows_the_text_block() {
        let reply = Reply {
            tokens: vec!["I'll".into(), " look.".into()],
            tool_call: Some(ToolCall {
                name: "get_weather".into(),
                input: json!({"city": "Paris"}),
                pieces: vec!["{\"ci".into(), "ty\":\"Paris\"}".into()],
            }),
            stop: Stop::ToolUse,
            input_tokens: 20,
        };
        let frames = Anthropic.stream(&reply, &meta());
        let data: Vec<Value> = frames
            .iter()
            .map(|f| {
                let text = String::from_utf8(f.bytes.to_vec()).unwrap();
                serde_json::from_str(text.split("data: ").nth(1).unwrap().trim()).unwrap()
            })
            .collect();
        let start = &data[6];
        assert_eq!(start["index"], 1);
        assert_eq!(start["content_block"]["type"], "tool_use");
        assert!(
            start["content_block"]["id"]
                .as_str()
                .unwrap()
                .starts_with("toolu_01")
        );
        assert_eq!(data[7]["delta"]["partial_json"], "");
        let json: String = data[7..10]
            .iter()
            .map(|d| d["delta"]["partial_json"].as_str().unwrap())
            .collect();
        assert_eq!(json, "{\"city\":\"Paris\"}");
        let end = &data[data.len() - 2];
        assert_eq!(end["delta"]["stop_reason"], "tool_use");
        assert_eq!(end["usage"]["output_tokens"], 4);
    }

    #[test]
    fn the_last_user_message_is_read_past_a_tool_result_and_a_prefill() {
        let body = json!({
            "model": "m", "max_tokens": 10, "system": "Bash is a tool",
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [
                    {"type": "text", "text": "reminder"},
                    {"type": "text", "text": "Use `Bash`"},
                ]},
                {"role": "assistant", "content": "Sure"},
            ],
        });
        let request = Anthropic
            .parse_request(body.to_string().as_bytes())
            .unwrap();
        assert_eq!(request.last_user, "reminder\nUse `Bash`");
        assert_eq!(request.prefill.as_deref(), Some("Sure"));
    }
}
