//! The OpenAI Responses API, streaming (`POST {base_url}/responses`, the base URL ending in `/v1`
//! as for Chat Completions). Ground truth: the official clients' types (`openai-python`,
//! `src/openai/types/responses/`).
//!
//! What has no equivalent here: `stop` sequences (the Responses API has none; they are dropped)
//! and a tool result's `is_error` (a `function_call_output` is only its text). The end user's id
//! goes as `safety_identifier`, which replaces the deprecated `user` for abuse monitoring (the
//! other half of `user`, cache bucketing, is `prompt_cache_key`, which breakerbox does not set).

use super::http::{self, Failure, Flow, SseParser};
use super::sse::SseEvent;
use super::{
    ApiKey, Content, ErrorClass, Protocol, Provider, ProviderConfig, ProviderStream, Request, Role,
    StopReason, StreamEvent, ToolChoice, Usage,
};
use crate::json;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, InvalidHeaderValue,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::VecDeque;

pub struct ResponsesClient {
    config: ProviderConfig,
    http: reqwest::Client,
}

impl ResponsesClient {
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        ResponsesClient { config, http }
    }

    /// The JSON body for `request`: the caller's own when it came in this protocol (see
    /// [`super::passthrough`]), else built from it; the model defaults to the configured one.
    pub fn request_body(&self, request: &Request) -> String {
        let model = request.model_or(&self.config.model);
        if let Some(body) = super::passthrough::body(request, Protocol::OpenaiResponses, model) {
            return body;
        }
        // `store: false`: a failover engine replays the whole conversation on every attempt, so
        // nothing needs keeping upstream (and a stored response would outlive the request).
        let mut body = json!({
            "model": model,
            "stream": true,
            "store": false,
            "max_output_tokens": request.max_tokens,
        });
        if let Some(system) = &request.system {
            body["instructions"] = json!(system);
        }
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = request.top_p {
            body["top_p"] = json!(p);
        }
        if let Some(user) = &request.user {
            body["safety_identifier"] = json!(user);
        }
        if let Some(effort) = &request.reasoning_effort {
            body["reasoning"] = json!({ "effort": effort });
        }
        if let Some(format) = &request.output_format {
            body["text"] = json!({ "format": format.to_openai(false) });
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    // The Responses API makes function tools strict unless told otherwise, and a
                    // strict tool's schema must meet rules ours need not: say `false`.
                    let mut tool = json!({
                        "type": "function",
                        "name": t.name,
                        "parameters": t.input_schema,
                        "strict": false,
                    });
                    if !t.description.is_empty() {
                        tool["description"] = json!(t.description);
                    }
                    tool
                })
                .collect();
            body["tools"] = json!(tools);
            if let Some(choice) = &request.tool_choice {
                body["tool_choice"] = match choice {
                    ToolChoice::Auto => json!("auto"),
                    ToolChoice::None => json!("none"),
                    ToolChoice::Any => json!("required"),
                    ToolChoice::Tool { name } => json!({"type": "function", "name": name}),
                };
            }
            if let Some(parallel) = request.parallel_tool_calls {
                body["parallel_tool_calls"] = json!(parallel);
            }
        }
        // The input items one at a time: a long conversation is never a tree in memory.
        let items = request.messages.iter().flat_map(|message| {
            let mut out = Vec::new();
            push_items(message.role, &message.content, &mut out);
            out
        });
        json::object_with_array(&body, "input", items)
    }

    fn headers(&self, key: &ApiKey) -> Result<HeaderMap, InvalidHeaderValue> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        // Local servers need no key, and some reject an empty bearer token.
        if !key.is_empty() {
            let bearer = format!("Bearer {}", key.expose());
            headers.insert(AUTHORIZATION, http::secret_header(&bearer)?);
        }
        Ok(headers)
    }
}

