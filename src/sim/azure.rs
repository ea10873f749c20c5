//! Azure OpenAI as a server speaks it: OpenAI's chunks ([`super::openai`]) with Azure's additions
//! — a first chunk with an empty `id`, `model` and `choices` that carries `prompt_filter_results`,
//! `content_filter_results` on every choice — Azure's error bodies and retry headers, and the two
//! paths: a deployment's (`/openai/deployments/{deployment}/chat/completions?api-version=…`) and
//! the v1 path (`/openai/v1/chat/completions`). A request without a credential (`api-key`, or an
//! Entra ID bearer token) gets Azure's 401.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use super::fault::{FaultKind, format_duration};
use super::openai::Openai;
use super::reply::{Reply, SimRequest};
use super::rng::Rng;
use super::server::ConnControl;
use super::state::ProviderState;
use super::wire::{ErrorReply, Frame, FrameKind, Meta, Wire, retry_after_secs};
use crate::protocol::ErrorClass;
use crate::protocol::azure as az;

pub(crate) struct Azure;

/// Which of Azure's two paths a request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    Deployment,
    V1,
}

/// Answer a chat completion on either path: Azure's 401 without a credential, its 404 on a
/// deployment's path without an `api-version`; else the provider's answer.
pub(crate) async fn chat(
    provider: Arc<ProviderState>,
    conn: Arc<ConnControl>,
    path: Path,
    api_version: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let has = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.trim().is_empty())
    };
    if !has(az::API_KEY_HEADER) && !has("authorization") {
        return refuse(
            401,
            ErrorClass::Auth,
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to \
             provide a valid key for an active subscription and use a correct regional API \
             endpoint for your resource.",
        );
    }
    if path == Path::Deployment && api_version.as_deref().is_none_or(str::is_empty) {
        // What Azure answers a deployment path without its version.
        return refuse(404, ErrorClass::NotFound, "Resource not found");
    }
    super::serve::answer(provider, conn, body).await
}

fn refuse(status: u16, class: ErrorClass, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = az::error_body(class, status.as_u16(), message);
    (status, axum::Json(body)).into_response()
}

/// An Azure error reply of `class`.
fn error(class: ErrorClass, status: u16, message: &str, meta: &Meta) -> ErrorReply {
    ErrorReply::new(status, az::error_body(class, status, message))
        .header(az::REQUEST_ID_HEADER, meta.request_id.clone())
}

/// The three retry headers Azure sends: seconds, and milliseconds twice.
fn retry_headers(reply: ErrorReply, retry_after: Duration) -> ErrorReply {
    let ms = retry_after.as_millis().to_string();
    reply
        .header("retry-after", retry_after_secs(retry_after))
        .header(az::RETRY_AFTER_MS_HEADERS[0], ms.clone())
        .header(az::RETRY_AFTER_MS_HEADERS[1], ms)
}

/// A chunk's choices with their content-filter results: an empty object on a choice that says
/// nothing (the role, the finish), every category safe on one with content (as Azure sends them).
fn with_filter_results(frame: Frame) -> Frame {
    let text = String::from_utf8_lossy(&frame.bytes);
    let Some(data) = text.strip_prefix("data: ").map(str::trim_end) else {
        return frame;
    };
    let Ok(mut chunk) = serde_json::from_str::<Value>(data) else {
        return frame;
    };
    let Some(choices) = chunk.get_mut("choices").and_then(Value::as_array_mut) else {
        return frame;
    };
    for choice in choices {
        let says = choice
            .get("delta")
            .is_some_and(|d| d.get("content").is_some_and(|c| c.as_str() != Some("")));
        let results = if says && frame.kind == FrameKind::Token {
            az::filter_results(None)
        } else {
            json!({})
        };
        choice["content_filter_results"] = results;
    }
    Frame::new(frame.kind, format!("data: {chunk}\n\n"))
}

