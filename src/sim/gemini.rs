//! Google Gemini as a server speaks it: `GenerateContentResponse` chunks as `data:` lines (no event
//! names, no end marker: the chunk with a `finishReason` is the last), the whole response for
//! `:generateContent`, and Google's error shape (`{"error": {"code", "message", "status",
//! "details"}}`, a `RetryInfo` detail saying when to come back). The model and the method are in
//! the path, not the body ([`answer`]).

use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use super::fault::FaultKind;
use super::reply::{Reply, SimRequest, Tool};
use super::rng::Rng;
use super::server::ConnControl;
use super::state::{ProviderState, SimState};
use super::wire::{ErrorReply, Frame, FrameKind, Meta, Wire, fields, raw_items, unix_now, value};
use crate::protocol::gemini::{self as protocol, Field};

pub(crate) struct Gemini;

/// The model a simulated Gemini provider names when the path names none.
pub(crate) const MODEL: &str = "gemini-3.5-flash";

/// A top-level field of a request, by either of its names (see [`Field`]).
fn top(body: &crate::json::Fields<'_>, camel: &str) -> Option<Value> {
    body.value(camel)
        .or_else(|| body.value(&protocol::snake_case(camel)))
}

fn error(code: u16, status: &str, message: &str) -> ErrorReply {
    ErrorReply::new(code, protocol::error_body(code, status, message, None))
}

/// An error with a `RetryInfo` detail (rate limits, overload), as Google says when to retry.
fn retry_error(code: u16, status: &str, message: &str, retry: Duration) -> ErrorReply {
    ErrorReply::new(
        code,
        protocol::error_body(code, status, message, Some(retry)),
    )
}

/// Usage as the chunk after `tokens` output tokens states it.
fn usage(reply: &Reply, tokens: u64) -> Value {
    json!({
        "promptTokenCount": reply.input_tokens,
        "candidatesTokenCount": tokens,
        "totalTokenCount": reply.input_tokens + tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": reply.input_tokens}],
    })
}

/// One `GenerateContentResponse`.
fn response(meta: &Meta, parts: Value, finish: Option<&str>, usage: Value) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish);
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": meta.model,
        "responseId": meta.message_id,
    })
}

/// Google ends each event with CRLF pairs.
fn data(value: &Value) -> String {
    format!("data: {value}\r\n\r\n")
}

fn function_call(reply: &Reply) -> Option<Value> {
    reply
        .tool_call
        .as_ref()
        .map(|c| json!({"functionCall": {"name": c.name, "args": c.input}}))
}

/// The response to a prompt Gemini will not answer: no candidates, the block reason in
/// `promptFeedback` (Gemini's content filter, with a 200).
fn blocked_response(meta: &Meta) -> Value {
    json!({
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true},
            ],
        },
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": meta.model,
        "responseId": meta.message_id,
    })
}

