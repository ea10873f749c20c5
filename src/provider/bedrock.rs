//! AWS Bedrock Runtime's ConverseStream (`POST {base_url}/model/{modelId}/converse-stream`),
//! SigV4-signed (see [`super::aws`]) or with a Bedrock API key as a bearer token
//! (`AWS_BEARER_TOKEN_BEDROCK`). The stream is AWS's binary event stream, read by
//! [`crate::protocol::bedrock::Decoder`] into the same events the SSE protocols give the
//! transport ([`frames`]).
//!
//! Bedrock sends no `retry-after`: a throttled attempt waits the engine's backoff.

use super::http::{self, Failure, Flow, Framing, SseParser};
use super::sse::{SseError, SseEvent, SseStreamError};
use super::{
    ApiKey, Content, ErrorClass, Protocol, Provider, ProviderConfig, ProviderStream, Request, Role,
    StopReason, StreamEvent, ToolChoice,
};
use crate::json::{self, Fields};
use crate::protocol::bedrock::{self as wire, Decoder, Frame};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::collections::VecDeque;

/// The `:event-type` an exception message is read as: this prefix and its `:exception-type`
/// (event types never hold a `:`).
pub const EXCEPTION_EVENT: &str = "exception:";

pub struct BedrockClient {
    config: ProviderConfig,
    http: reqwest::Client,
}

impl BedrockClient {
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        BedrockClient { config, http }
    }

    /// The Converse body for `request`: the caller's own when it came in Converse (every field
    /// kept; a continuation's prefill appended as an assistant turn), else built from it.
    pub fn request_body(&self, request: &Request) -> String {
        if let Some(body) = passthrough_body(request) {
            return body;
        }
        let mut body = json!({});
        if let Some(system) = request.joined_system() {
            body["system"] = json!([{ "text": system }]);
        }
        let mut inference = json!({ "maxTokens": request.max_tokens });
        if let Some(t) = request.temperature {
            inference["temperature"] = json!(t);
        }
        if let Some(p) = request.top_p {
            inference["topP"] = json!(p);
        }
        if !request.stop.is_empty() {
            inference["stopSequences"] = json!(request.stop);
        }
        body["inferenceConfig"] = inference;
        if !request.tools.is_empty() {
            body["toolConfig"] = tool_config(request);
        }
        // Claude's own sampling setting, which Converse carries in the model's own fields.
        if let Some(k) = request.top_k {
            body["additionalModelRequestFields"] = json!({ "top_k": k });
        }
        let messages = request.messages.iter().filter_map(|m| {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::System => return None,
            };
            let content: Vec<Value> = m.content.iter().filter_map(content_block).collect();
            Some(json!({ "role": role, "content": content }))
        });
        json::object_with_array(&body, "messages", messages)
    }

    /// The headers for a POST of `body` to `url`: a bearer token when there is one, else SigV4.
    fn headers(&self, key: &ApiKey, url: &str, body: &[u8]) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static(wire::EVENT_STREAM_CONTENT_TYPE),
        );
        if !key.is_empty() {
            let bearer = http::secret_header(&format!("Bearer {}", key.expose()))
                .map_err(|_| "the Bedrock API key is not a valid header value".to_string())?;
            headers.insert(reqwest::header::AUTHORIZATION, bearer);
            return Ok(headers);
        }
        let Some(auth) = &self.config.aws else {
            return Ok(headers);
        };
        let signed_over = [
            ("content-type", "application/json"),
            ("accept", wire::EVENT_STREAM_CONTENT_TYPE),
        ];
        let signed = auth.sign(url, &signed_over, body, std::time::SystemTime::now())?;
        for (name, value) in signed {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = http::secret_header(&value)
                .map_err(|_| "a signing header is not a valid header value".to_string())?;
            headers.insert(name, value);
        }
        Ok(headers)
    }
}