impl Wire for Azure {
    fn path(&self) -> &'static str {
        az::V1_PATH
    }

    fn request_id_header(&self) -> &'static str {
        crate::protocol::chat::REQUEST_ID_HEADER
    }

    fn new_meta(&self, rng: &mut Rng, model: String, include_usage: bool) -> Meta {
        Openai.new_meta(rng, model, include_usage)
    }

    /// A deployment answers with its own model, whatever the body names.
    fn parse_request(&self, body: &[u8]) -> Result<SimRequest, String> {
        let mut request = Openai.parse_request(body)?;
        request.model = None;
        Ok(request)
    }

    fn lead_in(&self) -> bool {
        false
    }

    fn stream(&self, reply: &Reply, meta: &Meta) -> Vec<Frame> {
        let first = json!({
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": az::prompt_filter_results(),
        });
        let mut frames = vec![Frame::new(FrameKind::Meta, format!("data: {first}\n\n"))];
        frames.extend(
            Openai
                .stream(reply, meta)
                .into_iter()
                .map(with_filter_results),
        );
        frames
    }

    fn message(&self, reply: &Reply, meta: &Meta) -> Value {
        let mut message = Openai.message(reply, meta);
        message["prompt_filter_results"] = az::prompt_filter_results();
        if let Some(choices) = message.get_mut("choices").and_then(Value::as_array_mut) {
            for choice in choices {
                choice["content_filter_results"] = az::filter_results(None);
            }
        }
        message
    }

    fn fault_error(&self, kind: &FaultKind, meta: &Meta) -> Option<ErrorReply> {
        Some(match kind {
            FaultKind::RateLimit { retry_after } => {
                let secs = retry_after_secs(*retry_after);
                let message = format!(
                    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API \
                     have exceeded call rate limit of your current OpenAI S0 pricing tier. \
                     Please retry after {secs} seconds. Please go here: \
                     https://aka.ms/oai/quotaincrease if you would like to further increase the \
                     default rate limit."
                );
                retry_headers(
                    error(ErrorClass::RateLimited, 429, &message, meta),
                    *retry_after,
                )
                .header("x-ratelimit-remaining-requests", "0")
                .header("x-ratelimit-reset-requests", format_duration(*retry_after))
            }
            FaultKind::Quota => error(
                ErrorClass::Quota,
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                meta,
            ),
            FaultKind::Overloaded {
                status,
                retry_after,
            } => {
                let reply = error(
                    ErrorClass::Overloaded,
                    status.unwrap_or(503),
                    "The service is temporarily unable to process your request. Please try \
                     again later.",
                    meta,
                );
                match retry_after {
                    Some(r) => retry_headers(reply, *r),
                    None => reply,
                }
            }
            FaultKind::ServerError { status } => error(
                ErrorClass::ServerError,
                *status,
                "The server had an error while processing your request. Sorry about that!",
                meta,
            ),
            FaultKind::BadRequest => error(
                ErrorClass::BadRequest,
                400,
                "The simulated provider rejected this request (fault bad_request).",
                meta,
            ),
            FaultKind::ContextLength => error(
                ErrorClass::ContextLength,
                400,
                "This model's maximum context length is 128000 tokens. However, your messages \
                 resulted in 250000 tokens. Please reduce the length of the messages.",
                meta,
            ),
            FaultKind::ContentFilter => error(
                ErrorClass::ContentFilter,
                400,
                "The response was filtered due to the prompt triggering Azure OpenAI's content \
                 management policy. Please modify your prompt and retry. To learn more about our \
                 content filtering policies please read our documentation: \
                 https://go.microsoft.com/fwlink/?linkid=2198766",
                meta,
            ),
            FaultKind::Auth => error(
                ErrorClass::Auth,
                401,
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure \
                 to provide a valid key for an active subscription and use a correct regional \
                 API endpoint for your resource.",
                meta,
            ),
            _ => return None,
        })
    }

    fn invalid_request(&self, message: &str, meta: &Meta) -> ErrorReply {
        error(ErrorClass::BadRequest, 400, message, meta)
    }

    fn stream_error(&self, error_type: &str, meta: &Meta, at: usize) -> Bytes {
        Openai.stream_error(error_type, meta, at)
    }

    fn malformed(&self, meta: &Meta, at: usize) -> Bytes {
        Openai.malformed(meta, at)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sim::reply::Stop;

    #[test]
    fn the_first_chunk_is_the_prompts_filter_results_and_choices_carry_theirs() {
        let reply = Reply {
            tokens: vec!["Hi".into(), " there.".into()],
            tool_call: None,
            stop: Stop::EndTurn,
            input_tokens: 14,
        };
        let meta = Azure.new_meta(&mut Rng::new(1), "gpt-test".into(), true);
        let frames = Azure.stream(&reply, &meta);
        let chunks: Vec<Value> = frames[..frames.len() - 1]
            .iter()
            .map(|f| serde_json::from_str(&String::from_utf8_lossy(&f.bytes)[6..]).unwrap())
            .collect();
        assert_eq!(chunks[0]["id"], "");
        assert_eq!(chunks[0]["model"], "");
        assert_eq!(chunks[0]["choices"], json!([]));
        let prompt = &chunks[0]["prompt_filter_results"][0]["content_filter_results"];
        assert_eq!(
            prompt["violence"],
            json!({"filtered": false, "severity": "safe"})
        );
        assert_eq!(chunks[1]["id"], meta.message_id.as_str());
        assert_eq!(chunks[1]["model"], "gpt-test");
        assert_eq!(chunks[1]["choices"][0]["content_filter_results"], json!({}));
        let said = &chunks[2]["choices"][0];
        assert_eq!(said["delta"]["content"], "Hi");
        assert_eq!(said["content_filter_results"]["hate"]["filtered"], false);
        assert_eq!(
            String::from_utf8_lossy(&frames[frames.len() - 1].bytes),
            "data: [DONE]\n\n"
        );
    }
}
