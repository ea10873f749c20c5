//! Provider clients: one file per wire protocol, all yielding the same normalized stream events.
//!
//! A provider's `stream` call never fails up front: connection, header and stream failures all arrive as
//! an `Err(ProviderError)` item on the returned stream, after which the stream ends. That lets a caller
//! peek at the first item to decide whether the provider is healthy (the recipe's design).

pub mod anthropic;
pub mod aws;
pub mod azure;
pub mod bedrock;
pub mod error;
pub mod gemini;
pub mod http;
pub mod openai;
pub mod passthrough;
pub mod ratelimit;
pub mod responses;
pub mod sse;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use crate::protocol::{ErrorClass, Protocol, StopReason, Usage};
pub use error::{Phase, ProviderError};
pub use ratelimit::{Allowance, RateLimits};

/// A request in breakerbox's own terms; each protocol maps it to its wire format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The model to ask for; empty means the provider's configured default.
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Shared: every attempt of a request asks with the same conversation, and a long one is not
    /// copied per attempt (a continuation's prefill copies it once, `Arc::make_mut`).
    pub messages: Arc<Vec<Message>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef>,
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sequences that end the reply where they appear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Whether and which tool the model must call; the provider decides when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools at once (OpenAI's `parallel_tool_calls`,
    /// Anthropic's `tool_choice.disable_parallel_tool_use` inverted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Sample from the `top_k` likeliest tokens (Anthropic's; OpenAI has no equivalent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// An id of the end user, for the provider's abuse monitoring (OpenAI's `user`, Anthropic's
    /// `metadata.user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How hard a reasoning model thinks (`minimal`, `low`, `medium`, `high`, …): OpenAI's
    /// `reasoning_effort` / Responses `reasoning.effort`, carried between OpenAI's two APIs only
    /// (a setting another provider's model may refuse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// The reply's format (JSON, or JSON following a schema): OpenAI's `response_format` /
    /// Responses `text.format`, carried between OpenAI's two APIs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<OutputFormat>,
    /// The caller's own key, used instead of the provider's by the providers that speak its
    /// protocol (the gateway's `passthrough` routes). Never serialized.
    #[serde(skip)]
    pub credentials: Option<Credentials>,
    /// The model the caller named and the protocol it speaks, for targets that ask "as
    /// requested": a target of that protocol without a model of its own asks for this one (the
    /// gateway's pattern routes). Never serialized.
    #[serde(skip)]
    pub as_requested: Option<(Protocol, String)>,
    /// The caller's request as it arrived, for targets of its protocol (the gateway's
    /// passthrough). Never serialized.
    #[serde(skip)]
    pub original: Option<Arc<Original>>,
    /// The partial reply this attempt continues from (a mid-stream continuation), also the last
    /// message of `messages`; a passthrough body appends it to the caller's. Never serialized.
    #[serde(skip)]
    pub prefill: Option<String>,
}

/// A caller's request as it arrived. A target of the same protocol gets it as sent — every field
/// kept, those breakerbox does not know included — but for `model`, `stream` (and, continuing, the
/// prefill and what is left of `max_tokens`), with the protocol's own headers
/// (`anthropic-beta`, `openai-beta`, …).
#[derive(Clone, PartialEq)]
pub struct Original {
    pub protocol: Protocol,
    /// The JSON body, a JSON object.
    pub body: bytes::Bytes,
    /// The protocol's request headers to forward, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Only a target of this protocol can answer it (what it asks has no equivalent in another:
    /// a `previous_response_id`, a built-in tool): the others are passed over.
    pub bound: bool,
}

impl fmt::Debug for Original {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Original")
            .field("protocol", &self.protocol)
            .field("body_bytes", &self.body.len())
            .field("headers", &self.headers)
            .field("bound", &self.bound)
            .finish()
    }
}

/// A structured reply: any JSON object, or JSON following a schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputFormat {
    JsonObject,
    JsonSchema {
        name: String,
        schema: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
}

