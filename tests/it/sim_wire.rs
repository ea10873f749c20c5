//! The simulator's wire formats, checked on the raw bytes against the providers' API references and the recorded
//! fixtures: framing, event order, ids, usage, end markers, headers, tool calls, plain JSON replies.

use crate::support::sim::*;
use breakerbox::provider::Protocol;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn anthropic_stream_follows_the_wire_format() {
    let sim = start_fast().await;
    let response = post(
        &url(&sim, "anthropic", Protocol::Anthropic),
        &anthropic_body(true),
    )
    .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(headers["request-id"].to_str().unwrap().starts_with("req_"));
    assert!(headers.get("x-request-id").is_none());
    let body = response.text().await.unwrap();
    assert!(
        body.ends_with("\n\n"),
        "the last event ends with a blank line"
    );
    assert!(!body.contains("[DONE]"));

    let events = sse_events(&body);
    let data: Vec<Value> = events.iter().map(|(_, d)| json(d)).collect();
    for ((event, _), d) in events.iter().zip(&data) {
        assert_eq!(event.as_deref(), d["type"].as_str(), "event line = type");
    }
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    let n = names.len();
    assert_eq!(
        names[..3],
        ["message_start", "content_block_start", "ping"],
        "{names:?}"
    );
    assert_eq!(
        names[n - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(names[3..n - 3].iter().all(|e| *e == "content_block_delta"));
    let deltas = n - 6;
    assert!((20..=80).contains(&deltas), "{deltas} words");

    let message = &data[0]["message"];
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(
        message["model"], "claude-test-model",
        "the request's model is echoed"
    );
    assert_eq!(message["content"], json!([]));
    assert!(message["stop_reason"].is_null());
    let usage = &message["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(usage["output_tokens"], 1);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "text", "text": ""})
    );

    let text: String = data[3..n - 3]
        .iter()
        .map(|d| {
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(text.ends_with('.'), "{text}");
    assert_eq!(data[n - 2]["delta"]["stop_reason"], "end_turn");
    assert!(data[n - 2]["delta"]["stop_sequence"].is_null());
    assert_eq!(data[n - 2]["usage"]["output_tokens"], deltas as u64);
}

#[tokio::test]
async fn anthropic_tool_use_streams_a_text_block_then_the_call() {
    let sim = start_fast().await;
    let mut body = anthropic_body(true);
    body["tools"] = json!([
        {"name": "get_weather", "description": "Weather", "input_schema": weather_schema()},
        {"name": "other_tool", "input_schema": {"type": "object"}},
    ]);
    let url = url(&sim, "anthropic", Protocol::Anthropic);
    let text = post(&url, &body).await.text().await.unwrap();
    let data: Vec<Value> = sse_events(&text).iter().map(|(_, d)| json(d)).collect();

    let starts: Vec<&Value> = data
        .iter()
        .filter(|d| d["type"] == "content_block_start")
        .collect();
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[0]["content_block"]["type"], "text");
    let tool = &starts[1]["content_block"];
    assert_eq!(starts[1]["index"], 1);
    assert_eq!(tool["type"], "tool_use");
    assert_eq!(tool["name"], "get_weather", "the first tool offered");
    assert!(tool["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(tool["input"], json!({}));

    let pieces: Vec<&str> = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta" && d["index"] == 1)
        .map(|d| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        pieces[0], "",
        "the first piece is empty, as from the real API"
    );
    assert!(pieces.len() > 2);
    let input = json(&pieces.concat());
    assert!(input["location"].is_string(), "{input}");
    assert_eq!(input["unit"], "celsius", "an enum's first value");

    let end = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(end["delta"]["stop_reason"], "tool_use");
    let words = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta" && d["index"] == 0)
        .count();
    assert_eq!(
        end["usage"]["output_tokens"],
        (words + pieces.len() - 1) as u64
    );

    // Given the tool's result, the model answers in words (an agent would loop otherwise).
    body["messages"] = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
    ]);
    let text = post(&url, &body).await.text().await.unwrap();
    assert!(!text.contains("tool_use\""), "{text}");
    assert!(text.contains("\"stop_reason\":\"end_turn\""));
}

#[tokio::test]
async fn anthropic_without_stream_returns_one_message() {
    let sim = start_fast().await;
    let mut body = anthropic_body(false);
    body.as_object_mut().unwrap().remove("stream");
    let response = post(&url(&sim, "anthropic", Protocol::Anthropic), &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("request-id"));
    let message: Value = response.json_body().await;
    assert_eq!(message["type"], "message");
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["model"], "claude-test-model");
    assert_eq!(message["content"][0]["type"], "text");
    assert_eq!(message["stop_reason"], "end_turn");
    let words = message["content"][0]["text"]
        .as_str()
        .unwrap()
        .split(' ')
        .count();
    assert_eq!(message["usage"]["output_tokens"], words as u64);

    // The same request streamed says the same words.
    let streamed = post(
        &url(&sim, "anthropic", Protocol::Anthropic),
        &anthropic_body(true),
    )
    .await
    .text()
    .await
    .unwrap();
    let text: String = sse_events(&streamed)
        .iter()
        .map(|(_, d)| json(d))
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| d["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(message["content"][0]["text"], text.as_str());
}

#[tokio::test]
async fn openai_stream_follows_the_wire_format() {
    let sim = start_fast().await;
    let response = post(
        &url(&sim, "openai", Protocol::Openai),
        &openai_body(true, true),
    )
    .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(
        headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let body = response.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let events = sse_events(&body);
    assert!(events.iter().all(|(e, _)| e.is_none()), "no event: lines");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| json(d))
        .collect();
    let n = chunks.len();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for c in &chunks {
        assert_eq!(c["id"], id, "one id on every chunk");
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "gpt-test-model");
        assert!(c["created"].as_u64().unwrap() > 1_700_000_000);
    }
    for c in &chunks[..n - 1] {
        assert!(c["usage"].is_null() && c.get("usage").is_some());
        assert_eq!(c["choices"][0]["index"], 0);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let words: Vec<&str> = chunks[1..n - 2]
        .iter()
        .map(|c| {
            assert!(c["choices"][0]["finish_reason"].is_null());
            c["choices"][0]["delta"]["content"].as_str().unwrap()
        })
        .collect();
    assert!((20..=80).contains(&words.len()));
    assert_eq!(chunks[n - 2]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    let usage = &chunks[n - 1]["usage"];
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    assert!(prompt > 0);
    assert_eq!(usage["completion_tokens"], words.len() as u64);
    assert_eq!(usage["total_tokens"], prompt + words.len() as u64);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
}

#[tokio::test]
async fn openai_usage_chunk_only_when_asked_for() {
    let sim = start_fast().await;
    let body = post(
        &url(&sim, "openai", Protocol::Openai),
        &openai_body(true, false),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!body.contains("usage"), "{body}");
    assert!(!body.contains("\"choices\":[]"));
    assert!(body.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn openai_tool_calls_stream_as_deltas() {
    let sim = start_fast().await;
    let mut body = openai_body(true, true);
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}}]);
    let url = url(&sim, "openai", Protocol::Openai);
    let text = post(&url, &body).await.text().await.unwrap();
    let events = sse_events(&text);
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| json(d))
        .collect();
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    let call = &first["tool_calls"][0];
    assert_eq!(call["index"], 0);
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "");
    let n = chunks.len();
    let args: String = chunks[1..n - 2]
        .iter()
        .map(|c| {
            let call = &c["choices"][0]["delta"]["tool_calls"][0];
            assert_eq!(call["index"], 0);
            assert!(call.get("id").is_none());
            call["function"]["arguments"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(json(&args)["location"].is_string());
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[n - 1]["usage"]["completion_tokens"], (n - 3) as u64);

    // After the tool's result: words.
    body["messages"] = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]);
    let text = post(&url, &body).await.text().await.unwrap();
    assert!(!text.contains("tool_calls"), "{text}");
}

