//! A whole reply from the upstream's own events, for a client of the same protocol that did not
//! stream (`"stream": false`): the events are accumulated the way the official clients
//! accumulate them, so every value the upstream sent — thinking signatures, redacted thinking,
//! citations, server tool blocks, logprobs, fields added after this was written — is in the
//! reply as the upstream sent it.
//!
//! The engine streams every attempt (it must see the first event to commit), so a non-streaming
//! client's reply is always rebuilt from a stream; these builders make that rebuilding lossless.

use crate::provider::StreamEvent;
use serde_json::{Map, Value, json};

/// The upstream's own events of a reply, when every part of it came as such: `None` when the reply
/// was spliced from a continuation (its events are then partly normalized only) or none came.
pub fn wire_events(events: &[StreamEvent]) -> Option<Vec<(Option<&str>, &str)>> {
    if events.iter().any(|e| matches!(e, StreamEvent::Spliced)) {
        return None;
    }
    let wire: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Wire { event, data } => Some((event.as_deref(), data.as_str())),
            _ => None,
        })
        .collect();
    (!wire.is_empty()).then_some(wire)
}

/// `value` as an object, made one if it was anything else.
fn object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}

/// Append `piece` to the string at `key` of `target` (absent counts as empty).
fn append(target: &mut Value, key: &str, piece: &str) {
    let slot = object(target)
        .entry(key)
        .or_insert_with(|| Value::String(String::new()));
    match slot {
        Value::String(s) => s.push_str(piece),
        other => *other = Value::String(piece.to_string()),
    }
}

/// Set every field of `from` on `target`, one level deep.
fn merge(target: &mut Value, from: &Value) {
    if let Value::Object(from) = from {
        let target = object(target);
        for (k, v) in from {
            target.insert(k.clone(), v.clone());
        }
    }
}

/// Anthropic Messages: `message_start`'s message, its content blocks built from their deltas
/// (text, thinking, signature, tool input JSON, citations), `message_delta` merged in.
pub fn anthropic_message(events: &[(Option<&str>, &str)]) -> Option<Value> {
    let mut message: Option<Value> = None;
    let mut blocks: Vec<(u64, Value, String)> = Vec::new();
    for (_, data) in events {
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        let index = event.get("index").and_then(Value::as_u64);
        let block =
            |blocks: &[(u64, Value, String)]| blocks.iter().position(|(at, ..)| Some(*at) == index);
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => message = event.get("message").cloned(),
            Some("content_block_start") => {
                if let (Some(index), Some(start)) = (index, event.get("content_block")) {
                    blocks.push((index, start.clone(), String::new()));
                }
            }
            Some("content_block_delta") => {
                let (Some(i), Some(delta)) = (block(&blocks), event.get("delta")) else {
                    continue;
                };
                let (_, content, input) = &mut blocks[i];
                let text = |key: &str| delta.get(key).and_then(Value::as_str).unwrap_or("");
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => append(content, "text", text("text")),
                    Some("thinking_delta") => append(content, "thinking", text("thinking")),
                    Some("signature_delta") => append(content, "signature", text("signature")),
                    Some("input_json_delta") => input.push_str(text("partial_json")),
                    Some("citations_delta") => {
                        if let Some(citation) = delta.get("citation") {
                            let list = object(content)
                                .entry("citations")
                                .or_insert_with(|| json!([]));
                            match list {
                                Value::Array(list) => list.push(citation.clone()),
                                other => *other = json!([citation]),
                            }
                        }
                    }
                    _ => {}
                }
            }
            Some("content_block_stop") => {
                if let Some(i) = block(&blocks) {
                    let (_, content, input) = &mut blocks[i];
                    if !input.trim().is_empty() {
                        let value = serde_json::from_str(input).unwrap_or_else(|_| json!({}));
                        object(content).insert("input".into(), value);
                        input.clear();
                    }
                }
            }
            Some("message_delta") => {
                let Some(message) = message.as_mut() else {
                    continue;
                };
                if let Some(delta) = event.get("delta") {
                    merge(message, delta);
                }
                if let Some(usage) = event.get("usage") {
                    let slot = object(message).entry("usage").or_insert_with(|| json!({}));
                    merge(slot, usage);
                }
            }
            _ => {}
        }
    }
    let mut message = message?;
    blocks.sort_by_key(|(index, ..)| *index);
    let content = blocks.into_iter().map(|(_, block, _)| block).collect();
    object(&mut message).insert("content".into(), Value::Array(content));
    Some(message)
}

