//! The plain vocabulary every protocol's wire facts are written in: the classes of failure, why a
//! model stopped, token usage and the protocols themselves. Values only; what a provider's HTTP
//! status or error body means (classification) is `provider::error`'s.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The class of a failure (docs/engine.md, "Classification"). Whether a class is retried or failed over is policy, decided
/// by the engine, not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    RateLimited,
    Overloaded,
    ServerError,
    Timeout,
    Connect,
    Stalled,
    StreamCut,
    Malformed,
    Auth,
    Permission,
    BadRequest,
    ContextLength,
    ContentFilter,
    NotFound,
    TooLarge,
    Quota,
    /// 409: a conflicting concurrent request; the official clients retry it.
    Conflict,
    /// A 3xx: provider calls never follow redirects (the request carries the key), so a provider
    /// that redirects is misconfigured (a wrong base URL, http for https).
    Redirect,
    /// Every target was skipped or exhausted (used by the engine).
    Unavailable,
    /// The caller cancelled.
    Cancelled,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 20] = [
        ErrorClass::RateLimited,
        ErrorClass::Overloaded,
        ErrorClass::ServerError,
        ErrorClass::Timeout,
        ErrorClass::Connect,
        ErrorClass::Stalled,
        ErrorClass::StreamCut,
        ErrorClass::Malformed,
        ErrorClass::Auth,
        ErrorClass::Permission,
        ErrorClass::BadRequest,
        ErrorClass::ContextLength,
        ErrorClass::ContentFilter,
        ErrorClass::NotFound,
        ErrorClass::TooLarge,
        ErrorClass::Quota,
        ErrorClass::Conflict,
        ErrorClass::Redirect,
        ErrorClass::Unavailable,
        ErrorClass::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::ServerError => "server_error",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::Stalled => "stalled",
            ErrorClass::StreamCut => "stream_cut",
            ErrorClass::Malformed => "malformed",
            ErrorClass::Auth => "auth",
            ErrorClass::Permission => "permission",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::ContextLength => "context_length",
            ErrorClass::ContentFilter => "content_filter",
            ErrorClass::NotFound => "not_found",
            ErrorClass::TooLarge => "too_large",
            ErrorClass::Quota => "quota",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Redirect => "redirect",
            ErrorClass::Unavailable => "unavailable",
            ErrorClass::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown error class `{s}`"))
    }
}

/// Token usage, normalized to Anthropic's convention: `input_tokens` excludes cached tokens, so
/// total input = `input_tokens + cache_read_tokens + cache_write_tokens`. (OpenAI counts cached tokens
/// inside `prompt_tokens`; its client subtracts them.) Values are cumulative for the attempt so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// The part of `output_tokens` spent reasoning, when the provider says (OpenAI's
    /// `completion_tokens_details.reasoning_tokens`).
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn total_input(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    /// Both counts together (two attempts of one spliced reply).
    pub fn plus(&self, other: &Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            cache_read_tokens: self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens: self.reasoning_tokens + other.reasoning_tokens,
        }
    }
}

/// Why the model stopped, normalized across protocols. The raw value travels alongside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Natural end (`end_turn`, `stop`).
    EndTurn,
    /// Hit the output limit (`max_tokens`, `length`).
    MaxTokens,
    StopSequence,
    /// The model wants a tool result (`tool_use`, `tool_calls`).
    ToolUse,
    /// The provider filtered or the model refused (`refusal`, `content_filter`).
    ContentFilter,
    /// Anthropic's `pause_turn`.
    PauseTurn,
    /// Anthropic's `model_context_window_exceeded`.
    ContextWindowExceeded,
    /// Anything not listed above; see the raw value.
    Other,
}

impl StopReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopSequence => "stop_sequence",
            StopReason::ToolUse => "tool_use",
            StopReason::ContentFilter => "content_filter",
            StopReason::PauseTurn => "pause_turn",
            StopReason::ContextWindowExceeded => "context_window_exceeded",
            StopReason::Other => "other",
        }
    }
}