#[tokio::test]
async fn openai_without_stream_returns_one_completion() {
    let sim = start_fast().await;
    let mut body = openai_body(false, false);
    body.as_object_mut().unwrap().remove("model");
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}}]);
    let response = post(&url(&sim, "openai", Protocol::Openai), &body).await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json_body().await;
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(
        completion["model"], "gpt-6.2-sol",
        "no model asked: the provider's own"
    );
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert!(json(call["function"]["arguments"].as_str().unwrap())["location"].is_string());
    let usage = &completion["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn max_tokens_caps_the_reply() {
    let sim = start_fast().await;
    let mut body = anthropic_body(true);
    body["max_tokens"] = json!(4);
    let text = post(&url(&sim, "anthropic", Protocol::Anthropic), &body)
        .await
        .text()
        .await
        .unwrap();
    let data: Vec<Value> = sse_events(&text).iter().map(|(_, d)| json(d)).collect();
    let end = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(end["delta"]["stop_reason"], "max_tokens");
    assert_eq!(end["usage"]["output_tokens"], 4);

    let mut body = openai_body(false, false);
    body["max_completion_tokens"] = json!(3);
    let completion: Value = post(&url(&sim, "openai", Protocol::Openai), &body)
        .await
        .json_body()
        .await;
    assert_eq!(completion["choices"][0]["finish_reason"], "length");
    assert_eq!(completion["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn replies_depend_on_prompt_and_seed_only() {
    let reply = |sim: &breakerbox::sim::Simulator, prompt: &str| {
        let mut body = openai_body(false, false);
        body["messages"] = json!([{"role": "user", "content": prompt}]);
        let url = url(sim, "openai", Protocol::Openai);
        async move {
            let c: Value = post(&url, &body).await.json_body().await;
            c["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let sim = start_fast().await;
    let a = reply(&sim, "one").await;
    assert_eq!(a, reply(&sim, "one").await);
    assert_ne!(a, reply(&sim, "two").await);
    let mut config = fast_config();
    config.seed = 8;
    let other_seed = start(config).await;
    assert_ne!(a, reply(&other_seed, "one").await);
    let same_seed = start_fast().await;
    assert_eq!(a, reply(&same_seed, "one").await);
}

#[tokio::test]
async fn bad_requests_and_wrong_paths_get_clear_errors() {
    let sim = start_fast().await;
    let anthropic = url(&sim, "anthropic", Protocol::Anthropic);
    let response = client()
        .post(&anthropic)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json_body().await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("JSON"));

    let mut no_max = anthropic_body(true);
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let response = post(&anthropic, &no_max).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json_body().await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );

    let response = post(
        &url(&sim, "openai", Protocol::Openai),
        &json!({"model": "m"}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json_body().await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages")
    );
    assert_eq!(
        breakerbox::sim::Simulator::providers(&sim)
            .iter()
            .find(|p| p.name == "openai")
            .unwrap()
            .outcomes["invalid_request"],
        1
    );

    let base = format!("http://{}", sim.addr());
    let response = post(&format!("{base}/nobody/v1/messages"), &anthropic_body(true)).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json_body().await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("nobody") && message.contains("anthropic, openai"),
        "{message}"
    );

    let response = post(
        &format!("{base}/anthropic/v1/chat/completions"),
        &openai_body(true, false),
    )
    .await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json_body().await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("POST /anthropic/v1/messages"), "{message}");
}

#[tokio::test]
async fn each_provider_also_answers_on_its_own_port() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        let direct = sim.direct_base_url(name).unwrap();
        assert_ne!(direct, sim.base_url(name).unwrap());
        match protocol {
            Protocol::Anthropic | Protocol::Azure => assert!(!direct.ends_with("/v1")),
            Protocol::Openai | Protocol::OpenaiResponses => assert!(direct.ends_with("/v1")),
            Protocol::Gemini => assert!(!direct.ends_with("/v1")),
            Protocol::Bedrock => unreachable!("Bedrock is tested in bedrock.rs"),
        }
        let response = post(&endpoint(&direct, protocol), &body_for(protocol, true)).await;
        assert_eq!(response.status(), 200, "{name}");
        let text = response.text().await.unwrap();
        assert!(has_end_marker(&text), "{name}: {text}");
    }
}