/// A caller's Converse body as sent, for a same-protocol target; a continuation appends its
/// prefill as the last assistant turn and asks for what is left of the output limit.
fn passthrough_body(request: &Request) -> Option<String> {
    let original = request
        .original
        .as_deref()
        .filter(|o| o.protocol == Protocol::Bedrock)?;
    let Some(prefill) = &request.prefill else {
        return Some(String::from_utf8_lossy(&original.body).into_owned());
    };
    let fields = Fields::parse(&original.body).ok()?;
    let turn = json!({"role": "assistant", "content": [{"text": prefill}]});
    let mut inference = match fields.value("inferenceConfig") {
        Some(Value::Object(config)) => config,
        _ => serde_json::Map::new(),
    };
    inference.insert("maxTokens".into(), json!(request.max_tokens));
    let set = [
        (
            "messages",
            super::passthrough::appended(&fields, "messages", &turn)?,
        ),
        ("inferenceConfig", Value::Object(inference).to_string()),
    ];
    Some(json::with_fields(&fields, &set))
}

fn tool_config(request: &Request) -> Value {
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| {
            let mut spec = json!({"name": t.name, "inputSchema": {"json": t.input_schema}});
            if !t.description.is_empty() {
                spec["description"] = json!(t.description);
            }
            json!({ "toolSpec": spec })
        })
        .collect();
    let mut config = json!({ "tools": tools });
    // Converse has no "none": the tools stay offered (a conversation holding tool calls must
    // declare them) and the model decides.
    match &request.tool_choice {
        Some(ToolChoice::Auto) => config["toolChoice"] = json!({"auto": {}}),
        Some(ToolChoice::Any) => config["toolChoice"] = json!({"any": {}}),
        Some(ToolChoice::Tool { name }) => config["toolChoice"] = json!({"tool": {"name": name}}),
        Some(ToolChoice::None) | None => {}
    }
    config
}

/// `image/png` → `png`: Converse names formats, not media types.
fn format_of(media_type: &str) -> &str {
    let sub = media_type.rsplit('/').next().unwrap_or(media_type);
    match sub {
        "jpg" => "jpeg",
        other => other,
    }
}

/// A content block in Converse's shape; `None` for what Converse cannot take inline (an image or
/// document by URL: Converse reads only bytes or S3 locations) and for empty text, which it
/// rejects.
fn content_block(content: &Content) -> Option<Value> {
    Some(match content {
        Content::Text { text } if text.is_empty() => return None,
        Content::Text { text } => json!({ "text": text }),
        Content::Image { url } => {
            let (media_type, data) = super::data_url(url)?;
            json!({"image": {"format": format_of(media_type), "source": {"bytes": data}}})
        }
        Content::File { url, filename } => {
            let (media_type, data) = super::data_url(url)?;
            // A document's name may hold only letters, digits, spaces, hyphens, brackets.
            let name: String = filename
                .as_deref()
                .unwrap_or("document")
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { '-' })
                .collect();
            json!({"document": {"format": format_of(media_type), "name": name,
                                "source": {"bytes": data}}})
        }
        Content::ToolUse { id, name, input } => {
            json!({"toolUse": {"toolUseId": id, "name": name, "input": input}})
        }
        Content::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => {
            let mut result = json!({"toolUseId": tool_use_id, "content": [{"text": content}]});
            if *is_error {
                result["status"] = json!("error");
            }
            json!({ "toolResult": result })
        }
    })
}

