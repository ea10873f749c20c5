//! Translation between the two inbound protocols (OpenAI Chat Completions, Anthropic Messages) and
//! breakerbox's own types; what maps and what is dropped is in docs/gateway.md ("What translation
//! keeps" and the Responses API's tables).
//!
//! - Inbound: [`parse_openai_request`] and [`parse_anthropic_request`] turn a client's JSON body into a
//!   [`Request`] plus [`InboundOptions`]; a body we cannot honour is a [`WireError`] (HTTP 400) naming
//!   the field, renderable in either protocol's error shape.
//! - Outbound, streaming: [`AnthropicEncoder`] and [`OpenAiEncoder`] (both [`Encode`]) turn
//!   [`StreamEvent`]s into SSE frames exactly as the real provider frames them, and a
//!   [`ProviderError`] into the protocol's in-stream error.
//! - Outbound, whole: [`anthropic_message`], [`openai_completion`] and [`error_response`].
//!
//! Nothing here panics on any input. [`StreamEvent::Rewind`] is the gateway's business (it decides
//! whether a rewind can be hidden from the client); the encoders ignore it, while the non-streaming
//! builders, which see the whole reply at once, honour it by dropping everything before the last one.

use crate::json;
use crate::provider::{
    Content, ErrorClass, Message, OutputFormat, Protocol, ProviderError, Request, Role, StopReason,
    StreamEvent, ToolChoice, ToolDef, Usage,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Output limit used when the client names none (OpenAI allows that; Anthropic requires it, but we
/// are lenient).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// What the client asked for beyond the [`Request`] itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundOptions {
    /// `"stream": true`.
    pub stream: bool,
    /// OpenAI's `stream_options.include_usage`. Anthropic always reports usage, so its parser sets
    /// this to `true`.
    pub include_usage: bool,
    /// The model name exactly as the client sent it (it picks the route).
    pub model: String,
}

/// A request body we cannot honour: always a client error, with the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The HTTP status to answer with (400).
    pub status: u16,
    /// The offending field, as a path (`messages[2].tool_call_id`), when there is one.
    pub param: Option<String>,
    /// A message for the client; it starts with the field's path.
    pub message: String,
    /// The request is well formed, but what it asks has no equivalent in another protocol (state
    /// stored at the provider, a built-in tool of its own, …): a target of the client's protocol
    /// can still take it as sent.
    pub cannot_cross: bool,
}

impl WireError {
    pub(crate) fn field(param: impl Into<String>, problem: impl fmt::Display) -> Self {
        let param = param.into();
        WireError {
            status: 400,
            message: format!("{param}: {problem}"),
            param: Some(param),
            cannot_cross: false,
        }
    }

    pub(crate) fn body(problem: impl Into<String>) -> Self {
        WireError {
            status: 400,
            param: None,
            message: problem.into(),
            cannot_cross: false,
        }
    }

    /// The error for what only a target of the client's protocol can take.
    pub(crate) fn crossing(self) -> Self {
        WireError {
            cannot_cross: true,
            ..self
        }
    }

    /// `{"error":{"message","type":"invalid_request_error","param","code"}}`.
    pub fn to_openai_json(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": "invalid_request_error",
            "param": self.param,
            "code": Value::Null,
        }})
    }

    /// `{"type":"error","error":{"type":"invalid_request_error","message"}}`.
    pub fn to_anthropic_json(&self) -> Value {
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": self.message}})
    }

    /// The body in `protocol`'s shape.
    pub fn to_json(&self, protocol: Protocol) -> Value {
        match protocol {
            Protocol::Anthropic => self.to_anthropic_json(),
            Protocol::Openai | Protocol::OpenaiResponses => self.to_openai_json(),
            Protocol::Gemini => super::gemini::wire_error_json(self),
            Protocol::Bedrock => json!({"message": self.message}),
            Protocol::Azure => crate::protocol::azure::error_body(
                ErrorClass::BadRequest,
                self.status,
                &self.message,
            ),
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WireError {}

// ---------------------------------------------------------------------------------------------
// Inbound
// ---------------------------------------------------------------------------------------------

/// The body read one level deep (see [`crate::json`]): the long arrays (`messages`, `tools`) stay raw
/// and are parsed one item at a time; the other fields the parsers read are values.
fn parse_object(body: &[u8]) -> Result<(json::Fields<'_>, Map<String, Value>), WireError> {
    parse_object_reading(body, READ_FIELDS)
}

/// [`parse_object`] for a protocol whose parser reads the top-level fields `read` as values.
pub(crate) fn parse_object_reading<'a>(
    body: &'a [u8],
    read: &[&str],
) -> Result<(json::Fields<'a>, Map<String, Value>), WireError> {
    match json::Fields::parse(body) {
        Ok(fields) => {
            let obj = fields.values_of(read);
            Ok((fields, obj))
        }
        Err(json::NotAnObject::Kind(_)) => {
            Err(WireError::body("the request body must be a JSON object"))
        }
        Err(json::NotAnObject::Invalid(e)) => Err(WireError::body(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// The top-level fields the two parsers read as values (the long arrays, `messages` and `tools`,
/// are walked item by item instead); anything else in a body is not read.
const READ_FIELDS: &[&str] = &[
    "model",
    "system",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stop_sequences",
    "tool_choice",
    "parallel_tool_calls",
    "stream",
    "stream_options",
    "metadata",
    "user",
    "reasoning_effort",
    "response_format",
];

/// The raw items of the array `key`; `None` when it is absent (or null).
pub(crate) fn long_array<'a>(
    fields: &json::Fields<'a>,
    key: &str,
) -> Result<Option<Vec<&'a RawValue>>, WireError> {
    let Some(raw) = fields.raw(key) else {
        return Ok(None);
    };
    json::items(raw)
        .map(Some)
        .map_err(|kind| WireError::field(key, format!("expected an array, got {kind}")))
}

/// The items of a long array (`key`), each parsed on its own as it is reached, with its path
/// (`key[i]`).
pub(crate) fn parsed_items<'a>(
    raws: Vec<&'a RawValue>,
    key: &'a str,
) -> impl Iterator<Item = Result<(String, Value), WireError>> + 'a {
    raws.into_iter().enumerate().map(move |(i, raw)| {
        let path = format!("{key}[{i}]");
        let value = item(raw, &path)?;
        Ok((path, value))
    })
}

/// One item of a long array, parsed on its own.
pub(crate) fn item(raw: &RawValue, path: &str) -> Result<Value, WireError> {
    json::parse(raw).map_err(|e| WireError::field(path, format!("cannot be read: {e}")))
}

pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A present, non-null field.
pub(crate) fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(crate) fn req_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, WireError> {
    match get(obj, key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(WireError::field(
            path,
            format!("expected a string, got {}", describe(other)),
        )),
        None => Err(WireError::field(path, "required")),
    }
}

pub(crate) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, WireError> {
    match get(obj, key) {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(WireError::field(
            path,
            format!("expected a string, got {}", describe(other)),
        )),
        None => Ok(None),
    }
}

pub(crate) fn opt_bool(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<bool>, WireError> {
    match get(obj, key) {
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(WireError::field(
            path,
            format!("expected a boolean, got {}", describe(other)),
        )),
        None => Ok(None),
    }
}

pub(crate) fn as_object<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, WireError> {
    value.as_object().ok_or_else(|| {
        WireError::field(path, format!("expected an object, got {}", describe(value)))
    })
}

/// The object at `key`, which must be there.
pub(crate) fn req_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a Map<String, Value>, WireError> {
    let value = get(obj, key).ok_or_else(|| WireError::field(path, "required"))?;
    as_object(value, path)
}

pub(crate) fn as_array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], WireError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(WireError::field(
            path,
            format!("expected an array, got {}", describe(other)),
        )),
    }
}

