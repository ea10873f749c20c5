//! Anthropic Messages API, streaming (`POST {base_url}/v1/messages`).

use super::http::{self, Failure, Flow, SseParser};
use super::sse::SseEvent;
use super::{
    ApiKey, Content, ErrorClass, Protocol, Provider, ProviderConfig, ProviderStream, Request, Role,
    StopReason, StreamEvent, ToolChoice, Usage,
};
use crate::json;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, InvalidHeaderValue};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use std::collections::VecDeque;

pub struct AnthropicClient {
    config: ProviderConfig,
    http: reqwest::Client,
}

impl AnthropicClient {
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        AnthropicClient { config, http }
    }

    /// The JSON body for `request`: the caller's own when it came in this protocol (see
    /// [`super::passthrough`]), else built from it.
    pub fn request_body(&self, request: &Request) -> String {
        let model = request.model_or(&self.config.model);
        if let Some(body) = super::passthrough::body(request, Protocol::Anthropic, model) {
            return body;
        }
        let mut body = json!({
            "model": model,
            "max_tokens": request.max_tokens,
            "stream": true,
        });
        // Anthropic has one system prompt: the conversation's system messages join it.
        if let Some(system) = request.joined_system() {
            body["system"] = json!(system);
        }
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = request.top_p {
            body["top_p"] = json!(p);
        }
        if !request.stop.is_empty() {
            body["stop_sequences"] = json!(request.stop);
        }
        if let (Some(choice), false) = (&request.tool_choice, request.tools.is_empty()) {
            body["tool_choice"] = match choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Any => json!({"type": "any"}),
                ToolChoice::Tool { name } => json!({"type": "tool", "name": name}),
            };
        }
        // `none` calls no tool at all: nothing to run in parallel.
        if request.parallel_tool_calls == Some(false)
            && !request.tools.is_empty()
            && request.tool_choice != Some(ToolChoice::None)
        {
            if body.get("tool_choice").is_none() {
                body["tool_choice"] = json!({"type": "auto"});
            }
            body["tool_choice"]["disable_parallel_tool_use"] = json!(true);
        }
        if let Some(k) = request.top_k {
            body["top_k"] = json!(k);
        }
        if let Some(user) = &request.user {
            body["metadata"] = json!({"user_id": user});
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    let mut tool = json!({ "name": t.name, "input_schema": t.input_schema });
                    if !t.description.is_empty() {
                        tool["description"] = json!(t.description);
                    }
                    tool
                })
                .collect();
            body["tools"] = json!(tools);
        }
        // The messages one at a time: a long conversation is never a tree in memory.
        let messages = request.messages.iter().filter_map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::System => return None,
            };
            let content: Vec<Value> = m.content.iter().map(content_block).collect();
            Some(json!({ "role": role, "content": content }))
        });
        json::object_with_array(&body, "messages", messages)
    }

    fn headers(&self, key: &ApiKey) -> Result<HeaderMap, InvalidHeaderValue> {
        let mut headers = HeaderMap::new();
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if !key.is_empty() {
            headers.insert("x-api-key", http::secret_header(key.expose())?);
        }
        Ok(headers)
    }
}

fn content_block(content: &Content) -> Value {
    match content {
        Content::File { url, .. } => match super::data_url(url) {
            Some((media_type, data)) => json!({"type": "document", "source":
                {"type": "base64", "media_type": media_type, "data": data}}),
            None => json!({"type": "document", "source": {"type": "url", "url": url}}),
        },
        Content::Image { url } => match super::data_url(url) {
            Some((media_type, data)) => json!({"type": "image", "source":
                {"type": "base64", "media_type": media_type, "data": data}}),
            None => json!({"type": "image", "source": {"type": "url", "url": url}}),
        },
        Content::Text { text } => json!({ "type": "text", "text": text }),
        Content::ToolUse { id, name, input } => {
            json!({ "type": "tool_use", "id": id, "name": name, "input": input })
        }
        Content::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => json!({
            "type": "tool_result",
            "tool_use_id": tool_use_id,
            "content": content,
            "is_error": is_error,
        }),
    }
}

impl Provider for AnthropicClient {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn default_model(&self) -> &str {
        &self.config.model
    }
    fn protocol(&self) -> Option<Protocol> {
        Some(Protocol::Anthropic)
    }
    fn count_tokens(
        &self,
        body: String,
    ) -> Option<futures::future::BoxFuture<'static, Result<u64, String>>> {
        let key = self.config.api_key.clone();
        let mut headers = self.headers(&key).ok()?;
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let url = http::endpoint(&self.config.base_url, "/v1/messages/count_tokens");
        let request = self.http.post(url).headers(headers).body(body);
        // A count is a quick question: it gets the time a reply has to start.
        let within = self.config.timeouts.headers;
        Some(Box::pin(async move {
            #[derive(Deserialize)]
            struct Count {
                input_tokens: u64,
            }
            let response = tokio::time::timeout(within, request.send())
                .await
                .map_err(|_| "no answer in time".to_string())?
                .map_err(|e| http::describe(&e))?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("HTTP {}", status.as_u16()));
            }
            let body = tokio::time::timeout(within, response.bytes())
                .await
                .map_err(|_| "no answer in time".to_string())?
                .map_err(|e| http::describe(&e))?;
            serde_json::from_slice::<Count>(&body)
                .map(|c| c.input_tokens)
                .map_err(|e| format!("not a token count: {e}"))
        }))
    }
    fn stream(&self, request: Request) -> ProviderStream {
        let body = self.request_body(&request);
        http::send(
            &self.http,
            &self.config,
            Protocol::Anthropic,
            &request,
            |key| self.headers(key),
            crate::protocol::anthropic::PATH,
            body,
            AnthropicParser::default(),
        )
    }
}