#[tokio::test]
async fn latency_and_token_delay_pace_the_stream() {
    let mut config = fast_config();
    config.providers[0].first_event_latency = Duration::from_millis(200);
    config.providers[0].token_delay = Duration::from_millis(2);
    let sim = start(config).await;
    let started = Instant::now();
    let mut response = post(
        &url(&sim, "anthropic", Protocol::Anthropic),
        &anthropic_body(true),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "headers come at once"
    );
    let first = response.chunk().await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(String::from_utf8_lossy(&first).starts_with("event: message_start"));
    let rest = response.text().await.unwrap();
    let words = rest.matches("text_delta").count() as u32;
    assert!(started.elapsed() >= Duration::from_millis(200) + Duration::from_millis(2) * words);
}

/// Where `fixture` has a field `ours` lacks or types differently; `optional` fields may be absent.
fn shape_differences(fixture: &Value, ours: &Value, path: &str, optional: &[&str]) -> Vec<String> {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if kind(fixture) != kind(ours) {
        return vec![format!(
            "{path}: {} in the fixture, {} here",
            kind(fixture),
            kind(ours)
        )];
    }
    match (fixture, ours) {
        (Value::Object(f), Value::Object(o)) => f
            .iter()
            .filter(|(k, _)| !optional.contains(&k.as_str()))
            .flat_map(|(k, v)| match o.get(k) {
                Some(mine) => shape_differences(v, mine, &format!("{path}.{k}"), optional),
                None => vec![format!("{path}.{k} is missing")],
            })
            .collect(),
        (Value::Array(f), Value::Array(o)) => match (f.first(), o.first()) {
            (Some(f), Some(o)) => shape_differences(f, o, &format!("{path}[0]"), optional),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn fixture_events(name: &str) -> Vec<Value> {
    let text = String::from_utf8(crate::support::provider::fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    // Some fixtures end without the final blank line; the data lines are what matter here.
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(json)
        .collect()
}

/// What kind of event this is, finely enough that two events of one kind have one shape.
fn event_kind(event: &Value) -> String {
    if let Some(t) = event["type"].as_str() {
        let sub = event["delta"]["type"]
            .as_str()
            .or(event["content_block"]["type"].as_str())
            .or(event["item"]["type"].as_str())
            .unwrap_or("");
        return format!("{t}/{sub}");
    }
    let delta = &event["choices"][0]["delta"];
    match () {
        _ if event["choices"] == json!([]) => "usage",
        _ if delta.get("role").is_some() && delta.get("tool_calls").is_some() => "tool_first",
        _ if delta.get("role").is_some() => "first",
        _ if delta.get("tool_calls").is_some() => "tool_arguments",
        _ if delta.get("content").is_some() => "content",
        _ => "finish",
    }
    .to_string()
}

#[tokio::test]
async fn streams_have_the_shape_of_the_recorded_fixtures() {
    let sim = start_fast().await;
    // Fields the recordings carry that no client needs: service tier, the tool caller, the
    // Responses API's padding of deltas, its echo of the request's reasoning settings and the
    // summary of reasoning items (the simulator does not reason).
    let optional = [
        "service_tier",
        "caller",
        "obfuscation",
        "reasoning",
        "summary",
    ];
    for (name, protocol, fixtures) in [
        (
            "anthropic",
            Protocol::Anthropic,
            [
                "anthropic/basic_response.sse",
                "anthropic/tool_use_response.sse",
            ],
        ),
        (
            "openai",
            Protocol::Openai,
            ["openai/basic_stream.sse", "openai/tool_calls_stream.sse"],
        ),
        (
            "responses",
            Protocol::OpenaiResponses,
            [
                "openai/responses_stream.sse",
                "openai/responses_tool_call_stream.sse",
            ],
        ),
    ] {
        let mut ours = Vec::new();
        for with_tools in [false, true] {
            let mut body = body_for(protocol, true);
            if with_tools {
                body["tools"] = match protocol {
                    Protocol::Anthropic => {
                        json!([{"name": "get_weather", "input_schema": weather_schema()}])
                    }
                    Protocol::Openai | Protocol::Azure => {
                        json!([{"type": "function", "function": {"name": "get_weather", "parameters": weather_schema()}}])
                    }
                    Protocol::OpenaiResponses => {
                        json!([{"type": "function", "name": "get_weather", "parameters": weather_schema()}])
                    }
                    Protocol::Gemini => {
                        json!([{"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": weather_schema()}]}])
                    }
                    Protocol::Bedrock => unreachable!("Bedrock is tested in bedrock.rs"),
                };
            }
            let text = post(&url(&sim, name, protocol), &body)
                .await
                .text()
                .await
                .unwrap();
            ours.extend(
                sse_events(&text)
                    .into_iter()
                    .filter(|(_, d)| d != "[DONE]")
                    .map(|(_, d)| json(&d)),
            );
        }
        for fixture in fixtures {
            for recorded in fixture_events(fixture) {
                let kind = event_kind(&recorded);
                // The simulator does not reason: its replies have no reasoning items.
                if kind.contains("reasoning") {
                    continue;
                }
                let mine = ours
                    .iter()
                    .find(|e| event_kind(e) == kind)
                    .unwrap_or_else(|| panic!("{fixture}: we never send a {kind} event"));
                let differences = shape_differences(&recorded, mine, &kind, &optional);
                assert!(differences.is_empty(), "{fixture}: {differences:?}");
            }
        }
    }
}

fn responses_body(stream: bool) -> Value {
    json!({
        "model": "gpt-test-model",
        "instructions": "You are terse.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Why is the sky blue?"}]}],
        "stream": stream,
    })
}