impl OutputFormat {
    /// From Chat Completions' `response_format` or Responses' `text.format` (the schema's fields
    /// nested in `json_schema` in the one, flat in the other); `None` for plain text.
    pub fn from_openai(format: &serde_json::Value) -> Option<OutputFormat> {
        let fields = format.get("json_schema").unwrap_or(format);
        match format.get("type")?.as_str()? {
            "json_object" => Some(OutputFormat::JsonObject),
            "json_schema" => Some(OutputFormat::JsonSchema {
                name: fields.get("name")?.as_str()?.to_string(),
                schema: fields
                    .get("schema")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({})),
                strict: fields.get("strict").and_then(serde_json::Value::as_bool),
                description: fields
                    .get("description")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string),
            }),
            _ => None,
        }
    }

    /// As Chat Completions' `response_format` (`nested`) or Responses' `text.format`.
    pub fn to_openai(&self, nested: bool) -> serde_json::Value {
        match self {
            OutputFormat::JsonObject => serde_json::json!({"type": "json_object"}),
            OutputFormat::JsonSchema {
                name,
                schema,
                strict,
                description,
            } => {
                let mut fields = serde_json::json!({"name": name, "schema": schema});
                if let Some(strict) = strict {
                    fields["strict"] = serde_json::json!(strict);
                }
                if let Some(description) = description {
                    fields["description"] = serde_json::json!(description);
                }
                if nested {
                    serde_json::json!({"type": "json_schema", "json_schema": fields})
                } else {
                    fields["type"] = serde_json::json!("json_schema");
                    fields
                }
            }
        }
    }
}

/// Whether the model may, must or must not call a tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the default).
    Auto,
    /// No tool call.
    None,
    /// Some tool call (OpenAI `required`, Anthropic `any`).
    Any,
    /// This tool.
    Tool { name: String },
}

/// A caller's API key for one protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub protocol: Protocol,
    pub key: ApiKey,
}

impl Request {
    /// The key to send to a provider speaking `protocol`: the caller's own when it brought one
    /// for that protocol, else `configured`.
    pub fn key_for<'a>(&'a self, protocol: Protocol, configured: &'a ApiKey) -> &'a ApiKey {
        match &self.credentials {
            Some(c) if c.protocol.same_models(protocol) && !c.key.is_empty() => &c.key,
            _ => configured,
        }
    }
}

impl Request {
    /// The model to ask for: the request's own, else `configured` (the provider's).
    pub fn model_or<'a>(&'a self, configured: &'a str) -> &'a str {
        if self.model.is_empty() {
            configured
        } else {
            &self.model
        }
    }