impl Provider for BedrockClient {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn default_model(&self) -> &str {
        &self.config.model
    }
    fn protocol(&self) -> Option<Protocol> {
        Some(Protocol::Bedrock)
    }
    fn stream(&self, request: Request) -> ProviderStream {
        let model = request.model_or(&self.config.model).to_string();
        let body = self.request_body(&request);
        let path = wire::path(&model, true);
        let url = http::endpoint(&self.config.base_url, &path);
        // Signed here, over the very URL and body sent (the transport picks the same key).
        let key = request.key_for(Protocol::Bedrock, &self.config.api_key);
        let headers = match self.headers(key, &url, body.as_bytes()) {
            Ok(headers) => headers,
            Err(message) => {
                let err = super::ProviderError::new(
                    self.config.name.clone(),
                    ErrorClass::Auth,
                    super::Phase::Connect,
                    message,
                );
                return futures::stream::iter([Err(err)]).boxed();
            }
        };
        // The signature joins the secrets this attempt keeps out of what comes back (an upstream
        // that echoes the request's headers must not show it).
        let signature = headers
            .get(reqwest::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("Signature=").nth(1))
            .map(str::to_string);
        let mut config = self.config.clone();
        if let Some(signature) = signature {
            config.secrets = config.secrets.with([signature]);
        }
        http::send(
            &self.http,
            &config,
            Protocol::Bedrock,
            &request,
            |_| Ok(headers),
            &path,
            body,
            BedrockParser::new(model),
        )
    }
}

/// A body of event-stream messages as the events the transport's parsers take: an event message
/// is an event named by its `:event-type` with its JSON payload; an exception message is named
/// [`EXCEPTION_EVENT`] + its `:exception-type`. A message that cannot be read ends the stream
/// with a decode error (after one, lengths cannot be trusted).
pub fn frames(
    body: BoxStream<'static, Result<Bytes, reqwest::Error>>,
    max_message_bytes: usize,
) -> BoxStream<'static, Result<SseEvent, SseStreamError<reqwest::Error>>> {
    struct State {
        body: BoxStream<'static, Result<Bytes, reqwest::Error>>,
        decoder: Decoder,
        ended: bool,
    }
    let state = State {
        body,
        decoder: Decoder::new(max_message_bytes),
        ended: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if s.ended {
                return None;
            }
            match s.decoder.next_frame() {
                Ok(Some(frame)) => return Some((Ok(event_of(frame)), s)),
                Ok(None) => {}
                Err(e) => {
                    s.ended = true;
                    let err = SseStreamError::Decode(SseError::EventStream(e.to_string()));
                    return Some((Err(err), s));
                }
            }
            match s.body.next().await {
                Some(Ok(chunk)) => s.decoder.feed(&chunk),
                Some(Err(e)) => {
                    s.ended = true;
                    return Some((Err(SseStreamError::Body(e)), s));
                }
                // A message cut short is a stream that ended: the parser says whether the reply
                // was complete.
                None => return None,
            }
        }
    })
    .boxed()
}

fn event_of(frame: Frame) -> SseEvent {
    match frame {
        Frame::Event {
            event_type,
            payload,
        } => SseEvent {
            event: Some(event_type),
            data: payload,
        },
        Frame::Exception {
            exception_type,
            payload,
        } => SseEvent {
            event: Some(format!("{EXCEPTION_EVENT}{exception_type}")),
            data: payload,
        },
        Frame::Error { code, message } => SseEvent {
            event: Some(format!("{EXCEPTION_EVENT}{code}")),
            data: json!({ "message": message }).to_string(),
        },
    }
}

/// ConverseStream's events → normalized events.
#[derive(Debug)]
pub struct BedrockParser {
    model: String,
    stop_reason: Option<String>,
    started: bool,
}

impl BedrockParser {
    /// `model`: the model id asked for (Converse's events never name it).
    pub fn new(model: String) -> Self {
        BedrockParser {
            model,
            stop_reason: None,
            started: false,
        }
    }

    fn done(&self, out: &mut VecDeque<StreamEvent>) {
        out.push_back(StreamEvent::Done {
            stop_reason: self
                .stop_reason
                .as_deref()
                .map_or(StopReason::Other, wire::stop_reason),
            raw_stop_reason: self.stop_reason.clone(),
        });
    }

    fn start(&mut self, out: &mut VecDeque<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push_back(StreamEvent::MessageStart {
                id: String::new(),
                model: self.model.clone(),
            });
        }
    }
}

