//! AWS Bedrock Runtime, Converse and ConverseStream (`POST /model/{modelId}/converse` and
//! `/converse-stream`): its names for breakerbox's own things, and its binary event-stream
//! framing (`application/vnd.amazon.eventstream`), written once for the client, the simulator and
//! the gateway. Ground truth: botocore's `bedrock-runtime` service model (`service-2.json`).
//!
//! The framing is AWS's own crate's (`aws-smithy-eventstream`: prelude, headers, both CRC32s);
//! this module only says which headers a Converse stream's messages carry.

use super::{ErrorClass, StopReason, Usage};
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::{Buf, Bytes, BytesMut};
use serde_json::{Value, json};

/// The model a simulated Bedrock provider names when a request names none: Claude on Bedrock
/// (a cross-region inference profile id), priced in assets/pricing.toml.
pub const DEFAULT_MODEL: &str = "us.anthropic.claude-sonnet-4-6";

/// The service name SigV4 signs for.
pub const SIGNING_NAME: &str = "bedrock";

/// The response header that carries the request's id.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The response header naming an error's type (`ThrottlingException`, sometimes followed by
/// `:` and a namespace URL).
pub const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// The stream's content type.
pub const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// The public endpoint of a region.
pub fn regional_endpoint(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// A Bedrock model id without its inference profile's geography (`us.anthropic.claude-…` →
/// `anthropic.claude-…`); `None` for an id without one.
pub fn without_profile_prefix(model_id: &str) -> Option<&str> {
    let (geo, rest) = model_id.split_once('.')?;
    let known = ["global", "us", "us-gov", "eu", "apac", "jp", "au", "ca"];
    (known.contains(&geo) && rest.contains('.')).then_some(rest)
}

/// A model id as one path segment: everything but the unreserved characters percent-encoded, as
/// the AWS SDKs send it (`us.anthropic.claude-…-v1:0` → `…-v1%3A0`; an ARN's `/` too).
pub fn encode_model_id(model_id: &str) -> String {
    let mut out = String::with_capacity(model_id.len());
    for byte in model_id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The path of a model's Converse (`stream` false) or ConverseStream operation.
pub fn path(model_id: &str, stream: bool) -> String {
    let operation = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("/model/{}/{operation}", encode_model_id(model_id))
}

/// Bedrock's `stopReason` as ours.
pub fn stop_reason(raw: &str) -> StopReason {
    match raw {
        "end_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "guardrail_intervened" | "content_filtered" => StopReason::ContentFilter,
        "model_context_window_exceeded" => StopReason::ContextWindowExceeded,
        _ => StopReason::Other,
    }
}

/// Our stop reason as Bedrock's `stopReason` (`raw` when it came from Bedrock already).
pub fn wire_stop_reason(reason: StopReason, raw: Option<&str>) -> String {
    if let Some(raw) = raw.filter(|r| stop_reason(r) == reason && reason != StopReason::Other) {
        return raw.to_string();
    }
    match reason {
        StopReason::EndTurn | StopReason::PauseTurn | StopReason::Other => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "content_filtered",
        StopReason::ContextWindowExceeded => "model_context_window_exceeded",
    }
    .to_string()
}

/// Usage as a `metadata` event and a Converse response count it. Like Anthropic (whose models
/// Bedrock mostly serves), `inputTokens` leaves the cached tokens out; `totalTokens` counts all.
pub fn usage_json(usage: &Usage) -> Value {
    json!({
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": usage.total_input().saturating_add(usage.output_tokens),
        "cacheReadInputTokens": usage.cache_read_tokens,
        "cacheWriteInputTokens": usage.cache_write_tokens,
    })
}

/// Usage from a `metadata` event's or a Converse response's `usage`.
pub fn usage_from(usage: &Value) -> Usage {
    let count = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: count("inputTokens"),
        output_tokens: count("outputTokens"),
        cache_read_tokens: count("cacheReadInputTokens"),
        cache_write_tokens: count("cacheWriteInputTokens"),
        reasoning_tokens: 0,
    }
}

/// An error's type as Bedrock names it: the header's value before any `:`, or a body's
/// `__type` after any `#` (`com.amazon.coral.service#ValidationException`).
pub fn error_type_name(raw: &str) -> &str {
    let raw = raw.split(':').next().unwrap_or(raw);
    raw.rsplit('#').next().unwrap_or(raw).trim()
}

/// The class of a Bedrock exception, by its name (an HTTP error's type, or an in-stream
/// exception event's `:exception-type`, which starts lower-case): `None` for names it does not
/// know, which are classified by status.
pub fn error_class(name: &str) -> Option<ErrorClass> {
    let mut chars = name.chars();
    let first = chars.next()?.to_ascii_uppercase();
    let name: String = std::iter::once(first).chain(chars).collect();
    Some(match name.as_str() {
        "ThrottlingException" | "ModelNotReadyException" => ErrorClass::RateLimited,
        "ServiceUnavailableException" => ErrorClass::Overloaded,
        "InternalServerException" | "ModelStreamErrorException" | "ModelErrorException" => {
            ErrorClass::ServerError
        }
        "ModelTimeoutException" => ErrorClass::Timeout,
        "ValidationException" => ErrorClass::BadRequest,
        "AccessDeniedException" => ErrorClass::Permission,
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException" => ErrorClass::Auth,
        "ResourceNotFoundException" => ErrorClass::NotFound,
        "ServiceQuotaExceededException" => ErrorClass::Quota,
        _ => return None,
    })
}

/// The HTTP status and exception name Bedrock answers a class of failure with (what the
/// simulator and the gateway send).
pub fn error_for(class: ErrorClass) -> (u16, &'static str) {
    match class {
        ErrorClass::RateLimited => (429, "ThrottlingException"),
        ErrorClass::Overloaded | ErrorClass::Unavailable => (503, "ServiceUnavailableException"),
        ErrorClass::Timeout | ErrorClass::Stalled => (408, "ModelTimeoutException"),
        ErrorClass::Auth => (403, "UnrecognizedClientException"),
        ErrorClass::Permission => (403, "AccessDeniedException"),
        ErrorClass::NotFound => (404, "ResourceNotFoundException"),
        ErrorClass::Quota => (400, "ServiceQuotaExceededException"),
        ErrorClass::BadRequest
        | ErrorClass::ContextLength
        | ErrorClass::ContentFilter
        | ErrorClass::TooLarge
        | ErrorClass::Conflict
        | ErrorClass::Cancelled => (400, "ValidationException"),
        ErrorClass::ServerError
        | ErrorClass::Connect
        | ErrorClass::StreamCut
        | ErrorClass::Malformed
        | ErrorClass::Redirect => (500, "InternalServerException"),
    }
}

/// An exception's name as an in-stream exception event's `:exception-type` (lower camel case:
/// `ThrottlingException` → `throttlingException`).
pub fn stream_exception_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// The exceptions a ConverseStream sends inside the stream, by name (`:exception-type`).
pub const STREAM_EXCEPTIONS: &[&str] = &[
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "serviceUnavailableException",
];

/// One event message: `:event-type` `event_type`, `:content-type` JSON, `:message-type` event.
pub fn event_message(event_type: &str, payload: &Value) -> Bytes {
    message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().into_bytes(),
    )
}

