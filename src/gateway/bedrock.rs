//! Bedrock's Converse API on the gateway (`POST /model/{modelId}/converse-stream` and
//! `/converse`), for a `boto3` `bedrock-runtime` client whose `endpoint_url` is the gateway.
//!
//! - Inbound: [`parse_request`] reads a Converse body into a [`Request`]; the model id and the
//!   operation come from the path (the handler hands them over in [`MODEL_HEADER`] and
//!   [`STREAM_HEADER`], which it sets itself). The body is kept as the passthrough original, so a
//!   Bedrock target gets it as sent.
//! - Outbound, streaming: [`ConverseEncoder`] writes the stream as the gateway's other encoders
//!   do, one SSE frame per Converse event (named by its `:event-type`, an exception
//!   `exception:{name}`); [`reframe`] turns those frames into AWS event-stream messages on the way
//!   out, so the client reads real `application/vnd.amazon.eventstream` framing. An upstream
//!   Bedrock event passes through as it came (its type and payload unchanged).
//! - Outbound, whole: [`whole_response`].
//!
//! The gateway does not verify SigV4 (it holds no AWS secret); its own token, when it has one, is
//! sent in `x-breakerbox-token` (docs/bedrock.md shows the boto3 event hook that adds it).

use super::wire::{InboundOptions, WireError};
use crate::protocol::bedrock::{self as protocol};
use crate::provider::bedrock::EXCEPTION_EVENT;
use crate::provider::sse::{Decoder, SseItem};
use crate::provider::{
    Content, ErrorClass, Message, ProviderError, Request, Role, StopReason, StreamEvent,
    ToolChoice, ToolDef, Usage,
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// Set by the Converse handler: the path's model id.
pub const MODEL_HEADER: &str = "x-breakerbox-converse-model";
/// Set by the Converse handler: `true` for ConverseStream.
pub const STREAM_HEADER: &str = "x-breakerbox-converse-stream";

fn field_error(param: &str, problem: &str) -> WireError {
    WireError::field(param, problem)
}

/// A Converse request: the [`Request`] and what the client asked of the reply.
pub fn parse_request(
    body: &[u8],
    model: &str,
    stream: bool,
) -> Result<(Request, InboundOptions), WireError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WireError::body(format!("the body is not JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| WireError::body("the body must be a JSON object"))?;
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| field_error("messages", "required, a list of messages"))?;
    let mut parsed = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        parsed.push(message(m, i)?);
    }
    let system: Vec<&str> = obj
        .get("system")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let inference = obj.get("inferenceConfig").cloned().unwrap_or(Value::Null);
    let max_tokens = match inference.get("maxTokens") {
        None => 4096,
        Some(v) => v
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .filter(|m| *m >= 1)
            .ok_or_else(|| field_error("inferenceConfig.maxTokens", "a whole number from 1"))?,
    };
    let number = |key: &str| inference.get(key).and_then(Value::as_f64).map(|v| v as f32);
    let (tools, tool_choice) = tool_config(obj.get("toolConfig"));
    let request = Request {
        model: String::new(),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: Arc::new(parsed),
        tools,
        max_tokens,
        temperature: number("temperature"),
        top_p: number("topP"),
        stop: inference
            .get("stopSequences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        tool_choice,
        top_k: value
            .pointer("/additionalModelRequestFields/top_k")
            .and_then(Value::as_u64)
            .and_then(|k| u32::try_from(k).ok()),
        ..Request::default()
    };
    let options = InboundOptions {
        stream,
        include_usage: true,
        model: model.to_string(),
    };
    Ok((request, options))
}

fn message(m: &Value, i: usize) -> Result<Message, WireError> {
    let role = match m.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        _ => {
            return Err(field_error(
                &format!("messages[{i}].role"),
                "`user` or `assistant`",
            ));
        }
    };
    let content = m
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| field_error(&format!("messages[{i}].content"), "a list of blocks"))?
        .iter()
        .filter_map(block)
        .collect();
    Ok(Message { role, content })
}