impl Wire for Gemini {
    fn path(&self) -> &'static str {
        "/v1beta/models/{target}"
    }

    fn request_id_header(&self) -> &'static str {
        crate::protocol::chat::REQUEST_ID_HEADER
    }

    fn new_meta(&self, rng: &mut Rng, model: String, include_usage: bool) -> Meta {
        Meta {
            request_id: format!("req_{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
            message_id: rng.alphanumeric(22),
            tool_call_id: String::new(),
            model,
            created: unix_now(),
            include_usage,
            echo: serde_json::Map::new(),
        }
    }

    fn parse_request(&self, body: &[u8]) -> Result<SimRequest, String> {
        let body = fields(body, "Invalid JSON payload received. Expected an object.")?;
        let contents = raw_items(&body, "contents")
            .filter(|c| !c.is_empty())
            .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
        let config = top(&body, "generationConfig").unwrap_or_default();
        let max_tokens =
            match config.field("maxOutputTokens") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().and_then(|m| u32::try_from(m).ok()).ok_or(
                    "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32)",
                )?),
            };
        let texts = |content: &Value| -> String {
            content
                .get("parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut prompt = top(&body, "systemInstruction")
            .map(|s| texts(&s))
            .unwrap_or_default();
        let (mut last_user, mut after_tool_result) = (String::new(), false);
        for content in contents.iter().map(|c| value(c)) {
            if !prompt.is_empty() {
                prompt.push('\n');
            }
            let text = texts(&content);
            prompt.push_str(&text);
            let responds = content
                .get("parts")
                .and_then(Value::as_array)
                .is_some_and(|p| p.iter().any(|p| p.field("functionResponse").is_some()));
            after_tool_result = responds;
            if content.get("role").and_then(Value::as_str) != Some("model") && !responds {
                last_user = text;
            }
        }
        let tools = tools(&body);
        let mode = top(&body, "toolConfig")
            .and_then(|c| c.field("functionCallingConfig")?.get("mode").cloned());
        Ok(SimRequest {
            model: None,
            prompt,
            last_user,
            messages: contents.len(),
            max_tokens,
            tools,
            tools_disabled: mode.as_ref().and_then(Value::as_str) == Some("NONE"),
            after_tool_result,
            // Set from the path's method.
            stream: false,
            include_usage: true,
            prefill: None,
            echo: serde_json::Map::new(),
        })
    }

    fn lead_in(&self) -> bool {
        false
    }

    fn stream(&self, reply: &Reply, meta: &Meta) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut said = 0;
        for token in &reply.tokens {
            said += 1;
            let chunk = response(meta, json!([{"text": token}]), None, usage(reply, said));
            frames.push(Frame::new(FrameKind::Token, data(&chunk)));
        }
        let finish = protocol::wire_finish_reason(reply.stop.into());
        let total = reply.output_tokens();
        // Gemini sends a function call whole, in one part, and ends the reply with it.
        let last = match function_call(reply) {
            Some(call) => Frame::new(
                FrameKind::Token,
                data(&response(
                    meta,
                    json!([call]),
                    Some(finish),
                    usage(reply, total),
                )),
            ),
            None => Frame::new(
                FrameKind::Closing,
                data(&response(
                    meta,
                    json!([{"text": ""}]),
                    Some(finish),
                    usage(reply, total),
                )),
            ),
        };
        frames.push(last);
        frames
    }

    fn message(&self, reply: &Reply, meta: &Meta) -> Value {
        let mut parts = Vec::new();
        if !reply.tokens.is_empty() {
            parts.push(json!({"text": reply.text()}));
        }
        parts.extend(function_call(reply));
        let finish = protocol::wire_finish_reason(reply.stop.into());
        response(
            meta,
            Value::Array(parts),
            Some(finish),
            usage(reply, reply.output_tokens()),
        )
    }

    fn fault_error(&self, kind: &FaultKind, meta: &Meta) -> Option<ErrorReply> {
        Some(match kind {
            FaultKind::RateLimit { retry_after } => retry_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
                *retry_after,
            ),
            FaultKind::Quota => ErrorReply::new(429, daily_quota(meta)),
            FaultKind::Overloaded {
                status,
                retry_after,
            } => {
                let code = status.unwrap_or(503);
                let message = "The model is overloaded. Please try again later.";
                match retry_after {
                    Some(r) => retry_error(code, "UNAVAILABLE", message, *r),
                    None => error(code, "UNAVAILABLE", message),
                }
            }
            FaultKind::ServerError { status } => {
                let name = match status {
                    504 => "DEADLINE_EXCEEDED",
                    502 | 503 => "UNAVAILABLE",
                    _ => "INTERNAL",
                };
                error(
                    *status,
                    name,
                    "An internal error has occurred. Please retry or report in \
                     https://developers.generativeai.google/guide/troubleshooting",
                )
            }
            FaultKind::BadRequest => error(
                400,
                "INVALID_ARGUMENT",
                "The simulated provider rejected this request (fault bad_request).",
            ),
            FaultKind::ContextLength => error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (2500000) exceeds the maximum number of tokens allowed \
                 (1048576).",
            ),
            FaultKind::Auth => ErrorReply::new(400, invalid_key()),
            _ => return None,
        })
    }

    fn fault_reply(
        &self,
        kind: &FaultKind,
        meta: &Meta,
        stream: bool,
    ) -> Option<(&'static str, Bytes)> {
        if *kind != FaultKind::ContentFilter {
            return None;
        }
        let blocked = blocked_response(meta);
        Some(if stream {
            ("text/event-stream", Bytes::from(data(&blocked)))
        } else {
            (
                "application/json; charset=UTF-8",
                Bytes::from(blocked.to_string()),
            )
        })
    }

    fn invalid_request(&self, message: &str, _meta: &Meta) -> ErrorReply {
        error(400, "INVALID_ARGUMENT", message)
    }

    fn stream_error(&self, error_type: &str, _meta: &Meta, _at: usize) -> Bytes {
        let body = match error_type {
            "overloaded_error" => protocol::error_body(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
                None,
            ),
            _ => protocol::error_body(500, "INTERNAL", "An internal error has occurred.", None),
        };
        Bytes::from(data(&body))
    }

    fn malformed(&self, meta: &Meta, _at: usize) -> Bytes {
        Bytes::from(format!(
            "data: {{\"candidates\": [{{\"content\": {{\"parts\": [{{\"te\"responseId\":{}\r\n\r\n",
            Value::from(meta.message_id.as_str())
        ))
    }
}