/// One of our messages as Responses input items: tool results become `function_call_output`
/// items (first, as they answer the calls just before), the text and images one `message`, and an
/// assistant's tool calls `function_call` items after its words.
fn push_items(role: Role, content: &[Content], items: &mut Vec<Value>) {
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for block in content {
        match (role, block) {
            (Role::User | Role::System, Content::Text { text }) => {
                parts.push(json!({"type": "input_text", "text": text}));
            }
            (Role::Assistant, Content::Text { text }) => {
                parts.push(json!({"type": "output_text", "text": text, "annotations": []}));
            }
            (Role::User, Content::Image { url }) => {
                parts.push(json!({"type": "input_image", "image_url": url, "detail": "auto"}));
            }
            (Role::User, Content::File { url, filename }) => {
                let mut part = match super::data_url(url) {
                    Some(_) => json!({"type": "input_file", "file_data": url}),
                    None => json!({"type": "input_file", "file_url": url}),
                };
                part["filename"] = json!(filename.as_deref().unwrap_or("document.pdf"));
                parts.push(part);
            }
            // A model's reply, or an instruction, holds no image or file input.
            (Role::Assistant | Role::System, Content::Image { .. } | Content::File { .. }) => {}
            (_, Content::ToolUse { id, name, input }) => calls.push(json!({
                "type": "function_call",
                "call_id": id,
                "name": name,
                "arguments": input.to_string(),
            })),
            (
                _,
                Content::ToolResult {
                    tool_use_id,
                    content,
                    ..
                },
            ) => items.push(json!({
                "type": "function_call_output",
                "call_id": tool_use_id,
                "output": content,
            })),
        }
    }
    if !parts.is_empty() {
        let role = match role {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        };
        items.push(json!({"type": "message", "role": role, "content": parts}));
    }
    items.extend(calls);
}

impl Provider for ResponsesClient {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn default_model(&self) -> &str {
        &self.config.model
    }
    fn protocol(&self) -> Option<Protocol> {
        Some(Protocol::OpenaiResponses)
    }
    fn stream(&self, request: Request) -> ProviderStream {
        let body = self.request_body(&request);
        http::send(
            &self.http,
            &self.config,
            Protocol::OpenaiResponses,
            &request,
            |key| self.headers(key),
            crate::protocol::below_v1(crate::protocol::responses::PATH),
            body,
            ResponsesParser::default(),
        )
    }
}

/// The Responses API's stream events → normalized events.
#[derive(Debug, Default)]
pub struct ResponsesParser {
    started: bool,
    /// The function calls of this reply, in order (their position is the tool call's index).
    calls: Vec<Call>,
    /// The model refused (`response.refusal.delta`): the reply ends as a refusal.
    refused: bool,
}

#[derive(Debug)]
struct Call {
    /// The output item's id (`fc_…`), which later events name it by.
    item_id: Option<String>,
    output_index: Option<u64>,
    /// Whether any argument text was passed on (else a `.done` event's whole text is).
    sent_arguments: bool,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `response.created`, `.in_progress`, `.completed`, `.incomplete`, `.failed`.
#[derive(Deserialize)]
struct Lifecycle {
    response: WireResponse,
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    status: Option<String>,
    usage: Option<WireUsage>,
    incomplete_details: Option<IncompleteDetails>,
    error: Option<WireError>,
    #[serde(default)]
    output: Option<Vec<ItemKind>>,
}

#[derive(Deserialize)]
struct ItemKind {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct IncompleteDetails {
    reason: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    code: Option<Value>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    input_tokens_details: Option<InputDetails>,
    output_tokens: Option<u64>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    cached_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    reasoning_tokens: Option<u64>,
}

/// `response.output_text.delta`, `.refusal.delta`, `.reasoning_text.delta`,
/// `.reasoning_summary_text.delta`, `.function_call_arguments.delta`.
#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    delta: String,
    item_id: Option<String>,
    output_index: Option<u64>,
}

/// `response.output_item.added` / `.done`.
#[derive(Deserialize)]
struct OutputItem {
    output_index: Option<u64>,
    item: Item,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    call_id: Option<String>,
    name: Option<String>,
    arguments: Option<String>,
}

/// `response.function_call_arguments.done`.
#[derive(Deserialize)]
struct ArgumentsDone {
    item_id: Option<String>,
    output_index: Option<u64>,
    arguments: Option<String>,
}

fn parse<'a, T: Deserialize<'a>>(data: &'a str, what: &str) -> Result<T, Failure> {
    serde_json::from_str(data).map_err(|e| Failure::malformed(&format!("bad {what} event"), e))
}

impl ResponsesParser {
    fn start(&mut self, response: &WireResponse, out: &mut VecDeque<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push_back(StreamEvent::MessageStart {
                id: response.id.clone(),
                model: response.model.clone(),
            });
        }
    }

