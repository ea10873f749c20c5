//! The OpenAI Responses API as a server speaks it (`POST /v1/responses`). The events follow the
//! official client's types (`openai-python`, `src/openai/types/responses/`) and the recorded
//! fixture `openai/responses_stream.sse`: every event is `event: TYPE` + `data: JSON` whose
//! `type` is TYPE and whose `sequence_number` is its place in the stream, from 0.
//!
//! Errors before the stream are Chat Completions' (same shapes, same statuses); a stream that
//! fails midway ends with `response.failed`, never `response.completed`.

use bytes::Bytes;
use serde_json::{Value, json};

use super::fault::FaultKind;
use super::openai::{Openai, openai_meta};
use super::reply::{Reply, SimRequest, Stop, Tool};
use super::rng::Rng;
use super::wire::{
    ErrorReply, Frame, FrameKind, Meta, Wire, content_text, fields, last_user_text, model,
    raw_items, streams, token_limit, value,
};
use crate::json::Fields;
use crate::protocol::responses::output_text_part as text_part;

pub(crate) struct Responses;

/// The ids of one response's output items, derived from the response's (`resp_X` → `msg_X`,
/// `fc_X`), so that every event of a response names the same items.
fn item_id(meta: &Meta, prefix: &str) -> String {
    let suffix = meta
        .message_id
        .strip_prefix("resp_")
        .unwrap_or(&meta.message_id);
    format!("{prefix}_{suffix}")
}

fn status(stop: Stop) -> &'static str {
    match crate::protocol::responses::wire_incomplete_reason(stop.into(), false) {
        Some(_) => "incomplete",
        None => "completed",
    }
}

fn usage(reply: &Reply) -> Value {
    crate::protocol::responses::usage_json(&reply.usage())
}

