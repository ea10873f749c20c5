//! The gateway's Gemini side: `POST /v1beta/models/{model}:streamGenerateContent` and
//! `:generateContent`, as the `google-genai` client sends them (its `http_options.base_url`
//! pointed at the gateway). A Gemini target gets the body as sent and its chunks go back as they
//! came (see [`crate::provider::passthrough`]); any other target's reply is written here in
//! Gemini's shapes.

use super::wire::{DEFAULT_MAX_TOKENS, Encode, InboundOptions, WireError, error_message};
use crate::protocol::gemini::{self as protocol, Field};
use crate::provider::{
    Content, Message, OutputFormat, ProviderError, Request, Role, StopReason, StreamEvent,
    ToolChoice, ToolDef, Usage,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// A `GenerateContentRequest` (the model and whether it streams come from the path) in our
/// terms.
pub fn parse_request(
    body: &[u8],
    model: &str,
    stream: bool,
) -> Result<(Request, InboundOptions), WireError> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| WireError::body(format!("Invalid JSON payload received: {e}")))?;
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| WireError::field("contents", "contents is not specified"))?;
    let mut calls = Calls::default();
    let mut messages = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        let role = match content.get("role").and_then(Value::as_str) {
            Some("model") => Role::Assistant,
            _ => Role::User,
        };
        let parts = content.get("parts").and_then(Value::as_array);
        let blocks: Vec<Content> = parts
            .into_iter()
            .flatten()
            .filter_map(|p| part(p, &mut calls))
            .collect();
        if blocks.is_empty() && parts.is_none() {
            return Err(WireError::field(
                format!("contents[{i}].parts"),
                "parts is not specified",
            ));
        }
        if !blocks.is_empty() {
            messages.push(Message {
                role,
                content: blocks,
            });
        }
    }
    let system = body.field("systemInstruction").and_then(|s| {
        let text = texts(s);
        (!text.is_empty()).then_some(text)
    });
    let config = body.field("generationConfig").cloned().unwrap_or_default();
    let number = |key: &str| config.get(key).and_then(Value::as_f64).map(|v| v as f32);
    let request = Request {
        system,
        messages: Arc::new(messages),
        tools: tools(&body),
        max_tokens: config
            .field("maxOutputTokens")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: number("temperature"),
        top_p: number("topP"),
        top_k: config
            .field("topK")
            .and_then(Value::as_f64)
            .map(|k| k.max(0.0) as u32),
        stop: config
            .field("stopSequences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        tool_choice: tool_choice(&body),
        output_format: output_format(&config),
        ..Request::default()
    };
    let options = InboundOptions {
        stream,
        include_usage: true,
        model: model.to_string(),
    };
    Ok((request, options))
}

/// The text of a `Content`'s parts (a system instruction), thoughts left out.
fn texts(content: &Value) -> String {
    content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The conversation's function calls, given ids where Gemini gave none, so that each
/// `functionResponse` (which names the function) answers the right call.
#[derive(Default)]
struct Calls {
    made: u32,
    unanswered: Vec<(String, String)>,
}

impl Calls {
    fn call(&mut self, id: Option<&str>, name: &str) -> String {
        let id = id.map_or_else(|| format!("call_{}", self.made), str::to_string);
        self.made += 1;
        self.unanswered.push((id.clone(), name.to_string()));
        id
    }

    fn answer(&mut self, id: Option<&str>, name: &str) -> String {
        let found = self
            .unanswered
            .iter()
            .position(|(i, n)| id.map_or(n == name, |id| id == i));
        match found {
            Some(at) => self.unanswered.remove(at).0,
            None => id.map_or_else(|| format!("call_{name}"), str::to_string),
        }
    }
}

fn part(part: &Value, calls: &mut Calls) -> Option<Content> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    if let Some(call) = part.field("functionCall") {
        let name = text(call, "name").unwrap_or_default();
        let id = calls.call(call.get("id").and_then(Value::as_str), &name);
        let input = call.get("args").cloned().unwrap_or_else(|| json!({}));
        return Some(Content::ToolUse { id, name, input });
    }
    if let Some(response) = part.field("functionResponse") {
        let name = text(response, "name").unwrap_or_default();
        let tool_use_id = calls.answer(response.get("id").and_then(Value::as_str), &name);
        let result = response.get("response").cloned().unwrap_or_default();
        let is_error = result.get("error").is_some() && result.get("output").is_none();
        let content = match result.get("output").or_else(|| result.get("result")) {
            Some(Value::String(s)) => s.clone(),
            _ => result.to_string(),
        };
        return Some(Content::ToolResult {
            tool_use_id,
            content,
            is_error,
        });
    }
    if let Some(inline) = part.field("inlineData") {
        let mime = text(inline, "mimeType").unwrap_or_default();
        let url = format!(
            "data:{mime};base64,{}",
            text(inline, "data").unwrap_or_default()
        );
        return Some(media(&mime, url));
    }
    if let Some(file) = part.field("fileData") {
        let mime = text(file, "mimeType").unwrap_or_default();
        return Some(media(&mime, text(file, "fileUri")?));
    }
    // Thoughts are the model's own: they do not cross (their signatures pass through to Gemini).
    if part.get("thought").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    Some(Content::Text {
        text: text(part, "text")?,
    })
}

