//! Same-protocol passthrough: when the client's protocol is the answering target's, what reaches
//! the upstream is what the client sent but for `model` (and `stream`), with the protocol's own
//! headers; and what the client gets is what the upstream sent, value for value, streaming or
//! not. Against a capturing upstream on loopback, with real-shaped streams.

use crate::support::upstream::Upstream;
use breakerbox::config::Config;
use breakerbox::gateway;
use serde_json::{Value, json};

/// An SSE body from `(event, data)` pairs.
fn sse(events: &[(Option<&str>, Value)]) -> String {
    let mut out = String::new();
    for (event, data) in events {
        if let Some(event) = event {
            out += &format!("event: {event}\n");
        }
        out += &format!("data: {data}\n\n");
    }
    out
}

/// The `(event, data)` pairs of an SSE body, the data as JSON (`[DONE]` as a string).
fn frames(text: &str) -> Vec<(Option<String>, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let mut event = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
            (event, value)
        })
        .collect()
}

async fn gateway_over(providers: &str, routes: &str) -> gateway::server::Running {
    let config = Config::parse(
        &format!("[retry]\nmax_retries = 0\n{providers}\n{routes}"),
        "passthrough.toml",
    )
    .unwrap();
    let env = |var: &str| match var {
        "ANTHROPIC_API_KEY" => Some("gateway-anthropic-key".to_string()),
        "OPENAI_API_KEY" => Some("gateway-openai-key".to_string()),
        _ => None,
    };
    let common = breakerbox::cli::CommonArgs::default();
    let (running, _, _) = gateway::start(&common, &config, &env, None).await.unwrap();
    running
}

/// `body` POSTed to `path` on the gateway, without headers of the client's own.
async fn post(gw: &gateway::server::Running, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("http://{}{path}", gw.addr))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn provider(name: &str, protocol: &str, url: &str, model: &str) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nmodel = \"{model}\"\nbase_url = \"{url}\"\n"
    )
}

/// An Anthropic reply with every kind of block an agent meets: thinking with its signature,
/// redacted thinking, text with citations, a server tool's use and result, a tool call, an
/// event type from the future.
fn anthropic_stream() -> Vec<(Option<&'static str>, Value)> {
    let e = |name: &'static str, data: Value| (Some(name), data);
    vec![
        e(
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_01Xy","type":"message","role":"assistant","model":"claude-opus-4-1-20250805","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":2048,"cache_read_input_tokens":4096,"output_tokens":1,"service_tier":"standard"}}}),
        ),
        e(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}),
        ),
        e("ping", json!({"type":"ping"})),
        e(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me search."}}),
        ),
        e(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}),
        ),
        e(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        e(
            "content_block_start",
            json!({"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}}),
        ),
        e(
            "content_block_stop",
            json!({"type":"content_block_stop","index":1}),
        ),
        e(
            "content_block_start",
            json!({"type":"content_block_start","index":2,"content_block":{"type":"server_tool_use","id":"srvtoolu_014hJH82Qum7Td6UV8gDXThB","name":"web_search","input":{}}}),
        ),
        e(
            "content_block_delta",
            json!({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"query\": \"weather"}}),
        ),
        e(
            "content_block_delta",
            json!({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" Paris\"}"}}),
        ),
        e(
            "content_block_stop",
            json!({"type":"content_block_stop","index":2}),
        ),
        e(
            "content_block_start",
            json!({"type":"content_block_start","index":3,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_014hJH82Qum7Td6UV8gDXThB","content":[{"type":"web_search_result","title":"Paris weather","url":"https://example.com/paris","encrypted_content":"Eo8BCioIAhgBIiQyYjQ0","page_age":null}]}}),
        ),
        e(
            "content_block_stop",
            json!({"type":"content_block_stop","index":3}),
        ),
        e(
            "content_block_start",
            json!({"type":"content_block_start","index":4,"content_block":{"type":"text","text":"","citations":null}}),
        ),
        e(
            "content_block_delta",
            json!({"type":"content_block_delta","index":4,"delta":{"type":"citations_delta","citation":{"type":"web_search_result_location","cited_text":"Sunny, 21°C","url":"https://example.com/paris","title":"Paris weather","encrypted_index":"Eo8BCioIAhgBIiQ"}}}),
        ),
        e(
            "content_block_delta",
            json!({"type":"content_block_delta","index":4,"delta":{"type":"text_delta","text":"It is sunny in Paris."}}),
        ),
        e(
            "content_block_stop",
            json!({"type":"content_block_stop","index":4}),
        ),
        e(
            "content_block_start",
            json!({"type":"content_block_start","index":5,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_time","input":{}}}),
        ),
        e(
            "content_block_delta",
            json!({"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":""}}),
        ),
        e(
            "content_block_stop",
            json!({"type":"content_block_stop","index":5}),
        ),
        e(
            "future_event",
            json!({"type":"future_event","anything":[1,2.50]}),
        ),
        e(
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null,"container":null},"usage":{"output_tokens":87,"server_tool_use":{"web_search_requests":1},"iterations":[{"input_tokens":12,"output_tokens":87}]}}),
        ),
        e("message_stop", json!({"type":"message_stop"})),
    ]
}