pub(crate) fn max_tokens(obj: &Map<String, Value>, keys: &[&str]) -> Result<u32, WireError> {
    for key in keys {
        if let Some(value) = get(obj, key) {
            return match value.as_u64() {
                Some(n) if n >= 1 => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
                _ => Err(WireError::field(*key, "expected a positive integer")),
            };
        }
    }
    Ok(DEFAULT_MAX_TOKENS)
}

pub(crate) fn temperature(obj: &Map<String, Value>) -> Result<Option<f32>, WireError> {
    match get(obj, "temperature") {
        None => Ok(None),
        Some(value) => match value.as_f64() {
            Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(t as f32)),
            _ => Err(WireError::field(
                "temperature",
                "expected a non-negative number",
            )),
        },
    }
}

/// Text of a `content` that is a string or an array of text parts / blocks. Other part kinds
/// (images, audio, files, documents) have no place here: a target of the client's protocol gets
/// them as sent (a passthrough), one of another protocol does not (docs/gateway.md: what translation keeps).
fn text_parts(value: &Value, path: &str) -> Result<Vec<String>, WireError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                if let Some(text) = text_part(part, &format!("{path}[{j}]"))? {
                    texts.push(text);
                }
            }
            Ok(texts)
        }
        other => Err(WireError::field(
            path,
            format!("expected a string or an array, got {}", describe(other)),
        )),
    }
}

/// One text part: a string, or `{"type": "text", "text"}`; `None` for a part of another kind
/// (not carried across protocols).
fn text_part(part: &Value, path: &str) -> Result<Option<String>, WireError> {
    match part {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Object(obj) => {
            let kind = opt_str(obj, "type", &format!("{path}.type"))?.unwrap_or("text");
            if kind != "text" {
                return Ok(None);
            }
            Ok(Some(
                req_str(obj, "text", &format!("{path}.text"))?.to_string(),
            ))
        }
        other => Err(WireError::field(
            path,
            format!("expected an object, got {}", describe(other)),
        )),
    }
}

/// A user message's `content`: a string, or text and image parts (`image_url`, a URL or a `data:`
/// URL). Audio and files are refused, as in [`text_parts`].
fn user_parts(value: &Value, path: &str) -> Result<Vec<Content>, WireError> {
    let Value::Array(parts) = value else {
        return Ok(texts_to_content(text_parts(value, path)?));
    };
    let mut content = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let part_path = format!("{path}[{j}]");
        // A file's bytes (`file_data`, a `data:` URL); one named by `file_id` is OpenAI's own.
        if let Some(file) = part
            .as_object()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("file"))
            .and_then(|p| p.get("file"))
            .and_then(Value::as_object)
        {
            if let Some(data) = file.get("file_data").and_then(Value::as_str) {
                content.push(Content::File {
                    url: data.to_string(),
                    filename: file
                        .get("filename")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
            continue;
        }
        let image = part
            .as_object()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("image_url"));
        match image {
            Some(obj) => {
                let url = match get(obj, "image_url") {
                    // `{"url": …, "detail": …}`, or (older clients) the URL itself.
                    Some(Value::Object(inner)) => {
                        req_str(inner, "url", &format!("{part_path}.image_url.url"))?
                    }
                    Some(Value::String(url)) => url,
                    _ => {
                        return Err(WireError::field(
                            format!("{part_path}.image_url"),
                            "required",
                        ));
                    }
                };
                content.push(Content::Image {
                    url: url.to_string(),
                });
            }
            None => content.extend(texts_to_content(
                text_part(part, &part_path)?.into_iter().collect(),
            )),
        }
    }
    Ok(content)
}

pub(crate) fn texts_to_content(texts: Vec<String>) -> Vec<Content> {
    texts
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(|text| Content::Text { text })
        .collect()
}

/// Tool-call arguments: a JSON object normally; empty means `{}`; anything unparsable is kept as a
/// string rather than refused (the model wrote it, and the agent is only echoing it back).
pub(crate) fn tool_arguments(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Append `content` as a `role` message, merging into the previous message when both are user
/// messages and one of them carries tool results (OpenAI sends each tool result as its own
/// message; Anthropic wants them together in one user turn).
pub(crate) fn push_message(messages: &mut Vec<Message>, role: Role, mut content: Vec<Content>) {
    if content.is_empty() {
        return;
    }
    // A collected or pushed-to vector starts with room for four blocks; most messages hold one,
    // and a long conversation would pay four times over.
    content.shrink_to_fit();
    let is_result = |c: &Content| matches!(c, Content::ToolResult { .. });
    if let Some(last) = messages.last_mut()
        && role == Role::User
        && last.role == Role::User
        && (content.iter().any(is_result) || last.content.iter().any(is_result))
    {
        last.content.extend(content);
        last.content.shrink_to_fit();
        return;
    }
    messages.push(Message { role, content });
}

/// The messages without the spare room a growing vector keeps, ready to share.
pub(crate) fn shrunk(mut messages: Vec<Message>) -> std::sync::Arc<Vec<Message>> {
    messages.shrink_to_fit();
    std::sync::Arc::new(messages)
}

pub(crate) fn top_p(obj: &Map<String, Value>) -> Result<Option<f32>, WireError> {
    match get(obj, "top_p") {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(p) if (0.0..=1.0).contains(&p) => Ok(Some(p as f32)),
            _ => Err(WireError::field("top_p", "expected a number from 0 to 1")),
        },
    }
}

fn string_list(value: &Value, path: &str) -> Result<Vec<String>, WireError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| WireError::field(format!("{path}[{i}]"), "expected a string"))
            })
            .collect(),
        other => Err(WireError::field(
            path,
            format!(
                "expected a string or an array of strings, got {}",
                describe(other)
            ),
        )),
    }
}

/// `stop`: a string or a list of them.
fn openai_stop(obj: &Map<String, Value>) -> Result<Vec<String>, WireError> {
    get(obj, "stop").map_or(Ok(Vec::new()), |v| string_list(v, "stop"))
}

/// `stop_sequences`: a list of strings.
fn anthropic_stop(obj: &Map<String, Value>) -> Result<Vec<String>, WireError> {
    match get(obj, "stop_sequences") {
        None => Ok(Vec::new()),
        Some(v @ Value::Array(_)) => string_list(v, "stop_sequences"),
        Some(other) => Err(WireError::field(
            "stop_sequences",
            format!("expected an array of strings, got {}", describe(other)),
        )),
    }
}

/// `tool_choice`: `"auto"`, `"none"`, `"required"` or `{"type":"function","function":{"name"}}`.
fn openai_tool_choice(obj: &Map<String, Value>) -> Result<Option<ToolChoice>, WireError> {
    let Some(value) = get(obj, "tool_choice") else {
        return Ok(None);
    };
    match value {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(Some(ToolChoice::Auto)),
            "none" => Ok(Some(ToolChoice::None)),
            "required" => Ok(Some(ToolChoice::Any)),
            other => Err(WireError::field(
                "tool_choice",
                format!("unknown value `{other}` (expected auto, none, required or an object)"),
            )),
        },
        Value::Object(choice) => {
            let function = req_object(choice, "function", "tool_choice.function")?;
            let name = req_str(function, "name", "tool_choice.function.name")?;
            Ok(Some(ToolChoice::Tool {
                name: name.to_string(),
            }))
        }
        other => Err(WireError::field(
            "tool_choice",
            format!("expected a string or an object, got {}", describe(other)),
        )),
    }
}