/// The functions a request declares (`parametersJsonSchema`, else `parameters`).
fn tools(body: &crate::json::Fields<'_>) -> Vec<Tool> {
    raw_items(body, "tools")
        .into_iter()
        .flatten()
        .flat_map(|t| {
            let t = value(t);
            t.field("functionDeclarations")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|d| {
            Some(Tool {
                name: d.get("name")?.as_str()?.to_string(),
                schema: d
                    .field("parametersJsonSchema")
                    .or_else(|| d.get("parameters"))
                    .cloned()
                    .unwrap_or(Value::Null),
            })
        })
        .collect()
}

/// Google's answer to a wrong key: a 400, the reason in an `ErrorInfo` detail.
fn invalid_key() -> Value {
    json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }],
    }})
}

/// A spent daily quota: a 429 like a rate limit's, whose `QuotaFailure` names a per-day quota.
fn daily_quota(meta: &Meta) -> Value {
    json!({"error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. \
                    For more information on this error, head to: \
                    https://ai.google.dev/gemini-api/docs/rate-limits.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                "quotaId": protocol::DAILY_QUOTA_ID,
                "quotaDimensions": {"model": meta.model, "location": "global"},
            }],
        }],
    }})
}

/// Google's answer to a request without a key (or a bearer token).
fn unregistered() -> Response {
    let body = protocol::error_body(
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). \
         Please use API Key or other form of API consumer identity to call this API.",
        None,
    );
    (axum::http::StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// Whether the request carries a credential: `x-goog-api-key`, a `key` query parameter's
/// header form, or a bearer token (Vertex AI).
fn has_key(headers: &HeaderMap, query: Option<&str>) -> bool {
    let set = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.trim().is_empty() && v.trim() != "Bearer")
    };
    set(protocol::KEY_HEADER)
        || set("authorization")
        || query.is_some_and(|q| q.split('&').any(|p| p.starts_with("key=") && p.len() > 4))
}