fn parse(data: &str) -> Result<Value, Failure> {
    serde_json::from_str::<Value>(data)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| Failure::malformed("bad Bedrock event", "not a JSON object"))
}

fn index_of(event: &Value) -> u32 {
    event
        .get("contentBlockIndex")
        .and_then(Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or(0)
}

/// A `contentBlockDelta`'s normalized event, if it means one.
fn delta_event(event: &Value) -> Option<StreamEvent> {
    let delta = event.get("delta")?;
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|t| !t.is_empty())
    }
    if let Some(text) = text(delta.get("text")) {
        return Some(StreamEvent::TextDelta { text: text.into() });
    }
    if let Some(input) = text(delta.pointer("/toolUse/input")) {
        return Some(StreamEvent::ToolCallDelta {
            index: index_of(event),
            partial_json: input.into(),
        });
    }
    // The reasoning's signature and redacted content have no normalized event.
    text(delta.pointer("/reasoningContent/text"))
        .map(|text| StreamEvent::ThinkingDelta { text: text.into() })
}

impl SseParser for BedrockParser {
    fn framing(&self) -> Framing {
        Framing::EventStream
    }

    fn event(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<Flow, Failure> {
        let kind = event.event.unwrap_or_default();
        if let Some(exception) = kind.strip_prefix(EXCEPTION_EVENT) {
            let mut failure = Failure::from_error_body(None, &event.data);
            failure.class = wire::error_class(exception).unwrap_or(ErrorClass::ServerError);
            failure.error_type = Some(exception.to_string());
            return Err(failure);
        }
        let data = parse(&event.data)?;
        match kind.as_str() {
            "messageStart" => self.start(out),
            "contentBlockStart" => {
                self.start(out);
                if let Some(tool) = data.pointer("/start/toolUse") {
                    let field = |k: &str| {
                        tool.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    out.push_back(StreamEvent::ToolCallStart {
                        index: index_of(&data),
                        id: field("toolUseId"),
                        name: field("name"),
                    });
                }
            }
            "contentBlockDelta" => {
                self.start(out);
                out.extend(delta_event(&data));
            }
            "messageStop" => {
                let reason = data.get("stopReason").and_then(Value::as_str);
                self.stop_reason = Some(reason.unwrap_or("end_turn").to_string());
            }
            "metadata" => {
                if let Some(usage) = data.get("usage") {
                    out.push_back(StreamEvent::Usage(wire::usage_from(usage)));
                }
                if self.stop_reason.is_some() {
                    self.done(out);
                    return Ok(Flow::Finished);
                }
            }
            // `contentBlockStop` and event types added later: nothing to report.
            _ => {}
        }
        Ok(Flow::More)
    }

    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), Failure> {
        // `messageStop` means the reply was complete even if `metadata` was lost.
        if self.stop_reason.is_some() {
            self.done(out);
            Ok(())
        } else {
            Err(Failure::new(
                ErrorClass::StreamCut,
                "stream ended before messageStop",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::provider::{Message, ToolDef};
    use std::sync::Arc;

    fn client() -> BedrockClient {
        let mut config = ProviderConfig::new("bedrock", Protocol::Bedrock, "http://x");
        config.model = "anthropic.claude-test-v1:0".into();
        let http = crate::provider::http::client(&config.timeouts).unwrap();
        BedrockClient::new(config, http)
    }

    #[test]
    fn a_request_in_converse_shapes() {
        let request = Request {
            system: Some("be brief".into()),
            messages: Arc::new(vec![
                Message::user("weather?"),
                Message {
                    role: Role::Assistant,
                    content: vec![Content::ToolUse {
                        id: "t1".into(),
                        name: "get_weather".into(),
                        input: json!({"city": "Paris"}),
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        Content::ToolResult {
                            tool_use_id: "t1".into(),
                            content: "sunny".into(),
                            is_error: false,
                        },
                        Content::Image {
                            url: "data:image/png;base64,AAAA".into(),
                        },
                        Content::Image {
                            url: "https://example.com/x.png".into(),
                        },
                    ],
                },
            ]),
            tools: vec![ToolDef {
                name: "get_weather".into(),
                description: "Weather".into(),
                input_schema: json!({"type": "object"}),
            }],
            tool_choice: Some(ToolChoice::Any),
            max_tokens: 100,
            temperature: Some(0.5),
            stop: vec!["END".into()],
            top_k: Some(5),
            ..Request::default()
        };
        let body: Value = serde_json::from_str(&client().request_body(&request)).unwrap();
        assert_eq!(
            body,
            json!({
                "system": [{"text": "be brief"}],
                "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "stopSequences": ["END"]},
                "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                                "inputSchema": {"json": {"type": "object"}}}}],
                               "toolChoice": {"any": {}}},
                "additionalModelRequestFields": {"top_k": 5},
                "messages": [
                    {"role": "user", "content": [{"text": "weather?"}]},
                    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}}]},
                    {"role": "user", "content": [
                        {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}},
                        {"image": {"format": "png", "source": {"bytes": "AAAA"}}},
                    ]},
                ],
            })
        );
    }