    /// The tool index of the call an event names, by item id or else by output index.
    fn call_of(&self, item_id: Option<&str>, output_index: Option<u64>) -> Option<usize> {
        let by_id = item_id.and_then(|id| {
            self.calls
                .iter()
                .position(|c| c.item_id.as_deref() == Some(id))
        });
        by_id.or_else(|| {
            output_index.and_then(|i| self.calls.iter().position(|c| c.output_index == Some(i)))
        })
    }

    fn arguments(&mut self, index: usize, text: String, out: &mut VecDeque<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        if let Some(call) = self.calls.get_mut(index) {
            call.sent_arguments = true;
        }
        out.push_back(StreamEvent::ToolCallDelta {
            index: tool_index(index),
            partial_json: text,
        });
    }

    /// A piece of the reply's text (`kind` says which: the answer, a refusal or reasoning).
    fn content_delta(&mut self, kind: &str, delta: Delta, out: &mut VecDeque<StreamEvent>) {
        let refusal = kind == "response.refusal.delta";
        self.refused |= refusal;
        if delta.delta.is_empty() {
            return;
        }
        let text = delta.delta;
        out.push_back(match kind {
            "response.output_text.delta" => StreamEvent::TextDelta { text },
            _ if refusal => StreamEvent::RefusalDelta { text },
            _ => StreamEvent::ThinkingDelta { text },
        });
    }