/// Anthropic's stream events → normalized events.
#[derive(Debug, Default)]
pub struct AnthropicParser {
    usage: Usage,
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct MessageStart {
    message: StartedMessage,
}

#[derive(Deserialize)]
struct StartedMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    usage: Option<WireUsage>,
}

/// Every count is optional: `message_start` may lack usage, and `message_delta` may carry any subset.
#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct BlockStart {
    index: u32,
    content_block: Block,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    /// `redacted_thinking` (opaque), server tools and block kinds added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct BlockDelta {
    index: u32,
    delta: Delta,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: String },
    /// `signature_delta`, `citations_delta` and others carry nothing to show.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    delta: MessageDeltaBody,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    stop_reason: Option<String>,
}

fn parse<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, Failure> {
    serde_json::from_str(data).map_err(|e| Failure::malformed("bad Anthropic event", e))
}

impl AnthropicParser {
    fn merge_usage(&mut self, usage: WireUsage, out: &mut VecDeque<StreamEvent>) {
        let u = &mut self.usage;
        // Counts are cumulative, so a present count replaces the earlier one.
        for (slot, value) in [
            (&mut u.input_tokens, usage.input_tokens),
            (&mut u.output_tokens, usage.output_tokens),
            (&mut u.cache_read_tokens, usage.cache_read_input_tokens),
            (&mut u.cache_write_tokens, usage.cache_creation_input_tokens),
        ] {
            if let Some(v) = value {
                *slot = v;
            }
        }
        out.push_back(StreamEvent::Usage(self.usage));
    }

    fn done(&self, out: &mut VecDeque<StreamEvent>) {
        out.push_back(StreamEvent::Done {
            stop_reason: self
                .stop_reason
                .as_deref()
                .map_or(StopReason::Other, crate::protocol::anthropic::stop_reason),
            raw_stop_reason: self.stop_reason.clone(),
        });
    }
}

impl SseParser for AnthropicParser {
    fn event(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<Flow, Failure> {
        let data = event.data.as_str();
        // The official client dispatches on the `event:` line; the JSON `type` is the fallback.
        let kind = match event.event {
            Some(name) => name,
            None => parse::<TypeOnly>(data)?.kind,
        };
        match kind.as_str() {
            "message_start" => {
                let start: MessageStart = parse(data)?;
                out.push_back(StreamEvent::MessageStart {
                    id: start.message.id,
                    model: start.message.model,
                });
                if let Some(usage) = start.message.usage {
                    self.merge_usage(usage, out);
                }
            }
            "content_block_start" => {
                let start: BlockStart = parse(data)?;
                match start.content_block {
                    Block::ToolUse { id, name } => out.push_back(StreamEvent::ToolCallStart {
                        index: start.index,
                        id,
                        name,
                    }),
                    Block::Text { text } if !text.is_empty() => {
                        out.push_back(StreamEvent::TextDelta { text })
                    }
                    Block::Thinking { thinking } if !thinking.is_empty() => {
                        out.push_back(StreamEvent::ThinkingDelta { text: thinking })
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta: BlockDelta = parse(data)?;
                match delta.delta {
                    Delta::Text { text } if !text.is_empty() => {
                        out.push_back(StreamEvent::TextDelta { text })
                    }
                    Delta::InputJson { partial_json } if !partial_json.is_empty() => {
                        out.push_back(StreamEvent::ToolCallDelta {
                            index: delta.index,
                            partial_json,
                        })
                    }
                    Delta::Thinking { thinking } if !thinking.is_empty() => {
                        out.push_back(StreamEvent::ThinkingDelta { text: thinking })
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                let delta: MessageDelta = parse(data)?;
                if let Some(reason) = delta.delta.stop_reason {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = delta.usage {
                    self.merge_usage(usage, out);
                }
            }
            "message_stop" => {
                parse::<IgnoredAny>(data)?;
                self.done(out);
                return Ok(Flow::Finished);
            }
            "error" => return Err(Failure::from_error_body(None, data)),
            // `ping`, `content_block_stop` and event types added later: nothing to report, but
            // they must still be JSON.
            _ => {
                parse::<IgnoredAny>(data)?;
            }
        }
        Ok(Flow::More)
    }

    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), Failure> {
        // A stop reason means the reply was complete even if `message_stop` was lost.
        if self.stop_reason.is_some() {
            self.done(out);
            Ok(())
        } else {
            Err(Failure::new(
                ErrorClass::StreamCut,
                "stream ended before message_stop",
            ))
        }
    }
}