/// OpenAI Chat Completions: the chunks' choices folded into messages (strings concatenated,
/// tool calls by index, logprobs lists joined), the other fields as last sent, `usage` from the
/// usage chunk.
pub fn openai_completion(events: &[(Option<&str>, &str)]) -> Option<Value> {
    let mut completion = Map::new();
    let mut choices: Vec<(u64, Value)> = Vec::new();
    let mut any = false;
    for (_, data) in events {
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        any = true;
        for (key, value) in chunk {
            match key.as_str() {
                "choices" => {
                    for choice in value.as_array().into_iter().flatten() {
                        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let at = match choices.iter().position(|(i, _)| *i == index) {
                            Some(at) => at,
                            None => {
                                choices.push((index, json!({"index": index, "message": {}})));
                                choices.len() - 1
                            }
                        };
                        fold_choice(&mut choices[at].1, choice);
                    }
                }
                "object" => {}
                _ if value.is_null() && completion.contains_key(&key) => {}
                _ => {
                    completion.insert(key, value);
                }
            }
        }
    }
    if !any {
        return None;
    }
    choices.sort_by_key(|(i, _)| *i);
    for (_, choice) in &mut choices {
        // A whole reply's tool calls have no `index` (it numbers a stream's deltas).
        if let Some(Value::Array(calls)) = choice
            .get_mut("message")
            .and_then(|m| m.get_mut("tool_calls"))
        {
            for call in calls {
                object(call).remove("index");
            }
        }
    }
    completion.insert("object".into(), json!("chat.completion"));
    completion.insert(
        "choices".into(),
        Value::Array(choices.into_iter().map(|(_, c)| c).collect()),
    );
    Some(Value::Object(completion))
}

fn fold_choice(choice: &mut Value, chunk: &Value) {
    if let Some(reason) = chunk.get("finish_reason").filter(|r| !r.is_null()) {
        object(choice).insert("finish_reason".into(), reason.clone());
    }
    object(choice).entry("finish_reason").or_insert(Value::Null);
    if let Some(Value::Object(logprobs)) = chunk.get("logprobs") {
        let slot = object(choice)
            .entry("logprobs")
            .or_insert_with(|| json!({}));
        for (key, value) in logprobs {
            let list = object(slot)
                .entry(key.as_str())
                .or_insert_with(|| json!([]));
            match (list, value) {
                (Value::Array(list), Value::Array(more)) => list.extend(more.iter().cloned()),
                (list, value) => *list = value.clone(),
            }
        }
    } else {
        object(choice).entry("logprobs").or_insert(Value::Null);
    }
    let Some(Value::Object(delta)) = chunk.get("delta") else {
        return;
    };
    let message = object(choice).entry("message").or_insert_with(|| json!({}));
    for (key, value) in delta {
        match (key.as_str(), value) {
            ("tool_calls", Value::Array(calls)) => {
                for call in calls {
                    fold_tool_call(message, call);
                }
            }
            (_, Value::String(piece)) if key != "role" => append(message, key, piece),
            (_, Value::Null) => {
                object(message).entry(key.as_str()).or_insert(Value::Null);
            }
            _ => {
                object(message).insert(key.clone(), value.clone());
            }
        }
    }
}

fn fold_tool_call(message: &mut Value, call: &Value) {
    let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
    let list = object(message)
        .entry("tool_calls")
        .or_insert_with(|| json!([]));
    let Value::Array(list) = list else {
        return;
    };
    let at = match list
        .iter()
        .position(|c| c.get("index").and_then(Value::as_u64) == Some(index))
    {
        Some(at) => at,
        None => {
            list.push(json!({"index": index, "function": {"arguments": ""}}));
            list.len() - 1
        }
    };
    let target = &mut list[at];
    for (key, value) in call.as_object().into_iter().flatten() {
        match (key.as_str(), value) {
            ("index", _) => {}
            ("function", Value::Object(function)) => {
                let slot = object(target)
                    .entry("function")
                    .or_insert_with(|| json!({}));
                for (k, v) in function {
                    match v {
                        Value::String(piece) => append(slot, k, piece),
                        other => {
                            object(slot).insert(k.clone(), other.clone());
                        }
                    }
                }
            }
            _ => {
                object(target).insert(key.clone(), value.clone());
            }
        }
    }
}

/// The Responses API: its terminal event (`response.completed`, `response.incomplete`) carries
/// the whole response object, as the upstream built it.
pub fn responses_object(events: &[(Option<&str>, &str)]) -> Option<Value> {
    events.iter().rev().find_map(|(_, data)| {
        let event: Value = serde_json::from_str(data).ok()?;
        match event.get("type").and_then(Value::as_str) {
            Some("response.completed" | "response.incomplete") => event.get("response").cloned(),
            _ => None,
        }
    })
}