/// One exception message (`:message-type` exception), its payload `{"message": …}`.
pub fn exception_message(exception_type: &str, message_text: &str) -> Bytes {
    message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({ "message": message_text }).to_string().into_bytes(),
    )
}

/// A message with string headers, framed (prelude, headers, payload, both CRCs).
pub fn message(headers: &[(&str, &str)], payload: Vec<u8>) -> Bytes {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            Header::new(
                (*name).to_string(),
                HeaderValue::String((*value).to_string().into()),
            )
        })
        .collect();
    let message = Message::new_from_parts(headers, payload);
    let mut out = Vec::new();
    // Writing fails only for a header name or value longer than the format allows, which these
    // never are; an empty frame would then fail the reader's CRC, not pass silently.
    if aws_smithy_eventstream::frame::write_message_to(&message, &mut out).is_err() {
        out.clear();
    }
    Bytes::from(out)
}

/// What one decoded message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `:message-type` event: its `:event-type` and JSON payload.
    Event { event_type: String, payload: String },
    /// `:message-type` exception: its `:exception-type` and payload (`{"message": …}`).
    Exception {
        exception_type: String,
        payload: String,
    },
    /// `:message-type` error: its `:error-code` and `:error-message`.
    Error { code: String, message: String },
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event-stream message of {size} bytes exceeds {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("bad event-stream message: {0}")]
    Invalid(String),
}

/// Incremental event-stream reader: feed it bytes in any split, take whole messages out.
#[derive(Debug)]
pub struct Decoder {
    buffer: BytesMut,
    max_message_bytes: usize,
}

/// The prelude (total length, headers length, prelude CRC) and the message CRC.
const OVERHEAD: usize = 16;