fn media(mime: &str, url: String) -> Content {
    if mime.starts_with("image/") {
        Content::Image { url }
    } else {
        Content::File {
            url,
            filename: None,
        }
    }
}

fn tools(body: &Value) -> Vec<ToolDef> {
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.field("functionDeclarations").and_then(Value::as_array))
        .flatten()
        .filter_map(|d| {
            Some(ToolDef {
                name: d.get("name")?.as_str()?.to_string(),
                description: d
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                input_schema: d
                    .field("parametersJsonSchema")
                    .or_else(|| d.get("parameters"))
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

fn tool_choice(body: &Value) -> Option<ToolChoice> {
    let config = body.field("toolConfig")?.field("functionCallingConfig")?;
    let allowed = config
        .field("allowedFunctionNames")
        .and_then(Value::as_array)
        .filter(|names| names.len() == 1)
        .and_then(|names| names[0].as_str());
    match config.get("mode")?.as_str()? {
        "NONE" => Some(ToolChoice::None),
        "ANY" => Some(match allowed {
            Some(name) => ToolChoice::Tool {
                name: name.to_string(),
            },
            None => ToolChoice::Any,
        }),
        "AUTO" => Some(ToolChoice::Auto),
        _ => None,
    }
}

fn output_format(config: &Value) -> Option<OutputFormat> {
    if config.field("responseMimeType").and_then(Value::as_str) != Some("application/json") {
        return None;
    }
    match config
        .field("responseJsonSchema")
        .or_else(|| config.field("responseSchema"))
    {
        Some(schema) => Some(OutputFormat::JsonSchema {
            name: "response".to_string(),
            schema: schema.clone(),
            strict: None,
            description: None,
        }),
        None => Some(OutputFormat::JsonObject),
    }
}

/// The error body in Google's shape, its `RetryInfo` from the retry-after the engine has.
pub fn error_body(status: u16, err: &ProviderError) -> Value {
    let (_, name) = protocol::error_status(err.class);
    protocol::error_body(status, name, &error_message(err), err.retry_after)
}

/// A request-body error in Google's shape.
pub fn wire_error_json(err: &WireError) -> Value {
    protocol::error_body(err.status, "INVALID_ARGUMENT", &err.message, None)
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

/// What a reply said, gathered from our events.
#[derive(Default)]
struct Said {
    id: String,
    /// The model that answers, as its first event names it (the one asked for until then), so
    /// that a reply another provider gave says whose it is, as the other protocols' replies do.
    model: Option<String>,
    /// Tool calls in progress: (name, arguments so far).
    calls: Vec<(String, String)>,
    usage: Option<Usage>,
}

impl Said {
    /// An event's part, when it is content (tool calls are held until they are whole).
    fn take(&mut self, event: &StreamEvent) -> Option<Value> {
        match event {
            StreamEvent::MessageStart { id, model } => {
                if self.id.is_empty() {
                    self.id.clone_from(id);
                }
                if self.model.is_none() && !model.is_empty() {
                    self.model = Some(model.clone());
                }
            }
            StreamEvent::TextDelta { text } | StreamEvent::RefusalDelta { text } => {
                return Some(json!({"text": text}));
            }
            StreamEvent::ThinkingDelta { text } => {
                return Some(json!({"text": text, "thought": true}));
            }
            StreamEvent::ToolCallStart { name, .. } => {
                self.calls.push((name.clone(), String::new()))
            }
            StreamEvent::ToolCallDelta { partial_json, .. } => {
                if let Some((_, args)) = self.calls.last_mut() {
                    args.push_str(partial_json);
                }
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            _ => {}
        }
        None
    }

    /// The tool calls, whole, as `functionCall` parts.
    fn calls(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.calls)
            .into_iter()
            .map(|(name, args)| {
                let args: Value = serde_json::from_str(&args).unwrap_or_else(|_| json!({}));
                json!({"functionCall": {"name": name, "args": args}})
            })
            .collect()
    }

    fn response(&self, model: &str, parts: Vec<Value>, finish: Option<StopReason>) -> Value {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(reason) = finish {
            candidate["finishReason"] = json!(protocol::wire_finish_reason(reason));
        }
        let mut response = json!({
            "candidates": [candidate],
            "modelVersion": self.model.as_deref().unwrap_or(model),
            "responseId": self.id,
        });
        if let Some(usage) = &self.usage {
            response["usageMetadata"] = protocol::usage_json(usage);
        }
        response
    }
}

/// A whole `GenerateContentResponse` from our events (another protocol's reply).
pub fn whole_response(model: &str, events: &[StreamEvent]) -> Value {
    let mut said = Said::default();
    let mut parts: Vec<Value> = Vec::new();
    let mut stop = StopReason::EndTurn;
    for event in events {
        if let StreamEvent::Done { stop_reason, .. } = event {
            stop = *stop_reason;
        }
        if let Some(part) = said.take(event) {
            match (parts.last_mut(), &part) {
                // Consecutive words of the same kind are one part.
                (Some(last), _)
                    if last.get("thought") == part.get("thought") && last.get("text").is_some() =>
                {
                    let joined = format!(
                        "{}{}",
                        last["text"].as_str().unwrap_or_default(),
                        part["text"].as_str().unwrap_or_default()
                    );
                    last["text"] = json!(joined);
                }
                _ => parts.push(part),
            }
        }
    }
    parts.extend(said.calls());
    said.response(model, parts, Some(stop))
}

/// The upstream's own chunks (a Gemini target) joined into one response: every part kept as it
/// came (thought signatures included), the last chunk's finish, usage and feedback.
pub fn whole_from_wire(wire: &[(Option<&str>, &str)]) -> Option<Value> {
    let mut merged: Option<Value> = None;
    let mut parts: Vec<Value> = Vec::new();
    for (_, data) in wire {
        let chunk: Value = serde_json::from_str(data).ok()?;
        if let Some(more) = chunk
            .pointer("/candidates/0/content/parts")
            .and_then(Value::as_array)
        {
            for part in more {
                join_part(&mut parts, part.clone());
            }
        }
        let merged = merged.get_or_insert_with(|| json!({}));
        for (key, value) in chunk.as_object()? {
            merged[key] = value.clone();
        }
    }
    let mut merged = merged?;
    if let Some(candidate) = merged.pointer_mut("/candidates/0") {
        candidate["content"] = json!({"role": "model", "parts": parts});
    }
    Some(merged)
}

/// `part` after `parts`: words run on in the last part when both are plain text of the same kind
/// (a thought or not) and neither carries a signature, as Gemini's whole responses have them.
fn join_part(parts: &mut Vec<Value>, part: Value) {
    let plain = |p: &Value| {
        p.get("text").is_some_and(Value::is_string)
            && p.as_object()
                .is_some_and(|o| o.keys().all(|k| k == "text" || k == "thought"))
    };
    if let Some(last) = parts.last_mut()
        && plain(last)
        && plain(&part)
        && last.get("thought") == part.get("thought")
    {
        let joined = format!(
            "{}{}",
            last["text"].as_str().unwrap_or_default(),
            part["text"].as_str().unwrap_or_default()
        );
        last["text"] = json!(joined);
        return;
    }
    parts.push(part);
}

/// Our stream events → Gemini's SSE (`data: GenerateContentResponse`, no end marker).
pub struct GeminiEncoder {
    model: String,
    said: Said,
    finished: bool,
    /// The upstream's own chunks are going out (a passthrough): the normalized events they
    /// carry are not written again.
    raw: bool,
}

impl GeminiEncoder {
    pub fn new(model: String) -> Self {
        GeminiEncoder {
            model,
            said: Said::default(),
            finished: false,
            raw: false,
        }
    }

    fn frame(value: &Value) -> String {
        format!("data: {value}\r\n\r\n")
    }
}

impl Encode for GeminiEncoder {
    fn event(&mut self, event: &StreamEvent) -> Vec<String> {
        if self.finished || (self.raw && super::wire::covered(event)) {
            return Vec::new();
        }
        match event {
            StreamEvent::Wire { event, data } => return self.wire(event.as_deref(), data),
            // A continuation from another attempt is written here, after the upstream's chunks.
            StreamEvent::Spliced => self.raw = false,
            _ => {}
        }
        if let StreamEvent::Done { stop_reason, .. } = event {
            self.finished = true;
            let mut parts = self.said.calls();
            if parts.is_empty() {
                parts.push(json!({"text": ""}));
            }
            let last = self.said.response(&self.model, parts, Some(*stop_reason));
            return vec![Self::frame(&last)];
        }
        match self.said.take(event) {
            Some(part) => {
                let chunk = self.said.response(&self.model, vec![part], None);
                vec![Self::frame(&chunk)]
            }
            None => Vec::new(),
        }
    }

    fn error(&mut self, err: &ProviderError) -> Vec<String> {
        if std::mem::replace(&mut self.finished, true) {
            return Vec::new();
        }
        let (status, _) = protocol::error_status(err.class);
        vec![Self::frame(&error_body(status, err))]
    }

    fn wire(&mut self, _event: Option<&str>, data: &str) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.raw = true;
        if let Ok(chunk) = serde_json::from_str::<Value>(data) {
            let finish = chunk.pointer("/candidates/0/finishReason").is_some();
            let blocked = chunk.pointer("/promptFeedback/blockReason").is_some();
            if finish || blocked || chunk.get("error").is_some() {
                self.finished = true;
            }
            if let Some(id) = chunk.field("responseId").and_then(Value::as_str) {
                self.said.id = id.to_string();
            }
        }
        vec![format!("data: {data}\r\n\r\n")]
    }

    fn finish(&mut self) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        self.error(&super::wire::upstream_cut())
    }
}

/// `{model}:{method}` from the path, or the 404 Google gives for a method it does not have.
pub fn method(target: &str) -> Result<(String, bool), WireError> {
    protocol::split_method(target)
        .map(|(model, stream)| (model.to_string(), stream))
        .ok_or_else(|| WireError {
            status: 404,
            param: None,
            message: format!(
                "`{target}`: this gateway serves {{model}}:streamGenerateContent and \
                 {{model}}:generateContent"
            ),
            cannot_cross: false,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn calls_and_responses_are_paired_by_name() {
        let body = json!({
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "weather?"}]},
                {"role": "model", "parts": [
                    {"text": "thinking", "thought": true},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
                ]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]},
            ],
            "generationConfig": {"maxOutputTokens": 77, "stopSequences": ["X"]},
            "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT"}}]}],
        });
        let (request, options) =
            parse_request(body.to_string().as_bytes(), "gemini-x", true).unwrap();
        assert_eq!(options.model, "gemini-x");
        assert_eq!(request.max_tokens, 77);
        assert_eq!(request.system.as_deref(), Some("be brief"));
        let Content::ToolUse { id, .. } = &request.messages[1].content[0] else {
            panic!("{:?}", request.messages[1])
        };
        let Content::ToolResult {
            tool_use_id,
            content,
            ..
        } = &request.messages[2].content[0]
        else {
            panic!("{:?}", request.messages[2])
        };
        assert_eq!(id, tool_use_id);
        assert_eq!(content, "sunny");
    }

    #[test]
    fn another_protocols_reply_is_written_in_gemini_chunks() {
        let mut encoder = GeminiEncoder::new("gemini-x".into());
        let events = [
            StreamEvent::MessageStart {
                id: "msg_1".into(),
                model: "claude".into(),
            },
            StreamEvent::TextDelta { text: "Hi".into() },
            StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 1,
                ..Usage::default()
            }),
            StreamEvent::Done {
                stop_reason: StopReason::EndTurn,
                raw_stop_reason: None,
            },
        ];
        let frames: Vec<String> = events.iter().flat_map(|e| encoder.event(e)).collect();
        assert_eq!(frames.len(), 2);
        let last: Value =
            serde_json::from_str(frames[1].trim().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(last["usageMetadata"]["promptTokenCount"], 3);
        assert!(encoder.finish().is_empty());
        let whole = whole_response("gemini-x", &events);
        assert_eq!(whole["candidates"][0]["content"]["parts"][0]["text"], "Hi");
        // The reply says who gave it, as the other protocols' replies do; the model asked for
        // stands in only when the first event names none.
        assert_eq!(last["modelVersion"], "claude");
        assert_eq!(whole["modelVersion"], "claude");
        let unnamed = whole_response("gemini-x", &events[1..]);
        assert_eq!(unnamed["modelVersion"], "gemini-x");
    }
}