/// A request with what prompt caching, extended thinking, betas and future fields put in one.
fn anthropic_request(stream: bool) -> Value {
    json!({
        "model": "claude-opus-4-1",
        "max_tokens": 32000,
        "stream": stream,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Project notes…", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture and this file?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}, "citations": {"enabled": true}, "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Earlier.", "signature": "EqQBCgIYAh"},
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.txt"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "hello"}], "cache_control": {"type": "ephemeral"}}
            ]}
        ],
        "tools": [
            {"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}, "cache_control": {"type": "ephemeral"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 16000},
        "metadata": {"user_id": "user_abc"},
        "top_k": 40,
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "output_config": {"effort": "high"},
        "service_tier": "auto",
        "a_field_from_the_future": {"x": [1, 2.50, null]}
    })
}

#[tokio::test]
async fn an_anthropic_request_goes_upstream_as_sent_but_for_the_model() {
    let (url, up) = Upstream::start(&[sse(&anthropic_stream())]).await;
    let gw = gateway_over(
        &provider("anthropic", "anthropic", &url, "claude-target"),
        // A route by name: its targets ask for their own model.
        "[[routes]]\nmodel = \"claude-opus-4-1\"\n",
    )
    .await;
    for stream in [true, false] {
        let sent = anthropic_request(stream);
        let reply = reqwest::Client::new()
            .post(format!("http://{}/v1/messages", gw.addr))
            .header("anthropic-version", "2023-06-01")
            .header(
                "anthropic-beta",
                "interleaved-thinking-2025-05-14,context-management-2025-06-27",
            )
            .header("anthropic-beta", "prompt-caching-2024-07-31")
            .header("x-api-key", "the-clients-own-key")
            .json(&sent)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let _ = reply.bytes().await;
        let (headers, body) = up.seen().pop().unwrap();
        let mut want = sent.clone();
        // The target has a model of its own; the engine always streams.
        want["model"] = json!("claude-target");
        want["stream"] = json!(true);
        assert_eq!(body, want, "stream: {stream}");
        let betas: Vec<&str> = headers
            .get_all("anthropic-beta")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            betas,
            [
                "interleaved-thinking-2025-05-14,context-management-2025-06-27",
                "prompt-caching-2024-07-31"
            ]
        );
        assert_eq!(headers["anthropic-version"], "2023-06-01");
        assert_eq!(
            headers["x-api-key"], "gateway-anthropic-key",
            "never the client's key"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn an_anthropic_stream_reaches_the_client_value_for_value() {
    let upstream_events = anthropic_stream();
    let (url, _up) = Upstream::start(&[sse(&upstream_events)]).await;
    let gw = gateway_over(
        &provider("anthropic", "anthropic", &url, "claude-target"),
        "",
    )
    .await;
    let text = post(&gw, "/v1/messages", &anthropic_request(true))
        .await
        .text()
        .await
        .unwrap();
    let want: Vec<(Option<String>, Value)> = upstream_events
        .iter()
        .map(|(e, d)| (e.map(str::to_string), d.clone()))
        .collect();
    assert_eq!(frames(&text), want);
    gw.stop().await;
}

#[tokio::test]
async fn a_whole_anthropic_reply_keeps_signatures_citations_and_server_tools() {
    let (url, _up) = Upstream::start(&[sse(&anthropic_stream())]).await;
    let gw = gateway_over(
        &provider("anthropic", "anthropic", &url, "claude-target"),
        "",
    )
    .await;
    let message: Value = post(&gw, "/v1/messages", &anthropic_request(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        message,
        json!({
            "id": "msg_01Xy", "type": "message", "role": "assistant",
            "model": "claude-opus-4-1-20250805",
            "content": [
                {"type": "thinking", "thinking": "Let me search.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
                {"type": "server_tool_use", "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB", "name": "web_search", "input": {"query": "weather Paris"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB", "content": [{"type": "web_search_result", "title": "Paris weather", "url": "https://example.com/paris", "encrypted_content": "Eo8BCioIAhgBIiQyYjQ0", "page_age": null}]},
                {"type": "text", "text": "It is sunny in Paris.", "citations": [{"type": "web_search_result_location", "cited_text": "Sunny, 21°C", "url": "https://example.com/paris", "title": "Paris weather", "encrypted_index": "Eo8BCioIAhgBIiQ"}]},
                {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_time", "input": {}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null, "container": null,
            "usage": {"input_tokens": 12, "cache_creation_input_tokens": 2048, "cache_read_input_tokens": 4096,
                      "output_tokens": 87, "service_tier": "standard",
                      "server_tool_use": {"web_search_requests": 1},
                      "iterations": [{"input_tokens": 12, "output_tokens": 87}]}
        })
    );
    gw.stop().await;
}

fn openai_chunk(delta: Value, finish: Value, logprobs: Value) -> Value {
    json!({"id": "chatcmpl-Bx1", "object": "chat.completion.chunk", "created": 1754000000,
           "model": "gpt-5-2025-08-07", "service_tier": "default", "system_fingerprint": "fp_abc",
           "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
           "usage": null})
}

/// A Chat Completions reply with logprobs, two parallel tool calls (one without arguments), cached
/// and reasoning tokens, and a field from the future.
fn openai_stream() -> Vec<(Option<&'static str>, Value)> {
    let lp = |t: &str| json!({"content": [{"token": t, "logprob": -0.1, "bytes": [72], "top_logprobs": []}], "refusal": null});
    let null = Value::Null;
    vec![
        (
            None,
            openai_chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                null.clone(),
                null.clone(),
            ),
        ),
        (
            None,
            openai_chunk(json!({"content": "Hel"}), null.clone(), lp("Hel")),
        ),
        (
            None,
            openai_chunk(json!({"content": "lo"}), null.clone(), lp("lo")),
        ),
        (
            None,
            openai_chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                null.clone(),
                null.clone(),
            ),
        ),
        (
            None,
            openai_chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":\"Paris\"}"}}]}),
                null.clone(),
                null.clone(),
            ),
        ),
        (
            None,
            openai_chunk(
                json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}),
                null.clone(),
                null.clone(),
            ),
        ),
        (
            None,
            openai_chunk(
                json!({"future_delta_field": "x"}),
                json!("tool_calls"),
                null.clone(),
            ),
        ),
        (
            None,
            json!({"id": "chatcmpl-Bx1", "object": "chat.completion.chunk", "created": 1754000000,
                      "model": "gpt-5-2025-08-07", "service_tier": "default", "system_fingerprint": "fp_abc",
                      "choices": [],
                      "usage": {"prompt_tokens": 900, "completion_tokens": 300, "total_tokens": 1200,
                                "prompt_tokens_details": {"cached_tokens": 768, "audio_tokens": 0},
                                "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0,
                                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}}),
        ),
        (None, json!("[DONE]")),
    ]
}