impl Decoder {
    pub fn new(max_message_bytes: usize) -> Self {
        Decoder {
            buffer: BytesMut::new(),
            max_message_bytes,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// Bytes held that are not a whole message yet.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// The next whole message, `Ok(None)` when more bytes are needed. After an error the
    /// stream cannot be resynchronized (lengths are untrustworthy): the caller ends it.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buffer.len() < 4 {
            return Ok(None);
        }
        let total = usize::try_from((&self.buffer[..4]).get_u32()).unwrap_or(usize::MAX);
        if total > self.max_message_bytes.saturating_add(OVERHEAD) {
            return Err(FrameError::TooLarge {
                size: total,
                limit: self.max_message_bytes,
            });
        }
        if total < OVERHEAD {
            return Err(FrameError::Invalid(format!(
                "a message cannot be {total} bytes long"
            )));
        }
        if self.buffer.len() < total {
            return Ok(None);
        }
        let bytes = self.buffer.split_to(total).freeze();
        let message = aws_smithy_eventstream::frame::read_message_from(bytes)
            .map_err(|e| FrameError::Invalid(e.to_string()))?;
        frame(&message).map(Some)
    }
}

fn frame(message: &Message) -> Result<Frame, FrameError> {
    let header = |name: &str| {
        message
            .headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str().to_string())
    };
    let payload = || {
        String::from_utf8(message.payload().to_vec())
            .map_err(|_| FrameError::Invalid("the payload is not UTF-8".into()))
    };
    match header(":message-type").as_deref() {
        Some("event") => Ok(Frame::Event {
            event_type: header(":event-type")
                .ok_or_else(|| FrameError::Invalid("an event without :event-type".into()))?,
            payload: payload()?,
        }),
        Some("exception") => Ok(Frame::Exception {
            exception_type: header(":exception-type").unwrap_or_default(),
            payload: payload()?,
        }),
        Some("error") => Ok(Frame::Error {
            code: header(":error-code").unwrap_or_default(),
            message: header(":error-message").unwrap_or_default(),
        }),
        other => Err(FrameError::Invalid(format!(
            "unknown :message-type {}",
            other.unwrap_or("(none)")
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_round_trip_in_any_split() {
        let mut wire = event_message("messageStart", &json!({"role": "assistant"})).to_vec();
        wire.extend_from_slice(&exception_message("throttlingException", "slow down"));
        for split in [1, 3, 7, wire.len()] {
            let mut decoder = Decoder::new(1024);
            let mut frames = Vec::new();
            for chunk in wire.chunks(split) {
                decoder.feed(chunk);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            assert_eq!(
                frames,
                vec![
                    Frame::Event {
                        event_type: "messageStart".into(),
                        payload: r#"{"role":"assistant"}"#.into()
                    },
                    Frame::Exception {
                        exception_type: "throttlingException".into(),
                        payload: r#"{"message":"slow down"}"#.into()
                    }
                ],
                "split {split}"
            );
            assert_eq!(decoder.pending(), 0);
        }
    }

    #[test]
    fn a_bad_crc_or_an_oversized_message_is_an_error() {
        let mut wire = event_message("metadata", &json!({})).to_vec();
        let last = wire.len() - 1;
        wire[last] ^= 0xff;
        let mut decoder = Decoder::new(1024);
        decoder.feed(&wire);
        assert!(matches!(decoder.next_frame(), Err(FrameError::Invalid(_))));
        let big = event_message("x", &json!({"t": "a".repeat(2000)}));
        let mut decoder = Decoder::new(1024);
        decoder.feed(&big[..8]);
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn model_ids_are_one_encoded_segment() {
        assert_eq!(
            path("us.anthropic.claude-sonnet-4-5-20250929-v1:0", true),
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
        );
        assert_eq!(
            path("arn:aws:bedrock:us-east-1:1:inference-profile/x", false),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse"
        );
    }

    #[test]
    fn exception_names_classify_in_either_case() {
        assert_eq!(
            error_class("throttlingException"),
            Some(ErrorClass::RateLimited)
        );
        assert_eq!(
            error_class(error_type_name(
                "ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/"
            )),
            Some(ErrorClass::Overloaded)
        );
        assert_eq!(
            error_type_name("com.amazon.coral.validate#ValidationException"),
            "ValidationException"
        );
        assert_eq!(error_class("SomethingNew"), None);
        for class in ErrorClass::ALL {
            let (_, name) = error_for(class);
            assert!(error_class(name).is_some(), "{name}");
        }
    }
}