/// A content block; `None` for what has no equivalent (reasoning, guard content, cache points,
/// S3 sources).
fn block(b: &Value) -> Option<Content> {
    if let Some(text) = b.get("text").and_then(Value::as_str) {
        return Some(Content::Text { text: text.into() });
    }
    let media = |kind: &str, item: &Value| {
        let format = item.get("format").and_then(Value::as_str)?;
        let data = item.pointer("/source/bytes").and_then(Value::as_str)?;
        let media_type = match (kind, format) {
            ("image", "jpg") => "image/jpeg".to_string(),
            ("image", f) => format!("image/{f}"),
            (_, "pdf") => "application/pdf".to_string(),
            (_, f) => format!("text/{f}"),
        };
        Some(format!("data:{media_type};base64,{data}"))
    };
    if let Some(image) = b.get("image") {
        return media("image", image).map(|url| Content::Image { url });
    }
    if let Some(doc) = b.get("document") {
        return media("document", doc).map(|url| Content::File {
            url,
            filename: doc.get("name").and_then(Value::as_str).map(str::to_string),
        });
    }
    if let Some(tool) = b.get("toolUse") {
        return Some(Content::ToolUse {
            id: tool.get("toolUseId")?.as_str()?.to_string(),
            name: tool.get("name")?.as_str()?.to_string(),
            input: tool.get("input").cloned().unwrap_or_else(|| json!({})),
        });
    }
    let result = b.get("toolResult")?;
    let content = result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| match (c.get("text"), c.get("json")) {
            (Some(Value::String(t)), _) => t.clone(),
            (_, Some(json)) => json.to_string(),
            _ => String::new(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Some(Content::ToolResult {
        tool_use_id: result.get("toolUseId")?.as_str()?.to_string(),
        content,
        is_error: result.get("status").and_then(Value::as_str) == Some("error"),
    })
}

fn tool_config(config: Option<&Value>) -> (Vec<ToolDef>, Option<ToolChoice>) {
    let Some(config) = config else {
        return (Vec::new(), None);
    };
    let tools = config
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let spec = t.get("toolSpec")?;
            Some(ToolDef {
                name: spec.get("name")?.as_str()?.to_string(),
                description: spec
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                input_schema: spec
                    .pointer("/inputSchema/json")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            })
        })
        .collect();
    let choice = config.get("toolChoice").and_then(|c| {
        if c.get("auto").is_some() {
            Some(ToolChoice::Auto)
        } else if c.get("any").is_some() {
            Some(ToolChoice::Any)
        } else {
            let name = c.pointer("/tool/name")?.as_str()?;
            Some(ToolChoice::Tool { name: name.into() })
        }
    });
    (tools, choice)
}

/// A Converse event as the SSE frame the gateway's pipeline carries until [`reframe`].
fn frame(event_type: &str, payload: &Value) -> String {
    format!("event: {event_type}\ndata: {payload}\n\n")
}

/// The exception a stream ends with for a failure of `class`, named as in-stream exceptions are.
fn stream_exception(class: ErrorClass) -> String {
    let name = protocol::stream_exception_name(protocol::error_for(class).1);
    if protocol::STREAM_EXCEPTIONS.contains(&name.as_str()) {
        name
    } else {
        "modelStreamErrorException".to_string()
    }
}

/// Our stream events → Converse stream events.
#[derive(Debug, Default)]
pub struct ConverseEncoder {
    started: bool,
    /// The open content block: its index and whether it holds text.
    open: Option<(u64, bool)>,
    next_index: u64,
    /// Our tool-call index → its content block's index.
    tools: HashMap<u32, u64>,
    usage: Usage,
    finished: bool,
}

impl ConverseEncoder {
    fn start(&mut self, out: &mut Vec<String>) {
        if !self.started {
            self.started = true;
            out.push(frame("messageStart", &json!({"role": "assistant"})));
        }
    }

    fn close(&mut self, out: &mut Vec<String>) {
        if let Some((index, _)) = self.open.take() {
            out.push(frame(
                "contentBlockStop",
                &json!({ "contentBlockIndex": index }),
            ));
        }
    }

    fn open_block(&mut self, text: bool, out: &mut Vec<String>) -> u64 {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, text));
        index
    }

    fn text(&mut self, text: &str, out: &mut Vec<String>) {
        self.start(out);
        let index = match self.open {
            Some((index, true)) => index,
            _ => self.open_block(true, out),
        };
        out.push(frame(
            "contentBlockDelta",
            &json!({"contentBlockIndex": index, "delta": {"text": text}}),
        ));
    }

    fn done(&mut self, stop: StopReason, raw: Option<&str>, out: &mut Vec<String>) {
        self.start(out);
        self.close(out);
        out.push(frame(
            "messageStop",
            &json!({ "stopReason": protocol::wire_stop_reason(stop, raw) }),
        ));
        out.push(frame(
            "metadata",
            &json!({"usage": protocol::usage_json(&self.usage), "metrics": {"latencyMs": 0}}),
        ));
        self.finished = true;
    }
}

