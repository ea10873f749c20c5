//! OpenAI Chat Completions as a server speaks it. The chunk templates mirror the recorded fixtures
//! (`openai/*.sse`) field for field.

use bytes::Bytes;
use serde_json::{Value, json};
use std::time::Duration;

use super::fault::{FaultKind, format_duration};
use super::reply::{Reply, SimRequest, Stop, Tool};
use super::rng::Rng;
use super::wire::{
    ErrorReply, Frame, FrameKind, Meta, Wire, content_text, fields, last_user_text, model,
    raw_items, retry_after_secs, streams, token_limit, unix_now, value,
};

pub(crate) struct Openai;

/// A JSON string literal.
fn q(text: &str) -> String {
    Value::from(text).to_string()
}

fn finish_reason(stop: Stop) -> String {
    crate::protocol::chat::wire_finish_reason(stop.into(), None)
}

fn error_body(message: &str, error_type: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": error_type, "param": param, "code": code}})
}

/// Real responses name the backend configuration; clients ignore it.
const FINGERPRINT: &str = "fp_breakerbox";

const SERVER_ERROR: &str =
    "The server had an error while processing your request. Sorry about that!";

/// The usage object, written like the fixtures (field order kept).
fn usage_json(reply: &Reply) -> String {
    let output = reply.output_tokens();
    format!(
        r#"{{"prompt_tokens":{},"completion_tokens":{output},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0}}}}"#,
        reply.input_tokens,
        reply.input_tokens + output
    )
}