/// Wire protocols breakerbox speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
    /// OpenAI Chat Completions (`POST /v1/chat/completions`), and the servers compatible with it.
    Openai,
    /// The OpenAI Responses API (`POST /v1/responses`).
    OpenaiResponses,
    /// Google Gemini (`POST /v1beta/models/{model}:streamGenerateContent`), and Vertex AI's
    /// flavour of it.
    Gemini,
    /// AWS Bedrock Runtime's Converse API (`POST /model/{modelId}/converse-stream`).
    Bedrock,
    /// Azure OpenAI: Chat Completions at a deployment's path or the v1 path, with Azure's key
    /// header, errors, retry headers and content-filter results (`protocol::azure`).
    Azure,
}

impl Protocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Anthropic => "anthropic",
            Protocol::Openai => "openai",
            Protocol::OpenaiResponses => "openai_responses",
            Protocol::Gemini => "gemini",
            Protocol::Bedrock => "bedrock",
            Protocol::Azure => "azure",
        }
    }

    /// The protocols whose keys and error shapes are OpenAI's (Chat Completions, Responses).
    pub fn is_openai(&self) -> bool {
        matches!(self, Protocol::Openai | Protocol::OpenaiResponses)
    }

    /// Whether the two are one provider's protocols, whose model names (and keys) are the same:
    /// OpenAI's two APIs.
    pub fn same_models(&self, other: Protocol) -> bool {
        *self == other || (self.is_openai() && other.is_openai())
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "anthropic" => Ok(Protocol::Anthropic),
            "openai" => Ok(Protocol::Openai),
            "openai_responses" => Ok(Protocol::OpenaiResponses),
            "gemini" => Ok(Protocol::Gemini),
            "bedrock" => Ok(Protocol::Bedrock),
            "azure" => Ok(Protocol::Azure),
            other => Err(format!(
                "unknown protocol `{other}` (expected `anthropic`, `openai`, `openai_responses`, \
                 `gemini`, `bedrock` or `azure`)"
            )),
        }
    }
}

impl Protocol {
    /// The request headers of this protocol that a passthrough forwards: what the client says
    /// about the API it speaks (version, betas), never credentials or hop-by-hop headers.
    pub fn forwarded_headers(&self) -> &'static [&'static str] {
        match self {
            Protocol::Anthropic => super::anthropic::FORWARDED_HEADERS,
            Protocol::Openai | Protocol::OpenaiResponses => super::chat::FORWARDED_HEADERS,
            Protocol::Gemini => super::gemini::FORWARDED_HEADERS,
            // A Converse client says nothing in its headers but its credentials.
            Protocol::Bedrock => &[],
            Protocol::Azure => super::azure::FORWARDED_HEADERS,
        }
    }
}

/// What a provider's rate limit counts (its `…-requests-…`, `…-tokens-…` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitDimension {
    Requests,
    /// Input and output tokens together (OpenAI's only token limit; Anthropic's combined one).
    Tokens,
    /// Anthropic's input-token limit.
    InputTokens,
    /// Anthropic's output-token limit.
    OutputTokens,
}

impl LimitDimension {
    pub const ALL: [LimitDimension; 4] = [
        LimitDimension::Requests,
        LimitDimension::Tokens,
        LimitDimension::InputTokens,
        LimitDimension::OutputTokens,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            LimitDimension::Requests => "requests",
            LimitDimension::Tokens => "tokens",
            LimitDimension::InputTokens => "input_tokens",
            LimitDimension::OutputTokens => "output_tokens",
        }
    }

    /// As people read it in a line: `requests`, `input tokens`.
    pub fn words(&self) -> &'static str {
        match self {
            LimitDimension::Requests => "requests",
            LimitDimension::Tokens => "tokens",
            LimitDimension::InputTokens => "input tokens",
            LimitDimension::OutputTokens => "output tokens",
        }
    }
}

impl fmt::Display for LimitDimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