    /// `response.function_call_arguments.delta`, for a call already announced.
    fn arguments_delta(
        &mut self,
        delta: Delta,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<(), Failure> {
        let index = self
            .call_of(delta.item_id.as_deref(), delta.output_index)
            .ok_or_else(|| {
                Failure::new(
                    ErrorClass::Malformed,
                    "function call arguments for a call that never started",
                )
            })?;
        self.arguments(index, delta.delta, out);
        Ok(())
    }

    /// A `.done` event's whole arguments, passed on only when no delta carried them.
    fn arguments_done(
        &mut self,
        index: usize,
        text: Option<String>,
        out: &mut VecDeque<StreamEvent>,
    ) {
        if self.calls.get(index).is_some_and(|c| !c.sent_arguments) {
            self.arguments(index, text.unwrap_or_default(), out);
        }
    }

    fn item_added(&mut self, added: OutputItem, out: &mut VecDeque<StreamEvent>) {
        let item = added.item;
        if item.kind.as_deref() != Some("function_call") {
            return;
        }
        let index = self.calls.len();
        self.calls.push(Call {
            item_id: item.id.clone(),
            output_index: added.output_index,
            sent_arguments: false,
        });
        out.push_back(StreamEvent::ToolCallStart {
            index: tool_index(index),
            id: item.call_id.or(item.id).unwrap_or_default(),
            name: item.name.unwrap_or_default(),
        });
        // Arguments already there when the item is announced (some servers send them whole).
        self.arguments(index, item.arguments.unwrap_or_default(), out);
    }

    fn usage(response: &WireResponse, out: &mut VecDeque<StreamEvent>) {
        let Some(usage) = &response.usage else {
            return;
        };
        // Cached and cache-written tokens are part of `input_tokens`; ours counts them apart.
        let details = usage.input_tokens_details.as_ref();
        let cached = details.and_then(|d| d.cached_tokens).unwrap_or(0);
        let written = details.and_then(|d| d.cache_write_tokens).unwrap_or(0);
        out.push_back(StreamEvent::Usage(Usage {
            input_tokens: usage
                .input_tokens
                .unwrap_or(0)
                .saturating_sub(cached)
                .saturating_sub(written),
            output_tokens: usage.output_tokens.unwrap_or(0),
            cache_read_tokens: cached,
            cache_write_tokens: written,
            reasoning_tokens: usage
                .output_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }));
    }

    fn completed(&mut self, response: WireResponse, out: &mut VecDeque<StreamEvent>) {
        self.start(&response, out);
        Self::usage(&response, out);
        let called = !self.calls.is_empty()
            || response
                .output
                .iter()
                .flatten()
                .any(|item| item.kind.as_deref() == Some("function_call"));
        let (stop_reason, raw) = match () {
            _ if called => (StopReason::ToolUse, response.status),
            // The API ends a refusal as `completed`; it is a refusal all the same.
            _ if self.refused => (StopReason::ContentFilter, Some("refusal".to_string())),
            _ => (StopReason::EndTurn, response.status),
        };
        out.push_back(StreamEvent::Done {
            stop_reason,
            raw_stop_reason: raw.or_else(|| Some("completed".to_string())),
        });
    }

    fn incomplete(&mut self, response: WireResponse, out: &mut VecDeque<StreamEvent>) {
        self.start(&response, out);
        Self::usage(&response, out);
        let reason = response.incomplete_details.and_then(|d| d.reason);
        let stop_reason = reason.as_deref().map_or(
            StopReason::Other,
            crate::protocol::responses::incomplete_reason,
        );
        out.push_back(StreamEvent::Done {
            stop_reason,
            raw_stop_reason: reason.or_else(|| Some("incomplete".to_string())),
        });
    }
}

/// A position in the list of calls as a tool index (a reply never has four billion calls).
fn tool_index(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

/// `response.failed`: the response's `error{code, message}`, classified as OpenAI's errors are.
fn failed(response: WireResponse) -> Failure {
    let error = response.error;
    let code = error.as_ref().and_then(|e| match &e.code {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    });
    let message = error
        .and_then(|e| e.message)
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "the response failed without saying why".to_string());
    let class = ErrorClass::from_provider(None, None, code.as_deref(), &message);
    Failure {
        code,
        ..Failure::new(class, message)
    }
}

/// An `error` event: the documented form has `code`, `message` and `param` on the event itself;
/// the API has also been seen nesting them under `error` (as in its HTTP error bodies).
fn error_event(data: &str) -> Failure {
    #[derive(Deserialize)]
    struct Flat {
        error: Option<Value>,
        code: Option<Value>,
        message: Option<String>,
    }
    match serde_json::from_str::<Flat>(data) {
        Ok(flat) if flat.error.as_ref().is_none_or(Value::is_null) => failed(WireResponse {
            id: String::new(),
            model: String::new(),
            status: None,
            usage: None,
            incomplete_details: None,
            error: Some(WireError {
                code: flat.code,
                message: flat.message,
            }),
            output: None,
        }),
        _ => Failure::from_error_body(None, data),
    }
}

impl SseParser for ResponsesParser {
    fn event(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<Flow, Failure> {
        let data = event.data.as_str();
        if data.trim() == "[DONE]" {
            // Some compatible servers end with it; it is no terminal event of this protocol.
            return Err(Failure::new(
                ErrorClass::StreamCut,
                "stream ended with [DONE] before response.completed",
            ));
        }
        let kind: TypeOnly = parse(data, "Responses")?;
        // The `type` in the data is the event's name; the `event:` line says the same.
        let kind = kind.kind.or(event.event).unwrap_or_default();
        match kind.as_str() {
            "response.created" | "response.queued" | "response.in_progress" => {
                let Lifecycle { response } = parse(data, &kind)?;
                self.start(&response, out);
            }
            "response.output_text.delta"
            | "response.refusal.delta"
            | "response.reasoning_text.delta"
            | "response.reasoning_summary_text.delta" => {
                self.content_delta(&kind, parse(data, &kind)?, out);
            }
            "response.output_item.added" => self.item_added(parse(data, &kind)?, out),
            "response.function_call_arguments.delta" => {
                self.arguments_delta(parse(data, &kind)?, out)?;
            }
            "response.function_call_arguments.done" => {
                let done: ArgumentsDone = parse(data, &kind)?;
                if let Some(index) = self.call_of(done.item_id.as_deref(), done.output_index) {
                    self.arguments_done(index, done.arguments, out);
                }
            }
            "response.output_item.done" => {
                let done: OutputItem = parse(data, &kind)?;
                if let Some(index) = self.call_of(done.item.id.as_deref(), done.output_index) {
                    self.arguments_done(index, done.item.arguments, out);
                }
            }
            "response.completed" => {
                let Lifecycle { response } = parse(data, &kind)?;
                self.completed(response, out);
                return Ok(Flow::Finished);
            }
            "response.incomplete" => {
                let Lifecycle { response } = parse(data, &kind)?;
                self.incomplete(response, out);
                return Ok(Flow::Finished);
            }
            "response.failed" => {
                let Lifecycle { response } = parse(data, &kind)?;
                return Err(failed(response));
            }
            "error" => return Err(error_event(data)),
            // Content parts, `.done` events of text, web search progress and events added later.
            _ => {}
        }
        Ok(Flow::More)
    }

    fn end(&mut self, _out: &mut VecDeque<StreamEvent>) -> Result<(), Failure> {
        Err(Failure::new(
            ErrorClass::StreamCut,
            "stream ended before response.completed",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::provider::{Message, ToolDef};
    use std::sync::Arc;

    fn sse(kind: &str, data: Value) -> SseEvent {
        SseEvent {
            event: Some(kind.to_string()),
            data: data.to_string(),
        }
    }

    /// Run events through a parser: the normalized events, or the failure that ended them.
    fn run(events: &[SseEvent]) -> (Vec<StreamEvent>, Result<bool, Failure>) {
        let mut parser = ResponsesParser::default();
        let mut out = VecDeque::new();
        for event in events {
            match parser.event(event.clone(), &mut out) {
                Ok(Flow::More) => {}
                Ok(Flow::Finished) => return (out.into(), Ok(true)),
                Err(f) => return (out.into(), Err(f)),
            }
        }
        let end = parser.end(&mut out).map(|()| false);
        (out.into(), end)
    }

    fn created() -> SseEvent {
        sse(
            "response.created",
            json!({"type": "response.created", "sequence_number": 0,
                   "response": {"id": "resp_1", "object": "response", "model": "gpt-5",
                                "status": "in_progress", "output": [], "usage": null}}),
        )
    }

    fn terminal(kind: &str, response: Value) -> SseEvent {
        let mut base = json!({"id": "resp_1", "model": "gpt-5"});
        if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), response) {
            base.extend(extra);
        }
        sse(
            kind,
            json!({"type": kind, "sequence_number": 9, "response": base}),
        )
    }

    #[test]
    fn function_calls_are_numbered_in_order_and_found_by_item_id() {
        let added = |output_index: u64, id: &str, call: &str, name: &str| {
            sse(
                "response.output_item.added",
                json!({"type": "response.output_item.added", "output_index": output_index,
                       "item": {"type": "function_call", "id": id, "call_id": call, "name": name,
                                "arguments": "", "status": "in_progress"}}),
            )
        };
        let delta = |id: &str, output_index: u64, piece: &str| {
            sse(
                "response.function_call_arguments.delta",
                json!({"type": "response.function_call_arguments.delta", "item_id": id,
                       "output_index": output_index, "delta": piece}),
            )
        };
        let (events, end) = run(&[
            created(),
            sse(
                "response.output_item.added",
                json!({"type": "response.output_item.added", "output_index": 0,
                       "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
            ),
            added(1, "fc_a", "call_a", "one"),
            added(2, "fc_b", "call_b", "two"),
            delta("fc_b", 2, "{\"x\":"),
            delta("fc_a", 1, "{}"),
            delta("fc_b", 2, "1}"),
            // Without an item id, the output index names the call.
            sse(
                "response.function_call_arguments.delta",
                json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": ""}),
            ),
            terminal(
                "response.completed",
                json!({"status": "completed", "usage": {"input_tokens": 10, "output_tokens": 4}}),
            ),
        ]);
        assert_eq!(end, Ok(true));
        let start = |index, id: &str, name: &str| StreamEvent::ToolCallStart {
            index,
            id: id.into(),
            name: name.into(),
        };
        let piece = |index, text: &str| StreamEvent::ToolCallDelta {
            index,
            partial_json: text.into(),
        };
        assert_eq!(
            events,
            [
                StreamEvent::MessageStart {
                    id: "resp_1".into(),
                    model: "gpt-5".into()
                },
                start(0, "call_a", "one"),
                start(1, "call_b", "two"),
                piece(1, "{\"x\":"),
                piece(0, "{}"),
                piece(1, "1}"),
                StreamEvent::Usage(Usage {
                    input_tokens: 10,
                    output_tokens: 4,
                    ..Usage::default()
                }),
                StreamEvent::Done {
                    stop_reason: StopReason::ToolUse,
                    raw_stop_reason: Some("completed".into())
                },
            ]
        );
    }

    #[test]
    fn arguments_sent_only_when_done_are_still_passed_on_once() {
        let (events, _) = run(&[
            created(),
            sse(
                "response.output_item.added",
                json!({"type": "response.output_item.added", "output_index": 0,
                       "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"}}),
            ),
            sse(
                "response.function_call_arguments.done",
                json!({"type": "response.function_call_arguments.done", "item_id": "fc_1",
                       "output_index": 0, "arguments": "{\"a\":1}"}),
            ),
            sse(
                "response.output_item.done",
                json!({"type": "response.output_item.done", "output_index": 0,
                       "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1",
                                "name": "f", "arguments": "{\"a\":1}"}}),
            ),
            terminal("response.completed", json!({"status": "completed"})),
        ]);
        let pieces: Vec<&StreamEvent> = events
            .iter()
            .filter(|e| matches!(e, StreamEvent::ToolCallDelta { .. }))
            .collect();
        assert_eq!(
            pieces,
            [&StreamEvent::ToolCallDelta {
                index: 0,
                partial_json: "{\"a\":1}".into()
            }]
        );
    }

    #[test]
    fn reasoning_refusals_and_unknown_events() {
        let delta = |kind: &str, text: &str| sse(kind, json!({"type": kind, "delta": text}));
        let (events, end) = run(&[
            created(),
            sse(
                "response.web_search_call.searching",
                json!({"type": "response.web_search_call.searching", "delta": {"odd": true}}),
            ),
            delta("response.reasoning_summary_text.delta", "Thinking"),
            delta("response.reasoning_text.delta", " hard"),
            delta("response.refusal.delta", "I can't help with that."),
            terminal("response.completed", json!({"status": "completed"})),
        ]);
        assert_eq!(end, Ok(true));
        assert_eq!(
            events[1..],
            [
                StreamEvent::ThinkingDelta {
                    text: "Thinking".into()
                },
                StreamEvent::ThinkingDelta {
                    text: " hard".into()
                },
                StreamEvent::RefusalDelta {
                    text: "I can't help with that.".into()
                },
                StreamEvent::Done {
                    stop_reason: StopReason::ContentFilter,
                    raw_stop_reason: Some("refusal".into())
                },
            ]
        );
        // An unknown event must still be JSON.
        let (_, end) = run(&[
            created(),
            SseEvent {
                event: Some("response.future".into()),
                data: "{nope".into(),
            },
        ]);
        assert_eq!(end.unwrap_err().class, ErrorClass::Malformed);
    }

    #[test]
    fn usage_counts_cached_and_written_tokens_apart() {
        let (events, _) = run(&[
            created(),
            terminal(
                "response.completed",
                json!({"status": "completed", "usage": {
                    "input_tokens": 1000,
                    "input_tokens_details": {"cached_tokens": 600, "cache_write_tokens": 100},
                    "output_tokens": 50,
                    "output_tokens_details": {"reasoning_tokens": 30},
                    "total_tokens": 1050}}),
            ),
        ]);
        assert_eq!(
            events[1],
            StreamEvent::Usage(Usage {
                input_tokens: 300,
                output_tokens: 50,
                cache_read_tokens: 600,
                cache_write_tokens: 100,
                reasoning_tokens: 30,
            })
        );
    }

    #[test]
    fn incomplete_replies_say_why() {
        for (reason, stop) in [
            (json!("max_output_tokens"), StopReason::MaxTokens),
            (json!("content_filter"), StopReason::ContentFilter),
            (json!("max_messages"), StopReason::Other),
        ] {
            let (events, end) = run(&[
                created(),
                terminal(
                    "response.incomplete",
                    json!({"status": "incomplete", "incomplete_details": {"reason": reason}}),
                ),
            ]);
            assert_eq!(end, Ok(true));
            assert_eq!(
                events.last(),
                Some(&StreamEvent::Done {
                    stop_reason: stop,
                    raw_stop_reason: reason.as_str().map(String::from)
                })
            );
        }
    }

    #[test]
    fn failures_are_classified_like_openai_errors() {
        for (code, message, class) in [
            ("rate_limit_exceeded", "Slow down", ErrorClass::RateLimited),
            (
                "server_error",
                "The server had an error",
                ErrorClass::ServerError,
            ),
            (
                "server_error",
                "The server is overloaded",
                ErrorClass::Overloaded,
            ),
            ("insufficient_quota", "No credit", ErrorClass::Quota),
            (
                "context_length_exceeded",
                "Too long",
                ErrorClass::ContextLength,
            ),
        ] {
            let (_, end) = run(&[
                created(),
                terminal(
                    "response.failed",
                    json!({"status": "failed", "error": {"code": code, "message": message}}),
                ),
            ]);
            let failure = end.unwrap_err();
            assert_eq!(
                (
                    failure.class,
                    failure.code.as_deref(),
                    failure.message.as_str()
                ),
                (class, Some(code), message)
            );
        }
        // `error` events: the documented flat form and the nested one.
        for data in [
            json!({"type": "error", "sequence_number": 3, "code": "rate_limit_exceeded",
                   "message": "Rate limit reached", "param": null}),
            json!({"type": "error", "sequence_number": 3, "error": {"type": "requests",
                   "code": "rate_limit_exceeded", "message": "Rate limit reached", "param": null}}),
        ] {
            let (_, end) = run(&[created(), sse("error", data.clone())]);
            let failure = end.unwrap_err();
            assert_eq!(
                (
                    failure.class,
                    failure.code.as_deref(),
                    failure.message.as_str()
                ),
                (
                    ErrorClass::RateLimited,
                    Some("rate_limit_exceeded"),
                    "Rate limit reached"
                ),
                "{data}"
            );
        }
    }

    #[test]
    fn a_stream_without_its_terminal_event_is_a_cut() {
        let (events, end) = run(&[created()]);
        assert_eq!(events.len(), 1);
        assert_eq!(end.unwrap_err().class, ErrorClass::StreamCut);
        let (_, end) = run(&[
            created(),
            SseEvent {
                event: None,
                data: "[DONE]".into(),
            },
        ]);
        assert_eq!(end.unwrap_err().class, ErrorClass::StreamCut);
    }

    #[test]
    fn the_body_maps_every_request_field() {
        let config = ProviderConfig {
            model: "gpt-5".into(),
            ..ProviderConfig::new("r", Protocol::OpenaiResponses, "https://api.openai.com/v1")
        };
        let http = http::client(&config.timeouts).unwrap();
        let client = ResponsesClient::new(config, http);
        let request = Request {
            system: Some("Be brief.".into()),
            messages: Arc::new(vec![
                Message {
                    role: Role::User,
                    content: vec![
                        Content::Text {
                            text: "What is this?".into(),
                        },
                        Content::Image {
                            url: "data:image/png;base64,AAAA".into(),
                        },
                    ],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![Content::ToolUse {
                        id: "call_1".into(),
                        name: "look".into(),
                        input: json!({}),
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![Content::ToolResult {
                        tool_use_id: "call_1".into(),
                        content: "a cat".into(),
                        is_error: false,
                    }],
                },
            ]),
            tools: vec![ToolDef {
                name: "look".into(),
                description: String::new(),
                input_schema: json!({"type": "object"}),
            }],
            max_tokens: 64,
            stop: vec!["END".into()],
            tool_choice: Some(ToolChoice::Tool {
                name: "look".into(),
            }),
            parallel_tool_calls: Some(false),
            user: Some("user-7".into()),
            ..Request::default()
        };
        let body: Value = serde_json::from_str(&client.request_body(&request)).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "gpt-5",
                "stream": true,
                "store": false,
                "max_output_tokens": 64,
                "instructions": "Be brief.",
                "safety_identifier": "user-7",
                "tools": [{"type": "function", "name": "look", "parameters": {"type": "object"}, "strict": false}],
                "tool_choice": {"type": "function", "name": "look"},
                "parallel_tool_calls": false,
                "input": [
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
                    ]},
                    {"type": "function_call", "call_id": "call_1", "name": "look", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "a cat"},
                ],
            })
        );
    }
}