fn openai_sse(events: &[(Option<&str>, Value)]) -> String {
    let mut out = String::new();
    for (_, data) in events {
        match data {
            Value::String(s) => out += &format!("data: {s}\n\n"),
            other => out += &format!("data: {other}\n\n"),
        }
    }
    out
}

fn openai_request(stream: bool) -> Value {
    json!({
        "model": "gpt-5",
        "stream": stream,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "strict": true, "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
        "seed": 7,
        "reasoning_effort": "minimal",
        "logprobs": true,
        "top_logprobs": 2,
        "max_completion_tokens": 500,
        "prompt_cache_key": "k1",
        "a_field_from_the_future": [1, 2.50]
    })
}

#[tokio::test]
async fn a_chat_completions_request_goes_upstream_as_sent_but_for_the_model() {
    let (url, up) = Upstream::start(&[openai_sse(&openai_stream())]).await;
    let gw = gateway_over(
        &provider("openai", "openai", &format!("{url}/v1"), "gpt-target"),
        "[[routes]]\nmodel = \"gpt-5\"\n",
    )
    .await;
    for stream in [true, false] {
        let sent = openai_request(stream);
        let reply = reqwest::Client::new()
            .post(format!("http://{}/v1/chat/completions", gw.addr))
            .header("openai-beta", "assistants=v2")
            .json(&sent)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let _ = reply.bytes().await;
        let (headers, body) = up.seen().pop().unwrap();
        let mut want = sent.clone();
        want["model"] = json!("gpt-target");
        want["stream"] = json!(true);
        // The engine meters every attempt: the usage chunk is asked for (and dropped again for
        // a client that did not ask).
        want["stream_options"] = json!({"include_usage": true});
        assert_eq!(body, want, "stream: {stream}");
        assert_eq!(headers["openai-beta"], "assistants=v2");
        assert_eq!(headers["authorization"], "Bearer gateway-openai-key");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_chat_completions_stream_reaches_the_client_value_for_value() {
    let upstream_events = openai_stream();
    let (url, _up) = Upstream::start(&[openai_sse(&upstream_events)]).await;
    let gw = gateway_over(
        &provider("openai", "openai", &format!("{url}/v1"), "gpt-target"),
        "",
    )
    .await;
    let all: Vec<(Option<String>, Value)> = upstream_events
        .iter()
        .map(|(_, d)| (None, d.clone()))
        .collect();
    for include_usage in [true, false] {
        let mut body = openai_request(true);
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        let text = post(&gw, "/v1/chat/completions", &body)
            .await
            .text()
            .await
            .unwrap();
        let want: Vec<_> = all
            .iter()
            .filter(|(_, d)| include_usage || d["choices"] != json!([]))
            .cloned()
            .collect();
        assert_eq!(frames(&text), want, "include_usage: {include_usage}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_whole_chat_completion_keeps_logprobs_tool_calls_and_usage_details() {
    let (url, _up) = Upstream::start(&[openai_sse(&openai_stream())]).await;
    let gw = gateway_over(
        &provider("openai", "openai", &format!("{url}/v1"), "gpt-target"),
        "",
    )
    .await;
    let completion: Value = post(&gw, "/v1/chat/completions", &openai_request(false))
        .await
        .json()
        .await
        .unwrap();
    let lp = |t: &str| json!({"token": t, "logprob": -0.1, "bytes": [72], "top_logprobs": []});
    assert_eq!(
        completion,
        json!({
            "id": "chatcmpl-Bx1", "object": "chat.completion", "created": 1754000000,
            "model": "gpt-5-2025-08-07", "service_tier": "default", "system_fingerprint": "fp_abc",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant", "content": "Hello", "refusal": null,
                    "future_delta_field": "x",
                    "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
                    ]
                },
                "logprobs": {"content": [lp("Hel"), lp("lo")], "refusal": null},
                "finish_reason": "tool_calls"
            }],
            "usage": {"prompt_tokens": 900, "completion_tokens": 300, "total_tokens": 1200,
                      "prompt_tokens_details": {"cached_tokens": 768, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0,
                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        })
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_cut_passthrough_stream_is_continued_from_the_callers_own_body_plus_the_prefill() {
    let events = anthropic_stream();
    // The primary's stream: thinking, then text, then the connection ends mid-block.
    let cut: Vec<_> = events[..5]
        .iter()
        .cloned()
        .chain([
            (Some("content_block_stop"), json!({"type":"content_block_stop","index":0})),
            (Some("content_block_start"), json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})),
            (Some("content_block_delta"), json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"The answer is"}})),
        ])
        .collect();
    let (primary, _) = Upstream::start(&[sse(&cut)]).await;
    let rest = vec![
        (
            Some("message_start"),
            json!({"type":"message_start","message":{"id":"msg_02","type":"message","role":"assistant","model":"claude-backup","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":1}}}),
        ),
        (
            Some("content_block_start"),
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
        ),
        (
            Some("content_block_delta"),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" 42."}}),
        ),
        (
            Some("content_block_stop"),
            json!({"type":"content_block_stop","index":0}),
        ),
        (
            Some("message_delta"),
            json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}),
        ),
        (Some("message_stop"), json!({"type":"message_stop"})),
    ];
    let (backup, backup_seen) = Upstream::start(&[sse(&rest)]).await;
    let gw = gateway_over(
        &(provider("a", "anthropic", &primary, "claude-a")
            + &provider("b", "anthropic", &backup, "claude-b")),
        "",
    )
    .await;
    let mut sent = anthropic_request(true);
    sent["messages"] = json!([{"role": "user", "content": "Answer?"}]);
    let text = post(&gw, "/v1/messages", &sent).await.text().await.unwrap();
    let (_, body) = backup_seen.seen().pop().unwrap();
    let mut want = sent.clone();
    // Routed by the built-in `*`: each Anthropic target asks for the model the client named.
    want["stream"] = json!(true);
    want["messages"] = json!([
        {"role": "user", "content": "Answer?"},
        {"role": "assistant", "content": "The answer is"}
    ]);
    want["max_tokens"] = body["max_tokens"].clone();
    assert_eq!(body, want, "the caller's own body plus the prefill");
    assert!(body["max_tokens"].as_u64().unwrap() < 32000);

    // One message, blocks numbered as the client got them, the text spliced in its open block.
    let got = frames(&text);
    let names: Vec<&str> = got.iter().filter_map(|(e, _)| e.as_deref()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "message_start").count(),
        1,
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    let deltas: Vec<(u64, String)> = got
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "text_delta")
        .map(|(_, d)| {
            (
                d["index"].as_u64().unwrap(),
                d["delta"]["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        deltas,
        [(1, "The answer is".to_string()), (1, " 42.".to_string())]
    );
    let stop = got
        .iter()
        .find(|(e, _)| e.as_deref() == Some("message_delta"))
        .unwrap();
    assert_eq!(stop.1["delta"]["stop_reason"], "end_turn");
    // The reply the caller holds: the input the backup read (the prefill in it) and the output
    // of both parts, the cut one by what it streamed ("The answer is": 4 tokens at four
    // characters a token, though its `message_start` said 1).
    let usage = &stop.1["usage"];
    assert_eq!(
        (
            &usage["input_tokens"],
            &usage["output_tokens"],
            &usage["cache_read_input_tokens"],
            &usage["cache_creation_input_tokens"]
        ),
        (&json!(30), &json!(4 + 3), &json!(0), &json!(0)),
        "{usage}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn across_protocols_the_request_is_translated_not_passed_through() {
    let (url, up) = Upstream::start(&[openai_sse(&openai_stream())]).await;
    let gw = gateway_over(
        &provider("openai", "openai", &format!("{url}/v1"), "gpt-target"),
        "",
    )
    .await;
    let reply: Value = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", gw.addr))
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .json(&json!({"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
                      "a_field_from_the_future": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["content"][0]["text"], "Hello");
    let (headers, body) = up.seen().pop().unwrap();
    assert!(body.get("a_field_from_the_future").is_none(), "{body}");
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
    assert!(headers.get("anthropic-beta").is_none());
    gw.stop().await;
}

/// A Responses stream shaped like OpenAI's: reasoning with encrypted content, a message with an
/// annotation, a function call, usage with cached and reasoning tokens.
fn responses_stream() -> Vec<(Option<&'static str>, Value)> {
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": "resp_0a1", "object": "response", "created_at": 1754000000, "status": status,
               "model": "gpt-5-2025-08-07", "output": output, "usage": usage, "store": false,
               "reasoning": {"effort": "low", "summary": "auto"}, "a_field_from_the_future": 1})
    };
    let reasoning = json!({"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Thinking."}], "encrypted_content": "gAAAAABo-encrypted"});
    let message = json!({"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": "Hi.", "annotations": [{"type": "url_citation", "url": "https://example.com", "start_index": 0, "end_index": 3, "title": "t"}], "logprobs": []}]});
    let call = json!({"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1", "name": "shell", "arguments": "{\"cmd\":\"ls\"}"});
    let usage = json!({"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 90, "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 1290});
    let e = |kind: &'static str, n: u64, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(n);
        (Some(kind), data)
    };
    vec![
        e(
            "response.created",
            0,
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        e(
            "response.in_progress",
            1,
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        e(
            "response.output_item.added",
            2,
            json!({"output_index": 0, "item": {"id": "rs_1", "type": "reasoning", "summary": []}}),
        ),
        e(
            "response.reasoning_summary_text.delta",
            3,
            json!({"item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": "Thinking.", "obfuscation": "x1"}),
        ),
        e(
            "response.output_item.done",
            4,
            json!({"output_index": 0, "item": reasoning}),
        ),
        e(
            "response.output_item.added",
            5,
            json!({"output_index": 1, "item": {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
        ),
        e(
            "response.output_text.delta",
            6,
            json!({"item_id": "msg_1", "output_index": 1, "content_index": 0, "delta": "Hi.", "logprobs": []}),
        ),
        e(
            "response.output_text.annotation.added",
            7,
            json!({"item_id": "msg_1", "output_index": 1, "content_index": 0, "annotation_index": 0, "annotation": message["content"][0]["annotations"][0]}),
        ),
        e(
            "response.output_item.done",
            8,
            json!({"output_index": 1, "item": message}),
        ),
        e(
            "response.output_item.added",
            9,
            json!({"output_index": 2, "item": {"id": "fc_1", "type": "function_call", "status": "in_progress", "call_id": "call_1", "name": "shell", "arguments": ""}}),
        ),
        e(
            "response.function_call_arguments.delta",
            10,
            json!({"item_id": "fc_1", "output_index": 2, "delta": "{\"cmd\":\"ls\"}"}),
        ),
        e(
            "response.output_item.done",
            11,
            json!({"output_index": 2, "item": call}),
        ),
        e(
            "response.completed",
            12,
            json!({"response": response("completed", json!([reasoning, message, call]), usage)}),
        ),
    ]
}

/// What Codex sends: its own tools and items, state at OpenAI, includes.
fn codex_request(stream: bool) -> Value {
    json!({
        "model": "gpt-5-codex",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>…</permissions>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "id": "rs_0", "summary": [], "encrypted_content": "gAAAA-old"},
            {"type": "custom_tool_call", "call_id": "c0", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "c0", "output": "ok"},
            {"type": "configuration_update", "update": {"model": "x"}}
        ],
        "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}, "strict": false},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
            {"type": "local_shell"},
            {"type": "web_search"}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": stream,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "019a-session",
        "text": {"verbosity": "medium"},
        "previous_response_id": "resp_prev"
    })
}

#[tokio::test]
async fn a_responses_request_goes_upstream_as_sent_and_its_stream_comes_back_as_it_came() {
    let upstream_events = responses_stream();
    let (url, up) = Upstream::start(&[sse(&upstream_events)]).await;
    let gw = gateway_over(
        &provider(
            "openai",
            "openai_responses",
            &format!("{url}/v1"),
            "gpt-target",
        ),
        "[[routes]]\nmodel = \"gpt-5-codex\"\n",
    )
    .await;
    let http = reqwest::Client::new();
    let text = http
        .post(format!("http://{}/v1/responses", gw.addr))
        .header("openai-beta", "responses=experimental")
        .json(&codex_request(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let want: Vec<(Option<String>, Value)> = upstream_events
        .iter()
        .map(|(e, d)| (e.map(str::to_string), d.clone()))
        .collect();
    assert_eq!(frames(&text), want);
    let (headers, body) = up.seen().pop().unwrap();
    let mut sent = codex_request(true);
    sent["model"] = json!("gpt-target");
    assert_eq!(
        body, sent,
        "Codex's own tools, items and previous_response_id, as sent"
    );
    assert_eq!(headers["openai-beta"], "responses=experimental");

    // Not streaming: the upstream's own response object.
    let whole: Value = http
        .post(format!("http://{}/v1/responses", gw.addr))
        .json(&codex_request(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(whole, upstream_events.last().unwrap().1["response"]);
    gw.stop().await;
}

#[tokio::test]
async fn what_only_the_responses_api_can_take_is_never_sent_across() {
    let (responses_url, _) = Upstream::start(&[sse(&responses_stream())]).await;
    let (anthropic_url, anthropic_seen) = Upstream::start(&[sse(&anthropic_stream())]).await;
    // No Responses target: a clear 400 that says why.
    let gw = gateway_over(
        &provider("anthropic", "anthropic", &anthropic_url, "claude-x"),
        "",
    )
    .await;
    let reply = post(&gw, "/v1/responses", &codex_request(false)).await;
    assert_eq!(reply.status(), 400);
    let body: Value = reply.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("openai_responses"), "{message}");
    gw.stop().await;

    // A Responses target that is down, then an Anthropic one: passed over, never mistranslated.
    let gw = gateway_over(
        &(provider(
            "openai",
            "openai_responses",
            &format!("{responses_url}/v1"),
            "gpt-x",
        ) + "[[chains]]\nname = \"default\"\ntargets = [\"openai\", \"anthropic\"]\n"
            + &provider("anthropic", "anthropic", &anthropic_url, "claude-x")),
        "",
    )
    .await;
    let http = reqwest::Client::new();
    http.post(format!("http://{}/control", gw.addr))
        .json(&json!({"action": "trip", "provider": "openai"}))
        .send()
        .await
        .unwrap();
    let reply = http
        .post(format!("http://{}/v1/responses", gw.addr))
        .json(&codex_request(false))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 503, "{:?}", reply.text().await);
    assert!(
        anthropic_seen.seen().is_empty(),
        "nothing went to the other protocol"
    );
    gw.stop().await;
}

/// A system message inside the conversation (Claude Code sends them) stays where it was said on a
/// target that takes one there (Chat Completions); an Anthropic target, with one system prompt,
/// gets it joined to that prompt.
#[tokio::test]
async fn system_messages_within_the_conversation_stay_in_place_where_the_target_can() {
    let (url, up) = Upstream::start(&[openai_sse(&openai_stream())]).await;
    let gw = gateway_over(
        &provider("openai", "openai", &format!("{url}/v1"), "gpt-x"),
        "",
    )
    .await;
    let reply = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", gw.addr))
        .json(
            &json!({"model": "claude-x", "max_tokens": 100, "system": "You are Claude Code.",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "<system-reminder>stay brief</system-reminder>"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "go"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let (_, body) = up.seen().pop().unwrap();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are Claude Code."},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "<system-reminder>stay brief</system-reminder>"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "go"}
        ])
    );
    gw.stop().await;

    let (url, up) = Upstream::start(&[sse(&anthropic_stream())]).await;
    let gw = gateway_over(&provider("anthropic", "anthropic", &url, "claude-x"), "").await;
    let reply = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "gpt-x", "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "a"},
            {"role": "developer", "content": "D"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}]}),
    )
    .await;
    assert_eq!(reply.status(), 200);
    let (_, body) = up.seen().pop().unwrap();
    assert_eq!(body["system"], "S\n\nD");
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    gw.stop().await;
}