    /// The system prompt with the conversation's own system messages joined to it, in order, for
    /// a protocol with one system prompt only.
    pub fn joined_system(&self) -> Option<String> {
        let inline = self
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .flat_map(|m| &m.content)
            .filter_map(|c| match c {
                Content::Text { text } => Some(text.as_str()),
                _ => None,
            });
        let parts: Vec<&str> = self.system.as_deref().into_iter().chain(inline).collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    /// A one-turn text request.
    pub fn prompt(text: impl Into<String>) -> Self {
        Request {
            messages: Arc::new(vec![Message::user(text)]),
            max_tokens: 1024,
            ..Request::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    /// An instruction inside the conversation, after it began (Claude Code's system messages,
    /// a Chat or Responses client's later system and developer messages): kept in place where
    /// the target's protocol takes one (Chat Completions, Responses), joined to the system prompt
    /// where it does not (Anthropic).
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Content>,
}

impl Message {
    pub fn user(text: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: vec![Content::Text { text: text.into() }],
        }
    }

    pub fn assistant(text: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: vec![Content::Text { text: text.into() }],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: serde_json::Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
    /// An image: `url` is `https://…`, or the image itself as `data:<media type>;base64,<data>`
    /// (OpenAI's form; Anthropic's `base64` source maps to it and back).
    Image {
        url: String,
    },
    /// A document (a PDF): `url` is the file itself as `data:<media type>;base64,<data>`, or where
    /// it is (`https://…`). Anthropic's `document` block, Chat Completions' `file` part,
    /// Responses' `input_file`.
    File {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
}

/// A `data:<media type>;base64,<data>` URL split into its media type and data.
pub fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (media_type, data) = rest.split_once(";base64,")?;
    Some((media_type, data))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the tool's input.
    pub input_schema: serde_json::Value,
}

/// One normalized stream event. Errors travel as the `Err` side of the stream's items.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    MessageStart {
        id: String,
        model: String,
    },
    TextDelta {
        text: String,
    },
    /// Reasoning text, kept apart from the reply.
    ThinkingDelta {
        text: String,
    },
    /// The model declining, in words (OpenAI's `delta.refusal`): reply text that an OpenAI
    /// client reads from `refusal` and an Anthropic client as text, with stop reason `refusal`.
    RefusalDelta {
        text: String,
    },
    /// A tool call begins. `index` identifies it among this message's tool calls.
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    /// A piece of a tool call's JSON arguments; the pieces concatenate to valid JSON.
    ToolCallDelta {
        index: u32,
        partial_json: String,
    },
    /// Cumulative usage so far; the last one is final.
    Usage(Usage),
    /// Everything received so far for this reply is withdrawn: the request restarts elsewhere and
    /// a new `MessageStart` follows. Only the failover engine emits it.
    Rewind {
        discarded_chars: u64,
    },
    /// The message is complete. Only a stream that yields `Done` was a success.
    Done {
        stop_reason: StopReason,
        raw_stop_reason: Option<String>,
    },
    /// One upstream SSE event as it arrived (secrets removed), ahead of the normalized events it
    /// means; only for a request whose `original` is of the provider's protocol (passthrough). A
    /// caller of that protocol forwards these and skips the normalized events they cover.
    Wire {
        event: Option<String>,
        data: String,
    },
    /// The reply goes on from another attempt, which continues the text so far (a prefill); its
    /// events are normalized only. Only the failover engine emits it.
    Spliced,
    /// What the response's headers say is left of the provider's rate limits. The transport
    /// yields it first, before anything else the response means (an error included), and only
    /// when the headers state some; it is not a reply event: the engine keeps it and never
    /// passes it on.
    RateLimits(RateLimits),
    /// The continuing attempt of a spliced reply has started (its own `MessageStart`, which is not
    /// a new message): `model` writes the reply from here on. Only the failover engine emits it.
    ContinuedBy {
        model: String,
    },
}

pub type ProviderStream = BoxStream<'static, Result<StreamEvent, ProviderError>>;

/// A source of streamed model replies.
pub trait Provider: Send + Sync {
    /// The configured name (`anthropic`, `openai`, `groq`, …).
    fn name(&self) -> &str;
    /// The model used when a request does not name one.
    fn default_model(&self) -> &str;
    /// The wire protocol it speaks, when it speaks one (test doubles need not say).
    fn protocol(&self) -> Option<Protocol> {
        None
    }
    /// The provider's own count of a request's input tokens, where its protocol has one
    /// (Anthropic's `POST /v1/messages/count_tokens`, `body` a body for it): `None` when it has not.
    fn count_tokens(
        &self,
        _body: String,
    ) -> Option<futures::future::BoxFuture<'static, Result<u64, String>>> {
        None
    }
    /// Start a streamed reply. Failures of any phase arrive as an `Err` item, after which the stream
    /// ends; a stream that ends without `Done` was cut (the clients report that as an error too).
    /// Dropping the stream aborts the HTTP request.
    fn stream(&self, request: Request) -> ProviderStream;
}

