//! Same-protocol passthrough: a caller's request goes upstream as it was sent.
//!
//! When nothing fails the gateway must be invisible: a target that speaks the caller's protocol
//! gets the caller's body with every field kept — `cache_control`, `thinking`, betas' fields,
//! fields added after this was written — but for the few the engine owns.

use super::{Protocol, Request};
use crate::json::{self, Fields};
use serde_json::{Map, Value, json};

/// The body for a target speaking `protocol` asked for `model`, when `request` came in that
/// protocol: the caller's as sent, but for `model`, `stream: true` (the engine streams every
/// attempt; on Chat Completions with the usage chunk asked for, which the gateway drops again for
/// a caller that did not ask) and, for a continuation, the prefill as a last assistant turn and
/// what is left of the output limit. `None` when the request did not come in `protocol`.
pub fn body(request: &Request, protocol: Protocol, model: &str) -> Option<String> {
    let original = request
        .original
        .as_deref()
        .filter(|o| o.protocol == protocol)?;
    let fields = Fields::parse(&original.body).ok()?;
    let mut set: Vec<(&str, String)> = vec![
        ("model", json!(model).to_string()),
        ("stream", "true".to_string()),
    ];
    if matches!(protocol, Protocol::Openai | Protocol::Azure) {
        let mut options = match fields.value("stream_options") {
            Some(Value::Object(options)) => options,
            _ => Map::new(),
        };
        options.insert("include_usage".into(), json!(true));
        set.push(("stream_options", Value::Object(options).to_string()));
    }
    if let Some(text) = &request.prefill {
        let turn = json!({"role": "assistant", "content": text});
        let (list, limit) = match protocol {
            Protocol::Anthropic => ("messages", Some("max_tokens")),
            Protocol::Openai | Protocol::Azure => (
                "messages",
                ["max_completion_tokens", "max_tokens"]
                    .into_iter()
                    .find(|k| fields.raw(k).is_some()),
            ),
            Protocol::OpenaiResponses => ("input", Some("max_output_tokens")),
            // Gemini's body is its client's own (`provider::gemini`), never built here.
            Protocol::Gemini => return None,
            // Converse bodies have their own passthrough (no `model` or `stream` in the body).
            Protocol::Bedrock => return None,
        };
        set.push((list, appended(&fields, list, &turn)?));
        if let Some(limit) = limit {
            set.push((limit, request.max_tokens.to_string()));
        }
    }
    Some(json::with_fields(&fields, &set))
}

/// The array `key` of `fields` with `item` appended, as JSON text, its items as they were sent.
/// A Responses `input` given as a string is the user's one message.
pub(crate) fn appended(fields: &Fields<'_>, key: &str, item: &Value) -> Option<String> {
    let raw = fields.raw(key)?;
    if json::kind(raw) == "a string" {
        let user = json!({"role": "user", "content": json::parse(raw).ok()?});
        return Some(json!([user, item]).to_string());
    }
    let head = raw.get().trim_end().strip_suffix(']')?.trim_end();
    let separator = if head.ends_with('[') { "" } else { "," };
    Some(format!("{head}{separator}{item}]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Message, Original};
    use std::sync::Arc;

    fn request(protocol: Protocol, body: &str) -> Request {
        Request {
            original: Some(Arc::new(Original {
                protocol,
                body: bytes::Bytes::from(body.to_string()),
                headers: Vec::new(),
                bound: false,
            })),
            ..Request::prompt("hi")
        }
    }

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_default()
    }

    #[test]
    fn every_field_is_kept_but_model_and_stream() {
        let sent = r#"{"model":"claude-x","max_tokens":9,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":2048},"future_field":{"a":[1,2.50]}}"#;
        let out = body(
            &request(Protocol::Anthropic, sent),
            Protocol::Anthropic,
            "claude-y",
        );
        let Some(out) = out else {
            panic!("same protocol")
        };
        let mut want = parsed(sent);
        want["model"] = json!("claude-y");
        want["stream"] = json!(true);
        assert_eq!(parsed(&out), want);
        assert!(
            out.contains(r#""future_field":{"a":[1,2.50]}"#),
            "byte for byte: {out}"
        );
    }

    #[test]
    fn another_protocol_gets_no_passthrough() {
        let r = request(Protocol::Anthropic, r#"{"model":"m","messages":[]}"#);
        assert_eq!(body(&r, Protocol::Openai, "gpt"), None);
        assert_eq!(body(&Request::prompt("hi"), Protocol::Anthropic, "m"), None);
    }

    #[test]
    fn chat_completions_always_asks_for_usage_keeping_the_callers_options() {
        let sent = r#"{"model":"g","messages":[],"stream":false,"stream_options":{"x":1}}"#;
        let Some(out) = body(&request(Protocol::Openai, sent), Protocol::Openai, "gpt-5") else {
            panic!("same protocol")
        };
        let out = parsed(&out);
        assert_eq!(out["stream"], true);
        assert_eq!(
            out["stream_options"],
            json!({"x": 1, "include_usage": true})
        );
    }

    #[test]
    fn a_continuation_appends_the_prefill_and_sets_what_is_left() {
        let sent = r#"{"model":"m","max_completion_tokens":100,"messages":[{"role":"user","content":"hi"}]}"#;
        let mut r = request(Protocol::Openai, sent);
        Arc::make_mut(&mut r.messages).push(Message::assistant("Hel"));
        r.prefill = Some("Hel".into());
        r.max_tokens = 40;
        let Some(out) = body(&r, Protocol::Openai, "m") else {
            panic!("same protocol")
        };
        let out = parsed(&out);
        assert_eq!(
            out["messages"][1],
            json!({"role": "assistant", "content": "Hel"})
        );
        assert_eq!(out["max_completion_tokens"], 40);
        assert!(out.get("max_tokens").is_none());

        let mut r = request(Protocol::OpenaiResponses, r#"{"model":"m","input":"hi"}"#);
        r.prefill = Some("Hel".into());
        let Some(out) = body(&r, Protocol::OpenaiResponses, "m") else {
            panic!("same")
        };
        let out = parsed(&out);
        assert_eq!(out["input"][0], json!({"role": "user", "content": "hi"}));
        assert_eq!(out["input"][1]["content"], "Hel");

        let mut r = request(Protocol::Anthropic, r#"{"model":"m","messages":[ ]}"#);
        r.prefill = Some("x".into());
        let Some(out) = body(&r, Protocol::Anthropic, "m") else {
            panic!("same")
        };
        assert_eq!(
            parsed(&out)["messages"],
            json!([{"role": "assistant", "content": "x"}])
        );
    }
}