/// Between OpenAI's two APIs, reasoning effort and a JSON schema for the reply have equivalents:
/// they cross (an Anthropic target gets neither: see the table in docs/gateway.md).
#[tokio::test]
async fn reasoning_effort_and_the_reply_schema_cross_between_openais_two_apis() {
    let schema =
        json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
    let (url, up) = Upstream::start(&[openai_sse(&openai_stream())]).await;
    let gw = gateway_over(
        &provider("openai", "openai", &format!("{url}/v1"), "gpt-x"),
        "",
    )
    .await;
    let reply = post(&gw, "/v1/responses", &json!({"model": "gpt-5", "input": "hi", "reasoning": {"effort": "high"},
                      "text": {"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": true}}})).await;
    assert_eq!(reply.status(), 200);
    let (_, body) = up.seen().pop().unwrap();
    assert_eq!(body["reasoning_effort"], "high");
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": true}})
    );
    gw.stop().await;

    let (url, up) = Upstream::start(&[sse(&responses_stream())]).await;
    let gw = gateway_over(
        &provider("openai", "openai_responses", &format!("{url}/v1"), "gpt-x"),
        "",
    )
    .await;
    let reply = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", gw.addr))
        .json(
            &json!({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}],
                      "reasoning_effort": "minimal", "response_format": {"type": "json_object"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let (_, body) = up.seen().pop().unwrap();
    assert_eq!(body["reasoning"], json!({"effort": "minimal"}));
    assert_eq!(body["text"], json!({"format": {"type": "json_object"}}));
    gw.stop().await;
}

/// A PDF crosses between the three protocols: Anthropic's `document` (base64), Chat Completions'
/// `file` part (`file_data`), Responses' `input_file`.
#[tokio::test]
async fn a_pdf_crosses_protocols_as_a_document_or_a_file() {
    let pdf = "JVBERi0xLjQK";
    let (url, up) = Upstream::start(&[openai_sse(&openai_stream())]).await;
    let gw = gateway_over(
        &provider("openai", "openai", &format!("{url}/v1"), "gpt-x"),
        "",
    )
    .await;
    let reply = post(
        &gw,
        "/v1/messages",
        &json!({"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": [
            {"type": "document", "title": "report.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}},
            {"type": "text", "text": "Summarize."}]}]}),
    )
    .await;
    assert_eq!(reply.status(), 200);
    let (_, body) = up.seen().pop().unwrap();
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "Summarize."},
            {"type": "file", "file": {"filename": "report.pdf",
                                      "file_data": format!("data:application/pdf;base64,{pdf}")}}
        ])
    );
    gw.stop().await;

    let (url, up) = Upstream::start(&[sse(&anthropic_stream())]).await;
    let gw = gateway_over(&provider("anthropic", "anthropic", &url, "claude-x"), "").await;
    let http = reqwest::Client::new();
    let chat = json!({"model": "gpt-x", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarize."},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": format!("data:application/pdf;base64,{pdf}")}}]}]});
    let responses = json!({"model": "gpt-x", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "Summarize."},
        {"type": "input_file", "filename": "a.pdf", "file_data": format!("data:application/pdf;base64,{pdf}")}]}]});
    for (path, body) in [("/v1/chat/completions", chat), ("/v1/responses", responses)] {
        let reply = http
            .post(format!("http://{}{path}", gw.addr))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{path}");
        let (_, sent) = up.seen().pop().unwrap();
        assert_eq!(
            sent["messages"][0]["content"][1],
            json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}}),
            "{path}"
        );
    }
    gw.stop().await;
}

/// A request passed on untranslated (bound to its own protocol) still shows the operator what was
/// asked: the last thing the user said.
#[tokio::test]
async fn a_bound_request_shows_its_prompt() {
    let (url, _) = Upstream::start(&[sse(&responses_stream())]).await;
    let config = Config::parse(
        &format!(
            "[retry]\nmax_retries = 0\n{}",
            provider("openai", "openai_responses", &format!("{url}/v1"), "gpt-x")
        ),
        "bound.toml",
    )
    .unwrap();
    let env = |var: &str| (var == "OPENAI_API_KEY").then(|| "k".to_string());
    let common = breakerbox::cli::CommonArgs::default();
    let (gw, _, bus) = gateway::start(&common, &config, &env, None).await.unwrap();
    let mut events = bus.subscribe();
    let reply = post(&gw, "/v1/responses", &codex_request(false)).await;
    assert_eq!(reply.status(), 200);
    let mut prompt = None;
    while let Ok(event) = events.try_recv() {
        if let breakerbox::event::EventKind::RequestStarted { prompt: p, .. } = &event.kind {
            prompt = p.clone();
        }
    }
    assert_eq!(prompt.as_deref(), Some("list files"));
    gw.stop().await;
}
