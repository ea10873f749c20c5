//! AWS Bedrock Runtime's Converse and ConverseStream as a server speaks them
//! (`POST /model/{modelId}/converse-stream`, `/converse`), in botocore's `bedrock-runtime` shapes.
//! The stream is AWS's binary event stream (each message framed with its prelude, headers and
//! both CRC32s by AWS's own crate, see [`crate::protocol::bedrock`]): `messageStart`, per block
//! `contentBlockStart` (tool calls only) → `contentBlockDelta`… → `contentBlockStop`, then
//! `messageStop` and `metadata`. A fault mid-stream is an exception message
//! (`:message-type` exception); a fault before it, an HTTP error with `x-amzn-ErrorType`.
//!
//! The model id is in the path, and which operation in the path too: the route
//! ([`super::server`]) hands them over in the body as `modelId` and `stream`, which a Converse
//! body never has. Bedrock sends no `retry-after`: a `rate_limit` fault's wait is not stated.

use bytes::Bytes;
use serde_json::{Value, json};

use super::fault::FaultKind;
use super::reply::{Reply, SimRequest, Stop, Tool};
use super::rng::Rng;
use super::wire::{
    ErrorReply, Frame, FrameKind, Meta, Wire, content_text, fields, raw_items, value,
};
use crate::protocol::bedrock as protocol;

pub(crate) struct Bedrock;

/// What the route adds to the body: the path's model id and whether it was ConverseStream.
pub(crate) const MODEL_FIELD: &str = "modelId";
pub(crate) const STREAM_FIELD: &str = "stream";

fn event(kind: FrameKind, event_type: &str, payload: Value) -> Frame {
    Frame::new(kind, protocol::event_message(event_type, &payload))
}

fn stop_reason(stop: Stop) -> String {
    protocol::wire_stop_reason(stop.into(), None)
}

/// An HTTP error as Bedrock sends it: the exception's name in `x-amzn-ErrorType` (with the
/// namespace Bedrock appends), `{"message": …}` as the body.
fn exception(status: u16, name: &str, message: &str) -> ErrorReply {
    ErrorReply::new(status, json!({ "message": message })).header(
        protocol::ERROR_TYPE_HEADER,
        format!("{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    )
}

/// The in-stream exception a fault's `type` names: a Bedrock stream exception as is, else the
/// nearest one to another protocol's error type.
fn stream_exception(error_type: &str) -> &'static str {
    if let Some(name) = protocol::STREAM_EXCEPTIONS
        .iter()
        .find(|n| n.eq_ignore_ascii_case(error_type))
    {
        return name;
    }
    match error_type {
        "overloaded_error" | "overloaded" => "serviceUnavailableException",
        "rate_limit_error" | "rate_limit" => "throttlingException",
        "invalid_request_error" => "validationException",
        _ => "modelStreamErrorException",
    }
}

fn message_text(name: &str) -> &'static str {
    match name {
        "serviceUnavailableException" => "Bedrock is unable to process your request.",
        "throttlingException" => "Too many tokens, please wait before trying again.",
        "validationException" => "The model rejected the request.",
        "internalServerException" => "The server encountered an internal error.",
        _ => "The model failed to produce a complete response.",
    }
}

/// The tools a `toolConfig` offers.
fn tools(body: &crate::json::Fields<'_>) -> Vec<Tool> {
    let config = body.value("toolConfig").unwrap_or(Value::Null);
    config
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let spec = t.get("toolSpec")?;
            Some(Tool {
                name: spec.get("name")?.as_str()?.to_string(),
                schema: spec
                    .pointer("/inputSchema/json")
                    .cloned()
                    .unwrap_or(Value::Null),
            })
        })
        .collect()
}