/// `tool_choice`: `{"type": "auto" | "any" | "none" | "tool", "name"}`.
fn anthropic_tool_choice(obj: &Map<String, Value>) -> Result<Option<ToolChoice>, WireError> {
    let Some(value) = get(obj, "tool_choice") else {
        return Ok(None);
    };
    let choice = as_object(value, "tool_choice")?;
    match req_str(choice, "type", "tool_choice.type")? {
        "auto" => Ok(Some(ToolChoice::Auto)),
        "none" => Ok(Some(ToolChoice::None)),
        "any" => Ok(Some(ToolChoice::Any)),
        "tool" => Ok(Some(ToolChoice::Tool {
            name: req_str(choice, "name", "tool_choice.name")?.to_string(),
        })),
        other => Err(WireError::field(
            "tool_choice.type",
            format!("unknown value `{other}` (expected auto, any, none or tool)"),
        )),
    }
}

/// Parse an OpenAI Chat Completions request body.
pub fn parse_openai_request(body: &[u8]) -> Result<(Request, InboundOptions), WireError> {
    let (fields, obj) = parse_object(body)?;
    let model = req_str(&obj, "model", "model")?.to_string();
    let raw_messages =
        long_array(&fields, "messages")?.ok_or_else(|| WireError::field("messages", "required"))?;
    let mut system: Vec<String> = Vec::new();
    let mut messages = Vec::new();
    for entry in parsed_items(raw_messages, "messages") {
        let (path, value) = entry?;
        read_openai_message(as_object(&value, &path)?, &path, &mut system, &mut messages)?;
    }
    let tools = openai_tools(&fields)?;
    let stream = opt_bool(&obj, "stream", "stream")?.unwrap_or(false);
    let include_usage = openai_include_usage(&obj)?;
    let request = Request {
        model: model.clone(),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: shrunk(messages),
        tools,
        max_tokens: max_tokens(&obj, &["max_completion_tokens", "max_tokens"])?,
        temperature: temperature(&obj)?,
        top_p: top_p(&obj)?,
        stop: openai_stop(&obj)?,
        tool_choice: openai_tool_choice(&obj)?,
        credentials: None,
        as_requested: None,
        reasoning_effort: opt_str(&obj, "reasoning_effort", "reasoning_effort")?
            .map(str::to_string),
        output_format: get(&obj, "response_format").and_then(OutputFormat::from_openai),
        original: None,
        prefill: None,
        parallel_tool_calls: opt_bool(&obj, "parallel_tool_calls", "parallel_tool_calls")?,
        top_k: None,
        user: opt_str(&obj, "user", "user")?.map(str::to_string),
    };
    Ok((
        request,
        InboundOptions {
            stream,
            include_usage,
            model,
        },
    ))
}

/// One Chat Completions message, appended to `messages`; a system or developer message before
/// the conversation joins `system` instead.
fn read_openai_message(
    msg: &Map<String, Value>,
    path: &str,
    system: &mut Vec<String>,
    messages: &mut Vec<Message>,
) -> Result<(), WireError> {
    let role = req_str(msg, "role", &format!("{path}.role"))?;
    let content_path = format!("{path}.content");
    let content = get(msg, "content").unwrap_or(&Value::Null);
    match role {
        // Before the conversation: the system prompt; within it: kept in place.
        "system" | "developer" => {
            let texts = text_parts(content, &content_path)?
                .into_iter()
                .filter(|t| !t.is_empty());
            if messages.is_empty() {
                system.extend(texts);
            } else {
                push_message(messages, Role::System, texts_to_content(texts.collect()));
            }
        }
        "user" => push_message(messages, Role::User, user_parts(content, &content_path)?),
        "assistant" => {
            let mut blocks = texts_to_content(text_parts(content, &content_path)?);
            if let Some(calls) = get(msg, "tool_calls") {
                blocks.extend(openai_tool_calls(calls, &format!("{path}.tool_calls"))?);
            }
            push_message(messages, Role::Assistant, blocks);
        }
        "tool" => {
            let id = req_str(msg, "tool_call_id", &format!("{path}.tool_call_id"))?;
            let text = text_parts(content, &content_path)?.join("\n");
            push_message(
                messages,
                Role::User,
                vec![Content::ToolResult {
                    tool_use_id: id.to_string(),
                    content: text,
                    is_error: false,
                }],
            );
        }
        other => {
            return Err(WireError::field(
                format!("{path}.role"),
                format!(
                    "unsupported role `{other}` (expected system, developer, user, assistant or tool)"
                ),
            ));
        }
    }
    Ok(())
}

/// An assistant message's `tool_calls`, as tool uses.
fn openai_tool_calls(calls: &Value, path: &str) -> Result<Vec<Content>, WireError> {
    let mut uses = Vec::new();
    for (j, call) in as_array(calls, path)?.iter().enumerate() {
        let call_path = format!("{path}[{j}]");
        let call = as_object(call, &call_path)?;
        let id = req_str(call, "id", &format!("{call_path}.id"))?;
        let function_path = format!("{call_path}.function");
        let function = req_object(call, "function", &function_path)?;
        let name = req_str(function, "name", &format!("{function_path}.name"))?;
        let arguments =
            opt_str(function, "arguments", &format!("{function_path}.arguments"))?.unwrap_or("");
        uses.push(Content::ToolUse {
            id: id.to_string(),
            name: name.to_string(),
            input: tool_arguments(arguments),
        });
    }
    Ok(uses)
}