impl super::wire::Encode for ConverseEncoder {
    fn event(&mut self, event: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        match event {
            StreamEvent::MessageStart { .. } => self.start(&mut out),
            StreamEvent::TextDelta { text } | StreamEvent::RefusalDelta { text } => {
                self.text(text, &mut out)
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.start(&mut out);
                let block = self.open_block(false, &mut out);
                self.tools.insert(*index, block);
                out.push(frame(
                    "contentBlockStart",
                    &json!({"contentBlockIndex": block,
                            "start": {"toolUse": {"toolUseId": id, "name": name}}}),
                ));
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                if let Some(block) = self.tools.get(index) {
                    out.push(frame(
                        "contentBlockDelta",
                        &json!({"contentBlockIndex": block,
                                "delta": {"toolUse": {"input": partial_json}}}),
                    ));
                }
            }
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::Done {
                stop_reason,
                raw_stop_reason,
            } => self.done(*stop_reason, raw_stop_reason.as_deref(), &mut out),
            // Reasoning from another protocol has no signature a Bedrock model would take back.
            _ => {}
        }
        out
    }

    fn error(&mut self, err: &ProviderError) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let name = stream_exception(err.class);
        vec![frame(
            &format!("{EXCEPTION_EVENT}{name}"),
            &json!({ "message": super::wire::error_message(err) }),
        )]
    }

    fn wire(&mut self, event: Option<&str>, data: &str) -> Vec<String> {
        let kind = event.unwrap_or_default();
        let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        let index = value.get("contentBlockIndex").and_then(Value::as_u64);
        match kind {
            "messageStart" => self.started = true,
            "contentBlockStart" | "contentBlockDelta" => {
                if let Some(i) = index {
                    self.open = Some((i, value.pointer("/delta/text").is_some()));
                    self.next_index = self.next_index.max(i + 1);
                }
            }
            "contentBlockStop" => self.open = None,
            "metadata" => self.finished = true,
            _ => {}
        }
        vec![format!("event: {kind}\ndata: {data}\n\n")]
    }

    fn finish(&mut self) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.error(&super::wire::upstream_cut())
    }
}

/// The frames an encoder wrote, as AWS event-stream messages: each SSE event becomes one message
/// with its name as `:event-type` (an `exception:` name as an exception message); comments (the
/// gateway's trailer) are left out.
pub fn reframe<S, E>(body: S) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send + 'static,
{
    let mut decoder = Decoder::new(usize::MAX);
    body.map(move |chunk| {
        let chunk = chunk?;
        let mut events: Vec<SseItem> = Vec::new();
        decoder.feed(&chunk, &mut events);
        let mut out = Vec::new();
        for event in events.into_iter().flatten() {
            out.extend_from_slice(&message_of(
                event.event.as_deref().unwrap_or_default(),
                event.data,
            ));
        }
        Ok(Bytes::from(out))
    })
}

