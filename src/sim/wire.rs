//! What the wire protocols have in common, and the trait each implements (`anthropic.rs`,
//! `openai.rs`, `responses.rs`). Formats follow the providers' API references and the
//! recorded fixtures of the official SDKs (tests/fixtures/).

use crate::json::{self, Fields, NotAnObject};
use axum::http::StatusCode;
use bytes::Bytes;
use serde_json::Value;
use serde_json::value::RawValue;

use super::fault::FaultKind;
use super::reply::{Reply, SimRequest};
use super::rng::Rng;
use crate::provider::Protocol;

/// One piece of a streamed body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    pub kind: FrameKind,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// Framing around the content (`message_start`, the role delta, `ping`).
    Meta,
    /// One token of content: a word, or a piece of a tool call's input.
    Token,
    /// The end of the message: what `stream_cut` and friends must never reach.
    Closing,
}

impl Frame {
    pub fn new(kind: FrameKind, bytes: impl Into<Bytes>) -> Self {
        Frame {
            kind,
            bytes: bytes.into(),
        }
    }
}

/// The identifiers and settings of one response.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub request_id: String,
    /// `msg_…` or `chatcmpl-…`.
    pub message_id: String,
    /// `toolu_…` or `call_…`.
    pub tool_call_id: String,
    pub model: String,
    /// Unix seconds, for OpenAI's `created`.
    pub created: u64,
    pub include_usage: bool,
    /// The request's fields the reply object repeats ([`super::reply::SimRequest::echo`]).
    pub echo: serde_json::Map<String, serde_json::Value>,
}

/// A non-2xx answer.
#[derive(Debug, Clone)]
pub(crate) struct ErrorReply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

impl ErrorReply {
    pub fn new(status: u16, body: Value) -> Self {
        ErrorReply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// One wire protocol, as a server speaks it.
pub(crate) trait Wire: Send + Sync {
    /// The request path below the base URL (`/v1/messages`, `/v1/chat/completions`).
    fn path(&self) -> &'static str;
    /// The response header carrying the request id.
    fn request_id_header(&self) -> &'static str;
    /// A stream's content type.
    fn stream_content_type(&self) -> &'static str {
        "text/event-stream; charset=utf-8"
    }
    fn new_meta(&self, rng: &mut Rng, model: String, include_usage: bool) -> Meta;
    /// Read a request body (see [`fields`]); the error is a message for a 400.
    fn parse_request(&self, body: &[u8]) -> Result<SimRequest, String>;
    /// Whether the model says a few words before a tool call.
    fn lead_in(&self) -> bool;
    /// The whole stream, its end marker included.
    fn stream(&self, reply: &Reply, meta: &Meta) -> Vec<Frame>;
    /// The whole reply as one JSON body (`stream` false).
    fn message(&self, reply: &Reply, meta: &Meta) -> Value;
    /// The HTTP error a fault answers with, if it is that kind of fault.
    fn fault_error(&self, kind: &FaultKind, meta: &Meta) -> Option<ErrorReply>;
    /// A fault's answer that is a 200 in this protocol (Gemini's blocked prompt): its content
    /// type and body, streamed or not.
    fn fault_reply(
        &self,
        _kind: &FaultKind,
        _meta: &Meta,
        _stream: bool,
    ) -> Option<(&'static str, Bytes)> {
        None
    }
    fn invalid_request(&self, message: &str, meta: &Meta) -> ErrorReply;
    /// An in-stream error event, sent as the stream's frame number `at` (where a protocol counts
    /// its events, this is the event's number).
    fn stream_error(&self, error_type: &str, meta: &Meta, at: usize) -> Bytes;
    /// An event that is not valid JSON, sent as frame number `at`.
    fn malformed(&self, meta: &Meta, at: usize) -> Bytes;
}

pub(crate) fn wire(protocol: Protocol) -> &'static dyn Wire {
    match protocol {
        Protocol::Anthropic => &super::anthropic::Anthropic,
        Protocol::Openai => &super::openai::Openai,
        Protocol::OpenaiResponses => &super::responses::Responses,
        Protocol::Gemini => &super::gemini::Gemini,
        Protocol::Bedrock => &super::bedrock::Bedrock,
        Protocol::Azure => &super::azure::Azure,
    }
}

/// `retry-after` is whole seconds; round up so a client never retries early.
pub(crate) fn retry_after_secs(d: std::time::Duration) -> String {
    d.as_millis().div_ceil(1000).to_string()
}

/// A request body read one level deep (its messages are parsed one at a time, never as one tree:
/// see [`crate::json`]); `not_an_object` is the protocol's message for a body of another kind.
pub(crate) fn fields<'a>(body: &'a [u8], not_an_object: &str) -> Result<Fields<'a>, String> {
    Fields::parse(body).map_err(|e| match e {
        NotAnObject::Invalid(e) => format!("The request body is not valid JSON: {e}"),
        NotAnObject::Kind(_) => not_an_object.to_string(),
    })
}

/// The items of the array field `key`, still raw (`None` when it is missing or not an array).
pub(crate) fn raw_items<'a>(body: &Fields<'a>, key: &str) -> Option<Vec<&'a RawValue>> {
    body.raw(key).and_then(|raw| json::items(raw).ok())
}

/// One raw item as a value (`Null` if it cannot be read).
pub(crate) fn value(raw: &RawValue) -> Value {
    json::parse(raw).unwrap_or_default()
}

/// The text of a message's `content`: a string, or the text of its blocks / parts.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| match b {
                Value::String(s) => Some(s.as_str()),
                _ => b.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The text of the last message whose `role` is `user` (empty when there is none).
pub(crate) fn last_user_text(messages: &[&RawValue]) -> String {
    messages
        .iter()
        .map(|m| value(m))
        .rfind(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content").map(content_text))
        .unwrap_or_default()
}

/// The `model` a request names, when it is a string.
pub(crate) fn model(body: &Fields<'_>) -> Option<String> {
    body.value("model")
        .and_then(|m| m.as_str().map(String::from))
}

/// Whether the request asks for a stream (`"stream": true`).
pub(crate) fn streams(body: &Fields<'_>) -> bool {
    body.value("stream")
        .and_then(|s| s.as_bool())
        .unwrap_or(false)
}

/// The first of `keys` the body has, as a token limit; `invalid` is the message when it is not a
/// whole number (OpenAI's two APIs, where the limit is optional).
pub(crate) fn token_limit(
    body: &Fields<'_>,
    keys: &[&str],
    invalid: &str,
) -> Result<Option<u32>, String> {
    keys.iter()
        .find_map(|k| body.value(k))
        .map(|v| {
            v.as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| invalid.to_string())
        })
        .transpose()
}

/// Unix seconds now, for OpenAI's `created`.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