/// The ids of a response of OpenAI's two APIs, drawn in this order: the request's (`req_…`), the
/// response's (`message_id`, each API its own), the tool call's (`call_…`).
pub(super) fn openai_meta(
    rng: &mut Rng,
    model: String,
    include_usage: bool,
    message_id: impl FnOnce(&mut Rng) -> String,
) -> Meta {
    let request_id = format!("req_{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    let message_id = message_id(rng);
    Meta {
        request_id,
        message_id,
        tool_call_id: format!("call_{}", rng.alphanumeric(24)),
        model,
        created: unix_now(),
        include_usage,
        echo: serde_json::Map::new(),
    }
}

/// A 429 for the requests-per-minute limit, with OpenAI's rate-limit headers.
fn rate_limited(retry_after: Duration, meta: &Meta) -> ErrorReply {
    ErrorReply::new(
        429,
        error_body(
            &format!(
                "Rate limit reached for {} in organization org-sim on requests per min (RPM): \
                 Limit 500, Used 500, Requested 1. Please try again in {}.",
                meta.model,
                format_duration(retry_after)
            ),
            "requests",
            None,
            Some("rate_limit_exceeded"),
        ),
    )
    .header("retry-after", retry_after_secs(retry_after))
    .header("retry-after-ms", retry_after.as_millis().to_string())
    .header("x-ratelimit-limit-requests", "500")
    .header("x-ratelimit-remaining-requests", "0")
    .header("x-ratelimit-reset-requests", format_duration(retry_after))
}

/// A 503 (or `status`) for an overloaded server, saying when to come back if it knows.
fn overloaded(status: Option<u16>, retry_after: Option<Duration>) -> ErrorReply {
    let reply = ErrorReply::new(
        status.unwrap_or(503),
        error_body(
            "The server is overloaded or not ready yet.",
            "server_error",
            None,
            None,
        ),
    );
    match retry_after {
        Some(r) => reply
            .header("retry-after", retry_after_secs(r))
            .header("retry-after-ms", r.as_millis().to_string()),
        None => reply,
    }
}

impl Wire for Openai {
    fn path(&self) -> &'static str {
        crate::protocol::chat::PATH
    }

    fn request_id_header(&self) -> &'static str {
        crate::protocol::chat::REQUEST_ID_HEADER
    }

    fn new_meta(&self, rng: &mut Rng, model: String, include_usage: bool) -> Meta {
        openai_meta(rng, model, include_usage, |rng| {
            format!("chatcmpl-{}", rng.alphanumeric(29))
        })
    }

    fn parse_request(&self, body: &[u8]) -> Result<SimRequest, String> {
        let body = fields(body, "The request body must be a JSON object.")?;
        let messages =
            raw_items(&body, "messages").ok_or("Missing required parameter: 'messages'.")?;
        let max_tokens = token_limit(
            &body,
            &["max_completion_tokens", "max_tokens"],
            "Invalid 'max_tokens': expected an integer.",
        )?;
        let mut prompt = String::new();
        let mut last_role = None;
        for (i, m) in messages.iter().enumerate() {
            let m = value(m);
            if i > 0 {
                prompt.push('\n');
            }
            prompt.push_str(&m.get("content").map(content_text).unwrap_or_default());
            last_role = m.get("role").and_then(Value::as_str).map(str::to_string);
        }
        let last_user = last_user_text(&messages);
        let tools = raw_items(&body, "tools")
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let t = value(t);
                let function = t.get("function")?;
                Some(Tool {
                    name: function.get("name")?.as_str()?.to_string(),
                    schema: function.get("parameters").cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        Ok(SimRequest {
            echo: serde_json::Map::new(),
            model: model(&body),
            prompt,
            last_user,
            messages: messages.len(),
            max_tokens,
            tools,
            tools_disabled: body
                .value("tool_choice")
                .is_some_and(|c| c.as_str() == Some("none")),
            after_tool_result: last_role.as_deref() == Some("tool"),
            stream: streams(&body),
            include_usage: body
                .value("stream_options")
                .is_some_and(|o| o.get("include_usage").and_then(Value::as_bool) == Some(true)),
            // Chat Completions has no prefill: a last assistant message is just history.
            prefill: None,
        })
    }

    fn lead_in(&self) -> bool {
        false
    }

    fn stream(&self, reply: &Reply, meta: &Meta) -> Vec<Frame> {
        let head = format!(
            r#"data: {{"id":{},"object":"chat.completion.chunk","created":{},"model":{},"system_fingerprint":{},"choices":"#,
            q(&meta.message_id),
            meta.created,
            q(&meta.model),
            q(FINGERPRINT)
        );
        // With include_usage every chunk says `"usage":null` until the last.
        let tail = if meta.include_usage {
            r#","usage":null}"#
        } else {
            "}"
        };
        let chunk = |kind: FrameKind, delta: &str, finish: &str| {
            Frame::new(
                kind,
                format!(
                    r#"{head}[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]{tail}"#
                ) + "\n\n",
            )
        };
        let mut frames = Vec::new();
        match &reply.tool_call {
            None => frames.push(chunk(
                FrameKind::Meta,
                r#"{"role":"assistant","content":"","refusal":null}"#,
                "null",
            )),
            Some(call) => frames.push(chunk(
                FrameKind::Meta,
                &format!(
                    r#"{{"role":"assistant","content":null,"tool_calls":[{{"index":0,"id":{},"type":"function","function":{{"name":{},"arguments":""}}}}],"refusal":null}}"#,
                    q(&meta.tool_call_id),
                    q(&call.name)
                ),
                "null",
            )),
        }
        for token in &reply.tokens {
            frames.push(chunk(
                FrameKind::Token,
                &format!(r#"{{"content":{}}}"#, q(token)),
                "null",
            ));
        }
        for piece in reply.tool_call.iter().flat_map(|c| &c.pieces) {
            frames.push(chunk(
                FrameKind::Token,
                &format!(
                    r#"{{"tool_calls":[{{"index":0,"function":{{"arguments":{}}}}}]}}"#,
                    q(piece)
                ),
                "null",
            ));
        }
        frames.push(chunk(
            FrameKind::Closing,
            "{}",
            &q(&finish_reason(reply.stop)),
        ));
        if meta.include_usage {
            frames.push(Frame::new(
                FrameKind::Closing,
                format!(r#"{head}[],"usage":{}}}"#, usage_json(reply)) + "\n\n",
            ));
        }
        frames.push(Frame::new(FrameKind::Closing, "data: [DONE]\n\n"));
        frames
    }

    fn message(&self, reply: &Reply, meta: &Meta) -> Value {
        let mut message = json!({
            "role": "assistant",
            "content": if reply.tool_call.is_some() { Value::Null } else { Value::from(reply.text()) },
            "refusal": null,
        });
        if let Some(call) = &reply.tool_call {
            message["tool_calls"] = json!([{
                "id": meta.tool_call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.input.to_string()},
            }]);
        }
        let usage: Value = serde_json::from_str(&usage_json(reply)).unwrap_or(Value::Null);
        json!({
            "id": meta.message_id,
            "object": "chat.completion",
            "system_fingerprint": FINGERPRINT,
            "created": meta.created,
            "model": meta.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish_reason(reply.stop),
            }],
            "usage": usage,
        })
    }

    fn fault_error(&self, kind: &FaultKind, meta: &Meta) -> Option<ErrorReply> {
        let invalid = |message: &str, param: Option<&str>, code: Option<&str>| {
            ErrorReply::new(
                400,
                error_body(message, "invalid_request_error", param, code),
            )
        };
        Some(match kind {
            FaultKind::RateLimit { retry_after } => rate_limited(*retry_after, meta),
            FaultKind::Quota => ErrorReply::new(
                429,
                error_body(
                    "You exceeded your current quota, please check your plan and billing details. \
                     For more information on this error, read the docs: \
                     https://platform.openai.com/docs/guides/error-codes/api-errors.",
                    "insufficient_quota",
                    None,
                    Some("insufficient_quota"),
                ),
            ),
            FaultKind::Overloaded {
                status,
                retry_after,
            } => overloaded(*status, *retry_after),
            FaultKind::ServerError { status } => ErrorReply::new(
                *status,
                error_body(SERVER_ERROR, "server_error", None, None),
            ),
            FaultKind::BadRequest => invalid(
                "The simulated provider rejected this request (fault bad_request).",
                None,
                None,
            ),
            FaultKind::ContextLength => invalid(
                "This model's maximum context length is 128000 tokens. However, your messages \
                 resulted in 250000 tokens. Please reduce the length of the messages.",
                Some("messages"),
                Some("context_length_exceeded"),
            ),
            FaultKind::ContentFilter => invalid(
                "Your request was rejected as a result of our safety system. Your prompt may \
                 contain text that is not allowed by our safety system.",
                Some("prompt"),
                Some("content_policy_violation"),
            ),
            FaultKind::Auth => ErrorReply::new(
                401,
                error_body(
                    "Incorrect API key provided. You can find your API key at \
                     https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    None,
                    Some("invalid_api_key"),
                ),
            ),
            _ => return None,
        })
    }

    fn invalid_request(&self, message: &str, _meta: &Meta) -> ErrorReply {
        ErrorReply::new(
            400,
            error_body(message, "invalid_request_error", None, None),
        )
    }

    fn stream_error(&self, error_type: &str, _meta: &Meta, _at: usize) -> Bytes {
        let message = match error_type {
            "overloaded_error" => "Overloaded",
            _ => SERVER_ERROR,
        };
        let body = error_body(message, error_type, None, None);
        Bytes::from(format!("data: {body}\n\n"))
    }

    fn malformed(&self, meta: &Meta, _at: usize) -> Bytes {
        Bytes::from(format!(
            "data: {{\"id\":{},\"object\":\"chat.completion.chunk\",\"choi\n\n",
            q(&meta.message_id)
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sim::reply::ToolCall;

    fn lines(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| String::from_utf8(f.bytes.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn chunks_share_an_id_and_end_with_usage_and_done() {
        let reply = Reply {
            tokens: vec!["Hi".into(), " there.".into()],
            tool_call: None,
            stop: Stop::EndTurn,
            input_tokens: 14,
        };
        let meta = Openai.new_meta(&mut Rng::new(1), "gpt-test".into(), true);
        let text = lines(&Openai.stream(&reply, &meta));
        assert_eq!(text.len(), 6);
        assert!(
            text.iter()
                .all(|t| t.starts_with("data: ") && t.ends_with("\n\n"))
        );
        assert_eq!(text[5], "data: [DONE]\n\n");
        let chunks: Vec<Value> = text[..5]
            .iter()
            .map(|t| serde_json::from_str(&t[6..]).unwrap())
            .collect();
        for c in &chunks {
            assert_eq!(c["id"], meta.message_id.as_str());
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "gpt-test");
        }
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": "", "refusal": null})
        );
        assert!(chunks[0]["usage"].is_null() && chunks[0].get("usage").is_some());
        assert_eq!(chunks[2]["choices"][0]["delta"]["content"], " there.");
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[3]["choices"][0]["delta"], json!({}));
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(
            chunks[4]["usage"],
            json!({"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16,
                   "prompt_tokens_details": {"cached_tokens": 0},
                   "completion_tokens_details": {"reasoning_tokens": 0}})
        );
    }

    #[test]
    fn tool_calls_stream_as_deltas() {
        let reply = Reply {
            tokens: vec![],
            tool_call: Some(ToolCall {
                name: "get_weather".into(),
                input: json!({"city": "Paris"}),
                pieces: vec!["{\"ci".into(), "ty\":\"Paris\"}".into()],
            }),
            stop: Stop::ToolUse,
            input_tokens: 30,
        };
        let meta = Openai.new_meta(&mut Rng::new(1), "gpt-test".into(), false);
        let text = lines(&Openai.stream(&reply, &meta));
        let chunks: Vec<Value> = text[..text.len() - 1]
            .iter()
            .map(|t| serde_json::from_str(&t[6..]).unwrap())
            .collect();
        let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
        assert!(first["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(first["type"], "function");
        assert_eq!(first["function"]["name"], "get_weather");
        assert_eq!(first["function"]["arguments"], "");
        assert!(chunks[0].get("usage").is_none());
        let args: String = chunks[1..3]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(args, "{\"city\":\"Paris\"}");
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn the_last_user_message_is_the_one_tools_are_named_in() {
        let body = json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Bash is a tool"},
                {"role": "user", "content": [{"type": "text", "text": "Use `Bash`"}]},
                {"role": "assistant", "content": "ok"},
            ],
        });
        let request = Openai.parse_request(body.to_string().as_bytes()).unwrap();
        assert_eq!(request.last_user, "Use `Bash`");
    }
}