fn message_of(name: &str, data: String) -> Bytes {
    match name.strip_prefix(EXCEPTION_EVENT) {
        Some(exception) => protocol::message(
            &[
                (":exception-type", exception),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            data.into_bytes(),
        ),
        None => protocol::message(
            &[
                (":event-type", name),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            data.into_bytes(),
        ),
    }
}

/// A whole Converse response from the reply's events (after its last rewind).
pub fn whole_response(events: &[StreamEvent]) -> Value {
    let start = events
        .iter()
        .rposition(|e| matches!(e, StreamEvent::Rewind { .. }))
        .map_or(0, |i| i + 1);
    let mut content: Vec<Value> = Vec::new();
    let mut tools: Vec<(u32, String, String, String)> = Vec::new();
    let (mut usage, mut stop) = (Usage::default(), None);
    for event in &events[start..] {
        match event {
            StreamEvent::TextDelta { text } | StreamEvent::RefusalDelta { text } => {
                match content.last_mut().and_then(|c| c.get_mut("text")) {
                    Some(Value::String(so_far)) => so_far.push_str(text),
                    _ => content.push(json!({ "text": text })),
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                tools.push((*index, id.clone(), name.clone(), String::new()))
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                if let Some(t) = tools.iter_mut().find(|t| t.0 == *index) {
                    t.3.push_str(partial_json);
                }
            }
            StreamEvent::Usage(u) => usage = *u,
            StreamEvent::Done {
                stop_reason,
                raw_stop_reason,
            } => {
                stop = Some(protocol::wire_stop_reason(
                    *stop_reason,
                    raw_stop_reason.as_deref(),
                ))
            }
            _ => {}
        }
    }
    for (_, id, name, input) in tools {
        let input: Value = serde_json::from_str(&input).unwrap_or_else(|_| json!({}));
        content.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
    }
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop.unwrap_or_else(|| "end_turn".into()),
        "usage": protocol::usage_json(&usage),
        "metrics": {"latencyMs": 0},
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::wire::Encode;
    use super::*;

    #[test]
    fn a_converse_body_becomes_a_request() {
        let body = json!({
            "system": [{"text": "terse"}],
            "messages": [
                {"role": "user", "content": [{"text": "hi"}, {"image": {"format": "png", "source": {"bytes": "AAAA"}}}]},
                {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": "x", "signature": "s"}}},
                                                  {"toolUse": {"toolUseId": "t", "name": "f", "input": {"a": 1}}}]},
                {"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "ok"}], "status": "error"}}]},
            ],
            "inferenceConfig": {"maxTokens": 50, "temperature": 0.5, "stopSequences": ["X"]},
            "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
                           "toolChoice": {"tool": {"name": "f"}}},
        });
        let (r, o) = parse_request(body.to_string().as_bytes(), "m", true).unwrap();
        assert_eq!((o.model.as_str(), o.stream), ("m", true));
        assert_eq!(r.system.as_deref(), Some("terse"));
        assert_eq!(
            (r.max_tokens, r.temperature, r.stop.clone()),
            (50, Some(0.5), vec!["X".to_string()])
        );
        assert_eq!(
            r.messages[0].content[1],
            Content::Image {
                url: "data:image/png;base64,AAAA".into()
            }
        );
        assert_eq!(r.messages[1].content.len(), 1, "the reasoning is dropped");
        assert!(
            matches!(&r.messages[2].content[0], Content::ToolResult { is_error: true, content, .. } if content == "ok")
        );
        assert_eq!(r.tool_choice, Some(ToolChoice::Tool { name: "f".into() }));
        assert!(parse_request(b"{}", "m", true).is_err());
    }

    #[tokio::test]
    async fn the_encoder_writes_converse_events_that_reframe_into_event_stream_messages() {
        let mut enc = ConverseEncoder::default();
        let mut sse = String::new();
        for e in [
            StreamEvent::MessageStart {
                id: "x".into(),
                model: "m".into(),
            },
            StreamEvent::TextDelta { text: "Hi".into() },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "t1".into(),
                name: "f".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                partial_json: "{}".into(),
            },
            StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 2,
                ..Usage::default()
            }),
            StreamEvent::Done {
                stop_reason: StopReason::ToolUse,
                raw_stop_reason: Some("tool_calls".into()),
            },
        ] {
            sse.extend(enc.event(&e));
        }
        assert!(enc.finish().is_empty());
        let body: Vec<Result<Bytes, ()>> =
            reframe(futures::stream::iter([Ok::<_, ()>(Bytes::from(sse))]))
                .collect()
                .await;
        let mut decoder = protocol::Decoder::new(1 << 20);
        for chunk in body {
            decoder.feed(&chunk.unwrap());
        }
        let mut seen = Vec::new();
        while let Some(protocol::Frame::Event {
            event_type,
            payload,
        }) = decoder.next_frame().unwrap()
        {
            seen.push((event_type, serde_json::from_str::<Value>(&payload).unwrap()));
        }
        let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "messageStart",
                "contentBlockDelta",
                "contentBlockStop",
                "contentBlockStart",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
        assert_eq!(seen[3].1["contentBlockIndex"], 1);
        assert_eq!(seen[6].1["stopReason"], "tool_use");
        assert_eq!(seen[7].1["usage"]["inputTokens"], 3);
    }
}
