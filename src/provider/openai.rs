//! OpenAI Chat Completions, streaming (`POST {base_url}/chat/completions`), as spoken by OpenAI and the
//! compatible servers (Ollama, vLLM, OpenRouter, Groq, …).

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

pub struct OpenAiClient {
    config: ProviderConfig,
    http: reqwest::Client,
}

impl OpenAiClient {
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        OpenAiClient { config, http }
    }

    /// The JSON body for `request`: the caller's own when it came in this protocol (see
    /// [`super::passthrough`]), else built from it; the model defaults to the configured one.
    pub fn request_body(&self, request: &Request) -> String {
        let model = request.model_or(&self.config.model);
        // api.openai.com rejects `max_tokens` for reasoning models (GPT-5, o-series) and wants
        // `max_completion_tokens`, which many compatible servers do not know; so only OpenAI gets it.
        let max_tokens_field = if self.config.base_url.contains("api.openai.com") {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        chat_body(request, Protocol::Openai, model, max_tokens_field)
    }
}

/// The Chat Completions body for `request` asking `model`, with the output limit in
/// `max_tokens_field`: the caller's own when it came in `protocol` (see [`super::passthrough`]),
/// else built from it. Azure's client ([`super::azure`]) writes its bodies with it too.
pub fn chat_body(
    request: &Request,
    protocol: Protocol,
    model: &str,
    max_tokens_field: &str,
) -> String {
    if let Some(body) = super::passthrough::body(request, protocol, model) {
        return body;
    }
    let mut body = json!({
        "model": model,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    body[max_tokens_field] = json!(request.max_tokens);
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = request.top_p {
        body["top_p"] = json!(p);
    }
    if !request.stop.is_empty() {
        body["stop"] = json!(request.stop);
    }
    if let (Some(parallel), false) = (request.parallel_tool_calls, request.tools.is_empty()) {
        body["parallel_tool_calls"] = json!(parallel);
    }
    if let Some(user) = &request.user {
        body["user"] = json!(user);
    }
    if let Some(effort) = &request.reasoning_effort {
        body["reasoning_effort"] = json!(effort);
    }
    if let Some(format) = &request.output_format {
        body["response_format"] = format.to_openai(true);
    }
    if let (Some(choice), false) = (&request.tool_choice, request.tools.is_empty()) {
        body["tool_choice"] = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Any => json!("required"),
            ToolChoice::Tool { name } => {
                json!({"type": "function", "function": {"name": name}})
            }
        };
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                let mut function = json!({ "name": t.name, "parameters": t.input_schema });
                if !t.description.is_empty() {
                    function["description"] = json!(t.description);
                }
                json!({ "type": "function", "function": function })
            })
            .collect();
        body["tools"] = json!(tools);
    }
    // The messages one at a time: a long conversation is never a tree in memory.
    let system = request
        .system
        .iter()
        .map(|system| json!({ "role": "system", "content": system }));
    let messages = request.messages.iter().flat_map(|message| {
        let mut out = Vec::new();
        push_messages(message.role, &message.content, &mut out);
        out
    });
    json::object_with_array(&body, "messages", system.chain(messages))
}

impl OpenAiClient {
    fn headers(&self, key: &ApiKey) -> Result<HeaderMap, InvalidHeaderValue> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        // Local servers such as Ollama need no key, and some reject an empty bearer token.
        if !key.is_empty() {
            let bearer = format!("Bearer {}", key.expose());
            headers.insert(AUTHORIZATION, http::secret_header(&bearer)?);
        }
        Ok(headers)
    }
}