#[tokio::test]
async fn responses_stream_follows_the_wire_format() {
    let sim = start_fast().await;
    let response = post(
        &url(&sim, "responses", Protocol::OpenaiResponses),
        &responses_body(true),
    )
    .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(
        headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let body = response.text().await.unwrap();
    assert!(body.ends_with("\n\n") && !body.contains("[DONE]"));
    let events = sse_events(&body);
    let data: Vec<Value> = events.iter().map(|(_, d)| json(d)).collect();
    for (i, ((event, _), d)) in events.iter().zip(&data).enumerate() {
        assert_eq!(event.as_deref(), d["type"].as_str(), "event line = type");
        assert_eq!(d["sequence_number"], i, "numbered from 0");
    }
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    let n = names.len();
    assert_eq!(
        names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(
        names[n - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert!(
        names[4..n - 4]
            .iter()
            .all(|e| *e == "response.output_text.delta")
    );
    let created = &data[0]["response"];
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("resp_"));
    assert_eq!(created["object"], "response");
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["model"], "gpt-test-model", "the request's model");
    assert_eq!(created["output"], json!([]));
    assert!(created["usage"].is_null());
    let item_id = data[2]["item"]["id"].as_str().unwrap();
    assert!(item_id.starts_with("msg_"));
    let text: String = data[4..n - 4]
        .iter()
        .map(|d| {
            assert_eq!(
                (&d["item_id"], &d["output_index"], &d["content_index"]),
                (&json!(item_id), &json!(0), &json!(0))
            );
            d["delta"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(text.ends_with('.'), "{text}");
    assert_eq!(data[n - 4]["text"], text.as_str());
    assert_eq!(data[n - 2]["item"]["status"], "completed");
    let completed = &data[n - 1]["response"];
    assert_eq!(
        completed["id"], id,
        "one response from created to completed"
    );
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"][0]["id"], item_id);
    assert_eq!(completed["output"][0]["content"][0]["text"], text.as_str());
    let usage = &completed["usage"];
    let input = usage["input_tokens"].as_u64().unwrap();
    assert!(input > 0);
    assert_eq!(usage["output_tokens"], (n - 8) as u64, "one token a delta");
    assert_eq!(usage["total_tokens"], input + (n - 8) as u64);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);
}

#[tokio::test]
async fn responses_function_calls_stream_their_arguments() {
    let sim = start_fast().await;
    let mut body = responses_body(true);
    body["tools"] = json!([
        {"type": "web_search"},
        {"type": "function", "name": "get_weather", "parameters": weather_schema(), "strict": false},
    ]);
    let url = url(&sim, "responses", Protocol::OpenaiResponses);
    let text = post(&url, &body).await.text().await.unwrap();
    let data: Vec<Value> = sse_events(&text).iter().map(|(_, d)| json(d)).collect();
    let added = data
        .iter()
        .find(|d| d["type"] == "response.output_item.added")
        .unwrap();
    let item = &added["item"];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "get_weather", "the first function tool");
    assert_eq!(item["arguments"], "");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    let fc = item["id"].as_str().unwrap();
    assert!(fc.starts_with("fc_"));
    let args: String = data
        .iter()
        .filter(|d| d["type"] == "response.function_call_arguments.delta")
        .map(|d| {
            assert_eq!(d["item_id"], fc);
            d["delta"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(json(&args)["location"].is_string(), "{args}");
    let done = data
        .iter()
        .find(|d| d["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done["arguments"], args.as_str());
    let completed = &data.last().unwrap()["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"][0]["type"], "function_call");
    assert_eq!(completed["output"][0]["arguments"], args.as_str());

    // Given the function's output, the model answers in words.
    body["input"] = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    ]);
    let text = post(&url, &body).await.text().await.unwrap();
    assert!(!text.contains("function_call_arguments"), "{text}");
    assert!(text.contains("response.output_text.delta"));
}

#[tokio::test]
async fn responses_without_stream_and_at_the_output_limit() {
    let sim = start_fast().await;
    let url = url(&sim, "responses", Protocol::OpenaiResponses);
    let mut body = responses_body(false);
    body["input"] = json!("Why is the sky blue?");
    let response = post(&url, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let whole: Value = response.json_body().await;
    assert_eq!(whole["object"], "response");
    assert_eq!(whole["status"], "completed");
    // The request's settings come back in the response object, as the API repeats them.
    assert_eq!(whole["instructions"], "You are terse.");
    assert_eq!(whole["previous_response_id"], Value::Null);
    let text = whole["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        whole["usage"]["output_tokens"],
        text.split(' ').count() as u64
    );

    // The same request streamed says the same words.
    body["stream"] = json!(true);
    let streamed = post(&url, &body).await.text().await.unwrap();
    let deltas: String = sse_events(&streamed)
        .iter()
        .map(|(_, d)| json(d))
        .filter(|d| d["type"] == "response.output_text.delta")
        .map(|d| d["delta"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deltas, text);

    body["max_output_tokens"] = json!(3);
    let data: Vec<Value> = sse_events(&post(&url, &body).await.text().await.unwrap())
        .iter()
        .map(|(_, d)| json(d))
        .collect();
    let last = data.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last["response"]["usage"]["output_tokens"], 3);

    // Bad requests and wrong paths, in OpenAI's error shape.
    let response = post(&url, &json!({"model": "m"})).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json_body().await;
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'input'")
    );
    let base = format!("http://{}", sim.addr());
    let response = post(
        &format!("{base}/responses/v1/chat/completions"),
        &openai_body(true, false),
    )
    .await;
    assert_eq!(response.status(), 404);
    let error: Value = response.json_body().await;
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("POST /responses/v1/responses"),
        "{message}"
    );
    let response = post(&format!("{base}/openai/v1/responses"), &body).await;
    assert_eq!(
        response.status(),
        404,
        "a Chat provider has no Responses API"
    );
}