/// The Response object, as in `response.created` (no output yet, `in_progress`), in the terminal
/// events and as the whole non-streamed reply.
fn response(meta: &Meta, status: &str, output: Vec<Value>, usage: Value) -> Value {
    let mut response = json!({
        "id": meta.message_id,
        "object": "response",
        "created_at": meta.created,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "max_tool_calls": null,
        "model": meta.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "prompt_cache_key": null,
        "reasoning": {"effort": null, "summary": null},
        "safety_identifier": null,
        "service_tier": "default",
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": null,
        "metadata": {},
    });
    // The request's own settings, as the API repeats them.
    if let Some(object) = response.as_object_mut() {
        for (key, value) in &meta.echo {
            object.insert(key.clone(), value.clone());
        }
    }
    match status {
        "completed" => response["completed_at"] = json!(meta.created),
        "incomplete" => {
            response["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        _ => {}
    }
    response
}

/// The reply's output items, finished: the message (when the model said something), then the
/// function call.
fn output(reply: &Reply, meta: &Meta) -> Vec<Value> {
    let mut items = Vec::new();
    if !reply.tokens.is_empty() || reply.tool_call.is_none() {
        items.push(message_item(
            meta,
            status(reply.stop),
            vec![text_part(&reply.text())],
        ));
    }
    if let Some(call) = &reply.tool_call {
        items.push(call_item(
            meta,
            "completed",
            &call.name,
            &call.input.to_string(),
        ));
    }
    items
}

fn message_item(meta: &Meta, status: &str, content: Vec<Value>) -> Value {
    crate::protocol::responses::message_item(&item_id(meta, "msg"), status, content)
}

fn call_item(meta: &Meta, status: &str, name: &str, arguments: &str) -> Value {
    crate::protocol::responses::function_call_item(
        &item_id(meta, "fc"),
        status,
        &meta.tool_call_id,
        name,
        arguments,
    )
}

/// One event; its sequence number is the frame's place in the stream.
fn event(kind: FrameKind, sequence: usize, event_type: &str, data: Value) -> Frame {
    let sequence = u64::try_from(sequence).unwrap_or(u64::MAX);
    Frame::new(
        kind,
        crate::protocol::responses::event_frame(event_type, sequence, data),
    )
}

/// Frames numbered as they are added.
struct Events(Vec<Frame>);

impl Events {
    fn push(&mut self, kind: FrameKind, event_type: &str, data: Value) {
        let sequence = self.0.len();
        self.0.push(event(kind, sequence, event_type, data));
    }
}

/// The request's fields the response object repeats.
const ECHOED: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "reasoning",
    "safety_identifier",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "user",
];

/// What the simulator reads of `input`.
struct Input {
    /// The instructions and every item's text, in order.
    prompt: String,
    items: usize,
    last_user: String,
    after_tool_result: bool,
}

/// `input`: a string (one user message) or a list of items, read one at a time (the value of
/// the whole list is never built: a long conversation is read item by item).
fn read_input(body: &Fields<'_>, mut prompt: String) -> Result<Input, String> {
    match body.value("input") {
        None => Err("Missing required parameter: 'input'.".into()),
        Some(Value::String(text)) => {
            prompt.push('\n');
            prompt.push_str(&text);
            Ok(Input {
                prompt,
                items: 1,
                last_user: text,
                after_tool_result: false,
            })
        }
        Some(Value::Array(_)) => {
            let items = raw_items(body, "input").unwrap_or_default();
            let mut last_type = None;
            for item in &items {
                let item = value(item);
                let text = match item.get("output") {
                    Some(output) => content_text(output),
                    None => item.get("content").map(content_text).unwrap_or_default(),
                };
                prompt.push('\n');
                prompt.push_str(&text);
                last_type = item.get("type").and_then(Value::as_str).map(String::from);
            }
            Ok(Input {
                prompt,
                items: items.len(),
                last_user: last_user_text(&items),
                after_tool_result: last_type.as_deref() == Some("function_call_output"),
            })
        }
        Some(_) => {
            Err("Invalid type for 'input': expected a string or an array of input items.".into())
        }
    }
}

/// The `function` tools offered (the built-in ones have no schema to answer from).
fn function_tools(body: &Fields<'_>) -> Vec<Tool> {
    raw_items(body, "tools")
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let t = value(t);
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return None;
            }
            Some(Tool {
                name: t.get("name")?.as_str()?.to_string(),
                schema: t.get("parameters").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

impl Wire for Responses {
    fn path(&self) -> &'static str {
        crate::protocol::responses::PATH
    }

    fn request_id_header(&self) -> &'static str {
        crate::protocol::chat::REQUEST_ID_HEADER
    }

    fn new_meta(&self, rng: &mut Rng, model: String, include_usage: bool) -> Meta {
        openai_meta(rng, model, include_usage, |rng| {
            format!(
                "resp_{:016x}{:016x}{:016x}",
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64()
            )
        })
    }

    fn parse_request(&self, body: &[u8]) -> Result<SimRequest, String> {
        let body = fields(body, "The request body must be a JSON object.")?;
        let max_tokens = token_limit(
            &body,
            &["max_output_tokens"],
            "Invalid 'max_output_tokens': expected an integer.",
        )?;
        let instructions = body
            .value("instructions")
            .map(|s| content_text(&s))
            .unwrap_or_default();
        let input = read_input(&body, instructions)?;
        Ok(SimRequest {
            model: model(&body),
            echo: body.values_of(ECHOED),
            prompt: input.prompt,
            messages: input.items,
            last_user: input.last_user,
            max_tokens,
            tools: function_tools(&body),
            tools_disabled: body
                .value("tool_choice")
                .is_some_and(|c| c.as_str() == Some("none")),
            after_tool_result: input.after_tool_result,
            stream: streams(&body),
            // The terminal event always carries the usage.
            include_usage: true,
            prefill: None,
        })
    }

    fn lead_in(&self) -> bool {
        false
    }

    fn stream(&self, reply: &Reply, meta: &Meta) -> Vec<Frame> {
        use FrameKind::{Closing, Meta as M, Token};
        let mut events = Events(Vec::new());
        let started = response(meta, "in_progress", Vec::new(), Value::Null);
        events.push(M, "response.created", json!({"response": started}));
        events.push(M, "response.in_progress", json!({"response": started}));
        let mut output_index = 0;
        if !reply.tokens.is_empty() || reply.tool_call.is_none() {
            let id = item_id(meta, "msg");
            let at = |content_index: bool| {
                let mut place = json!({"item_id": id, "output_index": output_index});
                if content_index {
                    place["content_index"] = json!(0);
                }
                place
            };
            let mut added = at(false);
            added["item"] = message_item(meta, "in_progress", Vec::new());
            events.push(M, "response.output_item.added", added);
            let mut part = at(true);
            part["part"] = text_part("");
            events.push(M, "response.content_part.added", part);
            for token in &reply.tokens {
                let mut delta = at(true);
                delta["delta"] = json!(token);
                delta["logprobs"] = json!([]);
                events.push(Token, "response.output_text.delta", delta);
            }
            let text = reply.text();
            let mut done = at(true);
            done["text"] = json!(text);
            done["logprobs"] = json!([]);
            events.push(M, "response.output_text.done", done);
            let mut part = at(true);
            part["part"] = text_part(&text);
            events.push(M, "response.content_part.done", part);
            let mut done = at(false);
            done["item"] = message_item(meta, status(reply.stop), vec![text_part(&text)]);
            events.push(M, "response.output_item.done", done);
            output_index += 1;
        }
        if let Some(call) = &reply.tool_call {
            let id = item_id(meta, "fc");
            let at = || json!({"item_id": id, "output_index": output_index});
            let mut added = at();
            added["item"] = call_item(meta, "in_progress", &call.name, "");
            events.push(M, "response.output_item.added", added);
            for piece in &call.pieces {
                let mut delta = at();
                delta["delta"] = json!(piece);
                events.push(Token, "response.function_call_arguments.delta", delta);
            }
            let arguments = call.input.to_string();
            let mut done = at();
            done["arguments"] = json!(arguments);
            events.push(M, "response.function_call_arguments.done", done);
            let mut done = at();
            done["item"] = call_item(meta, "completed", &call.name, &arguments);
            events.push(M, "response.output_item.done", done);
        }
        let status = status(reply.stop);
        let finished = response(meta, status, output(reply, meta), usage(reply));
        events.push(
            Closing,
            &format!("response.{status}"),
            json!({"response": finished}),
        );
        events.0
    }

    fn message(&self, reply: &Reply, meta: &Meta) -> Value {
        response(meta, status(reply.stop), output(reply, meta), usage(reply))
    }

    fn fault_error(&self, kind: &FaultKind, meta: &Meta) -> Option<ErrorReply> {
        // The Responses API answers errors as Chat Completions does.
        Openai.fault_error(kind, meta)
    }

    fn invalid_request(&self, message: &str, meta: &Meta) -> ErrorReply {
        Openai.invalid_request(message, meta)
    }

    fn stream_error(&self, error_type: &str, meta: &Meta, at: usize) -> Bytes {
        // The Responses API names few codes (`server_error`, `rate_limit_exceeded`, …): an
        // Anthropic-style type becomes `server_error`, with a message that says what it was.
        let (code, message) = match error_type {
            "overloaded_error" => ("server_error", "The server is overloaded or not ready yet."),
            "api_error" | "server_error" => (
                "server_error",
                "The server had an error while processing your request. Sorry about that!",
            ),
            other => (other, "The simulated provider failed mid-stream."),
        };
        let mut failed = response(meta, "failed", Vec::new(), Value::Null);
        failed["error"] = json!({"code": code, "message": message});
        event(
            FrameKind::Closing,
            at,
            "response.failed",
            json!({"response": failed}),
        )
        .bytes
    }

    fn malformed(&self, meta: &Meta, at: usize) -> Bytes {
        // A delta cut off before its end (and its `type`), written as the others are.
        Bytes::from(format!(
            "event: response.output_text.delta\ndata: {{\"content_index\":0,\"delta\":\" and\",\"item_id\":{},\"logprobs\":[],\"output_index\":0,\"sequence_number\":{at},\"ty\n\n",
            Value::from(item_id(meta, "msg"))
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sim::reply::ToolCall;

    fn events(frames: &[Frame]) -> Vec<(String, Value)> {
        frames
            .iter()
            .map(|f| {
                let text = std::str::from_utf8(&f.bytes).unwrap();
                let (head, data) = text.split_once('\n').unwrap();
                let name = head.strip_prefix("event: ").unwrap().to_string();
                assert!(data.ends_with("\n\n"));
                let data = data.strip_prefix("data: ").unwrap().trim_end();
                let data: Value = serde_json::from_str(data).unwrap();
                (name, data)
            })
            .collect()
    }

    fn meta() -> Meta {
        Responses.new_meta(&mut Rng::new(1), "gpt-test".into(), true)
    }

    #[test]
    fn the_lifecycle_is_numbered_and_ends_with_completed() {
        let reply = Reply {
            tokens: vec!["Hi".into(), " there.".into()],
            tool_call: None,
            stop: Stop::EndTurn,
            input_tokens: 14,
        };
        let meta = meta();
        let frames = Responses.stream(&reply, &meta);
        let events = events(&frames);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, (name, data)) in events.iter().enumerate() {
            assert_eq!(data["type"], name.as_str());
            assert_eq!(data["sequence_number"], i);
        }
        let kinds: Vec<FrameKind> = frames.iter().map(|f| f.kind).collect();
        assert_eq!(kinds[4..6], [FrameKind::Token, FrameKind::Token]);
        assert_eq!(kinds[9], FrameKind::Closing);
        let completed = &events[9].1["response"];
        assert_eq!(completed["id"], meta.message_id.as_str());
        assert_eq!(completed["status"], "completed");
        assert_eq!(completed["output"][0]["content"][0]["text"], "Hi there.");
        assert_eq!(completed["usage"]["total_tokens"], 16);
        assert_eq!(events[6].1["text"], "Hi there.");
        assert!(events[0].1["response"]["usage"].is_null());
    }

    #[test]
    fn a_tool_call_streams_its_arguments_and_a_capped_reply_is_incomplete() {
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
        let meta = meta();
        let streamed = events(&Responses.stream(&reply, &meta));
        let added = &streamed[2].1;
        assert_eq!(added["item"]["type"], "function_call");
        assert_eq!(added["item"]["call_id"], meta.tool_call_id.as_str());
        assert_eq!(added["output_index"], 0);
        let args: String = streamed
            .iter()
            .filter(|(n, _)| n == "response.function_call_arguments.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(args, "{\"city\":\"Paris\"}");
        let (last, data) = streamed.last().unwrap();
        assert_eq!(last, "response.completed");
        assert_eq!(data["response"]["output"][0]["arguments"], args.as_str());

        let capped = Reply {
            tokens: vec!["One".into()],
            tool_call: None,
            stop: Stop::MaxTokens,
            input_tokens: 3,
        };
        let streamed = events(&Responses.stream(&capped, &meta));
        let (last, data) = streamed.last().unwrap();
        assert_eq!(last, "response.incomplete");
        assert_eq!(
            data["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
    }

    #[test]
    fn requests_are_read_from_a_string_or_items() {
        let request = Responses
            .parse_request(br#"{"model":"m","input":"Hello","instructions":"Be terse."}"#)
            .unwrap();
        assert_eq!(
            (request.prompt.as_str(), request.messages),
            ("Be terse.\nHello", 1)
        );
        let request = Responses
            .parse_request(
                br#"{"input":[{"role":"user","content":[{"type":"input_text","text":"Weather?"}]},
                    {"type":"function_call","call_id":"c","name":"w","arguments":"{}"},
                    {"type":"function_call_output","call_id":"c","output":"18C"}],
                    "tools":[{"type":"function","name":"w","parameters":{"type":"object"}},{"type":"web_search"}],
                    "max_output_tokens":50,"stream":true}"#,
            )
            .unwrap();
        assert_eq!(request.messages, 3);
        assert!(request.after_tool_result && request.stream);
        assert_eq!(request.max_tokens, Some(50));
        assert!(request.prompt.contains("Weather?") && request.prompt.contains("18C"));
        assert_eq!(request.tools.len(), 1);
        for (body, says) in [
            (r#"{"model":"m"}"#, "'input'"),
            (r#"{"input":3}"#, "Invalid type for 'input'"),
            (
                r#"{"input":"x","max_output_tokens":"many"}"#,
                "max_output_tokens",
            ),
        ] {
            let error = Responses.parse_request(body.as_bytes()).unwrap_err();
            assert!(error.contains(says), "{body}: {error}");
        }
    }

    #[test]
    fn a_mid_stream_error_is_response_failed_with_the_next_number() {
        let bytes = Responses.stream_error("overloaded_error", &meta(), 7);
        let text = std::str::from_utf8(&bytes).unwrap();
        let data: Value = serde_json::from_str(
            text.strip_prefix("event: response.failed\ndata: ")
                .unwrap()
                .trim_end(),
        )
        .unwrap();
        assert_eq!(data["sequence_number"], 7);
        assert_eq!(data["response"]["status"], "failed");
        assert_eq!(data["response"]["error"]["code"], "server_error");
        let bytes = Responses.malformed(&meta(), 4);
        assert!(
            std::str::from_utf8(&bytes)
                .unwrap()
                .contains("\"sequence_number\":4")
        );
    }
}