impl Wire for Bedrock {
    fn path(&self) -> &'static str {
        "/model/{model}/converse-stream"
    }

    fn request_id_header(&self) -> &'static str {
        protocol::REQUEST_ID_HEADER
    }

    fn stream_content_type(&self) -> &'static str {
        protocol::EVENT_STREAM_CONTENT_TYPE
    }

    fn new_meta(&self, rng: &mut Rng, model: String, include_usage: bool) -> Meta {
        let hex = |rng: &mut Rng, n: usize| rng.alphanumeric(n).to_ascii_lowercase();
        Meta {
            request_id: format!(
                "{}-{}-{}-{}-{}",
                hex(rng, 8),
                hex(rng, 4),
                hex(rng, 4),
                hex(rng, 4),
                hex(rng, 12)
            ),
            message_id: String::new(),
            tool_call_id: format!("tooluse_{}", rng.alphanumeric(22)),
            model,
            created: 0,
            include_usage,
            echo: serde_json::Map::new(),
        }
    }

    fn parse_request(&self, body: &[u8]) -> Result<SimRequest, String> {
        let body = fields(body, "The request body must be a JSON object.")?;
        let messages = raw_items(&body, "messages")
            .ok_or("Malformed input request: required key [messages] not found")?;
        if messages.is_empty() {
            return Err("The messages field must not be empty.".into());
        }
        let inference = body.value("inferenceConfig").unwrap_or(Value::Null);
        let max_tokens = match inference.get("maxTokens") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|&m| m >= 1)
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or("inferenceConfig.maxTokens: must be a whole number of at least 1")?,
            ),
        };
        let last = messages.last().map(|m| value(m));
        let role_of = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_string);
        let prefill = last
            .as_ref()
            .filter(|m| role_of(m).as_deref() == Some("assistant"))
            .map(|m| m.get("content").map(content_text).unwrap_or_default())
            .filter(|text| !text.is_empty());
        let asked = &messages[..messages.len() - usize::from(prefill.is_some())];
        let mut prompt = body
            .value("system")
            .map(|s| content_text(&s))
            .unwrap_or_default();
        let mut last_user = String::new();
        for m in asked {
            let m = value(m);
            let text = m.get("content").map(content_text).unwrap_or_default();
            prompt.push('\n');
            prompt.push_str(&text);
            if role_of(&m).as_deref() == Some("user") {
                last_user = text;
            }
        }
        let after_tool_result = last
            .as_ref()
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array)
            .is_some_and(|blocks| blocks.iter().any(|b| b.get("toolResult").is_some()));
        Ok(SimRequest {
            echo: serde_json::Map::new(),
            model: body
                .value(MODEL_FIELD)
                .and_then(|m| m.as_str().map(String::from)),
            prompt,
            last_user,
            messages: messages.len(),
            max_tokens,
            tools: tools(&body),
            tools_disabled: false,
            after_tool_result,
            stream: body
                .value(STREAM_FIELD)
                .and_then(|s| s.as_bool())
                .unwrap_or(false),
            include_usage: true,
            prefill,
        })
    }

    fn lead_in(&self) -> bool {
        // Bedrock mostly serves Claude, which says a few words before a tool call.
        true
    }

    fn stream(&self, reply: &Reply, meta: &Meta) -> Vec<Frame> {
        use FrameKind::{Closing, Meta as M, Token};
        let mut frames = vec![event(M, "messageStart", json!({"role": "assistant"}))];
        let mut index = 0;
        if !reply.tokens.is_empty() {
            for token in &reply.tokens {
                frames.push(event(
                    Token,
                    "contentBlockDelta",
                    json!({"contentBlockIndex": index, "delta": {"text": token}}),
                ));
            }
            frames.push(event(
                M,
                "contentBlockStop",
                json!({"contentBlockIndex": index}),
            ));
            index += 1;
        }
        if let Some(call) = &reply.tool_call {
            frames.push(event(
                M,
                "contentBlockStart",
                json!({"contentBlockIndex": index, "start": {"toolUse":
                    {"toolUseId": meta.tool_call_id, "name": call.name}}}),
            ));
            for piece in &call.pieces {
                frames.push(event(
                    Token,
                    "contentBlockDelta",
                    json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}}),
                ));
            }
            frames.push(event(
                M,
                "contentBlockStop",
                json!({"contentBlockIndex": index}),
            ));
        }
        frames.push(event(
            Closing,
            "messageStop",
            json!({"stopReason": stop_reason(reply.stop)}),
        ));
        frames.push(event(
            Closing,
            "metadata",
            json!({"usage": protocol::usage_json(&reply.usage()), "metrics": {"latencyMs": 250}}),
        ));
        frames
    }

    fn message(&self, reply: &Reply, meta: &Meta) -> Value {
        let mut content = Vec::new();
        if !reply.tokens.is_empty() {
            content.push(json!({"text": reply.text()}));
        }
        if let Some(call) = &reply.tool_call {
            content.push(json!({"toolUse": {"toolUseId": meta.tool_call_id,
                                            "name": call.name, "input": call.input}}));
        }
        json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason(reply.stop),
            "usage": protocol::usage_json(&reply.usage()),
            "metrics": {"latencyMs": 250},
        })
    }

    fn fault_error(&self, kind: &FaultKind, _meta: &Meta) -> Option<ErrorReply> {
        Some(match kind {
            FaultKind::RateLimit { .. } => exception(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            ),
            FaultKind::Quota => exception(
                400,
                "ServiceQuotaExceededException",
                "Your request exceeds the service quota for your account.",
            ),
            FaultKind::Overloaded { status, .. } => exception(
                status.unwrap_or(503),
                "ServiceUnavailableException",
                "Bedrock is unable to process your request.",
            ),
            FaultKind::ServerError { status } => exception(
                *status,
                "InternalServerException",
                "The server encountered an internal error while processing the request.",
            ),
            FaultKind::BadRequest => exception(
                400,
                "ValidationException",
                "The simulated provider rejected this request (fault bad_request).",
            ),
            FaultKind::ContextLength => exception(
                400,
                "ValidationException",
                "Input is too long for requested model.",
            ),
            FaultKind::ContentFilter => exception(
                400,
                "ValidationException",
                "The request was blocked by the content filtering policy.",
            ),
            FaultKind::Auth => exception(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            _ => return None,
        })
    }

    fn invalid_request(&self, message: &str, _meta: &Meta) -> ErrorReply {
        exception(400, "ValidationException", message)
    }

    fn stream_error(&self, error_type: &str, _meta: &Meta, _at: usize) -> Bytes {
        let name = stream_exception(error_type);
        protocol::exception_message(name, message_text(name))
    }

    fn malformed(&self, _meta: &Meta, _at: usize) -> Bytes {
        // A message whose checksum does not match: what an event stream's corruption looks like,
        // and what every reader refuses (botocore reads a payload that is not JSON as a message).
        let good = protocol::event_message(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": " garbled"}}),
        );
        let mut bad = good.to_vec();
        if let Some(last) = bad.last_mut() {
            *last ^= 0xff;
        }
        Bytes::from(bad)
    }
}