/// One request to a Gemini provider: the key checked, the model and the method read from the
/// path's `{model}:{method}`.
pub(crate) async fn answer(
    provider: Arc<ProviderState>,
    conn: Arc<ConnControl>,
    target: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Response {
    let Some((model, stream)) = protocol::split_method(target) else {
        return super::serve::not_found(format!(
            "`{target}` is not a method the simulator serves: use \
             {{model}}:streamGenerateContent or {{model}}:generateContent"
        ));
    };
    if !has_key(headers, query) {
        return unregistered();
    }
    let model = model.to_string();
    super::serve::answer_as(provider, conn, body, move |request| {
        request.model = Some(model);
        request.stream = stream;
    })
    .await
}

/// `POST /{name}/v1beta/models/{model}:{method}` on the shared port.
pub(crate) async fn shared(
    State(state): State<Arc<SimState>>,
    Path((name, target)): Path<(String, String)>,
    Extension(conn): Extension<Arc<ConnControl>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let provider = match state.provider(&name) {
        Ok(p) if p.spec.protocol == crate::provider::Protocol::Gemini => Arc::clone(p),
        Ok(p) => {
            return super::serve::not_found(format!(
                "`{name}` speaks the {} protocol, not gemini",
                p.spec.protocol
            ));
        }
        Err(e) => return super::serve::not_found(format!("{e} (there are: {})", state.names())),
    };
    answer(provider, conn, &target, &headers, uri.query(), body).await
}

/// `POST /{name}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}`
/// on the shared port: Vertex AI's path, answered alike.
pub(crate) async fn shared_vertex(
    state: State<Arc<SimState>>,
    Path((name, _project, _location, target)): Path<(String, String, String, String)>,
    conn: Extension<Arc<ConnControl>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared(state, Path((name, target)), conn, uri, headers, body).await
}

/// `POST /v1beta/models/{model}:{method}` on the provider's own port.
pub(crate) async fn direct(
    State(provider): State<Arc<ProviderState>>,
    Path(target): Path<String>,
    Extension(conn): Extension<Arc<ConnControl>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(provider, conn, &target, &headers, uri.query(), body).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sim::reply::{Stop, ToolCall};

    fn chunks(frames: &[Frame]) -> Vec<Value> {
        frames
            .iter()
            .map(|f| {
                let text = String::from_utf8(f.bytes.to_vec()).unwrap();
                assert!(
                    text.starts_with("data: ") && text.ends_with("\r\n\r\n"),
                    "{text}"
                );
                serde_json::from_str(text[6..].trim()).unwrap()
            })
            .collect()
    }

    #[test]
    fn words_then_a_finish_with_usage() {
        let reply = Reply {
            tokens: vec!["Hi".into(), " there.".into()],
            tool_call: None,
            stop: Stop::EndTurn,
            input_tokens: 14,
        };
        let meta = Gemini.new_meta(&mut Rng::new(1), "gemini-test".into(), true);
        let chunks = chunks(&Gemini.stream(&reply, &meta));
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks[1]["candidates"][0]["content"]["parts"][0]["text"],
            " there."
        );
        assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
        assert_eq!(chunks[2]["usageMetadata"]["candidatesTokenCount"], 2);
        assert!(
            chunks
                .iter()
                .all(|c| c["responseId"] == meta.message_id.as_str())
        );
    }

    #[test]
    fn a_function_call_comes_whole() {
        let reply = Reply {
            tokens: vec![],
            tool_call: Some(ToolCall {
                name: "get_weather".into(),
                input: json!({"city": "Paris"}),
                pieces: vec!["{\"city\":\"Paris\"}".into()],
            }),
            stop: Stop::ToolUse,
            input_tokens: 30,
        };
        let meta = Gemini.new_meta(&mut Rng::new(1), "gemini-test".into(), true);
        let chunks = chunks(&Gemini.stream(&reply, &meta));
        assert_eq!(chunks.len(), 1);
        let part = &chunks[0]["candidates"][0]["content"]["parts"][0];
        assert_eq!(
            part["functionCall"],
            json!({"name": "get_weather", "args": {"city": "Paris"}})
        );
        assert_eq!(chunks[0]["candidates"][0]["finishReason"], "STOP");
    }

    #[test]
    fn requests_are_read_from_contents() {
        let body = json!({
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Use `get_weather`"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"r": 1}}}]},
            ],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}],
            "generationConfig": {"maxOutputTokens": 50},
        });
        let request = Gemini.parse_request(body.to_string().as_bytes()).unwrap();
        assert_eq!(request.last_user, "Use `get_weather`");
        assert!(request.after_tool_result);
        assert_eq!(request.max_tokens, Some(50));
        assert_eq!(request.tools[0].name, "get_weather");
        assert!(Gemini.parse_request(b"{\"contents\": []}").is_err());
    }
}