/// `tools`, read one at a time: the `function` tools (the others are not carried across
/// protocols).
fn openai_tools(fields: &json::Fields<'_>) -> Result<Vec<ToolDef>, WireError> {
    let mut tools = Vec::new();
    for entry in parsed_items(long_array(fields, "tools")?.unwrap_or_default(), "tools") {
        let (path, value) = entry?;
        let tool = as_object(&value, &path)?;
        let kind = opt_str(tool, "type", &format!("{path}.type"))?.unwrap_or("function");
        if kind != "function" {
            // `custom` tools and others: not carried across protocols.
            continue;
        }
        let function_path = format!("{path}.function");
        let function = req_object(tool, "function", &function_path)?;
        tools.push(ToolDef {
            name: req_str(function, "name", &format!("{function_path}.name"))?.to_string(),
            description: opt_str(
                function,
                "description",
                &format!("{function_path}.description"),
            )?
            .unwrap_or("")
            .to_string(),
            input_schema: get(function, "parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    Ok(tools)
}

/// `stream_options.include_usage`.
fn openai_include_usage(obj: &Map<String, Value>) -> Result<bool, WireError> {
    let Some(options) = get(obj, "stream_options") else {
        return Ok(false);
    };
    Ok(opt_bool(
        as_object(options, "stream_options")?,
        "include_usage",
        "stream_options.include_usage",
    )?
    .unwrap_or(false))
}

/// Parse an Anthropic Messages request body.
pub fn parse_anthropic_request(body: &[u8]) -> Result<(Request, InboundOptions), WireError> {
    let (fields, obj) = parse_object(body)?;
    let model = req_str(&obj, "model", "model")?.to_string();
    let mut system: Vec<String> = match get(&obj, "system") {
        None => Vec::new(),
        Some(value) => text_parts(value, "system")?,
    };
    let raw_messages =
        long_array(&fields, "messages")?.ok_or_else(|| WireError::field("messages", "required"))?;
    let mut messages = Vec::new();
    for entry in parsed_items(raw_messages, "messages") {
        let (path, value) = entry?;
        read_anthropic_message(as_object(&value, &path)?, &path, &mut system, &mut messages)?;
    }
    let tools = anthropic_tools(&fields)?;
    let stream = opt_bool(&obj, "stream", "stream")?.unwrap_or(false);
    system.retain(|t| !t.is_empty());
    let request = Request {
        model: model.clone(),
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: shrunk(messages),
        tools,
        max_tokens: max_tokens(&obj, &["max_tokens"])?,
        temperature: temperature(&obj)?,
        top_p: top_p(&obj)?,
        stop: anthropic_stop(&obj)?,
        tool_choice: anthropic_tool_choice(&obj)?,
        credentials: None,
        as_requested: None,
        reasoning_effort: None,
        output_format: None,
        original: None,
        prefill: None,
        parallel_tool_calls: anthropic_parallel_tool_calls(&obj)?,
        top_k: anthropic_top_k(&obj)?,
        user: anthropic_user(&obj)?,
    };
    Ok((
        request,
        InboundOptions {
            stream,
            include_usage: true,
            model,
        },
    ))
}

/// One Anthropic message, appended to `messages`; a system message before the conversation joins
/// `system` instead.
fn read_anthropic_message(
    msg: &Map<String, Value>,
    path: &str,
    system: &mut Vec<String>,
    messages: &mut Vec<Message>,
) -> Result<(), WireError> {
    let role = match req_str(msg, "role", &format!("{path}.role"))? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        // Claude Code sends system messages inside the conversation: kept in place (an
        // Anthropic target joins them to its system prompt, a Chat or Responses one keeps
        // them where they were said).
        "system" => {
            let content = get(msg, "content").unwrap_or(&Value::Null);
            let texts = text_parts(content, &format!("{path}.content"))?;
            if messages.is_empty() {
                system.extend(texts);
            } else {
                push_message(messages, Role::System, texts_to_content(texts));
            }
            return Ok(());
        }
        other => {
            return Err(WireError::field(
                format!("{path}.role"),
                format!("unsupported role `{other}` (expected user, assistant or system)"),
            ));
        }
    };
    let content = anthropic_content(msg, &format!("{path}.content"))?;
    push_message(messages, role, content);
    Ok(())
}

/// A user or assistant message's `content`: a string, or content blocks.
fn anthropic_content(msg: &Map<String, Value>, path: &str) -> Result<Vec<Content>, WireError> {
    match get(msg, "content") {
        None => Err(WireError::field(path, "required")),
        Some(Value::String(s)) => Ok(texts_to_content(vec![s.clone()])),
        Some(Value::Array(blocks)) => {
            let mut out = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                if let Some(content) = anthropic_block(block, &format!("{path}[{j}]"))? {
                    out.push(content);
                }
            }
            Ok(out)
        }
        Some(other) => Err(WireError::field(
            path,
            format!("expected a string or an array, got {}", describe(other)),
        )),
    }
}

/// `tools`, read one at a time: the client's own tools (those with an `input_schema`).
fn anthropic_tools(fields: &json::Fields<'_>) -> Result<Vec<ToolDef>, WireError> {
    let mut tools = Vec::new();
    for entry in parsed_items(long_array(fields, "tools")?.unwrap_or_default(), "tools") {
        let (path, value) = entry?;
        let tool = as_object(&value, &path)?;
        let name = req_str(tool, "name", &format!("{path}.name"))?;
        let Some(schema) = get(tool, "input_schema") else {
            // Server tools (`web_search_20250305`, …) have a `type` and no schema: they run
            // at Anthropic, and are not carried across protocols.
            continue;
        };
        tools.push(ToolDef {
            name: name.to_string(),
            description: opt_str(tool, "description", &format!("{path}.description"))?
                .unwrap_or("")
                .to_string(),
            input_schema: schema.clone(),
        });
    }
    Ok(tools)
}

/// `tool_choice.disable_parallel_tool_use`, inverted.
fn anthropic_parallel_tool_calls(obj: &Map<String, Value>) -> Result<Option<bool>, WireError> {
    let Some(Value::Object(choice)) = get(obj, "tool_choice") else {
        return Ok(None);
    };
    let disabled = opt_bool(
        choice,
        "disable_parallel_tool_use",
        "tool_choice.disable_parallel_tool_use",
    )?;
    Ok(disabled.map(|disabled| !disabled))
}

/// `top_k`: a non-negative integer.
fn anthropic_top_k(obj: &Map<String, Value>) -> Result<Option<u32>, WireError> {
    let Some(value) = get(obj, "top_k") else {
        return Ok(None);
    };
    value
        .as_u64()
        .and_then(|k| u32::try_from(k).ok())
        .map(Some)
        .ok_or_else(|| WireError::field("top_k", "expected a non-negative integer"))
}

/// `metadata.user_id`.
fn anthropic_user(obj: &Map<String, Value>) -> Result<Option<String>, WireError> {
    match get(obj, "metadata") {
        Some(Value::Object(metadata)) => {
            Ok(opt_str(metadata, "user_id", "metadata.user_id")?.map(str::to_string))
        }
        _ => Ok(None),
    }
}

/// An Anthropic image or document `source` as a URL: a `data:` URL of a `base64` source, the URL
/// of a `url` one; `None` for the kinds that do not cross (a Files API `file`, a document's own
/// `text` or `content`).
fn source_url(source: &Map<String, Value>, path: &str) -> Result<Option<String>, WireError> {
    Ok(match req_str(source, "type", &format!("{path}.type"))? {
        "base64" => Some(format!(
            "data:{};base64,{}",
            req_str(source, "media_type", &format!("{path}.media_type"))?,
            req_str(source, "data", &format!("{path}.data"))?
        )),
        "url" => Some(req_str(source, "url", &format!("{path}.url"))?.to_string()),
        _ => None,
    })
}

/// One Anthropic content block; `None` for blocks that carry nothing for another provider
/// (`thinking`, `redacted_thinking`: their signatures are only valid for the model that wrote them).
fn anthropic_block(block: &Value, path: &str) -> Result<Option<Content>, WireError> {
    let obj = match block {
        Value::String(s) => return Ok((!s.is_empty()).then(|| Content::Text { text: s.clone() })),
        other => as_object(other, path)?,
    };
    let kind = req_str(obj, "type", &format!("{path}.type"))?;
    Ok(match kind {
        "text" => {
            let text = req_str(obj, "text", &format!("{path}.text"))?;
            (!text.is_empty()).then(|| Content::Text {
                text: text.to_string(),
            })
        }
        "tool_use" => Some(Content::ToolUse {
            id: req_str(obj, "id", &format!("{path}.id"))?.to_string(),
            name: req_str(obj, "name", &format!("{path}.name"))?.to_string(),
            input: get(obj, "input").cloned().unwrap_or_else(|| json!({})),
        }),
        "tool_result" => {
            let content = match get(obj, "content") {
                None => String::new(),
                Some(value) => text_parts(value, &format!("{path}.content"))?.join("\n"),
            };
            Some(Content::ToolResult {
                tool_use_id: req_str(obj, "tool_use_id", &format!("{path}.tool_use_id"))?
                    .to_string(),
                content,
                is_error: opt_bool(obj, "is_error", &format!("{path}.is_error"))?.unwrap_or(false),
            })
        }
        "image" => {
            let source_path = format!("{path}.source");
            let source = req_object(obj, "source", &source_path)?;
            source_url(source, &source_path)?.map(|url| Content::Image { url })
        }
        // A PDF, as its bytes or where it is; a text document's own content is not carried.
        "document" => {
            let filename = opt_str(obj, "title", &format!("{path}.title"))?.map(str::to_string);
            match get(obj, "source").and_then(Value::as_object) {
                Some(source) if source.get("type").is_some_and(Value::is_string) => {
                    source_url(source, &format!("{path}.source"))?
                        .map(|url| Content::File { url, filename })
                }
                _ => None,
            }
        }
        // Server tool blocks, search results, thinking (its signature is only valid
        // for the model that wrote it) and blocks added later: a target of the client's protocol
        // gets them as sent; across protocols they are not carried (docs/gateway.md).
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------------
// Shared outbound helpers
// ---------------------------------------------------------------------------------------------

static ID_COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh, process-unique id with `prefix` (`msg_`, `chatcmpl-`, `toolu_`).
pub(crate) fn new_id(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}gw{:x}{n:04x}", nanos & 0xffff_ffff_ffff)
}

fn anthropic_frame(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn openai_frame(data: &Value) -> String {
    format!("data: {data}\n\n")
}

// Each protocol's stop reasons are named once, both ways, in its `protocol` module.
pub use crate::protocol::anthropic::wire_stop_reason as anthropic_stop_reason;
pub use crate::protocol::chat::wire_finish_reason as openai_finish_reason;

/// A reply whose words are in `refusal` ends with `stop`, as OpenAI ends its refusals; without
/// them a refusal is a `content_filter`.
fn refusal_finish(refused: bool, reason: String) -> String {
    if refused && reason == "content_filter" {
        "stop".to_string()
    } else {
        reason
    }
}

/// The `(error.type, code)` an error of `class` gets in `protocol` (see each `protocol` module).
fn error_kind(protocol: Protocol, class: ErrorClass) -> (&'static str, Option<&'static str>) {
    match protocol {
        Protocol::Anthropic => (crate::protocol::anthropic::error_type(class), None),
        Protocol::Openai | Protocol::OpenaiResponses | Protocol::Azure => {
            crate::protocol::chat::error_type(class)
        }
        Protocol::Gemini => (crate::protocol::gemini::error_status(class).1, None),
        Protocol::Bedrock => (crate::protocol::bedrock::error_for(class).1, None),
    }
}

pub(crate) fn error_message(err: &ProviderError) -> String {
    if err.message.trim().is_empty() {
        format!("{} ({})", err.class, err.provider)
    } else {
        err.message.clone()
    }
}

fn anthropic_error_body(err: &ProviderError) -> Value {
    let (kind, _) = error_kind(Protocol::Anthropic, err.class);
    let mut body = json!({"type": "error", "error": {"type": kind, "message": error_message(err)}});
    if let Some(id) = &err.request_id {
        body["request_id"] = json!(id);
    }
    body
}

fn openai_error_body(err: &ProviderError) -> Value {
    let (kind, code) = error_kind(Protocol::Openai, err.class);
    json!({"error": {
        "message": error_message(err),
        "type": kind,
        "param": Value::Null,
        "code": code.map(str::to_string).or_else(|| err.code.clone()),
    }})
}

/// A non-streaming error response in `protocol`: status, body (keeping the provider's message) and
/// the `retry-after` header value (whole seconds, rounded up) when the provider gave one.
///
/// Status by class: rate_limited 429; overloaded 529 (Anthropic) / 503 (OpenAI); auth 401;
/// permission 403; not_found 404; conflict 409; too_large 413; bad_request, context_length and
/// content_filter 400; quota 429 `insufficient_quota` (OpenAI) / 400 `billing_error` (Anthropic);
/// timeout and stalled 504; unavailable (every breaker open) 503; cancelled 500; every other
/// upstream failure 502.
pub fn error_response(protocol: Protocol, err: &ProviderError) -> (u16, Value, Option<String>) {
    use ErrorClass as C;
    let status = match err.class {
        C::RateLimited => 429,
        C::Overloaded => match protocol {
            Protocol::Anthropic => 529,
            Protocol::Openai
            | Protocol::OpenaiResponses
            | Protocol::Gemini
            | Protocol::Bedrock
            | Protocol::Azure => 503,
        },
        C::Auth => 401,
        C::Permission => 403,
        C::NotFound => 404,
        C::Conflict => 409,
        C::TooLarge => 413,
        C::BadRequest | C::ContextLength | C::ContentFilter => 400,
        C::Quota => match protocol {
            Protocol::Anthropic | Protocol::Bedrock => 400,
            Protocol::Openai | Protocol::OpenaiResponses | Protocol::Gemini | Protocol::Azure => {
                429
            }
        },
        C::Timeout | C::Stalled => 504,
        C::Cancelled => 500,
        // Every breaker open, or no target left to try: the service is unavailable for now.
        C::Unavailable => 503,
        C::ServerError | C::Connect | C::StreamCut | C::Malformed | C::Redirect => 502,
    };
    let body = match protocol {
        Protocol::Anthropic => anthropic_error_body(err),
        Protocol::Openai | Protocol::OpenaiResponses => openai_error_body(err),
        Protocol::Gemini => super::gemini::error_body(status, err),
        // boto3 reads the exception's name from `__type` when no `x-amzn-ErrorType` says it.
        Protocol::Bedrock => json!({
            "message": error_message(err),
            "__type": crate::protocol::bedrock::error_for(err.class).1,
        }),
        Protocol::Azure => {
            crate::protocol::azure::error_body(err.class, status, &error_message(err))
        }
    };
    let retry_after = err
        .retry_after
        .map(|d| d.as_millis().div_ceil(1000).max(1).to_string());
    (status, body, retry_after)
}

/// A streaming encoder: our stream events → one protocol's SSE frames.
pub trait Encode: Send {
    /// The frames for one event; nothing after the stream is over.
    fn event(&mut self, event: &StreamEvent) -> Vec<String>;

    /// The in-stream error for `err`; the stream is over after it.
    fn error(&mut self, err: &ProviderError) -> Vec<String>;

    /// An upstream event of this encoder's protocol as it arrived (a passthrough): its frame,
    /// unchanged, with the encoder's state brought up to date so that what it encodes after it (a
    /// spliced continuation, the end, an error) fits the stream the client has.
    fn wire(&mut self, event: Option<&str>, data: &str) -> Vec<String>;

    /// The end of the upstream stream. After `Done` (or an error) nothing is left to send; without
    /// one the reply was cut, so the client gets the protocol's error, never a clean finish.
    fn finish(&mut self) -> Vec<String> {
        self.error(&upstream_cut())
    }
}

// ---------------------------------------------------------------------------------------------
// Anthropic streaming encoder
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Tool,
    /// A block of the upstream's that this encoder does not write (thinking, server tools, …).
    Other,
}

/// The normalized events that the upstream's own events carry in a passthrough (usage and the end
/// are the encoders' to track).
pub(crate) fn covered(event: &StreamEvent) -> bool {
    matches!(
        event,
        StreamEvent::MessageStart { .. }
            | StreamEvent::TextDelta { .. }
            | StreamEvent::ThinkingDelta { .. }
            | StreamEvent::RefusalDelta { .. }
            | StreamEvent::ToolCallStart { .. }
            | StreamEvent::ToolCallDelta { .. }
    )
}

/// An SSE frame: `event:` (when named) and the data, one `data:` line per line.
pub fn sse_frame(event: Option<&str>, data: &str) -> String {
    let mut frame = String::with_capacity(data.len() + 32);
    if let Some(name) = event {
        frame.push_str("event: ");
        frame.push_str(name);
        frame.push('\n');
    }
    for line in data.split('\n') {
        frame.push_str("data: ");
        frame.push_str(line);
        frame.push('\n');
    }
    frame.push('\n');
    frame
}

/// Our stream events → Anthropic Messages SSE frames.
///
/// `message_start` is held back until the next event so that a `Usage` right after `MessageStart`
/// (Anthropic's own shape) lands in `message_start.usage`; later `Usage` events are kept and the
/// last one goes out in full in `message_delta.usage` (its counts are cumulative). Tool calls keep
/// their content block index when the upstream's indices fit Anthropic's contiguous numbering, and
/// are renumbered otherwise (OpenAI numbers tool calls from 0 even after text).
#[derive(Debug)]
pub struct AnthropicEncoder {
    model: String,
    id: Option<String>,
    /// `message_start` waiting to go out.
    pending_start: bool,
    started: bool,
    finished: bool,
    usage: Usage,
    open: Option<(u32, BlockKind)>,
    next_index: u32,
    /// Our tool call index → content block index.
    tools: HashMap<u32, u32>,
    /// The upstream's own events are going out (a passthrough): the normalized events they
    /// cover are not encoded again.
    raw: bool,
}

impl AnthropicEncoder {
    /// `model` is used until a `MessageStart` names the model that actually answers.
    pub fn new(model: impl Into<String>) -> Self {
        AnthropicEncoder {
            model: model.into(),
            id: None,
            pending_start: false,
            started: false,
            finished: false,
            usage: Usage::default(),
            open: None,
            next_index: 0,
            tools: HashMap::new(),
            raw: false,
        }
    }

    fn flush_start(&mut self, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        self.pending_start = false;
        let id = self.id.get_or_insert_with(|| new_id("msg_")).clone();
        out.push(anthropic_frame(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": Value::Null, "stop_sequence": Value::Null,
                "usage": crate::protocol::anthropic::usage_json(&self.usage),
            }}),
        ));
        out.push(anthropic_frame("ping", &json!({"type": "ping"})));
    }

    fn close_block(&mut self, out: &mut Vec<String>) {
        if let Some((index, _)) = self.open.take() {
            out.push(anthropic_frame(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn ensure_block(&mut self, kind: BlockKind, out: &mut Vec<String>) -> u32 {
        if let Some((index, open)) = self.open
            && open == kind
        {
            return index;
        }
        self.close_block(out);
        let index = self.next_index;
        self.next_index = index.saturating_add(1);
        self.open = Some((index, kind));
        let block = json!({"type": "text", "text": ""});
        out.push(anthropic_frame(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        index
    }

    /// The first `MessageStart` names the message and the model that answers; `message_start`
    /// waits for the usage that may follow it.
    fn message_start(&mut self, id: &str, model: &str) {
        if self.started || self.pending_start {
            return;
        }
        if !id.is_empty() {
            self.id = Some(id.to_string());
        }
        if !model.is_empty() {
            self.model = model.to_string();
        }
        self.pending_start = true;
    }

    fn text(&mut self, text: &str, out: &mut Vec<String>) {
        self.flush_start(out);
        if text.is_empty() {
            return;
        }
        let index = self.ensure_block(BlockKind::Text, out);
        out.push(anthropic_frame(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "text_delta", "text": text}}),
        ));
    }

    fn tool_start(&mut self, index: u32, id: &str, name: &str, out: &mut Vec<String>) {
        self.flush_start(out);
        self.close_block(out);
        // Blocks are numbered as the client gets them, 0, 1, …: the upstream's own index may skip
        // blocks this stream does not carry, and a gap breaks the official clients (they index a
        // list by it).
        let block = self.next_index;
        self.next_index = block.saturating_add(1);
        self.tools.insert(index, block);
        self.open = Some((block, BlockKind::Tool));
        out.push(anthropic_frame(
            "content_block_start",
            &json!({"type": "content_block_start", "index": block,
                    "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ));
    }

    fn tool_delta(&mut self, index: u32, partial_json: &str, out: &mut Vec<String>) {
        self.flush_start(out);
        // A delta for a call never started has nowhere to go in Anthropic's grammar.
        let Some(block) = self.tools.get(&index).copied() else {
            return;
        };
        if !partial_json.is_empty() {
            out.push(anthropic_frame(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": block,
                        "delta": {"type": "input_json_delta", "partial_json": partial_json}}),
            ));
        }
    }

    fn done(&mut self, stop_reason: StopReason, raw: Option<&str>, out: &mut Vec<String>) {
        self.flush_start(out);
        self.close_block(out);
        out.push(anthropic_frame(
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": anthropic_stop_reason(stop_reason, raw),
                              "stop_sequence": Value::Null},
                    "usage": crate::protocol::anthropic::usage_json(&self.usage)}),
        ));
        out.push(anthropic_frame(
            "message_stop",
            &json!({"type": "message_stop"}),
        ));
        self.finished = true;
    }
}

impl Encode for AnthropicEncoder {
    /// The frames for one event. [`StreamEvent::Rewind`] is ignored (see the module doc); events
    /// after `Done` or an error produce nothing.
    fn event(&mut self, event: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.finished || (self.raw && covered(event)) {
            return out;
        }
        match event {
            StreamEvent::MessageStart { id, model } => self.message_start(id, model),
            StreamEvent::Usage(usage) => {
                self.usage = *usage;
                if self.pending_start || !self.started {
                    self.flush_start(&mut out);
                }
            }
            StreamEvent::TextDelta { text } | StreamEvent::RefusalDelta { text } => {
                self.text(text, &mut out);
            }
            // Reasoning reaches this encoder only from another protocol (an OpenAI-compatible
            // server's `reasoning_content`): it has no signature, and a thinking block without a
            // valid one cannot be sent back to an Anthropic model. Dropped, not blanked.
            StreamEvent::ThinkingDelta { .. } => self.flush_start(&mut out),
            StreamEvent::ToolCallStart { index, id, name } => {
                self.tool_start(*index, id, name, &mut out);
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => self.tool_delta(*index, partial_json, &mut out),
            StreamEvent::Rewind { .. } | StreamEvent::RateLimits(_) => {}
            StreamEvent::Spliced => self.raw = false,
            // `message_start` named the model that began the reply, and nothing later in an
            // Anthropic stream can name another (the gateway says so in a trailing comment).
            StreamEvent::ContinuedBy { .. } => {}
            StreamEvent::Wire { event, data } => return self.wire(event.as_deref(), data),
            StreamEvent::Done {
                stop_reason,
                raw_stop_reason,
            } => self.done(*stop_reason, raw_stop_reason.as_deref(), &mut out),
        }
        out
    }

    fn wire(&mut self, event: Option<&str>, data: &str) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.raw = true;
        #[derive(serde::Deserialize)]
        struct Frame {
            #[serde(rename = "type")]
            kind: Option<String>,
            index: Option<u32>,
            content_block: Option<Kind>,
        }
        #[derive(serde::Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: String,
        }
        // Only the events that change the stream's shape are read; the rest go out unread. (An
        // upstream `error` event never comes here: it fails the attempt, and its frame with it.)
        let shape = matches!(
            event,
            None | Some(
                "message_start" | "content_block_start" | "content_block_stop" | "message_stop"
            )
        );
        if shape && let Ok(frame) = serde_json::from_str::<Frame>(data) {
            match event.or(frame.kind.as_deref()) {
                Some("message_start") => {
                    self.started = true;
                    self.pending_start = false;
                }
                Some("content_block_start") => {
                    if let Some(index) = frame.index {
                        let kind = match frame.content_block.as_ref().map(|b| b.kind.as_str()) {
                            Some("text") => BlockKind::Text,
                            Some("tool_use") => BlockKind::Tool,
                            _ => BlockKind::Other,
                        };
                        self.open = Some((index, kind));
                        self.next_index = self.next_index.max(index.saturating_add(1));
                    }
                }
                Some("content_block_stop")
                    if self.open.map(|(i, _)| Some(i)) == Some(frame.index) =>
                {
                    self.open = None;
                }
                Some("message_stop") => self.finished = true,
                _ => {}
            }
        }
        vec![sse_frame(event, data)]
    }

    /// An in-stream `event: error` for `err`; the stream is over after it.
    fn error(&mut self, err: &ProviderError) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let mut body = anthropic_error_body(err);
        if let Some(obj) = body.as_object_mut() {
            obj.remove("request_id");
        }
        vec![anthropic_frame("error", &body)]
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI streaming encoder
// ---------------------------------------------------------------------------------------------

/// Our stream events → Chat Completions chunks.
///
/// Every chunk carries the same `id` (the upstream message id, or a fresh `chatcmpl-…`) and
/// `created`. Tool calls are numbered 0, 1, … in order of appearance, as OpenAI does. Usage events
/// are kept and the last one is sent in the usage chunk (`choices: []`) when `include_usage`.
/// Thinking goes out as `delta.reasoning_content` (vLLM / DeepSeek's field; the official clients
/// ignore it).
#[derive(Debug)]
pub struct OpenAiEncoder {
    model: String,
    include_usage: bool,
    id: Option<String>,
    created: u64,
    started: bool,
    finished: bool,
    usage: Usage,
    /// Our tool call index → OpenAI's.
    tools: HashMap<u32, u32>,
    /// OpenAI's indices of the tool calls that got no arguments yet: they are sent `{}` at the
    /// end, since `""` is not JSON and clients parse the arguments.
    no_arguments: std::collections::BTreeSet<u32>,
    /// A refusal went out in `refusal`: OpenAI ends those with `stop`.
    refused: bool,
    /// The upstream's own chunks are going out (a passthrough): the normalized events they
    /// cover are not encoded again.
    raw: bool,
}

impl OpenAiEncoder {
    /// `model` is used until a `MessageStart` names the model that actually answers.
    pub fn new(model: impl Into<String>, include_usage: bool) -> Self {
        OpenAiEncoder {
            model: model.into(),
            include_usage,
            id: None,
            created: unix_now(),
            started: false,
            finished: false,
            usage: Usage::default(),
            tools: HashMap::new(),
            no_arguments: std::collections::BTreeSet::new(),
            refused: false,
            raw: false,
        }
    }

    fn id_str(&mut self) -> String {
        self.id.get_or_insert_with(|| new_id("chatcmpl-")).clone()
    }

    fn start(&mut self, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(self.chunk(
            json!({"role": "assistant", "content": "", "refusal": Value::Null}),
            Value::Null,
        ));
    }

    fn chunk(&mut self, delta: Value, finish_reason: Value) -> String {
        let mut chunk = json!({
            "id": self.id_str(), "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": Value::Null,
            "choices": [{"index": 0, "delta": delta, "logprobs": Value::Null,
                         "finish_reason": finish_reason}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        openai_frame(&chunk)
    }

    /// The first `MessageStart` names the completion and the model that answers, and opens the
    /// stream.
    fn message_start(&mut self, id: &str, model: &str, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        if !id.is_empty() {
            self.id = Some(id.to_string());
        }
        if !model.is_empty() {
            self.model = model.to_string();
        }
        self.start(out);
    }

    /// A piece of text in the delta's `field` (`content`, `reasoning_content`, `refusal`).
    fn delta(&mut self, field: &str, text: &str, out: &mut Vec<String>) {
        self.start(out);
        if !text.is_empty() {
            out.push(self.chunk(json!({ field: text }), Value::Null));
        }
    }

    fn tool_start(&mut self, index: u32, id: &str, name: &str, out: &mut Vec<String>) {
        self.start(out);
        let next = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
        let position = *self.tools.entry(index).or_insert(next);
        self.no_arguments.insert(position);
        out.push(self.chunk(
            json!({"tool_calls": [{"index": position, "id": id, "type": "function",
                                   "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
    }

    fn tool_delta(&mut self, index: u32, partial_json: &str, out: &mut Vec<String>) {
        self.start(out);
        let Some(position) = self.tools.get(&index).copied() else {
            return;
        };
        if !partial_json.is_empty() {
            self.no_arguments.remove(&position);
            out.push(self.chunk(
                json!({"tool_calls": [{"index": position,
                                       "function": {"arguments": partial_json}}]}),
                Value::Null,
            ));
        }
    }

    /// The calls still without arguments get `{}`, then the finish reason, the usage chunk when
    /// asked for, and `[DONE]`.
    fn done(&mut self, stop_reason: StopReason, raw: Option<&str>, out: &mut Vec<String>) {
        self.start(out);
        for position in std::mem::take(&mut self.no_arguments) {
            out.push(self.chunk(
                json!({"tool_calls": [{"index": position, "function": {"arguments": "{}"}}]}),
                Value::Null,
            ));
        }
        let reason = refusal_finish(self.refused, openai_finish_reason(stop_reason, raw));
        out.push(self.chunk(json!({}), json!(reason)));
        if self.include_usage {
            out.push(openai_frame(&json!({
                "id": self.id_str(), "object": "chat.completion.chunk",
                "created": self.created, "model": self.model,
                "system_fingerprint": Value::Null, "choices": [],
                "usage": crate::protocol::chat::usage_json(&self.usage),
            })));
        }
        out.push("data: [DONE]\n\n".to_string());
        self.finished = true;
    }
}

impl Encode for OpenAiEncoder {
    /// The frames for one event. [`StreamEvent::Rewind`] is ignored (see the module doc); events
    /// after `Done` or an error produce nothing.
    fn event(&mut self, event: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.finished || (self.raw && covered(event)) {
            return out;
        }
        match event {
            StreamEvent::MessageStart { id, model } => self.message_start(id, model, &mut out),
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::TextDelta { text } => self.delta("content", text, &mut out),
            StreamEvent::ThinkingDelta { text } => {
                self.delta("reasoning_content", text, &mut out);
            }
            StreamEvent::RefusalDelta { text } => {
                self.refused |= !text.is_empty();
                self.delta("refusal", text, &mut out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.tool_start(*index, id, name, &mut out);
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => self.tool_delta(*index, partial_json, &mut out),
            StreamEvent::Rewind { .. } | StreamEvent::RateLimits(_) => {}
            StreamEvent::Spliced => self.raw = false,
            // Every chunk names its model: the chunks of a continuation, the usage chunk
            // included, name the one that wrote them.
            StreamEvent::ContinuedBy { model } => {
                if !model.is_empty() {
                    self.model = model.clone();
                }
            }
            StreamEvent::Wire { event, data } => return self.wire(event.as_deref(), data),
            StreamEvent::Done {
                stop_reason,
                raw_stop_reason,
            } => self.done(*stop_reason, raw_stop_reason.as_deref(), &mut out),
        }
        out
    }

    fn wire(&mut self, event: Option<&str>, data: &str) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.raw = true;
        if data.trim() == "[DONE]" {
            self.finished = true;
            return vec![sse_frame(event, data)];
        }
        #[derive(serde::Deserialize)]
        struct Chunk {
            id: Option<String>,
            model: Option<String>,
            created: Option<u64>,
            choices: Option<Vec<serde::de::IgnoredAny>>,
            usage: Option<serde::de::IgnoredAny>,
        }
        // The first chunk names the stream (a continuation's chunks carry its id); the usage
        // chunk (`choices: []`), asked for by the engine, goes only to a client that asked for
        // it too. Other chunks go out unread.
        let usage_chunk = || data.contains("\"choices\":[]") || data.contains("\"choices\": []");
        if (!self.started || (!self.include_usage && usage_chunk()))
            && let Ok(chunk) = serde_json::from_str::<Chunk>(data)
        {
            if !self.started {
                self.started = true;
                self.id = chunk.id.filter(|id| !id.is_empty()).or(self.id.take());
                if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
                    self.model = model;
                }
                self.created = chunk.created.unwrap_or(self.created);
            }
            let usage_only = chunk.usage.is_some() && chunk.choices.is_some_and(|c| c.is_empty());
            if usage_only && !self.include_usage {
                return Vec::new();
            }
        }
        vec![sse_frame(event, data)]
    }

    /// An in-stream error chunk for `err`; no `[DONE]` follows.
    fn error(&mut self, err: &ProviderError) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        vec![openai_frame(&openai_error_body(err))]
    }
}

// ---------------------------------------------------------------------------------------------
// Non-streaming replies
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Block {
    Text(String),
    Refusal(String),
    Thinking(String),
    Tool {
        index: u32,
        id: String,
        name: String,
        json: String,
    },
}

/// A whole reply, folded from its events.
#[derive(Debug, Default)]
struct Folded {
    id: Option<String>,
    model: Option<String>,
    blocks: Vec<Block>,
    usage: Usage,
    stop: Option<(StopReason, Option<String>)>,
}

/// The events after the last rewind: everything before it was withdrawn.
pub(crate) fn after_last_rewind(events: &[StreamEvent]) -> &[StreamEvent] {
    let from = events
        .iter()
        .rposition(|e| matches!(e, StreamEvent::Rewind { .. }))
        .map_or(0, |i| i + 1);
    &events[from..]
}

fn fold(events: &[StreamEvent]) -> Folded {
    let mut reply = Folded::default();
    for event in after_last_rewind(events) {
        match event {
            StreamEvent::MessageStart { id, model } => {
                if reply.id.is_none() && !id.is_empty() {
                    reply.id = Some(id.clone());
                }
                if reply.model.is_none() && !model.is_empty() {
                    reply.model = Some(model.clone());
                }
            }
            StreamEvent::TextDelta { text } => match reply.blocks.last_mut() {
                Some(Block::Text(t)) => t.push_str(text),
                _ => reply.blocks.push(Block::Text(text.clone())),
            },
            StreamEvent::RefusalDelta { text } => match reply.blocks.last_mut() {
                Some(Block::Refusal(t)) => t.push_str(text),
                _ => reply.blocks.push(Block::Refusal(text.clone())),
            },
            StreamEvent::ThinkingDelta { text } => match reply.blocks.last_mut() {
                Some(Block::Thinking(t)) => t.push_str(text),
                _ => reply.blocks.push(Block::Thinking(text.clone())),
            },
            StreamEvent::ToolCallStart { index, id, name } => reply.blocks.push(Block::Tool {
                index: *index,
                id: id.clone(),
                name: name.clone(),
                json: String::new(),
            }),
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                let call = reply.blocks.iter_mut().rev().find_map(|b| match b {
                    Block::Tool { index: i, json, .. } if i == index => Some(json),
                    _ => None,
                });
                if let Some(json) = call {
                    json.push_str(partial_json);
                }
            }
            // A spliced reply is the continuing model's to name: it finished it.
            StreamEvent::ContinuedBy { model } => {
                if !model.is_empty() {
                    reply.model = Some(model.clone());
                }
            }
            StreamEvent::Usage(usage) => reply.usage = *usage,
            StreamEvent::Rewind { .. }
            | StreamEvent::Wire { .. }
            | StreamEvent::Spliced
            | StreamEvent::RateLimits(_) => {}
            StreamEvent::Done {
                stop_reason,
                raw_stop_reason,
            } => reply.stop = Some((*stop_reason, raw_stop_reason.clone())),
        }
    }
    reply
}

/// A whole Anthropic `Message` for a completed reply (`"stream": false`). `model` is used unless a
/// `MessageStart` names the model that answered. A reply without `Done` gets `end_turn`; the
/// gateway should not call this for an incomplete reply.
pub fn anthropic_message(model: &str, events: &[StreamEvent]) -> Value {
    let reply = fold(events);
    let content: Vec<Value> = reply
        .blocks
        .iter()
        .filter_map(|block| match block {
            Block::Text(text) | Block::Refusal(text) => Some(json!({"type": "text", "text": text})),
            // See the streaming encoder: unsigned reasoning is not an Anthropic thinking block.
            Block::Thinking(_) => None,
            Block::Tool { id, name, json, .. } => Some(
                json!({"type": "tool_use", "id": id, "name": name, "input": tool_arguments(json)}),
            ),
        })
        .collect();
    let (reason, raw) = reply.stop.unwrap_or((StopReason::EndTurn, None));
    json!({
        "id": reply.id.unwrap_or_else(|| new_id("msg_")),
        "type": "message",
        "role": "assistant",
        "model": reply.model.as_deref().unwrap_or(model),
        "content": content,
        "stop_reason": anthropic_stop_reason(reason, raw.as_deref()),
        "stop_sequence": Value::Null,
        "usage": crate::protocol::anthropic::usage_json(&reply.usage),
    })
}

/// A whole OpenAI `ChatCompletion` for a completed reply (`"stream": false`). `model` is used
/// unless a `MessageStart` names the model that answered.
pub fn openai_completion(model: &str, events: &[StreamEvent]) -> Value {
    let reply = fold(events);
    let mut text = String::new();
    let mut refusal = String::new();
    let mut thinking = String::new();
    let mut calls: Vec<(u32, Value)> = Vec::new();
    for block in &reply.blocks {
        match block {
            Block::Text(t) => text.push_str(t),
            Block::Refusal(t) => refusal.push_str(t),
            Block::Thinking(t) => thinking.push_str(t),
            Block::Tool {
                index,
                id,
                name,
                json,
            } => calls.push((
                *index,
                json!({"id": id, "type": "function",
                       "function": {"name": name,
                                    "arguments": if json.trim().is_empty() { "{}" } else { json.as_str() }}}),
            )),
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && (!calls.is_empty() || !refusal.is_empty()) { Value::Null } else { json!(text) },
        "refusal": if refusal.is_empty() { Value::Null } else { json!(refusal) },
        "annotations": [],
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls.into_iter().map(|(_, c)| c).collect());
    }
    if !thinking.is_empty() {
        message["reasoning_content"] = json!(thinking);
    }
    let (reason, raw) = reply.stop.unwrap_or((StopReason::EndTurn, None));
    json!({
        "id": reply.id.unwrap_or_else(|| new_id("chatcmpl-")),
        "object": "chat.completion",
        "created": unix_now(),
        "model": reply.model.as_deref().unwrap_or(model),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": Value::Null,
            "finish_reason": refusal_finish(!refusal.is_empty(), openai_finish_reason(reason, raw.as_deref())),
        }],
        "usage": crate::protocol::chat::usage_json(&reply.usage),
        "system_fingerprint": Value::Null,
    })
}

/// What a client is told when the upstream stream ended without its terminating event.
pub fn upstream_cut() -> ProviderError {
    ProviderError::new(
        "gateway",
        ErrorClass::StreamCut,
        crate::provider::Phase::MidStream,
        "the upstream stream ended before the message was complete",
    )
}