/// Whether a request carries an `Authorization` a Bedrock client sends: SigV4
/// (`AWS4-HMAC-SHA256 Credential=…/…/bedrock/aws4_request, SignedHeaders=…, Signature=…` with
/// `x-amz-date`) or a Bedrock API key as a bearer token. The signature itself is not checked
/// (the simulator knows no secret key): only that it is there and well-formed. `Err` is the
/// message of the 403 a real endpoint gives.
pub(crate) fn check_authorization(
    authorization: Option<&str>,
    amz_date: Option<&str>,
) -> Result<(), String> {
    let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
        return Err("Missing Authentication Token".into());
    };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return if token.trim().is_empty() {
            Err("The bearer token is empty.".into())
        } else {
            Ok(())
        };
    }
    let Some(rest) = value.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(format!(
            "Authorization header requires the AWS4-HMAC-SHA256 algorithm (got `{}`).",
            value.split_whitespace().next().unwrap_or_default()
        ));
    };
    let part = |name: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(name))
            .filter(|v| !v.is_empty())
    };
    let credential = part("Credential=").ok_or("Authorization header requires 'Credential'.")?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[3] != protocol::SIGNING_NAME || scope[4] != "aws4_request" {
        return Err(format!(
            "Credential should be scoped to a valid region and to the service `{}`.",
            protocol::SIGNING_NAME
        ));
    }
    let signed = part("SignedHeaders=").ok_or("Authorization header requires 'SignedHeaders'.")?;
    if !signed.split(';').any(|h| h == "host") {
        return Err("'Host' must be a signed header.".into());
    }
    let signature = part("Signature=").ok_or("Authorization header requires 'Signature'.")?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("The request signature is not a SigV4 signature.".into());
    }
    if amz_date.is_none_or(|d| d.len() != 16) {
        return Err("Authorization requires the X-Amz-Date header (yyyyMMddTHHmmssZ).".into());
    }
    Ok(())
}

/// The 403 of a request without a well-formed `Authorization`.
pub(crate) fn unauthorized(message: &str) -> ErrorReply {
    exception(403, "UnrecognizedClientException", message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::bedrock::{Decoder, Frame as Decoded};

    #[test]
    fn the_stream_decodes_into_converse_events() {
        let reply = Reply {
            tokens: vec!["Hi".into(), " there".into()],
            tool_call: None,
            stop: Stop::EndTurn,
            input_tokens: 4,
        };
        let meta = Bedrock.new_meta(&mut Rng::new(1), "m".into(), true);
        let mut decoder = Decoder::new(1 << 20);
        for frame in Bedrock.stream(&reply, &meta) {
            decoder.feed(&frame.bytes);
        }
        let mut names = Vec::new();
        while let Some(Decoded::Event {
            event_type,
            payload,
        }) = decoder.next_frame().unwrap()
        {
            names.push(event_type.clone());
            if event_type == "metadata" {
                let v: Value = serde_json::from_str(&payload).unwrap();
                assert_eq!(v["usage"]["inputTokens"], 4);
                assert_eq!(v["usage"]["outputTokens"], 2);
            }
        }
        assert_eq!(
            names,
            [
                "messageStart",
                "contentBlockDelta",
                "contentBlockDelta",
                "contentBlockStop",
                "messageStop",
                "metadata"
            ]
        );
    }

    #[test]
    fn authorization_is_checked_for_form_not_for_the_secret() {
        let sig = "a".repeat(64);
        let good = format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/bedrock/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature={sig}"
        );
        assert_eq!(
            check_authorization(Some(&good), Some("20250101T000000Z")),
            Ok(())
        );
        assert_eq!(check_authorization(Some("Bearer abc"), None), Ok(()));
        for (auth, date) in [
            (None, Some("20250101T000000Z")),
            (Some(good.as_str()), None),
            (Some("Basic dXNlcg=="), None),
            (
                Some(&good.replace("/bedrock/", "/s3/")),
                Some("20250101T000000Z"),
            ),
            (Some(&good.replace(&sig, "zz")), Some("20250101T000000Z")),
        ] {
            assert!(check_authorization(auth, date).is_err(), "{auth:?}");
        }
    }
}