/// One of our messages as Chat Completions messages: tool results become `tool` messages (which must
/// directly follow the assistant's tool calls, so they go first), the rest one user or assistant message.
fn push_messages(role: Role, content: &[Content], messages: &mut Vec<Value>) {
    let mut text = Vec::new();
    let mut images = Vec::new();
    let mut tool_calls = Vec::new();
    for block in content {
        match block {
            Content::Text { text: t } => text.push(t.as_str()),
            Content::Image { url } => {
                images.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            // Chat Completions takes a file's bytes (`file_data`), not where it is.
            Content::File { url, filename } if super::data_url(url).is_some() => {
                images.push(json!({"type": "file", "file": {
                    "filename": filename.as_deref().unwrap_or("document.pdf"),
                    "file_data": url,
                }}));
            }
            Content::File { .. } => {}
            Content::ToolUse { id, name, input } => tool_calls.push(json!({
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": input.to_string() },
            })),
            Content::ToolResult {
                tool_use_id,
                content,
                ..
            } => messages.push(json!({
                "role": "tool",
                "tool_call_id": tool_use_id,
                "content": content,
            })),
        }
    }
    if role == Role::User && !images.is_empty() {
        // With images or files the content is a list of parts: the text, then each of them.
        let mut parts = Vec::new();
        if !text.is_empty() {
            parts.push(json!({"type": "text", "text": text.join("\n")}));
        }
        parts.extend(images);
        messages.push(json!({ "role": "user", "content": parts }));
        return;
    }
    let text = text.join("\n");
    match role {
        // An instruction later in the conversation stays where it was said.
        Role::System if !text.is_empty() => {
            messages.push(json!({ "role": "system", "content": text }));
        }
        Role::System => {}
        Role::User if !text.is_empty() => {
            messages.push(json!({ "role": "user", "content": text }));
        }
        Role::User => {}
        Role::Assistant => {
            let mut message = json!({ "role": "assistant", "content": text });
            if !tool_calls.is_empty() {
                message["tool_calls"] = json!(tool_calls);
                if text.is_empty() {
                    message["content"] = Value::Null;
                }
            }
            messages.push(message);
        }
    }
}

impl Provider for OpenAiClient {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn default_model(&self) -> &str {
        &self.config.model
    }
    fn protocol(&self) -> Option<Protocol> {
        Some(Protocol::Openai)
    }
    fn stream(&self, request: Request) -> ProviderStream {
        let body = self.request_body(&request);
        http::send(
            &self.http,
            &self.config,
            Protocol::Openai,
            &request,
            |key| self.headers(key),
            crate::protocol::below_v1(crate::protocol::chat::PATH),
            body,
            OpenAiParser::default(),
        )
    }
}

/// Chat Completions chunks → normalized events.
#[derive(Debug, Default)]
pub struct OpenAiParser {
    started: bool,
    /// Tool call indices already announced: some servers repeat the id on every chunk.
    tool_calls: Vec<u32>,
    finish_reason: Option<String>,
    /// The model refused (`delta.refusal`): the reply ends as a refusal, not a normal stop.
    refused: bool,
}

#[derive(Deserialize)]
struct Chunk {
    id: Option<String>,
    model: Option<String>,
    choices: Option<Vec<Choice>>,
    usage: Option<WireUsage>,
    error: Option<Value>,
    object: Option<String>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    /// vLLM, DeepSeek.
    reasoning_content: Option<String>,
    /// OpenRouter, Ollama; a Value because not every server makes it a string.
    reasoning: Option<Value>,
    tool_calls: Option<Vec<ToolCallDelta>>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    index: Option<u32>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl OpenAiParser {
    fn done(&self, out: &mut VecDeque<StreamEvent>) {
        let stop_reason = self
            .finish_reason
            .as_deref()
            .map_or(StopReason::Other, crate::protocol::chat::finish_reason);
        // OpenAI ends a refusal with `stop`; it is a refusal all the same.
        let (stop_reason, raw_stop_reason) = match stop_reason {
            StopReason::EndTurn if self.refused => {
                (StopReason::ContentFilter, Some("refusal".to_string()))
            }
            _ => (stop_reason, self.finish_reason.clone()),
        };
        out.push_back(StreamEvent::Done {
            stop_reason,
            raw_stop_reason,
        });
    }

    fn delta(&mut self, delta: Delta, out: &mut VecDeque<StreamEvent>) {
        let reasoning = match delta.reasoning {
            Some(Value::String(s)) if delta.reasoning_content.is_none() => Some(s),
            _ => delta.reasoning_content,
        };
        if let Some(text) = reasoning.filter(|t| !t.is_empty()) {
            out.push_back(StreamEvent::ThinkingDelta { text });
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            out.push_back(StreamEvent::TextDelta { text });
        }
        if let Some(text) = delta.refusal.filter(|t| !t.is_empty()) {
            self.refused = true;
            out.push_back(StreamEvent::RefusalDelta { text });
        }
        for (position, call) in delta.tool_calls.into_iter().flatten().enumerate() {
            // Some servers leave out `index`; the position in the list is then the best guess.
            let index = call
                .index
                .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
            let function = call.function.unwrap_or(FunctionDelta {
                name: None,
                arguments: None,
            });
            if let (Some(id), Some(name)) = (call.id, function.name)
                && !self.tool_calls.contains(&index)
            {
                self.tool_calls.push(index);
                out.push_back(StreamEvent::ToolCallStart { index, id, name });
            }
            if let Some(partial_json) = function.arguments.filter(|a| !a.is_empty()) {
                out.push_back(StreamEvent::ToolCallDelta {
                    index,
                    partial_json,
                });
            }
        }
    }
}

impl SseParser for OpenAiParser {
    fn event(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<Flow, Failure> {
        if event.data.trim() == "[DONE]" {
            self.done(out);
            return Ok(Flow::Finished);
        }
        let chunk: Chunk = serde_json::from_str(&event.data)
            .map_err(|e| Failure::malformed("bad chat.completion.chunk", e))?;
        if chunk.error.as_ref().is_some_and(|e| !e.is_null())
            || chunk.object.as_deref() == Some("error")
        {
            return Err(Failure::from_error_body(None, &event.data));
        }
        // Azure's first chunk has an empty `id` and `model` (it carries only the prompt's filter
        // results): the message starts with the first chunk that names itself, and its model.
        if !self.started
            && let Some(id) = chunk.id.filter(|id| !id.is_empty())
        {
            self.started = true;
            out.push_back(StreamEvent::MessageStart {
                id,
                model: chunk.model.unwrap_or_default(),
            });
        }
        for choice in chunk.choices.into_iter().flatten() {
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason);
            }
        }
        if let Some(usage) = chunk.usage {
            // `cached_tokens` is part of `prompt_tokens`; ours counts them apart (Anthropic's way).
            let prompt = usage.prompt_tokens.unwrap_or(0);
            let cached = usage
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0);
            out.push_back(StreamEvent::Usage(Usage {
                input_tokens: prompt.saturating_sub(cached),
                output_tokens: usage.completion_tokens.unwrap_or(0),
                cache_read_tokens: cached,
                cache_write_tokens: 0,
                reasoning_tokens: usage
                    .completion_tokens_details
                    .and_then(|d| d.reasoning_tokens)
                    .unwrap_or(0),
            }));
        }
        Ok(Flow::More)
    }

    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), Failure> {
        // Some compatible servers never send `[DONE]`; a finish reason shows the reply was complete.
        if self.finish_reason.is_some() {
            self.done(out);
            Ok(())
        } else {
            Err(Failure::new(
                ErrorClass::StreamCut,
                "stream ended before a finish_reason",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body_for(base_url: &str) -> Value {
        let config = ProviderConfig::new("openai", super::super::Protocol::Openai, base_url);
        let http = http::client(&config.timeouts).unwrap();
        let body = OpenAiClient::new(config, http).request_body(&Request::prompt("hi"));
        serde_json::from_str(&body).unwrap()
    }

    #[test]
    fn only_openai_itself_gets_max_completion_tokens() {
        let body = body_for("https://api.openai.com/v1");
        assert_eq!(body["max_completion_tokens"], 1024);
        assert!(body.get("max_tokens").is_none());
        let body = body_for("http://localhost:11434/v1");
        assert_eq!(body["max_tokens"], 1024);
        assert!(body.get("max_completion_tokens").is_none());
    }
}