/// An API key. Its `Debug` and `Display` never show the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    /// The secret itself, for a request header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("ApiKey(<none>)")
        } else {
            f.write_str("ApiKey(<redacted>)")
        }
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Per-attempt time limits. `first_event` counts from sending the request, so it covers waiting for
/// the response headers too; `idle` is the longest silence allowed between two events (a stall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub headers: Duration,
    pub first_event: Duration,
    pub idle: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            headers: Duration::from_secs(10),
            first_event: Duration::from_secs(10),
            idle: Duration::from_secs(10),
            total: Duration::from_secs(300),
        }
    }
}

/// Largest single SSE event a client accepts before failing the stream as `malformed`.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Everything a protocol client needs to reach one provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub protocol: Protocol,
    /// For Anthropic, without `/v1` (`https://api.anthropic.com`); for OpenAI's two APIs (Chat
    /// Completions and Responses), with it (`https://api.openai.com/v1`), as the official clients
    /// and their `*_BASE_URL` variables expect; for Bedrock, the endpoint (boto3's
    /// `endpoint_url`, `https://bedrock-runtime.us-east-1.amazonaws.com`).
    pub base_url: String,
    pub api_key: ApiKey,
    pub model: String,
    pub timeouts: Timeouts,
    pub max_event_bytes: usize,
    /// Every secret of this process (all providers' keys, the gateway's token, credentials in
    /// base URLs), removed from whatever this provider sends back.
    pub secrets: crate::secret::Secrets,
    /// Bedrock's region and SigV4 credentials (`None` for the other protocols; a Bedrock
    /// provider with a bearer token in `api_key` signs nothing).
    pub aws: Option<aws::AwsAuth>,
    /// An Azure provider's deployment, API version and kind of credential (unused by the others).
    pub azure: azure::Settings,
}

impl ProviderConfig {
    pub fn new(name: impl Into<String>, protocol: Protocol, base_url: impl Into<String>) -> Self {
        ProviderConfig {
            name: name.into(),
            protocol,
            base_url: base_url.into(),
            api_key: ApiKey::default(),
            model: String::new(),
            timeouts: Timeouts::default(),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            secrets: crate::secret::Secrets::default(),
            aws: None,
            azure: azure::Settings::default(),
        }
    }
}

/// Build the client for a configured provider.
pub fn build(config: ProviderConfig) -> Result<std::sync::Arc<dyn Provider>, ProviderError> {
    let http = http::client(&config.timeouts)?;
    Ok(build_with(config, http))
}

/// Build the client for a configured provider on an HTTP client made by [`http::client`] with the
/// same timeouts (providers can share one: a connection pool and TLS set-up per process, not per
/// provider).
pub fn build_with(config: ProviderConfig, http: reqwest::Client) -> std::sync::Arc<dyn Provider> {
    match config.protocol {
        Protocol::Anthropic => std::sync::Arc::new(anthropic::AnthropicClient::new(config, http)),
        Protocol::Openai => std::sync::Arc::new(openai::OpenAiClient::new(config, http)),
        Protocol::OpenaiResponses => {
            std::sync::Arc::new(responses::ResponsesClient::new(config, http))
        }
        Protocol::Gemini => std::sync::Arc::new(gemini::GeminiClient::new(config, http)),
        Protocol::Bedrock => std::sync::Arc::new(bedrock::BedrockClient::new(config, http)),
        Protocol::Azure => std::sync::Arc::new(azure::AzureClient::new(config, http)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_shows_in_debug_or_display() {
        let key = ApiKey::new("sk-ant-secret-123");
        let cfg = ProviderConfig {
            api_key: key.clone(),
            ..ProviderConfig::new("anthropic", Protocol::Anthropic, "http://x")
        };
        for text in [format!("{key:?}"), format!("{key}"), format!("{cfg:?}")] {
            assert!(!text.contains("sk-ant-secret-123"), "{text}");
        }
        assert_eq!(key.expose(), "sk-ant-secret-123");
    }
}