    fn run(frames: Vec<(&str, Value)>) -> (Vec<StreamEvent>, Result<Flow, Failure>) {
        let mut parser = BedrockParser::new("m".into());
        let mut out = VecDeque::new();
        let mut flow = Ok(Flow::More);
        for (kind, data) in frames {
            flow = parser.event(
                SseEvent {
                    event: Some(kind.into()),
                    data: data.to_string(),
                },
                &mut out,
            );
            if flow.is_err() {
                break;
            }
        }
        (out.into(), flow)
    }

    #[test]
    fn a_stream_with_reasoning_text_and_a_tool_call() {
        let (events, flow) = run(vec![
            ("messageStart", json!({"role": "assistant"})),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"text": "Hi"}}),
            ),
            (
                "contentBlockStart",
                json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "f"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
            ),
            ("messageStop", json!({"stopReason": "tool_use"})),
            (
                "metadata",
                json!({"usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 14, "cacheReadInputTokens": 2}, "metrics": {"latencyMs": 10}}),
            ),
        ]);
        assert_eq!(flow, Ok(Flow::Finished));
        assert_eq!(
            events,
            vec![
                StreamEvent::MessageStart {
                    id: String::new(),
                    model: "m".into()
                },
                StreamEvent::ThinkingDelta { text: "hmm".into() },
                StreamEvent::TextDelta { text: "Hi".into() },
                StreamEvent::ToolCallStart {
                    index: 2,
                    id: "tooluse_1".into(),
                    name: "f".into()
                },
                StreamEvent::ToolCallDelta {
                    index: 2,
                    partial_json: "{\"a\":1}".into()
                },
                StreamEvent::Usage(crate::provider::Usage {
                    input_tokens: 5,
                    output_tokens: 7,
                    cache_read_tokens: 2,
                    ..Default::default()
                }),
                StreamEvent::Done {
                    stop_reason: StopReason::ToolUse,
                    raw_stop_reason: Some("tool_use".into())
                },
            ]
        );
    }

    #[test]
    fn an_exception_event_is_classified_by_its_name() {
        let (_, flow) = run(vec![
            ("messageStart", json!({"role": "assistant"})),
            (
                "exception:throttlingException",
                json!({"message": "Too many tokens"}),
            ),
        ]);
        let failure = flow.unwrap_err();
        assert_eq!(failure.class, ErrorClass::RateLimited);
        assert_eq!(failure.message, "Too many tokens");
        let (_, flow) = run(vec![(
            "exception:modelStreamErrorException",
            json!({"message": "boom", "originalStatusCode": 500}),
        )]);
        assert_eq!(flow.unwrap_err().class, ErrorClass::ServerError);
    }
}
